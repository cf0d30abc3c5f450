// Command slo-genresults writes a synthetic vegeta results file for measuring
// `delayctl slo report`: N results at a fixed rate against /predict, with a spread of
// latencies, a slow tail and a few 503s and transport errors. Deterministic for a seed.
//
//	go run ./scripts/slo-genresults -n 1000000 -o /tmp/1m.bin
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	n := flag.Int("n", 1_000_000, "number of results")
	out := flag.String("o", "results.bin", "output `file`")
	encoding := flag.String("encoding", "gob", "gob, json or csv")
	rate := flag.Int("rate", 1000, "requests per second the run pretends to have made")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if err := write(*out, *encoding, *n, *rate, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "slo-genresults:", err)
		os.Exit(1)
	}
}

func write(path, encoding string, n, rate int, seed uint64) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".slo-genresults-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	var enc vegeta.Encoder
	switch encoding {
	case "gob":
		enc = vegeta.NewEncoder(w)
	case "json":
		enc = vegeta.NewJSONEncoder(w)
	case "csv":
		enc = vegeta.NewCSVEncoder(w)
	default:
		return fmt.Errorf("unknown encoding %q", encoding)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	gap := time.Second / time.Duration(rate)
	for i := 0; i < n; i++ {
		r := vegeta.Result{
			Attack: "perf", Seq: uint64(i), Code: 200, Method: "POST", URL: "http://127.0.0.1:8080/predict",
			Timestamp: start.Add(time.Duration(i) * gap),
			Latency:   time.Duration(500_000 + rng.ExpFloat64()*2e6), // 0.5ms + exp(mean 2ms)
			BytesOut:  180, BytesIn: 64,
		}
		switch x := rng.IntN(100_000); {
		case x < 20: // 0.02% 503s
			r.Code, r.Error = 503, "503 Service Unavailable"
		case x < 25: // 0.005% transport errors
			r.Code, r.Error, r.BytesIn = 0, "context deadline exceeded", 0
		case x < 1000: // 1% slow tail
			r.Latency = time.Duration(300e6 + rng.Float64()*300e6)
		}
		if err := enc.Encode(&r); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
