// Command perfserver is the minimal HTTP server that scripts/perf-bench.sh attacks with wrk and
// with delayctl bench, so that the two load generators are compared against the same target.
// It answers every request with a fixed 13-byte JSON body and nothing else.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen `address`")
	flag.Parse()
	body := []byte(`{"ok":true}` + "\n\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}
