package slo

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"gopkg.in/yaml.v3"
)

// RawSLI is the SLI of a ratio objective (KindRatio): PromQL written in a sloth or OpenSLO
// spec that does not read delayctl's own metrics as delayctl would. The templates contain
// WindowVar where the rate window goes, as sloth's queries do.
type RawSLI struct {
	// Source names where the SLI was written, e.g. "sloth slos[1].sli.events".
	Source string
	// Total is the template of all valid events; Bad or Good (exactly one) of the bad or
	// good ones. Empty when ErrorRatio is set.
	Total, Bad, Good string
	// ErrorRatio is the template of the error ratio itself (sloth's sli.raw).
	ErrorRatio string
	// PerSecond marks templates that give events per second (rates), so that counts over a
	// range are the rate times its seconds; false for templates that count events in the
	// window themselves (OpenSLO threshold data points).
	PerSecond bool
	// Sample and SampleTotal are the good and all events of one evaluation, taken every
	// SampleEvery: a threshold comparison (1 good, 0 bad; SampleTotal empty, each sample
	// is one event) or a gauge of good and total rates (OpenSLO counter: false). With
	// Recorded (the objective's label matchers) set, `slo rules` records them once per
	// SampleEvery and sums the recorded samples over each window, rather than re-running
	// them at every step of a window-long subquery at every evaluation.
	Sample, SampleTotal string
	SampleEvery         time.Duration
	Recorded            string
}

// The recording rules of a sampled ratio objective's good and total events.
const (
	recordSample      = "slo:sli_sample:good"
	recordSampleTotal = "slo:sli_sample:total"
)

// WindowVar is the placeholder of the rate window in RawSLI templates (sloth's syntax).
const WindowVar = "{{.window}}"

var windowVarRe = regexp.MustCompile(`\{\{-?\s*\.window\s*-?\}\}`)

// normaliseWindowVar rewrites the spellings of sloth's window template ("{{ .window }}")
// to WindowVar and refuses any other template action.
func normaliseWindowVar(q string) (string, error) {
	q = windowVarRe.ReplaceAllString(strings.TrimSpace(q), WindowVar)
	if rest := strings.ReplaceAll(q, WindowVar, ""); strings.Contains(rest, "{{") {
		return "", fmt.Errorf("query %q uses a template other than {{.window}}, which has no mapping", q)
	}
	return q, nil
}

func renderWindow(tmpl string, w time.Duration) string {
	return strings.ReplaceAll(tmpl, WindowVar, promDuration(w))
}

// rawErrorRatio is a ratio objective's error ratio over w: the SLI error ratio that `slo
// rules` records for it. It is never NaN: without events it has no sample, so that idle
// minutes do not poison the window's average; with events and no bad ones it is 0, even
// when the bad query returns nothing. A raw error ratio is only filtered for NaN.
func rawErrorRatio(o Objective, w time.Duration) (string, error) {
	r := o.Raw
	switch {
	case r == nil:
		return "", fmt.Errorf("objective %q: ratio objective without PromQL", o.Name)
	case r.ErrorRatio != "":
		return fmt.Sprintf("(\n  (%s) >= 0\n)", renderWindow(r.ErrorRatio, w)), nil
	}
	if r.Recorded != "" {
		ws := promDuration(w)
		good := recordSample + r.Recorded
		total := fmt.Sprintf("sum(count_over_time(%s[%s]))", good, ws)
		if r.SampleTotal != "" {
			total = fmt.Sprintf("sum(sum_over_time(%s[%s]))", recordSampleTotal+r.Recorded, ws)
		}
		return fmt.Sprintf("(\n  1 - (\n    sum(sum_over_time(%s[%s]))\n  /\n    (%s > 0)\n  )\n)", good, ws, total), nil
	}
	total := renderWindow(r.Total, w)
	if r.Bad != "" {
		return fmt.Sprintf("(\n  (sum(%s) or 0 * sum(%s))\n/\n  (sum(%s) > 0)\n)", renderWindow(r.Bad, w), total, total), nil
	}
	return fmt.Sprintf("(\n  1 - (\n    (sum(%s) or 0 * sum(%s))\n  /\n    (sum(%s) > 0)\n  )\n)", renderWindow(r.Good, w), total, total), nil
}

