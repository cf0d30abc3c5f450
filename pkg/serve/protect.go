package serve

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/time/rate"
)

// Reasons a request is shed, as in the reason label of delayctl_shed_requests_by_reason_total.
const (
	reasonInflight   = "inflight"    // --max-inflight predictions already computing
	reasonQueue      = "queue_delay" // its connection stayed beyond the adaptive limit (--shed-queue-delay)
	reasonBodyBudget = "body_budget" // its body does not fit --max-buffered-bytes now
)

// protection holds the server's resource limits and their metrics.
type protection struct {
	budget   *bodyBudget
	adm      *admission
	lim      *connLimiter // nil when --shed-queue-delay is 0
	canary   *canary
	byReason *prometheus.CounterVec
	refused  prometheus.Counter
	evicted  prometheus.Counter
}

// newProtection builds the body budget, the connection admission and the adaptive limiter of
// s, and registers their metrics.
func (s *Server) newProtection() {
	p := &protection{
		budget: newBodyBudget(s.opts.maxBufferedBytes()),
		byReason: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "delayctl_shed_requests_by_reason_total",
			Help: "Requests answered 503 because the server is overloaded, by reason: inflight (--max-inflight), queue_delay (the connection is beyond the adaptive limit), connection (a new connection beyond it, answered at accept), body_budget (--max-buffered-bytes).",
		}, []string{"reason"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "delayctl_connections_refused_total",
			Help: "Connections closed at accept without an answer: --max-conns reached with no idle connection to replace, or too many shed connections being answered.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "delayctl_connections_evicted_total",
			Help: "Idle keep-alive connections closed to make room for a new one at --max-conns.",
		}),
	}
	for _, r := range []string{reasonInflight, reasonQueue, reasonBodyBudget} {
		p.byReason.WithLabelValues(r)
	}
	maxConns := s.opts.maxConns()
	p.adm = newAdmission(maxConns, p.refused.Inc)
	p.adm.onEvict = p.evicted.Inc
	if s.opts.ShedQueueDelay > 0 {
		p.canary = newCanary()
		p.lim = newConnLimiter(s.opts.ShedQueueDelay, DefaultMinConnLimit(), int64(maxConns), p.canary.delay, p.adm.members.Load)
		p.adm.adapt(p.lim)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	s.met.reg.MustRegister(p.byReason, p.refused, p.evicted,
		gauge("delayctl_connection_limit", "Connections the server serves at once at most now: the adaptive limit, at most --max-conns.",
			func() float64 { return float64(p.adm.limit()) }),
		gauge("delayctl_max_connections", "--max-conns: open connections beyond which new ones replace idle ones or are closed.",
			func() float64 { return float64(maxConns) }),
		gauge("delayctl_admitted_connections", "Client connections counted against --max-conns now.",
			func() float64 { return float64(p.adm.open.Load()) }),
		gauge("delayctl_served_connections", "Connections served at once now (members), counted against the adaptive limit.",
			func() float64 { return float64(p.adm.members.Load()) }),
		gauge("delayctl_shed_queue_requests", "Requests beyond the adaptive limit waiting now for a place (or for their 503).",
			func() float64 {
				if p.adm.q == nil {
					return 0
				}
				return float64(p.adm.q.waiting())
			}),
		gauge("delayctl_queue_delay_seconds", "The queueing delay the adaptive limit acts on: the fastest round trip of the server's canary request to itself in the last 100 ms.",
			func() float64 {
				if p.lim == nil {
					return 0
				}
				return time.Duration(p.lim.measured.Load()).Seconds()
			}),
		gauge("delayctl_body_buffered_bytes", "Request-body bytes held now against --max-buffered-bytes.",
			func() float64 { return float64(p.budget.inUse.Load()) }),
		gauge("delayctl_max_buffered_bytes", "--max-buffered-bytes: request-body bytes the server holds at once beyond 4 KiB a request.",
			func() float64 { return float64(p.budget.size) }),
	)
	s.prot = p
	s.budget = p.budget
	s.adm = p.adm
}

// countShed counts one overload 503.
func (s *Server) countShed(reason string) {
	s.met.shed.Inc()
	s.prot.byReason.WithLabelValues(reason).Inc()
}

// shedRequest answers 503 with Retry-After for an overload, closing the connection when asked.
func (s *Server) shedRequest(w http.ResponseWriter, reason string, closeConn bool, msg string) {
	s.countShed(reason)
	h := w.Header()
	h["Retry-After"] = retryAfter1
	if closeConn {
		h.Set("Connection", "close")
	}
	writeError(w, http.StatusServiceUnavailable, msg)
}

// Routes of the operations listener (--metrics-addr). metrics and admin leave the main listener
// when it is on; the probes are on both, so a kubelet can probe a port that never sheds.
var (
	opsOnlyRoutes = map[string]bool{routeMetrics: true, routeAdminReload: true}
	opsRoutes     = map[string]bool{routeMetrics: true, routeAdminReload: true, routeHealthz: true, routeReadyz: true,
		routeV2Live: true, routeV2Ready: true, routeUnmatched: true}
)

// metricsScrapeRate bounds /metrics on the main listener: a Prometheus pair scraping every few
// seconds needs well under one scrape a second, and a flood beyond this gets 429 for the price
// of a token bucket check.
const metricsScrapeRate = 10

// metricsHandler serves /metrics. On the operations listener it gathers on every scrape. On the
// main listener, where anyone can call it, it gathers at most once per ttl (the Go and process
// collectors read /proc and stop the world, which a flood of scrapes turned into /predict
// latency) and answers 429 beyond metricsScrapeRate scrapes a second.
func (s *Server) metricsHandler() http.HandlerFunc {
	direct := promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError), Registry: s.met.reg,
	}).ServeHTTP
	if s.opts.separateMetrics() || s.opts.metricsCacheTTL <= 0 {
		return direct
	}
	c := &metricsCache{s: s, ttl: s.opts.metricsCacheTTL, lim: rate.NewLimiter(metricsScrapeRate, metricsScrapeRate)}
	return c.serveHTTP
}

type metricsCache struct {
	s   *Server
	ttl time.Duration
	lim *rate.Limiter

	mu   sync.Mutex
	body []byte
	at   time.Time
}

var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

func (c *metricsCache) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.lim.Allow() {
		w.Header()["Retry-After"] = retryAfter1
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("more than %d /metrics scrapes a second; scrape less often, or serve metrics on --metrics-addr", metricsScrapeRate))
		return
	}
	c.mu.Lock()
	if c.body == nil || time.Since(c.at) >= c.ttl {
		var buf bytes.Buffer
		if err := c.gather(&buf); err != nil {
			c.mu.Unlock()
			c.s.log.Error("could not gather metrics", "err", err)
			writeError(w, http.StatusInternalServerError, "could not gather metrics: "+err.Error())
			return
		}
		c.body, c.at = buf.Bytes(), time.Now()
	}
	body := c.body
	c.mu.Unlock()
	w.Header().Set("Content-Type", string(textFormat))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (c *metricsCache) gather(buf *bytes.Buffer) error {
	mfs, err := c.s.met.reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(buf, textFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
