package serve

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestConnLimiterFollowsQueueDelay(t *testing.T) {
	const target = 5 * time.Millisecond
	tests := map[string]struct {
		start  int64
		inUse  int64
		delays []time.Duration // one per update; 0 means nothing measured
		want   int64
	}{
		"A delay of twice the target halves the limit.":        {start: 1000, inUse: 1000, delays: []time.Duration{10 * time.Millisecond}, want: 500},
		"A delay ten times the target halves it, no more.":     {start: 1000, inUse: 1000, delays: []time.Duration{50 * time.Millisecond}, want: 500},
		"A delay a quarter over the target cuts it by a fifth": {start: 1000, inUse: 1000, delays: []time.Duration{6250 * time.Microsecond}, want: 800},
		"A standing queue drives the limit to its floor.": {start: 1000, inUse: 1000,
			delays: []time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second, time.Second, time.Second}, want: 16},
		"Under the target a limit in use grows by its square root.": {start: 100, inUse: 60, delays: []time.Duration{time.Millisecond}, want: 110},
		"Under the target an unused limit does not grow.":           {start: 100, inUse: 10, delays: []time.Duration{time.Millisecond}, want: 100},
		"With no measurement (the canary paused) it doubles.":       {start: 100, inUse: 10, delays: []time.Duration{0}, want: 200},
		"The limit never exceeds the maximum.":                      {start: 1990, inUse: 2000, delays: []time.Duration{0}, want: 2000},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			i := 0
			delay := func() (time.Duration, bool) {
				d := tc.delays[i]
				i++
				return d, d > 0
			}
			l := newConnLimiter(target, 16, 2000, delay, func() int64 { return tc.inUse })
			l.cur.Store(tc.start)
			for range tc.delays {
				l.update()
			}
			if got := l.limit(); got != tc.want {
				t.Errorf("limit %d, want %d", got, tc.want)
			}
			if got, want := time.Duration(l.measured.Load()), tc.delays[len(tc.delays)-1]; got != want {
				t.Errorf("measured delay %v, want %v", got, want)
			}
		})
	}
}

func TestCanaryReportsTheFastestRoundTripOrTheOldestWait(t *testing.T) {
	c := newCanary()
	if _, ok := c.delay(); ok {
		t.Error("a canary that sent nothing reported a delay")
	}
	c.best = 3 * time.Millisecond
	if d, ok := c.delay(); !ok || d != 3*time.Millisecond {
		t.Errorf("delay %v %v, want 3ms", d, ok)
	}
	c.sentAt = time.Now().Add(-time.Second)
	if d, ok := c.delay(); !ok || d < time.Second {
		t.Errorf("a request out for a second: delay %v %v, want at least 1s", d, ok)
	}
	ts := startRun(t, func() Options { _, o := modelOptions(t); return o }())
	resp, err := http.Get(ts.url + canaryPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(canaryBody) {
		t.Errorf("canary path answered %d %q", resp.StatusCode, body)
	}
	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "http://127.0.0.1:8080" + canaryPath,
		"[::]:8080":      "http://[::1]:8080" + canaryPath,
		"10.1.2.3:8080":  "http://10.1.2.3:8080" + canaryPath,
		"127.0.0.1:9000": "http://127.0.0.1:9000" + canaryPath,
	} {
		a, _ := net.ResolveTCPAddr("tcp", addr)
		if got := canaryURL(a); got != want {
			t.Errorf("canaryURL(%s) = %s, want %s", addr, got, want)
		}
	}
}

