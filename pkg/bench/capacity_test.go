package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/latency"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func searchOpts() CapacityOptions {
	o := DefaultCapacityOptions()
	o.Pause = 0
	o.NewJudge = func() Judge { return nil }
	return o
}

// thresholdStep is a target that meets the SLO at and below limit req/s.
func thresholdStep(limit float64, ran *[]float64) stepFunc {
	return func(_ context.Context, rate float64) (Step, error) {
		*ran = append(*ran, rate)
		return Step{Sent: rate, OK: rate <= limit, Verdict: fmt.Sprintf("limit %.0f", limit)}, nil
	}
}

func TestSearch(t *testing.T) {
	tests := map[string]struct {
		limit        float64
		start, max   string
		maxSteps     int
		wantCapacity float64
		wantFailing  float64
		wantRates    []float64
		wantEnd      string
	}{
		"Grows by doubling then bisects to within 5 %.": {
			limit: 1234, start: "100/s", max: "100000/s",
			wantCapacity: 1200, wantFailing: 1250,
			wantRates: []float64{100, 200, 400, 800, 1600, 1200, 1400, 1300, 1250},
			wantEnd:   "holds at 1200 req/s and breaks at 1250 req/s",
		},
		"Stops at --max when the SLO never breaks.": {
			limit: 1e9, start: "1000/s", max: "5000/s",
			wantCapacity: 5000, wantRates: []float64{1000, 2000, 4000, 5000},
			wantEnd: "held up to --max 5000 req/s",
		},
		"Bisects down when the first step already fails.": {
			limit: 30, start: "100/s", max: "1000/s",
			wantCapacity: 30, wantFailing: 31,
			wantRates: []float64{100, 50, 25, 38, 32, 29, 31, 30},
			wantEnd:   "holds at 30 req/s and breaks at 31 req/s",
		},
		"Respects --max-steps.": {
			limit: 1234, start: "100/s", max: "100000/s", maxSteps: 6,
			wantCapacity: 1200, wantFailing: 1600,
			wantRates: []float64{100, 200, 400, 800, 1600, 1200},
			wantEnd:   "--max-steps ran out",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := searchOpts()
			o.Start, o.Max = mustRate(tt.start), mustRate(tt.max)
			if tt.maxSteps > 0 {
				o.MaxSteps = tt.maxSteps
			}
			var ran []float64
			rep, err := search(context.Background(), o, thresholdStep(tt.limit, &ran))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Capacity != tt.wantCapacity || rep.FirstFailing != tt.wantFailing {
				t.Errorf("capacity %v, first failing %v; want %v, %v", rep.Capacity, rep.FirstFailing, tt.wantCapacity, tt.wantFailing)
			}
			if fmt.Sprint(ran) != fmt.Sprint(tt.wantRates) {
				t.Errorf("rates tried %v, want %v", ran, tt.wantRates)
			}
			if !strings.Contains(rep.Conclusion, tt.wantEnd) {
				t.Errorf("conclusion %q, want it to say %q", rep.Conclusion, tt.wantEnd)
			}
			for _, s := range rep.Steps {
				if s.OK != (s.Rate <= tt.limit) {
					t.Errorf("step %+v judged wrongly", s)
				}
			}
		})
	}
}

func TestSearchStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	rep, err := search(ctx, searchOpts(), func(context.Context, float64) (Step, error) {
		if n++; n == 3 {
			cancel()
		}
		return Step{OK: true}, nil
	})
	if err != nil || !rep.Interrupted || len(rep.Steps) != 2 || rep.Capacity != 200 {
		t.Fatalf("report %+v, %v: want 2 steps kept, the cut-short third dropped, capacity 200", rep, err)
	}
}

// p90Judge is a stand-in for slo.StepJudge: the step passes when p90 latency is under a
// threshold and at least 99 % of requests succeed.
type p90Judge struct {
	limit    time.Duration
	h        latency.Histogram
	ok, seen int
}

func (j *p90Judge) Add(r *vegeta.Result) {
	j.seen++
	if r.Code >= 200 && r.Code < 300 {
		j.ok++
		j.h.Add(r.Latency)
	}
}

func (j *p90Judge) Verdict() (bool, string) {
	p90 := j.h.Quantile(0.9)
	avail := float64(j.ok) / float64(max(j.seen, 1))
	return p90 < j.limit && avail >= 0.99, fmt.Sprintf("availability %.2f%%, p90 %v < %v", 100*avail, p90, j.limit)
}

// limitedServer is a load generator against a modelled server that carries limit req/s:
// each step gets rate x StepDuration results, one every 1/rate, answered in 5 ms up to the
// limit and 50 ms beyond it (a queue builds). sendShort is the rate above which the
// generator itself falls behind and sends only half the schedule.
func limitedServer(limit, sendShort float64, du time.Duration) sendFunc {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func(_ context.Context, rate Rate, name string, add func(*vegeta.Result)) {
		perSec := rate.PerSecond()
		n := int(perSec * du.Seconds())
		gap := time.Duration(float64(time.Second) / perSec)
		if perSec > sendShort {
			gap *= 2
			n /= 2
		}
		lat := 5 * time.Millisecond
		if perSec > limit {
			lat = 50 * time.Millisecond
		}
		for i := range n {
			add(&vegeta.Result{Attack: name, Seq: uint64(i), Code: 200, Timestamp: t0.Add(time.Duration(i) * gap), Latency: lat})
		}
	}
}

