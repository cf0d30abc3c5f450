package serve

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// admission decides which connections the server serves. It holds two limits: --max-conns on
// open connections, the memory cap, and the adaptive limit (see connLimiter) on members, the
// connections served at once. A connection beyond --max-conns replaces an idle keep-alive
// connection when there is one and is otherwise closed at once, unanswered: Accept never
// blocks, since a connection waiting in the kernel's backlog is a client waiting with no
// answer. A request of a connection that is not a member becomes one if the limit has room;
// otherwise it waits in the shed queue until a member leaves and gives it its place (the newest
// waiting goes first), and is answered 503 if none does within rejectAfter. A member leaves when
// its connection closes; while others wait, when it has been idle for idleWhileOthersWait or a
// member for memberLease, so that every client gets its turn; otherwise when it has been idle
// for memberLease.
//
// Why connections and not requests: a request runs from its first byte read to its answer
// without blocking, so the requests in progress at once never exceeded 1-4 under wrk -c1500 of
// single-vector requests while 1,400 more waited unread in the kernel, where nothing can be
// measured or shed (docs/PERFORMANCE.md, "Under attack"). Members' requests are served as
// they come; every other request is read at once and parked, which empties the kernel's
// queues into the shed queue.
type admission struct {
	maxConns int64
	lim      *connLimiter // nil: no adaptive limit
	q        *shedQueue   // nil with lim
	lease    int64        // memberLease, in nanoseconds
	idleWait int64        // idleWhileOthersWait, in nanoseconds
	onRefuse func()       // a connection closed unanswered at Accept
	onEvict  func()       // an idle connection closed to make room

	open      atomic.Int64
	members   atomic.Int64
	undecided atomic.Int64 // connections whose verdict is verdictReject or verdictNone: most requests skip the lookup
	mu        sync.Mutex
	conns     map[*admitConn]struct{}
}

// memberLease is how long a member keeps its place while others wait, and how long an idle one
// keeps it at all. With wrk -c1500 and a limit near 150, a connection waits about 10 s for
// its turn.
const memberLease = time.Second

func newAdmission(maxConns int, onRefuse func()) *admission {
	return &admission{maxConns: int64(maxConns), onRefuse: onRefuse, lease: int64(memberLease),
		idleWait: int64(idleWhileOthersWait), conns: map[*admitConn]struct{}{}}
}

// adapt turns on the adaptive limit.
func (a *admission) adapt(lim *connLimiter) {
	a.lim = lim
	a.q = newShedQueue(rejectAfter)
}

// limit is the adaptive limit on members now, at most --max-conns.
func (a *admission) limit() int64 {
	if a.lim == nil {
		return a.maxConns
	}
	return min(a.lim.limit(), a.maxConns)
}

// run answers the shed queue's expired requests, takes their places from idle members and
// gives free places to waiting requests, until stop is closed; then it answers every waiting
// request 503, so that none is left parked.
func (a *admission) run(stop <-chan struct{}) {
	tick := 0
	every(25*time.Millisecond, stop, func() {
		tick++
		switch {
		case !a.q.empty():
			a.q.expire()
			a.dropIdle(a.idleWait)
			a.fill()
		case tick%4 == 0:
			a.dropIdle(a.lease)
		}
	})
	a.q.close()
}

// idleWhileOthersWait is how long a member may sit idle while requests wait for a place: a
// closed-loop client sends again within a millisecond, so one idle this long has stopped, and
// its place would otherwise be held for a lease while the waiters get 503 at rejectAfter.
const idleWhileOthersWait = 50 * time.Millisecond

// busy reports whether the adaptive limit could matter: the members are at least half of it
// or of its floor. Below that every request is served at once whatever the limit, so the
// canary need not measure.
func (a *admission) busy() bool {
	return 2*a.members.Load() >= min(a.limit(), a.lim.min)
}

// dropIdle takes their places from members idle for longer than idle nanoseconds.
func (a *admission) dropIdle(idle int64) {
	now := a.q.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.conns {
		if !c.inRequest.Load() && now-c.lastEnd.Load() > idle && c.member.CompareAndSwap(true, false) {
			a.members.Add(-1)
		}
	}
}

// listen wraps ln: its connections are counted, replace idle ones or are refused.
func (a *admission) listen(ln net.Listener) net.Listener { return admitListener{ln, a} }

type admitListener struct {
	net.Listener
	a *admission
}

func (l admitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c := l.a.admit(nc); c != nil {
			return c, nil
		}
	}
}

