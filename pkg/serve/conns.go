package serve

import (
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Timeout names, as in the timeout label of delayctl_connections_timed_out_total.
const (
	timeoutHeader = "header"
	timeoutRead   = "read"
	timeoutWrite  = "write"
	timeoutIdle   = "idle"
)

// connTracker counts open connections and names the timeout that cut one off. The timeouts
// themselves are http.Server's (ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout):
// the tracker only watches a connection's reads and writes fail on a deadline and tells which
// one it was from the connection's phase. Each connection is counted once, under the first
// timeout that cut it off.
type connTracker struct {
	open    atomic.Int64
	expired func(timeout string)
}

// Connection phases as the tracker sees them.
const (
	phaseNew    = iota // accepted; no byte read yet
	phaseIdle          // between requests of a keep-alive connection
	phaseHeader        // the first bytes of a request arrived; its headers are incomplete
	phaseActive        // headers read: body, handler and answer
)

// listen wraps ln so that every connection it accepts is tracked.
func (t *connTracker) listen(ln net.Listener) net.Listener { return trackedListener{ln, t} }

// connState is the http.Server's ConnState hook.
func (t *connTracker) connState(nc net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		t.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		t.open.Add(-1)
	}
	c, ok := nc.(*trackedConn)
	if !ok {
		return
	}
	switch st {
	case http.StateActive:
		c.phase.Store(phaseActive)
	case http.StateIdle:
		c.phase.Store(phaseIdle)
	}
}

type trackedListener struct {
	net.Listener
	t *connTracker
}

func (l trackedListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: nc, t: l.t}, nil
}

// trackedConn is a connection whose deadline failures are counted.
type trackedConn struct {
	net.Conn
	t       *connTracker
	phase   atomic.Int32
	aborted atomic.Bool // net/http set a deadline in the past to stop its own background read
	counted atomic.Bool
}

// abortBefore tells a deadline net/http sets to interrupt a read (it uses time.Unix(1, 0))
// from a real timeout.
var abortBefore = time.Unix(1<<20, 0)

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if ph := c.phase.Load(); ph == phaseNew || ph == phaseIdle {
			c.phase.Store(phaseHeader)
		}
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.aborted.Load() {
		switch c.phase.Load() {
		case phaseIdle:
			c.timedOut(timeoutIdle)
		case phaseActive:
			c.timedOut(timeoutRead)
		default:
			// A new connection gets --read-header-timeout for its first request.
			c.timedOut(timeoutHeader)
		}
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.timedOut(timeoutWrite)
	}
	return n, err
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.aborted.Store(!t.IsZero() && t.Before(abortBefore))
	return c.Conn.SetReadDeadline(t)
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	c.aborted.Store(!t.IsZero() && t.Before(abortBefore))
	return c.Conn.SetDeadline(t)
}

func (c *trackedConn) timedOut(timeout string) {
	if c.counted.CompareAndSwap(false, true) {
		c.t.expired(timeout)
	}
}

// CloseWrite keeps net/http's half-close (it sends FIN before closing a connection whose body
// it did not read) working through the wrapper.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// newConnTracker builds the tracker for the server's connections, counting what the timeouts
// cut off and exposing how many connections are open.
func (s *Server) newConnTracker() *connTracker {
	t := &connTracker{expired: func(timeout string) { s.met.timedOut.WithLabelValues(timeout).Inc() }}
	s.met.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "delayctl_open_connections",
		Help: "Client connections open now.",
	}, func() float64 { return float64(t.open.Load()) }))
	return t
}
