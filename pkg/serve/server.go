package serve

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/model"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Route labels: the mux pattern of each route, as it appears in the route label of
// delayctl_http_requests_total and in --public-routes. The metrics contract owns them.
const (
	routeRoot          = contract.RouteRoot
	routePredict       = contract.RoutePredict
	routeHealthz       = contract.RouteHealthz
	routeReadyz        = contract.RouteReadyz
	routeMetrics       = contract.RouteMetrics
	routeV1Model       = contract.RouteV1Model
	routeV2            = contract.RouteV2
	routeV2Live        = contract.RouteV2Live
	routeV2Ready       = contract.RouteV2Ready
	routeV2Model       = contract.RouteV2Model
	routeV2ModelReady  = contract.RouteV2ModelReady
	routeV2Infer       = contract.RouteV2Infer
	routeV2VModel      = contract.RouteV2VModel
	routeV2VModelReady = contract.RouteV2VModelReady
	routeV2VInfer      = contract.RouteV2VInfer
	routeAdminReload   = contract.RouteAdminReload
	routeUnmatched     = contract.RouteUnmatched
)

var allRoutes = contract.Routes

// Server serves one model at a time over HTTP. The model can be swapped while requests run
// (Reload): each request reads the current model once, so it is answered wholly by one model.
type Server struct {
	opts    Options
	log     *slog.Logger
	met     *metrics
	cur     atomic.Pointer[loadedModel]
	handler http.Handler

	draining    atomic.Bool
	inflight    atomic.Int64
	maxInflight int64

	prot   *protection
	budget *bodyBudget
	adm    *admission
	ops    http.Handler // the operations listener's routes (--metrics-addr)

	keys    *keyring      // nil when API keys are off
	anonLim *rate.Limiter // the shared rate limit when keys are off and --rate-limit is on
	public  map[string]bool

	reloadMu sync.Mutex
	mon      *monitor // drift counters and the prediction log (monitor.go)

	// beforeCompute, when set by a test, runs while a prediction holds its in-flight slot.
	beforeCompute func()
}

// loadedModel is a model with everything the handlers need precomputed, so that answering
// costs no marshalling of metadata.
type loadedModel struct {
	m           *model.Model
	nameJSON    []byte // the name as a JSON string literal
	versionJSON []byte
	intern      map[string]string
	v1Meta      []byte // GET /v1/models/{name}
	v2Meta      []byte // GET /v2/models/{name}
	loadedAt    time.Time
}