// rawMeasure is what `slo report --prometheus` asks for a ratio objective over w: the
// total and good events (a rate times the range's seconds for per-second templates).
func rawMeasure(o Objective, w time.Duration) (measureQueries, error) {
	r := o.Raw
	if r == nil {
		return measureQueries{}, fmt.Errorf("objective %q: ratio objective without PromQL", o.Name)
	}
	scale := ""
	if r.PerSecond {
		scale = " * " + formatFloat(w.Seconds())
	}
	total := fmt.Sprintf("sum(%s)", renderWindow(r.Total, w))
	switch {
	case r.ErrorRatio != "":
		return measureQueries{Total: "vector(1)", Good: fmt.Sprintf("1 - sum(%s)", renderWindow(r.ErrorRatio, w))}, nil
	case r.Bad != "":
		return measureQueries{
			Total: total + scale,
			Good:  fmt.Sprintf("(%s - (sum(%s) or vector(0)))%s", total, renderWindow(r.Bad, w), scale),
		}, nil
	}
	return measureQueries{Total: total + scale, Good: fmt.Sprintf("(sum(%s) or vector(0))%s", renderWindow(r.Good, w), scale)}, nil
}

// rawNote says what a ratio objective's numbers are when they are not event counts.
func rawNote(o Objective) string {
	if o.Raw.ErrorRatio != "" {
		return "the PromQL is an error ratio, so the events are shares of 1, not counts"
	}
	return ""
}

// promQLOnly is what results and scrapes measure of a ratio objective: nothing. Run refuses
// such a spec for them; bench capacity's step judge skips the objective and says why.
var promQLOnly = Measurement{Value: math.NaN(), Skipped: true, Note: "its SLI is PromQL written in the spec: only --prometheus evaluates it"}

// ErrPromQLOnly marks an SLO whose objectives include PromQL that only a Prometheus server
// can evaluate, judged against results files or scrapes.
var ErrPromQLOnly = errors.New("SLI is PromQL written in the spec")

