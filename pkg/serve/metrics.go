package serve

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, on a registry of their own (never the global
// one), so that two servers in one process (tests) do not collide.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec   // route, method, code
	duration    *prometheus.HistogramVec // route, method
	inFlight    prometheus.Gauge
	delayed     prometheus.Counter
	onTime      prometheus.Counter
	shed        prometheus.Counter
	rateLimited prometheus.Counter
	panics      prometheus.Counter
	modelInfo   *prometheus.GaugeVec // name, version, checksum
	reloadOK    prometheus.Counter
	reloadFail  prometheus.Counter
	timedOut    *prometheus.CounterVec // timeout
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: contract.Requests,
			Help: "HTTP requests answered, by route (mux pattern), method and status code.",
		}, []string{contract.LabelRoute, contract.LabelMethod, contract.LabelCode}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    contract.Duration,
			Help:    "Time from the handler receiving a request to the response being handed to the connection, by route and method.",
			Buckets: contract.DurationBuckets,
		}, []string{contract.LabelRoute, contract.LabelMethod}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: contract.InFlight,
			Help: "HTTP requests being handled right now.",
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: contract.Shed,
			Help: "Requests answered 503 because the server is overloaded, for any reason (delayctl_shed_requests_by_reason_total splits them).",
		}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: contract.RateLimited,
			Help: "Requests answered 429 because their API key exceeded --rate-limit.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "delayctl_panics_total",
			Help: "Handler panics recovered and answered 500.",
		}),
		timedOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "delayctl_connections_timed_out_total",
			Help: "Connections cut off by a timeout: header (--read-header-timeout), read (--read-timeout), write (--write-timeout) or idle (--idle-timeout).",
		}, []string{"timeout"}),
		modelInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "delayctl_model_info",
			Help: "The model being served (always 1).",
		}, []string{"name", "version", "checksum"}),
	}
	predictions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "delayctl_predictions_total",
		Help: "Instances predicted, by predicted label.",
	}, []string{"label"})
	m.delayed = predictions.WithLabelValues(labelDelayed)
	m.onTime = predictions.WithLabelValues(labelOnTime)
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "delayctl_model_reloads_total",
		Help: "Model reloads by result: success (swapped in) or failure (refused; the old model keeps serving).",
	}, []string{"result"})
	m.reloadOK = reloads.WithLabelValues("success")
	m.reloadFail = reloads.WithLabelValues("failure")
	for _, t := range []string{timeoutHeader, timeoutRead, timeoutWrite, timeoutIdle} {
		m.timedOut.WithLabelValues(t)
	}
	m.reg.MustRegister(m.requests, m.duration, m.inFlight, predictions, m.shed, m.rateLimited, m.panics,
		m.modelInfo, reloads, m.timedOut,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// setModel points delayctl_model_info at the model now served.
func (m *metrics) setModel(old, cur *loadedModel) {
	if old != nil {
		m.modelInfo.DeleteLabelValues(old.m.Name, old.m.Version, old.m.Checksum)
	}
	m.modelInfo.WithLabelValues(cur.m.Name, cur.m.Version, cur.m.Checksum).Set(1)
}

// methods are the method label values as an array, so that routeSeries can size its table;
// the conversion panics at startup if the contract's list changes length.
var methods = [10]string(contract.Methods)

func methodIndex(method string) int {
	for i, m := range methods[:len(methods)-1] {
		if m == method {
			return i
		}
	}
	return len(methods) - 1
}

// codeLabels caches the code label strings.
var codeLabels = func() (c [600]string) {
	for i := range c {
		c[i] = strconv.Itoa(i)
	}
	return c
}()

// routeSeries resolves a route's series once per method and status code, so that observing
// a request costs two atomic adds and no label hashing or allocation.
type routeSeries struct {
	route   string
	m       *metrics
	mu      sync.Mutex
	methods [len(methods)]atomic.Pointer[methodMetrics]
}

type methodMetrics struct {
	duration prometheus.Observer
	codes    [600]atomic.Pointer[counterBox]
}

type counterBox struct{ prometheus.Counter }

// route returns the series of one route. Its request counters for every code in
// contract.Codes and its duration histogram exist from now on at 0 for each of the route's
// methods (every method when methods is nil), so that the first request of a kind is an
// increase Prometheus sees and error ratios read 0 before the first error.
func (m *metrics) route(route string, methods []string) *routeSeries {
	rm := &routeSeries{route: route, m: m}
	if methods == nil {
		methods = []string{http.MethodGet, http.MethodPost}
	}
	for _, method := range methods {
		for _, code := range contract.Codes {
			rm.counter(methodIndex(method), code)
		}
	}
	return rm
}

func (rm *routeSeries) observe(method string, code int, d time.Duration) {
	mm, c := rm.counter(methodIndex(method), code)
	mm.duration.Observe(d.Seconds())
	c.Inc()
}

// counter resolves (creating on first use) the duration observer of method mi and the
// request counter of code.
func (rm *routeSeries) counter(mi, code int) (*methodMetrics, *counterBox) {
	mm := rm.methods[mi].Load()
	if mm == nil {
		rm.mu.Lock()
		if mm = rm.methods[mi].Load(); mm == nil {
			mm = &methodMetrics{duration: rm.m.duration.WithLabelValues(rm.route, methods[mi])}
			rm.methods[mi].Store(mm)
		}
		rm.mu.Unlock()
	}
	if code < 100 || code >= len(mm.codes) {
		code = http.StatusInternalServerError
	}
	c := mm.codes[code].Load()
	if c == nil {
		rm.mu.Lock()
		if c = mm.codes[code].Load(); c == nil {
			c = &counterBox{rm.m.requests.WithLabelValues(rm.route, methods[mi], codeLabels[code])}
			mm.codes[code].Store(c)
		}
		rm.mu.Unlock()
	}
	return mm, c
}
