package main

import (
	"bytes"
	"context"
	"io"
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

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		args []string
		want int
	}{
		"Help succeeds.":                      {args: []string{"--help"}, want: exitOK},
		"Version succeeds.":                   {args: []string{"version"}, want: exitOK},
		"An unknown flag is a usage error.":   {args: []string{"train", "--nope"}, want: exitUsage},
		"A missing --data is a usage error.":  {args: []string{"train", "--out", "m.json"}, want: exitUsage},
		"A missing data file is a failure.":   {args: []string{"train", "--data", filepath.Join(dir, "none.csv"), "--out", filepath.Join(dir, "m.json")}, want: exitFailure},
		"Zero synthetic rows is usage error.": {args: []string{"data", "synth", "--rows", "0"}, want: exitUsage},
		"A stray argument is a usage error.":  {args: []string{"train", "extra"}, want: exitUsage},
		"An unknown command is usage error.":  {args: []string{"trian"}, want: exitUsage},
		"A bad env value names the variable.": {args: []string{"data", "synth"}, want: exitUsage},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			if strings.HasPrefix(name, "A bad env") {
				env["DELAYCTL_DATA_ROWS"] = "many"
			}
			ios, _, errOut := newTestIO(env)
			if got := run(context.Background(), tt.args, ios); got != tt.want {
				t.Fatalf("exit %d, want %d; stderr: %s", got, tt.want, errOut)
			}
			if tt.want == exitUsage && !strings.Contains(errOut.String(), "delayctl:") {
				t.Fatalf("usage error without a message: %q", errOut)
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
