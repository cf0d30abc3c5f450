package serve

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

func TestPredictAnswersEveryRequestShape(t *testing.T) {
	m := testModel(t, "v1")
	s, _ := newTestServer(t, m, testOptions())
	pa, err := m.PredictFlight(&atl)
	if err != nil {
		t.Fatal(err)
	}
	pj, err := m.PredictFlight(&jfk)
	if err != nil {
		t.Fatal(err)
	}
	xa, xj := vectorJSON(m, atl), vectorJSON(m, jfk)
	const (
		atlJSON = `{"month": 1, "day_of_month": 5, "day_of_week": 2, "origin": "ATL", "dest": "SEA", "carrier": "DL", "crs_dep_time": 1905}`
		jfkJSON = `{"month": 7, "day_of_month": 31, "day_of_week": 5, "origin": "JFK", "dest": "LAX", "carrier": "B6", "crs_dep_time": 700}`
	)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	if err := mw.WriteField("x", xa); err != nil {
		t.Fatal(err)
	}
	mw.Close()

	tests := map[string]struct {
		method, path, ctype, body string
		want                      []float64
	}{
		"A single vector posted to /predict gets one prediction.": {
			"POST", "/predict", "application/json", `{"x": ` + xa + `}`, []float64{pa}},
		"A batch of vectors gets one prediction per vector, in order.": {
			"POST", "/predict", "application/json", `{"x": [` + xa + `, ` + xj + `]}`, []float64{pa, pj}},
		"Named-field instances get the probabilities of their flights.": {
			"POST", "/predict", "application/json", `{"instances": [` + atlJSON + `, ` + jfkJSON + `]}`, []float64{pa, pj}},
		"Instances given as arrays are read as encoded vectors.": {
			"POST", "/predict", "application/json", `{"instances": [` + xj + `]}`, []float64{pj}},
		"The plane-delay seed's GET / with a JSON body works unchanged.": {
			"GET", "/", "application/json", `{"x": ` + xa + `}`, []float64{pa}},
		"The Cloud Function seed's POST with a form body x=[...] works unchanged.": {
			"POST", "/", "application/x-www-form-urlencoded", "x=" + xa, []float64{pa}},
		"A form body posted to /predict works too.": {
			"POST", "/predict", "application/x-www-form-urlencoded", "x=" + xj, []float64{pj}},
		"A form holding a batch gets one prediction per vector.": {
			"POST", "/", "application/x-www-form-urlencoded", "x=[" + xa + "," + xj + "]", []float64{pa, pj}},
		"JSON sent with curl -d's default form type is read as JSON.": {
			"POST", "/", "application/x-www-form-urlencoded", `{"x": ` + xj + `}`, []float64{pj}},
		"A multipart form (curl -F) is read like a form.": {
			"POST", "/", mw.FormDataContentType(), mp.String(), []float64{pa}},
		"A JSON body without a Content-Type is read as JSON.": {
			"POST", "/predict", "", `{"x": ` + xa + `}`, []float64{pa}},
		"A charset parameter and surrounding whitespace are fine.": {
			"POST", "/predict", "application/json; charset=utf-8", "\n {\n \"x\" : " + xa + " \n}\n", []float64{pa}},
		"An escaped airport code is unescaped before lookup.": {
			"POST", "/predict", "application/json", strings.Replace(atlJSON, `"ATL"`, `"\u0041TL"`, 1), nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.want == nil {
				tc.want = []float64{pa}
				tc.body = `{"instances": [` + tc.body + `]}`
			}
			rec := do(s.Handler(), tc.method, tc.path, tc.ctype, tc.body)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			got := decodeJSON[predictAnswer](t, rec.Body.Bytes())
			if got.ModelName != m.Name || got.ModelVersion != "v1" {
				t.Errorf("answer names model %q version %q", got.ModelName, got.ModelVersion)
			}
			if len(got.Predictions) != len(tc.want) {
				t.Fatalf("%d predictions, want %d: %s", len(got.Predictions), len(tc.want), rec.Body)
			}
			for i, p := range got.Predictions {
				wantLabel := labelOnTime
				if m.Delayed(tc.want[i]) {
					wantLabel = labelDelayed
				}
				if p.Probability != tc.want[i] || p.Delayed != m.Delayed(tc.want[i]) || p.Label != wantLabel {
					t.Errorf("prediction %d = %+v, want probability %v label %s", i, p, tc.want[i], wantLabel)
				}
			}
		})
	}
}

