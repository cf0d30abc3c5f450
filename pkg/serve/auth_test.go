package serve

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeKeys makes a keys file authorising the given keys, named k0, k1, ...
func writeKeys(t testing.TB, keys ...string) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("# delayctl API keys\n\n")
	for i, k := range keys {
		sb.WriteString(HashKey(k) + "  k" + string(rune('0'+i)) + "  # added by the test\n")
	}
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAPIKeysGuardTheNonPublicRoutes(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKey()
	m := testModel(t, "v1")
	opts := testOptions()
	opts.AuthKeysFile = writeKeys(t, "first-key", key)
	s, logs := newTestServer(t, m, opts)
	body := `{"x": ` + vectorJSON(m, atl) + `}`

	tests := map[string]struct {
		method, path string
		header       []string
		status       int
		wwwAuth      string
	}{
		"A bearer key is accepted.":                   {"POST", "/predict", []string{"Authorization", "Bearer " + key}, 200, ""},
		"The bearer scheme is case-insensitive.":      {"POST", "/predict", []string{"Authorization", "bearer " + key}, 200, ""},
		"An X-API-Key header is accepted.":            {"POST", "/predict", []string{"X-API-Key", key}, 200, ""},
		"A missing key is a 401 with a challenge.":    {"POST", "/predict", nil, 401, `Bearer realm="delayctl"`},
		"A wrong key is a 401 saying invalid_token.":  {"POST", "/predict", []string{"X-API-Key", other}, 401, `Bearer realm="delayctl", error="invalid_token"`},
		"A Basic credential is a 401.":                {"POST", "/predict", []string{"Authorization", "Basic " + key}, 401, `Bearer realm="delayctl", error="invalid_token"`},
		"The hash itself is not a key.":               {"POST", "/predict", []string{"X-API-Key", HashKey(key)}, 401, `Bearer realm="delayctl", error="invalid_token"`},
		"Inference needs a key.":                      {"POST", "/v2/models/flight-delay/infer", nil, 401, `Bearer realm="delayctl"`},
		"Model metadata needs a key.":                 {"GET", "/v1/models/flight-delay", nil, 401, `Bearer realm="delayctl"`},
		"Reloading needs a key.":                      {"POST", "/admin/reload", nil, 401, `Bearer realm="delayctl"`},
		"Health probes are public by default.":        {"GET", "/healthz", nil, 200, ""},
		"Readiness is public by default.":             {"GET", "/readyz", nil, 200, ""},
		"OIP readiness is public by default.":         {"GET", "/v2/health/ready", nil, 200, ""},
		"Metrics are public by default.":              {"GET", "/metrics", nil, 200, ""},
		"The seeds' root route needs a key.":          {"GET", "/", nil, 401, `Bearer realm="delayctl"`},
		"A second key in the file works on its own.":  {"POST", "/predict", []string{"X-API-Key", "first-key"}, 200, ""},
		"Whitespace around a presented key is fine.":  {"POST", "/predict", []string{"Authorization", "Bearer  " + key + " "}, 200, ""},
		"An empty bearer is a 401, not an anonymous.": {"POST", "/predict", []string{"Authorization", "Bearer "}, 401, `Bearer realm="delayctl", error="invalid_token"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := ""
			if tc.method == "POST" {
				b = body
			}
			rec := do(s.Handler(), tc.method, tc.path, "application/json", b, tc.header...)
			if rec.Code != tc.status && !(tc.path == "/admin/reload" && tc.status == 200) {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.wwwAuth {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.wwwAuth)
			}
			if tc.status == 401 && !strings.HasPrefix(rec.Body.String(), `{"error":"`) {
				t.Errorf("401 body %s is not a JSON error", rec.Body)
			}
		})
	}
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), other) {
		t.Errorf("a key reached the log:\n%s", logs)
	}
}

