package serve

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMetricsCountRequestsPredictionsAndTheModel(t *testing.T) {
	m := testModel(t, "v1")
	s, _ := newTestServer(t, m, testOptions())
	pa, _ := m.PredictFlight(&atl)
	pj, _ := m.PredictFlight(&jfk)
	delayed := 0
	for _, p := range []float64{pa, pj} {
		if m.Delayed(p) {
			delayed++
		}
	}
	h := s.Handler()
	do(h, "POST", "/predict", "application/json", `{"x": [`+vectorJSON(m, atl)+`,`+vectorJSON(m, jfk)+`]}`)
	do(h, "POST", "/predict", "application/json", `{"x": [1]}`)
	do(h, "GET", "/predict", "", "")
	do(h, "GET", "/healthz", "", "")
	do(h, "BREW", "/healthz", "", "")
	do(h, "GET", "/nope", "", "")

	want := `
# HELP delayctl_http_requests_total HTTP requests answered, by route (mux pattern), method and status code.
# TYPE delayctl_http_requests_total counter
delayctl_http_requests_total{code="200",method="GET",route="/healthz"} 1
delayctl_http_requests_total{code="200",method="POST",route="/predict"} 1
delayctl_http_requests_total{code="404",method="GET",route="unmatched"} 1
delayctl_http_requests_total{code="405",method="GET",route="/predict"} 1
delayctl_http_requests_total{code="405",method="other",route="/healthz"} 1
delayctl_http_requests_total{code="422",method="POST",route="/predict"} 1
# HELP delayctl_predictions_total Instances predicted, by predicted label.
# TYPE delayctl_predictions_total counter
delayctl_predictions_total{label="delayed"} ` + strconv.Itoa(delayed) + `
delayctl_predictions_total{label="on_time"} ` + strconv.Itoa(2-delayed) + `
# HELP delayctl_model_info The model being served (always 1).
# TYPE delayctl_model_info gauge
delayctl_model_info{checksum="` + m.Checksum + `",name="flight-delay",version="v1"} 1
# HELP delayctl_model_reloads_total Model reloads by result: success (swapped in) or failure (refused; the old model keeps serving).
# TYPE delayctl_model_reloads_total counter
delayctl_model_reloads_total{result="failure"} 0
delayctl_model_reloads_total{result="success"} 0
# HELP delayctl_http_requests_in_flight HTTP requests being handled right now.
# TYPE delayctl_http_requests_in_flight gauge
delayctl_http_requests_in_flight 0
# HELP delayctl_shed_requests_total Requests answered 503 because the server is overloaded, for any reason (delayctl_shed_requests_by_reason_total splits them).
# TYPE delayctl_shed_requests_total counter
delayctl_shed_requests_total 0
# HELP delayctl_panics_total Handler panics recovered and answered 500.
# TYPE delayctl_panics_total counter
delayctl_panics_total 0
`
	got := dropZeroRequests(gatherText(t, s.Registry(), "delayctl_http_requests_total", "delayctl_predictions_total", "delayctl_model_info",
		"delayctl_model_reloads_total", "delayctl_http_requests_in_flight", "delayctl_shed_requests_total",
		"delayctl_panics_total"))
	if diff := cmp.Diff(gatherText(t, parseText(t, want)), got); diff != "" {
		t.Errorf("metrics differ (-want +got):\n%s", diff)
	}
	// Born at zero: a histogram per route and method it takes (GET and POST for unmatched
	// paths), and a counter per code of contract.Codes on each, before any such request.
	if n := len(gatherFamily(t, s.Registry(), "delayctl_http_request_duration_seconds").GetMetric()); n != 33 {
		t.Errorf("%d duration series, want 33 (one per route and method it takes)", n)
	}
	if n, want := len(gatherFamily(t, s.Registry(), "delayctl_http_requests_total").GetMetric()), 31*len(contract.Codes)+2; n != want {
		t.Errorf("%d request series, want %d (each code on the 31 routes and methods served, plus the 405s of BREW and GET /predict)", n, want)
	}

	rec := do(h, "GET", "/metrics", "", "")
	for _, name := range []string{"delayctl_http_request_duration_seconds_bucket{method=\"POST\",route=\"/predict\",le=\"0.0005\"}",
		"process_resident_memory_bytes", "go_goroutines", "delayctl_rate_limited_requests_total 0"} {
		if !strings.Contains(rec.Body.String(), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestSheddingAnswers503AtOnceBeyondMaxInflight(t *testing.T) {
	m := testModel(t, "v1")
	opts := testOptions()
	opts.MaxInflight = 2
	s, _ := newTestServer(t, m, opts)
	entered, release := make(chan struct{}), make(chan struct{})
	s.beforeCompute = func() {
		entered <- struct{}{}
		<-release
	}
	body := `{"x": ` + vectorJSON(m, atl) + `}`
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() { codes[i] = do(s.Handler(), "POST", "/predict", "application/json", body).Code })
		<-entered
	}
	rec := do(s.Handler(), "POST", "/v2/models/flight-delay/infer", "application/json",
		`{"inputs":[{"name":"x","shape":[1,80],"datatype":"FP64","data":`+vectorJSON(m, atl)+`}]}`)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), "overloaded") {
		t.Errorf("third request: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if rec := do(s.Handler(), "GET", "/readyz", "", ""); rec.Code != 200 {
		t.Errorf("probes must not be shed: /readyz %d", rec.Code)
	}
	close(release)
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("the accepted requests got %v", codes)
	}
	s.beforeCompute = nil
	if rec := do(s.Handler(), "POST", "/predict", "application/json", body); rec.Code != 200 {
		t.Errorf("after the load: %d", rec.Code)
	}
	if got := value(t, s.met.shed); got != 1 {
		t.Errorf("shed counter %v, want 1", got)
	}
}

