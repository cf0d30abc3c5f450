// Command delayctl trains, serves, load-tests and SLO-checks a flight delay model.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], newSystemIO())
	stop()
	os.Exit(code)
}
