package serve

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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
)

// running is a Run started on a loopback listener.
type running struct {
	url    string
	s      *Server
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

func startRun(t *testing.T, opts Options) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	ready := make(chan *Server, 1)
	hook := opts.onServer // a test's own look at the server, before it serves
	opts.onServer = func(s *Server) {
		if hook != nil {
			hook(s)
		}
		ready <- s
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{url: "http://" + ln.Addr().String(), logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, opts, r.logs) }()
	select {
	case r.s = <-ready:
	case err := <-r.done:
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("Run did not return")
		}
	})
	return r
}

// stop cancels Run and returns its error.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20 s")
		return nil
	}
}

func newClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// post sends a prediction request marked idempotent, as a well-behaved client does: Go's
// transport then retries it on a fresh connection when the server closed a keep-alive
// connection just as the request went out (the race every HTTP/1.1 server has on shutdown).
func post(c *http.Client, url, body string) (status int, version string, err error) {
	req, _ := http.NewRequest("POST", url+"/predict", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "x")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var a predictAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil && resp.StatusCode == 200 {
		return resp.StatusCode, "", fmt.Errorf("decoding answer: %w", err)
	}
	return resp.StatusCode, a.ModelVersion, nil
}

// load runs workers posting body until stop is closed, or until the server refuses new
// connections. It counts answers by version and records any failure: a status other than 200,
// or a transport error before the shutdown began. Transport errors once the shutdown began are
// counted apart (unanswered): the test checks that the server never saw those requests.
type load struct {
	mu         sync.Mutex
	ok         int
	unanswered int
	versions   map[string]int
	failures   []string
	wg         sync.WaitGroup
	stopping   atomic.Bool // the shutdown began
}

