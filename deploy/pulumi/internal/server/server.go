// Package server builds the delayctl serve command line and environment that the Pulumi
// programs give their containers, so that AWS and GCP run the server the same way and the
// tests check one definition against delayctl itself.
package server

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/delayctl/delayctl/pkg/serve"
)

// Probe paths: readiness fails while no model is loaded and while draining; liveness only
// while the process cannot answer at all.
const (
	ReadyPath = "/readyz"
	LivePath  = "/healthz"
)

// Serve is what a program decides about the server; Args renders it as flags.
type Serve struct {
	Port            int
	ModelPath       string
	AuthKeysPath    string // empty: no API keys (the platform authenticates callers)
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
}

// DefaultPort is the port of serve's default --addr.
func DefaultPort() int {
	_, p, err := net.SplitHostPort(serve.DefaultAddr)
	if err != nil {
		panic(fmt.Sprintf("serve.DefaultAddr %q: %v", serve.DefaultAddr, err))
	}
	n, _ := strconv.Atoi(p)
	return n
}

// Args is the container command after the image's ENTRYPOINT (/delayctl).
func (s Serve) Args() []string {
	a := []string{"serve", "--model", s.ModelPath, "--addr", net.JoinHostPort("0.0.0.0", strconv.Itoa(s.Port)),
		"--log-format", "json", "--drain-delay", s.DrainDelay.String(), "--shutdown-timeout", s.ShutdownTimeout.String()}
	if s.AuthKeysPath != "" {
		a = append(a, "--auth-keys", s.AuthKeysPath)
	}
	return a
}

// StopWithin is how long the server may take from SIGTERM to exit: the drain delay, the
// shutdown timeout, and a margin for the process to exit.
func (s Serve) StopWithin() time.Duration {
	return s.DrainDelay + s.ShutdownTimeout + 5*time.Second
}

// GoMemLimit keeps the Go heap under a container memory limit of memMiB with a fifth of it
// left for stacks, buffers and the runtime (as deploy/k8s does: 200MiB of 256Mi).
func GoMemLimit(memMiB int) string {
	return fmt.Sprintf("%dMiB", memMiB*4/5)
}
