package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	runtimemetrics "runtime/metrics"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
)

// Run loads the model, serves it on opts.Addr until ctx is cancelled, then shuts down
// gracefully: /readyz fails at once, DrainDelay passes, the listener closes, and in-flight
// requests get ShutdownTimeout to finish. It returns nil after a clean shutdown, and an input
// error (inputerr.Err) when the options, the model file or the keys file are unusable. Logs go to
// logOut. A receive on opts.Reload, POST /admin/reload, or (with Watch) a change of the model
// file reloads the model without dropping a request.
func Run(ctx context.Context, opts Options, logOut io.Writer) error {
	if err := opts.Validate(); err != nil {
		return inputerr.Wrap(err)
	}
	log := NewLogger(logOut, opts.LogFormat, opts.LogLevel)
	if opts.metricsCacheTTL == 0 {
		opts.metricsCacheTTL = DefaultMetricsCacheTTL
	}
	var w *watcher
	if opts.Watch {
		w = newWatcher(opts.ModelPath) // before loading, so no change goes unseen
	}
	m, err := loadModel(ctx, opts.ModelPath)
	if err != nil {
		return inputerr.Wrap(err)
	}
	s, err := New(m, opts, log)
	if err != nil {
		return inputerr.Wrap(err)
	}
	defer s.mon.close()
	stopMon := make(chan struct{})
	defer close(stopMon)
	go s.mon.run(stopMon)
	if opts.onServer != nil {
		opts.onServer(s)
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", opts.Addr); err != nil {
			return fmt.Errorf("could not listen: %w", err)
		}
	}
	opsLn := opts.MetricsListener
	if opsLn == nil && opts.MetricsAddr != "" {
		if opsLn, err = net.Listen("tcp", opts.MetricsAddr); err != nil {
			_ = ln.Close()
			return fmt.Errorf("could not listen on --metrics-addr: %w", err)
		}
	}
	gogc := []runtimemetrics.Sample{{Name: "/gc/gogc:percent"}} // set by main (cmd/delayctl), logged here
	runtimemetrics.Read(gogc)
	// The timeouts are the guard's, not http.Server's: see guard for why.
	g := s.newGuard()
	stopGuard := make(chan struct{})
	defer close(stopGuard)
	go g.run(stopGuard)
	if s.prot.lim != nil {
		go s.prot.lim.run(stopGuard)
		go s.prot.canary.run(canaryURL(ln.Addr()), s.adm.busy, stopGuard)
		go s.adm.run(stopGuard)
	}
	srv := &http.Server{
		Handler: s.Handler(),
		ConnState: func(c net.Conn, st http.ConnState) {
			g.connState(c, st)
			s.adm.connState(c, st)
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return s.adm.connContext(g.connContext(ctx, c), c)
		},
		// OPTIONS * would get net/http's own empty 200; the handler answers it in JSON.
		DisableGeneralOptionsHandler: true,
		MaxHeaderBytes:               opts.maxHeaderBytes(),
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	auth, keys := "off", 0
	if s.keys != nil {
		auth, keys = "on", len(s.keys.keys)
	}
	log.Info("serving", "addr", ln.Addr().String(), "model", m.Name, "version", m.Version, "checksum", m.Checksum,
		"features", m.NumFeatures(), "auth", auth, "keys", keys, "rate_limit", opts.RateLimit, "max_inflight", s.maxInflight, "max_batch", s.opts.MaxBatch,
		"watch", opts.Watch, "gogc", gogc[0].Value.Uint64(), "memory_limit", MemoryLimit(), "max_conns", s.adm.maxConns,
		"max_buffered_bytes", s.budget.size, "shed_queue_delay", opts.ShedQueueDelay.String())
	if s.keys == nil && !isLoopback(ln.Addr()) {
		log.Warn("API keys are off on a non-loopback address: anyone who reaches it can predict and reload; see --auth-keys")
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(g.listen(s.adm.listen(ln))) }()
	if opsLn != nil {
		// The operations listener takes http.Server's own timeouts: it is off the hot path.
		ops := &http.Server{Handler: s.ops, ReadHeaderTimeout: opts.ReadHeaderTimeout, ReadTimeout: opts.ReadTimeout,
			WriteTimeout: opts.WriteTimeout, IdleTimeout: opts.IdleTimeout, MaxHeaderBytes: opts.maxHeaderBytes(),
			ErrorLog: srv.ErrorLog}
		log.Info("serving metrics, probes and /admin/reload", "addr", opsLn.Addr().String())
		go func() {
			if err := ops.Serve(opsLn); !errors.Is(err, http.ErrServerClosed) {
				log.Error("the --metrics-addr listener stopped: no metrics or probes there", "err", err)
			}
		}()
		defer func() { _ = ops.Close() }()
	}
	var tick <-chan time.Time
	if w != nil {
		t := time.NewTicker(opts.WatchInterval)
		defer t.Stop()
		tick = t.C
	}
	// Reloads run on their own goroutine, so that one stuck on a file that never answers
	// cannot hold up shutdown: SIGTERM always works. Triggers of one kind that arrive while a
	// reload runs are merged into one more.
	signals, watches, stop := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-signals:
				_, _ = s.Reload("signal")
			case <-watches:
				if w.changed(log) {
					_, _ = s.Reload("watch")
				}
			}
		}
	}()
	trigger := func(c chan struct{}) {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	for {
		select {
		case err := <-serveErr:
			return fmt.Errorf("server stopped: %w", err)
		case <-opts.Reload:
			trigger(signals)
		case <-tick:
			trigger(watches)
		case <-ctx.Done():
			return s.shutdown(srv, serveErr, log)
		}
	}
}

