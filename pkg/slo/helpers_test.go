package slo_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/slo"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

var update = flag.Bool("update", false, "update .golden files")

// t0 is the fixed start of every fabricated run.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// mustSLO compiles an SLO document or fails the test.
func mustSLO(t testing.TB, doc string) *slo.SLO {
	t.Helper()
	s, err := slo.Load(strings.NewReader(doc), "test.yaml")
	if err != nil {
		t.Fatalf("load slo: %v", err)
	}
	return s
}

const seedsSLO = `version: delayctl/v1
service: delayctl
window: 30d
objectives:
  - name: availability
    availability: {target: 99.95%}
  - name: latency-p90
    latency: {percentile: p90, threshold: 400ms}
  - name: memory
    memory: {max: 256MB}
`

// result fabricates one result: i-th request of a run at 10 per second.
func result(i int, code uint16, lat time.Duration) vegeta.Result {
	r := vegeta.Result{
		Attack: "test", Seq: uint64(i), Code: code, Timestamp: t0.Add(time.Duration(i) * 100 * time.Millisecond),
		Latency: lat, Method: "POST", URL: "http://127.0.0.1:8080/predict",
	}
	if code == 0 {
		r.Error = "dial tcp 127.0.0.1:8080: connect: connection refused"
	} else if code < 200 || code >= 400 {
		r.Error = fmt.Sprintf("%d %s", code, http.StatusText(int(code)))
	}
	return r
}

// run builds results: n requests with codes and latencies chosen by f.
func run(n int, f func(i int) (uint16, time.Duration)) []vegeta.Result {
	out := make([]vegeta.Result, n)
	for i := range out {
		c, l := f(i)
		out[i] = result(i, c, l)
	}
	return out
}

// encode writes results with the named vegeta encoding.
func encode(t testing.TB, rs []vegeta.Result, encoding string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var enc vegeta.Encoder
	switch encoding {
	case "gob":
		enc = vegeta.NewEncoder(&buf)
	case "json":
		enc = vegeta.NewJSONEncoder(&buf)
	case "csv":
		enc = vegeta.NewCSVEncoder(&buf)
	default:
		t.Fatalf("unknown encoding %q", encoding)
	}
	for i := range rs {
		if err := enc.Encode(&rs[i]); err != nil {
			t.Fatalf("encode: %v", err)
		}
	}
	return buf.Bytes()
}

// writeFile writes data into a file in dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// golden compares got with testdata/<name>.golden, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden file (run go test ./pkg/slo -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./pkg/slo -update rewrites it):\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

// fixedClock returns a clock that starts at t and advances by step on each call.
func fixedClock(t time.Time, step time.Duration) func() time.Time {
	now := t
	return func() time.Time {
		cur := now
		now = now.Add(step)
		return cur
	}
}

// jsonVerdict is one objective of a JSON report, as a consumer reads it.
type jsonVerdict struct {
	Status   string
	Total    float64
	Good     float64
	Value    float64
	Estimate bool
}

// decodeReport reads a JSON report into verdicts by objective name.
func decodeReport(t *testing.T, data []byte) map[string]jsonVerdict {
	t.Helper()
	var rep struct {
		Objectives []struct {
			Name     string  `json:"name"`
			Status   string  `json:"status"`
			Total    float64 `json:"total_events"`
			Good     float64 `json:"good_events"`
			Value    any     `json:"value"`
			Estimate bool    `json:"estimate"`
		} `json:"objectives"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, data)
	}
	out := map[string]jsonVerdict{}
	for _, o := range rep.Objectives {
		v, _ := o.Value.(float64)
		out[o.Name] = jsonVerdict{Status: o.Status, Total: o.Total, Good: o.Good, Value: v, Estimate: o.Estimate}
	}
	return out
}
