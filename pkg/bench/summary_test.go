package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/google/go-cmp/cmp"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

var update = flag.Bool("update", false, "update .golden files")

// syntheticResults is a fixed, seeded results set: 2,000 requests at 200/s with exponential
// latencies, a few 5xx and 429 responses, and every kind of transport error.
func syntheticResults() []vegeta.Result {
	rng := rand.New(rand.NewSource(0))
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out := make([]vegeta.Result, 2000)
	for i := range out {
		r := vegeta.Result{
			Attack: "bench", Seq: uint64(i), Code: 200, Method: "POST", URL: "http://127.0.0.1:8080/predict",
			Timestamp: base.Add(time.Duration(i) * 5 * time.Millisecond),
			Latency:   time.Duration(200e3 + rng.ExpFloat64()*2e6),
			BytesOut:  uint64(120 + rng.Intn(40)), BytesIn: 40,
		}
		switch p := rng.Float64(); {
		case p < 0.01:
			r.Code, r.Error, r.BytesIn = 500, "500 Internal Server Error", 22
		case p < 0.02:
			r.Code, r.Error, r.BytesIn = 429, "429 Too Many Requests", 18
		case p < 0.025:
			r.Code, r.BytesIn, r.Latency = 0, 0, 2*time.Second
			r.Error = `Post "http://127.0.0.1:8080/predict": read tcp 127.0.0.1:51234->127.0.0.1:8080: i/o timeout`
		case p < 0.028:
			r.Code, r.BytesIn, r.Latency = 0, 0, 150*time.Microsecond
			r.Error = `Post "http://127.0.0.1:8080/predict": dial tcp 127.0.0.1:8080: connect: connection refused`
		case p < 0.030:
			r.Code, r.BytesIn = 0, 0
			r.Error = `Post "http://127.0.0.1:8080/predict": read tcp 127.0.0.1:51240->127.0.0.1:8080: read: connection reset by peer`
		case p < 0.031:
			r.Code, r.BytesIn = 0, 0
			r.Error = `Post "http://127.0.0.1:8080/predict": tls: handshake failure`
		}
		out[i] = r
	}
	return out
}

func summarize(rs []vegeta.Result) *Summary {
	var s Summary
	for i := range rs {
		s.Add(&rs[i])
	}
	return &s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/bench -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Fatalf("%s differs from the golden file (-want +got):\n%s", path, d)
	}
}

func TestReportGolden(t *testing.T) {
	rep := summarize(syntheticResults()).Report(nil, mustRate("250/s"))
	rep.Target = "POST http://127.0.0.1:8080/predict"
	rep.Mode = "constant rate 250/s for 10s, 10-10000 workers, keep-alive, timeout 2s, fast HTTP/1.1 client"
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			r, err := NewReporter(format, &rep)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := r(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, "report_"+format, b.Bytes())
		})
	}
}

func TestReportNumbers(t *testing.T) {
	rs := syntheticResults()
	rep := summarize(rs).Report(nil, Rate{})
	var ok, refused, timeouts, reset, other, httpErr, bytesIn uint64
	for _, r := range rs {
		bytesIn += r.BytesIn
		switch {
		case r.Code >= 200 && r.Code < 400:
			ok++
		case r.Code != 0:
			httpErr++
		case strings.Contains(r.Error, "refused"):
			refused++
		case strings.Contains(r.Error, "timeout"):
			timeouts++
		case strings.Contains(r.Error, "reset"):
			reset++
		default:
			other++
		}
	}
	e := rep.Errors
	if rep.Requests != 2000 || rep.Success != ok || e.HTTP != httpErr || e.ConnectionRefused != refused || e.Timeout != timeouts || e.ConnectionReset != reset || e.Other != other {
		t.Fatalf("report %+v, errors %+v; counted ok %d http %d refused %d timeout %d reset %d other %d", rep, e, ok, httpErr, refused, timeouts, reset, other)
	}
	if rep.BytesIn.Total != bytesIn || rep.Duration != 1999*5*time.Millisecond {
		t.Fatalf("bytes in %d (want %d), duration %v", rep.BytesIn.Total, bytesIn, rep.Duration)
	}
	if rep.Latency.Count != rep.Requests-refused-timeouts-reset-other {
		t.Fatalf("latency counts %d responses, want %d", rep.Latency.Count, rep.Requests-refused-timeouts-reset-other)
	}
	var sumBars uint64
	for _, b := range rep.Histogram {
		sumBars += b.Count
	}
	if sumBars != rep.Latency.Count {
		t.Fatalf("histogram bars hold %d, want %d", sumBars, rep.Latency.Count)
	}
	if !(rep.Latency.Min <= rep.Latency.P50 && rep.Latency.P50 <= rep.Latency.P90 && rep.Latency.P90 <= rep.Latency.P99 && rep.Latency.P99 <= rep.Latency.P999 && rep.Latency.P999 <= rep.Latency.Max) {
		t.Fatalf("percentiles out of order: %+v", rep.Latency)
	}
}

