package main

import (
	"context"
	"io"

	"github.com/delayctl/delayctl/pkg/bench"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func init() { commandConstructors = append(commandConstructors, newBenchCmd) }

// benchRunners are the pkg entry points the bench commands call; tests replace them to
// capture the parsed options.
type benchRunners struct {
	attack   func(ctx context.Context, o bench.Options, out, errOut io.Writer) error
	report   func(ctx context.Context, o bench.ReportOptions, in io.Reader, out io.Writer) error
	capacity func(ctx context.Context, o bench.CapacityOptions, out, errOut io.Writer) error
}

func newBenchCmd(ios *IOStreams) *cobra.Command {
	return newBenchCmdWith(ios, benchRunners{attack: bench.Run, report: bench.RunReport, capacity: bench.RunCapacity})
}

func newBenchCmdWith(ios *IOStreams, run benchRunners) *cobra.Command {
	o := bench.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "bench --url URL [--rate 500/s] [--duration 45s]",
		Short: "Load-test a URL with an embedded vegeta attacker and report like wrk",
		Long: `Bench attacks one URL (or a vegeta targets file) at a constant rate, or flat out with
--rate 0 and a fixed number of connections like wrk -c, then prints a wrk-style report:
latency percentiles and histogram, status codes, socket errors by kind, sent and successful
rates. Results stream: memory stays flat over millions of requests.

A constant rate is an open model: requests go out on schedule whether or not earlier ones
returned, so a slow server shows as latency instead of hiding behind fewer requests. When
the workers cannot keep the schedule the report warns.

Ctrl-C stops the attack and still writes the report, the results file and the plots.
See docs/BENCH.md for every flag with real output.`,
		Example: `  delayctl bench --url http://127.0.0.1:8080/healthz --rate 500/s --duration 45s
  delayctl bench --url http://127.0.0.1:8080/predict --from-data data/flightdata.csv --model out/model.json \
      --body-form mixed --rate 200/s --duration 1m --results run.bin --png plots/
  delayctl bench --url http://127.0.0.1:8080/predict --body-json '{"x":[0,1,0]}' --rate 0 --connections 50 -d 10s
  delayctl bench report pod-0.bin pod-1.bin pod-2.bin
  delayctl bench capacity --url http://127.0.0.1:8080/predict --bodies bodies.jsonl --slo configs/slo.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "bench"); err != nil {
				return err
			}
			o.Progress = ios.ErrTTY
			if err := o.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			defer tuneGC(ios)()
			return run.attack(cmd.Context(), o, ios.Out, ios.ErrOut)
		},
	}
	f := cmd.Flags()
	addTargetFlags(f, &o.Target, &o.Sender)
	f.Var(&o.Rate, "rate", "requests per time unit: 500/s, 30/m, 10/100ms; 0 = as fast as --connections allow")
	f.DurationVarP(&o.Duration, "duration", "d", bench.DefaultDuration, "how long to send requests (0 = until Ctrl-C, constant rate only)")
	f.StringVar(&o.Results, "results", "", "stream every result to this `file` in vegeta's gob encoding (vegeta report/plot read it)")
	f.StringVarP(&o.Output, "output", "o", bench.DefaultOutput, "report format: text or json")
	f.StringVar(&o.Plot, "plot", "", "write vegeta's HTML latency-over-time plot to this `file`")
	f.StringVar(&o.PNG, "png", "", "write latency-histogram.png, latency-over-time.png and throughput-over-time.png into this `dir`")
	f.DurationSliceVar(&o.Buckets, "buckets", nil, "latency histogram edges, e.g. 0,1ms,5ms,25ms (default: 1-2-5 steps spanning the latencies)")
	f.StringVar(&o.Name, "name", bench.DefaultName, "attack name recorded in every result (vegeta's -name)")

	cmd.AddCommand(newBenchReportCmd(ios, run.report), newBenchCapacityCmd(ios, run.capacity), newBenchBodiesCmd(ios))
	return cmd
}

func newBenchBodiesCmd(ios *IOStreams) *cobra.Command {
	o := bench.BodiesOptions{Form: bench.DefaultBodyForm, Rows: bench.DefaultFromDataRows, LoadModel: loadFlightEncoder}
	cmd := &cobra.Command{
		Use:   "bodies --from-data FILE --model FILE [--out bodies.jsonl]",
		Short: "Write the /predict bodies --from-data would send, as a JSON-lines file",
		Long: `Bodies turns real flight rows into /predict request bodies, one per line, exactly as
bench --from-data does, so that a machine without the data and the model (a bench pod in a
cluster) sends the same realistic load with --bodies.`,
		Example: `  delayctl bench bodies --from-data data/flightdata.csv --model out/model.json --body-form mixed --out out/bodies.jsonl`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "bench_bodies"); err != nil {
				return err
			}
			return bench.RunBodies(o, ios.Out, ios.ErrOut)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.FromData, "from-data", "", "flight CSV `file` whose rows become bodies")
	f.StringVar(&o.Model, "model", "", "model `file` whose columns and encoders apply")
	f.StringVar(&o.Form, "body-form", bench.DefaultBodyForm, `body shape: x ({"x":[...]}), instances ({"instances":[{...}]}) or mixed`)
	f.IntVar(&o.Rows, "from-data-rows", bench.DefaultFromDataRows, "at most this many rows become bodies")
	f.StringVar(&o.Out, "out", "-", "output `file` (- for stdout)")
	return cmd
}

// addTargetFlags binds the flags shared by bench and bench capacity: what to send and how.
func addTargetFlags(f *pflag.FlagSet, o *bench.Target, s *bench.Sender) {
	o.LoadModel = loadFlightEncoder
	f.StringVar(&o.URL, "url", "", "target `URL` (http:// or https://)")
	f.StringVar(&o.Method, "method", "", "HTTP method (default GET, or POST with a body)")
	f.StringVar(&o.BodyFile, "body", "", "request body `file`")
	f.StringVar(&o.BodyJSON, "body-json", "", "inline JSON request `body` (sets Content-Type: application/json)")
	f.StringArrayVarP(&o.Headers, "header", "H", nil, "request header 'Key: Value' (repeatable)")
	f.StringVar(&o.BearerFile, "bearer-file", "", "`file` holding a token sent as Authorization: Bearer (keeps keys out of shell history)")
	f.StringVar(&o.Targets, "targets", "", "vegeta targets `file` (http or json format) instead of --url")
	f.StringVar(&o.TargetsFormat, "targets-format", "", "targets file format: http or json (default: guessed from the first line)")
	f.StringVar(&o.Bodies, "bodies", "", "JSON-lines `file`: requests rotate through its lines as bodies")
	f.StringVar(&o.FromData, "from-data", "", "flight CSV `file` whose rows become /predict bodies (needs --model)")
	f.StringVar(&o.Model, "model", "", "model `file` whose columns and encoders --from-data uses")
	f.StringVar(&o.BodyForm, "body-form", bench.DefaultBodyForm, `--from-data body shape: x ({"x":[...]}), instances ({"instances":[{...}]}) or mixed`)
	f.IntVar(&o.FromDataRows, "from-data-rows", bench.DefaultFromDataRows, "at most this many rows of --from-data become bodies")
	f.IntVarP(&s.Connections, "connections", "c", 0, "max connections per host; with --rate 0 the number of concurrent requests (default 50)")
	f.IntVar(&s.Workers, "workers", 0, "initial workers (default 10); with --rate 0 the fixed worker count (default --connections)")
	f.IntVar(&s.MaxWorkers, "max-workers", bench.DefaultMaxWorkers, "cap on workers a constant-rate attack may grow to")
	f.DurationVar(&s.Timeout, "timeout", bench.DefaultTimeout, "per-request timeout covering connect, request, headers and body")
	f.BoolVar(&s.KeepAlive, "keepalive", true, "reuse connections (--keepalive=false opens one per request)")
	f.BoolVar(&s.HTTP2, "http2", false, "use HTTP/2 (h2 over https, h2c over http)")
	f.BoolVarP(&s.Insecure, "insecure", "k", false, "skip TLS certificate verification")
	f.Int64Var(&s.MaxBody, "max-body", bench.DefaultMaxBody, "bytes of each response body to keep in results, 0 to 4194304 (the rest is read and discarded)")
	f.StringVar(&s.Client, "client", bench.DefaultClient, "HTTP/1.1 client for http:// targets: fast (lean, wrk-like) or std (net/http)")
	f.BoolVar(&s.Preflight, "preflight", true, "connect to every target host before attacking, to fail fast when it is down")
}

func newBenchReportCmd(ios *IOStreams, runF func(context.Context, bench.ReportOptions, io.Reader, io.Writer) error) *cobra.Command {
	var o bench.ReportOptions
	cmd := &cobra.Command{
		Use:   "report FILE...",
		Short: "Recompute the report from one or many results files",
		Long: `Report reads results files written by bench --results or vegeta attack (gob, JSON lines or
CSV, sniffed per file; "-" is standard input) and prints the same report bench prints. Many
files (one per load-generator pod) give exactly the report one file with all their results
would give.`,
		Example: `  delayctl bench report run.bin
  delayctl bench report -o json pod-*.bin`,
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if err := applyConfig(cmd, ios, "bench_report"); err != nil {
				return err
			}
			if o.Files, err = expandGlobs(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			return runF(cmd.Context(), o, ios.In, ios.Out)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Output, "output", "o", bench.DefaultOutput, "report format: text or json")
	f.DurationSliceVar(&o.Buckets, "buckets", nil, "latency histogram edges, e.g. 0,1ms,5ms,25ms")
	f.Var(&o.Rate, "rate", "the rate the attack requested, to warn when the sent rate fell short")
	return cmd
}

func newBenchCapacityCmd(ios *IOStreams, runF func(context.Context, bench.CapacityOptions, io.Writer, io.Writer) error) *cobra.Command {
	o := bench.DefaultCapacityOptions()
	cmd := &cobra.Command{
		Use:   "capacity --url URL --slo configs/slo.yaml [--start 100/s] [--max 100000/s]",
		Short: "Find the highest constant rate at which the SLO still holds",
		Long: `Capacity runs short constant-rate steps against the target: it doubles the rate (--growth)
until a step misses the SLO, then bisects between the last good and the first bad rate until
they are within --precision. Each step is judged from its own results by the SLO file's
availability, latency and throughput objectives (memory objectives are skipped). A step
whose requests could not be sent at the requested rate counts as missed: it measured the
load generator, not the target. Progress goes to stderr, the table of steps to stdout.`,
		Example: `  delayctl bench capacity --url http://127.0.0.1:8080/predict --from-data data/flightdata.csv \
      --model out/model.json --slo configs/slo.yaml --start 200/s --step-duration 10s`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "bench_capacity"); err != nil {
				return err
			}
			if o.SLO == "" {
				return inputerr.Errorf("--slo is required: the capacity is the highest rate within an SLO")
			}
			spec, err := slo.LoadFile(o.SLO)
			if err != nil {
				return inputerr.Wrap(err)
			}
			o.NewJudge = func() bench.Judge { return slo.NewStepJudge(spec) }
			if err := o.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			defer tuneGC(ios)()
			return runF(cmd.Context(), o, ios.Out, ios.ErrOut)
		},
	}
	f := cmd.Flags()
	addTargetFlags(f, &o.Target, &o.Sender)
	f.StringVar(&o.SLO, "slo", slo.DefaultSLOFile, "SLO `file` each step is judged by")
	f.Var(&o.Start, "start", "rate of the first step")
	f.Var(&o.Max, "max", "highest rate to try")
	f.DurationVar(&o.StepDuration, "step-duration", bench.DefaultStepDuration, "how long each step sends requests")
	f.Float64Var(&o.Growth, "growth", bench.DefaultGrowth, "rate multiplier between steps while the SLO holds")
	f.Float64Var(&o.Precision, "precision", bench.DefaultPrecision, "stop bisecting when the bad rate is within this fraction of the good one")
	f.IntVar(&o.MaxSteps, "max-steps", bench.DefaultMaxSteps, "stop after this many steps")
	f.DurationVar(&o.Pause, "pause", bench.DefaultPause, "idle time between steps, to let the target drain")
	f.StringVarP(&o.Output, "output", "o", bench.DefaultOutput, "report format: text or json")
	return cmd
}

// loadFlightEncoder is the model loader bench's --from-data uses: the model artifact.
func loadFlightEncoder(path string) (bench.FlightEncoder, error) { return model.Load(path) }
