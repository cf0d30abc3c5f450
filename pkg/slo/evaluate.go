package slo

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Measurement is what a source measured for one objective, before it is judged.
type Measurement struct {
	// Total and Good count valid and good events: requests in scope and good (availability)
	// or fast (latency) ones. Prometheus counters make them fractional.
	Total, Good float64
	// Value is the percentile latency in seconds (percentile form), the successful
	// requests per second (throughput) or the resident memory in bytes. NaN when unknown.
	Value float64
	// Estimate marks a value derived from histogram buckets by interpolation.
	Estimate bool
	// Skipped marks an objective the source cannot measure; Note says why.
	Skipped bool
	// Note is a short remark shown next to the objective.
	Note string
}

// Status is the verdict on one objective.
type Status string

// The statuses an objective can end in. Only Met and Skipped let the report pass.
const (
	StatusMet      Status = "met"
	StatusBreached Status = "breached"
	// StatusNoData: nothing in scope was measured (no requests matched the routes).
	StatusNoData Status = "no_data"
	// StatusSkipped: the source cannot measure this kind (memory from results files).
	StatusSkipped Status = "skipped"
)

// Budget is the error budget arithmetic of an event-based objective over the measured
// period (a bench run, a scrape interval or a Prometheus range).
type Budget struct {
	// Allowed is how many bad events the target allows among the measured ones: (1-T)*N.
	Allowed float64 `json:"allowed_bad_events"`
	// Bad is how many bad events there were.
	Bad float64 `json:"bad_events"`
	// Consumed is Bad/Allowed: the share of the measured period's own budget used.
	Consumed Number `json:"consumed"`
	// Remaining is 1 - Consumed; negative once the budget is overspent.
	Remaining Number `json:"remaining"`
	// BurnRate is the error ratio divided by 1-T: 1 spends the budget exactly over the
	// window, 14.4 spends 2% of a 30-day budget in an hour.
	BurnRate Number `json:"burn_rate"`
	// WindowConsumed is the share of the whole SLO window's budget the measured period
	// would spend if the window's traffic were spread evenly: BurnRate * period / window.
	WindowConsumed Number `json:"window_budget_consumed"`
	// Exhaustion is how long a full window's budget lasts at this burn rate (window /
	// BurnRate); 0 when nothing burns.
	Exhaustion time.Duration `json:"-"`
}

// ObjectiveResult is one objective's line in a report.
type ObjectiveResult struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Kind        Kind   `json:"kind"`
	// Objective states the promise, e.g. "p90 <= 400ms".
	Objective string `json:"objective"`
	Status    Status `json:"status"`
	// SLI is good/total for availability and latency; NaN for the others or without data.
	SLI    Number `json:"sli"`
	Target Number `json:"target"`
	// Value is the measured percentile (seconds), throughput (req/s) or memory (bytes).
	Value Number `json:"value"`
	// Unit names Value's unit: "seconds", "requests_per_second" or "bytes".
	Unit     string `json:"unit,omitempty"`
	Estimate bool   `json:"estimate,omitempty"`
	Note     string `json:"note,omitempty"`
	// Total and Good count the events (requests) measured.
	Total  float64 `json:"total_events"`
	Good   float64 `json:"good_events"`
	Budget *Budget `json:"error_budget,omitempty"`

	objective Objective
}

// Met reports whether the objective is met, by the exact count of good events:
// good >= target * total, allowing for float rounding so that "exactly at target" passes.
func met(good, total, target float64) bool {
	return good >= target*total-1e-9*math.Max(1, total)
}

// Judge turns a measurement into a verdict with its budget arithmetic. period is how long
// the measurement covers (0 when unknown) and window the SLO window.
func Judge(o Objective, m Measurement, period, window time.Duration) ObjectiveResult {
	r := ObjectiveResult{
		Name: o.Name, Description: o.Description, Kind: o.Kind, Objective: o.String(),
		SLI: Number(math.NaN()), Target: Number(math.NaN()), Value: Number(m.Value),
		Estimate: m.Estimate, Note: m.Note, Total: m.Total, Good: m.Good, objective: o,
	}
	switch o.Kind {
	case KindAvailability, KindRatio:
		r.Value = Number(math.NaN())
	case KindLatency:
		if o.Percentile {
			r.Unit = "seconds"
		} else {
			r.Value = Number(math.NaN())
		}
	case KindThroughput:
		r.Unit = "requests_per_second"
		r.Target = Number(o.MinRPS)
	case KindMemory:
		r.Unit = "bytes"
		r.Target = Number(o.MaxBytes)
	case KindModel:
		r.Unit, r.Target = o.ModelMetric, Number(o.ModelBound)
	}
	if m.Skipped {
		r.Status = StatusSkipped
		return r
	}
	switch o.Kind {
	case KindAvailability, KindLatency, KindRatio:
		r.Target = Number(o.Target)
		if m.Total <= 0 {
			r.Status = StatusNoData
			r.Value = Number(math.NaN())
			return r
		}
		r.SLI = Number(m.Good / m.Total)
		r.Status = StatusBreached
		if met(m.Good, m.Total, o.Target) {
			r.Status = StatusMet
		}
		r.Budget = budget(o.Target, m.Good, m.Total, period, window)
	case KindThroughput:
		r.Status = verdict(m.Value, func(v float64) bool { return v >= o.MinRPS })
	case KindMemory:
		r.Status = verdict(m.Value, func(v float64) bool { return v <= o.MaxBytes })
	case KindModel:
		judgeModel(o, m, &r)
	}
	return r
}

func verdict(v float64, ok func(float64) bool) Status {
	switch {
	case math.IsNaN(v):
		return StatusNoData
	case ok(v):
		return StatusMet
	}
	return StatusBreached
}