// rawRequest sends one request on conn and reads its answer.
func rawRequest(conn net.Conn, br *bufio.Reader, req string) (*http.Response, string, error) {
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func predictRequest(body string) string {
	return fmt.Sprintf("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// Injected queueing delay lowers the limit below the open connections: the members beyond it
// leave as their requests end, and a request of any other connection waits for a place and is
// answered 503 with Retry-After on its still open connection when none opens; a member that
// closes gives its place to the newest waiting request. The limiter's own measurement is
// replaced by a fake one; the rest is the real server.
func TestQueueDelayShedsConnectionsBeyondTheLimit(t *testing.T) {
	m, opts := modelOptions(t)
	opts.ShedQueueDelay = 5 * time.Millisecond
	var delay atomic.Int64 // nanoseconds
	opts.onServer = func(s *Server) {
		s.prot.lim.min = 2
		s.prot.lim.delay = func() (time.Duration, bool) { return time.Duration(delay.Load()), true }
		s.adm.q.rejectAfter = int64(time.Second)
		// No member leaves for being idle: the test's clients send one request at a time.
		s.adm.lease, s.adm.idleWait = int64(time.Hour), int64(time.Hour)
	}
	r := startRun(t, opts)
	s := r.s
	body := `{"x": ` + vectorJSON(m, atl) + `}`
	addr := strings.TrimPrefix(r.url, "http://")
	type client struct {
		conn net.Conn
		br   *bufio.Reader
	}
	var clients []client
	for range 6 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := client{conn, bufio.NewReader(conn)}
		if resp, _, err := rawRequest(c.conn, c.br, predictRequest(body)); err != nil || resp.StatusCode != 200 {
			t.Fatalf("before any delay: %v %v", resp, err)
		}
		clients = append(clients, c)
	}
	delay.Store(int64(time.Second))
	waitFor(t, "the limit to fall to its floor", func() bool { return s.prot.lim.limit() == 2 })
	if s.prot.lim.lowered.Load() == 0 {
		t.Error("the limit never went down")
	}
	// Six members, a limit of two: each request is served, and the first four leave as theirs
	// end.
	for i, c := range clients {
		if resp, text, err := rawRequest(c.conn, c.br, predictRequest(body)); err != nil || resp.StatusCode != 200 {
			t.Fatalf("member %d: %v %q %v", i, resp, text, err)
		}
	}
	if n := s.adm.members.Load(); n != 2 {
		t.Fatalf("%d members after the limit fell to 2", n)
	}
	// Now four connections are not members: their requests, sent at once, wait rejectAfter and
	// are answered 503, and their connections stay open.
	for _, c := range clients {
		if _, err := io.WriteString(c.conn, predictRequest(body)); err != nil {
			t.Fatal(err)
		}
	}
	ok, shed := 0, 0
	for _, c := range clients {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
			ok++
		case 503:
			shed++
			if resp.Header.Get("Retry-After") != "1" || resp.Close || !strings.Contains(string(text), `"error":"overloaded`) {
				t.Errorf("shed answer: Retry-After %q, close %v, body %s", resp.Header.Get("Retry-After"), resp.Close, text)
			}
		default:
			t.Errorf("status %d: %s", resp.StatusCode, text)
		}
	}
	if ok != 2 || shed != 4 {
		t.Errorf("%d served, %d shed; want the 2 members served and the 4 others shed", ok, shed)
	}
	if q, all := value(t, s.prot.byReason.WithLabelValues(reasonQueue)), value(t, s.met.shed); q != 4 || all != q {
		t.Errorf("shed counted: queue_delay %v, total %v", q, all)
	}
	// The probes never wait.
	if got := getBody(t, r.url+"/healthz"); !strings.Contains(got, "ok") {
		t.Errorf("/healthz during shedding: %q", got)
	}
	// A waiting request gets the place of a member that leaves: the member's connection closes
	// while a request of a connection that is not a member waits (its answer would otherwise
	// be a 503 after a second).
	members, waiting := []client{}, []client{}
	for _, c := range clients {
		if cc := unwrapAdmitByLocal(s, c.conn); cc != nil && cc.member.Load() {
			members = append(members, c)
		} else {
			waiting = append(waiting, c)
		}
	}
	if len(members) != 2 {
		t.Fatalf("%d members found, want 2", len(members))
	}
	// Pipelined requests wait as well: the second is read from net/http's buffer, not the
	// connection, and is decided in the handler.
	if _, err := io.WriteString(waiting[1].conn, predictRequest(body)+predictRequest(body)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		resp, err := http.ReadResponse(waiting[1].br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Errorf("pipelined request %d of a connection beyond the limit: %d", i, resp.StatusCode)
		}
	}
	if _, err := io.WriteString(waiting[0].conn, predictRequest(body)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request to wait", func() bool { return s.adm.q.waiting() == 1 })
	members[0].conn.Close()
	if resp, err := http.ReadResponse(waiting[0].br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the waiting request after a member left: %v %v", resp, err)
	}
	// The delay gone, the limit recovers and every connection is served.
	delay.Store(int64(time.Millisecond))
	waitFor(t, "the limit to grow", func() bool { return s.prot.lim.limit() >= 5 }) // the five connections left
	for _, c := range waiting[1:] {
		if resp, text, err := rawRequest(c.conn, c.br, predictRequest(body)); err != nil || resp.StatusCode != 200 {
			t.Fatalf("after the delay: %v %q %v", resp, text, err)
		}
	}
}

// unwrapAdmitByLocal finds the server side of the client connection nc.
func unwrapAdmitByLocal(s *Server, nc net.Conn) *admitConn {
	s.adm.mu.Lock()
	defer s.adm.mu.Unlock()
	for c := range s.adm.conns {
		if c.RemoteAddr().String() == nc.LocalAddr().String() {
			return c
		}
	}
	return nil
}

// The shed queue lets the newest waiter in and answers the oldest 503 first.
func TestShedQueueServesTheNewestAndRejectsTheOldest(t *testing.T) {
	q := newShedQueue(25)
	var clock atomic.Int64
	q.now = clock.Load
	ws := []*waiter{newWaiter(), newWaiter(), newWaiter()}
	got := make([]chan verdict, len(ws))
	for i, w := range ws {
		got[i] = make(chan verdict, 1)
		clock.Store(int64(10 * i))
		go func() { got[i] <- q.wait(w) }()
		waitFor(t, "the waiter to park", func() bool { return q.waiting() == i+1 })
	}
	clock.Store(24)
	if q.expire() != 0 {
		t.Error("a waiter expired before rejectAfter")
	}
	if !q.promote() {
		t.Fatal("nothing to promote")
	}
	if v := <-got[2]; v != verdictServe {
		t.Errorf("the newest got %v, want it served", v)
	}
	clock.Store(30) // ages 30 and 20: only the oldest has waited rejectAfter
	if n := q.expire(); n != 1 {
		t.Errorf("expired %d, want 1", n)
	}
	if v := <-got[0]; v != verdictReject {
		t.Errorf("the oldest got %v, want it rejected", v)
	}
	clock.Store(45)
	if n := q.expire(); n != 1 || <-got[1] != verdictReject {
		t.Errorf("expired %d, want the last one", n)
	}
	if q.promote() || !q.empty() {
		t.Error("the queue is not empty")
	}
}

func TestMaxConnsReplacesIdleConnectionsThenRefuses(t *testing.T) {
	m, opts := modelOptions(t)
	opts.MaxConns = 3
	r := startRun(t, opts)
	addr := strings.TrimPrefix(r.url, "http://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Three idle connections fill the cap; a client still gets answers, each new connection
	// replacing an idle one.
	for range 3 {
		dial()
	}
	waitFor(t, "three connections", func() bool { return r.s.adm.open.Load() == 3 })
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	body := `{"x": ` + vectorJSON(m, atl) + `}`
	for range 3 {
		if st, _, err := post(c, r.url, body); err != nil || st != 200 {
			t.Fatalf("with the cap full of idle connections: %d %v", st, err)
		}
	}
	if v := value(t, r.s.prot.evicted); v < 1 {
		t.Errorf("evicted %v idle connections, want at least 1", v)
	}
	// Three connections in the middle of a request (headers sent, body awaited) are busy: a
	// fourth is closed at once, unanswered. Each is busy before the next dials, so that none is
	// taken for idle and replaced.
	busy := func() int {
		r.s.adm.mu.Lock()
		defer r.s.adm.mu.Unlock()
		n := 0
		for c := range r.s.adm.conns {
			if c.busy.Load() {
				n++
			}
		}
		return n
	}
	waitFor(t, "the answered connections to close", func() bool { return busy() == 0 })
	for i := range 3 {
		conn := dial()
		if _, err := io.WriteString(conn, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a busy connection", func() bool { return busy() == i+1 })
	}
	conn := dial()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("over the cap: read %d bytes, %v; want the connection closed", n, err)
	}
	if v := value(t, r.s.prot.refused); v < 1 {
		t.Errorf("refused %v connections, want at least 1", v)
	}
}

func TestBodyBudgetShedsBeforeReading(t *testing.T) {
	m, opts := modelOptions(t)
	opts.MaxBufferedBytes = 64 << 10
	r := startRun(t, opts)
	addr := strings.TrimPrefix(r.url, "http://")
	// A client declares 60 KiB and stalls: its reservation (64 KiB, the size class) takes the
	// whole budget.
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := fmt.Fprintf(stalled, "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"x\": [", 60<<10); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the budget to be taken", func() bool { return r.s.budget.inUse.Load() == 60<<10 })

	big := `{"x": [` + strings.Repeat(vectorJSON(m, atl)+",", 60) + vectorJSON(m, atl) + `]}`
	tests := map[string]struct {
		body, transferEncoding string
		contentLength          int
		want                   int
	}{
		"A large body that the budget cannot cover now is answered 503.": {body: big, want: 503},
		"A body of unknown length that outgrows 4 KiB is answered 503.":  {body: big, transferEncoding: "chunked", want: 503},
		"A body larger than the whole budget is answered 413.":           {contentLength: 80 << 10, want: 413},
		"A single vector needs no budget and is answered.":               {body: `{"x": ` + vectorJSON(m, atl) + `}`, want: 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var req string
			switch {
			case tc.transferEncoding != "":
				req = fmt.Sprintf("POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(tc.body), tc.body)
			case tc.contentLength > 0:
				req = fmt.Sprintf("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", tc.contentLength)
			default:
				req = predictRequest(tc.body)
			}
			resp, text, err := rawRequest(conn, bufio.NewReader(conn), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, text)
			}
			if tc.want == 503 && (resp.Header.Get("Retry-After") != "1" || !strings.Contains(text, "--max-buffered-bytes")) {
				t.Errorf("503 without Retry-After or naming the flag: %v %s", resp.Header, text)
			}
		})
	}
	if v := value(t, r.s.prot.byReason.WithLabelValues(reasonBodyBudget)); v != 2 {
		t.Errorf("body_budget sheds counted %v, want 2", v)
	}
	// Once the stalled client goes, its budget comes back and large bodies are served again.
	stalled.Close()
	waitFor(t, "the budget to be returned", func() bool { return r.s.budget.inUse.Load() == 0 })
	if st, _, err := post(newClient(), r.url, big); err != nil || st != 200 {
		t.Errorf("a large body after the stall: %d %v", st, err)
	}
	if n := r.s.budget.inUse.Load(); n != 0 {
		t.Errorf("%d budget bytes still held after every answer", n)
	}
}

func TestBodyClasses(t *testing.T) {
	for n, want := range map[int64]int{0: 0, 1: 0, 4096: 0, 4097: 1, 8192: 1, 8193: 2, 1<<20 - 1: 8, 1 << 20: 8, 1<<20 + 1: 9} {
		if got := bodyClass(n); got != want {
			t.Errorf("bodyClass(%d) = %d, want %d", n, got, want)
		}
		if classSize(bodyClass(n)) < n {
			t.Errorf("class of %d holds only %d", n, classSize(bodyClass(n)))
		}
	}
}

func TestDefaultsFollowTheMemoryLimit(t *testing.T) {
	tests := map[string]struct {
		limit     int64
		conns     int
		bodyBytes int64
	}{
		"GOMEMLIMIT=200MiB, the deploy/k8s setting.": {200 << 20, 1600, 50 << 20},
		"No memory limit: as for 1 GiB.":             {0, 8192, 256 << 20},
		"A tiny limit keeps workable floors.":        {1 << 20, 64, 2 * DefaultMaxBodyBytes},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := DefaultMaxConns(tc.limit); got != tc.conns {
				t.Errorf("DefaultMaxConns = %d, want %d", got, tc.conns)
			}
			if got := DefaultMaxBufferedBytes(tc.limit); got != tc.bodyBytes {
				t.Errorf("DefaultMaxBufferedBytes = %d, want %d", got, tc.bodyBytes)
			}
		})
	}
}

