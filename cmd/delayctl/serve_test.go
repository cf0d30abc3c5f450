package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/serve"
)

// captureServe runs `delayctl serve args...` and returns the parsed Options.
func captureServe(t *testing.T, env map[string]string, args ...string) (serve.Options, error) {
	t.Helper()
	return capture(t, env, newServeCmdWith, args...)
}

func TestServeFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfg, []byte("serve:\n  model: from-file.json\n  max-batch: 50\n  public-routes: [/healthz]\n  watch: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env    map[string]string
		args   []string
		want   func(o serve.Options) bool
		expErr string
	}{
		"Flags fill the options.": {
			args: []string{"--model", "m.json", "--addr", "0.0.0.0:9000", "--log-format", "json", "--log-level", "debug",
				"--max-body-bytes", "2048", "--max-batch", "10", "--max-inflight", "7", "--read-header-timeout", "1s",
				"--read-timeout", "2s", "--write-timeout", "3s", "--idle-timeout", "4s", "--shutdown-timeout", "5s",
				"--drain-delay", "6s", "--auth-keys", "k.txt", "--public-routes", "/healthz,/metrics", "--rate-limit", "2.5",
				"--rate-burst", "5", "--watch", "--watch-interval", "7s", "--max-header-bytes", "4096"},
			want: func(o serve.Options) bool {
				return o.ModelPath == "m.json" && o.Addr == "0.0.0.0:9000" && o.LogFormat == "json" && o.LogLevel == "debug" &&
					o.MaxBodyBytes == 2048 && o.MaxBatch == 10 && o.MaxInflight == 7 && o.ReadHeaderTimeout == time.Second &&
					o.ReadTimeout == 2*time.Second && o.WriteTimeout == 3*time.Second && o.IdleTimeout == 4*time.Second &&
					o.ShutdownTimeout == 5*time.Second && o.DrainDelay == 6*time.Second && o.AuthKeysFile == "k.txt" &&
					slices.Equal(o.PublicRoutes, []string{"/healthz", "/metrics"}) && o.RateLimit == 2.5 && o.RateBurst == 5 &&
					o.Watch && o.WatchInterval == 7*time.Second && o.MaxHeaderBytes == 4096 && o.ServerVersion == version
			},
		},
		"Defaults are the package defaults.": {
			args: []string{"--model", "m.json"},
			want: func(o serve.Options) bool {
				return o.Addr == serve.DefaultAddr && o.MaxBodyBytes == serve.DefaultMaxBodyBytes && o.MaxBatch == serve.DefaultMaxBatch &&
					o.MaxInflight == 0 && o.ShutdownTimeout == serve.DefaultShutdownTimeout && !o.Watch && o.AuthKeysFile == "" &&
					slices.Equal(o.PublicRoutes, serve.DefaultPublicRoutes) && o.LogFormat == "text"
			},
		},
		"DELAYCTL_SERVE_* environment variables set flags.": {
			env: map[string]string{"DELAYCTL_SERVE_MODEL": "env.json", "DELAYCTL_SERVE_MAX_INFLIGHT": "64", "DELAYCTL_SERVE_PUBLIC_ROUTES": "/healthz,/readyz"},
			want: func(o serve.Options) bool {
				return o.ModelPath == "env.json" && o.MaxInflight == 64 && slices.Equal(o.PublicRoutes, []string{"/healthz", "/readyz"})
			},
		},
		"The config file sets flags, and flags win over it.": {
			args: []string{"--config", cfg, "--max-batch", "9"},
			want: func(o serve.Options) bool {
				return o.ModelPath == "from-file.json" && o.MaxBatch == 9 && o.Watch && slices.Equal(o.PublicRoutes, []string{"/healthz"})
			},
		},
		"A missing --model is a usage error.":          {args: []string{}, expErr: "--model is required"},
		"An unknown log format is a usage error.":      {args: []string{"--model", "m", "--log-format", "xml"}, expErr: `--log-format "xml"`},
		"A private admin route cannot be made public.": {args: []string{"--model", "m", "--public-routes", "/admin/reload"}, expErr: "can never be public"},
		"An infinite rate limit is a usage error.":     {args: []string{"--model", "m", "--rate-limit", "inf"}, expErr: "--rate-limit +Inf"},
		"A NaN rate limit is a usage error.":           {args: []string{"--model", "m", "--rate-limit", "NaN"}, expErr: "--rate-limit NaN"},
		"A zero header limit is a usage error.":        {args: []string{"--model", "m", "--max-header-bytes", "0"}, expErr: "--max-header-bytes 0"},
		"A port past 65535 is a usage error.":          {args: []string{"--model", "m", "--addr", ":70000"}, expErr: `--addr ":70000"`},
		"A bad duration in the environment is a usage error.": {
			env: map[string]string{"DELAYCTL_SERVE_READ_TIMEOUT": "soon"}, args: []string{"--model", "m"}, expErr: "DELAYCTL_SERVE_READ_TIMEOUT"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := captureServe(t, tc.env, tc.args...)
			if tc.expErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.expErr) || exitCode(err) != exitUsage {
					t.Fatalf("error %v (exit %d), want a usage error saying %q", err, exitCode(err), tc.expErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(o) {
				t.Errorf("options %+v", o)
			}
		})
	}
}

