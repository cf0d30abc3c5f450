package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Judge decides whether one constant-rate step of a capacity search met the SLO.
type Judge interface {
	Add(r *vegeta.Result)
	// Verdict is called once after the step's last result. summary is one short line
	// (e.g. "availability 99.97% >= 99.95%, p90 3.1ms < 400ms").
	Verdict() (ok bool, summary string)
}

// Defaults for CapacityOptions.
const (
	DefaultStepDuration = 10 * time.Second
	DefaultGrowth       = 2.0
	DefaultPrecision    = 0.05
	DefaultMaxSteps     = 20
	DefaultPause        = time.Second
)

// Default rates of a capacity search.
var (
	DefaultStartRate = Rate{Freq: 100, Per: time.Second}
	DefaultMaxRate   = Rate{Freq: 100000, Per: time.Second}
)

// CapacityOptions configures a capacity search: constant-rate steps that grow the rate by
// Growth until the SLO breaks, then bisect between the last good and the first bad rate
// until they are within Precision of each other.
type CapacityOptions struct {
	// Target and Sender are what each step sends and how, as for an attack; each step sets
	// its own rate and duration.
	Target
	Sender
	Start        Rate
	Max          Rate
	StepDuration time.Duration
	// Growth multiplies the rate after each good step of the growth phase (> 1).
	Growth float64
	// Precision ends bisection once bad/good <= 1+Precision.
	Precision float64
	MaxSteps  int
	// Pause separates steps so queues on the target drain before the next one.
	Pause time.Duration
	// NewJudge returns a fresh Judge for each step; SLO names the spec it judges by.
	NewJudge func() Judge
	SLO      string
	Output   string
}

// DefaultCapacityOptions returns CapacityOptions with every default filled in.
func DefaultCapacityOptions() CapacityOptions {
	a := DefaultOptions()
	return CapacityOptions{
		Target: a.Target, Sender: a.Sender, Start: DefaultStartRate, Max: DefaultMaxRate, StepDuration: DefaultStepDuration,
		Growth: DefaultGrowth, Precision: DefaultPrecision, MaxSteps: DefaultMaxSteps, Pause: DefaultPause,
		Output: DefaultOutput,
	}
}

// Validate checks the options without touching files or the network.
func (o CapacityOptions) Validate() error {
	errs := append(o.Target.validate(), o.Sender.validate(o.Start)...)
	for _, r := range []struct {
		flag string
		rate Rate
	}{{"--start", o.Start}, {"--max", o.Max}} {
		if err := r.rate.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s %v: %w", r.flag, r.rate, err))
		}
	}
	if o.Start.IsMax() || o.Max.IsMax() {
		errs = append(errs, errors.New("--start and --max must be positive rates such as 100/s"))
	} else if o.Max.PerSecond() < o.Start.PerSecond() {
		errs = append(errs, fmt.Errorf("--max %v is below --start %v", o.Max, o.Start))
	}
	if o.StepDuration <= 0 {
		errs = append(errs, fmt.Errorf("--step-duration %v: must be positive", o.StepDuration))
	}
	if o.Growth <= 1 {
		errs = append(errs, fmt.Errorf("--growth %v: must be above 1", o.Growth))
	}
	if o.Precision <= 0 || o.Precision >= 1 {
		errs = append(errs, fmt.Errorf("--precision %v: must be in (0, 1)", o.Precision))
	}
	if o.MaxSteps < 1 {
		errs = append(errs, fmt.Errorf("--max-steps %d: must be at least 1", o.MaxSteps))
	}
	if o.NewJudge == nil {
		errs = append(errs, errors.New("capacity search needs an SLO (--slo)"))
	}
	switch o.Output {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--output %q: want text or json", o.Output))
	}
	if len(errs) > 0 {
		return inputerr.Wrap(errors.Join(errs...))
	}
	return nil
}

// Step is one constant-rate step of a capacity search.
type Step struct {
	Phase string  `json:"phase"` // grow or bisect
	Rate  float64 `json:"rate"`  // requested requests/s
	// Sent is the rate requests actually went out at; a step whose Sent falls short of Rate
	// measured the generator, not the target, and does not count as meeting the SLO.
	Sent         float64       `json:"sent"`
	Requests     uint64        `json:"requests"`
	SuccessRatio float64       `json:"success_ratio"`
	P50          time.Duration `json:"p50"`
	P90          time.Duration `json:"p90"`
	P99          time.Duration `json:"p99"`
	OK           bool          `json:"ok"`
	Verdict      string        `json:"verdict"`
}