func TestPredictRejectsBadRequestsWithFourHundreds(t *testing.T) {
	m := testModel(t, "v1")
	opts := testOptions()
	opts.MaxBatch = 3
	opts.MaxBodyBytes = 4096
	s, _ := newTestServer(t, m, opts)
	xa := vectorJSON(m, atl)
	withValue := func(v string) string { return `{"x": [` + v + strings.Repeat(",0", 79) + `]}` }
	const inst = `"month": 1, "day_of_month": 5, "day_of_week": 2, "origin": "ATL", "dest": "SEA", "carrier": "DL"`

	tests := map[string]struct {
		method, path, ctype, body string
		status                    int
		msg                       string
		header                    [2]string
	}{
		"Malformed JSON is a 400 naming the position.": {
			"POST", "/predict", "application/json", "{\"x\": [1,\n 2,]}", 400, "malformed JSON at line 2 column 4", [2]string{}},
		"An unterminated body is a 400.": {
			"POST", "/predict", "application/json", `{"x": [1, 2`, 400, "malformed JSON", [2]string{}},
		"A wrong vector length is a 422 naming the expected length.": {
			"POST", "/predict", "application/json", `{"x": [0, 1, 0]}`, 422, "x has 3 values, the model expects 80", [2]string{}},
		"A wrong length inside a batch names the row.": {
			"POST", "/predict", "application/json", `{"x": [` + xa + `, [1]]}`, 422, "x[1] has 1 values, the model expects 80", [2]string{}},
		"NaN, as Python writes it, is a 422 naming the element.": {
			"POST", "/predict", "application/json", withValue("NaN"), 422, "x[0] is NaN; values must be finite numbers", [2]string{}},
		"Infinity is a 422.": {
			"POST", "/predict", "application/json", withValue("-Infinity"), 422, "x[0] is -Infinity", [2]string{}},
		"A number beyond float64 is a 422.": {
			"POST", "/predict", "application/json", withValue("1e999"), 422, "out of the float64 range", [2]string{}},
		"An empty x is a 422.": {
			"POST", "/predict", "application/json", `{"x": []}`, 422, "x is empty", [2]string{}},
		"An empty instances list is a 422.": {
			"POST", "/predict", "application/json", `{"instances": []}`, 422, "instances is empty", [2]string{}},
		"A batch over --max-batch is a 422 naming the limit.": {
			"POST", "/predict", "application/json", `{"x": [` + strings.Repeat(xa+",", 3) + xa + `]}`, 422, "more than 3 instances", [2]string{}},
		"A string where a number belongs is a 400 naming the element.": {
			"POST", "/predict", "application/json", withValue(`"1"`), 400, "x[0] is a string, want a number", [2]string{}},
		"Null in a vector is a 400.": {
			"POST", "/predict", "application/json", withValue(`null`), 400, "x[0] is null", [2]string{}},
		"An unknown field is a 400 naming it.": {
			"POST", "/predict", "application/json", `{"X": [1]}`, 400, `unknown field "X"`, [2]string{}},
		"Both x and instances is a 400.": {
			"POST", "/predict", "application/json", `{"x": [1], "instances": []}`, 400, "either x or instances", [2]string{}},
		"An empty object is a 400.": {
			"POST", "/predict", "application/json", `{}`, 400, "missing field", [2]string{}},
		"A top-level array is a 400.": {
			"POST", "/predict", "application/json", `[1, 2]`, 400, "want a JSON object", [2]string{}},
		"Data after the object is a 400.": {
			"POST", "/predict", "application/json", `{"x": [1]} {}`, 400, "unexpected data after the JSON object", [2]string{}},
		"An empty body is a 400.": {
			"POST", "/predict", "application/json", ``, 400, "empty request body", [2]string{}},
		"An instance missing a field is a 400 naming it.": {
			"POST", "/predict", "application/json", `{"instances": [{` + inst + `}]}`, 400, `instances[0]: missing field "crs_dep_time"`, [2]string{}},
		"An instance with an unknown field is a 400 naming it.": {
			"POST", "/predict", "application/json", `{"instances": [{` + inst + `, "crs_dep_time": 5, "tail": "N1"}]}`, 400, `unknown field "tail"`, [2]string{}},
		"An out-of-range month is a 422 naming the field.": {
			"POST", "/predict", "application/json", `{"instances": [{` + strings.Replace(inst, `"month": 1`, `"month": 13`, 1) + `, "crs_dep_time": 5}]}`, 422, `instances[0]: field "month": must be 1..12`, [2]string{}},
		"A fractional departure time is a 422.": {
			"POST", "/predict", "application/json", `{"instances": [{` + inst + `, "crs_dep_time": 5.5}]}`, 422, "instances[0].crs_dep_time is 5.5, want an integer", [2]string{}},
		"Instances mixing objects and arrays are a 400.": {
			"POST", "/predict", "application/json", `{"instances": [{` + inst + `, "crs_dep_time": 5}, [1]]}`, 400, "not a mix", [2]string{}},
		"GET /predict is a 405 with Allow.": {
			"GET", "/predict", "", "", 405, "method GET is not allowed on /predict; use POST", [2]string{"Allow", "POST"}},
		"DELETE / is a 405.": {
			"DELETE", "/", "", "", 405, "not allowed", [2]string{"Allow", "GET, HEAD, POST"}},
		"A text/plain body is a 415.": {
			"POST", "/predict", "text/plain", `{"x": [1]}`, 415, `unsupported Content-Type "text/plain"`, [2]string{}},
		"A form without x is a 400.": {
			"POST", "/", "application/x-www-form-urlencoded", "y=[1]", 400, `unknown form field "y"`, [2]string{}},
		"A malformed form value names the form field.": {
			"POST", "/", "application/x-www-form-urlencoded", "x=[1,", 400, "form field x: malformed JSON", [2]string{}},
		"A body over --max-body-bytes is a 413.": {
			"POST", "/predict", "application/json", `{"x": [` + strings.Repeat("0,", 3000) + `0]}`, 413, "larger than 4096 bytes", [2]string{"Connection", "close"}},
		"An unknown path is a JSON 404.": {
			"GET", "/nope", "", "", 404, "no route /nope", [2]string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := do(s.Handler(), tc.method, tc.path, tc.ctype, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			got := decodeJSON[struct {
				Error string `json:"error"`
			}](t, rec.Body.Bytes())
			if !strings.Contains(got.Error, tc.msg) {
				t.Errorf("error %q does not say %q", got.Error, tc.msg)
			}
			if tc.header[0] != "" && rec.Header().Get(tc.header[0]) != tc.header[1] {
				t.Errorf("header %s = %q, want %q", tc.header[0], rec.Header().Get(tc.header[0]), tc.header[1])
			}
		})
	}
}

