package slo

import (
	"fmt"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// StepJudge decides whether one constant-rate step of bench's capacity search met the SLO.
// It has exactly the methods of bench.Judge (Add and Verdict) without importing bench.
// It judges availability, latency and throughput objectives exactly from the step's
// results; memory objectives cannot be judged from results and are reported as skipped.
type StepJudge struct {
	slo *SLO
	acc *Results
}

// NewStepJudge returns a judge for one step; build a new one per step.
func NewStepJudge(s *SLO) *StepJudge {
	return &StepJudge{slo: s, acc: NewResults(s)}
}

// Add counts one result of the step.
func (j *StepJudge) Add(r *vegeta.Result) { j.acc.Add(r) }

// Verdict reports whether every judged objective was met, with a one-line summary such as
// "availability 99.97% >= 99.95% ok, p90 3.1ms <= 400ms ok, memory skipped". A step with no
// request within the SLO's routes fails.
func (j *StepJudge) Verdict() (bool, string) {
	ok := true
	var parts []string
	for _, o := range j.slo.Objectives {
		r := Judge(o, j.acc.Measure(o), j.acc.Span(), j.slo.Window)
		switch r.Status {
		case StatusSkipped:
			parts = append(parts, o.Name+" skipped")
			continue
		case StatusNoData:
			ok = false
			parts = append(parts, o.Name+" no data")
			continue
		case StatusBreached:
			ok = false
		}
		mark := "ok"
		if r.Status != StatusMet {
			mark = "MISSED"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", o.Name, stepText(r), mark))
	}
	return ok, strings.Join(parts, ", ")
}

func stepText(r ObjectiveResult) string {
	o := r.objective
	switch o.Kind {
	case KindAvailability, KindRatio:
		return FormatPercent(float64(r.SLI)) + " >= " + FormatPercent(o.Target)
	case KindLatency:
		if o.Percentile {
			return fmt.Sprintf("%s %s <= %s", PercentileName(o.Target), formatLatency(float64(r.Value)), FormatDuration(o.Threshold))
		}
		return fmt.Sprintf("%s <= %s: %s >= %s", "share", FormatDuration(o.Threshold), FormatPercent(float64(r.SLI)), FormatPercent(o.Target))
	case KindThroughput:
		return FormatRate(float64(r.Value)) + " >= " + FormatRate(o.MinRPS)
	}
	return sliText(r)
}
