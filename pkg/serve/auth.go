package serve

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
	"golang.org/x/time/rate"
)

// KeyPrefix starts every key NewKey makes, so secret scanners and people can recognise one.
const KeyPrefix = "dk_"

// NewKey returns a fresh random API key: KeyPrefix and 32 random bytes in unpadded base64url.
func NewKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("could not read random bytes: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashKey returns the line that authorises key in an --auth-keys file: its SHA-256 in hex. The
// server keeps only hashes, so the file is not a secret that unlocks the API.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// apiKey is one authorised key: its hash, a name for logs (never the key), and its own rate
// limiter when --rate-limit is on.
type apiKey struct {
	hash [sha256.Size]byte
	name string
	lim  *rate.Limiter
}

type keyring struct{ keys []apiKey }

// ParseKeys reads an --auth-keys file: one key per line as 64 hex digits (the SHA-256 of the
// key, as HashKey and `delayctl keys new` print it), optionally followed by a name for the logs.
// Blank lines and everything after a # are ignored. It names the line of any mistake.
func ParseKeys(r io.Reader) (names []string, err error) {
	k, err := parseKeys(r, 0, 0)
	if err != nil {
		return nil, err
	}
	for _, e := range k.keys {
		names = append(names, e.name)
	}
	return names, nil
}

func parseKeys(r io.Reader, limit float64, burst int) (*keyring, error) {
	k := &keyring{}
	sc := bufio.NewScanner(r)
	seen := map[[sha256.Size]byte]int{}
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) > 2 {
			return nil, fmt.Errorf("line %d: want a SHA-256 hex hash and an optional name, got %d fields", line, len(fields))
		}
		h := strings.TrimPrefix(strings.ToLower(fields[0]), "sha256:")
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("line %d: %q is not a SHA-256 hash (64 hex digits); store `delayctl keys new`'s hash line, never the key itself", line, clip(fields[0]))
		}
		var e apiKey
		copy(e.hash[:], raw)
		if prev, dup := seen[e.hash]; dup {
			return nil, fmt.Errorf("line %d: the same hash as line %d", line, prev)
		}
		seen[e.hash] = line
		e.name = h[:8]
		if len(fields) == 2 {
			e.name = fields[1]
		}
		if limit > 0 {
			e.lim = newLimiter(limit, burst)
		}
		k.keys = append(k.keys, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("no keys: every request would be refused; add one with `delayctl keys new`")
	}
	return k, nil
}

// clip shortens what a mistaken line holds before it goes into an error message: it may be
// a key pasted by mistake.
func clip(s string) string {
	if len(s) > 6 {
		return s[:6] + "..."
	}
	return s
}

func loadKeys(path string, limit float64, burst int) (*keyring, error) {
	f, err := model.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("could not read auth keys: %w", err)
	}
	defer f.Close()
	k, err := parseKeys(f, limit, burst)
	if err != nil {
		return nil, fmt.Errorf("auth keys %s: %w", path, err)
	}
	return k, nil
}

func newLimiter(limit float64, burst int) *rate.Limiter {
	if burst == 0 {
		burst = int(math.Ceil(limit))
	}
	return rate.NewLimiter(rate.Limit(limit), burst)
}

// match finds the key whose hash equals the presented key's, comparing against every stored
// hash in constant time, so the time taken says nothing about how close a guess came.
func (k *keyring) match(presented string) *apiKey {
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(presented), len(presented)))
	var found *apiKey
	for i := range k.keys {
		if subtle.ConstantTimeCompare(sum[:], k.keys[i].hash[:]) == 1 {
			found = &k.keys[i]
		}
	}
	return found
}

// presentedKey returns the key of an Authorization: Bearer or X-API-Key header.
func presentedKey(r *http.Request) (string, bool) {
	if a := header(r, "Authorization"); a != "" {
		const bearer = "bearer "
		if len(a) > len(bearer) && strings.EqualFold(a[:len(bearer)], bearer) {
			return strings.TrimSpace(a[len(bearer):]), true
		}
		return "", true
	}
	if k := header(r, "X-Api-Key"); k != "" {
		return strings.TrimSpace(k), true
	}
	return "", false
}

var (
	wwwAuthMissing = []string{`Bearer realm="delayctl"`}
	wwwAuthInvalid = []string{`Bearer realm="delayctl", error="invalid_token"`}
)

// authenticate requires a valid API key when keys are on, and applies the rate limit (per key,
// or one shared limit when keys are off). Keys never reach a log: a refused request is logged
// at debug level with its address only.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lim := s.anonLim
		if s.keys != nil {
			key, sent := presentedKey(r)
			if !sent {
				w.Header()["Www-Authenticate"] = wwwAuthMissing
				writeError(w, http.StatusUnauthorized, "missing API key: send the header Authorization: Bearer KEY, or X-API-Key: KEY")
				return
			}
			k := s.keys.match(key)
			if k == nil {
				s.log.Debug("invalid API key", "remote", r.RemoteAddr, "path", r.URL.Path)
				w.Header()["Www-Authenticate"] = wwwAuthInvalid
				writeError(w, http.StatusUnauthorized, "invalid API key")
				return
			}
			lim = k.lim
		}
		if lim != nil && !lim.Allow() {
			s.met.rateLimited.Inc()
			now := time.Now()
			res := lim.ReserveN(now, 1)
			wait := res.DelayFrom(now)
			res.CancelAt(now)
			secs := max(1, int(math.Ceil(wait.Seconds())))
			w.Header()["Retry-After"] = []string{strconv.Itoa(secs)}
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("rate limit exceeded: at most %g requests per second (--rate-limit); retry after %d s", float64(lim.Limit()), secs))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// KeyLine is the --auth-keys line for key: its hash, and its name when given.
func KeyLine(key, name string) string {
	if name == "" {
		return HashKey(key)
	}
	return HashKey(key) + "  " + name
}

// ValidKeyName checks a key's name: one word, no '#', so that the keys file reads it back.
func ValidKeyName(name string) error {
	if name != "" && (strings.ContainsAny(name, " \t\r\n#") || !utf8.ValidString(name)) {
		return fmt.Errorf("key name %q must be one word without '#'", name)
	}
	return nil
}

// AppendKey adds key's line to the keys file at path, creating it (mode 0600) if needed. The
// file is rewritten atomically, and refused if what it already holds does not parse, so a
// typo is not buried under new keys.
func AppendKey(path, key, name string) error {
	if err := ValidKeyName(name); err != nil {
		return err
	}
	var old []byte
	f, err := model.OpenRegular(path)
	switch {
	case err == nil:
		old, err = io.ReadAll(f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("could not read keys file: %w", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("could not read keys file: %w", err)
	}
	if len(bytes.TrimSpace(old)) > 0 {
		if _, err := parseKeys(bytes.NewReader(old), 0, 0); err != nil && !strings.Contains(err.Error(), "no keys") {
			return inputerr.Errorf("keys file %s: %w", path, err)
		}
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	data := append(old, KeyLine(key, name)+"\n"...)
	// Hashes do not unlock the API, but the list of who has access is nobody else's business.
	return atomicfile.Write(path, 0o600, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
