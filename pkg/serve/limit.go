package serve

import (
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter adapts the number of connections the server serves at once (see admission) to
// the queueing delay they feel: a small gradient controller in the manner of Envoy's adaptive
// concurrency filter, with CoDel's interval and standing-queue test.
//
// Why a canary: with wrk -c1500 of single-vector requests the wait was not in the handler, nor
// in the Go scheduler's run queue (the median of /sched/latencies:seconds stayed at 12-14 µs
// while clients waited 100 ms), but in the kernel, where ready sockets wait until the network
// poller picks them up (docs/PERFORMANCE.md, "Under attack"). So the delay is measured end to
// end, by a canary request the server sends itself (see canary), which admission serves as it
// would a served connection's.
//
// Every interval (100 ms, CoDel's): when the delay exceeds the target (--shed-queue-delay),
// the limit is multiplied by target/delay, at most halving it (Envoy's gradient, clamped at
// 0.5); otherwise, when at least half the limit is in use, it grows by its square root (Envoy's
// headroom term); an unused limit does not grow (Netflix concurrency-limits) unless the canary
// paused, which it does once the load is gone: then it doubles. The limit stays within
// [min, max], max being --max-conns.
type connLimiter struct {
	target   time.Duration
	interval time.Duration
	min, max int64
	delay    delaySource
	inUse    func() int64

	cur      atomic.Int64
	measured atomic.Int64 // nanoseconds: the last delay measured
	lowered  atomic.Int64 // times the limit went down
}

// delaySource measures the queueing delay since its previous call; ok is false when too few
// goroutines were scheduled to tell.
type delaySource func() (d time.Duration, ok bool)

func newConnLimiter(target time.Duration, minLimit, maxLimit int64, delay delaySource, inUse func() int64) *connLimiter {
	l := &connLimiter{target: target, interval: 100 * time.Millisecond, min: minLimit, max: max(maxLimit, minLimit),
		delay: delay, inUse: inUse}
	l.cur.Store(l.max)
	return l
}

func (l *connLimiter) limit() int64 { return l.cur.Load() }

// update takes one measurement and moves the limit.
func (l *connLimiter) update() {
	d, ok := l.delay()
	if !ok {
		d = 0
	}
	l.measured.Store(int64(d))
	cur := float64(l.cur.Load())
	next := cur
	switch {
	case !ok:
		// The canary pauses while the limit cannot matter: the load is gone, so the limit
		// returns to the maximum (doubling each interval) instead of waiting, low, for the
		// next burst to be shed against it.
		next = cur * 2
	case d > l.target:
		next = cur * max(float64(l.target)/float64(d), 0.5)
	case float64(l.inUse()) >= cur/2:
		next = cur + math.Sqrt(cur)
	}
	n := min(max(int64(next), l.min), l.max)
	if n < int64(cur) {
		l.lowered.Add(1)
	}
	l.cur.Store(n)
}

// run updates the limit every interval until stop is closed.
func (l *connLimiter) run(stop <-chan struct{}) { every(l.interval, stop, l.update) }

// canaryPath is answered at once, unlogged and uncounted: the canary's round trip measures
// the queue, not the handler.
const canaryPath = "/internal/queue-canary"

var canaryBody = []byte(`{"status":"ok"}` + "\n")

// canary measures the queueing delay a client feels: every canaryEvery it sends a request to
// the server's own listener over loopback, on a keep-alive connection, and times the answer.
// The request waits wherever a client's would (the kernel's socket queues, the network
// poller, the scheduler), so its round trip is the delay, with no assumption about where the
// queue forms. delay reports the smallest round trip of the interval (CoDel: a standing queue
// delays even the luckiest request), or, when none came back, how long the oldest has waited.
type canary struct {
	mu     sync.Mutex
	best   time.Duration // smallest round trip this interval; -1: none
	sentAt time.Time     // zero when no request is out
}

const canaryEvery = 20 * time.Millisecond

func newCanary() *canary { return &canary{best: -1} }

func (c *canary) delay() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.best, c.best >= 0
	if !ok && !c.sentAt.IsZero() {
		d, ok = time.Since(c.sentAt), true
	}
	c.best = -1
	return d, ok
}

// run probes url until stop is closed, while busy reports that the limit could matter: an idle
// server probing itself 50 times a second used 2 % of a CPU.
func (c *canary) run(url string, busy func() bool, stop <-chan struct{}) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	every(canaryEvery, stop, func() {
		if !busy() {
			return
		}
		sent := time.Now()
		c.mu.Lock()
		c.sentAt = sent
		c.mu.Unlock()
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		rtt := time.Since(sent)
		c.mu.Lock()
		c.sentAt = time.Time{}
		if err == nil && (c.best < 0 || rtt < c.best) {
			c.best = rtt
		}
		c.mu.Unlock()
	})
}

// canaryURL is where the canary reaches a server listening on addr: its own address, or
// loopback when it listens on every address.
func canaryURL(addr net.Addr) string {
	host, port := "127.0.0.1", "0"
	if t, ok := addr.(*net.TCPAddr); ok {
		port = strconv.Itoa(t.Port)
		switch {
		case t.IP == nil || t.IP.IsUnspecified():
			if t.IP != nil && t.IP.To4() == nil {
				host = "::1"
			}
		default:
			host = t.IP.String()
		}
	}
	return "http://" + net.JoinHostPort(host, port) + canaryPath
}

// DefaultMinConnLimit is the floor of the adaptive connection limit: 64 connections per CPU the
// scheduler may use, so that ordinary loads (the demo's, a bench run at -c 50) are never shed,
// whatever a noisy machine does to the canary. Under wrk -c1500 a floor of 16 per CPU gave the
// same latencies: the limit settled above both.
func DefaultMinConnLimit() int64 { return int64(64 * runtime.GOMAXPROCS(0)) }
