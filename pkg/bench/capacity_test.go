package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
			o.Start, o.Max = MustRate(tt.start), MustRate(tt.max)
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

// A server that serves 4 requests at a time, 10 ms each, carries about 400 req/s; beyond
// that requests queue and p90 latency climbs past 30 ms.
func TestCapacityAgainstALimitedServer(t *testing.T) {
	slots := make(chan struct{}, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slots <- struct{}{}
		time.Sleep(10 * time.Millisecond)
		<-slots
	}))
	defer srv.Close()
	o := DefaultCapacityOptions()
	o.Attack.URL = srv.URL
	o.Attack.Timeout = 2 * time.Second
	o.Start, o.Max = MustRate("50/s"), MustRate("3200/s")
	o.StepDuration, o.Pause, o.Precision = 400*time.Millisecond, 300*time.Millisecond, 0.25
	o.NewJudge = func() Judge { return &p90Judge{limit: 30 * time.Millisecond} }
	o.Output = "json"
	var out, errOut bytes.Buffer
	if err := RunCapacity(context.Background(), o, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var rep CapacityReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	// The server's true limit is 400 req/s; a short step can pass a little above it before
	// the queue builds up, and -race slows the generator, hence the wide band.
	if rep.Capacity < 100 || rep.Capacity > 800 || rep.FirstFailing <= rep.Capacity {
		t.Fatalf("capacity %v, first failing %v (steps %+v)\nprogress:\n%s", rep.Capacity, rep.FirstFailing, rep.Steps, errOut.String())
	}
	if len(rep.Steps) < 4 || rep.Steps[0].Phase != "grow" || !rep.Steps[0].OK {
		t.Fatalf("steps %+v", rep.Steps)
	}
	if !strings.Contains(errOut.String(), "capacity: 50 req/s") {
		t.Fatalf("no progress on stderr: %q", errOut.String())
	}
}

func TestCapacityValidate(t *testing.T) {
	tests := map[string]struct {
		mod    func(*CapacityOptions)
		expErr string
	}{
		"Valid options pass.":              {mod: func(*CapacityOptions) {}},
		"No SLO should fail.":              {mod: func(o *CapacityOptions) { o.NewJudge = nil }, expErr: "needs an SLO"},
		"Max below start should fail.":     {mod: func(o *CapacityOptions) { o.Max = MustRate("10/s") }, expErr: "below --start"},
		"A zero start rate should fail.":   {mod: func(o *CapacityOptions) { o.Start = Rate{} }, expErr: "positive rates"},
		"Growth of 1 should fail.":         {mod: func(o *CapacityOptions) { o.Growth = 1 }, expErr: "--growth"},
		"A bad target URL should fail.":    {mod: func(o *CapacityOptions) { o.Attack.URL = "nope" }, expErr: "--url"},
		"A zero step duration should fail": {mod: func(o *CapacityOptions) { o.StepDuration = 0 }, expErr: "--step-duration"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			o := DefaultCapacityOptions()
			o.Attack.URL = "http://127.0.0.1:1/"
			o.NewJudge = func() Judge { return &p90Judge{} }
			tt.mod(&o)
			err := o.Validate()
			if tt.expErr == "" && err != nil || tt.expErr != "" && (!errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), tt.expErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.expErr)
			}
		})
	}
}
