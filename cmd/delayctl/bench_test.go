package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/bench"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// captureBench runs `delayctl bench args...` with runners that record the parsed options.
func captureBench(t *testing.T, env map[string]string, args ...string) (bench.Options, bench.ReportOptions, bench.CapacityOptions, error) {
	t.Helper()
	ios, _, _ := newTestIO(env)
	var (
		a bench.Options
		r bench.ReportOptions
		c bench.CapacityOptions
	)
	cmd := newBenchCmdWith(ios, benchRunners{
		attack:   func(_ context.Context, o bench.Options, _, _ io.Writer) error { a = o; return nil },
		report:   func(_ context.Context, o bench.ReportOptions, _ io.Reader, _ io.Writer) error { r = o; return nil },
		capacity: func(_ context.Context, o bench.CapacityOptions, _, _ io.Writer) error { c = o; return nil },
	})
	root := newRootCmd(ios)
	cmd.Use = "bench-under-test"
	root.AddCommand(cmd)
	root.SetArgs(append([]string{"bench-under-test"}, args...))
	err := root.ExecuteContext(context.Background())
	return a, r, c, err
}

func TestBenchFlags(t *testing.T) {
	sloFile := filepath.Join("..", "..", "configs", "slo.yaml")
	tests := map[string]struct {
		env  map[string]string
		args []string
		want func(a bench.Options, r bench.ReportOptions, c bench.CapacityOptions) bool
	}{
		"Attack flags fill the options.": {
			args: []string{"--url", "http://127.0.0.1:8080/predict", "--rate", "500/s", "-d", "45s", "-H", "X-A: 1, 2", "-H", "X-B: 3",
				"--body-json", `{"x":[1]}`, "--timeout", "2s", "--max-body", "64", "--results", "run.bin", "-o", "json", "--http2", "-k",
				"--keepalive=false", "--plot", "p.html", "--png", "pngs", "--buckets", "0,1ms,10ms", "--max-workers", "99", "--client", "std"},
			want: func(a bench.Options, _ bench.ReportOptions, _ bench.CapacityOptions) bool {
				return a.URL == "http://127.0.0.1:8080/predict" && a.Rate == bench.Rate{Freq: 500, Per: time.Second} && a.Duration == 45*time.Second &&
					strings.Join(a.Headers, "|") == "X-A: 1, 2|X-B: 3" && a.BodyJSON == `{"x":[1]}` && a.Timeout == 2*time.Second &&
					a.MaxBody == 64 && a.Results == "run.bin" && a.Output == "json" && a.HTTP2 && a.Insecure && !a.KeepAlive &&
					a.Plot == "p.html" && a.PNG == "pngs" && len(a.Buckets) == 3 && a.Buckets[2] == 10*time.Millisecond && a.MaxWorkers == 99 && a.Client == "std"
			},
		},
		"Defaults are the package defaults.": {
			args: []string{"--url", "http://127.0.0.1:8080/"},
			want: func(a bench.Options, _ bench.ReportOptions, _ bench.CapacityOptions) bool {
				d := bench.DefaultOptions()
				return a.Rate == d.Rate && a.Duration == bench.DefaultDuration && a.Timeout == bench.DefaultTimeout && a.KeepAlive &&
					a.MaxBody == 0 && a.Client == "fast" && a.Preflight && a.Output == "text" && !a.Progress
			},
		},
		"Rate 0 with connections is the wrk mode.": {
			args: []string{"--url", "http://127.0.0.1:8080/", "--rate", "0", "-c", "64", "-d", "10s"},
			want: func(a bench.Options, _ bench.ReportOptions, _ bench.CapacityOptions) bool {
				return a.Rate.IsMax() && a.Connections == 64 && a.Duration == 10*time.Second
			},
		},
		"The environment fills unset flags.": {
			env:  map[string]string{"DELAYCTL_BENCH_URL": "http://env:1/", "DELAYCTL_BENCH_RATE": "20/m", "DELAYCTL_BENCH_HEADER": "X-A: 1,X-B: 2"},
			args: []string{"--duration", "5s"},
			want: func(a bench.Options, _ bench.ReportOptions, _ bench.CapacityOptions) bool {
				return a.URL == "http://env:1/" && a.Rate == bench.Rate{Freq: 20, Per: time.Minute} && len(a.Headers) == 2 && a.Duration == 5*time.Second
			},
		},
		"Report takes files and a format.": {
			args: []string{"report", "-o", "json", "a.bin", "b.bin", "--rate", "100/s"},
			want: func(_ bench.Options, r bench.ReportOptions, _ bench.CapacityOptions) bool {
				return strings.Join(r.Files, ",") == "a.bin,b.bin" && r.Output == "json" && r.Rate == bench.Rate{Freq: 100, Per: time.Second}
			},
		},
		"Capacity loads the SLO and wires a judge.": {
			args: []string{"capacity", "--url", "http://127.0.0.1:8080/predict", "--slo", sloFile, "--start", "200/s", "--max", "5000/s", "--step-duration", "5s", "--body-json", "{}"},
			want: func(_ bench.Options, _ bench.ReportOptions, c bench.CapacityOptions) bool {
				return c.URL == "http://127.0.0.1:8080/predict" && c.Start == bench.Rate{Freq: 200, Per: time.Second} && c.Max == bench.Rate{Freq: 5000, Per: time.Second} &&
					c.StepDuration == 5*time.Second && c.NewJudge != nil && c.NewJudge() != nil && c.BodyJSON == "{}"
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			a, r, c, err := captureBench(t, tt.env, tt.args...)
			if err != nil {
				t.Fatalf("bench %v: %v", tt.args, err)
			}
			if !tt.want(a, r, c) {
				t.Fatalf("bench %v parsed to\n%+v\n%+v\n%+v", tt.args, a, r, c)
			}
		})
	}
}

func TestBenchExitCodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/"
	ln.Close()
	dir := t.TempDir()
	badTargets := filepath.Join(dir, "targets.txt")
	if err := os.WriteFile(badTargets, []byte("GET "+srv.URL+"\nnot a header\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args    []string
		code    int
		errText string
	}{
		"An invalid URL is a usage error.":        {args: []string{"bench", "--url", "localhost:8080"}, code: 2, errText: "want an absolute URL"},
		"Bad header syntax is a usage error.":     {args: []string{"bench", "--url", srv.URL, "-H", "NoColon"}, code: 2, errText: `want "Key: Value"`},
		"An unknown rate unit is a usage error.":  {args: []string{"bench", "--url", srv.URL, "--rate", "5/week"}, code: 2, errText: `unknown unit "week"`},
		"A missing body file is a usage error.":   {args: []string{"bench", "--url", srv.URL, "--body", filepath.Join(dir, "missing.json")}, code: 2, errText: "missing.json"},
		"A malformed targets file is usage.":      {args: []string{"bench", "--targets", badTargets}, code: 2, errText: "bad header"},
		"An unreachable target fails before.":     {args: []string{"bench", "--url", down, "-d", "1s"}, code: 1, errText: "unreachable"},
		"A missing results file is a usage error": {args: []string{"bench", "report", filepath.Join(dir, "none.bin")}, code: 2, errText: "none.bin"},
		"Capacity without an SLO file is usage.":  {args: []string{"bench", "capacity", "--url", srv.URL, "--slo", filepath.Join(dir, "none.yaml")}, code: 2, errText: "none.yaml"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ios, out, errOut := newTestIO(nil)
			code := run(context.Background(), tt.args, ios)
			if code != tt.code || !strings.Contains(errOut.String(), tt.errText) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, errOut.String(), tt.code, tt.errText)
			}
			if out.Len() != 0 {
				t.Fatalf("stdout should be empty on error, got %q", out.String())
			}
		})
	}
}

// End to end: an attack writes a results file vegeta decodes, and bench report over it
// gives the same JSON numbers as the attack's own report.
func TestBenchAttackThenReport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	results := filepath.Join(t.TempDir(), "run.bin")
	ios, out, errOut := newTestIO(nil)
	if code := run(context.Background(), []string{"bench", "--url", srv.URL, "--rate", "100/s", "-d", "500ms", "--results", results, "-o", "json"}, ios); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if errOut.Len() != 0 {
		t.Fatalf("stderr is not a terminal, so it must stay quiet: %q", errOut.String())
	}
	var live bench.Report
	if err := json.Unmarshal(out.Bytes(), &live); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(results)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	n := 0
	for r := new(vegeta.Result); dec.Decode(r) == nil; r = new(vegeta.Result) {
		n++
	}
	if n == 0 || uint64(n) != live.Requests {
		t.Fatalf("vegeta decoded %d results, the report counts %d", n, live.Requests)
	}
	ios2, out2, errOut2 := newTestIO(nil)
	if code := run(context.Background(), []string{"bench", "report", "-o", "json", results}, ios2); code != 0 {
		t.Fatalf("report exit %d: %s", code, errOut2.String())
	}
	var again bench.Report
	if err := json.Unmarshal(out2.Bytes(), &again); err != nil {
		t.Fatal(err)
	}
	if again.Requests != live.Requests || again.Latency != live.Latency || again.Rate != live.Rate {
		t.Fatalf("report from the file %+v differs from the live one %+v", again, live)
	}
}
