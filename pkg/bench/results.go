package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
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
		return inputErrorf("name at least one results file (or - for standard input)")
	}
	switch o.Output {
	case "", "text", "json":
	default:
		return inputErrorf("--output %q: want text or json", o.Output)
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
	for _, name := range opts.Files {
		if err := SummarizeFile(ctx, name, in, &sum); err != nil {
			return err
		}
	}
	rep := sum.Report(opts.Buckets, opts.Rate)
	reporter, err := NewReporter(opts.Output, &rep)
	if err != nil {
		return err
	}
	return reporter(out)
}

// SummarizeFile adds every result of one results file to sum; name "-" reads in.
func SummarizeFile(ctx context.Context, name string, in io.Reader, sum *Summary) error {
	var r io.Reader = in
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return &InputError{fmt.Errorf("could not open results file: %w", err)}
		}
		defer f.Close()
		r = f
	}
	return DecodeResults(ctx, name, bufio.NewReaderSize(r, 256<<10), sum.Add)
}

// DecodeResults decodes every result of a results stream (gob, JSON lines or CSV, sniffed as
// vegeta does) and passes each to fn; the *Result is reused between calls.
func DecodeResults(ctx context.Context, name string, r io.Reader, fn func(*vegeta.Result)) error {
	br := bufio.NewReader(r)
	if _, err := br.Peek(1); err == io.EOF {
		return nil // an empty file holds no results (an attack interrupted at once)
	}
	dec := vegeta.DecoderFor(br)
	if dec == nil {
		return inputErrorf("results file %q: not vegeta gob, JSON or CSV results", name)
	}
	var res vegeta.Result
	for n := 1; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		res = vegeta.Result{}
		err := dec.Decode(&res)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return inputErrorf("results file %q, result %d: %w", name, n, err)
		}
		fn(&res)
	}
}
