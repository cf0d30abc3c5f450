package serve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// guard enforces --read-header-timeout, --read-timeout, --write-timeout and --idle-timeout for
// every connection with one sweep per tick, in place of http.Server's own timeouts.
//
// Why: with its timeouts set, net/http re-arms three to four socket deadlines on every request
// of a keep-alive connection, and each re-arms a runtime timer: serve with them needed 3-5 %
// more CPU per request than serve with the guard, in paired rounds (docs/PERFORMANCE.md), more
// than predicting does. The guard instead notes, with one atomic store, when a connection
// changes phase (new, idle, reading headers, active), and a ticker expires the connections that
// overstayed a phase by setting a deadline in the past, which fails their pending read or
// write exactly as net/http's own deadline would: a body still arriving is answered 408, a
// stalled header read or an idle connection is closed.
//
// A timeout fires no earlier than configured and at most three ticks later; a tick is a
// twentieth of the shortest timeout (250 ms for the defaults), so the defaults fire within
// 15 % of their value.
type guard struct {
	header, read, write, idle int64 // nanoseconds; 0 means no limit
	tick                      time.Duration
	start                     time.Time
	clock                     atomic.Int64 // nanoseconds since start as of the last tick
	expired                   func(timeout string)

	mu    sync.Mutex
	conns map[*guardedConn]struct{}
}

// Connection phases, kept in the low bits of guardedConn.state.
const (
	phaseNew    = iota // accepted; no byte read yet
	phaseIdle          // between requests of a keep-alive connection
	phaseHeader        // the first bytes of a request arrived; its headers are incomplete
	phaseActive        // headers read: body, handler and answer
	phaseBits   = 2
)

// Timeout names, as in the timeout label of delayctl_connections_timed_out_total.
const (
	timeoutHeader = "header"
	timeoutRead   = "read"
	timeoutWrite  = "write"
	timeoutIdle   = "idle"
)

// answerGrace is the time the 408 for a body cut off by the read timeout gets to be written
// beyond the write timeout.
const answerGrace = time.Second

// Timeouts bound a guard's tick: a tick is a twentieth of the shortest one, within these.
const (
	minGuardTick = time.Millisecond
	maxGuardTick = 250 * time.Millisecond
)

func newGuard(header, read, write, idle time.Duration, expired func(timeout string)) *guard {
	g := &guard{header: int64(header), read: int64(read), write: int64(write), idle: int64(idle),
		start: time.Now(), expired: expired, conns: map[*guardedConn]struct{}{}}
	g.tick = maxGuardTick
	for _, d := range []time.Duration{header, read, write, idle} {
		if d > 0 && d/20 < g.tick {
			g.tick = d / 20
		}
	}
	g.tick = max(g.tick, minGuardTick)
	return g
}

// run advances the clock and sweeps every tick until stop is closed.
func (g *guard) run(stop <-chan struct{}) {
	every(g.tick, stop, func() {
		now := int64(time.Since(g.start))
		g.clock.Store(now)
		g.sweep(now)
	})
}

// every calls fn each period until stop is closed: the loop of the server's background
// tickers (the guard's sweep, the adaptive limit, the canary, the drift window).
func every(period time.Duration, stop <-chan struct{}, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fn()
		}
	}
}

// sweep expires the connections that overstayed their phase as of now. A phase's start is
// read off the clock, which lags the true time by up to a tick, so a connection counts as late
// only a tick after its limit: never early.
func (g *guard) sweep(now int64) {
	late := func(limit, since int64) bool { return limit > 0 && now-since > limit+int64(g.tick) }
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		phase, since := unpackState(c.state.Load())
		switch phase {
		case phaseNew:
			// net/http gives a new connection the header timeout to send its first request.
			if late(g.header, since) {
				c.expireRead(timeoutHeader)
			}
		case phaseIdle:
			if late(g.idle, since) {
				c.expireRead(timeoutIdle)
			}
		case phaseHeader:
			if late(g.header, since) {
				c.expireRead(timeoutHeader)
			} else if late(g.read, since) {
				c.expireRead(timeoutRead)
			}
		case phaseActive:
			// Not counted here: the handler counts the read timeout when it fails a body read
			// (countTimeout), while a read that only net/http's background read was waiting
			// on cut nothing off.
			if late(g.read, c.reqStart.Load()) {
				c.expireRead("")
			}
			// A body cut off by the read timeout is answered 408, which needs the write side:
			// it gets answerGrace beyond the write timeout (with the defaults both end together).
			limit := g.write
			if limit > 0 && c.readExpired.Load() {
				limit += int64(answerGrace)
			}
			if late(limit, since) {
				c.expireWrite(timeoutWrite)
			}
		}
	}
}

// listen wraps ln so that every connection it accepts is guarded.
func (g *guard) listen(ln net.Listener) net.Listener { return guardedListener{ln, g} }

// connState is the http.Server's ConnState hook: it moves a connection between phases.
func (g *guard) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*guardedConn)
	if !ok {
		return
	}
	now := g.clock.Load()
	switch st {
	case http.StateActive:
		// The request's start is when its first bytes were read; a request that was already
		// buffered (pipelined) starts now.
		if phase, _ := unpackState(c.state.Load()); phase != phaseHeader {
			c.reqStart.Store(now)
		}
		c.state.Store(packState(phaseActive, now))
	case http.StateIdle:
		c.state.Store(packState(phaseIdle, now))
	case http.StateHijacked:
		// The handler owns the connection now; a closed one is forgotten in Close.
		g.remove(c)
	}
}

