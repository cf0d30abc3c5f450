package serve

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Defaults for Options. The command's flags reuse them.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultLogFormat         = "text"
	DefaultLogLevel          = "info"
	DefaultMaxBodyBytes      = 1 << 20 // 1 MiB, answered 413 beyond
	DefaultMaxBatch          = 1000
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultWatchInterval     = 2 * time.Second
	DefaultRateBurst         = 0 // 0: the burst equals the per-second rate, rounded up
	// DefaultMaxHeaderBytes caps request headers; net/http's own default is 1 MiB.
	DefaultMaxHeaderBytes = 64 << 10
)

// DefaultPublicRoutes are the routes that stay open when API keys are on: the probes an
// orchestrator and a Prometheus scraper call without credentials.
var DefaultPublicRoutes = []string{"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"}

// DefaultMaxInflight is the load-shedding limit used when Options.MaxInflight is 0: four
// prediction requests per CPU the Go scheduler may use (GOMAXPROCS). A prediction is pure CPU
// work of a few microseconds, so at most GOMAXPROCS requests make progress at once and any
// more only wait in the run queue, adding latency to everyone. The factor 4 leaves room for
// requests preempted in the middle of a large batch and for garbage-collector assists, so the
// server sheds only once a real queue builds up; at that point a fast 503 with Retry-After lets
// the client (or its load balancer) go elsewhere while the accepted requests stay fast.
func DefaultMaxInflight() int { return 4 * runtime.GOMAXPROCS(0) }

// Options configures Run. The zero value is not valid: start from the Default* constants (the
// command does) and set ModelPath.
type Options struct {
	// ModelPath is the model artifact to serve (model.json from `delayctl train`).
	ModelPath string
	// Addr is the TCP address to listen on, host:port.
	Addr string
	// LogFormat is "text" or "json" (log/slog handlers); LogLevel is debug, info, warn or error.
	LogFormat string
	LogLevel  string

	// MaxBodyBytes caps a request body; a larger one is answered 413.
	MaxBodyBytes int64
	// MaxBatch caps the instances in one request; a larger batch is answered 422.
	MaxBatch int
	// MaxInflight caps the prediction requests being computed at once; beyond it the server
	// answers 503 with Retry-After at once. 0 means DefaultMaxInflight().
	MaxInflight int

	// Timeouts for reading the request headers, reading the whole request, writing the
	// response, and keeping an idle keep-alive connection open; Run enforces them on every
	// connection.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes caps the request line and headers; 0 means DefaultMaxHeaderBytes.
	MaxHeaderBytes int

	// ShutdownTimeout bounds how long in-flight requests may take to finish once the context
	// is cancelled (SIGTERM, SIGINT). DrainDelay is waited first, with /readyz already failing
	// and the listener still open, so a load balancer can stop routing before connections close.
	ShutdownTimeout time.Duration
	DrainDelay      time.Duration

	// AuthKeysFile, when set, turns API keys on: the file holds one SHA-256 hex hash per line
	// (see ParseKeys). PublicRoutes lists the routes (as their metric route labels) that need
	// no key. /admin/reload can never be public.
	AuthKeysFile string
	PublicRoutes []string
	// RateLimit is the sustained requests per second allowed per API key (per server when keys
	// are off) on the non-public routes; 0 turns rate limiting off. RateBurst is the bucket
	// size; 0 means ceil(RateLimit).
	RateLimit float64
	RateBurst int

	// Watch polls the model file every WatchInterval and reloads it when it changes.
	Watch         bool
	WatchInterval time.Duration
	// Reload triggers a reload from ModelPath on every receive (the command wires SIGHUP to it).
	Reload <-chan os.Signal

	// ServerVersion is reported by GET /v2 (the delayctl build version).
	ServerVersion string
	// Listener, when set, is served instead of listening on Addr (tests pass 127.0.0.1:0).
	Listener net.Listener

	// onServer, set by tests, sees the Server that Run built before it starts serving.
	onServer func(*Server)
}

// Validate checks the options Run needs, naming the flag at fault.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.ModelPath == "" {
		bad("--model is required: the model file to serve")
	}
	if o.Listener == nil {
		if _, _, err := net.SplitHostPort(o.Addr); err != nil {
			bad("--addr %q: want host:port: %w", o.Addr, err)
		}
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		bad("--log-format %q: want text or json", o.LogFormat)
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		bad("--log-level: %w", err)
	}
	if o.MaxBodyBytes <= 0 {
		bad("--max-body-bytes must be positive, got %d", o.MaxBodyBytes)
	}
	if o.MaxBatch <= 0 {
		bad("--max-batch must be positive, got %d", o.MaxBatch)
	}
	if o.MaxInflight < 0 {
		bad("--max-inflight must be 0 (auto) or positive, got %d", o.MaxInflight)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--read-header-timeout", o.ReadHeaderTimeout}, {"--read-timeout", o.ReadTimeout},
		{"--write-timeout", o.WriteTimeout}, {"--idle-timeout", o.IdleTimeout},
		{"--shutdown-timeout", o.ShutdownTimeout},
	} {
		if d.v <= 0 {
			bad("%s must be positive, got %v", d.flag, d.v)
		}
	}
	if o.DrainDelay < 0 {
		bad("--drain-delay must not be negative, got %v", o.DrainDelay)
	}
	if o.MaxHeaderBytes < 0 {
		bad("max header bytes must not be negative, got %d", o.MaxHeaderBytes)
	}
	if o.RateLimit < 0 || o.RateBurst < 0 {
		bad("--rate-limit and --rate-burst must not be negative, got %v and %d", o.RateLimit, o.RateBurst)
	}
	if o.RateBurst > 0 && o.RateLimit == 0 {
		bad("--rate-burst %d needs --rate-limit", o.RateBurst)
	}
	if o.Watch && o.WatchInterval <= 0 {
		bad("--watch-interval must be positive, got %v", o.WatchInterval)
	}
	if err := validatePublicRoutes(o.PublicRoutes); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validatePublicRoutes(routes []string) error {
	for _, r := range routes {
		switch {
		case r == routeAdminReload:
			return fmt.Errorf("--public-routes: %s can never be public: it swaps the served model", r)
		case !slices.Contains(allRoutes, r):
			return fmt.Errorf("--public-routes: unknown route %q (routes: %s)", r, strings.Join(allRoutes, ", "))
		}
	}
	return nil
}

func (o Options) maxInflight() int {
	if o.MaxInflight == 0 {
		return DefaultMaxInflight()
	}
	return o.MaxInflight
}

func (o Options) maxHeaderBytes() int {
	if o.MaxHeaderBytes == 0 {
		return DefaultMaxHeaderBytes
	}
	return o.MaxHeaderBytes
}
