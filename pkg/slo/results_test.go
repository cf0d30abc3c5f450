package slo_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/results"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// verdict is the part of an ObjectiveResult the hand computations below check.
type verdict struct {
	Status      slo.Status
	Total, Good float64
	SLI         float64
	Allowed     float64
	Consumed    float64
	BurnRate    float64
}

func verdictOf(r slo.ObjectiveResult) verdict {
	v := verdict{Status: r.Status, Total: r.Total, Good: r.Good, SLI: float64(r.SLI), Allowed: math.NaN(), Consumed: math.NaN(), BurnRate: math.NaN()}
	if b := r.Budget; b != nil {
		v.Allowed, v.Consumed, v.BurnRate = b.Allowed, float64(b.Consumed), float64(b.BurnRate)
	}
	return v
}

func assertVerdicts(t *testing.T, rep *slo.Report, want map[string]verdict) {
	t.Helper()
	got := map[string]verdict{}
	for _, r := range rep.Objectives {
		got[r.Name] = verdictOf(r)
	}
	if d := cmp.Diff(want, got, approx, cmpopts.EquateNaNs()); d != "" {
		t.Errorf("verdicts (-want +got):\n%s", d)
	}
}

func evaluate(s *slo.SLO, rs []vegeta.Result) *slo.Report {
	acc := slo.NewResults(s)
	for i := range rs {
		acc.Add(&rs[i])
	}
	return slo.EvaluateResults(s, acc, []string{"mem"}, t0)
}

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestAvailabilityFromResults(t *testing.T) {
	const spec = `version: delayctl/v1
service: s
objectives:
  - name: a
    availability: {target: 99%}
  - name: strict
    availability: {target: 99%, rate_limited_bad: true, client_errors_bad: true}
`
	s := mustSLO(t, spec)
	ms := time.Millisecond
	tests := map[string]struct {
		results []vegeta.Result
		want    map[string]verdict
	}{
		"No requests leaves both objectives without data.": {
			results: nil,
			want: map[string]verdict{
				"a":      {Status: slo.StatusNoData, SLI: math.NaN(), Allowed: math.NaN(), Consumed: math.NaN(), BurnRate: math.NaN()},
				"strict": {Status: slo.StatusNoData, SLI: math.NaN(), Allowed: math.NaN(), Consumed: math.NaN(), BurnRate: math.NaN()},
			},
		},
		"All requests failing with transport errors breach with burn rate 100.": {
			results: run(10, func(int) (uint16, time.Duration) { return 0, ms }),
			// 10 bad of 10; budget 1% of 10 = 0.1; consumed 10/0.1 = 100; burn (10/10)/0.01 = 100.
			want: map[string]verdict{
				"a":      {Status: slo.StatusBreached, Total: 10, Good: 0, SLI: 0, Allowed: 0.1, Consumed: 100, BurnRate: 100},
				"strict": {Status: slo.StatusBreached, Total: 10, Good: 0, SLI: 0, Allowed: 0.1, Consumed: 100, BurnRate: 100},
			},
		},
		"Exactly at target (1 bad in 100 at 99%) is met with the budget used up.": {
			results: run(100, func(i int) (uint16, time.Duration) {
				if i == 7 {
					return 503, ms
				}
				return 200, ms
			}),
			want: map[string]verdict{
				"a":      {Status: slo.StatusMet, Total: 100, Good: 99, SLI: 0.99, Allowed: 1, Consumed: 1, BurnRate: 1},
				"strict": {Status: slo.StatusMet, Total: 100, Good: 99, SLI: 0.99, Allowed: 1, Consumed: 1, BurnRate: 1},
			},
		},
		"A 429 and a 404 are good by default and bad when configured.": {
			results: run(100, func(i int) (uint16, time.Duration) {
				switch i {
				case 1:
					return 429, ms
				case 2:
					return 404, ms
				}
				return 200, ms
			}),
			// strict: 2 bad of 100, allowed 1: consumed 2, burn (2/100)/0.01 = 2.
			want: map[string]verdict{
				"a":      {Status: slo.StatusMet, Total: 100, Good: 100, SLI: 1, Allowed: 1, Consumed: 0, BurnRate: 0},
				"strict": {Status: slo.StatusBreached, Total: 100, Good: 98, SLI: 0.98, Allowed: 1, Consumed: 2, BurnRate: 2},
			},
		},
		"Requests outside the routes are not counted.": {
			results: func() []vegeta.Result {
				rs := run(4, func(i int) (uint16, time.Duration) { return 200, ms })
				rs[0].URL, rs[0].Code = "http://127.0.0.1:8080/healthz", 500
				rs[1].URL = "http://127.0.0.1:8080/v2/models/delay/infer?trace=1"
				rs[2].URL = "http://127.0.0.1:8080"
				return rs
			}(),
			want: map[string]verdict{
				"a":      {Status: slo.StatusMet, Total: 3, Good: 3, SLI: 1, Allowed: 0.03, Consumed: 0, BurnRate: 0},
				"strict": {Status: slo.StatusMet, Total: 3, Good: 3, SLI: 1, Allowed: 0.03, Consumed: 0, BurnRate: 0},
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			rep := evaluate(s, tt.results)
			assertVerdicts(t, rep, tt.want)
		})
	}
}