func TestClassifyError(t *testing.T) {
	tests := map[string]struct {
		code uint16
		err  string
		want string
	}{
		"A response is never a socket error.":            {code: 503, err: "503 Service Unavailable", want: ""},
		"net/http's client timeout is a timeout.":        {err: `Get "http://x": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`, want: ErrTimeout},
		"A deadline on the socket is a timeout.":         {err: `Get "http://x": read tcp 1.2.3.4:5->1.2.3.4:80: i/o timeout`, want: ErrTimeout},
		"A refused dial is connection refused.":          {err: `Get "http://x": dial tcp 127.0.0.1:1: connect: connection refused`, want: ErrRefused},
		"A reset by peer is a reset.":                    {err: `Get "http://x": read: connection reset by peer`, want: ErrReset},
		"A closed connection (EOF) is a reset.":          {err: `Get "http://x": EOF`, want: ErrReset},
		"An unexpected EOF mid-body is a reset.":         {err: `unexpected EOF`, want: ErrReset},
		"A broken pipe on write is a reset.":             {err: `Post "http://x": write tcp 1.2.3.4:5->1.2.3.4:80: write: broken pipe`, want: ErrReset},
		"Anything else is other.":                        {err: `Get "https://x": x509: certificate signed by unknown authority`, want: ErrOther},
		"A DNS failure is other, not a refused connect.": {err: `Get "http://nohost": dial tcp: lookup nohost: no such host`, want: ErrOther},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ClassifyError(&vegeta.Result{Code: tt.code, Error: tt.err}); got != tt.want {
				t.Fatalf("ClassifyError(%q) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func writeResults(t *testing.T, path string, rs []vegeta.Result, newEnc func(*os.File) vegeta.Encoder) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := newEnc(f)
	for i := range rs {
		if err := enc.Encode(&rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func gobEnc(f *os.File) vegeta.Encoder  { return vegeta.NewEncoder(f) }
func jsonEnc(f *os.File) vegeta.Encoder { return vegeta.NewJSONEncoder(f) }
func csvEnc(f *os.File) vegeta.Encoder  { return vegeta.NewCSVEncoder(f) }

// Merging: the report over N files (here three pods, each writing a third of the results in
// a different encoding) equals the report over one file holding them all.
func TestReportOverManyFilesEqualsOneFile(t *testing.T) {
	rs := syntheticResults()
	dir := t.TempDir()
	one := filepath.Join(dir, "all.bin")
	writeResults(t, one, rs, gobEnc)
	parts := [3][]vegeta.Result{}
	for i, r := range rs {
		parts[i%3] = append(parts[i%3], r)
	}
	files := []string{filepath.Join(dir, "pod-0.bin"), filepath.Join(dir, "pod-1.json"), filepath.Join(dir, "pod-2.csv")}
	for i, enc := range []func(*os.File) vegeta.Encoder{gobEnc, jsonEnc, csvEnc} {
		writeResults(t, files[i], parts[i], enc)
	}
	for _, format := range []string{"text", "json"} {
		var a, b bytes.Buffer
		if err := RunReport(context.Background(), ReportOptions{Files: []string{one}, Output: format}, nil, &a); err != nil {
			t.Fatal(err)
		}
		if err := RunReport(context.Background(), ReportOptions{Files: files, Output: format}, nil, &b); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(a.String(), b.String()); d != "" {
			t.Fatalf("%s report over 3 files differs from the one-file report (-one +three):\n%s", format, d)
		}
	}
	want := summarize(rs).Report(nil, Rate{})
	// And the live summary matches what vegeta itself counts.
	var m vegeta.Metrics
	for i := range rs {
		m.Add(&rs[i])
	}
	m.Close()
	if want.Requests != m.Requests || want.SuccessRatio != m.Success || want.Rate != m.Rate || want.Throughput != m.Throughput || want.Duration != m.Duration || want.Wait != m.Wait {
		t.Fatalf("report %+v disagrees with vegeta.Metrics %+v", want, m)
	}
}

func TestReportInputErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.bin")
	if err := os.WriteFile(junk, []byte("this is not a results file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.bin")
	writeResults(t, truncated, syntheticResults()[:50], gobEnc)
	b, _ := os.ReadFile(truncated)
	if err := os.WriteFile(truncated, b[:len(b)-7], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		files  []string
		expErr string
	}{
		"No files should fail.":                     {expErr: "at least one results file"},
		"A missing file should fail naming it.":     {files: []string{filepath.Join(dir, "nope.bin")}, expErr: "nope.bin"},
		"A file of another format should fail.":     {files: []string{junk}, expErr: "not in vegeta's gob, JSON or CSV encoding"},
		"A truncated file should fail naming where": {files: []string{truncated}, expErr: "result 50"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := RunReport(context.Background(), ReportOptions{Files: tt.files}, nil, &bytes.Buffer{})
			if !errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), tt.expErr) {
				t.Fatalf("RunReport() = %v, want an input error mentioning %q", err, tt.expErr)
			}
		})
	}
}

func TestAutoBuckets(t *testing.T) {
	tests := map[string]struct {
		min, max time.Duration
		want     []time.Duration
	}{
		"Sub-millisecond to tens of ms.": {300 * time.Microsecond, 12 * time.Millisecond, []time.Duration{200e3, 500e3, 1e6, 2e6, 5e6, 10e6}},
		"A single value gets one bar.":   {time.Millisecond, time.Millisecond, []time.Duration{1e6}},
		"An empty histogram.":            {0, 0, []time.Duration{0}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, autoBuckets(tt.min, tt.max)); d != "" {
				t.Fatalf("autoBuckets(%v, %v) (-want +got):\n%s", tt.min, tt.max, d)
			}
		})
	}
}
