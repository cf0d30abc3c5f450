package serve

import (
	"sync"
	"sync/atomic"
	"time"
)

// A verdict is what admission decided for a request.
type verdict int32

const (
	verdictServe  verdict = iota // serve it: its connection is (or just became) a member
	verdictReject                // answer 503 with Retry-After
	verdictNone                  // not decided: a request of a connection that is not a member, read from net/http's buffer (pipelined)
)

// shedQueue holds the requests of connections that are not members (see admission), parked,
// from the moment their first bytes are read until a member's place opens (the newest goes
// first: it has waited least) or until they have waited rejectAfter, when they are answered 503
// (the oldest first).
//
// Why they wait at all: with a microsecond model a 503 costs the server about what a 200 does,
// and a closed-loop client re-sends the moment it is answered, so answering the excess at once
// turns it into a storm that takes the CPU from the members (a connection shed at Accept
// reconnects, which is worse: docs/PERFORMANCE.md, "Under attack"). Parked, the excess costs
// nothing until it is answered, and by Little's law N waiting connections then take N /
// rejectAfter of the server's answers whatever the clients do: 1,300 of wrk -c1500 at 250 ms,
// 5,200 a second, an eighth of what the server answered.
type shedQueue struct {
	rejectAfter int64        // nanoseconds
	now         func() int64 // a monotonic clock, in nanoseconds

	mu      sync.Mutex
	ring    []*waiter
	head, n int
	size    atomic.Int64 // n, read without the lock
	closed  bool
}

// waiter is one parked request; a connection owns one, having at most one request parked.
type waiter struct {
	at int64 // shedQueue.now() when it began waiting
	ch chan verdict
}

func newWaiter() *waiter { return &waiter{ch: make(chan verdict, 1)} }

// rejectAfter is how long a request of a connection beyond the limit waits for a place before
// it is answered 503: a quarter of the Retry-After it is given, so that a client that honours
// it is not kept waiting longer than it is then asked to wait, and well under the 2 s a wrk
// client gives up after.
const rejectAfter = 250 * time.Millisecond

func newShedQueue(after time.Duration) *shedQueue {
	start := time.Now()
	return &shedQueue{rejectAfter: int64(after), ring: make([]*waiter, 64),
		now: func() int64 { return int64(time.Since(start)) }}
}

// wait parks w until promote or expire decides for it.
func (q *shedQueue) wait(w *waiter) verdict {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return verdictReject
	}
	w.at = q.now()
	q.push(w)
	q.mu.Unlock()
	return <-w.ch
}

// promote lets the newest waiter be served, if there is one.
func (q *shedQueue) promote() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return false
	}
	q.popTail().ch <- verdictServe
	return true
}

// expire answers, oldest first, the waiters that have waited rejectAfter; it returns how many.
func (q *shedQueue) expire() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	now, k := q.now(), 0
	for q.n > 0 && now-q.ring[q.head].at >= q.rejectAfter {
		q.popHead().ch <- verdictReject
		k++
	}
	return k
}

func (q *shedQueue) empty() bool { return q.waiting() == 0 }

// close answers every waiter 503, and every later one at once.
func (q *shedQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for q.n > 0 {
		q.popHead().ch <- verdictReject
	}
}

// waiting returns how many requests wait now.
func (q *shedQueue) waiting() int { return int(q.size.Load()) }

func (q *shedQueue) push(w *waiter) {
	if q.n == len(q.ring) {
		ring := make([]*waiter, 2*len(q.ring))
		for i := range q.n {
			ring[i] = q.ring[(q.head+i)%len(q.ring)]
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.n)%len(q.ring)] = w
	q.n++
	q.size.Store(int64(q.n))
}

func (q *shedQueue) popHead() *waiter {
	w := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	q.size.Store(int64(q.n))
	return w
}

func (q *shedQueue) popTail() *waiter {
	i := (q.head + q.n - 1) % len(q.ring)
	w := q.ring[i]
	q.ring[i] = nil
	q.n--
	q.size.Store(int64(q.n))
	return w
}