// requireNative refuses ratio objectives for a source that is not Prometheus: results files
// and /metrics scrapes know delayctl's metrics, not arbitrary PromQL.
func requireNative(s *SLO, source string) error {
	var bad []string
	for _, o := range s.Objectives {
		if o.Kind == KindRatio {
			bad = append(bad, fmt.Sprintf("%q (%s)", o.Name, o.Raw.Source))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return inputerr.Wrap(fmt.Errorf("objective %s: %w, which only a Prometheus server can evaluate, not %s: use --prometheus (and `slo rules`), or write the SLI over delayctl's metrics so it maps onto a delayctl objective (docs/SLO.md)",
		strings.Join(bad, ", "), ErrPromQLOnly, source))
}

// Alerting carries a sloth SLO's alerting block onto the generated alerts.
type Alerting struct {
	// Name replaces the alert name of both severities.
	Name string
	// Labels and Annotations are added to both alerts.
	Labels, Annotations map[string]string
	// Page and Ticket add to, or disable, one severity's alert.
	Page, Ticket AlertOverride
}

// AlertOverride is a sloth page_alert or ticket_alert block.
type AlertOverride struct {
	Disable             bool
	Labels, Annotations map[string]string
}

// foreignGroups adds to an objective's rule groups what a foreign spec asks for: the group
// that records a sampled SLI's events ahead of the others, and the renamed, relabelled or
// dropped alerts of a sloth alerting block (the severity label delayctl wrote picks the
// override).
func foreignGroups(groups []ruleGroup, o Objective, base map[string]string) []ruleGroup {
	if r := o.Raw; r != nil && r.Recorded != "" {
		samples := ruleGroup{Name: groupName(base["service"], o.Name) + "-sli-samples", Interval: promDuration(r.SampleEvery),
			Rules: []rule{{Record: recordSample, Expr: r.Sample, Labels: base}}}
		if r.SampleTotal != "" {
			samples.Rules = append(samples.Rules, rule{Record: recordSampleTotal, Expr: r.SampleTotal, Labels: base})
		}
		groups = append([]ruleGroup{samples}, groups...)
	}
	a := o.Alerting
	if a == nil {
		return groups
	}
	for gi := range groups {
		var kept []rule
		for _, r := range groups[gi].Rules {
			if r.Alert == "" {
				kept = append(kept, r)
				continue
			}
			ov := a.Ticket
			if r.Labels["severity"] == "page" {
				ov = a.Page
			}
			if ov.Disable {
				continue
			}
			if a.Name != "" {
				r.Alert = a.Name
			}
			r.Labels = mergeMaps(r.Labels, a.Labels, ov.Labels)
			r.Annotations = mergeMaps(r.Annotations, a.Annotations, ov.Annotations)
			kept = append(kept, r)
		}
		groups[gi].Rules = kept
	}
	return groups
}

func mergeMaps(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// LoadForeign reads an SLO written for another tool: a sloth spec ("version:
// prometheus/v1") or OpenSLO v1 objects ("apiVersion: openslo/v1", one or more YAML
// documents). foreign is false, with no error, for anything else (delayctl's own format).
// Errors are *SpecError values naming the field path and line.
func LoadForeign(data []byte) (s *SLO, foreign bool, err error) {
	if len(data) > maxSpecBytes {
		return nil, false, nil // LoadSpec says so
	}
	var head struct {
		Version    string `yaml:"version"`
		APIVersion string `yaml:"apiVersion"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if dec.Decode(&head) != nil {
		return nil, false, nil
	}
	switch {
	case head.Version == slothVersion:
		s, err = loadSloth(data)
		return s, true, err
	case strings.HasPrefix(head.APIVersion, "openslo/"):
		s, err = loadOpenSLO(data)
		return s, true, err
	}
	return nil, false, nil
}

// decodeChecked decodes one YAML node into v after checking its fields against v's type,
// recording each field's line under prefix.
func decodeChecked(n *yaml.Node, v any, prefix string, lines Lines) error {
	if err := checkFields(n, reflect.TypeOf(v), prefix, lines); err != nil {
		return err
	}
	if err := n.Decode(v); err != nil {
		se := yamlError(err)
		if se.Path == "" {
			se.Path = prefix
		}
		return se
	}
	return nil
}

// specFail builds path-prefixed SpecErrors that cite the line of the field.
func specFail(lines Lines) func(path, format string, args ...any) error {
	return func(path, format string, args ...any) error {
		line := lines[path]
		for p := path; line == 0 && p != ""; {
			i := strings.LastIndexAny(p, ".[")
			if i < 0 {
				break
			}
			p = p[:i]
			line = lines[p]
		}
		return &SpecError{Line: line, Path: path, Err: fmt.Errorf(format, args...)}
	}
}

// checkName checks an objective name the way delayctl's own format does.
func checkName(name string) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("name %q must be lower case letters, digits, '-' or '_' to label delayctl's rules", name)
	}
	return nil
}

// finishForeign validates what a foreign spec maps to: objective names unique, labels
// usable. paths[i] names where objective i was written and labelPaths[i] its labels.
func finishForeign(s *SLO, paths, labelPaths []string, fail func(string, string, ...any) error) (*SLO, error) {
	if s.Service == "" {
		return nil, fail("service", "service is required")
	}
	seen := map[string]string{}
	for i, o := range s.Objectives {
		if prev, dup := seen[o.Name]; dup {
			return nil, fail(paths[i], "objective name %q is already used by %s", o.Name, prev)
		}
		seen[o.Name] = paths[i]
		for k := range o.Labels {
			if err := checkLabelName(k); err != nil {
				return nil, fail(labelPaths[i]+"."+k, "%w", err)
			}
		}
	}
	for k := range s.Labels {
		if err := checkLabelName(k); err != nil {
			return nil, fail("labels."+k, "%w", err)
		}
	}
	if s.Routes == nil {
		s.RoutesExpr = DefaultRoutes
		s.Routes = regexp.MustCompile("^(?:" + DefaultRoutes + ")$")
	}
	return s, nil
}

// eventObjective maps an event ratio from a foreign spec onto a delayctl availability or
// latency objective when it reads delayctl's metrics as delayctl does (and selects the same
// routes as the objectives mapped before it), and onto a ratio objective otherwise.
func eventObjective(s *SLO, name, desc string, target float64, raw RawSLI) Objective {
	o := Objective{Name: name, Description: desc, Target: target}
	if raw.ErrorRatio == "" {
		if n, ok := recognise(raw.Total, raw.Bad, raw.Good); ok && (s.Routes == nil || s.RoutesExpr == n.routes) {
			if s.Routes == nil {
				s.RoutesExpr = n.routes
				s.Routes = regexp.MustCompile("^(?:" + n.routes + ")$")
			}
			o.Kind, o.RateLimitedBad, o.ClientErrorsBad, o.Threshold = n.kind, n.rateLimitedBad, n.clientErrorsBad, n.threshold
			return o
		}
	}
	o.Kind, o.Raw = KindRatio, &raw
	return o
}
