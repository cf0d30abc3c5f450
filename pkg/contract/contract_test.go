package contract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/delayctl/delayctl/pkg/slo"
	dto "github.com/prometheus/client_model/go"
	pmodel "github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// modelFile is a model trained by `delayctl train` on data/flightdata.csv (bench's fixture).
const modelFile = "../bench/testdata/model.json"

// everyKind is an SLO that reads every served series an objective can: 5xx, 429|5xx and
// 4xx|5xx on every route, and latency thresholds at the smallest, a whole-number and the
// largest bucket bound.
const everyKind = `version: delayctl/v1
service: delayctl
routes: '.*'
objectives:
  - name: avail
    availability: {target: 99.9%}
  - name: avail-429
    availability: {target: 99%, rate_limited_bad: true}
  - name: avail-4xx
    availability: {target: 99%, client_errors_bad: true}
  - name: fastest
    latency: {target: 99%, threshold: 500us}
  - name: one-second
    latency: {percentile: p99, threshold: 1s}
  - name: slowest
    latency: {target: 99.9%, threshold: 10s}
  - name: rps
    throughput: {min_rps: 1}
  - name: rss
    memory: {max: 1GiB}
`

// startServe starts a real delayctl serve handler on 127.0.0.1 and returns its /metrics
// snapshot before any request has been made.
func startServe(t *testing.T) (*httptest.Server, slo.Snapshot) {
	t.Helper()
	m, err := model.Load(modelFile)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(m, serve.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	snap, err := slo.Scrape(context.Background(), ts.Client(), ts.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return ts, snap
}

// served reports whether the snapshot has a series that every matcher of sel matches. The
// job matcher is Prometheus' target label, not the server's, and is left out.
func served(snap slo.Snapshot, sel *parser.VectorSelector) bool {
	name := sel.Name
	kind := ""
	for _, suffix := range []string{"_bucket", "_count"} {
		if base, ok := bytes.CutSuffix([]byte(name), []byte(suffix)); ok && snap[string(base)] != nil {
			name, kind = string(base), suffix
		}
	}
	fam := snap[name]
	if fam == nil {
		return false
	}
	for _, m := range fam.GetMetric() {
		for _, ls := range seriesOf(m, kind) {
			ok := true
			for _, mt := range sel.LabelMatchers {
				if mt.Name == pmodel.MetricNameLabel || mt.Name == "job" {
					continue
				}
				if !mt.Matches(ls[mt.Name]) {
					ok = false
				}
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// seriesOf lists the label sets a metric is stored as: one per bucket for _bucket.
func seriesOf(m *dto.Metric, kind string) []map[string]string {
	base := map[string]string{}
	for _, l := range m.GetLabel() {
		base[l.GetName()] = l.GetValue()
	}
	if kind != "_bucket" {
		return []map[string]string{base}
	}
	var out []map[string]string
	for _, b := range m.GetHistogram().GetBucket() {
		ls := map[string]string{contract.LabelLE: pmodel.SampleValue(b.GetUpperBound()).String()}
		for k, v := range base {
			ls[k] = v
		}
		out = append(out, ls)
	}
	return out
}

// selectors parses PromQL and returns the selectors of metrics no rule records.
func selectors(t *testing.T, expr string, recorded map[string]bool) []*parser.VectorSelector {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("%v in %s", err, expr)
	}
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && !recorded[vs.Name] {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

func TestEverySeriesTheRulesReadIsServedFromStartup(t *testing.T) {
	_, snap := startServe(t)
	for name, spec := range map[string]string{"configs/slo.yaml": "", "every kind of objective": everyKind} {
		t.Run(name, func(t *testing.T) {
			var s *slo.SLO
			var err error
			if spec == "" {
				s, err = slo.LoadFile("../../" + name)
			} else {
				s, err = slo.Load(bytes.NewReader([]byte(spec)), name)
			}
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := slo.WriteRules(&buf, s, slo.RulesOptions{Selector: `job="delayctl"`}); err != nil {
				t.Fatal(err)
			}
			groups, errs := rulefmt.Parse(buf.Bytes(), false, pmodel.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			recorded := map[string]bool{}
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					recorded[r.Record] = r.Record != ""
				}
			}
			n := 0
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					for _, sel := range selectors(t, r.Expr, recorded) {
						n++
						if !served(snap, sel) && !contract.DriftGauges[sel.Name] {
							t.Errorf("rule %s%s reads %s, which a fresh delayctl serve does not export", r.Record, r.Alert, sel)
						}
					}
				}
			}
			if n == 0 {
				t.Fatal("no rule reads a served metric")
			}
		})
	}
}

// TestEverySeriesTheReportQueriesIsServedFromStartup runs `slo report --prometheus`'s
// measurement against a stand-in Prometheus that records the queries, and checks each
// selector against a fresh server's /metrics.
func TestEverySeriesTheReportQueriesIsServedFromStartup(t *testing.T) {
	_, snap := startServe(t)
	s, err := slo.Load(bytes.NewReader([]byte(everyKind)), "every kind")
	if err != nil {
		t.Fatal(err)
	}
	var queries []string
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.FormValue("query"))
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{
			"resultType": "vector", "result": []any{map[string]any{"metric": map[string]string{}, "value": []any{0, "0"}}}}})
	}))
	defer prom.Close()
	if _, err := slo.PromMeasure(context.Background(), slo.PromClient{URL: prom.URL, Client: prom.Client()}, s, `job="delayctl"`, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(queries) < len(s.Objectives) {
		t.Fatalf("%d queries for %d objectives", len(queries), len(s.Objectives))
	}
	for _, q := range queries {
		for _, sel := range selectors(t, q, nil) {
			if !served(snap, sel) {
				t.Errorf("query %s reads %s, which a fresh delayctl serve does not export", q, sel)
			}
		}
	}
}

