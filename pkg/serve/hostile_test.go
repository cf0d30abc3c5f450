package serve

// Hostile clients and unlucky operators (issue 10), each against a real server on 127.0.0.1:
// every case is bounded in time, checks the exact status and that the body is JSON, and that
// the server still answers afterwards.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
)

// mkfifo makes a named pipe at path; opening it for reading blocks until a writer comes,
// which none does.
func mkfifo(t *testing.T, path string) string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// within fails the test unless f returns within d.
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		var zero T
		return zero
	}
}

func TestFilesThatAreNotRegularAreRefusedWithoutBlocking(t *testing.T) {
	dir := t.TempDir()
	good := saveModel(t, dir, testModel(t, "v1"))
	tests := map[string]func(o *Options){
		"A named pipe as --model is refused.":     func(o *Options) { o.ModelPath = mkfifo(t, filepath.Join(dir, "model.fifo")) },
		"A directory as --model is refused.":      func(o *Options) { o.ModelPath = dir },
		"A named pipe as --auth-keys is refused.": func(o *Options) { o.AuthKeysFile = mkfifo(t, filepath.Join(dir, "keys.fifo")) },
	}
	for name, set := range tests {
		t.Run(name, func(t *testing.T) {
			opts := testOptions()
			opts.ModelPath = good
			set(&opts)
			err := within(t, 5*time.Second, "Run", func() error { return Run(context.Background(), opts, &syncBuffer{}) })
			if !errors.Is(err, inputerr.Err) || !errors.Is(err, model.ErrNotRegular) {
				t.Fatalf("Run = %v, want an input error saying the file is not regular", err)
			}
		})
	}
	t.Run("keys new --append to a named pipe is refused.", func(t *testing.T) {
		fifo := mkfifo(t, filepath.Join(dir, "append.fifo"))
		err := within(t, 5*time.Second, "AppendKey", func() error { return AppendKey(fifo, "dk_x", "ci") })
		if !errors.Is(err, model.ErrNotRegular) {
			t.Fatalf("AppendKey = %v, want it refused as not a regular file", err)
		}
	})
}

func TestReloadOfANamedPipeIsRefusedAndShutdownStillWorks(t *testing.T) {
	m, opts := modelOptions(t)
	reload := make(chan os.Signal, 1)
	opts.Reload = reload
	r := startRun(t, opts)

	// The model file becomes a named pipe, and SIGHUP asks for a reload.
	if err := os.Remove(opts.ModelPath); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, opts.ModelPath)
	reload <- syscall.SIGHUP
	waitFor(t, "the refused reload", func() bool { return value(t, r.s.met.reloadFail) == 1 })
	if !strings.Contains(r.logs.String(), "not a regular file (a named pipe)") {
		t.Errorf("the log does not say why the reload was refused:\n%s", r.logs)
	}
	if st, _, err := post(newClient(), r.url, `{"x": `+vectorJSON(m, atl)+`}`); err != nil || st != 200 {
		t.Fatalf("request after the refused reload: %d %v", st, err)
	}

	// A reload stuck for good (here: holding the lock a reload needs) does not hold up shutdown.
	r.s.reloadMu.Lock()
	defer r.s.reloadMu.Unlock()
	reload <- syscall.SIGHUP
	reload <- syscall.SIGHUP // and one more while it is stuck
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("Run = %v, want a clean shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown waited for a stuck reload")
	}
}

// rawExchange sends req as it is on a new connection and reads one answer, within 10 s.
func rawExchange(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to %q: %v", clipRequest(req), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("answer to %q cut short: %v", clipRequest(req), err)
	}
	return resp, body
}

func clipRequest(req string) string {
	if len(req) > 80 {
		return req[:80] + "..."
	}
	return req
}

// stillServes fails the test unless the server answers an ordinary prediction.
func stillServes(t *testing.T, url string, m *model.Model) {
	t.Helper()
	if st, _, err := post(newClient(), url, `{"x": `+vectorJSON(m, atl)+`}`); err != nil || st != http.StatusOK {
		t.Fatalf("the server no longer answers: %d %v", st, err)
	}
}