func TestLatencyFromResults(t *testing.T) {
	const spec = `version: delayctl/v1
service: s
objectives:
  - name: p90
    latency: {percentile: p90, threshold: 400ms}
  - name: fast
    latency: {target: 99%, threshold: 300ms}
`
	s := mustSLO(t, spec)
	ms := time.Millisecond
	tests := map[string]struct {
		results  []vegeta.Result
		want     map[string]verdict
		wantP90  time.Duration
		wantNote string
	}{
		"Latencies 10ms..100ms in 10 steps: p90 is 90ms and all are fast.": {
			results: run(10, func(i int) (uint16, time.Duration) { return 200, time.Duration(i+1) * 10 * ms }),
			want: map[string]verdict{
				"p90":  {Status: slo.StatusMet, Total: 10, Good: 10, SLI: 1, Allowed: 1, Consumed: 0, BurnRate: 0},
				"fast": {Status: slo.StatusMet, Total: 10, Good: 10, SLI: 1, Allowed: 0.1, Consumed: 0, BurnRate: 0},
			},
			wantP90: 90 * ms,
		},
		"A request exactly at the threshold counts as fast.": {
			// 9 at 400ms and 1 at 401ms: 9 of 10 <= 400ms = 90%, met exactly; p90 = 400ms.
			results: run(10, func(i int) (uint16, time.Duration) {
				if i == 9 {
					return 200, 401 * ms
				}
				return 200, 400 * ms
			}),
			want: map[string]verdict{
				"p90":  {Status: slo.StatusMet, Total: 10, Good: 9, SLI: 0.9, Allowed: 1, Consumed: 1, BurnRate: 1},
				"fast": {Status: slo.StatusBreached, Total: 10, Good: 0, SLI: 0, Allowed: 0.1, Consumed: 100, BurnRate: 100},
			},
			wantP90: 400 * ms,
		},
		"Two slow requests in ten break p90; p90 is the 9th smallest.": {
			results: run(10, func(i int) (uint16, time.Duration) {
				if i >= 8 {
					return 200, time.Second + time.Duration(i)*ms
				}
				return 200, 5 * ms
			}),
			// 8 of 10 fast: SLI 0.8, allowed 1, bad 2: consumed 2, burn 0.2/0.1 = 2.
			want: map[string]verdict{
				"p90":  {Status: slo.StatusBreached, Total: 10, Good: 8, SLI: 0.8, Allowed: 1, Consumed: 2, BurnRate: 2},
				"fast": {Status: slo.StatusBreached, Total: 10, Good: 8, SLI: 0.8, Allowed: 0.1, Consumed: 20, BurnRate: 20},
			},
			wantP90: time.Second + 8*ms,
		},
		"Transport errors count as slow even when they fail fast.": {
			results: run(10, func(i int) (uint16, time.Duration) {
				if i < 2 {
					return 0, ms
				}
				return 200, ms
			}),
			want: map[string]verdict{
				"p90":  {Status: slo.StatusBreached, Total: 10, Good: 8, SLI: 0.8, Allowed: 1, Consumed: 2, BurnRate: 2},
				"fast": {Status: slo.StatusBreached, Total: 10, Good: 8, SLI: 0.8, Allowed: 0.1, Consumed: 20, BurnRate: 20},
			},
			wantP90: time.Duration(math.MaxInt64),
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			rep := evaluate(s, tt.results)
			assertVerdicts(t, rep, tt.want)
			p90 := time.Duration(float64(rep.Objectives[0].Value) * 1e9)
			if float64(rep.Objectives[0].Value) >= float64(math.MaxInt64)/1e9 {
				p90 = time.Duration(math.MaxInt64)
			}
			// pkg/latency is at most 0.1% above the exact value and never below it.
			if p90 < tt.wantP90 || float64(p90) > float64(tt.wantP90)*1.001 {
				t.Errorf("p90 = %v, want %v (+0.1%%)", p90, tt.wantP90)
			}
		})
	}
}

func TestThroughputFromResults(t *testing.T) {
	s := mustSLO(t, `version: delayctl/v1
service: s
objectives:
  - name: rps
    throughput: {min_rps: 8}
`)
	// 20 requests 100ms apart, the last ending 100ms after it started: span 2s.
	// 17 succeeded (3 were 503), so 8.5 successful req/s >= 8.
	rs := run(20, func(i int) (uint16, time.Duration) {
		if i%7 == 3 {
			return 503, 100 * time.Millisecond
		}
		return 200, 100 * time.Millisecond
	})
	rep := evaluate(s, rs)
	got := rep.Objectives[0]
	if got.Status != slo.StatusMet || math.Abs(float64(got.Value)-8.5) > 1e-9 {
		t.Errorf("throughput = %v %s, want 8.5 met", got.Value, got.Status)
	}
	if rep.Source.Period != 2*time.Second {
		t.Errorf("period = %v, want 2s", rep.Source.Period)
	}
}

