package slo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/slo"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// benchRun is a deterministic 100-second run at 50 req/s: latencies spread over 2..200ms
// with a slow tail, one 503 and one transport error, and /healthz hits outside the routes.
func benchRun() []vegeta.Result {
	const n = 5000
	rs := make([]vegeta.Result, 0, n)
	for i := 0; i < n; i++ {
		r := vegeta.Result{Attack: "bench", Seq: uint64(i), Code: 200, Method: "POST", URL: "http://127.0.0.1:8080/predict",
			Timestamp: t0.Add(time.Duration(i) * 20 * time.Millisecond), Latency: time.Duration(2+(i*7919)%200) * time.Millisecond}
		switch {
		case i%97 == 0:
			r.Latency = time.Duration(400+(i%13)*50) * time.Millisecond
		case i == 1507:
			r.Code, r.Error = 503, "503 Service Unavailable"
		case i == 2011:
			r.Code, r.Error = 0, "context deadline exceeded"
		case i%50 == 3:
			r.URL = "http://127.0.0.1:8080/healthz"
		}
		rs = append(rs, r)
	}
	return rs
}

func TestReportGolden(t *testing.T) {
	tests := map[string]struct {
		spec string
		// breach makes every 10th request fail, so objectives are missed.
		breach bool
	}{
		"met":      {spec: "../../configs/slo.yaml"},
		"breached": {spec: "../../configs/slo.yaml", breach: true},
	}
	for name, tt := range tests {
		for _, f := range slo.Formats {
			t.Run(name+"/"+string(f), func(t *testing.T) {
				rs := benchRun()
				if tt.breach {
					for i := range rs {
						if i%10 == 5 {
							rs[i].Code, rs[i].Error = 500, "500 Internal Server Error"
						}
					}
				}
				path := writeFile(t, t.TempDir(), "run.bin", encode(t, rs, "gob"))
				var out bytes.Buffer
				opts := slo.Options{SLOFile: tt.spec, Results: []string{path}, Format: f, Timeout: time.Second, Now: func() time.Time { return t0.Add(time.Hour) }}
				err := slo.Run(context.Background(), opts, &out, &bytes.Buffer{})
				if tt.breach != errors.Is(err, slo.ErrObjectiveMissed) {
					t.Fatalf("error %v, breach %v", err, tt.breach)
				}
				// The temp dir differs per run; the golden file shows a fixed name.
				got := bytes.ReplaceAll(out.Bytes(), []byte(path), []byte("run.bin"))
				if f == slo.FormatJSON {
					got = bytes.ReplaceAll(got, []byte(jsonEscape(path)), []byte("run.bin"))
				}
				golden(t, "report-"+name+"."+string(f), got)
			})
		}
	}
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

func TestReportStatesThePeriodAgainstTheWindow(t *testing.T) {
	rep := evaluate(mustSLO(t, seedsSLO), benchRun())
	var out bytes.Buffer
	w, err := slo.NewReporter(rep, slo.FormatTable)
	if err != nil {
		t.Fatal(err)
	}
	if err := w(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"of the 30d SLO window", "It does not show the 30d SLO is met", "MET: 2 of 3 objectives met; not evaluated: memory"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestNoRequestsInScopeFailsTheGate(t *testing.T) {
	rs := run(5, func(int) (uint16, time.Duration) { return 200, time.Millisecond })
	for i := range rs {
		rs[i].URL = "http://127.0.0.1:8080/metrics"
	}
	path := writeFile(t, t.TempDir(), "run.json", encode(t, rs, "json"))
	var out bytes.Buffer
	err := slo.Run(context.Background(), slo.Options{SLOFile: "../../configs/slo.yaml", Results: []string{path}, Format: slo.FormatTable, Timeout: time.Second},
		&out, &bytes.Buffer{})
	if !errors.Is(err, slo.ErrObjectiveMissed) {
		t.Fatalf("error %v, want ErrObjectiveMissed", err)
	}
	if !strings.Contains(out.String(), "no requests matched routes") || !strings.Contains(out.String(), "5 outside routes") {
		t.Errorf("report does not explain the missing data:\n%s", out.String())
	}
}

func TestStepJudge(t *testing.T) {
	s := mustSLO(t, `version: delayctl/v1
service: s
objectives:
  - name: availability
    availability: {target: 99%}
  - name: latency
    latency: {percentile: p90, threshold: 400ms}
  - name: rps
    throughput: {min_rps: 5}
  - name: memory
    memory: {max: 256MB}
`)
	tests := map[string]struct {
		results []vegeta.Result
		wantOK  bool
		want    string
	}{
		"A healthy step passes and says memory was skipped.": {
			results: run(100, func(i int) (uint16, time.Duration) { return 200, time.Duration(i+1) * time.Millisecond }),
			wantOK:  true,
			// 100 requests 100ms apart, the last ending 100ms after its start: 10 req/s.
			// p90 is the 90th latency, 90ms, reported at the top of its pkg/latency bucket:
			// 90ms lies in [2^26, 2^27)ns, split in buckets of 2^16ns, so 1374*2^16-1ns = 90.046ms.
			want: "availability 100% >= 99% ok, latency p90 90.046ms <= 400ms ok, rps 10 req/s >= 5 req/s ok, memory skipped",
		},
		"A step with 5xx fails on availability.": {
			results: run(100, func(i int) (uint16, time.Duration) {
				if i%10 == 0 {
					return 503, time.Millisecond
				}
				return 200, time.Millisecond
			}),
			// 90 successes over 9.901s (99 gaps of 100ms and the last 1ms latency).
			want: "availability 90% >= 99% MISSED, latency p90 1ms <= 400ms ok, rps 9.09 req/s >= 5 req/s ok, memory skipped",
		},
		"A step without results fails.": {
			want: "availability no data, latency no data, rps no data, memory skipped",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			j := slo.NewStepJudge(s)
			for i := range tt.results {
				j.Add(&tt.results[i])
			}
			ok, summary := j.Verdict()
			if ok != tt.wantOK || summary != tt.want {
				t.Errorf("Verdict() = %v, %q; want %v, %q", ok, summary, tt.wantOK, tt.want)
			}
		})
	}
}
