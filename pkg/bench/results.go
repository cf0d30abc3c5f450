package bench

import (
	"context"
	"io"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/results"
)

// ReportOptions configures a report over results files (delayctl bench report).
type ReportOptions struct {
	// Files are results files in vegeta's gob, JSON or CSV encoding, mixed freely; "-" reads
	// standard input.
	Files   []string
	Output  string
	Buckets []time.Duration
	// Rate is the rate the attack requested, if known, for the shortfall warning.
	Rate Rate
}

// Validate checks the options.
func (o ReportOptions) Validate() error {
	if len(o.Files) == 0 {
		return inputerr.Errorf("name at least one results file (or - for standard input)")
	}
	switch o.Output {
	case "", "text", "json":
	default:
		return inputerr.Errorf("--output %q: want text or json", o.Output)
	}
	return nil
}

// RunReport recomputes the report from results files and writes it to out. The report over
// several files equals the report over one file holding the same results.
func RunReport(ctx context.Context, opts ReportOptions, in io.Reader, out io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	var sum Summary
	if err := results.ReadFiles(ctx, opts.Files, in, sum.Add); err != nil {
		return err
	}
	rep := sum.Report(opts.Buckets, opts.Rate)
	reporter, err := NewReporter(opts.Output, &rep)
	if err != nil {
		return err
	}
	return reporter(out)
}
