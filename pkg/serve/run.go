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
	var w *watcher
	if opts.Watch {
		w = newWatcher(opts.ModelPath) // before loading, so no change goes unseen
	}
	m, err := model.Load(opts.ModelPath)
	if err != nil {
		return inputerr.Wrap(err)
	}
	s, err := New(m, opts, log)
	if err != nil {
		return inputerr.Wrap(err)
	}
	if opts.onServer != nil {
		opts.onServer(s)
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", opts.Addr); err != nil {
			return fmt.Errorf("could not listen: %w", err)
		}
	}
	gogc := []runtimemetrics.Sample{{Name: "/gc/gogc:percent"}} // set by main (cmd/delayctl), logged here
	runtimemetrics.Read(gogc)
	// The timeouts are the guard's, not http.Server's: see guard for why.
	g := s.newGuard()
	stopGuard := make(chan struct{})
	defer close(stopGuard)
	go g.run(stopGuard)
	srv := &http.Server{
		Handler:        s.Handler(),
		ConnState:      g.connState,
		MaxHeaderBytes: opts.maxHeaderBytes(),
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	auth, keys := "off", 0
	if s.keys != nil {
		auth, keys = "on", len(s.keys.keys)
	}
	log.Info("serving", "addr", ln.Addr().String(), "model", m.Name, "version", m.Version, "checksum", m.Checksum,
		"features", m.NumFeatures(), "auth", auth, "keys", keys, "rate_limit", opts.RateLimit, "max_inflight", s.maxInflight, "max_batch", s.opts.MaxBatch,
		"watch", opts.Watch, "gogc", gogc[0].Value.Uint64())
	if s.keys == nil && !isLoopback(ln.Addr()) {
		log.Warn("API keys are off on a non-loopback address: anyone who reaches it can predict and reload; see --auth-keys")
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(g.listen(ln)) }()
	var tick <-chan time.Time
	if w != nil {
		t := time.NewTicker(opts.WatchInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case err := <-serveErr:
			return fmt.Errorf("server stopped: %w", err)
		case <-opts.Reload:
			_, _ = s.Reload("signal")
		case <-tick:
			if w.changed(log) {
				_, _ = s.Reload("watch")
			}
		case <-ctx.Done():
			return s.shutdown(srv, serveErr, log)
		}
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
