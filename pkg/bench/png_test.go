package bench

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestWritePNGs(t *testing.T) {
	dir := t.TempDir()
	if d := os.Getenv("BENCH_PNG_DIR"); d != "" {
		dir = d // keep them to look at
	}
	var sum Summary
	ts := newTimeSeries()
	for _, r := range syntheticResults() {
		sum.Add(&r)
		ts.Add(&r)
	}
	if err := WritePNGs(dir, &sum, ts, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{PNGHistogram, PNGOverTime, PNGThroughput} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 300 {
			t.Fatalf("%s is %dx%d", name, b.Dx(), b.Dy())
		}
	}
}

// The time series stays bounded: a day of results at one per 10 ms keeps at most
// maxSeriesPoints buckets, and compaction keeps every count.
func TestTimeSeriesIsBounded(t *testing.T) {
	ts := newTimeSeries()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 200000
	for i := 0; i < n; i++ {
		ts.Add(&vegeta.Result{Code: 200, Timestamp: base.Add(time.Duration(i) * 400 * time.Millisecond), Latency: time.Millisecond})
	}
	var total uint64
	for _, b := range ts.buckets {
		total += b.count
	}
	if len(ts.buckets) > maxSeriesPoints || total != n {
		t.Fatalf("%d buckets holding %d results, want at most %d holding %d", len(ts.buckets), total, maxSeriesPoints, n)
	}
}
