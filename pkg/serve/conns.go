package serve

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// admission decides, at Accept, which connections the server serves. It holds two limits on
// open connections: --max-conns, the memory cap, and the adaptive limit of a limiter that
// follows queueing delay (see connLimiter). A connection beyond the adaptive limit is answered a
// fast 503 with Retry-After and closed; one beyond --max-conns replaces an idle keep-alive
// connection when there is one and is otherwise closed at once, unanswered. Accept never
// blocks on either limit: a connection waiting in the kernel's backlog is a client waiting
// with no answer.
type admission struct {
	maxConns int64
	lim      *connLimiter // nil: no adaptive limit
	onShed   func()       // a connection answered 503 at Accept
	onRefuse func()       // a connection closed unanswered at Accept
	onEvict  func()       // an idle connection closed to make room

	open  atomic.Int64
	mu    sync.Mutex
	conns map[*admitConn]struct{}

	shedders    atomic.Int64 // goroutines answering shed connections
	maxShedders int64
	shedWait    time.Duration // how long a shed connection may take to send its request
}

func newAdmission(maxConns int, lim *connLimiter, onShed, onRefuse func()) *admission {
	return &admission{maxConns: int64(maxConns), lim: lim, onShed: onShed, onRefuse: onRefuse,
		conns: map[*admitConn]struct{}{}, maxShedders: 256, shedWait: time.Second}
}

// limit is the adaptive limit on open connections now, at most --max-conns.
func (a *admission) limit() int64 {
	if a.lim == nil {
		return a.maxConns
	}
	return min(a.lim.limit(), a.maxConns)
}

// overLimit reports whether more connections are open than the adaptive limit allows.
func (a *admission) overLimit() bool { return a.lim != nil && a.open.Load() > a.lim.limit() }

// listen wraps ln: its connections are admitted, shed or refused as they arrive. A goroutine
// accepts from ln, so that a shed connection found to be a probe can be handed back.
func (a *admission) listen(ln net.Listener) net.Listener {
	l := &admitListener{Listener: ln, a: a, ch: make(chan acceptResult), done: make(chan struct{})}
	go l.loop()
	return l
}

