package serve

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/delayctl/delayctl/pkg/model"
)

// testModel builds a model of realistic size (80 features, like one trained on flightdata.csv)
// with seeded pseudo-random coefficients. version distinguishes models in reload tests.
func testModel(t testing.TB, version string) *model.Model {
	t.Helper()
	airports := []string{"ATL", "BOS", "DEN", "DFW", "DTW", "JFK", "LAS", "LAX", "MCO", "MSP",
		"ORD", "PHX", "SEA", "SFO", "SLC", "IAH", "CLT", "EWR"}
	carriers := []string{"AA", "AS", "B6", "DL", "EV", "F9", "HA", "NK", "OO", "UA"}
	hours := make([]string, 24)
	for h := range hours {
		hours[h] = strconv.Itoa(h)
	}
	m := &model.Model{
		Name: model.DefaultName, Version: version,
		Label: model.Label{Name: "delayed", Definition: "ARR_DEL15 == 1"},
		Input: model.BTSColumns,
		Features: []model.Feature{
			{Variable: "dep_hour", Encoding: model.OneHot, Vocabulary: hours},
			{Variable: "day_of_week", Encoding: model.OneHot, Vocabulary: []string{"1", "2", "3", "4", "5", "6", "7"}},
			{Variable: "carrier", Encoding: model.OneHot, Vocabulary: carriers},
			{Variable: "origin", Encoding: model.OneHot, Vocabulary: airports},
			{Variable: "dest", Encoding: model.OneHot, Vocabulary: airports},
			{Variable: "month", Encoding: model.Standard, Mean: 6.5, Std: 3.45},
			{Variable: "day_of_month", Encoding: model.Standard, Mean: 15.7, Std: 8.8},
			{Variable: "day_of_year", Encoding: model.Standard, Mean: 183, Std: 105},
		},
		VectorLength: 80,
		Intercept:    -1.4,
		Threshold:    0.3,
		Training:     model.Training{Metrics: json.RawMessage(`{"auc":0.71,"accuracy":0.80}`), ToolVersion: "test"},
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(version))))
	m.Coefficients = make([]float64, 80)
	for i := range m.Coefficients {
		m.Coefficients[i] = rng.NormFloat64() * 0.5
	}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := m.Seal(); err != nil {
		t.Fatal(err)
	}
	return m
}

// saveModel writes m into dir and returns its path.
func saveModel(t testing.TB, dir string, m *model.Model) string {
	t.Helper()
	p := filepath.Join(dir, "model.json")
	if err := m.Save(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// testOptions are the command's defaults.
func testOptions() Options {
	return Options{
		Addr: "127.0.0.1:0", LogFormat: "text", LogLevel: "info",
		MaxBodyBytes: DefaultMaxBodyBytes, MaxBatch: DefaultMaxBatch, MaxHeaderBytes: DefaultMaxHeaderBytes,
		ReadHeaderTimeout: DefaultReadHeaderTimeout, ReadTimeout: DefaultReadTimeout,
		WriteTimeout: DefaultWriteTimeout, IdleTimeout: DefaultIdleTimeout,
		ShutdownTimeout: DefaultShutdownTimeout, WatchInterval: DefaultWatchInterval,
		PublicRoutes: DefaultPublicRoutes,
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestServer(t testing.TB, m *model.Model, opts Options) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := New(m, opts, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

// vectorJSON is the dense vector of f as a JSON array.
func vectorJSON(m *model.Model, f model.Flight) string {
	x := m.Encode(f, nil)
	var sb strings.Builder
	sb.WriteByte('[')
	for i, v := range x {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	}
	sb.WriteByte(']')
	return sb.String()
}

var atl = model.Flight{Month: 1, DayOfMonth: 5, DayOfWeek: 2, Origin: "ATL", Dest: "SEA", Carrier: "DL", CRSDepTime: 1905}
var jfk = model.Flight{Month: 7, DayOfMonth: 31, DayOfWeek: 5, Origin: "JFK", Dest: "LAX", Carrier: "B6", CRSDepTime: 700}

// do sends a request through the handler and returns the recorder.
func do(h http.Handler, method, path, contentType, body string, header ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// predictAnswer is the /predict answer, decoded.
type predictAnswer struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	Predictions  []struct {
		Probability float64 `json:"probability"`
		Delayed     bool    `json:"delayed"`
		Label       string  `json:"label"`
	} `json:"predictions"`
}

func decodeJSON[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	return v
}

// Short names for the model types in test tables.
type (
	modelT   = model.Model
	featureT = model.Feature
)