func TestServedSeriesAreBornAtZero(t *testing.T) {
	_, snap := startServe(t)
	reqs := snap[contract.Requests]
	if reqs == nil {
		t.Fatalf("no %s", contract.Requests)
	}
	have := map[[3]string]float64{}
	for _, m := range reqs.GetMetric() {
		ls := seriesOf(m, "")[0]
		have[[3]string{ls[contract.LabelRoute], ls[contract.LabelMethod], ls[contract.LabelCode]}] = m.GetCounter().GetValue()
	}
	// Every prediction route, for the method it takes, has a counter at 0 for every code, the
	// shed 503 and the rate-limited 429 among them.
	for _, route := range []string{contract.RoutePredict, contract.RouteV2Infer, contract.RouteV2VInfer, contract.RouteRoot} {
		for _, code := range contract.Codes {
			v, ok := have[[3]string{route, http.MethodPost, strconv.Itoa(code)}]
			if !ok || v != 0 {
				t.Errorf("%s{route=%q,method=\"POST\",code=\"%d\"} = %v (exported %v), want 0 from startup", contract.Requests, route, code, v, ok)
			}
		}
	}
	hist := snap[contract.Duration]
	if hist == nil || len(hist.GetMetric()) == 0 {
		t.Fatalf("no %s series at startup", contract.Duration)
	}
	routes := map[string]bool{}
	for _, m := range hist.GetMetric() {
		routes[seriesOf(m, "")[0][contract.LabelRoute]] = true
		var bounds []float64
		for _, b := range m.GetHistogram().GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) {
				bounds = append(bounds, b.GetUpperBound())
			}
		}
		if !slices.Equal(bounds, contract.DurationBuckets) {
			t.Fatalf("%s buckets %v, want the contract's %v", contract.Duration, bounds, contract.DurationBuckets)
		}
		for _, b := range bounds {
			if got, ok := slo.BucketFor(time.Duration(math.Round(b * 1e9))); !ok || got != b {
				t.Fatalf("slo does not judge a threshold at the served bound %v (got %v, %v)", b, got, ok)
			}
		}
	}
	for _, r := range contract.Routes {
		if !routes[r] {
			t.Errorf("route %q has no duration histogram at startup", r)
		}
	}
	for _, name := range []string{contract.Shed, contract.RateLimited, contract.InFlight, contract.RSS} {
		if snap[name] == nil {
			t.Errorf("%s is not exported at startup", name)
		}
	}
	if v := snap[contract.Shed].GetMetric()[0].GetCounter().GetValue(); v != 0 {
		t.Errorf("%s = %v at startup", contract.Shed, v)
	}
}

// TestScrapeReportSeesEveryCodeFromStartup: `slo report --scrape` reads the born series as
// increases of 0, so its first error counts.
func TestScrapeReportSeesEveryCodeFromStartup(t *testing.T) {
	ts, before := startServe(t)
	s, err := slo.LoadFile("../../configs/slo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Post(ts.URL+contract.RoutePredict, "application/json", bytes.NewReader([]byte(`{"x": [1]}`)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	after, err := slo.Scrape(context.Background(), ts.Client(), ts.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	d, err := slo.Diff(s, before, after)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range contract.Codes {
		want := 0.0
		if code == resp.StatusCode {
			want = 1
		}
		if got, ok := d.Codes[strconv.Itoa(code)]; !ok || got != want {
			t.Errorf("code %d: increase %v (seen %v), want %v", code, got, ok, want)
		}
	}
	m := d.Measure(s.Objectives[0], 1)
	if m.Total != 1 || math.IsNaN(m.Good) {
		t.Errorf("availability measured %+v, want 1 request", m)
	}
}