func TestMetricsOnTheMainListenerAreCachedAndLimited(t *testing.T) {
	m, opts := modelOptions(t)
	opts.metricsCacheTTL = time.Hour
	s, _ := newTestServer(t, m, opts)
	h := s.Handler()
	first := do(h, "GET", "/metrics", "", "")
	if first.Code != 200 || !strings.Contains(first.Body.String(), "delayctl_connection_limit") {
		t.Fatalf("first scrape: %d", first.Code)
	}
	do(h, "POST", "/predict", "application/json", `{"x": `+vectorJSON(m, atl)+`}`)
	codes := map[int]int{}
	for range 2 * metricsScrapeRate {
		rec := do(h, "GET", "/metrics", "", "")
		codes[rec.Code]++
		if rec.Code == 200 && rec.Body.String() != first.Body.String() {
			t.Fatal("a scrape within the cache's lifetime gathered again")
		}
		if rec.Code == 429 && rec.Header().Get("Retry-After") != "1" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[429] < metricsScrapeRate-1 || codes[200]+codes[429] != 2*metricsScrapeRate {
		t.Errorf("answers to a burst of scrapes: %v; want 429 beyond %d a second", codes, metricsScrapeRate)
	}
}

func TestMetricsAddrMovesMetricsAndAdminOffTheMainListener(t *testing.T) {
	_, opts := modelOptions(t)
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.MetricsListener = ops
	r := startRun(t, opts)
	opsURL := "http://" + ops.Addr().String()
	tests := map[string]struct {
		url, method string
		want        int
	}{
		"Metrics are served on the operations listener.":        {opsURL + "/metrics", "GET", 200},
		"Probes are served on the operations listener.":         {opsURL + "/readyz", "GET", 200},
		"Predictions are not served on the operations listener": {opsURL + "/predict", "POST", 404},
		"Metrics are gone from the main listener.":              {r.url + "/metrics", "GET", 404},
		"Reload is gone from the main listener.":                {r.url + "/admin/reload", "POST", 404},
		"Reload is served on the operations listener.":          {opsURL + "/admin/reload", "POST", 200},
		"Probes stay on the main listener.":                     {r.url + "/healthz", "GET", 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.want, b)
			}
			if ct := resp.Header.Get("Content-Type"); tc.want != 200 && !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
		})
	}
}

