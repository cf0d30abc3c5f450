package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// With DELAYCTL_TEST_AS_MAIN set, the test binary is delayctl itself: init runs main before
// the testing framework starts (main exits), so that asMain can test signals on a real process
// without building the command. (A TestMain would clash with the hostile build tag's.)
func init() {
	if os.Getenv("DELAYCTL_TEST_AS_MAIN") == "1" {
		main()
	}
}

// asMain starts delayctl args... as a child process; its stderr is returned as lines.
func asMain(t *testing.T, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DELAYCTL_TEST_AS_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return cmd, lines
}

// waitLine returns the first line matching re within 20 s.
func waitLine(t *testing.T, lines <-chan string, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the process ended before logging %q", re)
			}
			if rx.MatchString(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no log line %q within 20 s", re)
		}
	}
}

func TestSIGTERMStopsServeAfterAReloadOfANamedPipe(t *testing.T) {
	modelPath := filepath.Join(t.TempDir(), "model.json")
	if err := trainSynth(t, 500).Save(modelPath); err != nil {
		t.Fatal(err)
	}

	cmd, lines := asMain(t, "serve", "--model", modelPath, "--addr", "127.0.0.1:0")
	addr := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(waitLine(t, lines, `msg=serving`))[1]

	// The model file becomes a named pipe that nobody writes; SIGHUP asks for a reload.
	if err := os.Remove(modelPath); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(modelPath, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if l := waitLine(t, lines, `model reload refused`); !strings.Contains(l, "not a regular file") {
		t.Errorf("the refusal does not say why: %s", l)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("serve no longer answers after the refused reload: %v %v", resp, err)
	}
	resp.Body.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for range lines { // drain stderr so the process can exit
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve ignored SIGTERM for 30 s")
	}
}
