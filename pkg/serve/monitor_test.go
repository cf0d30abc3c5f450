package serve

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/model"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// homeFlights draws flights from the "training" population: a few airports and carriers,
// daytime hours, the first half of the year.
func homeFlights(rng *rand.Rand, n int) []model.Flight {
	fs := make([]model.Flight, n)
	for i := range fs {
		fs[i] = model.Flight{Month: 1 + rng.IntN(6), DayOfMonth: 1 + rng.IntN(28), DayOfWeek: 1 + rng.IntN(7),
			Origin: []string{"ATL", "DTW", "MSP"}[rng.IntN(3)], Dest: []string{"SEA", "JFK"}[rng.IntN(2)],
			Carrier: "DL", CRSDepTime: (6+rng.IntN(14))*100 + 5}
	}
	return fs
}

// awayFlights come from airports and a season the model never saw, in the evening.
func awayFlights(rng *rand.Rand, n int) []model.Flight {
	fs := homeFlights(rng, n)
	for i := range fs {
		fs[i].Month, fs[i].Origin, fs[i].CRSDepTime = 10+rng.IntN(3), "XNA", 2100
	}
	return fs
}

// baselineModel is testModel with a baseline counted from home flights.
func baselineModel(t testing.TB) *model.Model {
	t.Helper()
	m := testModel(t, "drift")
	b := &model.Baseline{Source: "test", Features: make([]model.FeatureBaseline, len(m.Features))}
	for i, f := range m.Features {
		b.Features[i].Variable = f.Variable
		if f.Encoding == model.Standard {
			b.Features[i].Edges = []float64{2, 4, 6, 8, 10}
		}
	}
	b.Predictions = model.PredictionBaseline{Counts: make([]float64, 20), Positives: make([]float64, 20)}
	m.Baseline = b
	for i := range m.Features {
		b.Features[i].Counts = make([]float64, m.NumBins(i))
	}
	bins := make([]int32, len(m.Features))
	for _, f := range homeFlights(rand.New(rand.NewPCG(1, 2)), 2000) {
		m.BinFlight(&f, bins)
		for i, j := range bins {
			b.Features[i].Counts[j]++
		}
		p, _ := m.PredictFlight(&f)
		b.Predictions.Counts[model.PredictionBin(p, 20)]++
		b.Rows++
	}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	return m
}

func instancesJSON(fs []model.Flight) string {
	b, _ := json.Marshal(map[string]any{"instances": fs})
	return string(b)
}

// gathered returns the value of every sample of a metric family, keyed by its label values.
func gathered(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			var keys []string
			for _, l := range m.Label {
				keys = append(keys, l.GetValue())
			}
			out[strings.Join(keys, ",")] = sampleOf(m)
		}
	}
	return out
}