func (g *guard) add(c *guardedConn) {
	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.mu.Unlock()
}

func (g *guard) remove(c *guardedConn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
}

// open returns the number of connections being guarded.
func (g *guard) open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// packState stores a phase and the clock reading at its start in one word, so that a sweep
// never pairs a phase with another phase's start.
func packState(phase int, since int64) uint64 { return uint64(since)<<phaseBits | uint64(phase) }

func unpackState(s uint64) (phase int, since int64) {
	return int(s & (1<<phaseBits - 1)), int64(s >> phaseBits)
}

type guardedListener struct {
	net.Listener
	g *guard
}

func (l guardedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &guardedConn{Conn: nc, g: l.g}
	c.state.Store(packState(phaseNew, l.g.clock.Load()))
	l.g.add(c)
	return c, nil
}

// guardedConn is a connection whose phases the guard follows. Once the guard expires its read
// or write side, the deadlines net/http sets itself (it clears them after every request) no
// longer revive it.
type guardedConn struct {
	net.Conn
	g            *guard
	state        atomic.Uint64 // packState(phase, start of the phase)
	reqStart     atomic.Int64  // clock reading at the current request's first byte
	readExpired  atomic.Bool
	writeExpired atomic.Bool
	counted      atomic.Bool
}

// Read notes the first bytes of a request on a new or idle connection: its headers are due
// within --read-header-timeout.
func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if phase, _ := unpackState(c.state.Load()); phase == phaseNew || phase == phaseIdle {
			now := c.g.clock.Load()
			c.reqStart.Store(now)
			c.state.Store(packState(phaseHeader, now))
		}
	}
	return n, err
}

// expiredDeadline is a deadline long past: setting it fails pending and future I/O at once.
var expiredDeadline = time.Unix(1, 0)

func (c *guardedConn) expireRead(timeout string)  { c.expire(true, timeout) }
func (c *guardedConn) expireWrite(timeout string) { c.expire(false, timeout) }

// expire cuts off one side of the connection and counts it under timeout, unless that is "".
func (c *guardedConn) expire(read bool, timeout string) {
	if c.expiredFlag(read).CompareAndSwap(false, true) {
		_ = c.setDeadline(read, expiredDeadline)
		if timeout != "" {
			c.count(timeout)
		}
	}
}

// count counts the connection as cut off by timeout: once, under the first timeout that did.
func (c *guardedConn) count(timeout string) {
	if c.counted.CompareAndSwap(false, true) {
		c.g.expired(timeout)
	}
}

type guardedConnKey struct{}

// connContext is the http.Server's ConnContext hook: it lets a handler reach its connection
// (countTimeout). A wrapper around the guarded connection is looked through if it offers
// NetConn, as tls.Conn does.
func (g *guard) connContext(ctx context.Context, nc net.Conn) context.Context {
	for nc != nil {
		if c, ok := nc.(*guardedConn); ok {
			return context.WithValue(ctx, guardedConnKey{}, c)
		}
		w, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		nc = w.NetConn()
	}
	return ctx
}

// countTimeout counts r's connection as cut off by timeout, once; without a guard (a handler
// served by another server) it counts the request.
func (s *Server) countTimeout(r *http.Request, timeout string) {
	if c, ok := r.Context().Value(guardedConnKey{}).(*guardedConn); ok {
		c.count(timeout)
		return
	}
	s.met.timedOut.WithLabelValues(timeout).Inc()
}

// SetReadDeadline sets t unless the guard expired the read side.
func (c *guardedConn) SetReadDeadline(t time.Time) error { return c.setUnlessExpired(true, t) }

// SetWriteDeadline sets t unless the guard expired the write side.
func (c *guardedConn) SetWriteDeadline(t time.Time) error { return c.setUnlessExpired(false, t) }

// setUnlessExpired checks again after setting to close the race with an expiry in between:
// whichever runs last, the expired deadline stays.
func (c *guardedConn) setUnlessExpired(read bool, t time.Time) error {
	expired := c.expiredFlag(read)
	if expired.Load() {
		return nil
	}
	err := c.setDeadline(read, t)
	if expired.Load() {
		_ = c.setDeadline(read, expiredDeadline)
	}
	return err
}

func (c *guardedConn) expiredFlag(read bool) *atomic.Bool {
	if read {
		return &c.readExpired
	}
	return &c.writeExpired
}

func (c *guardedConn) setDeadline(read bool, t time.Time) error {
	if read {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *guardedConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// Close forgets the connection: net/http closes every connection it has not handed over
// (hijacked) this way.
func (c *guardedConn) Close() error {
	c.g.remove(c)
	return c.Conn.Close()
}

// CloseWrite keeps net/http's half-close (it sends FIN before closing a connection whose body
// it did not read) working through the wrapper.
func (c *guardedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// newGuard builds the guard for the server's timeouts, counting what it cuts off and exposing
// how many connections are open.
func (s *Server) newGuard() *guard {
	g := newGuard(s.opts.ReadHeaderTimeout, s.opts.ReadTimeout, s.opts.WriteTimeout, s.opts.IdleTimeout,
		func(timeout string) { s.met.timedOut.WithLabelValues(timeout).Inc() })
	s.met.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "delayctl_open_connections",
		Help: "Client connections open now.",
	}, func() float64 { return float64(g.open()) }))
	return g
}
