package slo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"time"
)

// Defaults for Options, reused by the CLI's flag definitions.
const (
	// DefaultSLOFile is the SLO file read when none is named.
	DefaultSLOFile = "configs/slo.yaml"
	// DefaultInterval is the time between the two scrapes of --scrape.
	DefaultInterval = 60 * time.Second
	// DefaultTimeout bounds each HTTP request to a metrics endpoint or Prometheus.
	DefaultTimeout = 10 * time.Second
	// DefaultFormat is the report format.
	DefaultFormat = FormatText
)

// Options configures Run (slo report). Exactly one source must be set: Results, Scrape or
// Prometheus.
type Options struct {
	// SLOFile is the SLO spec to judge against.
	SLOFile string
	// Results are vegeta results files (gob, JSON or CSV; "-" is standard input), merged.
	Results []string
	// Scrape is a /metrics URL of delayctl serve, scraped twice Interval apart.
	Scrape   string
	Interval time.Duration
	// Prometheus is a Prometheus server's base URL, queried over Range ending now.
	Prometheus string
	// Range is the Prometheus query range; 0 means the SLO window.
	Range time.Duration
	// Selector holds extra label matchers for Prometheus queries, e.g. job="delayctl".
	Selector string
	// Format is the report format: table, json, markdown or html.
	Format Format
	// Timeout bounds each HTTP request.
	Timeout time.Duration

	// Now is the clock, injected by tests; nil means time.Now.
	Now func() time.Time
	// HTTPClient is used for scrapes and Prometheus queries; nil builds one with Timeout.
	HTTPClient *http.Client
	// Stdin is read for the results file "-".
	Stdin io.Reader
}

// Validate checks Options for usage mistakes.
func (o Options) Validate() error {
	if o.SLOFile == "" {
		return errors.New("--slo is required")
	}
	n := 0
	for _, set := range []bool{len(o.Results) > 0, o.Scrape != "", o.Prometheus != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("give exactly one source: --results FILE..., --scrape URL or --prometheus URL")
	}
	if o.Scrape != "" && o.Interval <= 0 {
		return fmt.Errorf("--interval must be greater than zero, got %s", o.Interval)
	}
	if o.Range < 0 {
		return fmt.Errorf("--range must not be negative, got %s", o.Range)
	}
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be greater than zero, got %s", o.Timeout)
	}
	if err := ValidSelector(o.Selector); err != nil {
		return err
	}
	if _, err := NewReporter(&Report{}, o.Format); err != nil {
		return err
	}
	return nil
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) client() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return &http.Client{Timeout: o.Timeout}
}

// Run evaluates the SLO file against the chosen source and writes the report to out;
// progress goes to errOut. It returns an error wrapping ErrObjectiveMissed when an objective
// is breached or has no data (after writing the report), an input error (inputerr.Err)
// for bad flags, files or queries, and other errors for failures such as an unreachable server.
func Run(ctx context.Context, opts Options, out, errOut io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(errOut, nil))
	s, err := LoadFile(opts.SLOFile)
	if err != nil {
		return err
	}
	switch {
	case len(opts.Results) > 0:
		err = requireNative(s, "results files")
	case opts.Scrape != "":
		err = requireNative(s, "a /metrics scrape")
	}
	if err != nil {
		return err
	}
	var rep *Report
	switch {
	case len(opts.Results) > 0:
		rep, err = reportResults(ctx, s, opts)
	case opts.Scrape != "":
		rep, err = reportScrape(ctx, s, opts, log)
	default:
		rep, err = reportPrometheus(ctx, s, opts)
	}
	if err != nil {
		return err
	}
	w, err := NewReporter(rep, opts.Format)
	if err != nil {
		return err
	}
	if err := w(out); err != nil {
		return fmt.Errorf("could not write report: %w", err)
	}
	return rep.Err()
}