func startLoad(url, body string, workers int, stop <-chan struct{}) *load {
	l := &load{versions: map[string]int{}}
	c := newClient()
	for range workers {
		l.wg.Go(func() {
			for n := 0; n < 5000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				status, version, err := post(c, url, body)
				l.mu.Lock()
				var dial *net.OpError
				switch {
				case err != nil && l.stopping.Load():
					// The listener closed: the connection was refused, or reset while it was
					// still in the kernel's accept queue, never accepted by the server.
					l.unanswered++
					if errors.As(err, &dial) && dial.Op == "dial" {
						l.mu.Unlock()
						return
					}
				case err != nil:
					l.failures = append(l.failures, err.Error())
				case status != 200:
					l.failures = append(l.failures, fmt.Sprintf("status %d", status))
				default:
					l.ok++
					l.versions[version]++
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *load) wait() { l.wg.Wait() }

// modelOptions saves a test model and returns it with the defaults pointing at its file.
func modelOptions(t *testing.T) (*model.Model, Options) {
	t.Helper()
	m := testModel(t, "v1")
	opts := testOptions()
	opts.ModelPath = saveModel(t, t.TempDir(), m)
	return m, opts
}

func TestShutdownUnderLoadFailsNoRequest(t *testing.T) {
	m, opts := modelOptions(t)
	opts.DrainDelay = 300 * time.Millisecond
	opts.ShutdownTimeout = 10 * time.Second
	r := startRun(t, opts)

	// One request is held inside the server across the whole shutdown.
	var held atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	r.s.beforeCompute = func() {
		if held.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
	}
	body := `{"x": ` + vectorJSON(m, atl) + `}`
	heldStatus := make(chan int, 1)
	go func() {
		st, _, err := post(newClient(), r.url, body)
		if err != nil {
			t.Errorf("held request: %v", err)
		}
		heldStatus <- st
	}()
	<-entered
	l := startLoad(r.url, body, 4, nil)
	waitFor(t, "some load", func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.ok > 50 })

	l.stopping.Store(true)
	r.cancel() // SIGTERM
	waitFor(t, "readiness to fail", func() bool {
		resp, err := http.Get(r.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	close(release)
	if st := <-heldStatus; st != 200 {
		t.Errorf("the request in flight during shutdown got %d", st)
	}
	if err := <-r.done; err != nil {
		t.Errorf("Run returned %v, want nil (exit 0)", err)
	}
	r.done <- nil
	l.wait()
	if len(l.failures) > 0 {
		t.Errorf("%d requests failed during shutdown (of %d ok): %v", len(l.failures), l.ok, l.failures[:min(5, len(l.failures))])
	}
	// The server answered every prediction it took in with 200. It may count a few more than
	// the clients received: net/http can read a request off a keep-alive connection in the
	// instant Shutdown closes it as idle; the client then retries the idempotent request on a new
	// connection, so no client sees a failure.
	for _, mt := range gatherFamily(t, r.s.Registry(), "delayctl_http_requests_total").GetMetric() {
		labels := fmt.Sprint(mt.GetLabel())
		if strings.Contains(labels, `"/predict"`) && !strings.Contains(labels, `value:"200"`) && mt.GetCounter().GetValue() > 0 {
			t.Errorf("the server answered predictions other than 200: %v", mt)
		}
	}
	if handled := value(t, r.s.met.requests.WithLabelValues("/predict", "POST", "200")); handled < float64(l.ok+1) {
		t.Errorf("the server answered %v predictions, fewer than the %d + 1 held the clients received", handled, l.ok)
	}
	t.Logf("%d answered, %d unanswered at the closed door", l.ok, l.unanswered)
	if _, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://")); err == nil {
		t.Error("the listener still accepts connections after shutdown")
	}
	if logs := r.logs.String(); !strings.Contains(logs, "shutting down: readiness is false") || !strings.Contains(logs, "stopped: every request finished") {
		t.Errorf("shutdown not logged:\n%s", logs)
	}
}

func TestReloadsUnderLoadFailNoRequest(t *testing.T) {
	dir := t.TempDir()
	v1, v2, v3 := testModel(t, "v1"), testModel(t, "v2"), testModel(t, "v3")
	opts := testOptions()
	opts.ModelPath = saveModel(t, dir, v1)
	sighup := make(chan os.Signal, 1)
	opts.Reload = sighup
	r := startRun(t, opts)
	body := `{"x": ` + vectorJSON(v1, atl) + `}`
	stop := make(chan struct{})
	l := startLoad(r.url, body, 4, stop)
	seen := func(v string) func() bool {
		return func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.versions[v] > 20 }
	}
	waitFor(t, "answers from v1", seen("v1"))

	// SIGHUP with a new model: swapped in.
	saveModel(t, dir, v2)
	sighup <- syscall.SIGHUP
	waitFor(t, "answers from v2", seen("v2"))

	// A corrupt file: refused, v2 keeps serving.
	if err := os.WriteFile(opts.ModelPath, []byte(`{"schema_version": "delayctl.model/v1", "name": `), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(r.url+"/admin/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ans reloadAnswer
	_ = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if resp.StatusCode != 422 || ans.Result != "failure" || ans.Model.Version != "v2" || !strings.Contains(ans.Error, "not a JSON model") {
		t.Errorf("reload of a corrupt file: %d %+v", resp.StatusCode, ans)
	}

	// POST /admin/reload with a good model.
	saveModel(t, dir, v3)
	resp, err = http.Post(r.url+"/admin/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ans = reloadAnswer{}
	_ = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if resp.StatusCode != 200 || ans.Result != "success" || ans.Model.Version != "v3" || ans.Previous == nil || ans.Previous.Version != "v2" {
		t.Errorf("reload: %d %+v", resp.StatusCode, ans)
	}
	waitFor(t, "answers from v3", seen("v3"))
	close(stop)
	l.wait()
	if len(l.failures) > 0 {
		t.Errorf("%d requests failed across reloads: %v", len(l.failures), l.failures[:min(5, len(l.failures))])
	}
	if got := value(t, r.s.met.reloadOK); got != 2 {
		t.Errorf("successful reloads %v, want 2", got)
	}
	if got := value(t, r.s.met.reloadFail); got != 1 {
		t.Errorf("failed reloads %v, want 1", got)
	}
	metrics := getBody(t, r.url+"/metrics")
	if !strings.Contains(metrics, `delayctl_model_info{checksum="`+v3.Checksum+`",name="flight-delay",version="v3"} 1`) ||
		strings.Contains(metrics, `version="v1"`) {
		t.Errorf("model_info does not show exactly v3:\n%s", grepLines(metrics, "delayctl_model_info"))
	}
	if logs := r.logs.String(); !strings.Contains(logs, "model reload refused; the old model keeps serving") {
		t.Errorf("refused reload not logged:\n%s", logs)
	}
}

func TestWatchReloadsAChangedModelFile(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.ModelPath = saveModel(t, dir, testModel(t, "v1"))
	opts.Watch, opts.WatchInterval = true, 20*time.Millisecond
	r := startRun(t, opts)
	version := func() string {
		var a struct {
			ModelVersion string `json:"model_version"`
		}
		_ = json.Unmarshal([]byte(getBody(t, r.url+"/readyz")), &a)
		return a.ModelVersion
	}
	saveModel(t, dir, testModel(t, "v2"))
	waitFor(t, "the watcher to load v2", func() bool { return version() == "v2" })

	if err := os.WriteFile(opts.ModelPath, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher to refuse the broken file", func() bool { return value(t, r.s.met.reloadFail) == 1 })
	if v := version(); v != "v2" {
		t.Errorf("serving %q after a broken file, want v2", v)
	}
	if err := os.Remove(opts.ModelPath); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a warning about the missing file", func() bool { return strings.Contains(r.logs.String(), "cannot watch the model file") })
	if v := version(); v != "v2" {
		t.Errorf("serving %q after the file went away, want v2", v)
	}
}

func TestSlowClientsCannotHoldTheServer(t *testing.T) {
	m, opts := modelOptions(t)
	opts.ReadHeaderTimeout = 200 * time.Millisecond
	opts.ReadTimeout = 400 * time.Millisecond
	opts.MaxInflight = 1
	r := startRun(t, opts)
	addr := strings.TrimPrefix(r.url, "http://")

	tests := map[string]string{
		"A client that never finishes its headers is cut off.":          "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
		"A client that trickles its body is cut off.":                   "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"x\": [",
		"A client that opens a connection and says nothing is cut off.": "",
	}
	var wg sync.WaitGroup
	closed := make(map[string]error)
	answers := make(map[string]string)
	var mu sync.Mutex
	for name, prefix := range tests {
		for range 5 {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(conn, prefix); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				defer conn.Close()
				// The server must close the connection; 10 s is only a bound so that a broken
				// server fails the test instead of hanging it.
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				answer, err := io.ReadAll(bufio.NewReader(conn))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					closed[name] = err
				}
				answers[name] = string(answer)
			})
		}
	}
	// Meanwhile a normal client is served, even with --max-inflight 1 and ten slow requests open.
	c := newClient()
	for range 20 {
		if st, _, err := post(c, r.url, `{"x": `+vectorJSON(m, atl)+`}`); err != nil || st != 200 {
			t.Fatalf("normal request during the slow clients: %d %v", st, err)
		}
	}
	wg.Wait()
	for name := range tests {
		if err := closed[name]; err != nil {
			t.Errorf("%s: the server did not close the connection: %v", name, err)
		}
	}
	// The body that never arrived is answered, as the docs say; the others are just closed.
	if a := answers["A client that trickles its body is cut off."]; !strings.HasPrefix(a, "HTTP/1.1 408 ") || !strings.Contains(a, "--read-timeout") {
		t.Errorf("the trickling client got %q, want a 408 naming --read-timeout", a)
	}
	if h, rd := value(t, r.s.met.timedOut.WithLabelValues(timeoutHeader)), value(t, r.s.met.timedOut.WithLabelValues(timeoutRead)); h != 10 || rd != 5 {
		t.Errorf("connections timed out: header %v, read %v; want 10 and 5", h, rd)
	}
}

func TestClientsThatDoNotReadOrGoIdleAreCutOff(t *testing.T) {
	m, opts := modelOptions(t)
	opts.WriteTimeout = 300 * time.Millisecond
	opts.IdleTimeout = 300 * time.Millisecond
	opts.metricsCacheTTL = -1 // every scrape gathers, unlimited: the answers below must be large
	r := startRun(t, opts)
	addr := strings.TrimPrefix(r.url, "http://")

	t.Run("A client that never reads its answers is cut off by --write-timeout.", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.(*net.TCPConn).SetReadBuffer(4096)
		// 4,000 pipelined scrapes ask for about 40 MB of answers: more than any socket
		// buffers hold, so the server's write blocks until the timeout fails it. The server
		// stops reading meanwhile, so the client's own write may block too and then fail
		// when the server cuts the connection: its error says nothing here.
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		req := "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
		go func() { _, _ = io.WriteString(conn, strings.Repeat(req, 4000)) }()
		waitFor(t, "a write timeout", func() bool { return value(t, r.s.met.timedOut.WithLabelValues(timeoutWrite)) == 1 })
	})

	t.Run("An idle keep-alive connection is closed after --idle-timeout, not before.", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		idleSince := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("read on the idle connection: %d bytes, %v; want the server to close it", n, err)
		}
		if idle := time.Since(idleSince); idle < opts.IdleTimeout {
			t.Errorf("closed after %v idle, before --idle-timeout %v", idle, opts.IdleTimeout)
		}
		if v := value(t, r.s.met.timedOut.WithLabelValues(timeoutIdle)); v != 1 {
			t.Errorf("idle timeouts counted: %v, want 1", v)
		}
	})

	// The server still answers.
	if st, _, err := post(newClient(), r.url, `{"x": `+vectorJSON(m, atl)+`}`); err != nil || st != 200 {
		t.Fatalf("normal request after the cut-offs: %d %v", st, err)
	}
}

func TestRunRefusesBadInputWithExitCode2(t *testing.T) {
	dir := t.TempDir()
	good := saveModel(t, dir, testModel(t, "v1"))
	bad := dir + "/bad.json"
	if err := os.WriteFile(bad, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		edit func(*Options)
		msg  string
	}{
		"A missing --model is refused.":        {func(o *Options) { o.ModelPath = "" }, "--model is required"},
		"An invalid model file is refused.":    {func(o *Options) { o.ModelPath = bad }, "unsupported schema_version"},
		"A missing keys file is refused.":      {func(o *Options) { o.AuthKeysFile = dir + "/nokeys" }, "could not read auth keys"},
		"An unknown log format is refused.":    {func(o *Options) { o.LogFormat = "xml" }, `--log-format "xml"`},
		"A zero body limit is refused.":        {func(o *Options) { o.MaxBodyBytes = 0 }, "--max-body-bytes 0: want 1 to"},
		"An address without a port is refused": {func(o *Options) { o.Addr = "localhost" }, `--addr "localhost"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := testOptions()
			o.ModelPath = good
			tc.edit(&o)
			err := Run(context.Background(), o, io.Discard)
			if !errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Run = %v, want an input error saying %q", err, tc.msg)
			}
		})
	}
}

func TestRunLogsOneStartLine(t *testing.T) {
	m, opts := modelOptions(t)
	opts.LogFormat = "json"
	r := startRun(t, opts)
	waitFor(t, "the start line", func() bool { return strings.Contains(r.logs.String(), `"msg":"serving"`) })
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(r.logs.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"addr": strings.TrimPrefix(r.url, "http://"), "model": "flight-delay", "version": "v1", "checksum": m.Checksum}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("start line %s = %v, want %v", k, line[k], v)
		}
	}
	if err := r.stop(t); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// waitFor polls cond for up to 10 s; the bound only keeps a broken server from hanging the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
