//go:build hostile

// Hostile clients against a real `delayctl serve` process (make hostile): memory under stalled
// bodies, a huge Content-Length and thousands of idle connections, and a /metrics flood. Each
// case starts its own server with GOMEMLIMIT=200MiB, the deploy/k8s setting under a 256 Mi
// limit, attacks it over loopback for a bounded count and time while a well-behaved client
// keeps asking, then reads the server's peak resident memory (VmHWM) from /proc.
//
// DELAYCTL_HOSTILE_BIN runs the cases against another build (docs/PERFORMANCE.md measures
// main's this way); by default the test builds this tree's binary.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/serve"
)

// maxHWM is the peak resident memory every case must stay under: the container limit.
const maxHWM = 256 << 20

type hostileEnv struct {
	bin, model, body string
}

var (
	hostileOnce sync.Once
	hostile     hostileEnv
	hostileErr  error
	hostileDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if hostileDir != "" {
		_ = os.RemoveAll(hostileDir)
	}
	os.Exit(code)
}

// hostileSetup builds delayctl (unless DELAYCTL_HOSTILE_BIN names one), trains a model on
// synthetic rows and makes a single-vector body for it.
func hostileSetup(t *testing.T) hostileEnv {
	t.Helper()
	hostileOnce.Do(func() {
		dir, err := os.MkdirTemp("", "delayctl-hostile")
		if err != nil {
			hostileErr = err
			return
		}
		hostileDir = dir
		bin := os.Getenv("DELAYCTL_HOSTILE_BIN")
		if bin == "" {
			bin = filepath.Join(dir, "delayctl")
			if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
				hostileErr = fmt.Errorf("go build: %v\n%s", err, out)
				return
			}
		}
		data, model := filepath.Join(dir, "data.csv"), filepath.Join(dir, "model.json")
		for _, args := range [][]string{{"data", "synth", "--rows", "3000", "--out", data}, {"train", "--data", data, "--out", model}} {
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				hostileErr = fmt.Errorf("delayctl %v: %v\n%s", args, err, out)
				return
			}
		}
		var m struct {
			VectorLength int `json:"vector_length"`
		}
		raw, err := os.ReadFile(model)
		if err == nil {
			err = json.Unmarshal(raw, &m)
		}
		if err != nil || m.VectorLength == 0 {
			hostileErr = fmt.Errorf("reading the model's vector length: %v", err)
			return
		}
		x := make([]string, m.VectorLength)
		for i := range x {
			x[i] = "0"
		}
		x[0] = "1"
		hostile = hostileEnv{bin: bin, model: model, body: `{"x": [` + strings.Join(x, ",") + `]}`}
	})
	if hostileErr != nil {
		t.Fatal(hostileErr)
	}
	return hostile
}

type hostileServer struct {
	cmd       *exec.Cmd
	addr, ops string
	logs      *bytes.Buffer
	exited    chan struct{}
	exitErr   error
	exited2   atomic.Bool
}