func TestMetadataDescribesTheVector(t *testing.T) {
	m := testModel(t, "v1")
	s, _ := newTestServer(t, m, testOptions())
	rec := do(s.Handler(), "GET", "/v1/models/flight-delay", "", "")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	md := decodeJSON[modelMetadata](t, rec.Body.Bytes())
	if md.VectorLength != 80 || len(md.FeatureNames) != 80 || md.FeatureNames[0] != "dep_hour=0" || md.FeatureNames[79] != "day_of_year" {
		t.Errorf("vector description: length %d, names %v", md.VectorLength, md.FeatureNames)
	}
	if md.Threshold != 0.3 || md.Checksum != m.Checksum || len(md.Categories["origin"]) != 18 || string(md.Metrics) != `{"auc":0.71,"accuracy":0.80}` {
		t.Errorf("metadata %+v", md)
	}
	if rec := do(s.Handler(), "GET", "/v1/models/other", "", ""); rec.Code != 404 || !strings.Contains(rec.Body.String(), `this server serves \"flight-delay\"`) {
		t.Errorf("unknown model: %d %s", rec.Code, rec.Body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s, _ := newTestServer(t, testModel(t, "v1"), testOptions())
	for path, want := range map[string]string{
		"/healthz":         `{"status":"ok"}`,
		"/readyz":          `{"ready":true,"model_name":"flight-delay","model_version":"v1"}`,
		"/v2/health/live":  `{"live":true}`,
		"/v2/health/ready": `{"ready":true}`,
	} {
		if rec := do(s.Handler(), "GET", path, "", ""); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want {
			t.Errorf("GET %s = %d %s, want 200 %s", path, rec.Code, rec.Body, want)
		}
	}
	s.SetDraining(true)
	for _, path := range []string{"/readyz", "/v2/health/ready", "/v2/models/flight-delay/ready"} {
		if rec := do(s.Handler(), "GET", path, "", ""); rec.Code != 503 {
			t.Errorf("GET %s while draining = %d, want 503", path, rec.Code)
		}
	}
	if rec := do(s.Handler(), "GET", "/healthz", "", ""); rec.Code != 200 {
		t.Errorf("liveness must hold while draining, got %d", rec.Code)
	}
}

// Example of the exact answer shape, documented in docs/SERVE.md.
func TestPredictAnswerShape(t *testing.T) {
	m := testModel(t, "v1")
	s, _ := newTestServer(t, m, testOptions())
	rec := do(s.Handler(), "POST", "/predict", "application/json", `{"x": `+vectorJSON(m, atl)+`}`)
	p, _ := m.PredictFlight(&atl)
	label := map[bool]string{true: "delayed", false: "on_time"}[m.Delayed(p)]
	want := fmt.Sprintf(`{"model_name":"flight-delay","model_version":"v1","predictions":[{"probability":%v,"delayed":%v,"label":"%s"}]}`+"\n",
		p, m.Delayed(p), label)
	if rec.Body.String() != want {
		t.Errorf("answer\n%s\nwant\n%s", rec.Body, want)
	}
}