func sampleOf(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func TestDriftGauges(t *testing.T) {
	tests := map[string]struct {
		flights          []model.Flight
		asVectors        bool
		wantDrift        bool
		wantOriginUnseen float64
	}{
		"Named instances like the training rows do not drift.": {flights: homeFlights(rand.New(rand.NewPCG(7, 7)), 400)},
		"Vectors like the training rows do not drift either.":  {flights: homeFlights(rand.New(rand.NewPCG(8, 8)), 400), asVectors: true},
		"A new airport, season and hour drift.":                {flights: awayFlights(rand.New(rand.NewPCG(9, 9)), 400), wantDrift: true, wantOriginUnseen: 1},
		"Drifted vectors are caught too.":                      {flights: awayFlights(rand.New(rand.NewPCG(10, 10)), 400), asVectors: true, wantDrift: true, wantOriginUnseen: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := baselineModel(t)
			s, _ := newTestServer(t, m, testOptions())
			for i := 0; i < len(tc.flights); i += 50 {
				body := instancesJSON(tc.flights[i : i+50])
				if tc.asVectors {
					var rows []string
					for _, f := range tc.flights[i : i+50] {
						rows = append(rows, vectorJSON(m, f))
					}
					body = `{"x": [` + strings.Join(rows, ",") + `]}`
				}
				if w := do(s.Handler(), "POST", "/predict", "application/json", body); w.Code != 200 {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			reg := s.Registry()
			if n := gathered(t, reg, "delayctl_drift_window_predictions")[""]; n != float64(len(tc.flights)) {
				t.Fatalf("window holds %v predictions, want %d", n, len(tc.flights))
			}
			psi := gathered(t, reg, contract.DriftFeaturePSI)
			for _, v := range []string{"origin", "month", "dep_hour"} {
				if drifted := psi[v] > 0.25; drifted != tc.wantDrift {
					t.Errorf("%s PSI %.3f, want drifted = %v", v, psi[v], tc.wantDrift)
				}
			}
			if carrier := psi["carrier"]; carrier > 0.1 {
				t.Errorf("carrier PSI %.3f: the carrier did not change", carrier)
			}
			if u := gathered(t, reg, contract.DriftUnseenRatio)["origin"]; u != tc.wantOriginUnseen {
				t.Errorf("origin unseen ratio %v, want %v", u, tc.wantOriginUnseen)
			}
			obs := gathered(t, reg, "delayctl_drift_feature_observations_total")
			var dl float64
			for _, f := range tc.flights {
				if f.Carrier == "DL" {
					dl++
				}
			}
			if obs["DL,carrier"] != dl {
				t.Errorf("carrier DL counted %v times, want %v", obs["DL,carrier"], dl)
			}
			if _, ok := gathered(t, reg, contract.DriftPredictionPSI)[""]; !ok {
				t.Error("no prediction PSI")
			}
		})
	}
}

func TestDriftWindowSlides(t *testing.T) {
	m := baselineModel(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := newDrift(m, 12*time.Minute, func() time.Time { return now })
	bins := make([]int32, len(m.Features))
	for _, f := range homeFlights(rand.New(rand.NewPCG(3, 3)), 150) {
		m.BinFlight(&f, bins)
		d.observe(bins, 0.1)
	}
	// count sums the probability bins of the window (or of the running total).
	count := func(total bool) float64 {
		tot, w := d.snapshot()
		if total {
			w = tot
		}
		var n float64
		for _, v := range w[d.predOff:] {
			n += v
		}
		return n
	}
	now = now.Add(11 * time.Minute)
	if n := count(false); n != 150 {
		t.Fatalf("after 11 of 12 minutes the window holds %v, want 150", n)
	}
	now = now.Add(2 * time.Minute)
	if n := count(false); n != 0 {
		t.Fatalf("after the window passed it holds %v, want 0", n)
	}
	if n := count(true); n != 150 {
		t.Fatalf("the running total is %v, want 150", n)
	}
}

// Drift counting costs the hot path no allocation, for vectors and named instances.
func TestMonitorObserveDoesNotAllocate(t *testing.T) {
	m := baselineModel(t)
	s, _ := newTestServer(t, m, testOptions())
	lm := s.cur.Load()
	req, _ := http.NewRequest("POST", "/predict", nil)
	tests := map[string]*batch{
		"A vector.":         {vals: m.Encode(atl, nil), ends: []int{m.NumFeatures()}, probs: []float64{0.2}},
		"A named instance.": {flights: []model.Flight{atl}, named: true, probs: []float64{0.2}},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, func() { s.mon.observe(req, lm, b, b.probs) }); n != 0 {
				t.Errorf("%v allocations per prediction", n)
			}
		})
	}
}

func TestRotatingFileKeepsNFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pred.jsonl")
	r, err := openRotating(path, 25, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if _, err := fmt.Fprintf(r, "line %02d xxxxxxx\n", i); err != nil { // 17 bytes: one line per file
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pred.jsonl": "line 06 xxxxxxx\n", "pred.jsonl.1": "line 05 xxxxxxx\n", "pred.jsonl.2": "line 04 xxxxxxx\n"}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != len(want) {
		t.Errorf("%d files, want %d (keep 2 rotated)", len(entries), len(want))
	}
	for name, content := range want {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(path), name))
		if err != nil || string(b) != content {
			t.Errorf("%s = %q, %v; want %q", name, b, err, content)
		}
	}
}

// blockedWriter stands for a disk that stopped answering: writes wait until release.
type blockedWriter struct {
	release chan struct{}
	mu      sync.Mutex
	lines   int
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	w.lines++
	w.mu.Unlock()
	return len(p), nil
}
func (w *blockedWriter) Close() error { return nil }