// startHostile runs delayctl serve with GOMEMLIMIT=200MiB and the extra flags, on free ports.
func startHostile(t *testing.T, env hostileEnv, flags ...string) *hostileServer {
	t.Helper()
	addr, ops := freeAddr(t), ""
	args := []string{"serve", "--model", env.model, "--addr", addr, "--log-level", "warn"}
	for i, f := range flags {
		if f == "--metrics-addr" && i+1 < len(flags) && flags[i+1] == "auto" {
			ops = freeAddr(t)
			flags[i+1] = ops
		}
	}
	args = append(args, flags...)
	s := &hostileServer{cmd: exec.Command(env.bin, args...), addr: addr, ops: ops, logs: &bytes.Buffer{}, exited: make(chan struct{})}
	s.cmd.Env = append(os.Environ(), "GOMEMLIMIT=200MiB")
	// The server dies with the test process, even if that crashes before its cleanups.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.cmd.Stderr = &lockedWriter{w: s.logs}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exitErr = s.cmd.Wait(); s.exited2.Store(true); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) || s.exited2.Load() {
			t.Fatalf("server did not start: %v\n%s", err, s.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// raiseOpenFiles lets the test hold thousands of connections.
func raiseOpenFiles() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 20000 {
		lim.Cur = min(lim.Max, 20000)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// hwm is the server's peak resident memory in bytes.
func (s *hostileServer) hwm(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("server gone: %v\n%s", err, s.logs)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// checkAlive fails if the server died, with its logs.
func (s *hostileServer) checkAlive(t *testing.T) {
	t.Helper()
	if s.exited2.Load() {
		t.Fatalf("the server died: %v\n%s", s.exitErr, s.logs)
	}
}

// wellBehaved posts the body on fresh connections every 20 ms until stop, counting answers.
type wellBehaved struct {
	ok, other atomic.Int64
	lastErr   atomic.Value
	done      chan struct{}
}

func startWellBehaved(url, body string, header http.Header, stop <-chan struct{}) *wellBehaved {
	w := &wellBehaved{done: make(chan struct{})}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			req, _ := http.NewRequest("POST", url, strings.NewReader(body))
			for k, v := range header {
				req.Header[k] = v
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				w.other.Add(1)
				w.lastErr.Store(err.Error())
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				w.ok.Add(1)
			} else {
				w.other.Add(1)
				w.lastErr.Store(resp.Status)
			}
		}
	}()
	return w
}

func (w *wellBehaved) check(t *testing.T) {
	t.Helper()
	<-w.done
	t.Logf("well-behaved client: %d answered 200, %d not (last: %v)", w.ok.Load(), w.other.Load(), w.lastErr.Load())
	if w.ok.Load() < 3 || w.other.Load() > w.ok.Load()/10 {
		t.Errorf("the well-behaved client got %d answers and %d failures during the attack", w.ok.Load(), w.other.Load())
	}
}

func TestHostileStalledBodies(t *testing.T) {
	env := hostileSetup(t)
	s := startHostile(t, env)
	stop := make(chan struct{})
	good := startWellBehaved("http://"+s.addr+"/predict", env.body, nil, stop)
	// 600 clients each declare 1 MiB, send all of it but the last byte, and stall.
	const clients, size = 600, 1 << 20
	chunk := bytes.Repeat([]byte("0"), 64<<10)
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	var sent atomic.Int64
	for range clients {
		wg.Go(func() {
			conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			_ = conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := fmt.Fprintf(conn, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size); err != nil {
				return
			}
			for left := size - 1; left > 0; {
				n, err := conn.Write(chunk[:min(left, len(chunk))])
				left -= n
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // the stalled bodies held while the well-behaved client asks
	close(stop)
	s.checkAlive(t)
	hwm := s.hwm(t)
	t.Logf("%d clients sent %d MiB of bodies and stalled; server VmHWM %d MiB", clients, sent.Load()>>20, hwm>>20)
	for _, c := range conns {
		c.Close()
	}
	good.check(t)
	if hwm > maxHWM {
		t.Errorf("VmHWM %d MiB, over %d MiB", hwm>>20, maxHWM>>20)
	}
}

func TestHostileHugeContentLength(t *testing.T) {
	env := hostileSetup(t)
	// The largest --max-body-bytes serve accepts (a 100 GB one is refused as a unit slip), so
	// the declared lengths below pass the size check and meet the body budget.
	s := startHostile(t, env, "--max-body-bytes", strconv.Itoa(serve.MaxMaxBodyBytes))
	stop := make(chan struct{})
	good := startWellBehaved("http://"+s.addr+"/predict", env.body, nil, stop)
	chunk := bytes.Repeat([]byte("0"), 256<<10)
	tests := map[string]string{
		"A declared length of 99999999999 bytes.":        "Content-Length: 99999999999\r\n\r\n",
		"A declared length just under --max-body-bytes.": fmt.Sprintf("Content-Length: %d\r\n\r\n", serve.MaxMaxBodyBytes-1),
		"A chunked body that never ends.":                "Transfer-Encoding: chunked\r\n\r\n",
	}
	for name, header := range tests {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := io.WriteString(conn, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+header); err != nil {
				t.Fatal(err)
			}
			// Stream up to 400 MiB, or until the server answers and closes.
			var sent int64
			chunked := strings.Contains(header, "chunked")
			for sent < 400<<20 {
				var err error
				if chunked {
					_, err = fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk)
				} else {
					_, err = conn.Write(chunk)
				}
				if err != nil {
					break
				}
				sent += int64(len(chunk))
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			status := "no answer"
			if err == nil {
				status = resp.Status
			}
			t.Logf("sent %d MiB; the server answered %s", sent>>20, status)
			s.checkAlive(t)
		})
	}
	close(stop)
	hwm := s.hwm(t)
	t.Logf("server VmHWM %d MiB", hwm>>20)
	good.check(t)
	if hwm > maxHWM {
		t.Errorf("VmHWM %d MiB, over %d MiB", hwm>>20, maxHWM>>20)
	}
}

func TestHostileIdleConnections(t *testing.T) {
	env := hostileSetup(t)
	raiseOpenFiles()
	s := startHostile(t, env)
	// 8,000 keep-alive connections, each asking once and then idle.
	const n = 8000
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	answered := 0
	for range n {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			continue
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			continue
		}
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			resp.Body.Close()
			answered++
		}
	}
	stop := make(chan struct{})
	good := startWellBehaved("http://"+s.addr+"/predict", env.body, nil, stop)
	time.Sleep(3 * time.Second)
	close(stop)
	s.checkAlive(t)
	hwm := s.hwm(t)
	t.Logf("%d connections opened, %d answered; server VmHWM %d MiB", len(conns), answered, hwm>>20)
	good.check(t)
	if hwm > maxHWM {
		t.Errorf("VmHWM %d MiB, over %d MiB", hwm>>20, maxHWM>>20)
	}
}

// A flood of anonymous /metrics scrapes: with --metrics-addr the main listener does not serve
// them at all (never gathering) while the operations listener does; without it the main
// listener answers 429 beyond its scrape rate. Keyed predictions are answered throughout.
func TestHostileMetricsFlood(t *testing.T) {
	env := hostileSetup(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.txt")
	out, err := exec.Command(env.bin, "keys", "new", "--name", "hostile", "--append", keys).Output()
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{"Authorization": {"Bearer " + strings.TrimSpace(string(out))}}
	tests := map[string]struct {
		flags []string
		want  int // the flood's answer, beyond the first scrapes
	}{
		// /metrics is no route of the main listener then: like any unknown path, without a key
		// it is answered 401.
		"With --metrics-addr the main listener never gathers.": {flags: []string{"--metrics-addr", "auto"}, want: 401},
		"Without it the main listener limits the scrapes.":     {want: 429},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := startHostile(t, env, append([]string{"--auth-keys", keys}, tc.flags...)...)
			stop := make(chan struct{})
			good := startWellBehaved("http://"+s.addr+"/predict", env.body, header, stop)
			codes := map[int]int{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			for range 8 {
				wg.Go(func() {
					for range 500 {
						resp, err := c.Get("http://" + s.addr + "/metrics")
						code := 0
						if err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							code = resp.StatusCode
						}
						mu.Lock()
						codes[code]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			close(stop)
			t.Logf("4,000 scrapes of the main listener answered: %v", codes)
			if codes[tc.want] < 3900 {
				t.Errorf("answers %v; want nearly all %d", codes, tc.want)
			}
			if s.ops != "" {
				resp, err := http.Get("http://" + s.ops + "/metrics")
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("the operations listener: %v %v", resp, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !bytes.Contains(b, []byte("delayctl_http_requests_total")) {
					t.Error("the operations listener's /metrics lacks the request counter")
				}
			}
			good.check(t)
		})
	}
}

// Connection overload with --shed-queue-delay: 800 closed-loop clients, each re-sending as soon
// as it is answered. The server's canary sees the queue, the connection limit falls, and the
// excess is answered 503 with Retry-After on its open connection; the rest are served, no
// client times out and no connection is closed on one. Only the mechanism is asserted: how fast
// answers come depends on the machine.
func TestHostileConnectionOverloadSheds(t *testing.T) {
	env := hostileSetup(t)
	raiseOpenFiles()
	s := startHostile(t, env, "--shed-queue-delay", "1ms", "--metrics-addr", "auto")
	var ok, shed, badShed, timeouts, other atomic.Int64
	var lastOther atomic.Value
	deadline := time.Now().Add(6 * time.Second)
	var wg sync.WaitGroup
	for range 800 {
		wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			for time.Now().Before(deadline) {
				resp, err := c.Post("http://"+s.addr+"/predict", "application/json", strings.NewReader(env.body))
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						timeouts.Add(1)
					} else {
						other.Add(1)
						lastOther.Store(err.Error())
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					ok.Add(1)
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "1":
					shed.Add(1)
				default:
					badShed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	s.checkAlive(t)
	resp, err := http.Get("http://" + s.ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var limits []string
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, "delayctl_connection_limit ") || strings.HasPrefix(line, "delayctl_max_connections ") ||
			strings.HasPrefix(line, "delayctl_shed_requests_by_reason_total") {
			limits = append(limits, line)
		}
	}
	t.Logf("served %d, shed %d (503 Retry-After), other statuses %d, timeouts %d, connection errors %d (last: %v); %s",
		ok.Load(), shed.Load(), badShed.Load(), timeouts.Load(), other.Load(), lastOther.Load(), strings.Join(limits, "; "))
	if ok.Load() == 0 || shed.Load() == 0 {
		t.Errorf("served %d and shed %d: want both", ok.Load(), shed.Load())
	}
	if timeouts.Load() > 0 || badShed.Load() > 0 || other.Load() > 0 {
		t.Errorf("%d client timeouts, %d connection errors and %d answers other than 200 or 503 with Retry-After",
			timeouts.Load(), other.Load(), badShed.Load())
	}
}

// 6,000 connections, more than --max-conns, each sending almost --max-header-bytes of headers
// and then stalling before the blank line: headers are held until --read-header-timeout,
// outside any body budget, so only the connection cap bounds them.
func TestHostileStalledHeaders(t *testing.T) {
	env := hostileSetup(t)
	raiseOpenFiles()
	s := startHostile(t, env)
	stop := make(chan struct{})
	good := startWellBehaved("http://"+s.addr+"/predict", env.body, nil, stop)
	line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
	head := "GET /healthz HTTP/1.1\r\nHost: x\r\n" + strings.Repeat(line, 60) // about 60 KiB
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 6000 {
		c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			continue
		}
		conns = append(conns, c)
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.WriteString(c, head)
	}
	time.Sleep(time.Second)
	close(stop)
	s.checkAlive(t)
	hwm := s.hwm(t)
	t.Logf("%d connections sent 60 KiB of headers each and stalled; server VmHWM %d MiB", len(conns), hwm>>20)
	good.check(t)
	if hwm > maxHWM {
		t.Errorf("VmHWM %d MiB, over %d MiB", hwm>>20, maxHWM>>20)
	}
}
