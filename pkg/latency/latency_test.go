package latency

import (
	"math"
	"math/rand"
	"slices"
	"testing"
	"time"
)

func TestIndexUpperRoundTrip(t *testing.T) {
	vals := []uint64{0, 1, 2047, 2048, 2049, 4095, 4096, 123456789, 1 << 40, 1<<62 + 12345}
	for _, v := range vals {
		i := index(v)
		if up := upper(i); up < v {
			t.Fatalf("upper(index(%d)) = %d, below the value", v, up)
		}
		if i > 0 && upper(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d (upper %d)", v, i-1, upper(i-1))
		}
		if rel := float64(upper(i)-v) / float64(v+1); rel > 1.0/1024 {
			t.Fatalf("value %d: bucket upper %d is %.5f above, more than 1/1024", v, upper(i), rel)
		}
	}
}

func TestQuantileMatchesSortedWithinPrecision(t *testing.T) {
	rng := rand.New(rand.NewSource(0))
	var h Histogram
	var raw []time.Duration
	for i := 0; i < 100000; i++ {
		d := time.Duration(rng.ExpFloat64() * float64(3*time.Millisecond))
		raw = append(raw, d)
		h.Add(d)
	}
	slices.Sort(raw)
	for _, q := range []float64{0.5, 0.75, 0.9, 0.95, 0.99, 0.999} {
		rank := int(float64(len(raw))*q+0.999999) - 1
		want := raw[rank]
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/1024+1 {
			t.Errorf("q%.3f: got %v, exact %v", q, got, want)
		}
	}
	if h.Min() != raw[0] || h.Max() != raw[len(raw)-1] {
		t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), raw[0], raw[len(raw)-1])
	}
}

func TestSmallExactCases(t *testing.T) {
	tests := map[string]struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		"An empty histogram answers zero.":          {nil, 0.5, 0},
		"One value is every quantile.":              {[]time.Duration{700}, 0.99, 700},
		"Median of four small values is the second": {[]time.Duration{4, 1, 3, 2}, 0.5, 2},
		"p75 of four small values is the third":     {[]time.Duration{4, 1, 3, 2}, 0.75, 3},
		"Quantile never exceeds the exact maximum":  {[]time.Duration{time.Second + 1}, 0.5, time.Second + 1},
		"Negative latencies count as zero":          {[]time.Duration{-5}, 1, 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			for _, d := range tt.in {
				h.Add(d)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Fatalf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestMergeEqualsSingle(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var all, a, b Histogram
	for i := 0; i < 5000; i++ {
		d := time.Duration(rng.Int63n(int64(time.Second)))
		all.Add(d)
		if i%3 == 0 {
			a.Add(d)
		} else {
			b.Add(d)
		}
	}
	a.Merge(&b)
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Fatalf("merged summary differs: %d %v %v %v vs %d %v %v %v", a.Count(), a.Min(), a.Max(), a.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 0.999} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Fatalf("q%v: merged %v, single %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
}

func TestBucketsAndCountAtOrBelow(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{100, 200, 1500, 1999, 2047} {
		h.Add(d)
	}
	got := h.Buckets([]time.Duration{0, 1000, 2000})
	want := []uint64{2, 2, 1}
	for i := range want {
		if got[i].Count != want[i] {
			t.Fatalf("bucket %d: %d, want %d (%+v)", i, got[i].Count, want[i], got)
		}
	}
	if n := h.CountAtOrBelow(1999); n != 4 {
		t.Fatalf("CountAtOrBelow(1999) = %d, want 4", n)
	}
}

func BenchmarkAdd(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Add(time.Duration(i%5000) * time.Microsecond)
	}
}

func TestRank(t *testing.T) {
	tests := map[string]struct {
		values []time.Duration
		k      uint64
		want   time.Duration
	}{
		"An empty histogram has no rank.":               {nil, 1, 0},
		"Rank zero is the minimum.":                     {[]time.Duration{5, 7, 9}, 0, 5},
		"Rank one is the smallest value.":               {[]time.Duration{9, 5, 7}, 1, 5},
		"The middle rank of three exact values.":        {[]time.Duration{9, 5, 7}, 2, 7},
		"A rank above the count is the maximum.":        {[]time.Duration{9, 5, 7}, 4, 9},
		"A large value is never reported below itself.": {[]time.Duration{time.Millisecond, 3 * time.Millisecond}, 2, 3 * time.Millisecond},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Add(v)
			}
			if got := h.Rank(tt.k); got != tt.want {
				t.Errorf("Rank(%d) = %v, want %v", tt.k, got, tt.want)
			}
		})
	}
}

func TestRankAgreesWithQuantile(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i*i) * time.Microsecond)
	}
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		k := uint64(math.Ceil(q * float64(h.Count())))
		if got, want := h.Rank(k), h.Quantile(q); got != want {
			t.Errorf("Rank(%d) = %v, Quantile(%v) = %v", k, got, q, want)
		}
	}
}
