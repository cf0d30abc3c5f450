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
	// DefaultShedQueueDelay is the queueing delay the adaptive connection limit keeps the
	// served connections under. Under wrk -c1500 with the server on one CPU, 2 ms kept the p99
	// of the requests served at 8-16 ms and served the most; 5 ms (CoDel's target): 15-31 ms;
	// 1 ms: 7-25 ms, shedding half of a new client's requests; unshed: 65-192 ms
	// (docs/PERFORMANCE.md, "Under attack").
	DefaultShedQueueDelay = 2 * time.Millisecond
	// DefaultMetricsCacheTTL is how long /metrics on the main listener reuses one gathering.
	DefaultMetricsCacheTTL = time.Second
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
	// MaxConns caps the open client connections; beyond it a new connection replaces an idle
	// one or is closed at once. 0 means DefaultMaxConns(MemoryLimit()).
	MaxConns int
	// MaxBufferedBytes caps the request-body bytes held at once across all requests (beyond
	// 4 KiB each); a request the budget cannot cover is answered 503 before its body is read.
	// 0 means DefaultMaxBufferedBytes(MemoryLimit()).
	MaxBufferedBytes int64
	// ShedQueueDelay is the queueing delay the adaptive connection limit keeps the served
	// connections under: above it fewer connections are served, and the requests of the rest
	// wait for a place and are answered 503 when none opens (see admission). 0 turns the
	// adaptive limit off.
	ShedQueueDelay time.Duration

	// Timeouts for reading the request headers, reading the whole request, writing the
	// response, and keeping an idle keep-alive connection open; Run enforces them on every
	// connection.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes caps the request line and headers.
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
	// Monitor configures drift metrics and the prediction log.
	Monitor MonitorOptions

	// Listener, when set, is served instead of listening on Addr (tests pass 127.0.0.1:0).
	Listener net.Listener

	// MetricsAddr, when set, serves /metrics, the probes and /admin/reload on a listener of
	// their own, off the prediction traffic; the main listener then answers those two routes
	// 404. Unset, /metrics on the main listener is gathered at most once per
	// DefaultMetricsCacheTTL and rate limited. MetricsListener replaces it in tests.
	MetricsAddr     string
	MetricsListener net.Listener

	// metricsCacheTTL is how long /metrics on the main listener reuses a gathering; Run sets
	// DefaultMetricsCacheTTL, and a Server built by New alone gathers on every scrape.
	metricsCacheTTL time.Duration

	// onServer, set by tests, sees the Server that Run built before it starts serving.
	onServer func(*Server)
}

// Bounds Validate enforces beyond positivity: values past them are mistakes (a typo, a unit
// slip), not configurations; each starts the server into a state that cannot work.
const (
	// MaxMaxBodyBytes caps --max-body-bytes: a prediction request of more than 1 GiB of JSON is
	// no prediction request.
	MaxMaxBodyBytes = 1 << 30
	// MaxMaxHeaderBytes caps --max-header-bytes at net/http's own default.
	MaxMaxHeaderBytes = 1 << 20
	// MaxCount caps --max-batch, --max-inflight, --rate-burst and --max-conns.
	MaxCount = 1_000_000
	// maxBufferedBytes caps --max-buffered-bytes: 64 GiB of request bodies in flight is a
	// unit slip on any machine this serves from.
	maxBufferedBytes = 1 << 36
	// MaxRateLimit caps --rate-limit (requests per second): the token bucket works in int64
	// nanoseconds and ints, and wraps around far below float64's range (9.3e18 gave every
	// request a 429 with Retry-After 9223372037).
	MaxRateLimit = 1e9
	// MinRateLimit is the smallest --rate-limit above 0: one request a day. Less locks a key
	// out for longer than any client waits (1e-9 would answer Retry-After of 31 years).
	MinRateLimit = 1.0 / 86400
	// MinTimeout and MaxDuration bound every duration flag: below a millisecond no request can
	// be read; beyond a day a timeout is no timeout.
	MinTimeout  = time.Millisecond
	MaxDuration = 24 * time.Hour
)