func TestMemoryIsSkippedForResults(t *testing.T) {
	rep := evaluate(mustSLO(t, seedsSLO), run(10, func(int) (uint16, time.Duration) { return 200, time.Millisecond }))
	mem := rep.Objectives[2]
	if mem.Status != slo.StatusSkipped || !rep.Met {
		t.Errorf("memory status %s, report met %v; want skipped and met", mem.Status, rep.Met)
	}
	if !strings.Contains(rep.Verdict, "not evaluated: memory") {
		t.Errorf("verdict %q does not say memory was not evaluated", rep.Verdict)
	}
}

func TestEveryEncodingReadsTheSame(t *testing.T) {
	s := mustSLO(t, seedsSLO)
	rs := run(50, func(i int) (uint16, time.Duration) {
		switch {
		case i%10 == 0:
			return 0, 2 * time.Millisecond
		case i%10 == 1:
			return 500, time.Second
		}
		return 200, time.Duration(i) * time.Millisecond
	})
	want := evaluate(s, rs)
	for _, encoding := range []string{"gob", "json", "csv"} {
		t.Run(encoding, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "run."+encoding, encode(t, rs, encoding))
			acc := slo.NewResults(s)
			if err := slo.ReadResultsFiles(context.Background(), []string{p}, nil, acc); err != nil {
				t.Fatal(err)
			}
			got := slo.EvaluateResults(s, acc, []string{"mem"}, t0)
			if d := cmp.Diff(verdicts(want), verdicts(got), approx, cmpopts.EquateNaNs()); d != "" {
				t.Errorf("%s decodes differently (-want +got):\n%s", encoding, d)
			}
		})
	}
}

func verdicts(rep *slo.Report) []verdict {
	var out []verdict
	for _, r := range rep.Objectives {
		out = append(out, verdictOf(r))
	}
	return out
}

func TestMergingFilesEqualsOneRun(t *testing.T) {
	s := mustSLO(t, seedsSLO)
	rs := run(90, func(i int) (uint16, time.Duration) {
		if i%9 == 0 {
			return 503, 450 * time.Millisecond
		}
		return 200, time.Duration(i) * time.Millisecond
	})
	dir := t.TempDir()
	// Three files, three encodings; the gob file alternates errors and successes, which
	// catches a decoder that reuses a Result without clearing it.
	files := []string{
		writeFile(t, dir, "a.bin", encode(t, rs[:30], "gob")),
		writeFile(t, dir, "b.json", encode(t, rs[30:60], "json")),
		writeFile(t, dir, "c.csv", encode(t, rs[60:], "csv")),
		writeFile(t, dir, "empty.bin", nil),
	}
	acc := slo.NewResults(s)
	if err := slo.ReadResultsFiles(context.Background(), files, nil, acc); err != nil {
		t.Fatal(err)
	}
	if acc.Seen() != 90 {
		t.Fatalf("read %d results, want 90", acc.Seen())
	}
	got := slo.EvaluateResults(s, acc, files, t0)
	if d := cmp.Diff(verdicts(evaluate(s, rs)), verdicts(got), approx, cmpopts.EquateNaNs()); d != "" {
		t.Errorf("merged files differ from one run (-want +got):\n%s", d)
	}
	// 10 of 90 are 503: availability 80/90.
	if a := got.Objectives[0]; a.Good != 80 || a.Total != 90 {
		t.Errorf("availability %v/%v, want 80/90", a.Good, a.Total)
	}
}

func TestReadResultsErrors(t *testing.T) {
	s := mustSLO(t, seedsSLO)
	good := encode(t, run(3, func(int) (uint16, time.Duration) { return 200, time.Millisecond }), "json")
	tests := map[string]struct {
		data    []byte
		wantErr string
	}{
		"A file in no vegeta encoding is refused.":         {[]byte("hello, world\n"), "not in vegeta's gob, JSON or CSV encoding"},
		"A broken JSON line names the broken line.":        {append(append(append([]byte{}, good...), []byte("{\"code\": 200, \"lat\n")...), good...), "line 4"},
		"A truncated gob file names the broken result.":    {encode(t, run(3, func(int) (uint16, time.Duration) { return 200, 1 }), "gob")[:150], "result"},
		"A CSV row with too few columns names the result.": {append(encode(t, run(2, func(int) (uint16, time.Duration) { return 200, 1 }), "csv"), []byte("1,2,3\n")...), "result 3"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := results.Read(context.Background(), "run.bin", bytes.NewReader(tt.data), slo.NewResults(s).Add)
			if !errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "run.bin") {
				t.Errorf("error %v, want an input error naming run.bin and %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadResultsHonoursCancellation(t *testing.T) {
	s := mustSLO(t, seedsSLO)
	data := encode(t, run(10000, func(int) (uint16, time.Duration) { return 200, 1 }), "json")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := results.Read(ctx, "run.json", bytes.NewReader(data), slo.NewResults(s).Add); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}