// chunkReader hands out its data a few bytes at a time, as a network does.
type chunkReader struct {
	data  []byte
	chunk int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// The body reader faces the network: whatever the bytes, their length, whether it is declared
// and how they arrive, it returns exactly the body, a 413 for a body over the limits, or a 503
// when the budget cannot cover it; and every byte of budget comes back with the state.
func FuzzReadBody(f *testing.F) {
	for _, seed := range []struct {
		size    int
		chunk   uint16
		declare bool
		budget  uint32
	}{{10, 10, true, 0}, {5000, 1000, true, 8192}, {5000, 1000, false, 4096}, {70000, 4096, false, 1 << 20}, {4096, 1, true, 0}, {4097, 8192, false, 4096}} {
		f.Add(bytes.Repeat([]byte("x"), seed.size), seed.chunk, seed.declare, seed.budget)
	}
	const maxBody = 64 << 10
	opts := testOptions()
	opts.MaxBodyBytes = maxBody
	s, _ := newTestServer(f, testModel(f, "v1"), opts)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, declare bool, budget uint32) {
		size := int64(budget%(128<<10)) + 1
		s.budget = newBodyBudget(size)
		r := httptest.NewRequest("POST", "/predict", &chunkReader{data: data, chunk: int(chunk%8192) + 1})
		r.ContentLength = -1
		if declare {
			r.ContentLength = int64(len(data))
		}
		st := workPool.Get().(*workState)
		got, err := s.readBody(httptest.NewRecorder(), r, st)
		switch code := statusOf(err); {
		case err == nil:
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, sent %d", len(got), len(data))
			}
		case code == http.StatusRequestEntityTooLarge:
			if len(data) <= maxBody && int64(len(data)) <= bodyBase+size {
				t.Fatalf("413 for %d bytes within the limits", len(data))
			}
		case code == http.StatusServiceUnavailable:
			if len(data) <= bodyBase {
				t.Fatalf("503 for %d bytes, which need no budget", len(data))
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
		st.put(s.budget)
		if n := s.budget.inUse.Load(); n != 0 {
			t.Fatalf("%d bytes of budget not returned", n)
		}
	})
}

