package slo

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/delayctl/delayctl/pkg/contract"
	delaymodel "github.com/delayctl/delayctl/pkg/model"
)

// KindModel is a model-health objective: a quality score or a drift (PSI) bound.
const KindModel Kind = "model"

// ModelSpec bounds one model-health metric. Quality metrics (roc_auc, pr_auc, log_loss,
// brier) need outcomes and are judged by `delayctl evaluate`; drift metrics (prediction_psi,
// feature_psi, unseen_share) are also judged by `slo report --scrape/--prometheus` from the
// server's drift gauges, and get alert rules.
type ModelSpec struct {
	// Metric is one of roc_auc, pr_auc, log_loss, brier, prediction_psi, feature_psi,
	// unseen_share.
	Metric string `yaml:"metric"`
	// Min is the floor of roc_auc and pr_auc.
	Min string `yaml:"min,omitempty"`
	// Max is the ceiling of log_loss, brier, the PSI metrics and unseen_share.
	Max string `yaml:"max,omitempty"`
	// Variable narrows feature_psi or unseen_share to one feature variable (e.g. origin);
	// empty means the largest value of any feature.
	Variable string `yaml:"variable,omitempty"`
}

func compileModel(ms *ModelSpec, o *Objective, p string, fail func(string, string, ...any) error) error {
	o.Kind = KindModel
	higher, ok := delaymodel.HigherIsBetter(ms.Metric)
	if !ok {
		return fail(p+".metric", "unknown metric %q (want one of %s)", ms.Metric, delaymodel.HealthMetrics)
	}
	if ms.Variable != "" && !delaymodel.PerVariable(ms.Metric) {
		return fail(p+".variable", "variable applies to feature_psi and unseen_share only")
	}
	field, bound, other := "max", ms.Max, ms.Min
	if higher {
		field, bound, other = "min", ms.Min, ms.Max
	}
	if other != "" || bound == "" {
		return fail(p+"."+field, "%s needs %s (and only %s)", ms.Metric, field, field)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(bound), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fail(p+"."+field, "want a finite number >= 0, got %q", bound)
	}
	o.ModelMetric, o.ModelBound, o.ModelVariable, o.ModelAtLeast = ms.Metric, v, ms.Variable, higher
	return nil
}

// modelString states a model objective, e.g. "roc_auc >= 0.62" or "feature_psi{origin} <= 0.25".
func (o Objective) modelString() string {
	m := o.ModelMetric
	if o.ModelVariable != "" {
		m += "{" + o.ModelVariable + "}"
	}
	op := " <= "
	if o.ModelAtLeast {
		op = " >= "
	}
	return m + op + formatFloat(o.ModelBound)
}

// judgeModel sets a model objective's verdict.
func judgeModel(o Objective, m Measurement, r *ObjectiveResult) {
	r.Unit, r.Target = o.ModelMetric, Number(o.ModelBound)
	r.Status = verdict(m.Value, func(v float64) bool {
		if o.ModelAtLeast {
			return v >= o.ModelBound
		}
		return v <= o.ModelBound
	})
}

// skipQuality is the measurement of a quality metric from a source without outcomes.
func skipQuality(o Objective) (Measurement, bool) {
	if delaymodel.IsDriftMetric(o.ModelMetric) {
		return Measurement{}, false
	}
	return Measurement{Value: math.NaN(), Skipped: true,
		Note: o.ModelMetric + " needs outcomes: judge it with delayctl evaluate"}, true
}

// driftNote explains a missing drift gauge.
func driftNote(o Objective) string {
	return fmt.Sprintf("no %s sample: the server's drift window holds too few predictions, or the model has no training baseline", driftMetric(o))
}

func driftMetric(o Objective) string {
	switch o.ModelMetric {
	case delaymodel.MetricPredictionPSI:
		return contract.DriftPredictionPSI
	case delaymodel.MetricUnseenShare:
		return contract.DriftUnseenRatio
	}
	return contract.DriftFeaturePSI
}

// measureModelScrape reads a drift gauge from the latest scrape: the PSI over the server's
// drift window now (the largest over features unless a variable is named).
func measureModelScrape(o Objective, after Snapshot) Measurement {
	if m, skip := skipQuality(o); skip {
		return m
	}
	v := math.NaN()
	worst := ""
	if f := after[driftMetric(o)]; f != nil {
		for _, s := range f.GetMetric() {
			name := labelsOf(s)["variable"]
			if o.ModelVariable != "" && name != o.ModelVariable {
				continue
			}
			if g := gaugeValue(s); math.IsNaN(v) || g > v {
				v, worst = g, name
			}
		}
	}
	m := Measurement{Value: v}
	switch {
	case math.IsNaN(v):
		m.Note = driftNote(o)
	case delaymodel.PerVariable(o.ModelMetric) && o.ModelVariable == "" && v > 0:
		m.Note = "largest: " + worst
	}
	return m
}

func gaugeValue(m *dto.Metric) float64 { return m.GetGauge().GetValue() }

// modelQuery is the PromQL of a drift objective: the current PSI (the largest over features
// unless a variable is named, and over instances).
func (q queries) modelQuery(o Objective) string {
	if o.ModelVariable != "" {
		return fmt.Sprintf("max(%s)", q.sel(driftMetric(o), false, fmt.Sprintf("variable=%q", o.ModelVariable)))
	}
	return fmt.Sprintf("max(%s)", q.sel(driftMetric(o), false))
}

// modelGroup alerts when a drift gauge stays over its bound for 30 minutes.
func modelGroup(s *SLO, o Objective, q queries, base map[string]string) ruleGroup {
	return ruleGroup{Name: groupName(s.Service, o.Name) + "-alerts", Rules: []rule{{
		Alert:  alertName(s.Service, o.Name, "OutOfBounds"),
		Expr:   fmt.Sprintf("%s > %s", q.modelQuery(o), formatFloat(o.ModelBound)),
		For:    "30m",
		Labels: withLabels(base, "severity", "ticket"),
		Annotations: map[string]string{
			"summary": fmt.Sprintf("%s model inputs or predictions drifted from training (%s) for 30 minutes", s.Service, o.modelString()),
			"description": o.ModelMetric + " is {{ $value | printf \"%.3f\" }} against the model's training baseline, over the " + o.Name +
				" objective (" + o.modelString() + "). Run delayctl evaluate on recent outcomes; retrain if quality dropped.",
		},
	}}}
}
