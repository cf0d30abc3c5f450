package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/train"
	"github.com/spf13/cobra"
)

// newTestIO returns streams over buffers and an environment made of env only.
func newTestIO(env map[string]string) (*IOStreams, *bytes.Buffer, *bytes.Buffer) {
	out, errOut := &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{
		In: strings.NewReader(""), Out: out, ErrOut: errOut,
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}, out, errOut
}

// capture runs the command that build makes, under a root of its own and with a runF that
// records the Options the flags, environment and config file produced.
func capture[T any](t *testing.T, env map[string]string, build func(*IOStreams, func(context.Context, T, io.Writer) error) *cobra.Command, args ...string) (T, error) {
	t.Helper()
	ios, _, _ := newTestIO(env)
	var got T
	cmd := build(ios, func(_ context.Context, o T, _ io.Writer) error {
		got = o
		return nil
	})
	root := newRootCmd(ios)
	cmd.Use = "under-test"
	root.AddCommand(cmd)
	root.SetArgs(append([]string{"under-test"}, args...))
	err := root.ExecuteContext(context.Background())
	return got, err
}

// captureTrain runs `delayctl train args...` and returns the parsed Options.
func captureTrain(t *testing.T, env map[string]string, args ...string) (train.Options, error) {
	t.Helper()
	return capture(t, env, newTrainCmdWith, args...)
}

func TestTrainFlagsEnvAndPrecedence(t *testing.T) {
	tests := map[string]struct {
		env  map[string]string
		args []string
		want func(train.Options) bool
	}{
		"Flags fill the options.": {
			args: []string{"--data", "d.csv", "--out", "m.json", "--cv", "5", "--seed", "7", "--metrics-out", "x.json", "--plots", "p"},
			want: func(o train.Options) bool {
				return o.DataPath == "d.csv" && o.OutPath == "m.json" && o.CVFolds == 5 && o.Seed == 7 && o.SeedSet && o.MetricsOut == "x.json" && o.PlotsDir == "p"
			},
		},
		"The environment fills unset flags.": {
			env: map[string]string{"DELAYCTL_TRAIN_DATA": "env.csv", "DELAYCTL_TRAIN_OUT": "env.json", "DELAYCTL_TRAIN_SEED": "3"},
			want: func(o train.Options) bool {
				return o.DataPath == "env.csv" && o.OutPath == "env.json" && o.Seed == 3 && o.SeedSet
			},
		},
		"A flag wins over the environment.": {
			env:  map[string]string{"DELAYCTL_TRAIN_DATA": "env.csv", "DELAYCTL_TRAIN_OUT": "env.json"},
			args: []string{"--data", "flag.csv"},
			want: func(o train.Options) bool { return o.DataPath == "flag.csv" && o.OutPath == "env.json" },
		},
		"Without --seed the config's seed applies.": {
			args: []string{"--data", "d.csv", "--out", "m.json"},
			want: func(o train.Options) bool {
				return !o.SeedSet && o.CVFolds == -1 && !o.TimeHoldoutSet && !o.TimeCVSet && o.ThresholdSplit == ""
			},
		},
		"The time-ordered evaluation flags fill the options.": {
			args: []string{"--data", "d.csv", "--out", "m.json", "--time-holdout", "0.3", "--time-cv", "4", "--threshold-split", "time"},
			want: func(o train.Options) bool {
				return o.TimeHoldout == 0.3 && o.TimeHoldoutSet && o.TimeCVFolds == 4 && o.TimeCVSet && o.ThresholdSplit == train.SplitTime
			},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := captureTrain(t, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(got) {
				t.Fatalf("options %+v", got)
			}
		})
	}
}