func budget(target, good, total float64, period, window time.Duration) *Budget {
	// Rounded to 1e-9 so that 0.0005 * 3000 reads 1.5, not 1.4999999999998348.
	b := &Budget{Allowed: math.Round((1-target)*total*1e9) / 1e9, Bad: math.Max(0, total-good)}
	errRatio := b.Bad / total
	switch {
	case b.Bad == 0:
		b.Consumed, b.BurnRate = 0, 0
	case b.Allowed <= 0:
		b.Consumed, b.BurnRate = Number(math.Inf(1)), Number(math.Inf(1))
	default:
		b.Consumed = Number(b.Bad / b.Allowed)
		b.BurnRate = Number(errRatio / (1 - target))
	}
	b.Remaining = 1 - b.Consumed
	b.WindowConsumed = Number(math.NaN())
	if period > 0 && window > 0 {
		b.WindowConsumed = b.BurnRate * Number(period.Seconds()/window.Seconds())
		if b.BurnRate == 0 {
			b.WindowConsumed = 0
		}
	}
	if br := float64(b.BurnRate); br > 0 && !math.IsInf(br, 0) {
		b.Exhaustion = time.Duration(float64(window) / br)
	}
	return b
}

// Source describes where a report's numbers come from.
type Source struct {
	// Kind is "results", "scrape" or "prometheus".
	Kind string `json:"kind"`
	// Inputs are the results files, the scraped URL or the Prometheus URL.
	Inputs []string `json:"inputs"`
	// Period is how long the measurement covers: the run from first request to last
	// response, the scrape interval, or the queried range.
	Period time.Duration `json:"-"`
	// Requests counts the requests in scope; Excluded those outside the routes (results only).
	Requests float64 `json:"requests"`
	Excluded float64 `json:"excluded_requests"`
	// Start and End bound the measured period when known.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// Report is the outcome of evaluating an SLO against one source.
type Report struct {
	Service     string            `json:"service"`
	Window      time.Duration     `json:"-"`
	Routes      string            `json:"routes"`
	GeneratedAt time.Time         `json:"generated_at"`
	Source      Source            `json:"source"`
	Objectives  []ObjectiveResult `json:"objectives"`
	// Met is true when no objective is breached or without data (skipped ones do not count).
	Met bool `json:"met"`
	// Verdict is one line: "MET: 3 of 3 objectives met" or "BREACHED: latency-p90".
	Verdict string `json:"verdict"`

	// Latency summarises the in-scope response latencies (results only).
	Latency *LatencySummary `json:"latency,omitempty"`
	// Timeline holds per-second requests and errors (results only), for charts.
	Timeline     []Second `json:"-"`
	TimelineFrom int64    `json:"-"`
}

// LatencySummary is the latency distribution of a results source, for the report's chart.
type LatencySummary struct {
	Min  time.Duration `json:"-"`
	Mean time.Duration `json:"-"`
	P50  time.Duration `json:"-"`
	P90  time.Duration `json:"-"`
	P99  time.Duration `json:"-"`
	Max  time.Duration `json:"-"`
	// CDF holds (latency, share of responses at or under it) points for plotting.
	CDF []CDFPoint `json:"-"`
}

// CDFPoint is one point of a cumulative latency distribution.
type CDFPoint struct {
	Latency time.Duration
	Share   float64
}

// ErrObjectiveMissed is returned (wrapped, naming the objectives) when a report has an
// objective breached or without data, so that a CI job gates on it.
var ErrObjectiveMissed = errors.New("slo objective breached")

// Evaluate judges every objective of s against what measure reports for it.
func Evaluate(s *SLO, src Source, now time.Time, measure func(Objective) Measurement) *Report {
	rep := &Report{Service: s.Service, Window: s.Window, Routes: s.RoutesExpr, GeneratedAt: now, Source: src}
	for _, o := range s.Objectives {
		rep.Objectives = append(rep.Objectives, Judge(o, measure(o), src.Period, s.Window))
	}
	rep.Met, rep.Verdict = overall(rep.Objectives)
	return rep
}

func overall(rs []ObjectiveResult) (bool, string) {
	var bad, skipped []string
	metCount := 0
	for _, r := range rs {
		switch r.Status {
		case StatusMet:
			metCount++
		case StatusSkipped:
			skipped = append(skipped, r.Name)
		case StatusNoData:
			bad = append(bad, r.Name+" (no data)")
		default:
			bad = append(bad, r.Name)
		}
	}
	tail := ""
	if len(skipped) > 0 {
		tail = fmt.Sprintf("; not evaluated: %s", strings.Join(skipped, ", "))
	}
	if len(bad) > 0 {
		return false, fmt.Sprintf("BREACHED: %s%s", strings.Join(bad, ", "), tail)
	}
	return true, fmt.Sprintf("MET: %d of %d objectives met%s", metCount, len(rs), tail)
}

// Err returns nil when the report is met, else an error wrapping ErrObjectiveMissed that
// names the objectives missed.
func (r *Report) Err() error {
	if r.Met {
		return nil
	}
	var names []string
	for _, o := range r.Objectives {
		if o.Status == StatusBreached || o.Status == StatusNoData {
			names = append(names, o.Name)
		}
	}
	return fmt.Errorf("%w: %s", ErrObjectiveMissed, strings.Join(names, ", "))
}

// Number is a float64 that encodes NaN as JSON null and infinities as the strings "+Inf"
// and "-Inf", as the Prometheus API does.
type Number float64

// MarshalJSON implements json.Marshaler.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	switch {
	case math.IsNaN(f):
		return []byte("null"), nil
	case math.IsInf(f, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Inf"`), nil
	}
	return []byte(formatFloat(f)), nil
}
