package evaluate

import (
	"fmt"
	"math"
	"strings"

	"github.com/delayctl/delayctl/pkg/model"
)

// Metrics a model objective can bound (pkg/model owns their names and directions).
const (
	MetricROCAUC        = model.MetricROCAUC
	MetricPRAUC         = model.MetricPRAUC
	MetricLogLoss       = model.MetricLogLoss
	MetricBrier         = model.MetricBrier
	MetricPredictionPSI = model.MetricPredictionPSI
	MetricFeaturePSI    = model.MetricFeaturePSI
	MetricUnseenShare   = model.MetricUnseenShare
)

// Objective is one model objective: Metric must stay at or above Bound (quality scores) or at
// or below it (losses, PSI). Variable narrows feature_psi to one variable; empty means the
// largest PSI of any feature.
type Objective struct {
	Name     string  `json:"name"`
	Metric   string  `json:"metric"`
	Bound    float64 `json:"bound"`
	Variable string  `json:"variable,omitempty"`
}

// AtLeast reports whether the metric must stay at or above Bound.
func (o Objective) AtLeast() bool { h, _ := model.HigherIsBetter(o.Metric); return h }

func (o Objective) String() string {
	op := "<="
	if o.AtLeast() {
		op = ">="
	}
	m := o.Metric
	if o.Variable != "" {
		m += "{" + o.Variable + "}"
	}
	return fmt.Sprintf("%s %s %g", m, op, o.Bound)
}

// Common PSI bounds: 0.1 is usually read as a moderate and 0.25 as a large shift (credit
// scoring practice, blind to sample size; see docs/MONITORING.md).
const (
	DefaultMaxPredictionPSI = 0.25
	DefaultMaxFeaturePSI    = 0.25
)

// DefaultObjectives are judged when none are given: drift of predictions and of features.
var DefaultObjectives = []Objective{
	{Name: "prediction-drift", Metric: MetricPredictionPSI, Bound: DefaultMaxPredictionPSI},
	{Name: "feature-drift", Metric: MetricFeaturePSI, Bound: DefaultMaxFeaturePSI},
}

func validateObjectives(objs []Objective) error {
	for _, o := range objs {
		if _, ok := model.HigherIsBetter(o.Metric); !ok {
			return fmt.Errorf("objective %q: unknown metric %q (want one of %s)", o.Name, o.Metric, model.HealthMetrics)
		}
		if o.Variable != "" && !model.PerVariable(o.Metric) {
			return fmt.Errorf("objective %q: a variable applies to feature_psi and unseen_share only", o.Name)
		}
		if math.IsNaN(o.Bound) || math.IsInf(o.Bound, 0) || o.Bound < 0 {
			return fmt.Errorf("objective %q: bound must be a finite number >= 0, got %v", o.Name, o.Bound)
		}
	}
	return nil
}

// Objective statuses.
const (
	StatusMet      = "met"
	StatusBreached = "breached"
	StatusSkipped  = "skipped"
)

// ObjectiveResult is an objective's verdict on a report.
type ObjectiveResult struct {
	Objective
	Value  Num    `json:"value"`
	Status string `json:"status"`
	// Detail names the variable a feature_psi over all features found worst, or why the
	// objective was skipped.
	Detail string `json:"detail,omitempty"`
}

func judge(objs []Objective, rep *Report) []ObjectiveResult {
	if objs == nil {
		objs = DefaultObjectives
	}
	out := make([]ObjectiveResult, 0, len(objs))
	for _, o := range objs {
		r := ObjectiveResult{Objective: o, Value: Num(math.NaN())}
		switch o.Metric {
		case MetricROCAUC:
			r.Value = Num(rep.Now.ROCAUC)
		case MetricPRAUC:
			r.Value = Num(rep.Now.PRAUC)
		case MetricLogLoss:
			r.Value = Num(rep.Now.LogLoss)
		case MetricBrier:
			r.Value = Num(rep.Now.Brier)
		case MetricPredictionPSI:
			if rep.Drift != nil {
				r.Value = rep.Drift.PredictionPSI
			}
		case MetricFeaturePSI:
			if rep.Drift != nil {
				r.Value, r.Detail = rep.Drift.worst(o.Variable, func(f *FeatureDrift) Num { return f.PSI })
			}
		case MetricUnseenShare:
			if rep.Drift != nil {
				r.Value, r.Detail = rep.Drift.worst(o.Variable, func(f *FeatureDrift) Num { return f.UnseenShare })
			}
		}
		v := float64(r.Value)
		switch {
		case math.IsNaN(v) && r.Detail == "":
			r.Status, r.Detail = StatusSkipped, "the model has no training baseline"
		case math.IsNaN(v):
			r.Status = StatusSkipped
		case o.AtLeast() == (v >= o.Bound) || v == o.Bound:
			r.Status = StatusMet
		default:
			r.Status = StatusBreached
		}
		out = append(out, r)
	}
	return out
}

// worst is one variable's value of a per-feature figure, or the largest with its variable
// named. Features without the figure (NaN: no unseen bin) are passed over.
func (d *Drift) worst(variable string, of func(*FeatureDrift) Num) (Num, string) {
	v, name := math.NaN(), ""
	for i := range d.Features {
		f := &d.Features[i]
		x := float64(of(f))
		if variable != "" && f.Variable != variable || math.IsNaN(x) {
			continue
		}
		if math.IsNaN(v) || x > v {
			v, name = x, f.Variable
		}
	}
	switch {
	case math.IsNaN(v) && variable != "":
		return Num(v), fmt.Sprintf("the model has no one-hot feature %q", variable)
	case math.IsNaN(v):
		return Num(v), "the model has no such feature"
	case variable != "" || v == 0:
		return Num(v), ""
	}
	return Num(v), name
}

// Err wraps ErrObjectiveBreached with the breached objectives, or is nil.
func (r *Report) Err() error {
	var bad []string
	for _, o := range r.Objectives {
		if o.Status == StatusBreached {
			bad = append(bad, fmt.Sprintf("%s (%s, measured %.4g)", o.Name, o.Objective, float64(o.Value)))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrObjectiveBreached, strings.Join(bad, "; "))
}