// EvaluateResults judges s against an accumulator of results: the report of `slo report
// --results` before formatting.
func EvaluateResults(s *SLO, acc *Results, inputs []string, now time.Time) *Report {
	src := Source{Kind: "results", Inputs: inputs, Period: acc.Span(), Requests: float64(acc.total), Excluded: float64(acc.excluded)}
	if acc.total > 0 {
		src.Start, src.End = acc.first, acc.last
	}
	rep := Evaluate(s, src, now, acc.Measure)
	if h := acc.Histogram(); h.Count() > 0 {
		rep.Latency = &LatencySummary{Min: h.Min(), Mean: h.Mean(), P50: h.Quantile(0.5), P90: h.Quantile(0.9), P99: h.Quantile(0.99), Max: h.Max(), CDF: cdf(acc)}
	}
	secs, counts := acc.Timeline()
	if len(secs) > 1 && secs[len(secs)-1]-secs[0] < maxTimelineSeconds {
		rep.TimelineFrom = secs[0]
		rep.Timeline = make([]Second, secs[len(secs)-1]-secs[0]+1)
		for i, s := range secs {
			rep.Timeline[s-secs[0]] = counts[i]
		}
	}
	return rep
}

// cdf samples the response latency distribution at 200 evenly spaced shares plus the tail.
func cdf(acc *Results) []CDFPoint {
	h := acc.Histogram()
	n := h.Count()
	var pts []CDFPoint
	add := func(q float64) {
		k := uint64(math.Ceil(q*float64(n) - 1e-9))
		pts = append(pts, CDFPoint{Latency: h.Rank(k), Share: q})
	}
	add(0)
	for i := 1; i < 200; i++ {
		add(float64(i) / 200)
	}
	for _, q := range []float64{0.999, 0.9999, 1} {
		add(q)
	}
	return pts
}

func reportResults(ctx context.Context, s *SLO, opts Options) (*Report, error) {
	acc := NewResults(s)
	if err := ReadResultsFiles(ctx, opts.Results, opts.Stdin, acc); err != nil {
		return nil, err
	}
	return EvaluateResults(s, acc, opts.Results, opts.now()), nil
}

func reportScrape(ctx context.Context, s *SLO, opts Options, log *slog.Logger) (*Report, error) {
	client := opts.client()
	before, err := Scrape(ctx, client, opts.Scrape)
	if err != nil {
		return nil, err
	}
	start := opts.now()
	log.Info("first scrape done; waiting for the second", "url", opts.Scrape, "interval", opts.Interval)
	t := time.NewTimer(opts.Interval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	after, err := Scrape(ctx, client, opts.Scrape)
	if err != nil {
		return nil, err
	}
	end := opts.now()
	d, err := Diff(s, before, after)
	if err != nil {
		return nil, err
	}
	period := end.Sub(start)
	total := d.requests(func(int) bool { return true })
	src := Source{Kind: "scrape", Inputs: []string{opts.Scrape}, Period: period, Requests: total, Start: start, End: end}
	return Evaluate(s, src, end, func(o Objective) Measurement { return d.Measure(o, period.Seconds()) }), nil
}

func reportPrometheus(ctx context.Context, s *SLO, opts Options) (*Report, error) {
	rng := opts.Range
	if rng == 0 {
		rng = s.Window
	}
	at := opts.now()
	ms, err := PromMeasure(ctx, PromClient{URL: opts.Prometheus, Client: opts.client()}, s, opts.Selector, rng, at)
	if err != nil {
		return nil, err
	}
	var requests float64
	for _, o := range s.Objectives {
		if o.Kind == KindAvailability {
			requests = math.Max(requests, ms[o.Name].Total)
		}
	}
	src := Source{Kind: "prometheus", Inputs: []string{opts.Prometheus}, Period: rng, Requests: requests, Start: at.Add(-rng), End: at}
	return Evaluate(s, src, at, func(o Objective) Measurement { return ms[o.Name] }), nil
}

// RulesRunOptions configures RunRules (slo rules).
type RulesRunOptions struct {
	SLOFile  string
	Selector string
}

// Validate checks RulesRunOptions for usage mistakes.
func (o RulesRunOptions) Validate() error {
	if o.SLOFile == "" {
		return errors.New("--slo is required")
	}
	return ValidSelector(o.Selector)
}

// RunRules loads the SLO file and writes its Prometheus rules to out, logging objectives
// without rules to errOut.
func RunRules(ctx context.Context, opts RulesRunOptions, out, errOut io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	s, err := LoadFile(opts.SLOFile)
	if err != nil {
		return err
	}
	skipped, err := WriteRules(out, s, RulesOptions{Selector: opts.Selector, Source: opts.SLOFile})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(errOut, nil))
	for _, sk := range skipped {
		log.Info("objective left out of the rules, in whole or in part", "reason", sk)
	}
	return nil
}
