package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// sloIO returns streams over buffers and an environment made of env only.
func sloIO(env map[string]string) (*IOStreams, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{
		In: strings.NewReader(""), Out: out, ErrOut: errOut,
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}, out, errOut
}

func TestSLOReportFlags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    slo.Options
		wantErr string
	}{
		"Results files come from --results and the arguments after it.": {
			args: []string{"--slo", "s.yaml", "--results", "a.bin", "b.json", "c.csv", "-o", "markdown"},
			want: slo.Options{SLOFile: "s.yaml", Results: []string{"a.bin", "b.json", "c.csv"}, Interval: slo.DefaultInterval,
				Format: slo.FormatMarkdown, Timeout: slo.DefaultTimeout},
		},
		"A scrape takes its interval.": {
			args: []string{"--scrape", "http://127.0.0.1:8080/metrics", "--interval", "30s"},
			want: slo.Options{SLOFile: slo.DefaultSLOFile, Scrape: "http://127.0.0.1:8080/metrics", Interval: 30 * time.Second,
				Format: slo.FormatText, Timeout: slo.DefaultTimeout},
		},
		"Prometheus takes a range and a selector; the format comes from the environment.": {
			args: []string{"--prometheus", "http://prom:9090", "--range", "168h", "--selector", `job="delayctl"`},
			env:  map[string]string{"DELAYCTL_SLO_OUTPUT": "json"},
			want: slo.Options{SLOFile: slo.DefaultSLOFile, Prometheus: "http://prom:9090", Range: 168 * time.Hour, Selector: `job="delayctl"`,
				Interval: slo.DefaultInterval, Format: slo.FormatJSON, Timeout: slo.DefaultTimeout},
		},
		"No source is a usage error.":          {args: []string{"--slo", "s.yaml"}, wantErr: "give exactly one source"},
		"Two sources are a usage error.":       {args: []string{"--results", "a.bin", "--scrape", "http://x"}, wantErr: "give exactly one source"},
		"An unknown format is a usage error.":  {args: []string{"--results", "a.bin", "-o", "pdf"}, wantErr: `unknown output format "pdf"`},
		"A zero interval is a usage error.":    {args: []string{"--scrape", "http://x", "--interval", "0s"}, wantErr: "--interval must be greater than zero"},
		"A broken selector is a usage error.":  {args: []string{"--prometheus", "http://x", "--selector", "job=delayctl"}, wantErr: "invalid label matchers"},
		"An unknown flag is a usage error.":    {args: []string{"--results", "a.bin", "--verbose"}, wantErr: "unknown flag: --verbose"},
		"A bad env value is a usage error.":    {args: []string{"--results", "a.bin"}, env: map[string]string{"DELAYCTL_SLO_TIMEOUT": "soon"}, wantErr: "DELAYCTL_SLO_TIMEOUT"},
		"A negative range is a usage error.":   {args: []string{"--prometheus", "http://x", "--range", "-1h"}, wantErr: "--range must not be negative"},
		"An empty --slo is a usage error.":     {args: []string{"--slo", "", "--results", "a.bin"}, wantErr: "--slo is required"},
		"A non-positive timeout is refused.":   {args: []string{"--results", "a.bin", "--timeout", "0s"}, wantErr: "--timeout must be greater than zero"},
		"Markdown and html are both accepted.": {args: []string{"--results", "a.bin", "-o", "html"}, want: slo.Options{SLOFile: slo.DefaultSLOFile, Results: []string{"a.bin"}, Interval: slo.DefaultInterval, Format: slo.FormatHTML, Timeout: slo.DefaultTimeout}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ios, _, _ := sloIO(tt.env)
			var got slo.Options
			cmd := newSLOCmdWith(ios, func(_ context.Context, o slo.Options) error { got = o; return nil }, nil)
			root := newRootCmd(ios)
			for _, c := range root.Commands() {
				if c.Name() == "slo" {
					root.RemoveCommand(c)
				}
			}
			root.AddCommand(cmd)
			root.SetArgs(append([]string{"slo", "report"}, tt.args...))
			err := root.ExecuteContext(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || exitCode(err) != exitUsage {
					t.Fatalf("error %v (exit %d), want a usage error containing %q", err, exitCode(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(slo.Options{}, "Stdin", "Now", "HTTPClient")); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

// writeResults writes n gob-encoded results, bad of them 503s, into dir.
func writeResults(t *testing.T, dir string, n, bad int) string {
	t.Helper()
	p := filepath.Join(dir, "run.bin")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := vegeta.NewEncoder(f)
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		r := vegeta.Result{Code: 200, Timestamp: start.Add(time.Duration(i) * 10 * time.Millisecond), Latency: 3 * time.Millisecond,
			Method: "POST", URL: "http://127.0.0.1:8080/predict", Seq: uint64(i)}
		if i < bad {
			r.Code, r.Error = 503, "503 Service Unavailable"
		}
		if err := enc.Encode(&r); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestSLOExitCodes(t *testing.T) {
	dir := t.TempDir()
	spec := "../../configs/slo.yaml"
	good := writeResults(t, t.TempDir(), 4000, 1) // 1 bad of 4000 = 0.025% <= 0.05%
	bad := writeResults(t, t.TempDir(), 4000, 3)  // 3 bad of 4000 = 0.075% > 0.05%
	badSpec := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badSpec, []byte("version: delayctl/v1\nservice: s\nobjectives:\n  - name: a\n    availability:\n      target: 101%\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	offBucket := filepath.Join(dir, "off.yaml")
	if err := os.WriteFile(offBucket, []byte("version: delayctl/v1\nservice: s\nobjectives:\n  - name: p\n    latency: {percentile: p90, threshold: 350ms}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.bin")
	if err := os.WriteFile(garbage, []byte("not results\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		"All objectives met exits 0.":                 {args: []string{"slo", "report", "--slo", spec, "--results", good}, wantCode: 0, wantStdout: "MET: 2 of 7 objectives met"},
		"A breached objective exits 1.":               {args: []string{"slo", "report", "--slo", spec, "--results", bad}, wantCode: 1, wantStdout: "BREACHED: availability", wantStderr: "slo objective breached: availability"},
		"A breach still prints the JSON report.":      {args: []string{"slo", "report", "--slo", spec, "--results", bad, "-o", "json"}, wantCode: 1, wantStdout: `"status": "breached"`},
		"A bad SLO file exits 2 naming file and line": {args: []string{"slo", "report", "--slo", badSpec, "--results", good}, wantCode: 2, wantStderr: badSpec + ":6: objectives[0].availability.target: target 101% is outside (0, 100%]"},
		"A missing SLO file exits 2.":                 {args: []string{"slo", "report", "--slo", filepath.Join(dir, "nope.yaml"), "--results", good}, wantCode: 2, wantStderr: "could not open slo spec"},
		"A missing results file exits 2.":             {args: []string{"slo", "report", "--slo", spec, "--results", filepath.Join(dir, "nope.bin")}, wantCode: 2, wantStderr: "could not open results file"},
		"A file that is not results exits 2.":         {args: []string{"slo", "report", "--slo", spec, "--results", garbage}, wantCode: 2, wantStderr: "not in vegeta's gob, JSON or CSV encoding"},
		"No source exits 2.":                          {args: []string{"slo", "report", "--slo", spec}, wantCode: 2, wantStderr: "give exactly one source"},
		"An unreachable scrape target exits 1.":       {args: []string{"slo", "report", "--slo", spec, "--scrape", "http://127.0.0.1:1/metrics", "--timeout", "2s"}, wantCode: 1, wantStderr: "could not scrape"},
		"The old -o table still works, with a note.":  {args: []string{"slo", "report", "--slo", spec, "--results", good, "-o", "table"}, wantCode: 0, wantStdout: "MET: 2 of 7 objectives met", wantStderr: "-o table is deprecated"},
		"Rules for the shipped SLO exit 0.":           {args: []string{"slo", "rules", "--slo", spec}, wantCode: 0, wantStdout: "alert: DelayctlAvailabilityBudgetBurn"},
		"Rules for an off-bucket threshold exit 2.":   {args: []string{"slo", "rules", "--slo", offBucket}, wantCode: 2, wantStderr: "350ms is not a bucket bound"},
		"An unknown slo subcommand exits 2.":          {args: []string{"slo", "repor"}, wantCode: 2, wantStderr: `unknown command "repor"`},
		"Rules with arguments exit 2.":                {args: []string{"slo", "rules", "--slo", spec, "extra"}, wantCode: 2, wantStderr: "unknown command"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ios, out, errOut := sloIO(nil)
			code := run(context.Background(), tt.args, ios)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out.String(), tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, out)
			}
			if !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, errOut)
			}
		})
	}
}

func TestSLOReportReadsStdin(t *testing.T) {
	data, err := os.ReadFile(writeResults(t, t.TempDir(), 100, 0))
	if err != nil {
		t.Fatal(err)
	}
	ios, out, errOut := sloIO(nil)
	ios.In = bytes.NewReader(data)
	code := run(context.Background(), []string{"slo", "report", "--slo", "../../configs/slo-99.yaml", "--results", "-", "-o", "json"}, ios)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Source struct {
			Requests float64 `json:"requests"`
		} `json:"source"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Source.Requests != 100 {
		t.Errorf("requests %v (%v), want 100", rep.Source.Requests, err)
	}
}

func TestSLODashboardFlags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    slo.DashboardOptions
		wantErr string
	}{
		"Spec, selector and output file are parsed.": {
			args: []string{"--slo", "s.yaml", "--selector", `job="delayctl"`, "-o", "d.json"},
			want: slo.DashboardOptions{SLOFile: "s.yaml", Selector: `job="delayctl"`, Output: "d.json"},
		},
		"The output file comes from its own environment variable.": {
			env:  map[string]string{"DELAYCTL_SLO_DASHBOARD_OUTPUT": "d.json", "DELAYCTL_SLO_OUTPUT": "json"},
			want: slo.DashboardOptions{SLOFile: slo.DefaultSLOFile, Output: "d.json"},
		},
		"Report's format variable does not name the dashboard file.": {
			env:  map[string]string{"DELAYCTL_SLO_OUTPUT": "json"},
			want: slo.DashboardOptions{SLOFile: slo.DefaultSLOFile},
		},
		"A broken selector is a usage error.":   {args: []string{"--selector", "job=delayctl"}, wantErr: "invalid label matchers"},
		"Writing over the SLO file is refused.": {args: []string{"--slo", "s.yaml", "-o", "./s.yaml"}, wantErr: "would overwrite the SLO file"},
		"Arguments are a usage error.":          {args: []string{"extra"}, wantErr: "unknown command"},
		"An empty --slo is a usage error.":      {args: []string{"--slo", ""}, wantErr: "--slo is required"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ios, _, _ := sloIO(tt.env)
			var got slo.DashboardOptions
			root := newRootCmd(ios)
			sloCmd, _, err := root.Find([]string{"slo"})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range sloCmd.Commands() {
				if c.Name() == "dashboard" {
					sloCmd.RemoveCommand(c)
				}
			}
			sloCmd.AddCommand(newSLODashboardCmd(ios, func(_ context.Context, o slo.DashboardOptions) error { got = o; return nil }))
			root.SetArgs(append([]string{"slo", "dashboard"}, tt.args...))
			err = root.ExecuteContext(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || exitCode(err) != exitUsage {
					t.Fatalf("error %v (exit %d), want a usage error containing %q", err, exitCode(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

func TestSLODashboardWritesJSON(t *testing.T) {
	ios, out, errOut := sloIO(nil)
	if code := run(context.Background(), []string{"slo", "dashboard", "--slo", "../../pkg/slo/testdata/interop/openslo-ratio.yaml"}, ios); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []any  `json:"panels"`
	}
	if err := json.Unmarshal(out.Bytes(), &d); err != nil || d.Title != "delayctl SLOs" || len(d.Panels) < 8 {
		t.Errorf("title %q, %d panels (%v)", d.Title, len(d.Panels), err)
	}
}

func TestSLOReadsSlothAndOpenSLO(t *testing.T) {
	results := writeResults(t, t.TempDir(), 2000, 1)
	sloth, openslo := "../../pkg/slo/testdata/interop/sloth.yaml", "../../pkg/slo/testdata/interop/openslo-ratio.yaml"
	tests := map[string]struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		"OpenSLO over delayctl's metrics is judged from results.": {args: []string{"slo", "report", "--slo", openslo, "--results", results}, wantCode: 0, wantStdout: "MET: 2 of 2 objectives met"},
		"A sloth spec with PromQL SLIs refuses results.": {args: []string{"slo", "report", "--slo", sloth, "--results", results}, wantCode: 2,
			wantStderr: `objective "gateway-availability" (sloth slos[2].sli.events), "gateway-raw" (sloth slos[3].sli.raw): SLI is PromQL written in the spec`},
		"A sloth spec writes rules with its alert names.": {args: []string{"slo", "rules", "--slo", sloth}, wantCode: 0, wantStdout: "alert: DelayctlHighErrorRate"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ios, out, errOut := sloIO(nil)
			if code := run(context.Background(), tt.args, ios); code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out.String(), tt.wantStdout) || !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Errorf("stdout %q lacks %q or stderr %q lacks %q", out, tt.wantStdout, errOut, tt.wantStderr)
			}
		})
	}
}

// A CI gate must not pass on a results file whose last result, a failure, lost its newline
// or was cut short: the first is read and breaches, the second is refused naming the line.
func TestSLOReportNeverDropsTheLastResult(t *testing.T) {
	var b bytes.Buffer
	enc := vegeta.NewJSONEncoder(&b)
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 4000; i++ {
		r := vegeta.Result{Code: 200, Timestamp: start.Add(time.Duration(i) * 10 * time.Millisecond), Latency: 3 * time.Millisecond,
			Method: "POST", URL: "http://127.0.0.1:8080/predict", Seq: uint64(i)}
		if i == 0 || i == 1 || i == 3999 { // 3 of 4000 breach the 99.95 % target; 2 would not
			r.Code, r.Error = 500, "500 Internal Server Error"
		}
		if err := enc.Encode(&r); err != nil {
			t.Fatal(err)
		}
	}
	data := b.Bytes()
	dir := t.TempDir()
	tests := map[string]struct {
		data       []byte
		wantCode   int
		wantStderr string
	}{
		"A last line without its newline is read and breaches.":  {data: data[:len(data)-1], wantCode: 1, wantStderr: "slo objective breached: availability"},
		"A last line cut mid-line exits 2 naming file and line.": {data: data[:len(data)-25], wantCode: 2, wantStderr: `cut.json": line 4000: cut short`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, "cut.json")
			if err := os.WriteFile(p, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			ios, out, errOut := sloIO(nil)
			code := run(context.Background(), []string{"slo", "report", "--slo", "../../configs/slo.yaml", "--results", p}, ios)
			if code != tt.wantCode || !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q\nstdout: %s", code, errOut, tt.wantCode, tt.wantStderr, out)
			}
		})
	}
}