func TestPredictionLogDropsWhenTheWriterFallsBehind(t *testing.T) {
	w := &blockedWriter{release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	l := newPredLog(w, 1, 4, reg)
	m := testModel(t, "log")
	e := logEntry{m: m, named: true, flight: atl, p: 0.4}
	done := make(chan struct{})
	go func() {
		for range 100 {
			l.offer(&e) // must never wait for the stuck writer
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("offer blocked behind a stuck writer")
	}
	close(w.release)
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	dropped := gathered(t, reg, "delayctl_prediction_log_dropped_total")[""]
	written := gathered(t, reg, "delayctl_prediction_log_written_total")[""]
	// The buffer holds 4 and the writer may have taken one more before it blocked.
	if written < 4 || written > 5 || dropped+written != 100 || float64(w.lines) != written {
		t.Errorf("written %v (file %d), dropped %v; want 4 or 5 written and the rest dropped", written, w.lines, dropped)
	}
}

func TestPredictionLogContent(t *testing.T) {
	m := testModel(t, "v7")
	path := filepath.Join(t.TempDir(), "pred.jsonl")
	opts := testOptions()
	opts.Monitor = MonitorOptions{PredictionLog: path, PredictionLogSample: 1, PredictionLogMaxBytes: 1 << 20, PredictionLogKeep: 1}
	s, _ := newTestServer(t, m, opts)
	do(s.Handler(), "POST", "/predict", "application/json", instancesJSON([]model.Flight{atl, jfk}), "X-Request-Id", "req-1")
	do(s.Handler(), "POST", "/predict", "application/json", `{"x": `+vectorJSON(m, jfk)+`}`, "X-Request-Id", "req-2")
	if err := s.mon.close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, v)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	pJFK, _ := m.PredictFlight(&jfk)
	tests := map[string]struct {
		line      int
		id        string
		instance  float64
		origin    any
		wantProbs float64
	}{
		"A named instance logs its fields.":        {0, "req-1", 0, "ATL", -1},
		"The second instance keeps its index.":     {1, "req-1", 1, "JFK", pJFK},
		"A vector logs the categories it encodes.": {2, "req-2", 0, "JFK", pJFK},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := lines[tc.line]
			if l["request_id"] != tc.id || l["instance"] != tc.instance || l["model_version"] != "v7" || l["model"] != m.Name {
				t.Errorf("line %v", l)
			}
			in, _ := l["inputs"].(map[string]any)
			if in["origin"] != tc.origin {
				t.Errorf("origin %v, want %v", in["origin"], tc.origin)
			}
			if _, err := time.Parse(time.RFC3339Nano, l["time"].(string)); err != nil {
				t.Error(err)
			}
			if tc.wantProbs >= 0 && l["probability"] != tc.wantProbs {
				t.Errorf("probability %v, want %v", l["probability"], tc.wantProbs)
			}
		})
	}
}

var _ io.WriteCloser = (*blockedWriter)(nil)

func TestMonitorOptionsRefuseMistakes(t *testing.T) {
	tests := map[string]struct {
		o    MonitorOptions
		want string
	}{
		"A window too short for its buckets.": {MonitorOptions{DriftWindow: time.Second}, "--drift-window must be at least 12s"},
		"A sample share above 1.":             {MonitorOptions{PredictionLog: "p.jsonl", PredictionLogSample: 2}, "--prediction-log-sample must be in (0, 1]"},
		"The model file as the log.":          {MonitorOptions{PredictionLog: "./m.json", PredictionLogSample: 1}, "is the model file"},
		"A negative size.":                    {MonitorOptions{PredictionLog: "p.jsonl", PredictionLogSample: 1, PredictionLogMaxBytes: -1}, "must not be negative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.o.validate("m.json")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// BenchmarkMonitorObserve is what drift counting adds to one prediction: binning plus one
// atomic increment per feature and one for the probability.
func BenchmarkMonitorObserve(b *testing.B) {
	m := baselineModel(b)
	s, _ := newTestServer(b, m, testOptions())
	lm := s.cur.Load()
	req, _ := http.NewRequest("POST", "/predict", nil)
	for name, bt := range map[string]*batch{
		"vector":   {vals: m.Encode(atl, nil), ends: []int{m.NumFeatures()}, probs: []float64{0.2}},
		"instance": {flights: []model.Flight{atl}, named: true, probs: []float64{0.2}},
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.mon.observe(req, lm, bt, bt.probs)
			}
		})
	}
}

// A model without a baseline is counted but gets no PSI: there is nothing to compare with.
func TestDriftWithoutBaselineCountsOnly(t *testing.T) {
	m := testModel(t, "old")
	s, _ := newTestServer(t, m, testOptions())
	body := instancesJSON(homeFlights(rand.New(rand.NewPCG(4, 4)), 200))
	if w := do(s.Handler(), "POST", "/predict", "application/json", body); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	reg := s.Registry()
	if got := gathered(t, reg, "delayctl_drift_feature_observations_total")["DL,carrier"]; got != 200 {
		t.Errorf("carrier DL counted %v times, want 200", got)
	}
	for _, name := range []string{"delayctl_drift_feature_psi", "delayctl_drift_prediction_psi", "delayctl_drift_feature_unseen_ratio"} {
		if got := gathered(t, reg, name); len(got) != 0 {
			t.Errorf("%s exported without a baseline: %v", name, got)
		}
	}
}
