package slo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/google/go-cmp/cmp"
)

// fakeProm answers /api/v1/query with the value of the first rule whose needle the query
// contains, as a one-sample vector; no match gives an empty vector.
type fakeProm struct {
	t     *testing.T
	rules []struct{ needle, value string }
	mu    sync.Mutex
	seen  []string
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	q, at := r.FormValue("query"), r.FormValue("time")
	f.mu.Lock()
	f.seen = append(f.seen, q)
	f.mu.Unlock()
	if want := fmt.Sprint(t0.Unix()); at != want {
		f.t.Errorf("query time %q, want %q", at, want)
	}
	result := "[]"
	for _, rule := range f.rules {
		if strings.Contains(q, rule.needle) {
			result = fmt.Sprintf(`[{"metric":{},"value":[%d,%q]}]`, t0.Unix(), rule.value)
			break
		}
	}
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":%s}}`, result)
}

func TestPrometheusQueries(t *testing.T) {
	spec := `version: delayctl/v1
service: delayctl
window: 30d
objectives:
  - name: availability
    availability: {target: 99.9%}
  - name: p90
    latency: {percentile: p90, threshold: 400ms}
  - name: rps
    throughput: {min_rps: 1}
  - name: memory
    memory: {max: 256MB}
`
	fp := &fakeProm{t: t, rules: []struct{ needle, value string }{
		// Order matters: more specific needles first.
		{`histogram_quantile(0.9`, "0.12"},
		{`le="0.4"`, "999000"},
		{`_count{`, "1000000"},
		{`code=~"2..|3..",job="delayctl"}[30d])) / 2592000`, "1"}, // successes over 30 days in seconds
		{`sum(increase(delayctl_http_requests_total{route=~"/|/predict|/v2/models/[^/]+/infer",job="delayctl"}[30d])) - (`, "999200"},
		{`sum(increase(delayctl_http_requests_total{route=~"/|/predict|/v2/models/[^/]+/infer",job="delayctl"}[30d]))`, "1000000"},
		{`max_over_time(process_resident_memory_bytes{job="delayctl"}[30d])`, "300000000"},
	}}
	srv := httptest.NewServer(fp)
	defer srv.Close()
	var out bytes.Buffer
	opts := slo.Options{SLOFile: writeFile(t, t.TempDir(), "slo.yaml", []byte(spec)), Prometheus: srv.URL, Selector: `job="delayctl"`,
		Timeout: 5e9, Format: slo.FormatJSON, Now: func() time.Time { return t0 }}
	err := slo.Run(context.Background(), opts, &out, &bytes.Buffer{})
	if !errors.Is(err, slo.ErrObjectiveMissed) || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("error %v, want memory missed", err)
	}
	got := decodeReport(t, out.Bytes())
	want := map[string]jsonVerdict{
		// 800 bad of 1,000,000 = 0.08% <= 0.1%.
		"availability": {Status: "met", Total: 1e6, Good: 999200},
		"p90":          {Status: "met", Total: 1e6, Good: 999000, Value: 0.12, Estimate: true},
		// the query divides successes by the 30 days' 2,592,000 seconds.
		"rps":    {Status: "met", Value: 1},
		"memory": {Status: "breached", Value: 3e8},
	}
	for name, w := range want {
		if g := got[name]; g != w {
			t.Errorf("%s = %+v, want %+v", name, g, w)
		}
	}
	var rep struct {
		PeriodSeconds float64 `json:"period_seconds"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.PeriodSeconds != 30*86400 {
		t.Errorf("period %v s, want the 30d window (%v)", rep.PeriodSeconds, err)
	}
	for _, q := range fp.seen {
		if !strings.Contains(q, `job="delayctl"`) {
			t.Errorf("query %q lacks the selector", q)
		}
	}
}

func TestPrometheusErrors(t *testing.T) {
	tests := map[string]struct {
		body      string
		wantErr   string
		wantInput bool
	}{
		"A query Prometheus rejects is an input error.":      {`{"status":"error","errorType":"bad_data","error":"parse error"}`, "bad_data: parse error", true},
		"A query that fails inside Prometheus is a failure.": {`{"status":"error","errorType":"timeout","error":"query timed out"}`, "timeout: query timed out", false},
		"A body that is not the API's is an input error.":    {`<html>proxy login</html>`, "not its API's JSON", true},
		"Several series are refused.": {`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}`,
			"returned 2 series", true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, tt.body) }))
			defer srv.Close()
			opts := slo.Options{SLOFile: "../../configs/slo-99.yaml", Prometheus: srv.URL, Timeout: 5e9, Format: slo.FormatTable}
			err := slo.Run(context.Background(), opts, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || errors.Is(err, inputerr.Err) != tt.wantInput || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q (input error: %v)", err, tt.wantErr, tt.wantInput)
			}
		})
	}
}

func TestPrometheusMeasuresPromQLObjectives(t *testing.T) {
	fp := &fakeProm{t: t, rules: []struct{ needle, value string }{
		// sli.raw: an error ratio, no counts.
		{`1 - sum(`, "0.98"},
		{`vector(1)`, "1"},
		// sli.events over another service's metric: per-second rates times the 30 days' seconds.
		{`(sum(sum(rate(http_request_duration_seconds_count{job="gateway"}[30d]))) - (sum(sum(rate(http_request_duration_seconds_count{job="gateway",code=~"(5..|429)"}[30d]))) or vector(0))) * 2592000`, "2589408"},
		{`sum(sum(rate(http_request_duration_seconds_count{job="gateway"}[30d]))) * 2592000`, "2592000"},
		// the objectives mapped onto delayctl's metrics are measured as delayctl's own.
		{`le="0.3"`, "995000"},
		{`_count{route=~"/predict"}[30d]`, "1000000"},
		{`delayctl_http_requests_total{route=~"/predict"}[30d])) - (`, "999200"},
		{`delayctl_http_requests_total{route=~"/predict"}[30d]))`, "1000000"},
	}}
	srv := httptest.NewServer(fp)
	defer srv.Close()
	var out bytes.Buffer
	opts := slo.Options{SLOFile: "testdata/interop/sloth.yaml", Prometheus: srv.URL, Timeout: 5e9, Format: slo.FormatJSON, Now: func() time.Time { return t0 }}
	if err := slo.Run(context.Background(), opts, &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("%v; queries:\n%s", err, strings.Join(fp.seen, "\n"))
	}
	want := map[string]jsonVerdict{
		"requests-availability": {Status: "met", Total: 1e6, Good: 999200},
		"requests-latency":      {Status: "met", Total: 1e6, Good: 995000},
		"gateway-availability":  {Status: "met", Total: 2592000, Good: 2589408},
		"gateway-raw":           {Status: "met", Total: 1, Good: 0.98},
	}
	if diff := cmp.Diff(want, decodeReport(t, out.Bytes())); diff != "" {
		t.Errorf("verdicts differ (-want +got):\n%s\nqueries:\n%s", diff, strings.Join(fp.seen, "\n"))
	}
}

func TestPromQLObjectivesInTheTable(t *testing.T) {
	fp := &fakeProm{t: t, rules: []struct{ needle, value string }{{`1 - sum(`, "0.98"}, {`vector(1)`, "1"}, {`[30d]))) - (`, "990"}, {`[30d]`, "1000"}}}
	srv := httptest.NewServer(fp)
	defer srv.Close()
	var out bytes.Buffer
	opts := slo.Options{SLOFile: "testdata/interop/sloth.yaml", Prometheus: srv.URL, Timeout: 5e9, Format: slo.FormatTable, Now: func() time.Time { return t0 }}
	if err := slo.Run(context.Background(), opts, &out, &bytes.Buffer{}); !errors.Is(err, slo.ErrObjectiveMissed) {
		t.Fatalf("got %v, want gateway-availability breached (99%% < 99.5%%)", err)
	}
	for _, want := range []string{
		"gateway-availability   good events >= 99.5% (sloth slos[2].sli.events)  99%",
		"gateway-raw            good events >= 95% (sloth slos[3].sli.raw)       98%",
		"gateway-raw: the PromQL is an error ratio, so the events are shares of 1, not counts",
		"BREACHED: gateway-availability\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
