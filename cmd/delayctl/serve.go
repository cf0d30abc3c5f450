package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/spf13/cobra"
)

func init() { commandConstructors = append(commandConstructors, newServeCmd) }

func newServeCmd(ios *IOStreams) *cobra.Command {
	return newServeCmdWith(ios, func(ctx context.Context, o serve.Options, logOut io.Writer) error {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		o.Reload = hup
		return serve.Run(ctx, o, logOut)
	})
}

func newServeCmdWith(ios *IOStreams, runF func(context.Context, serve.Options, io.Writer) error) *cobra.Command {
	var o serve.Options
	cmd := &cobra.Command{
		Use:   "serve --model model.json [--addr 127.0.0.1:8080]",
		Short: "Serve the model over HTTP: /predict, Open Inference Protocol v2, probes, /metrics",
		Long: `Serve loads a model written by 'delayctl train' and answers predictions over HTTP:

  POST /predict                   {"x": [..]}, {"x": [[..], ..]} or {"instances": [{flight}, ..]}
  GET  /  and  POST /             the seeds' calls: a JSON body {"x": [..]} or a form body x=[..]
  POST /v2/models/{name}/infer    Open Inference Protocol v2 (KServe, Triton, MLServer clients)
  GET  /healthz  /readyz  /v2/health/live  /v2/health/ready  /v2  /v2/models/{name}[/ready]
  GET  /v1/models/{name}          feature names and order, vocabularies, threshold, metrics
  GET  /metrics                   Prometheus metrics (requests, latency, predictions, reloads)
  POST /admin/reload              reload the model file now
  (with --metrics-addr, /metrics and /admin/reload move to that listener, which also answers the probes)

SIGTERM or SIGINT drains and stops the server (exit 0 once every request finished); SIGHUP,
POST /admin/reload or --watch reload the model file, keeping the old model if the new one is
invalid. With --auth-keys every route but the public ones needs an API key ('delayctl keys new').
Memory is bounded by --max-conns and --max-buffered-bytes, whose defaults follow GOMEMLIMIT;
--shed-queue-delay serves fewer connections when requests queue, and the excess gets 503. Logs go to stderr. See docs/SERVE.md.`,
		Example: `  delayctl serve --model out/model.json
  delayctl serve --model out/model.json --addr 0.0.0.0:8080 --auth-keys keys.txt --rate-limit 100 --log-format json
  DELAYCTL_SERVE_MAX_INFLIGHT=64 delayctl serve --config configs/serve.yaml --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "serve"); err != nil {
				return err
			}
			o.ServerVersion = version
			if err := o.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			defer tuneGC(ios)()
			return runF(cmd.Context(), o, ios.ErrOut)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ModelPath, "model", "", "model `file` to serve (required)")
	f.StringVar(&o.Addr, "addr", serve.DefaultAddr, "listen `host:port`")
	f.StringVar(&o.LogFormat, "log-format", serve.DefaultLogFormat, "log format: text or json")
	f.StringVar(&o.LogLevel, "log-level", serve.DefaultLogLevel, "log level: debug, info, warn or error")
	f.Int64Var(&o.MaxBodyBytes, "max-body-bytes", serve.DefaultMaxBodyBytes, "largest request body accepted; larger ones get 413")
	f.IntVar(&o.MaxHeaderBytes, "max-header-bytes", serve.DefaultMaxHeaderBytes, "largest request line and headers accepted")
	f.IntVar(&o.MaxBatch, "max-batch", serve.DefaultMaxBatch, "most instances in one request; more get 422 (400 on /v2)")
	f.IntVar(&o.MaxInflight, "max-inflight", 0, "predictions computed at once before shedding with 503 (0 = 4 x GOMAXPROCS)")
	f.IntVar(&o.MaxConns, "max-conns", 0, "open connections beyond which a new one replaces an idle one or is closed (0 = GOMEMLIMIT/4 at 32 KiB each; 1600 at 200MiB)")
	f.Int64Var(&o.MaxBufferedBytes, "max-buffered-bytes", 0, "request-body bytes held at once across requests before shedding with 503 (0 = GOMEMLIMIT/4; 50 MiB at 200MiB)")
	f.DurationVar(&o.ShedQueueDelay, "shed-queue-delay", serve.DefaultShedQueueDelay, "queueing delay above which fewer connections are served and the excess gets 503 (0 = off; see docs/SERVE.md)")
	f.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve /metrics, the probes and /admin/reload on this `host:port` instead of --addr")
	f.DurationVar(&o.ReadHeaderTimeout, "read-header-timeout", serve.DefaultReadHeaderTimeout, "time allowed to read the request headers")
	f.DurationVar(&o.ReadTimeout, "read-timeout", serve.DefaultReadTimeout, "time allowed to read the whole request")
	f.DurationVar(&o.WriteTimeout, "write-timeout", serve.DefaultWriteTimeout, "time allowed from the end of the headers to the end of the response")
	f.DurationVar(&o.IdleTimeout, "idle-timeout", serve.DefaultIdleTimeout, "how long an idle keep-alive connection stays open")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", serve.DefaultShutdownTimeout, "time in-flight requests get to finish on SIGTERM/SIGINT")
	f.DurationVar(&o.DrainDelay, "drain-delay", 0, "on SIGTERM/SIGINT, time to keep serving with /readyz failing before closing the listener")
	f.StringVar(&o.AuthKeysFile, "auth-keys", "", "`file` of SHA-256 key hashes; turns API keys on (see 'delayctl keys new')")
	f.StringSliceVar(&o.PublicRoutes, "public-routes", serve.DefaultPublicRoutes, "routes that need no API key (route patterns, comma-separated)")
	f.Float64Var(&o.RateLimit, "rate-limit", 0, "requests per second allowed per API key (per server without keys) on non-public routes; 0 = off")
	f.IntVar(&o.RateBurst, "rate-burst", serve.DefaultRateBurst, "rate limit bucket size (0 = the rate, rounded up)")
	f.DurationVar(&o.Monitor.DriftWindow, "drift-window", serve.DefaultDriftWindow, "span the drift PSI gauges compare with the model's training baseline")
	f.StringVar(&o.Monitor.PredictionLog, "prediction-log", "", "append sampled predictions as JSON lines to this `file`")
	f.Float64Var(&o.Monitor.PredictionLogSample, "prediction-log-sample", serve.DefaultPredictionLogSample, "share of predictions written to --prediction-log, in (0, 1]")
	f.Int64Var(&o.Monitor.PredictionLogMaxBytes, "prediction-log-max-bytes", serve.DefaultPredictionLogMaxBytes, "rotate --prediction-log before it grows past this size (0 = never)")
	f.IntVar(&o.Monitor.PredictionLogKeep, "prediction-log-keep", serve.DefaultPredictionLogKeep, "rotated prediction log files to keep (FILE.1 ... FILE.N)")
	f.BoolVar(&o.Watch, "watch", false, "reload the model when its file changes")
	f.DurationVar(&o.WatchInterval, "watch-interval", serve.DefaultWatchInterval, "how often --watch checks the model file")
	return cmd
}
