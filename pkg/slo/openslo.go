package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// opensloVersion is the apiVersion of the OpenSLO objects LoadForeign reads.
const opensloVersion = "openslo/v1"

// oslObject is the envelope of every OpenSLO v1 object.
type oslObject struct {
	APIVersion string      `yaml:"apiVersion"`
	Kind       string      `yaml:"kind"`
	Metadata   oslMetadata `yaml:"metadata"`
	Spec       yaml.Node   `yaml:"spec"`
}

type oslMetadata struct {
	Name        string            `yaml:"name"`
	DisplayName string            `yaml:"displayName,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type oslSLOSpec struct {
	Description     string          `yaml:"description,omitempty"`
	Service         string          `yaml:"service"`
	Indicator       *oslSLI         `yaml:"indicator,omitempty"`
	IndicatorRef    string          `yaml:"indicatorRef,omitempty"`
	TimeWindow      []oslTimeWindow `yaml:"timeWindow,omitempty"`
	BudgetingMethod string          `yaml:"budgetingMethod,omitempty"`
	Objectives      []oslObjective  `yaml:"objectives"`
	AlertPolicies   yaml.Node       `yaml:"alertPolicies,omitempty"`
}

// oslSLI is an SLI object, inline (indicator) or on its own (kind SLI).
type oslSLI struct {
	Metadata oslMetadata `yaml:"metadata"`
	Spec     oslSLISpec  `yaml:"spec"`
}

type oslSLISpec struct {
	Description     string     `yaml:"description,omitempty"`
	ThresholdMetric *oslMetric `yaml:"thresholdMetric,omitempty"`
	RatioMetric     *oslRatio  `yaml:"ratioMetric,omitempty"`
}

type oslRatio struct {
	Counter bool       `yaml:"counter,omitempty"`
	Good    *oslMetric `yaml:"good,omitempty"`
	Bad     *oslMetric `yaml:"bad,omitempty"`
	Total   *oslMetric `yaml:"total,omitempty"`
	RawType string     `yaml:"rawType,omitempty"`
	Raw     *oslMetric `yaml:"raw,omitempty"`
}

type oslMetric struct {
	MetricSource oslSource `yaml:"metricSource"`
}

type oslSource struct {
	MetricSourceRef string            `yaml:"metricSourceRef,omitempty"`
	Type            string            `yaml:"type,omitempty"`
	Spec            map[string]string `yaml:"spec"`
}

type oslTimeWindow struct {
	Duration  string    `yaml:"duration"`
	IsRolling bool      `yaml:"isRolling,omitempty"`
	Calendar  yaml.Node `yaml:"calendar,omitempty"`
}

type oslObjective struct {
	DisplayName     string    `yaml:"displayName,omitempty"`
	Op              string    `yaml:"op,omitempty"`
	Value           *float64  `yaml:"value,omitempty"`
	Target          *float64  `yaml:"target,omitempty"`
	TargetPercent   *float64  `yaml:"targetPercent,omitempty"`
	TimeSliceTarget *float64  `yaml:"timeSliceTarget,omitempty"`
	TimeSliceWindow string    `yaml:"timeSliceWindow,omitempty"`
	Indicator       yaml.Node `yaml:"indicator,omitempty"`
	IndicatorRef    string    `yaml:"indicatorRef,omitempty"`
	CompositeWeight *float64  `yaml:"compositeWeight,omitempty"`
}

// oslOps maps OpenSLO's comparison operators onto PromQL's.
var oslOps = map[string]string{"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}

// thresholdStep is how often an OpenSLO threshold metric is sampled under Occurrences
// budgeting: each sample is one event, good when it compares true.
const thresholdStep = time.Minute

// documents parses every YAML document in data and returns their root nodes.
func documents(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, yamlError(err)
		}
		root := &doc
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		out = append(out, root)
	}
	if len(out) == 0 {
		return nil, &SpecError{Err: errors.New("empty spec")}
	}
	return out, nil
}

// loadOpenSLO maps OpenSLO v1 objects onto an SLO. Every SLO object's objectives become
// delayctl objectives; SLI objects are read for indicatorRef; Service objects are
// accepted and carry nothing delayctl needs; every other kind is refused.
func loadOpenSLO(data []byte) (*SLO, error) {
	docs, err := documents(data)
	if err != nil {
		return nil, err
	}
	lines := Lines{}
	fail := specFail(lines)
	type sloDoc struct {
		prefix string
		meta   oslMetadata
		spec   oslSLOSpec
	}
	var slos []sloDoc
	slis := map[string]oslSLI{}
	for i, doc := range docs {
		prefix := ""
		if len(docs) > 1 {
			prefix = fmt.Sprintf("documents[%d]", i)
		}
		var obj oslObject
		if err := decodeChecked(doc, &obj, prefix, lines); err != nil {
			return nil, err
		}
		if obj.APIVersion != opensloVersion {
			return nil, fail(joinPath(prefix, "apiVersion"), "apiVersion %q is not read: delayctl reads OpenSLO %q", obj.APIVersion, opensloVersion)
		}
		specPath := joinPath(prefix, "spec")
		switch obj.Kind {
		case "SLO":
			var spec oslSLOSpec
			if err := decodeChecked(&obj.Spec, &spec, specPath, lines); err != nil {
				return nil, err
			}
			slos = append(slos, sloDoc{prefix, obj.Metadata, spec})
		case "SLI":
			var spec oslSLISpec
			if err := decodeChecked(&obj.Spec, &spec, specPath, lines); err != nil {
				return nil, err
			}
			slis[obj.Metadata.Name] = oslSLI{Metadata: obj.Metadata, Spec: spec}
		case "Service":
		default:
			return nil, fail(joinPath(prefix, "kind"), "kind %q has no mapping in delayctl: it reads SLO, SLI and Service objects and writes its own alerts", obj.Kind)
		}
	}
	if len(slos) == 0 {
		return nil, fail("kind", "no object of kind SLO")
	}
	s := &SLO{}
	var paths, labelPaths []string
	windowFrom := ""
	for _, d := range slos {
		p := joinPath(d.prefix, "spec")
		sp := d.spec
		service := strings.TrimSpace(sp.Service)
		if s.Service != "" && service != s.Service {
			return nil, fail(p+".service", "service %q differs from %q: delayctl judges one service per file", service, s.Service)
		}
		s.Service = service
		if sp.AlertPolicies.Kind != 0 {
			return nil, fail(p+".alertPolicies", "alert policies have no mapping: delayctl writes its own multi-window burn-rate alerts (`slo rules`); remove alertPolicies")
		}
		window, err := oslWindow(sp.TimeWindow, p, fail)
		if err != nil {
			return nil, err
		}
		if windowFrom != "" && window != s.Window {
			return nil, fail(p+".timeWindow", "time window %s differs from %s (%s): delayctl counts every objective of a file over one window", formatWindow(window), formatWindow(s.Window), windowFrom)
		}
		s.Window, windowFrom = window, p+".timeWindow"
		sli, sliPath, err := oslIndicator(sp, slis, p, fail)
		if err != nil {
			return nil, err
		}
		if err := checkName(d.meta.Name); err != nil {
			return nil, fail(joinPath(d.prefix, "metadata.name"), "%w", err)
		}
		if len(sp.Objectives) == 0 {
			return nil, fail(p+".objectives", "at least one objective is required")
		}
		desc := sp.Description
		if desc == "" {
			desc = d.meta.DisplayName
		}
		for j, ob := range sp.Objectives {
			op := fmt.Sprintf("%s.objectives[%d]", p, j)
			name := d.meta.Name
			if len(sp.Objectives) > 1 {
				name = fmt.Sprintf("%s-%d", name, j)
			}
			o, err := oslObjectiveOf(s, name, desc, ob, sli, sliPath, sp.BudgetingMethod, op, p, fail)
			if err != nil {
				return nil, err
			}
			o.Labels = d.meta.Labels
			s.Objectives = append(s.Objectives, o)
			paths, labelPaths = append(paths, op), append(labelPaths, joinPath(d.prefix, "metadata.labels"))
		}
	}
	return finishForeign(s, paths, labelPaths, fail)
}

var oslDurationRe = regexp.MustCompile(`^([0-9]+)([mhdwMQY])$`)

// oslWindow reads the one rolling time window of an SLO; 30 days when none is given.
func oslWindow(tw []oslTimeWindow, p string, fail func(string, string, ...any) error) (time.Duration, error) {
	switch len(tw) {
	case 0:
		return DefaultWindow, nil
	case 1:
	default:
		return 0, fail(p+".timeWindow", "exactly one time window is allowed, got %d", len(tw))
	}
	w := tw[0]
	wp := p + ".timeWindow[0]"
	if w.Calendar.Kind != 0 || !w.IsRolling {
		return 0, fail(wp, "calendar windows have no mapping: delayctl's budgets are counted over a rolling window (isRolling: true)")
	}
	m := oslDurationRe.FindStringSubmatch(strings.TrimSpace(w.Duration))
	if m == nil {
		return 0, fail(wp+".duration", "invalid duration %q: want a number and one of m, h, d, w (e.g. 28d)", w.Duration)
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[2]]
	if unit == 0 {
		return 0, fail(wp+".duration", "duration %q has no fixed length: a rolling window of months, quarters or years has no mapping; write it in days (e.g. 30d)", w.Duration)
	}
	if n <= 0 {
		return 0, fail(wp+".duration", "duration %q must be greater than zero", w.Duration)
	}
	return time.Duration(n) * unit, nil
}

// oslIndicator resolves an SLO's inline indicator or its indicatorRef.
func oslIndicator(sp oslSLOSpec, slis map[string]oslSLI, p string, fail func(string, string, ...any) error) (oslSLISpec, string, error) {
	switch {
	case sp.Indicator != nil && sp.IndicatorRef != "":
		return oslSLISpec{}, "", fail(p+".indicatorRef", "give indicator or indicatorRef, not both")
	case sp.Indicator != nil:
		return sp.Indicator.Spec, p + ".indicator.spec", nil
	case sp.IndicatorRef != "":
		sli, ok := slis[sp.IndicatorRef]
		if !ok {
			return oslSLISpec{}, "", fail(p+".indicatorRef", "no SLI object named %q in this file", sp.IndicatorRef)
		}
		return sli.Spec, fmt.Sprintf("SLI %q spec", sp.IndicatorRef), nil
	}
	return oslSLISpec{}, "", fail(p+".indicator", "an indicator or indicatorRef is required")
}

// oslObjectiveOf maps one objective of an OpenSLO SLO.
func oslObjectiveOf(s *SLO, name, desc string, ob oslObjective, sli oslSLISpec, sliPath, method, op, p string, fail func(string, string, ...any) error) (Objective, error) {
	if ob.Indicator.Kind != 0 || ob.IndicatorRef != "" || ob.CompositeWeight != nil {
		return Objective{}, fail(op, "composite SLOs (an indicator per objective) have no mapping in delayctl")
	}
	var target float64
	switch {
	case ob.Target != nil && ob.TargetPercent != nil:
		return Objective{}, fail(op+".targetPercent", "give target or targetPercent, not both")
	case ob.Target != nil:
		if t := *ob.Target; math.IsNaN(t) || t <= 0 || t > 1 {
			return Objective{}, fail(op+".target", "target %s is outside (0, 1]", formatFloat(t))
		}
		target = *ob.Target
	case ob.TargetPercent != nil:
		if t := *ob.TargetPercent; math.IsNaN(t) || t <= 0 || t > 100 {
			return Objective{}, fail(op+".targetPercent", "targetPercent %s is outside (0, 100]", formatFloat(t))
		}
		target = math.Round(*ob.TargetPercent*1e10) / 1e12
	default:
		return Objective{}, fail(op+".target", "target (0-1) or targetPercent is required")
	}
	raw := RawSLI{Source: "OpenSLO " + sliPath}
	switch {
	case sli.RatioMetric != nil && sli.ThresholdMetric != nil:
		return Objective{}, fail(sliPath, "give ratioMetric or thresholdMetric, not both")
	case sli.RatioMetric != nil:
		r := sli.RatioMetric
		rp := sliPath + ".ratioMetric"
		if method != "" && method != "Occurrences" {
			return Objective{}, fail(p+".budgetingMethod", "budgeting method %q has no mapping for a ratio metric: delayctl budgets events (Occurrences)", method)
		}
		if ob.Op != "" || ob.Value != nil {
			return Objective{}, fail(op+".op", "op and value belong to threshold metrics; a ratio metric's objective is its target")
		}
		if r.Raw != nil || r.RawType != "" {
			return Objective{}, fail(rp+".raw", "raw ratio metrics have no mapping in delayctl: give good or bad, and total")
		}
		if r.Total == nil || (r.Good == nil) == (r.Bad == nil) {
			return Objective{}, fail(rp, "give total and exactly one of good and bad")
		}
		raw.PerSecond = true
		var err error
		if raw.Total, err = oslRatioQuery(r.Total, r.Counter, rp+".total", fail); err != nil {
			return Objective{}, err
		}
		if r.Good != nil {
			raw.Good, err = oslRatioQuery(r.Good, r.Counter, rp+".good", fail)
		} else {
			raw.Bad, err = oslRatioQuery(r.Bad, r.Counter, rp+".bad", fail)
		}
		if err != nil {
			return Objective{}, err
		}
		if !r.Counter {
			sampleRates(&raw, r, s.Service, name)
		}
	case sli.ThresholdMetric != nil:
		tp := sliPath + ".thresholdMetric"
		cmp, ok := oslOps[ob.Op]
		if !ok {
			return Objective{}, fail(op+".op", "op %q: a threshold metric's objective needs op lt, lte, gt or gte", ob.Op)
		}
		if ob.Value == nil || math.IsNaN(*ob.Value) || math.IsInf(*ob.Value, 0) {
			return Objective{}, fail(op+".value", "a threshold metric's objective needs a finite value")
		}
		step := thresholdStep
		switch method {
		case "", "Occurrences":
		case "Timeslices":
			if ob.TimeSliceWindow == "" {
				return Objective{}, fail(op+".timeSliceWindow", "Timeslices budgeting needs a timeSliceWindow (e.g. 1m)")
			}
			d, err := parseDuration(ob.TimeSliceWindow)
			if err != nil {
				return Objective{}, fail(op+".timeSliceWindow", "%w", err)
			}
			step = d
		default:
			return Objective{}, fail(p+".budgetingMethod", "budgeting method %q has no mapping for a threshold metric: use Occurrences or Timeslices", method)
		}
		q, err := oslQuery(sli.ThresholdMetric, tp, fail)
		if err != nil {
			return Objective{}, err
		}
		// A NaN sample (histogram_quantile of an idle minute) is no event, not a bad one.
		raw.Sample = fmt.Sprintf("((%s) %s bool %s) unless ((%s) != (%s))", q, cmp, formatFloat(*ob.Value), q, q)
		raw.SampleEvery = step
		raw.Recorded = fmt.Sprintf("{service=%q,slo=%q}", s.Service, name)
		good := fmt.Sprintf("(%s)[%s:%s]", raw.Sample, WindowVar, promDuration(step))
		raw.Good = "sum(sum_over_time(" + good + "))"
		raw.Total = "sum(count_over_time(" + good + "))"
		if _, err := promParser.ParseExpr(renderWindow(raw.Total, time.Hour)); err != nil {
			return Objective{}, fail(tp+".metricSource.spec", "query %q cannot be compared per sample: %w", q, err)
		}
	default:
		return Objective{}, fail(sliPath, "a ratioMetric or thresholdMetric is required")
	}
	return eventObjective(s, name, desc, target, raw), nil
}

// sampleRates has `slo rules` record the good and total rates of a gauge ratio metric
// (counter: false) once a minute, so that each window sums recorded samples.
func sampleRates(raw *RawSLI, r *oslRatio, service, name string) {
	side := r.Good
	if side == nil {
		side = r.Bad
	}
	total, part := strings.TrimSpace(r.Total.MetricSource.query()), strings.TrimSpace(side.MetricSource.query())
	if strings.Contains(total+part, "{{") {
		return // the queries range over the window themselves
	}
	raw.SampleTotal = fmt.Sprintf("sum(%s)", total)
	if r.Good != nil {
		raw.Sample = fmt.Sprintf("sum(%s) or 0 * %s", part, raw.SampleTotal)
	} else {
		raw.Sample = fmt.Sprintf("%s - (sum(%s) or 0 * %s)", raw.SampleTotal, part, raw.SampleTotal)
	}
	raw.SampleEvery = thresholdStep
	raw.Recorded = fmt.Sprintf("{service=%q,slo=%q}", service, name)
}

func (src oslSource) query() string {
	if q, ok := src.Spec["query"]; ok {
		return q
	}
	return src.Spec["promql"]
}

// oslQuery reads a Prometheus metric source's query.
func oslQuery(m *oslMetric, mp string, fail func(string, string, ...any) error) (string, error) {
	src := m.MetricSource
	sp := mp + ".metricSource"
	if t := strings.ToLower(src.Type); t != "" && t != "prometheus" {
		return "", fail(sp+".type", "metric source type %q has no mapping: delayctl reads Prometheus", src.Type)
	}
	var q, key string
	for k, v := range src.Spec {
		switch k {
		case "query", "promql":
			if q != "" {
				return "", fail(sp+".spec."+k, "give query or promql, not both")
			}
			q, key = strings.TrimSpace(v), k
		default:
			return "", fail(sp+".spec."+k, "unknown field %q of a Prometheus metric source (known fields: promql, query)", k)
		}
	}
	if q == "" {
		return "", fail(sp+".spec", "a PromQL query (spec.query) is required")
	}
	q, err := normaliseWindowVar(q)
	if err != nil {
		return "", fail(sp+".spec."+key, "%w", err)
	}
	if _, err := promParser.ParseExpr(renderWindow(q, time.Hour)); err != nil {
		return "", fail(sp+".spec."+key, "query %q is not valid PromQL: %w", q, err)
	}
	return q, nil
}

// oslRatioQuery makes the per-second template of one side of a ratio metric. A counter
// (counter: true) must be a plain selector, rated over each window, unless it already ranges
// over {{.window}}; a gauge of rates (counter: false) is averaged over the window.
func oslRatioQuery(m *oslMetric, counter bool, mp string, fail func(string, string, ...any) error) (string, error) {
	q, err := oslQuery(m, mp, fail)
	if err != nil {
		return "", err
	}
	if strings.Contains(q, WindowVar) {
		return q, nil
	}
	if !counter {
		return fmt.Sprintf("sum(avg_over_time((%s)[%s:%s]))", q, WindowVar, promDuration(thresholdStep)), nil
	}
	if _, err := promParser.ParseMetricSelector(q); err != nil {
		return "", fail(mp+".metricSource.spec", "counter query %q must be a metric selector such as http_requests_total{code=~\"5..\"} (delayctl applies rate() over each window) or range over {{.window}}", q)
	}
	return fmt.Sprintf("sum(rate(%s[%s]))", q, WindowVar), nil
}
