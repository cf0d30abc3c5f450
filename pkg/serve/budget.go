package serve

import (
	"math"
	"math/bits"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Memory-derived defaults. The issue that motivated them measured main's server: 600 clients
// each sending 1 MiB − 1 byte and stalling took RSS to 649 MB (one buffer per request sized
// from Content-Length), and 8,000 idle keep-alive connections held 195 MB, 24 KiB each
// (goroutine stack, bufio reader and writer, connection state).
const (
	// connBytes is what the server budgets for one open connection: the 24 KiB measured, with
	// room for a request's headers.
	connBytes = 32 << 10
	// bodyBase is the pooled buffer every request body starts in without drawing on the body
	// budget: a single-vector /predict body is a few hundred bytes, so well-behaved clients
	// never wait for the budget that a flood of large bodies exhausts.
	bodyBase = 4 << 10
	// noLimitMemory is the memory the defaults assume when no memory limit is set.
	noLimitMemory = 1 << 30
)

// MemoryLimit returns the Go runtime's memory limit (GOMEMLIMIT, or debug.SetMemoryLimit),
// or 0 when none is set.
func MemoryLimit() int64 {
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		return l
	}
	return 0
}

// DefaultMaxConns is the connection cap used when Options.MaxConns is 0: a quarter of the
// memory limit at 32 KiB a connection (1,600 at GOMEMLIMIT=200MiB; 8,192 without a limit, as
// for 1 GiB). With the body budget (another quarter) that leaves half the limit for the heap's
// garbage, the rest of the process, and connections holding more than 32 KiB: one stalled in
// the middle of 60 KiB of headers holds about 90 KiB (2,400 of them peaked at 219 MiB RSS
// with GOMEMLIMIT=200MiB, make hostile's TestHostileStalledHeaders).
func DefaultMaxConns(memLimit int64) int {
	if memLimit <= 0 {
		memLimit = noLimitMemory
	}
	return int(max(memLimit/4/connBytes, 64))
}

// DefaultMaxBufferedBytes is the request-body budget used when Options.MaxBufferedBytes is 0:
// a quarter of the memory limit (50 MiB at GOMEMLIMIT=200MiB; 256 MiB without a limit).
func DefaultMaxBufferedBytes(memLimit int64) int64 {
	if memLimit <= 0 {
		memLimit = noLimitMemory
	}
	return max(memLimit/4, 2*DefaultMaxBodyBytes)
}

// bodyBudget bounds the request-body bytes the server holds at once, across all requests,
// beyond the bodyBase every request gets. A request reserves its declared Content-Length
// before a byte is read, and a body of unknown length draws on the budget as it grows; when
// the budget cannot cover it the request is answered 503 at once. What a request holds is
// returned when its answer is written.
type bodyBudget struct {
	sem   *semaphore.Weighted
	size  int64
	inUse atomic.Int64
}

func newBodyBudget(size int64) *bodyBudget {
	return &bodyBudget{sem: semaphore.NewWeighted(size), size: size}
}

func (b *bodyBudget) tryAcquire(n int64) bool {
	if n <= 0 {
		return true
	}
	if !b.sem.TryAcquire(n) {
		return false
	}
	b.inUse.Add(n)
	return true
}

func (b *bodyBudget) release(n int64) {
	if n > 0 {
		b.inUse.Add(-n)
		b.sem.Release(n)
	}
}

// Body buffers come in size classes, bodyBase << k, each with a pool: a body that outgrows
// its buffer moves to the next class and hands the old buffer back, so the memory a flood of
// large bodies leaves behind is reused rather than left as garbage for the collector. The
// pools hold boxes (a pointer, so a Put does not allocate); emptied boxes wait in boxPool.
const bodyClasses = 40

type bodyBox struct{ b []byte }

var (
	bodyPools [bodyClasses]sync.Pool
	boxPool   = sync.Pool{New: func() any { return new(bodyBox) }}
)

// bodyClass returns the smallest class that holds n bytes.
func bodyClass(n int64) int {
	if n <= bodyBase {
		return 0
	}
	return bits.Len64(uint64(n-1)) - bits.Len64(bodyBase-1)
}

// classSize is the capacity of class k.
func classSize(k int) int64 { return bodyBase << k }

func getBodyBuf(k int) []byte {
	if box, ok := bodyPools[k].Get().(*bodyBox); ok {
		b := box.b[:0]
		box.b = nil
		boxPool.Put(box)
		return b
	}
	return make([]byte, 0, classSize(k))
}

// putBodyBuf returns a buffer of any class to its pool.
func putBodyBuf(b []byte) {
	k := bodyClass(int64(cap(b)))
	if k >= bodyClasses || classSize(k) != int64(cap(b)) {
		return // not a class buffer
	}
	box := boxPool.Get().(*bodyBox)
	box.b = b
	bodyPools[k].Put(box)
}

// budgetFor is the budget a buffer of capacity c holds: what it has beyond bodyBase.
func budgetFor(c int64) int64 { return max(c-bodyBase, 0) }