// overflowModel is the test model with two coefficients of opposite sign beyond 1, so that
// the largest float64 at both indexes overflows to +Inf and -Inf.
func overflowModel(t *testing.T) *model.Model {
	m := testModel(t, "v1")
	m.Coefficients[0], m.Coefficients[1] = 2, -2
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := m.Seal(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHostileRequestsGetAJSONAnswerWithTheRightStatus(t *testing.T) {
	m := overflowModel(t)
	opts := testOptions()
	opts.ModelPath = saveModel(t, t.TempDir(), m)
	r := startRun(t, opts)
	addr := strings.TrimPrefix(r.url, "http://")

	const huge = "1.7976931348623157e308"
	overflow := make([]string, m.NumFeatures())
	for i := range overflow {
		overflow[i] = "0"
	}
	overflow[0], overflow[1] = huge, huge
	overflowX := "[" + strings.Join(overflow, ",") + "]"
	row := "[" + strings.Repeat("0,", m.NumFeatures()-1) + "0]"
	infer := func(datatype, shape, data string) string {
		return fmt.Sprintf(`{"inputs":[{"name":"x","datatype":%q,"shape":%s,"data":%s}]}`, datatype, shape, data)
	}
	intData := func(v string) string {
		return "[" + strings.Repeat("0,", m.NumFeatures()-1) + v + "]"
	}
	request := func(method, path, body string, headers ...string) string {
		h := strings.Join(headers, "")
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s", method, path, h, len(body), body)
	}
	inferPath := "/v2/models/" + m.Name + "/infer"
	nf := m.NumFeatures()
	tests := map[string]struct {
		req      string
		status   int
		contains string
	}{
		"Products that overflow to +Inf and -Inf answer a finite probability on /predict.": {
			request("POST", "/predict", `{"x":`+overflowX+`}`), 200, `"probability":`},
		"Products that overflow answer a finite probability on OIP infer.": {
			request("POST", inferPath, infer("FP64", fmt.Sprintf("[1,%d]", nf), overflowX)), 200, `"data":[`},
		"INT8 data of 1000 is refused, naming the input and the element.": {
			request("POST", inferPath, infer("INT8", fmt.Sprintf("[1,%d]", nf), intData("1000"))), 400, fmt.Sprintf(`input \"x\": data element %d is 1000, outside the range of INT8`, nf-1)},
		"UINT8 data of -1 is refused.": {
			request("POST", inferPath, infer("UINT8", fmt.Sprintf("[1,%d]", nf), intData("-1"))), 400, "outside the range of UINT8"},
		"FP32 data beyond float32 is refused.": {
			request("POST", inferPath, infer("FP32", fmt.Sprintf("[1,%d]", nf), intData("1e39"))), 400, "is 1e+39, outside the range of FP32"},
		"Ragged nested rows are refused, not re-split.": {
			request("POST", inferPath, infer("FP64", fmt.Sprintf("[2,%d]", nf), "[["+strings.Repeat("0,", nf)+"0],["+strings.Repeat("0,", nf-2)+"0]]")), 400, fmt.Sprintf("data row 0 has %d elements, the shape [2, %d] says %d", nf+1, nf, nf)},
		"Nested rows more than the shape says are refused.": {
			request("POST", inferPath, infer("FP64", fmt.Sprintf("[1,%d]", nf), "["+row+","+row+"]")), 400, "data has 2 rows, the shape"},
		"CONNECT gets a JSON 405, not a text 404.": {
			"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, "not a proxy"},
		"An unknown method on a route gets a JSON 405.": {
			request("BREW", "/predict", ""), 405, "method BREW is not allowed"},
		"//predict is served as /predict, not redirected with HTML.": {
			request("POST", "//predict", `{"x":`+row+`}`), 200, `"predictions":[`},
		"A path with dot segments is served as its clean path.": {
			request("GET", "/v2/../healthz", ""), 200, `"status"`},
		"OPTIONS * gets a JSON 404, not net/http's empty 200.": {
			"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 404, "no route *"},
		"An unknown path gets a JSON 404.": {
			request("GET", "/nope", ""), 404, "no route /nope"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp, body := rawExchange(t, addr, tt.req)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if !json.Valid(body) {
				t.Errorf("body is not JSON: %s", body)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("body %s, want it to contain %s", body, tt.contains)
			}
			var probs struct {
				Predictions []struct{ Probability float64 } `json:"predictions"`
			}
			if json.Unmarshal(body, &probs) == nil {
				for _, p := range probs.Predictions {
					if !(p.Probability >= 0 && p.Probability <= 1) {
						t.Errorf("probability %v", p.Probability)
					}
				}
			}
			stillServes(t, r.url, m)
		})
	}

	t.Run("An Expect header other than 100-continue gets net/http's own empty 417.", func(t *testing.T) {
		// net/http answers this before any handler runs and offers no hook (docs/SERVE.md).
		resp, body := rawExchange(t, addr, request("POST", "/predict", `{"x":`+row+`}`, "Expect: bogus\r\n"))
		if resp.StatusCode != http.StatusExpectationFailed || len(body) != 0 || !resp.Close {
			t.Errorf("status %d, %d body bytes, close %v; want 417, empty, connection closed", resp.StatusCode, len(body), resp.Close)
		}
		stillServes(t, r.url, m)
	})
}

func TestASlowBodyGets408JSONAndIsCountedOnceAsARead(t *testing.T) {
	m, opts := modelOptions(t)
	// As with the defaults, the read and write timeouts end together. The header timeout is
	// long enough that a slow machine does not cut the headers off first.
	opts.ReadHeaderTimeout = 5 * time.Second
	opts.ReadTimeout = 400 * time.Millisecond
	opts.WriteTimeout = 400 * time.Millisecond
	r := startRun(t, opts)
	addr := strings.TrimPrefix(r.url, "http://")
	const clients = 3
	for range clients {
		resp, body := rawExchange(t, addr, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"x\": [")
		if resp.StatusCode != http.StatusRequestTimeout || !json.Valid(body) || !strings.Contains(string(body), "--read-timeout") {
			t.Fatalf("status %d, body %s; want a JSON 408 naming --read-timeout", resp.StatusCode, body)
		}
	}
	stillServes(t, r.url, m)
	// The handler counted each 408 before answering it, and the guard forgot the connections
	// it closed after.
	for timeout, want := range map[string]float64{timeoutRead: clients, timeoutWrite: 0, timeoutHeader: 0, timeoutIdle: 0} {
		if got := value(t, r.s.met.timedOut.WithLabelValues(timeout)); got != want {
			t.Errorf("%s timeouts counted %v, want %v", timeout, got, want)
		}
	}
}