type admitListener struct {
	net.Listener
	a         *admission
	ch        chan acceptResult
	done      chan struct{}
	closeOnce sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func (l *admitListener) loop() {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			select {
			case l.ch <- acceptResult{nil, err}:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if c := l.a.admit(nc, l.hand); c != nil {
			l.hand(c)
		}
	}
}

// hand gives an admitted connection to net/http.
func (l *admitListener) hand(c net.Conn) {
	select {
	case l.ch <- acceptResult{c, nil}:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *admitListener) Accept() (net.Conn, error) {
	select {
	case r := <-l.ch:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *admitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// admit decides on a new connection: it returns it counted and wrapped, or nil when it was
// refused or is being shed (pass takes it back if it turns out to be a probe).
func (a *admission) admit(nc net.Conn, pass func(net.Conn)) net.Conn {
	n := a.open.Load()
	switch {
	case n >= a.maxConns:
		if !a.evictIdle() {
			a.onRefuse()
			_ = nc.Close()
			return nil
		}
	case n >= a.limit():
		a.shed(nc, pass)
		return nil
	}
	return a.count(nc)
}

func (a *admission) count(nc net.Conn) *admitConn {
	c := &admitConn{Conn: nc, a: a}
	c.counted.Store(true)
	a.open.Add(1)
	a.mu.Lock()
	a.conns[c] = struct{}{}
	a.mu.Unlock()
	return c
}

// evictIdle closes one connection that is between requests (or has sent none yet), making room
// for a new one: an idle keep-alive connection costs memory and serves no one, and a client
// finding it closed dials again.
func (a *admission) evictIdle() bool {
	a.mu.Lock()
	var victim *admitConn
	for c := range a.conns {
		if !c.busy.Load() {
			victim = c
			break
		}
	}
	if victim != nil {
		delete(a.conns, victim)
	}
	a.mu.Unlock()
	if victim == nil {
		return false
	}
	victim.release()
	_ = victim.Conn.Close()
	if a.onEvict != nil {
		a.onEvict()
	}
	return true
}

// connState follows whether a connection is serving a request (http.Server's ConnState).
func (a *admission) connState(nc net.Conn, st http.ConnState) {
	c := unwrapAdmit(nc)
	if c == nil {
		return
	}
	switch st {
	case http.StateActive:
		c.busy.Store(true)
	case http.StateIdle:
		c.busy.Store(false)
	case http.StateHijacked, http.StateClosed:
		a.forget(c)
	}
}

func (a *admission) forget(c *admitConn) {
	if c.release() {
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
	}
}

// leave stops counting the request's connection as open, so that a request answered 503 to
// bring the connections under the adaptive limit frees its place at once: the other
// requests arriving meanwhile then see the count already lowered and are served.
func (a *admission) leave(r *http.Request) bool {
	c, _ := r.Context().Value(admitConnKey{}).(*admitConn)
	if c == nil {
		return true
	}
	if !c.release() {
		return false
	}
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
	return true
}

type admitConnKey struct{}

// connContext is http.Server's ConnContext: it lets a request find its connection.
func (a *admission) connContext(ctx context.Context, nc net.Conn) context.Context {
	if c := unwrapAdmit(nc); c != nil {
		return context.WithValue(ctx, admitConnKey{}, c)
	}
	return ctx
}

func unwrapAdmit(nc net.Conn) *admitConn {
	for {
		switch c := nc.(type) {
		case *admitConn:
			return c
		case *guardedConn:
			nc = c.Conn
		default:
			return nil
		}
	}
}

// shedBody is the answer to a connection shed at Accept.
var shedBody = []byte(`{"error":"overloaded: the server is answering more connections than it can serve without queueing; retry shortly"}` + "\n")

var shedResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
	strconv.Itoa(len(shedBody)) + "\r\n\r\n" + string(shedBody))

// shed answers a connection 503 without handing it to net/http. The request's head is read
// first (an HTTP client may not take an answer to a request it has not sent) and what follows
// is drained until the client closes, so the close is clean and the answer is not lost to a
// reset. A probe (GET or HEAD of /healthz, /readyz, /v2/health/...) is passed to net/http
// instead: an orchestrator must not restart a server for being busy. The goroutines doing
// this are bounded; beyond them the connection is closed at once.
func (a *admission) shed(nc net.Conn, pass func(net.Conn)) {
	if a.shedders.Add(1) > a.maxShedders {
		a.shedders.Add(-1)
		a.onRefuse()
		_ = nc.Close()
		return
	}
	go func() {
		defer a.shedders.Add(-1)
		_ = nc.SetDeadline(time.Now().Add(a.shedWait))
		buf := make([]byte, bodyBase)
		n := 0
		for n < len(buf) && !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			m, err := nc.Read(buf[n:])
			n += m
			if err != nil {
				_ = nc.Close()
				return
			}
		}
		if isProbe(buf[:n]) {
			_ = nc.SetDeadline(time.Time{})
			pass(a.count(&prefixConn{Conn: nc, prefix: buf[:n]}))
			return
		}
		defer nc.Close()
		a.onShed()
		if _, err := nc.Write(shedResponse); err != nil {
			return
		}
		if cw, ok := nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		for {
			if _, err := nc.Read(buf); err != nil {
				return
			}
		}
	}()
}

// isProbe reports whether a request head is a GET or HEAD of a health or readiness route.
func isProbe(head []byte) bool {
	for _, p := range [...]string{routeHealthz, routeReadyz, routeV2Live, routeV2Ready} {
		for _, m := range [...]string{"GET ", "HEAD "} {
			if bytes.HasPrefix(head, []byte(m+p+" ")) || bytes.HasPrefix(head, []byte(m+p+"?")) {
				return true
			}
		}
	}
	return false
}

// prefixConn replays the bytes already read from a connection before reading on.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// admitConn is a connection admission counts as open until it closes.
type admitConn struct {
	net.Conn
	a       *admission
	counted atomic.Bool // still counted in open
	busy    atomic.Bool // serving a request
}

// release stops counting the connection; it reports whether this call did.
func (c *admitConn) release() bool {
	if c.counted.CompareAndSwap(true, false) {
		c.a.open.Add(-1)
		return true
	}
	return false
}

func (c *admitConn) Close() error {
	c.a.forget(c)
	return c.Conn.Close()
}

// CloseWrite keeps net/http's half-close working through the wrapper.
func (c *admitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