func TestServeBadModelExitsTwo(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(bad, []byte(`{"schema_version": "delayctl.model/v0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ios, _, errOut := newTestIO(nil)
	if code := run(context.Background(), []string{"serve", "--model", bad, "--addr", "127.0.0.1:0"}, ios); code != exitUsage {
		t.Errorf("exit %d, want %d: %s", code, exitUsage, errOut)
	}
	if !strings.Contains(errOut.String(), "unsupported schema_version") {
		t.Errorf("stderr %q does not say why", errOut)
	}
}

func TestKeysNewAndHash(t *testing.T) {
	ios, out, _ := newTestIO(nil)
	if code := run(context.Background(), []string{"keys", "new", "--name", "ci"}, ios); code != exitOK {
		t.Fatalf("keys new exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], serve.KeyPrefix) || lines[3] != serve.HashKey(lines[1])+"  ci" {
		t.Fatalf("keys new printed %q", out)
	}
	key := lines[1]

	ios, out, _ = newTestIO(nil)
	ios.In = strings.NewReader(key)
	if code := run(context.Background(), []string{"keys", "hash", "--name", "ci"}, ios); code != exitOK || strings.TrimSpace(out.String()) != lines[3] {
		t.Errorf("keys hash = %d %q, want %q", code, out, lines[3])
	}

	file := filepath.Join(t.TempDir(), "keys.txt")
	for range 2 {
		ios, out, _ = newTestIO(nil)
		if code := run(context.Background(), []string{"keys", "new", "--append", file}, ios); code != exitOK {
			t.Fatalf("keys new --append exit %d", code)
		}
		if !strings.HasPrefix(out.String(), serve.KeyPrefix) || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("keys new --append printed %q, want only the key", out)
		}
	}
	names, err := serve.ParseKeys(mustOpen(t, file))
	if err != nil || len(names) != 2 {
		t.Errorf("keys file: %v %v", names, err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("keys file mode %v, want 0600", fi.Mode().Perm())
	}

	ios, _, _ = newTestIO(nil)
	if code := run(context.Background(), []string{"keys", "new", "--name", "two words"}, ios); code != exitUsage {
		t.Errorf("a bad name: exit %d, want %d", code, exitUsage)
	}

	// A directory as --append is refused at once, naming the flag.
	ios, _, errOut := newTestIO(nil)
	if code := run(context.Background(), []string{"keys", "new", "--append", t.TempDir()}, ios); code != exitUsage || !strings.Contains(errOut.String(), "--append") {
		t.Errorf("--append a directory: exit %d, %q; want %d naming --append", code, errOut, exitUsage)
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
