// Package servecheck checks a container's command line against the real delayctl: it builds
// the binary from this repository, reads the flags `delayctl serve --help` lists, and runs
// the server with the container's own arguments and environment on 127.0.0.1, so a program
// can only pass flags and DELAYCTL_SERVE_* variables that exist, with values serve accepts,
// and its probe paths are answered by the real server. Tests only.
package servecheck

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/train"
)

// RepoRoot is the delayctl repository, relative to a program's directory (deploy/pulumi/<x>).
const RepoRoot = "../../.."

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/delayctl once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "servecheck-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "delayctl")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/delayctl")
		cmd.Dir = RepoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/delayctl: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// ServeFlags lists the long flags of `delayctl serve --help`.
func ServeFlags(t testing.TB) map[string]bool {
	t.Helper()
	out, err := exec.Command(Binary(t), "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("delayctl serve --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["model"] || !flags["addr"] {
		t.Fatalf("no --model or --addr in delayctl serve --help:\n%s", out)
	}
	return flags
}

// CheckNames fails for every --flag in args that serve lacks and every DELAYCTL_SERVE_*
// variable in env that names no serve flag (viper would silently ignore it).
func CheckNames(t testing.TB, args []string, env map[string]string) {
	t.Helper()
	flags := ServeFlags(t)
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("container args %v do not run delayctl serve", args)
	}
	for _, a := range args[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !flags[name] {
				t.Errorf("container passes --%s, which delayctl serve does not have", name)
			}
		}
	}
	for k := range env {
		if name, ok := strings.CutPrefix(k, "DELAYCTL_SERVE_"); ok {
			if f := strings.ToLower(strings.ReplaceAll(name, "_", "-")); !flags[f] {
				t.Errorf("container sets %s, which names no delayctl serve flag (--%s)", k, f)
			}
		}
	}
}

// Flag returns the value of --name in args, or "" when absent.
func Flag(args []string, name string) string {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// Server is delayctl serve running with a container's arguments.
type Server struct {
	URL  string
	cmd  *exec.Cmd
	done chan error
	Log  *strings.Builder
}

// Start runs the real server with the container's args and env. Files the container reads
// (--model, --auth-keys) are replaced by a freshly trained model and by keysFile, and --addr
// by a free port on 127.0.0.1; every other flag and variable is passed as the container has it.
func Start(t testing.TB, args []string, env map[string]string, keysFile string) *Server {
	t.Helper()
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "model.json")
	trainModel(t, dir, modelPath)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	replace := map[string]string{"model": modelPath, "addr": addr, "auth-keys": keysFile}
	run := append([]string(nil), args...)
	for i := range run {
		if v, ok := replace[strings.TrimPrefix(run[i], "--")]; ok && i+1 < len(run) {
			run[i+1] = v
		}
	}
	cmd := exec.Command(Binary(t), run...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	s := &Server{URL: "http://" + addr, cmd: cmd, done: make(chan error, 1), Log: &strings.Builder{}}
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-s.done:
			t.Fatalf("delayctl %v exited: %v\n%s", run, err, s.Log)
		default:
		}
		if resp, err := http.Get(s.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("delayctl %v not ready after 30s\n%s", run, s.Log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Status GETs path and returns the status code.
func (s *Server) Status(t testing.TB, path string) int {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Stop sends SIGTERM, as ECS and Cloud Run do, and returns the exit error and how long the
// server took to exit; it gives up after limit.
func (s *Server) Stop(t testing.TB, limit time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		return time.Since(start), err
	case <-time.After(limit):
		_ = s.cmd.Process.Kill()
		return time.Since(start), fmt.Errorf("still running %v after SIGTERM", limit)
	}
}

func trainModel(t testing.TB, dir, modelPath string) {
	t.Helper()
	data := filepath.Join(dir, "synth.csv")
	f, err := os.Create(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := train.Synth(f, train.SynthOptions{Rows: 2000, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := train.Fit(context.Background(), train.DefaultConfig(), train.Options{DataPath: data})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Model.Save(modelPath); err != nil {
		t.Fatal(err)
	}
}