// admit returns nc counted and wrapped, or nil when it was refused.
func (a *admission) admit(nc net.Conn) net.Conn {
	if a.open.Load() >= a.maxConns && !a.evictIdle() {
		a.onRefuse()
		_ = nc.Close()
		return nil
	}
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
		// parked: a request read and waiting for a place, before net/http marks the connection
		// active. (A connection stalled in its headers stays a candidate, as before admission.)
		if !c.busy.Load() && !c.parked.Load() {
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
		c.endRequest(false)
	case http.StateHijacked, http.StateClosed:
		c.endRequest(true)
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

// take takes a place under the adaptive limit if one is free.
func (a *admission) take() bool {
	for {
		n := a.members.Load()
		if n >= a.limit() {
			return false
		}
		if a.members.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// fill gives the free places to the newest waiting requests.
func (a *admission) fill() {
	for a.take() {
		if !a.q.promote() {
			a.members.Add(-1)
			return
		}
	}
}

// enter decides on a request whose first bytes, head, were just read on c. Probes and the
// canary take no place and never wait.
func (a *admission) enter(c *admitConn, head []byte) verdict {
	if c.member.Load() || isProbe(head) {
		return verdictServe
	}
	if !a.take() {
		if c.w == nil {
			c.w = newWaiter()
		}
		c.parked.Store(true)
		v := a.q.wait(c.w)
		c.parked.Store(false)
		if v == verdictReject {
			return verdictReject
		}
		// promoted: fill took its place
	}
	now := a.q.now()
	c.since.Store(now)
	c.lastEnd.Store(now)
	c.member.Store(true)
	return verdictServe
}

// rejected reports whether admission decided r is to be answered 503.
// A request that net/http read from its buffer rather than the connection (the client
// pipelines) passed no Read, so it is decided here.
func (a *admission) rejected(r *http.Request) bool {
	if a.undecided.Load() == 0 {
		return false
	}
	c, _ := r.Context().Value(admitConnKey{}).(*admitConn)
	if c == nil {
		return false
	}
	if verdict(c.verdict.Load()) == verdictNone {
		c.inRequest.Store(true)
		c.carried = false // the byte belongs to this request, already parsed
		c.setVerdict(a.enter(c, nil))
	}
	return verdict(c.verdict.Load()) == verdictReject
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

// isProbe reports whether a request head is a GET or HEAD of a health or readiness route or
// of the canary: an orchestrator must not restart a server for being busy, and the canary
// measures what the served connections feel.
func isProbe(head []byte) bool {
	for _, p := range [...]string{routeHealthz, routeReadyz, routeV2Live, routeV2Ready, canaryPath} {
		for _, m := range [...]string{"GET ", "HEAD "} {
			if bytes.HasPrefix(head, []byte(m+p+" ")) || bytes.HasPrefix(head, []byte(m+p+"?")) {
				return true
			}
		}
	}
	return false
}

// admitConn is a connection admission counts as open until it closes.
type admitConn struct {
	net.Conn
	a       *admission
	counted atomic.Bool // still counted in open
	busy    atomic.Bool // serving a request

	// Owned by the connection's goroutine (Read before a request, the ConnState hooks after).
	inRequest atomic.Bool  // a request's first bytes were read and its answer is not done
	verdict   atomic.Int32 // admission's verdict on the current request
	member    atomic.Bool  // one of the connections served at once
	parked    atomic.Bool  // its request waits in the shed queue
	since     atomic.Int64 // shedQueue.now() when it became a member (the lease's start)
	lastEnd   atomic.Int64 // shedQueue.now() when its last request ended
	carry     byte         // the byte net/http's background read took, if carried
	carried   bool
	w         *waiter
}

// Read asks admission about a request as soon as its first bytes arrive, before net/http
// parses them: the request of a connection beyond the adaptive limit parks there.
//
// A one-byte read is net/http's background read, which watches for the client closing while a
// handler runs and may take the first byte of the request after (pipelined): it decides
// nothing, running beside the handler, but keeps the byte, so that the next decision still
// sees the whole request line (a probe must be recognised as one).
func (c *admitConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n == 0 || c.a.lim == nil {
		return n, err
	}
	if len(p) == 1 {
		c.carry, c.carried = p[0], true
		return n, err
	}
	if !c.inRequest.Load() {
		c.inRequest.Store(true)
		head := p[:n]
		if c.carried {
			var buf [64]byte
			buf[0] = c.carry
			head = buf[:1+copy(buf[1:], head)]
		}
		c.carried = false
		c.setVerdict(c.a.enter(c, head))
	}
	return n, err
}

// endRequest ends the current request. A member whose connection is done, or whose lease is
// over while others wait, leaves, and its place goes to the newest waiting request; any other
// member's idle time starts.
func (c *admitConn) endRequest(done bool) {
	c.inRequest.Store(false)
	if c.a.lim == nil {
		return
	}
	c.leave(done)
	// The next request, unless it is a member's, is decided in Read, or else in rejected.
	if c.member.Load() || done {
		c.setVerdict(verdictServe)
	} else {
		c.setVerdict(verdictNone)
	}
}

func (c *admitConn) leave(done bool) {
	if !c.member.Load() {
		return
	}
	a := c.a
	now := a.q.now()
	c.lastEnd.Store(now)
	nobodyWaits := a.q.empty()
	if !done && a.members.Load() <= a.limit() && (now-c.since.Load() < a.lease || nobodyWaits) {
		if nobodyWaits {
			c.since.Store(now)
		}
		return
	}
	if c.member.CompareAndSwap(true, false) {
		a.members.Add(-1)
		a.fill()
	}
}

// setVerdict records v for the current request, counting the connections left undecided.
func (c *admitConn) setVerdict(v verdict) {
	old := verdict(c.verdict.Swap(int32(v)))
	if was, is := old != verdictServe, v != verdictServe; was != is {
		if is {
			c.a.undecided.Add(1)
		} else {
			c.a.undecided.Add(-1)
		}
	}
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