func TestPublicRoutesAreConfigurable(t *testing.T) {
	opts := testOptions()
	opts.AuthKeysFile = writeKeys(t, "k")
	opts.PublicRoutes = []string{"/healthz", "/predict"}
	m := testModel(t, "v1")
	s, _ := newTestServer(t, m, opts)
	if rec := do(s.Handler(), "POST", "/predict", "application/json", `{"x": `+vectorJSON(m, atl)+`}`); rec.Code != 200 {
		t.Errorf("public /predict = %d", rec.Code)
	}
	if rec := do(s.Handler(), "GET", "/metrics", "", ""); rec.Code != 401 {
		t.Errorf("/metrics made private = %d, want 401", rec.Code)
	}
	for _, bad := range [][]string{{"/admin/reload"}, {"/nope"}} {
		opts.PublicRoutes = bad
		if _, err := New(m, opts, nil); err == nil {
			t.Errorf("public routes %v accepted", bad)
		}
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	m := testModel(t, "v1")
	body := `{"x": ` + vectorJSON(m, atl) + `}`
	tests := map[string]struct {
		keys   bool
		header []string
	}{
		"Each key has its own bucket.":       {true, []string{"X-API-Key", "a"}},
		"Without keys one bucket is shared.": {false, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			opts := testOptions()
			opts.RateLimit, opts.RateBurst = 0.01, 2 // two requests, then one per 100 s
			if tc.keys {
				opts.AuthKeysFile = writeKeys(t, "a", "b")
			}
			s, _ := newTestServer(t, m, opts)
			var codes []int
			for range 3 {
				codes = append(codes, do(s.Handler(), "POST", "/predict", "application/json", body, tc.header...).Code)
			}
			rec := do(s.Handler(), "POST", "/predict", "application/json", body, tc.header...)
			codes = append(codes, rec.Code)
			if want := []int{200, 200, 429, 429}; !slices.Equal(codes, want) {
				t.Fatalf("codes %v, want %v", codes, want)
			}
			if ra := rec.Header().Get("Retry-After"); ra != "100" {
				t.Errorf("Retry-After %q, want 100", ra)
			}
			if !strings.Contains(rec.Body.String(), "rate limit exceeded") {
				t.Errorf("429 body %s", rec.Body)
			}
			if rec := do(s.Handler(), "GET", "/healthz", "", ""); rec.Code != 200 {
				t.Errorf("public route limited: %d", rec.Code)
			}
			if tc.keys {
				if rec := do(s.Handler(), "POST", "/predict", "application/json", body, "X-API-Key", "b"); rec.Code != 200 {
					t.Errorf("another key was limited: %d", rec.Code)
				}
			}
		})
	}
}

func TestParseKeysNamesTheBadLine(t *testing.T) {
	h := HashKey("k")
	tests := map[string]struct {
		file   string
		names  []string
		errMsg string
	}{
		"Hashes with names, comments and blank lines parse.": {
			"# keys\n\n" + h + " ci\nsha256:" + strings.ToUpper(HashKey("j")) + "\n", []string{"ci", HashKey("j")[:8]}, ""},
		"A raw key pasted instead of its hash is refused without echoing it.": {
			"dk_secretsecretsecret\n", nil, `line 1: "dk_sec..." is not a SHA-256 hash`},
		"A repeated hash is refused.": {h + "\n" + h + " again\n", nil, "line 2: the same hash as line 1"},
		"An empty file is refused.":   {"# nothing\n", nil, "no keys"},
		"Extra fields are refused.":   {h + " a b\n", nil, "line 1: want a SHA-256 hex hash and an optional name"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			names, err := ParseKeys(strings.NewReader(tc.file))
			if tc.errMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMsg) {
					t.Fatalf("error %v, want %q", err, tc.errMsg)
				}
				if strings.Contains(err.Error(), "secretsecret") {
					t.Errorf("error echoes the key: %v", err)
				}
				return
			}
			if err != nil || strings.Join(names, ",") != strings.Join(tc.names, ",") {
				t.Errorf("names %v, %v; want %v", names, err, tc.names)
			}
		})
	}
}

func TestNewKeyIsRandomAndPrefixed(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKey()
	if a == b || !strings.HasPrefix(a, KeyPrefix) || len(a) != len(KeyPrefix)+43 {
		t.Errorf("keys %q and %q", a, b)
	}
	// The SHA-256 of "abc", from FIPS 180-2.
	if got := HashKey("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashKey(abc) = %s", got)
	}
}