// A closed shed queue answers its waiters, and every later one, 503.
func TestShedQueueCloseRejectsEveryWaiter(t *testing.T) {
	q := newShedQueue(time.Hour)
	got := make(chan verdict, 1)
	go func() { got <- q.wait(newWaiter()) }()
	waitFor(t, "the waiter to park", func() bool { return q.waiting() == 1 })
	q.close()
	if v := <-got; v != verdictReject {
		t.Errorf("a waiter at close got %v", v)
	}
	if v := q.wait(newWaiter()); v != verdictReject {
		t.Errorf("a waiter after close got %v", v)
	}
}

// A member keeps its place while nobody waits, gives it to the newest waiting request once its
// lease is over, and loses it after a lease idle.
func TestMembersLeaveAfterTheirLease(t *testing.T) {
	a := newAdmission(10, func() {})
	a.adapt(newConnLimiter(time.Millisecond, 1, 1, func() (time.Duration, bool) { return 0, false }, a.members.Load))
	var clock atomic.Int64
	a.q.now = clock.Load
	conn := func() *admitConn {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c1.Close(); c2.Close() })
		return a.admit(c1).(*admitConn)
	}
	head := []byte("POST /predict HTTP/1.1\r\n")
	first, second := conn(), conn()
	if a.enter(first, head) != verdictServe || !first.member.Load() {
		t.Fatal("the first connection is not a member under a free limit")
	}
	first.endRequest(false)
	got := make(chan verdict, 1)
	go func() { got <- a.enter(second, head) }()
	waitFor(t, "the second request to wait", func() bool { return a.q.waiting() == 1 })
	clock.Store(int64(memberLease) / 2)
	if a.enter(first, head) != verdictServe {
		t.Fatal("a member was not served")
	}
	first.endRequest(false) // within its lease: it stays
	if !first.member.Load() || a.members.Load() != 1 {
		t.Fatal("a member within its lease left")
	}
	clock.Store(int64(memberLease) + 1)
	if a.enter(first, head) != verdictServe {
		t.Fatal("a member was not served")
	}
	first.endRequest(false) // lease over, someone waits: it leaves and the waiter comes in
	if v := <-got; v != verdictServe || first.member.Load() || !second.member.Load() || a.members.Load() != 1 {
		t.Fatalf("after the lease: waiter %v, first member %v, second member %v, members %d",
			v, first.member.Load(), second.member.Load(), a.members.Load())
	}
	if !a.busy() {
		t.Error("a full limit, and the canary would not measure")
	}
	// A member idle while a request waits gives it its place after idleWhileOthersWait.
	third := conn()
	go func() { got <- a.enter(third, head) }()
	waitFor(t, "the third request to wait", func() bool { return a.q.waiting() == 1 })
	second.endRequest(false)
	clock.Add(int64(idleWhileOthersWait) + 1)
	a.dropIdle(a.idleWait)
	a.fill()
	if v := <-got; v != verdictServe || second.member.Load() || !third.member.Load() {
		t.Fatalf("an idle member kept its place from a waiting request: %v", v)
	}
	third.endRequest(false)
	second = third
	clock.Add(3*int64(memberLease) + 2)
	a.dropIdle(a.lease)
	if second.member.Load() || a.members.Load() != 0 {
		t.Errorf("an idle member kept its place: members %d", a.members.Load())
	}
	if a.busy() {
		t.Error("no member, and the canary would still measure")
	}
}