// loadModel loads the model to serve, giving up when ctx is cancelled (SIGTERM) even if the
// file system does not answer.
func loadModel(ctx context.Context, path string) (*model.Model, error) {
	type loaded struct {
		m   *model.Model
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		m, err := model.Load(path)
		done <- loaded{m, err}
	}()
	select {
	case l := <-done:
		if l.err != nil {
			return nil, inputerr.Wrap(l.err)
		}
		return l.m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("stopped while loading the model %s: %w", path, ctx.Err())
	}
}

// shutdown drains and stops srv: readiness false, DrainDelay, Shutdown within ShutdownTimeout.
func (s *Server) shutdown(srv *http.Server, serveErr <-chan error, log *slog.Logger) error {
	s.SetDraining(true)
	// From now on answers carry Connection: close, and idle keep-alive connections are closed,
	// so clients reconnect (through their load balancer, to a replica that is ready).
	srv.SetKeepAlivesEnabled(false)
	log.Info("shutting down: readiness is false", "drain_delay", s.opts.DrainDelay.String(), "shutdown_timeout", s.opts.ShutdownTimeout.String(),
		"in_flight", s.inflight.Load())
	if s.opts.DrainDelay > 0 {
		time.Sleep(s.opts.DrainDelay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("requests still running after --shutdown-timeout %v were cut off: %w", s.opts.ShutdownTimeout, err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server stopped: %w", err)
	}
	log.Info("stopped: every request finished")
	return nil
}

func isLoopback(a net.Addr) bool {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.IsLoopback()
	}
	return false
}

// NewLogger builds the server's slog logger: format "json" or "text", level debug, info, warn
// or error (an unknown level means info; Options.Validate rejects it first).
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	lv, err := parseLevel(level)
	if err != nil {
		lv = slog.LevelInfo
	}
	ho := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

func parseLevel(s string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(s))); err != nil || s == "" {
		return 0, fmt.Errorf("unknown level %q: want debug, info, warn or error", s)
	}
	return lv, nil
}

// watcher notices a change of the model file by polling its size, modification time and
// identity (inode). Polling, rather than inotify, also sees the symlink swap Kubernetes uses to
// update a mounted ConfigMap, and an editor's rename over the file.
type watcher struct {
	path    string
	last    os.FileInfo
	lastErr string
}

func newWatcher(path string) *watcher {
	w := &watcher{path: path}
	w.last, _ = os.Stat(path)
	return w
}

// changed reports whether the file differs from the last time it was seen. A missing file is
// logged once and not reloaded: the old model keeps serving until a file is back.
func (w *watcher) changed(log *slog.Logger) bool {
	fi, err := os.Stat(w.path)
	if err != nil {
		if msg := err.Error(); msg != w.lastErr {
			log.Warn("cannot watch the model file; the current model keeps serving", "path", w.path, "err", err)
			w.lastErr = msg
		}
		return false
	}
	w.lastErr = ""
	prev := w.last
	w.last = fi
	return prev == nil || !os.SameFile(prev, fi) || prev.Size() != fi.Size() || !prev.ModTime().Equal(fi.ModTime())
}
