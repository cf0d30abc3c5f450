package serve

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/model"
)

// discardWriter is a reusable ResponseWriter, so that a benchmark measures the server's own
// work and allocations, not httptest's.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }
func (d *discardWriter) WriteHeader(c int)           { d.code = c }

// replay sends the same request through h again and again without allocating for it.
type replay struct {
	h    http.Handler
	req  *http.Request
	body *bytes.Reader
	raw  []byte
	w    *discardWriter
}

func newReplay(h http.Handler, path, body string, header ...string) *replay {
	r := &replay{h: h, raw: []byte(body), w: &discardWriter{h: http.Header{}}}
	r.body = bytes.NewReader(r.raw)
	r.req = httptest.NewRequest("POST", path, nil)
	r.req.Body = io.NopCloser(r.body)
	r.req.ContentLength = int64(len(body))
	r.req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		r.req.Header.Set(header[i], header[i+1])
	}
	return r
}

func (r *replay) do() int {
	r.body.Reset(r.raw)
	clear(r.w.h)
	r.w.code = 0
	r.h.ServeHTTP(r.w, r.req)
	return r.w.code
}

func benchReplay(b *testing.B, r *replay) {
	b.Helper()
	if code := r.do(); code != 200 {
		b.Fatalf("status %d", code)
	}
	b.SetBytes(int64(len(r.raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.do()
	}
}

func benchServer(b *testing.B, m *model.Model, opts Options) *Server {
	b.Helper()
	s, _ := newTestServer(b, m, opts)
	return s
}

// BenchmarkPredictVector is the seeds' request: one encoded vector of 80 features.
func BenchmarkPredictVector(b *testing.B) {
	m := testModel(b, "v1")
	s := benchServer(b, m, testOptions())
	benchReplay(b, newReplay(s.Handler(), "/predict", `{"x": `+vectorJSON(m, atl)+`}`))
}

// BenchmarkPredictVectorWithKey is the same request through API key checking and a per-key
// rate limit high enough never to refuse: what authentication costs per request.
func BenchmarkPredictVectorWithKey(b *testing.B) {
	m := testModel(b, "v1")
	opts := testOptions()
	key, _ := NewKey()
	opts.AuthKeysFile = writeKeys(b, "other-1", "other-2", key)
	opts.RateLimit = 1e9
	s := benchServer(b, m, opts)
	benchReplay(b, newReplay(s.Handler(), "/predict", `{"x": `+vectorJSON(m, atl)+`}`, "Authorization", "Bearer "+key))
}

func BenchmarkPredictBatch100(b *testing.B) {
	m := testModel(b, "v1")
	s := benchServer(b, m, testOptions())
	rows := strings.Repeat(vectorJSON(m, atl)+",", 99) + vectorJSON(m, jfk)
	benchReplay(b, newReplay(s.Handler(), "/predict", `{"x": [`+rows+`]}`))
}

func BenchmarkPredictInstance(b *testing.B) {
	m := testModel(b, "v1")
	s := benchServer(b, m, testOptions())
	benchReplay(b, newReplay(s.Handler(), "/predict",
		`{"instances": [{"month": 1, "day_of_month": 5, "day_of_week": 2, "origin": "ATL", "dest": "SEA", "carrier": "DL", "crs_dep_time": 1905}]}`))
}

func BenchmarkInferVector(b *testing.B) {
	m := testModel(b, "v1")
	s := benchServer(b, m, testOptions())
	benchReplay(b, newReplay(s.Handler(), "/v2/models/flight-delay/infer",
		`{"inputs": [{"name": "x", "shape": [1, 80], "datatype": "FP64", "data": `+vectorJSON(m, atl)+`}]}`))
}

// BenchmarkPredictNamedCrossed is one named instance against a model with two crosses.
func BenchmarkPredictNamedCrossed(b *testing.B) {
	m := crossedModel(b)
	s := benchServer(b, m, testOptions())
	benchReplay(b, newReplay(s.Handler(), "/predict", `{"instances": [{"month": 1, "day_of_month": 5, "day_of_week": 2, "origin": "ATL", "dest": "SEA", "carrier": "DL", "crs_dep_time": 1905}]}`))
}