// A connection whose request was read and parked is not idle: --max-conns must not evict it,
// or its client would get no answer.
func TestEvictionSparesParkedRequests(t *testing.T) {
	a := newAdmission(3, func() {})
	a.adapt(newConnLimiter(time.Millisecond, 1, 1, func() (time.Duration, bool) { return 0, false }, a.members.Load))
	head := []byte("POST /predict HTTP/1.1\r\n")
	conn := func() *admitConn {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c1.Close(); c2.Close() })
		return a.admit(c1).(*admitConn)
	}
	member, parked := conn(), conn()
	member.inRequest.Store(true)
	if a.enter(member, head) != verdictServe {
		t.Fatal("the first request was not served")
	}
	a.connState(member, http.StateActive)
	got := make(chan verdict, 1)
	go func() {
		parked.inRequest.Store(true) // as Read does before enter
		got <- a.enter(parked, head)
	}()
	waitFor(t, "the request to park", func() bool { return a.q.waiting() == 1 })
	stalled := conn() // a request whose headers never end: evictable, as before admission
	stalled.inRequest.Store(true)
	if !a.evictIdle() {
		t.Fatal("nothing evicted")
	}
	if _, open := a.conns[stalled]; open {
		t.Fatal("a connection serving or holding a parked request was evicted, not the stalled one")
	}
	if a.evictIdle() {
		t.Fatal("a connection serving or holding a parked request was evicted")
	}
	a.q.close()
	if v := <-got; v != verdictReject {
		t.Errorf("the parked request got %v at close", v)
	}
}

// net/http's background read may take the first byte of the next request; the probe that
// follows is still recognised, and takes no place.
func TestProbeAfterBackgroundReadTakesNoPlace(t *testing.T) {
	a := newAdmission(10, func() {})
	a.adapt(newConnLimiter(time.Millisecond, 1, 1, func() (time.Duration, bool) { return 0, false }, a.members.Load))
	srv, cli := net.Pipe()
	t.Cleanup(func() { srv.Close(); cli.Close() })
	c := a.admit(srv).(*admitConn)
	go func() { _, _ = io.WriteString(cli, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") }()
	c.inRequest.Store(true) // a request in progress: its handler runs, the background read waits
	if n, err := c.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("background read: %d %v", n, err)
	}
	c.endRequest(false)
	buf := make([]byte, 4096)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if c.member.Load() || a.members.Load() != 0 || verdict(c.verdict.Load()) != verdictServe {
		t.Errorf("a probe after a background read: member %v, members %d, verdict %v", c.member.Load(), a.members.Load(), c.verdict.Load())
	}
}
