// Command delayctl trains, serves, load-tests and SLO-checks a flight delay model.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// gcPercent is the GOGC serve and bench run with when the environment sets none. Both
// allocate per request (net/http's few KiB, vegeta's Result) while their live heap stays a few
// MiB, so at GOGC 100 the collector runs dozens of times a second under load: it cost serve
// several percent of throughput (scripts/perf-serve.sh) and took a third of the generator's
// CPU at 20,000 req/s, its pauses showing in the measured latencies. 400 trades about 12 MiB
// of resident memory for that; GOGC (and GOMEMLIMIT) in the environment still decide.
const gcPercent = 400

// tuneGC applies gcPercent unless GOGC is set, and returns what restores the previous value.
func tuneGC(ios *IOStreams) (restore func()) {
	if _, set := ios.Getenv("GOGC"); set {
		return func() {}
	}
	old := debug.SetGCPercent(gcPercent)
	return func() { debug.SetGCPercent(old) }
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], newSystemIO())
	stop()
	os.Exit(code)
}
