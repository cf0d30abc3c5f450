package serve

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// deadlineConn records the deadlines set on it; reads return one byte.
type deadlineConn struct {
	net.Conn
	read, write []time.Time
}

func (c *deadlineConn) Read(p []byte) (int, error)         { return copy(p, "x"), nil }
func (c *deadlineConn) SetReadDeadline(t time.Time) error  { c.read = append(c.read, t); return nil }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { c.write = append(c.write, t); return nil }
func (c *deadlineConn) Close() error                       { return nil }

func expiredOnly(ds []time.Time) bool { return len(ds) == 1 && ds[0].Equal(expiredDeadline) }

func TestGuardTickIsATwentiethOfTheShortestTimeout(t *testing.T) {
	tests := []struct {
		name                      string
		header, read, write, idle time.Duration
		want                      time.Duration
	}{
		{"The defaults tick at the 250 ms cap.", DefaultReadHeaderTimeout, DefaultReadTimeout, DefaultWriteTimeout, DefaultIdleTimeout, 250 * time.Millisecond},
		{"A 200 ms header timeout ticks every 10 ms.", 200 * time.Millisecond, time.Second, time.Second, time.Minute, 10 * time.Millisecond},
		{"The shortest timeout decides, whichever it is.", time.Second, time.Second, 400 * time.Millisecond, time.Minute, 20 * time.Millisecond},
		{"A tiny timeout ticks no faster than 1 ms.", time.Millisecond, time.Second, time.Second, time.Second, time.Millisecond},
		{"Timeouts that are off do not count.", 0, 0, 0, 2 * time.Second, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := newGuard(tc.header, tc.read, tc.write, tc.idle, nil).tick; got != tc.want {
				t.Errorf("tick = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGuardExpiresConnectionsThatOverstayAPhase(t *testing.T) {
	const (
		header = 100 * time.Millisecond
		read   = 300 * time.Millisecond
		write  = 400 * time.Millisecond
		idle   = 1 * time.Second
		tick   = 5 * time.Millisecond // header / 20
	)
	ms := func(n int) int64 { return int64(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name            string
		phase           int
		since, reqStart int64
		now             int64
		wantRead        bool
		wantWrite       bool
		wantTimeout     string
	}{
		{"A new connection has the header timeout to start its request.", phaseNew, 0, 0, ms(106), true, false, timeoutHeader},
		{"A new connection is not cut off a tick early.", phaseNew, 0, 0, ms(105), false, false, ""},
		{"An idle connection goes after the idle timeout.", phaseIdle, ms(50), 0, ms(1056), true, false, timeoutIdle},
		{"An idle connection stays until then.", phaseIdle, ms(50), 0, ms(1000), false, false, ""},
		{"Headers still arriving after the header timeout are cut off.", phaseHeader, ms(10), ms(10), ms(116), true, false, timeoutHeader},
		{"Headers may take up to the header timeout.", phaseHeader, ms(10), ms(10), ms(110), false, false, ""},
		{"A body still arriving after the read timeout fails its read (the handler counts it).", phaseActive, ms(100), ms(0), ms(306), true, false, ""},
		{"With its read cut off, the 408 gets a grace beyond the write timeout.", phaseActive, ms(100), ms(0), ms(506), true, false, ""},
		{"An answer not written within the write timeout and the grace fails its write.", phaseActive, ms(100), ms(0), ms(1506), true, true, timeoutWrite},
		{"A request within both timeouts is left alone.", phaseActive, ms(100), ms(0), ms(300), false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var timeouts []string
			g := newGuard(header, read, write, idle, func(to string) { timeouts = append(timeouts, to) })
			if g.tick != tick {
				t.Fatalf("tick = %v, want %v", g.tick, tick)
			}
			fc := &deadlineConn{}
			c := &guardedConn{Conn: fc, g: g}
			c.state.Store(packState(tc.phase, tc.since))
			c.reqStart.Store(tc.reqStart)
			g.add(c)
			g.sweep(tc.now)
			if got := expiredOnly(fc.read); got != tc.wantRead || (!got && len(fc.read) > 0) {
				t.Errorf("read deadlines %v, want expired: %v", fc.read, tc.wantRead)
			}
			if got := expiredOnly(fc.write); got != tc.wantWrite || (!got && len(fc.write) > 0) {
				t.Errorf("write deadlines %v, want expired: %v", fc.write, tc.wantWrite)
			}
			if tc.wantTimeout == "" && len(timeouts) > 0 || tc.wantTimeout != "" && (len(timeouts) == 0 || timeouts[len(timeouts)-1] != tc.wantTimeout) {
				t.Errorf("timeouts counted %q, want the last to be %q", timeouts, tc.wantTimeout)
			}
			// A second sweep counts nothing again: a connection expires once.
			n := len(timeouts)
			g.sweep(tc.now + ms(1000))
			if tc.wantWrite && len(timeouts) != n {
				t.Errorf("second sweep counted %q after %d", timeouts, n)
			}
		})
	}
}

func TestGuardFollowsTheConnectionThroughARequest(t *testing.T) {
	g := newGuard(time.Second, time.Second, time.Second, time.Minute, func(string) {})
	c := g.listen(fakeListener{&deadlineConn{}}).(guardedListener)
	nc, err := c.Accept()
	if err != nil {
		t.Fatal(err)
	}
	gc := nc.(*guardedConn)
	phase := func() int { p, _ := unpackState(gc.state.Load()); return p }
	steps := []struct {
		name string
		do   func()
		want int
	}{
		{"accepted", func() {}, phaseNew},
		{"first bytes read", func() { g.clock.Store(7); _, _ = gc.Read(make([]byte, 1)) }, phaseHeader},
		{"headers read", func() { g.clock.Store(9); g.connState(gc, http.StateActive) }, phaseActive},
		{"answered", func() { g.connState(gc, http.StateIdle) }, phaseIdle},
		{"next request's bytes", func() { g.clock.Store(20); _, _ = gc.Read(make([]byte, 1)) }, phaseHeader},
	}
	for _, s := range steps {
		s.do()
		if got := phase(); got != s.want {
			t.Fatalf("after %s: phase %d, want %d", s.name, got, s.want)
		}
	}
	if got := gc.reqStart.Load(); got != 20 {
		t.Errorf("request start %d, want 20 (the clock when its first bytes came)", got)
	}
	if g.open() != 1 {
		t.Errorf("%d connections guarded, want 1", g.open())
	}
	_ = gc.Close()
	if g.open() != 0 {
		t.Errorf("%d connections guarded after close, want 0", g.open())
	}
}

func TestExpiredDeadlinesAreNotRevived(t *testing.T) {
	g := newGuard(time.Second, time.Second, time.Second, time.Second, func(string) {})
	fc := &deadlineConn{}
	c := &guardedConn{Conn: fc, g: g}
	future := time.Now().Add(time.Hour)
	if err := c.SetDeadline(future); err != nil {
		t.Fatal(err)
	}
	c.expireRead(timeoutRead)
	c.expireWrite(timeoutWrite)
	// net/http clears deadlines after every request; an expired connection must stay expired.
	_ = c.SetReadDeadline(time.Time{})
	_ = c.SetWriteDeadline(time.Time{})
	_ = c.SetDeadline(future)
	if last := fc.read[len(fc.read)-1]; !last.Equal(expiredDeadline) {
		t.Errorf("read deadline revived to %v", last)
	}
	if last := fc.write[len(fc.write)-1]; !last.Equal(expiredDeadline) {
		t.Errorf("write deadline revived to %v", last)
	}
}

type fakeListener struct{ c net.Conn }

func (l fakeListener) Accept() (net.Conn, error) { return l.c, nil }
func (l fakeListener) Close() error              { return nil }
func (l fakeListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// wrappedConn is a connection another layer wraps around the guarded one.
type wrappedConn struct{ net.Conn }

func (w wrappedConn) NetConn() net.Conn { return w.Conn }

func TestHandlersReachTheirGuardedConnectionThroughWrappers(t *testing.T) {
	g := newGuard(time.Second, time.Second, time.Second, time.Minute, func(string) {})
	gc := &guardedConn{Conn: &deadlineConn{}, g: g}
	tests := map[string]struct {
		conn net.Conn
		want *guardedConn
	}{
		"The guarded connection itself is found.":        {gc, gc},
		"A wrapper offering NetConn is looked through.":  {wrappedConn{wrappedConn{gc}}, gc},
		"A connection the guard never saw has no guard.": {&deadlineConn{}, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, _ := g.connContext(context.Background(), tt.conn).Value(guardedConnKey{}).(*guardedConn)
			if got != tt.want {
				t.Errorf("found %p, want %p", got, tt.want)
			}
		})
	}
}