// CapacityReport is the outcome of a capacity search.
type CapacityReport struct {
	Target string `json:"target"`
	SLO    string `json:"slo,omitempty"`
	// Capacity is the highest rate (requests/s) at which a step met the SLO; 0 when none did.
	Capacity float64 `json:"capacity"`
	// FirstFailing is the lowest rate at which a step missed it; 0 when none did.
	FirstFailing float64 `json:"first_failing"`
	// Conclusion explains how the search ended, in one sentence.
	Conclusion  string `json:"conclusion"`
	Steps       []Step `json:"steps"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// stepFunc runs one step at a rate (requests/s) and returns its outcome.
type stepFunc func(ctx context.Context, rate float64) (Step, error)

// search grows the rate until a step fails, then bisects. It stops early when ctx ends.
func search(ctx context.Context, o CapacityOptions, run stepFunc) (CapacityReport, error) {
	var rep CapacityReport
	lo, hi := 0.0, 0.0 // highest good, lowest bad
	max := o.Max.PerSecond()
	do := func(phase string, rate float64) (bool, error) {
		if len(rep.Steps) > 0 && o.Pause > 0 {
			select {
			case <-time.After(o.Pause):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			rep.Interrupted = true
			return false, nil
		}
		st, err := run(ctx, rate)
		if err != nil {
			return false, err
		}
		st.Phase, st.Rate = phase, rate
		if ctx.Err() != nil { // a cut-short step proves nothing
			rep.Interrupted = true
			return false, nil
		}
		rep.Steps = append(rep.Steps, st)
		if st.OK {
			lo = math.Max(lo, rate)
		} else if hi == 0 || rate < hi {
			hi = rate
		}
		return true, nil
	}
	for rate := o.Start.PerSecond(); hi == 0 && len(rep.Steps) < o.MaxSteps; {
		ran, err := do("grow", rate)
		if err != nil || !ran {
			break
		}
		if hi == 0 && rate >= max {
			break
		}
		rate = math.Min(math.Round(rate*o.Growth), max)
	}
	for hi > 0 && !rep.Interrupted && len(rep.Steps) < o.MaxSteps {
		if lo > 0 && hi/lo <= 1+o.Precision || hi-lo <= 1 {
			break
		}
		mid := math.Round((lo + hi) / 2)
		if mid <= lo || mid >= hi {
			break
		}
		if ran, err := do("bisect", mid); err != nil || !ran {
			break
		}
	}
	rep.Capacity, rep.FirstFailing = lo, hi
	switch {
	case rep.Interrupted:
		rep.Conclusion = "interrupted: the capacity is at least the highest good rate so far"
	case hi == 0 && lo >= max:
		rep.Conclusion = fmt.Sprintf("the SLO held up to --max %s req/s; the capacity may be higher", fmtRate(max))
	case hi == 0:
		rep.Conclusion = "no step missed the SLO before --max-steps ran out"
	case lo == 0:
		rep.Conclusion = fmt.Sprintf("the SLO was missed at every rate tried, down to %s req/s", fmtRate(hi))
	case hi/lo <= 1+o.Precision || hi-lo <= 1:
		rep.Conclusion = fmt.Sprintf("the SLO holds at %s req/s and breaks at %s req/s", fmtRate(lo), fmtRate(hi))
	default:
		rep.Conclusion = fmt.Sprintf("--max-steps ran out: the SLO holds at %s req/s and breaks at %s req/s", fmtRate(lo), fmtRate(hi))
	}
	return rep, nil
}

func fmtRate(r float64) string { return fmt.Sprintf("%.0f", r) }

// RunCapacity runs a capacity search against the targets of opts.Target and writes the
// report (a table of every step and the capacity found) to out.
func RunCapacity(ctx context.Context, opts CapacityOptions, out, errOut io.Writer) error {
	rep, err := Capacity(ctx, opts, errOut)
	if rep == nil {
		return err
	}
	var werr error
	if opts.Output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		werr = enc.Encode(rep)
	} else {
		werr = writeCapacityText(out, rep)
	}
	if werr != nil {
		return fmt.Errorf("could not write report: %w", werr)
	}
	return err
}

// Capacity runs the search and returns its report.
func Capacity(ctx context.Context, opts CapacityOptions, errOut io.Writer) (*CapacityReport, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	tgts, err := opts.loadTargets()
	if err != nil {
		return nil, err
	}
	if opts.Preflight {
		if err := preflight(ctx, tgts, opts.Timeout); err != nil {
			return nil, err
		}
	}
	pl := opts.Sender.plan(opts.Start) // every step runs at a constant rate: one plan fits all
	client, closeIdle := newClient(opts.Sender, pl, tgts)
	defer closeIdle()
	tr := vegeta.NewStaticTargeter(tgts...)
	send := func(ctx context.Context, rate Rate, name string, add func(*vegeta.Result)) {
		attack(ctx, newAttacker(opts.Sender, pl, client), tr, rate, opts.StepDuration, name, add)
	}
	rep, err := capacity(ctx, opts, errOut, send)
	rep.Target = describeTargets(tgts)
	return &rep, err
}

// sendFunc sends one constant-rate step of StepDuration and feeds every result to add.
type sendFunc func(ctx context.Context, rate Rate, name string, add func(*vegeta.Result))

// capacity runs the search with send as the load generator: each step's results go to a
// fresh Judge, and a step whose sent rate fell short of the requested one counts as missed.
func capacity(ctx context.Context, opts CapacityOptions, errOut io.Writer, send sendFunc) (CapacityReport, error) {
	run := func(ctx context.Context, rate float64) (Step, error) {
		stepRate := Rate{Freq: int(rate), Per: time.Second}
		var sum Summary
		judge := opts.NewJudge()
		fmt.Fprintf(errOut, "capacity: %s req/s for %s ...", fmtRate(rate), opts.StepDuration)
		send(ctx, stepRate, fmt.Sprintf("capacity-%.0f", rate), func(r *vegeta.Result) {
			sum.Add(r)
			judge.Add(r)
		})
		r := sum.Report(nil, stepRate)
		ok, verdict := judge.Verdict()
		st := Step{
			Sent: r.Rate, Requests: r.Requests, SuccessRatio: r.SuccessRatio,
			P50: r.Latency.P50, P90: r.Latency.P90, P99: r.Latency.P99, OK: ok, Verdict: verdict,
		}
		if r.Rate < rate*(1-RateShortfall) {
			st.OK = false
			st.Verdict = fmt.Sprintf("generator short of the rate (sent %.1f/s); %s", r.Rate, verdict)
		}
		mark := "ok"
		if !st.OK {
			mark = "missed"
		}
		fmt.Fprintf(errOut, " %s: %s\n", mark, st.Verdict)
		return st, nil
	}
	rep, err := search(ctx, opts, run)
	rep.SLO = opts.SLO
	return rep, err
}

func writeCapacityText(w io.Writer, rep *CapacityReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Capacity search @ %s", rep.Target)
	if rep.SLO != "" {
		fmt.Fprintf(&b, " (SLO %s)", rep.SLO)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  %4s  %-6s  %9s  %9s  %9s  %8s  %9s  %9s  %9s  %s\n",
		"step", "phase", "rate/s", "sent/s", "requests", "success", "p50", "p90", "p99", "verdict")
	for i, s := range rep.Steps {
		mark := "ok"
		if !s.OK {
			mark = "MISSED"
		}
		fmt.Fprintf(&b, "  %4d  %-6s  %9.0f  %9.1f  %9d  %7.2f%%  %9s  %9s  %9s  %-6s %s\n",
			i+1, s.Phase, s.Rate, s.Sent, s.Requests, 100*s.SuccessRatio, fmtDur(s.P50), fmtDur(s.P90), fmtDur(s.P99), mark, s.Verdict)
	}
	if rep.Capacity > 0 {
		fmt.Fprintf(&b, "Capacity: %s req/s within the SLO\n", fmtRate(rep.Capacity))
	} else {
		b.WriteString("Capacity: none of the rates tried met the SLO\n")
	}
	fmt.Fprintf(&b, "  %s\n", rep.Conclusion)
	_, err := io.WriteString(w, b.String())
	return err
}
