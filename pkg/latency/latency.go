// Package latency accumulates request latencies in constant memory and answers quantiles
// with a bounded relative error, so that bench and slo can summarise millions of results
// without holding them.
//
// Values below 2,048 ns are counted exactly; above that each power-of-two range is split
// into 1,024 equal buckets, so a reported quantile is never more than 1/1024 (under 0.1 %)
// above the true value, and never below it. This is the HdrHistogram layout with three
// significant digits, the precision wrk reports with.
package latency

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBuckets = 1024
	exactBelow = 2 * subBuckets
)

// Histogram is a streaming latency histogram. The zero value is ready to use.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    float64 // nanoseconds; float64 so that billions of long requests cannot overflow
	min    time.Duration
	max    time.Duration
}

func index(v uint64) int {
	if v < exactBelow {
		return int(v)
	}
	shift := bits.Len64(v) - 11 // v>>shift lies in [1024, 2047]
	return exactBelow + (shift-1)*subBuckets + int(v>>uint(shift)) - subBuckets
}

// upper returns the largest value that falls into bucket i.
func upper(i int) uint64 {
	if i < exactBelow {
		return uint64(i)
	}
	j := i - exactBelow
	shift := uint(j/subBuckets + 1)
	lo := uint64(j%subBuckets+subBuckets) << shift
	return lo + (uint64(1) << shift) - 1
}

// Add records one latency. Negative durations count as zero.
func (h *Histogram) Add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := index(uint64(d))
	if i >= len(h.counts) {
		grown := make([]uint64, i+1+i/4)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += float64(d)
}

// Merge adds every observation of o to h. Merging is exact: the result is the histogram of
// the union of both inputs, whatever the order.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of recorded latencies.
func (h *Histogram) Count() uint64 { return h.n }

// Min is the smallest recorded latency (exact), or 0 when empty.
func (h *Histogram) Min() time.Duration { return h.min }

// Max is the largest recorded latency (exact), or 0 when empty.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the exact arithmetic mean, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(h.sum / float64(h.n)))
}

// Quantile returns the q-quantile (0 <= q <= 1) by the nearest-rank method: the smallest
// recorded value v such that at least q of all values are <= v, rounded up to the top of its
// bucket and clamped to the exact maximum. It returns 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(upper(i))
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return v
		}
	}
	return h.max
}

// Rank returns the k-th smallest recorded latency (1-based), rounded up to the top of its
// bucket and clamped to the exact minimum and maximum: Quantile(q) is Rank(ceil(q*Count())).
// A k of 0 gives Min and a k above Count gives Max; it returns 0 when empty.
func (h *Histogram) Rank(k uint64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if k == 0 {
		return h.min
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= k {
			return min(max(time.Duration(upper(i)), h.min), h.max)
		}
	}
	return h.max
}

// CountAtOrBelow returns how many recorded latencies are <= d. It is exact when d is below
// 2,048 ns or on a bucket's upper edge; otherwise it counts whole buckets up to the one that
// holds d, which can overstate by that bucket's share. For exact threshold SLIs count at
// Add time instead (see slo).
func (h *Histogram) CountAtOrBelow(d time.Duration) uint64 {
	if d < 0 {
		return 0
	}
	last := index(uint64(d))
	var n uint64
	for i := 0; i <= last && i < len(h.counts); i++ {
		n += h.counts[i]
	}
	return n
}

// Bucket is one bar of a coarse histogram: the count of latencies in [Low, High).
type Bucket struct {
	Low, High time.Duration
	Count     uint64
}

// Buckets re-bins the histogram at the given ascending edges. Latencies at or above the last
// edge land in a final bucket whose High is the exact maximum. Counts are exact when every
// edge is below 2,048 ns or on a bucket edge of the internal layout; otherwise a latency in the
// internal bucket that straddles an edge is counted in the lower bar.
func (h *Histogram) Buckets(edges []time.Duration) []Bucket {
	if len(edges) == 0 {
		return nil
	}
	out := make([]Bucket, len(edges))
	for i := range edges {
		out[i].Low = edges[i]
		if i+1 < len(edges) {
			out[i].High = edges[i+1]
		} else {
			out[i].High = h.max
		}
	}
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		v := time.Duration(upper(i))
		b := 0
		for b+1 < len(edges) && v >= edges[b+1] {
			b++
		}
		if v < edges[0] {
			b = 0
		}
		out[b].Count += c
	}
	return out
}