// Validate checks the options Run needs, naming the flag at fault and the value given.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.ModelPath == "" {
		bad("--model is required: the model file to serve")
	}
	if o.Listener == nil {
		if err := validateAddr(o.Addr); err != nil {
			bad("--addr %q: %w", o.Addr, err)
		}
	}
	if o.MetricsAddr != "" && o.MetricsListener == nil {
		if err := validateAddr(o.MetricsAddr); err != nil {
			bad("--metrics-addr %q: %w", o.MetricsAddr, err)
		}
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		bad("--log-format %q: want text or json", o.LogFormat)
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		bad("--log-level: %w", err)
	}
	sizes := []struct {
		flag    string
		v, min  int64
		max     int64
		meaning string
	}{
		{"--max-body-bytes", o.MaxBodyBytes, 1, MaxMaxBodyBytes, ""},
		{"--max-header-bytes", int64(o.MaxHeaderBytes), 1, MaxMaxHeaderBytes, ""},
		{"--max-batch", int64(o.MaxBatch), 1, MaxCount, ""},
		{"--max-inflight", int64(o.MaxInflight), 0, MaxCount, " (0 = 4 x GOMAXPROCS)"},
		{"--rate-burst", int64(o.RateBurst), 0, MaxCount, " (0 = the rate, rounded up)"},
		{"--max-conns", int64(o.MaxConns), 0, MaxCount, " (0 = from the memory limit)"},
		{"--max-buffered-bytes", o.MaxBufferedBytes, 0, maxBufferedBytes, " (0 = a quarter of the memory limit)"},
	}
	for _, n := range sizes {
		if n.v < n.min || n.v > n.max {
			bad("%s %d: want %d to %d%s", n.flag, n.v, n.min, n.max, n.meaning)
		}
	}
	durations := []struct {
		flag string
		v    time.Duration
		min  time.Duration
		skip bool
	}{
		{"--read-header-timeout", o.ReadHeaderTimeout, MinTimeout, false},
		{"--read-timeout", o.ReadTimeout, MinTimeout, false},
		{"--write-timeout", o.WriteTimeout, MinTimeout, false},
		{"--idle-timeout", o.IdleTimeout, MinTimeout, false},
		{"--shutdown-timeout", o.ShutdownTimeout, MinTimeout, false},
		{"--drain-delay", o.DrainDelay, 0, false},
		{"--shed-queue-delay", o.ShedQueueDelay, 0, false},
		{"--watch-interval", o.WatchInterval, MinTimeout, !o.Watch},
	}
	for _, d := range durations {
		if !d.skip && (d.v < d.min || d.v > MaxDuration) {
			bad("%s %v: want %v to %v", d.flag, d.v, d.min, MaxDuration)
		}
	}
	// The negated test is also true for NaN.
	if !(o.RateLimit == 0 || o.RateLimit >= MinRateLimit && o.RateLimit <= MaxRateLimit) {
		bad("--rate-limit %v: want 0 (off) or %.3g (one a day) to %g requests per second", o.RateLimit, MinRateLimit, float64(MaxRateLimit))
	}
	if o.RateBurst > 0 && o.RateLimit == 0 {
		bad("--rate-burst %d needs --rate-limit", o.RateBurst)
	}
	if err := validatePublicRoutes(o.PublicRoutes); err != nil {
		errs = append(errs, err)
	}
	if err := o.Monitor.validate(o.ModelPath); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateAddr checks a listen address: host:port, the port a number (or service name) up
// to 65535, the host empty, an IP address or a DNS name.
func validateAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("bad port: %w", err)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
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

func (o Options) maxConns() int {
	if o.MaxConns == 0 {
		return DefaultMaxConns(MemoryLimit())
	}
	return o.MaxConns
}

func (o Options) maxBufferedBytes() int64 {
	if o.MaxBufferedBytes == 0 {
		return DefaultMaxBufferedBytes(MemoryLimit())
	}
	return o.MaxBufferedBytes
}

func (o Options) separateMetrics() bool { return o.MetricsAddr != "" || o.MetricsListener != nil }

func (o Options) maxHeaderBytes() int {
	if o.MaxHeaderBytes == 0 {
		return DefaultMaxHeaderBytes
	}
	return o.MaxHeaderBytes
}
