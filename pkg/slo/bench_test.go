package slo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/results"
	"github.com/delayctl/delayctl/pkg/slo"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// BenchmarkReport measures slo report's streaming over 100,000 gob results against the
// bare cost of decoding them with vegeta (the reference, measured in the same run), so the
// ratio report/decode shows what the SLO accounting adds. scripts/perf-slo.sh runs the
// binary over 1,000,000 results for wall time and peak memory.
func BenchmarkReport(b *testing.B) {
	const n = 100_000
	rs := run(n, func(i int) (uint16, time.Duration) {
		switch {
		case i%5000 == 0:
			return 503, time.Millisecond
		case i%100 == 0:
			return 200, 450 * time.Millisecond
		}
		return 200, time.Duration(500+i%4000) * time.Microsecond
	})
	data := encode(b, rs, "gob")
	s, err := slo.LoadFile("../../configs/slo.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode-reference", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			dec := vegeta.NewDecoder(bytes.NewReader(data))
			var r vegeta.Result
			for {
				r = vegeta.Result{}
				if err := dec.Decode(&r); err != nil {
					if !errors.Is(err, io.EOF) {
						b.Fatal(err)
					}
					break
				}
			}
		}
	})
	b.Run("report", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			acc := slo.NewResults(s)
			if err := results.Read(context.Background(), "bench", bytes.NewReader(data), acc.Add); err != nil {
				b.Fatal(err)
			}
			rep := slo.EvaluateResults(s, acc, nil, t0)
			w, _ := slo.NewReporter(rep, slo.FormatTable)
			if err := w(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}