func TestPanicsAreRecoveredLoggedAndCounted(t *testing.T) {
	s, logs := newTestServer(t, testModel(t, "v1"), testOptions())
	tests := map[string]struct {
		handler http.HandlerFunc
		status  int
	}{
		"A panic before the answer is a JSON 500.": {func(http.ResponseWriter, *http.Request) { panic("boom") }, 500},
		"A panic after the header keeps the status written.": {func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			panic("late boom")
		}, 202},
	}
	n := 0.0
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := s.instrument("/predict", []string{http.MethodPost}, s.recoverer("/predict", tc.handler))
			rec := func() (rec *httptest.ResponseRecorder) {
				rec = httptest.NewRecorder()
				defer func() {
					if v := recover(); v != nil && v != http.ErrAbortHandler {
						t.Errorf("panic %v escaped", v)
					}
				}()
				h.ServeHTTP(rec, httptest.NewRequest("POST", "/predict", nil))
				return rec
			}()
			n++
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.status == 500 && !strings.Contains(rec.Body.String(), `"error":"internal error`) {
				t.Errorf("500 body %s", rec.Body)
			}
			if got := value(t, s.met.panics); got != n {
				t.Errorf("panics counter %v, want %v", got, n)
			}
			if got := value(t, s.met.requests.WithLabelValues("/predict", "POST", strconv.Itoa(tc.status))); got != 1 {
				t.Errorf("requests{code=%d} = %v, want 1", tc.status, got)
			}
		})
	}
	if !strings.Contains(logs.String(), "handler panic recovered") || !strings.Contains(logs.String(), "late boom") {
		t.Errorf("panics not logged:\n%s", logs)
	}
}

// gatherText renders the named metric families of g in the text exposition format, sorted as
// the registry sorts them: the "equivalent" of testutil.GatherAndCompare without its extra
// module.
func gatherText(t testing.TB, g prometheus.Gatherer, names ...string) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, mf := range mfs {
		if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
			continue
		}
		if _, err := expfmt.MetricFamilyToText(&sb, mf); err != nil {
			t.Fatal(err)
		}
	}
	return sb.String()
}

// dropZeroRequests leaves out the delayctl_http_requests_total series still at 0: the ones
// born at startup that no request has reached.
func dropZeroRequests(text string) string {
	var keep []string
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(line, "delayctl_http_requests_total{") && strings.HasSuffix(line, "} 0\n") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "")
}

// parseText reads expected metrics written in the text format into a Gatherer.
func parseText(t testing.TB, text string) prometheus.Gatherer {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("expected metrics: %v", err)
	}
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, mf := range fams {
			out = append(out, mf)
		}
		slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
		return out, nil
	})
}

func gatherFamily(t testing.TB, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return &dto.MetricFamily{}
}

// value reads one counter or gauge.
func value(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