// New builds a Server for m. It reads opts.AuthKeysFile when set; the other options are used
// as they are (Run validates them).
func New(m *model.Model, opts Options, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log, met: newMetrics(), maxInflight: int64(opts.maxInflight())}
	if s.opts.MaxBatch <= 0 {
		s.opts.MaxBatch = DefaultMaxBatch
	}
	if s.opts.MaxBodyBytes <= 0 {
		s.opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s.newProtection()
	if opts.AuthKeysFile != "" {
		k, err := loadKeys(opts.AuthKeysFile, opts.RateLimit, opts.RateBurst)
		if err != nil {
			return nil, err
		}
		s.keys = k
	} else if opts.RateLimit > 0 {
		s.anonLim = newLimiter(opts.RateLimit, opts.RateBurst)
	}
	public := opts.PublicRoutes
	if public == nil {
		public = DefaultPublicRoutes
	}
	if err := validatePublicRoutes(public); err != nil {
		return nil, err
	}
	s.public = make(map[string]bool, len(public))
	for _, r := range public {
		s.public[r] = true
	}
	lm, err := prepare(m)
	if err != nil {
		return nil, err
	}
	s.cur.Store(lm)
	s.met.setModel(nil, lm)
	if s.mon, err = newMonitor(s.opts.Monitor, s.met.reg, m); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// Handler is the server's http.Handler: every route, instrumented and protected.
func (s *Server) Handler() http.Handler { return s.handler }

// OpsHandler serves the operations routes (/metrics, /admin/reload and the probes) that Run
// puts on the --metrics-addr listener.
func (s *Server) OpsHandler() http.Handler { return s.ops }

// Registry is the server's own Prometheus registry, served at /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.met.reg }

// Model returns the model being served now.
func (s *Server) Model() *model.Model { return s.cur.Load().m }

// SetDraining makes /readyz and /v2/health/ready fail (true) while the server finishes its
// work before shutting down.
func (s *Server) SetDraining(v bool) { s.draining.Store(v) }

// ready reports whether the server should receive traffic.
func (s *Server) ready() bool { return !s.draining.Load() && s.cur.Load() != nil }

// Reload loads the model file again, verifies it and swaps it in atomically. An invalid file is
// refused, logged and counted, and the old model keeps serving. source names the trigger for
// the log (signal, http, watch).
func (s *Server) Reload(source string) (*model.Model, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.cur.Load()
	fail := func(err error) (*model.Model, error) {
		s.met.reloadFail.Inc()
		s.log.Error("model reload refused; the old model keeps serving", "source", source, "path", s.opts.ModelPath,
			"err", err, "serving_name", old.m.Name, "serving_version", old.m.Version)
		return nil, err
	}
	if s.opts.ModelPath == "" {
		return fail(fmt.Errorf("no model file to reload from"))
	}
	m, err := model.Load(s.opts.ModelPath)
	if err != nil {
		return fail(err)
	}
	lm, err := prepare(m)
	if err != nil {
		return fail(err)
	}
	s.mon.setModel(m)
	s.cur.Store(lm)
	s.met.setModel(old, lm)
	s.met.reloadOK.Inc()
	attrs := []any{"source", source, "path", s.opts.ModelPath, "name", m.Name, "version", m.Version,
		"checksum", m.Checksum, "previous_version", old.m.Version}
	switch {
	case m.Checksum == old.m.Checksum:
		s.log.Info("model reloaded; unchanged", attrs...)
	case m.Name != old.m.Name || m.NumFeatures() != old.m.NumFeatures():
		s.log.Warn("model reloaded with a different name or vector length; clients may need to change",
			append(attrs, "previous_name", old.m.Name, "features", m.NumFeatures(), "previous_features", old.m.NumFeatures())...)
	default:
		s.log.Info("model reloaded", attrs...)
	}
	return m, nil
}

// prepare precomputes a model's responses parts and metadata documents.
func prepare(m *model.Model) (*loadedModel, error) {
	lm := &loadedModel{
		m:           m,
		nameJSON:    appendJSONString(nil, m.Name),
		versionJSON: appendJSONString(nil, m.Version),
		intern:      map[string]string{},
		loadedAt:    time.Now().UTC(),
	}
	for _, f := range m.Features {
		for _, c := range f.Vocabulary {
			if f.Encoding == model.Cross {
				// A cross entry "ATL:17" holds two categories that requests name apart.
				a, b, _ := strings.Cut(c, model.CrossSeparator)
				lm.intern[a], lm.intern[b] = a, b
				continue
			}
			lm.intern[c] = c
		}
	}
	var err error
	if lm.v1Meta, err = json.Marshal(v1Metadata(m, lm.loadedAt)); err != nil {
		return nil, fmt.Errorf("could not encode model metadata: %w", err)
	}
	lm.v1Meta = append(lm.v1Meta, '\n')
	if lm.v2Meta, err = json.Marshal(v2Metadata(m)); err != nil {
		return nil, fmt.Errorf("could not encode model metadata: %w", err)
	}
	lm.v2Meta = append(lm.v2Meta, '\n')
	return lm, nil
}

// routes builds the mux. Each route is wrapped, outermost first, in: instrumentation (metrics),
// panic recovery, API key and rate limit checks (unless public), and the method check.
func (s *Server) routes() http.Handler {
	mux, ops := http.NewServeMux(), http.NewServeMux()
	separate := s.opts.separateMetrics()
	get := []string{http.MethodGet, http.MethodHead}
	post := []string{http.MethodPost}
	handle := func(pattern, route string, methods []string, h http.HandlerFunc) http.Handler {
		var next http.Handler = s.allow(methods, h)
		if !s.public[route] {
			next = s.authenticate(next)
		}
		next = s.instrument(route, methods, s.recoverer(route, next))
		if !separate || !opsOnlyRoutes[route] {
			mux.Handle(pattern, next)
		}
		if opsRoutes[route] {
			ops.Handle(pattern, next)
		}
		return next
	}
	root := handle("/{$}", routeRoot, []string{http.MethodGet, http.MethodHead, http.MethodPost}, s.predict)
	predict := handle(routePredict, routePredict, post, s.predict)
	handle(routeHealthz, routeHealthz, get, s.healthz)
	handle(routeReadyz, routeReadyz, get, s.readyz)
	handle(routeMetrics, routeMetrics, get, s.metricsHandler())
	handle(routeV1Model, routeV1Model, get, s.v1Model)
	handle(routeV2, routeV2, get, s.v2Server)
	handle(routeV2Live, routeV2Live, get, s.v2Live)
	handle(routeV2Ready, routeV2Ready, get, s.v2Ready)
	handle(routeV2Model, routeV2Model, get, s.v2Model)
	handle(routeV2ModelReady, routeV2ModelReady, get, s.v2ModelReady)
	handle(routeV2Infer, routeV2Infer, post, s.v2Infer)
	handle(routeV2VModel, routeV2VModel, get, s.v2Model)
	handle(routeV2VModelReady, routeV2VModelReady, get, s.v2ModelReady)
	handle(routeV2VInfer, routeV2VInfer, post, s.v2Infer)
	handle(routeAdminReload, routeAdminReload, post, s.adminReload)
	unmatched := handle("/", routeUnmatched, nil, s.notFound)
	s.ops = ops
	return fastPaths{mux: mux, predict: predict, root: root, unmatched: unmatched}
}

// fastPaths sends the two prediction paths straight to their handlers and everything else
// through the mux: an exact path needs no pattern matching, and this saves about a microsecond
// per prediction. The routes behave as the mux would route them.
//
// It also keeps the mux's own answers, which are text or HTML, from reaching a client: a path
// that is not clean (//predict, /v2/../predict) is served as its cleaned path instead of the
// mux's 307 redirect, and a request without a path (CONNECT host:port) goes to the JSON
// not-found handler instead of the mux's text 404.
type fastPaths struct {
	mux                      *http.ServeMux
	predict, root, unmatched http.Handler
}

func (f fastPaths) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; p {
	case routePredict:
		f.predict.ServeHTTP(w, r)
	case routeRoot:
		f.root.ServeHTTP(w, r)
	case canaryPath:
		w.Header()["Content-Type"] = jsonContentType
		_, _ = w.Write(canaryBody)
	default:
		if p == "" || p[0] != '/' {
			f.unmatched.ServeHTTP(w, r)
			return
		}
		if c := cleanPath(p); c != p {
			r2 := *r
			u := *r.URL
			u.Path, u.RawPath = c, ""
			r2.URL = &u
			f.ServeHTTP(w, &r2)
			return
		}
		f.mux.ServeHTTP(w, r)
	}
}