// The capacity search over a modelled server that carries 400 req/s, judged on p90 < 30 ms:
// every step, verdict, the shortfall rule and the report come out the same on any machine.
func TestCapacityAgainstALimitedServer(t *testing.T) {
	tests := map[string]struct {
		limit, sendShort float64
		wantCapacity     float64
		wantFailing      float64
		wantRates        []float64
		wantVerdict      string
	}{
		"The search brackets the server's limit.": {
			limit: 400, sendShort: 1e9, wantCapacity: 400, wantFailing: 450,
			wantRates: []float64{50, 100, 200, 400, 800, 600, 500, 450}, wantVerdict: "p90 50ms",
		},
		"A generator short of the rate fails the step, not the server.": {
			limit: 1e9, sendShort: 300, wantCapacity: 300, wantFailing: 325,
			wantRates: []float64{50, 100, 200, 400, 300, 350, 325}, wantVerdict: "generator short of the rate",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := searchOpts()
			o.Start, o.Max = mustRate("50/s"), mustRate("3200/s")
			o.StepDuration, o.Precision = 2*time.Second, 0.125
			o.NewJudge = func() Judge { return &p90Judge{limit: 30 * time.Millisecond} }
			var errOut bytes.Buffer
			rep, err := capacity(context.Background(), o, &errOut, limitedServer(tt.limit, tt.sendShort, o.StepDuration))
			if err != nil {
				t.Fatal(err)
			}
			var rates []float64
			for _, s := range rep.Steps {
				rates = append(rates, s.Rate)
				if s.OK != (s.Rate <= tt.wantCapacity) {
					t.Errorf("step %+v judged wrongly", s)
				}
			}
			if rep.Capacity != tt.wantCapacity || rep.FirstFailing != tt.wantFailing || fmt.Sprint(rates) != fmt.Sprint(tt.wantRates) {
				t.Fatalf("capacity %v, first failing %v, rates %v; want %v, %v, %v", rep.Capacity, rep.FirstFailing, rates, tt.wantCapacity, tt.wantFailing, tt.wantRates)
			}
			if last := rep.Steps[len(rep.Steps)-1]; !strings.Contains(last.Verdict, tt.wantVerdict) {
				t.Errorf("last verdict %q, want it to say %q", last.Verdict, tt.wantVerdict)
			}
			if !strings.Contains(errOut.String(), "capacity: 50 req/s for 2s ... ok") {
				t.Errorf("no progress on stderr: %q", errOut.String())
			}
			var out bytes.Buffer
			if err := writeCapacityText(&out, &rep); err != nil || !strings.Contains(out.String(), fmt.Sprintf("Capacity: %.0f req/s within the SLO", tt.wantCapacity)) {
				t.Errorf("report %q (%v)", out.String(), err)
			}
		})
	}
}

// One short step against a real server runs the whole path (targets, client, attacker,
// judge, JSON report) without judging the machine's speed.
func TestCapacityRunsAgainstARealServer(t *testing.T) {
	srv := httptest.NewServer(okHandler("ok"))
	defer srv.Close()
	o := DefaultCapacityOptions()
	o.URL = srv.URL
	o.Start, o.Max = mustRate("20/s"), mustRate("20/s")
	o.StepDuration, o.Pause, o.MaxSteps = 200*time.Millisecond, 0, 1
	o.NewJudge = func() Judge { return &p90Judge{limit: time.Hour} }
	o.Output = "json"
	var out, errOut bytes.Buffer
	if err := RunCapacity(context.Background(), o, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var rep CapacityReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) != 1 || rep.Steps[0].Requests == 0 || rep.Steps[0].Rate != 20 || !strings.HasPrefix(rep.Target, "GET "+srv.URL) {
		t.Fatalf("report %+v", rep)
	}
}

func TestCapacityValidate(t *testing.T) {
	tests := map[string]struct {
		mod    func(*CapacityOptions)
		expErr string
	}{
		"Valid options pass.":              {mod: func(*CapacityOptions) {}},
		"No SLO should fail.":              {mod: func(o *CapacityOptions) { o.NewJudge = nil }, expErr: "needs an SLO"},
		"Max below start should fail.":     {mod: func(o *CapacityOptions) { o.Max = mustRate("10/s") }, expErr: "below --start"},
		"A zero start rate should fail.":   {mod: func(o *CapacityOptions) { o.Start = Rate{} }, expErr: "positive rates"},
		"Growth of 1 should fail.":         {mod: func(o *CapacityOptions) { o.Growth = 1 }, expErr: "--growth"},
		"A bad target URL should fail.":    {mod: func(o *CapacityOptions) { o.URL = "nope" }, expErr: "--url"},
		"A zero step duration should fail": {mod: func(o *CapacityOptions) { o.StepDuration = 0 }, expErr: "--step-duration"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := DefaultCapacityOptions()
			o.URL = "http://127.0.0.1:1/"
			o.NewJudge = func() Judge { return &p90Judge{} }
			tt.mod(&o)
			err := o.Validate()
			if tt.expErr == "" && err != nil || tt.expErr != "" && (!errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), tt.expErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.expErr)
			}
		})
	}
}