func TestConfigFileFillsFlagsBelowEnv(t *testing.T) {
	ios, _, _ := newTestIO(map[string]string{"DELAYCTL_DATA_ROWS": "7"})
	path := filepath.Join(t.TempDir(), "delayctl.yaml")
	if err := os.WriteFile(path, []byte("data:\n  rows: 99\n  seed: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "s.csv")
	code := run(context.Background(), []string{"data", "synth", "--config", path, "--out", out}, ios)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, ios.ErrOut)
	}
	b, _ := os.ReadFile(out)
	// The environment (7 rows) wins over the file (99); the file's seed applies.
	if n := strings.Count(string(b), "\n"); n != 8 {
		t.Fatalf("wrote %d lines, want a header and 7 rows", n)
	}
	var want bytes.Buffer
	if err := train.Synth(&want, train.SynthOptions{Rows: 7, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	if want.String() != string(b) {
		t.Fatal("synth output does not match seed 5 from the config file")
	}
}

// TestExitCodes runs every verb into each kind of failure it has and checks the exit code
// the one table in root.go gives it: 2 when the input is wrong, 1 when the run failed.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up 1\n") }))
	defer up.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }))
	defer failing.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	model := "../../pkg/bench/testdata/model.json"
	flights := "../../pkg/train/testdata/flights_small.csv"
	spec := "../../configs/slo.yaml"
	badYAML := write("bad.yaml", "training: [unclosed\n")
	notResults := write("notresults.bin", "this is not a results file\n")
	crlfTargets := write("targets.json", `{"method":"GET","url":"`+up.URL+`","header":{"X-A":["b\r\nX-Injected: 1"]}}`+"\n")
	tests := map[string]struct {
		args  []string
		stdin string
		want  int
		// stderr, when set, must appear in the message: the failure is the one the case means.
		stderr string
	}{
		"Help succeeds.":    {args: []string{"--help"}, want: exitOK},
		"Version succeeds.": {args: []string{"version"}, want: exitOK},
		"A group without a subcommand prints its help.": {args: []string{"data"}, want: exitOK},

		"An unknown command is a usage error.":         {args: []string{"trian"}, want: exitUsage},
		"An unknown data subcommand is a usage error.": {args: []string{"data", "bogus"}, want: exitUsage, stderr: `unknown command "bogus"`},
		"An unknown keys subcommand is a usage error.": {args: []string{"keys", "bogus"}, want: exitUsage},
		"An unknown slo subcommand is a usage error.":  {args: []string{"slo", "bogus"}, want: exitUsage},
		"An unknown flag is a usage error.":            {args: []string{"train", "--nope"}, want: exitUsage},
		"A stray argument is a usage error.":           {args: []string{"train", "extra"}, want: exitUsage},
		"A bad env value is a usage error.":            {args: []string{"data", "synth"}, want: exitUsage},
		"An unreadable --config is a usage error.":     {args: []string{"data", "synth", "--config", filepath.Join(dir, "none.yaml")}, want: exitUsage},

		"train: a missing --data is a usage error.":         {args: []string{"train", "--out", "m.json"}, want: exitUsage},
		"train: --cv 1 is a usage error.":                   {args: []string{"train", "--data", flights, "--out", filepath.Join(dir, "m.json"), "--cv", "1"}, want: exitUsage},
		"train: a missing data file is an input error.":     {args: []string{"train", "--data", filepath.Join(dir, "none.csv"), "--out", filepath.Join(dir, "m.json")}, want: exitUsage},
		"train: a broken pipeline config is input error.":   {args: []string{"train", "--data", flights, "--out", filepath.Join(dir, "m.json"), "--config", badYAML}, want: exitUsage},
		"train: an output in a missing dir is input error.": {args: []string{"train", "--data", flights, "--out", filepath.Join(dir, "no", "m.json")}, want: exitUsage},
		"train: data that is not a flight CSV is input.":    {args: []string{"train", "--data", notResults, "--out", filepath.Join(dir, "m.json")}, want: exitUsage, stderr: "notresults.bin"},

		"clean: a missing --data is a usage error.":    {args: []string{"clean"}, want: exitUsage},
		"clean: a missing data file is input error.":   {args: []string{"clean", "--data", filepath.Join(dir, "none.csv")}, want: exitUsage},
		"clean: an unknown --output is a usage error.": {args: []string{"clean", "--data", flights, "-o", "xml"}, want: exitUsage},

		"serve: a bad --log-format is a usage error.": {args: []string{"serve", "--model", model, "--log-format", "xml"}, want: exitUsage},
		"serve: a missing model file is input error.": {args: []string{"serve", "--model", filepath.Join(dir, "none.json"), "--addr", "127.0.0.1:0"}, want: exitUsage},
		"serve: an address in use is a run failure.":  {args: []string{"serve", "--model", model, "--addr", busy.Addr().String()}, want: exitFailure, stderr: "could not listen"},
		"serve: a missing --model is a usage error.":  {args: []string{"serve"}, want: exitUsage},

		"bench: an invalid URL is a usage error.":                  {args: []string{"bench", "--url", "localhost:8080"}, want: exitUsage},
		"bench: a missing bodies file is input error.":             {args: []string{"bench", "--url", up.URL, "--bodies", filepath.Join(dir, "none.jsonl")}, want: exitUsage},
		"bench: a rate above one per nanosecond is a usage error.": {args: []string{"bench", "--url", up.URL, "--rate", "1000000001/s"}, want: exitUsage, stderr: "more than one request per nanosecond"},
		"bench: a header value with CR LF is a usage error.":       {args: []string{"bench", "--url", up.URL, "-H", "X-A: b\r\nX-Injected: 1"}, want: exitUsage, stderr: "CR, LF"},
		"bench: a JSON target header with CR LF is input error.":   {args: []string{"bench", "--targets", crlfTargets}, want: exitUsage, stderr: "CR, LF"},
		"bench: --max-body -1 is a usage error.":                   {args: []string{"bench", "--url", up.URL, "--max-body", "-1"}, want: exitUsage, stderr: "keeping whole bodies has no bound"},
		"bench: an unreachable target is a run failure.":           {args: []string{"bench", "--url", down, "-d", "1s"}, want: exitFailure, stderr: "unreachable"},
		"bench report: a file that is not results is input.":       {args: []string{"bench", "report", notResults}, want: exitUsage},
		"bench capacity: a missing SLO file is input error.":       {args: []string{"bench", "capacity", "--url", up.URL, "--slo", filepath.Join(dir, "none.yaml")}, want: exitUsage},
		"bench bodies: a missing model file is input error.":       {args: []string{"bench", "bodies", "--from-data", flights, "--model", filepath.Join(dir, "none.json")}, want: exitUsage},

		"slo report: a bad SLO file is a usage error.":               {args: []string{"slo", "report", "--slo", badYAML, "--results", notResults}, want: exitUsage},
		"slo report: a file that is not results is input error.":     {args: []string{"slo", "report", "--slo", spec, "--results", notResults}, want: exitUsage},
		"slo report: an unreachable scrape target is a run failure.": {args: []string{"slo", "report", "--slo", spec, "--scrape", down + "/metrics", "--timeout", "2s"}, want: exitFailure, stderr: "could not scrape"},
		"slo report: a scrape answering 503 is a run failure.":       {args: []string{"slo", "report", "--slo", spec, "--scrape", failing.URL, "--timeout", "2s"}, want: exitFailure, stderr: "status 503"},
		"slo report: an endpoint that is not delayctl is input.":     {args: []string{"slo", "report", "--slo", spec, "--scrape", up.URL, "--interval", "1ms"}, want: exitUsage, stderr: "not found"},
		"slo report: an unreachable Prometheus is a run failure.":    {args: []string{"slo", "report", "--slo", spec, "--prometheus", down, "--timeout", "2s"}, want: exitFailure, stderr: "could not query prometheus"},
		"slo rules: a bad selector is a usage error.":                {args: []string{"slo", "rules", "--slo", spec, "--selector", "job=="}, want: exitUsage},

		"slo dashboard: a missing SLO file is input error.": {args: []string{"slo", "dashboard", "--slo", filepath.Join(dir, "none.yaml")}, want: exitUsage},
		"serve: --rate-limit inf is a usage error.":         {args: []string{"serve", "--model", model, "--rate-limit", "inf"}, want: exitUsage, stderr: "--rate-limit"},
		"serve: a bad --metrics-addr is a usage error.":     {args: []string{"serve", "--model", model, "--metrics-addr", "nowhere"}, want: exitUsage, stderr: "--metrics-addr"},
		"evaluate: a missing --model is a usage error.":     {args: []string{"evaluate", "--data", flights}, want: exitUsage},
		"evaluate: a missing data file is input error.":     {args: []string{"evaluate", "--model", model, "--data", filepath.Join(dir, "none.csv")}, want: exitUsage},

		"keys: a bad name is a usage error.":                           {args: []string{"keys", "new", "--name", "two words"}, want: exitUsage},
		"keys: no key on stdin is a usage error.":                      {args: []string{"keys", "hash"}, want: exitUsage},
		"keys: hashing a key on stdin succeeds.":                       {args: []string{"keys", "hash"}, stdin: "k3y\n", want: exitOK},
		"data: zero synthetic rows is usage error.":                    {args: []string{"data", "synth", "--rows", "0"}, want: exitUsage},
		"data: an output in a missing dir is input.":                   {args: []string{"data", "synth", "--rows", "1", "--out", filepath.Join(dir, "no", "s.csv")}, want: exitUsage},
		"bench bodies: an output in a missing dir is input.":           {args: []string{"bench", "bodies", "--from-data", flights, "--model", model, "--out", filepath.Join(dir, "no", "b.jsonl")}, want: exitUsage},
		"keys: appending to a keys file that does not parse is input.": {args: []string{"keys", "new", "--append", notResults}, want: exitUsage},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			if strings.HasPrefix(name, "A bad env") {
				env["DELAYCTL_DATA_ROWS"] = "many"
			}
			ios, _, errOut := newTestIO(env)
			ios.In = strings.NewReader(tt.stdin)
			if got := run(context.Background(), tt.args, ios); got != tt.want {
				t.Fatalf("exit %d, want %d; stderr: %s", got, tt.want, errOut)
			}
			if !strings.Contains(errOut.String(), tt.stderr) {
				t.Fatalf("stderr %q lacks %q", errOut, tt.stderr)
			}
			if tt.want != exitOK && !strings.Contains(errOut.String(), "delayctl:") {
				t.Fatalf("failure without a message: %q", errOut)
			}
		})
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		ios, out, _ := newTestIO(nil)
		if code := run(context.Background(), []string{"completion", shell}, ios); code != exitOK || !strings.Contains(out.String(), "delayctl") {
			t.Errorf("completion %s: exit %d, %d bytes", shell, code, out.Len())
		}
	}
}