// cleanPath is the path the mux would redirect p to: path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	c := path.Clean(p)
	if p[len(p)-1] == '/' && c != "/" {
		c += "/"
	}
	return c
}

// instrument counts and times every request of a route, whatever its outcome; the route's
// series for methods exist from the start (see metrics.route).
func (s *Server) instrument(route string, methods []string, next http.Handler) http.Handler {
	rm := s.met.route(route, methods)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.met.inFlight.Inc()
		d := delegatorPool.Get().(*delegator)
		*d = delegator{ResponseWriter: w}
		defer func() {
			status := d.status
			if !d.wroteHeader {
				status = http.StatusOK
			}
			rm.observe(r.Method, status, time.Since(start))
			s.met.inFlight.Dec()
			*d = delegator{}
			delegatorPool.Put(d)
		}()
		next.ServeHTTP(d, r)
	})
}

// recoverer turns a handler panic into a logged, counted 500.
func (s *Server) recoverer(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // net/http compares it the same way
				panic(v)
			}
			s.met.panics.Inc()
			s.log.Error("handler panic recovered", "route", route, "method", r.Method, "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()))
			if d, ok := w.(*delegator); ok && d.wroteHeader {
				// The status line is gone; all that is left is to cut the response short.
				panic(http.ErrAbortHandler)
			}
			writeError(w, http.StatusInternalServerError, "internal error: the server recovered from a bug, which is logged")
		}()
		next.ServeHTTP(w, r)
	})
}

// allow answers 405 with Allow for any method the route does not take.
func (s *Server) allow(methods []string, next http.HandlerFunc) http.Handler {
	if methods == nil {
		return next
	}
	allowed := []string{strings.Join(methods, ", ")}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(methods, r.Method) {
			w.Header()["Allow"] = allowed
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allowed[0]))
			return
		}
		next(w, r)
	})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		w.Header()["Allow"] = []string{"GET, HEAD, POST"}
		writeError(w, http.StatusMethodNotAllowed, "method CONNECT is not allowed: this is a model server, not a proxy")
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s; try POST /predict, POST /v2/models/%s/infer or GET /v1/models/%s",
		r.URL.Path, s.cur.Load().m.Name, s.cur.Load().m.Name))
}
