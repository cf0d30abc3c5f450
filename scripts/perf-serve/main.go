// Command perf-serve holds the two helpers scripts/perf-serve.sh needs besides delayctl:
//
//	perf-serve body --model model.json --data flightdata.csv   print {"x": [...]} for the CSV's first usable row
//	perf-serve minimal --addr 127.0.0.1:18081 --answer FILE     serve FILE's bytes as a fixed JSON answer
//	perf-serve minimal ... --timeouts                           the same with delayctl serve's default timeouts set on http.Server
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
	"net/http"
	"os"

	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/serve"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: perf-serve body|minimal [flags]")
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
	default:
		log.Fatalf("unknown mode %q: want body or minimal", os.Args[1])
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
