// Command perf-serve holds the helpers scripts/perf-serve.sh and scripts/perf-attack.sh need
// besides delayctl:
//
//	perf-serve body --model model.json --data flightdata.csv   print {"x": [...]} for the CSV's first usable row
//	perf-serve minimal --addr 127.0.0.1:18081 --answer FILE     serve FILE's bytes as a fixed JSON answer
//	perf-serve minimal ... --timeouts                           the same with delayctl serve's default timeouts set on http.Server
//	perf-serve codes FILE                                       latency percentiles of a bench results file, per status code
//
// The minimal server is the reference delayctl serve is compared with: a plain net/http handler
// that reads the request body and writes a fixed JSON answer, with nothing else (no parsing, no
// model, no metrics, no limits). With --timeouts it shows what http.Server's own timeouts cost:
// delayctl serve enforces the same values with its connection guard instead.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"os"
	"slices"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/serve"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: perf-serve body|minimal|codes [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	switch os.Args[1] {
	case "body":
		modelPath := fs.String("model", "", "model file")
		data := fs.String("data", "", "flight CSV")
		_ = fs.Parse(os.Args[2:])
		if err := body(*modelPath, *data); err != nil {
			log.Fatal(err)
		}
	case "minimal":
		addr := fs.String("addr", "127.0.0.1:18081", "listen address")
		answer := fs.String("answer", "", "file holding the fixed JSON answer")
		timeouts := fs.Bool("timeouts", false, "set delayctl serve's default header, read, write and idle timeouts on http.Server")
		_ = fs.Parse(os.Args[2:])
		b, err := os.ReadFile(*answer)
		if err != nil {
			log.Fatal(err)
		}
		srv := &http.Server{Addr: *addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		})}
		if *timeouts {
			srv.ReadHeaderTimeout, srv.ReadTimeout = serve.DefaultReadHeaderTimeout, serve.DefaultReadTimeout
			srv.WriteTimeout, srv.IdleTimeout = serve.DefaultWriteTimeout, serve.DefaultIdleTimeout
		}
		log.Fatal(srv.ListenAndServe())
	case "codes":
		_ = fs.Parse(os.Args[2:])
		if err := codes(fs.Arg(0)); err != nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("unknown mode %q: want body, minimal or codes", os.Args[1])
	}
}

var errDone = errors.New("done")

func body(modelPath, data string) error {
	m, err := model.Load(modelPath)
	if err != nil {
		return err
	}
	f, err := os.Open(data)
	if err != nil {
		return err
	}
	defer f.Close()
	var x []float64
	err = m.ReadFlights(f, func(_ int, fl model.Flight) error {
		x = m.Encode(fl, nil)
		return errDone
	})
	if err != nil && !errors.Is(err, errDone) {
		return err
	}
	if x == nil {
		return fmt.Errorf("no usable row in %s", data)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string][]float64{"x": x})
}

// codes prints, for each status code in a vegeta results file (0: no answer), how many results
// and their latency percentiles: wrk and vegeta report one distribution for 200s and 503s
// together, which under shedding says nothing about either.
func codes(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	by := map[uint16][]time.Duration{}
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		by[r.Code] = append(by[r.Code], r.Latency)
	}
	keys := slices.Sorted(maps.Keys(by))
	for _, k := range keys {
		l := by[k]
		slices.Sort(l)
		q := func(p float64) time.Duration { return l[int(p*float64(len(l)-1))].Round(10 * time.Microsecond) }
		fmt.Printf("code %d: %d, p50 %v, p90 %v, p99 %v, max %v\n", k, len(l), q(.5), q(.9), q(.99), l[len(l)-1].Round(time.Millisecond))
	}
	return nil
}
