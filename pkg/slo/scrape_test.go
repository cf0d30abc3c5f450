package slo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/slo"
)

// exposition renders delayctl serve's metrics for the counts given: requests by code on
// /predict, one series on /healthz that must be ignored, the duration histogram of
// /predict with cumulative counts at 0.1s, 0.4s, 1s and +Inf, and the resident memory.
func exposition(codes map[string]int, le01, le04, le1, count int, rss float64) string {
	var b strings.Builder
	b.WriteString("# HELP delayctl_http_requests_total Requests.\n# TYPE delayctl_http_requests_total counter\n")
	for _, c := range []string{"200", "404", "429", "500", "503"} {
		if n, ok := codes[c]; ok {
			fmt.Fprintf(&b, "delayctl_http_requests_total{code=%q,method=\"POST\",route=\"/predict\"} %d\n", c, n)
		}
	}
	fmt.Fprintf(&b, "delayctl_http_requests_total{code=\"500\",method=\"GET\",route=\"/healthz\"} %d\n", 1000+count)
	b.WriteString("# HELP delayctl_http_request_duration_seconds Duration.\n# TYPE delayctl_http_request_duration_seconds histogram\n")
	for _, bk := range []struct {
		le string
		n  int
	}{{"0.1", le01}, {"0.4", le04}, {"1", le1}, {"+Inf", count}} {
		fmt.Fprintf(&b, "delayctl_http_request_duration_seconds_bucket{method=\"POST\",route=\"/predict\",le=%q} %d\n", bk.le, bk.n)
	}
	fmt.Fprintf(&b, "delayctl_http_request_duration_seconds_sum{method=\"POST\",route=\"/predict\"} %d\n", count/10)
	fmt.Fprintf(&b, "delayctl_http_request_duration_seconds_count{method=\"POST\",route=\"/predict\"} %d\n", count)
	fmt.Fprintf(&b, "delayctl_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"} %d\n", 5000+count)
	fmt.Fprintf(&b, "delayctl_http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\"} %d\n", 5000+count)
	fmt.Fprintf(&b, "# HELP process_resident_memory_bytes RSS.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %g\n", rss)
	return b.String()
}

// twoScrapes serves before on the first request and after on every later one.
func twoScrapes(t *testing.T, before, after string) *httptest.Server {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		if n.Add(1) == 1 {
			fmt.Fprint(w, before)
			return
		}
		fmt.Fprint(w, after)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestScrapeDeltas(t *testing.T) {
	spec := `version: delayctl/v1
service: delayctl
objectives:
  - name: availability
    availability: {target: 99.5%}
  - name: strict
    availability: {target: 99.5%, rate_limited_bad: true}
  - name: p90
    latency: {percentile: p90, threshold: 400ms}
  - name: fast
    latency: {target: 95%, threshold: 250ms}
  - name: rps
    throughput: {min_rps: 15}
  - name: memory
    memory: {max: 256MB}
`
	// Between the scrapes: 1000 x 200, 5 x 429, 3 x 503 on /predict.
	// Histogram increase: 700 <= 0.1s, 950 <= 0.4s, 990 <= 1s, 1008 total.
	before := exposition(map[string]int{"200": 5000, "429": 10, "503": 2}, 3000, 4800, 4990, 5012, 100e6)
	after := exposition(map[string]int{"200": 6000, "429": 15, "503": 5}, 3700, 5750, 5980, 6020, 120e6)
	srv := twoScrapes(t, before, after)

	var out, errOut bytes.Buffer
	opts := slo.Options{SLOFile: writeFile(t, t.TempDir(), "slo.yaml", []byte(spec)), Scrape: srv.URL + "/metrics",
		Interval: time.Millisecond, Timeout: 5 * time.Second, Format: slo.FormatJSON, Now: fixedClock(t0, 60*time.Second)}
	err := slo.Run(context.Background(), opts, &out, &errOut)
	// strict breaches: 8 bad (5 x 429 + 3 x 503) of 1008 = 0.79% > 0.5%; availability
	// has 3 bad (503) = 0.30%.
	if !errors.Is(err, slo.ErrObjectiveMissed) || !strings.Contains(err.Error(), "strict") {
		t.Fatalf("error %v, want ErrObjectiveMissed naming strict", err)
	}
	got := decodeReport(t, out.Bytes())
	want := map[string]jsonVerdict{
		"availability": {Status: "met", Total: 1008, Good: 1005},
		"strict":       {Status: "breached", Total: 1008, Good: 1000},
		// 950 of 1008 <= 0.4s = 94.2% >= 90%: met. p90 rank 907.2 lies in (0.1s, 0.4s]:
		// 0.1 + 0.3 * (907.2-700)/(950-700) = 0.34864s.
		"p90": {Status: "met", Total: 1008, Good: 950, Value: 0.34864, Estimate: true},
		// 250ms is no bucket bound: 700 + 250 * 0.15/0.3 = 825 of 1008, an estimate, breached.
		"fast": {Status: "breached", Total: 1008, Good: 825, Estimate: true},
		// 1000 successful requests in 60s of the injected clock.
		"rps":    {Status: "met", Total: 1008, Good: 1000, Value: 1000.0 / 60},
		"memory": {Status: "met", Value: 120e6},
	}
	for name, w := range want {
		g := got[name]
		if g.Status != w.Status || math.Abs(g.Total-w.Total) > 1e-6 || math.Abs(g.Good-w.Good) > 1e-6 ||
			(w.Value != 0 && math.Abs(g.Value-w.Value) > 1e-6) || g.Estimate != w.Estimate {
			t.Errorf("%s = %+v, want %+v", name, g, w)
		}
	}
}

func TestScrapeTreatsACounterDropAsARestart(t *testing.T) {
	s := mustSLO(t, seedsSLO)
	before := exposition(map[string]int{"200": 5000, "503": 40}, 4000, 5000, 5040, 5040, 1e6)
	// The server restarted: every counter is small again.
	after := exposition(map[string]int{"200": 100, "503": 0}, 90, 100, 100, 100, 1e6)
	snap := func(text string) slo.Snapshot {
		srv := twoScrapes(t, text, text)
		m, err := slo.Scrape(context.Background(), http.DefaultClient, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	d, err := slo.Diff(s, snap(before), snap(after))
	if err != nil {
		t.Fatal(err)
	}
	m := d.Measure(s.Objectives[0], 60)
	if m.Total != 100 || m.Good != 100 {
		t.Errorf("after a restart availability %v/%v, want 100/100", m.Good, m.Total)
	}
}

func TestScrapeErrors(t *testing.T) {
	tests := map[string]struct {
		handler   http.HandlerFunc
		wantErr   string
		wantInput bool
	}{
		"A non-200 answer is a failure, not an input error.": {func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "nope", http.StatusServiceUnavailable) }, "status 503", false},
		"A page that is not an exposition is an input error.": {func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "<html>{not metrics}</html>\n")
		}, "could not parse metrics", true},
		"An endpoint without delayctl metrics is an input error.": {func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "# TYPE up gauge\nup 1\n")
		}, "delayctl_http_requests_total not found", true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			opts := slo.Options{SLOFile: "../../configs/slo.yaml", Scrape: srv.URL, Interval: time.Millisecond, Timeout: time.Second, Format: slo.FormatTable}
			err := slo.Run(context.Background(), opts, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || errors.Is(err, inputerr.Err) != tt.wantInput || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q (input error: %v)", err, tt.wantErr, tt.wantInput)
			}
		})
	}
}
