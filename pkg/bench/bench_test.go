package bench

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/results"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// BenchmarkSummaryAdd is the per-result cost of the streaming report: no allocation.
func BenchmarkSummaryAdd(b *testing.B) {
	rs := syntheticResults()
	var s Summary
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Add(&rs[i%len(rs)])
	}
}

// BenchmarkReportOneMillion decodes a gob results file of 1,000,000 results and summarises
// it. MiB-heap-growth is the live heap the run leaves behind (about 0: nothing is held), and
// B/op over 1e6 results is what streaming allocates in passing.
func BenchmarkReportOneMillion(b *testing.B) {
	rs := syntheticResults()
	var buf bytes.Buffer
	enc := vegeta.NewEncoder(&buf)
	base := rs[len(rs)-1].Timestamp
	for i := 0; i < 1_000_000; i++ {
		r := rs[i%len(rs)]
		r.Seq, r.Timestamp = uint64(i), base.Add(time.Duration(i)*time.Millisecond)
		if err := enc.Encode(&r); err != nil {
			b.Fatal(err)
		}
	}
	data := buf.Bytes()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s Summary
		if err := results.Read(context.Background(), "bench", bytes.NewReader(data), s.Add); err != nil {
			b.Fatal(err)
		}
		if rep := s.Report(nil, Rate{}); rep.Requests != 1_000_000 {
			b.Fatalf("%d results", rep.Requests)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "MiB-heap-growth")
	runtime.KeepAlive(data)
}
