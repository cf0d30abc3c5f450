package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Defaults applied by Compile when the spec leaves a field out.
const (
	// DefaultWindow is the SLO period when the spec gives none.
	DefaultWindow = 30 * 24 * time.Hour
	// DefaultRoutes selects the prediction routes delayctl serve exposes, as request paths
	// and as the route label of its metrics.
	DefaultRoutes = `/|/predict|/v2/models/[^/]+/infer`
)

// Kind is the kind of an objective.
type Kind string

// The kinds of objective.
const (
	KindAvailability Kind = "availability"
	KindLatency      Kind = "latency"
	KindThroughput   Kind = "throughput"
	KindMemory       Kind = "memory"
	// KindRatio is an event ratio written as PromQL in a sloth or OpenSLO spec, with no
	// mapping onto delayctl's own metrics: it is measured only by Prometheus.
	KindRatio Kind = "ratio"
)

// SLO is a validated SLO file: what Compile makes of a Spec. It has no yaml tags and every
// value is parsed; build one with Compile, Load or LoadFile.
type SLO struct {
	Service string
	// Window is the SLO period over which budgets are counted.
	Window time.Duration
	// Routes is the anchored form of RoutesExpr.
	Routes *regexp.Regexp
	// RoutesExpr is the routes regular expression as written (unanchored, as PromQL takes it).
	RoutesExpr string
	Labels     map[string]string
	Objectives []Objective
}

// Objective is one validated objective. Which fields matter depends on Kind.
type Objective struct {
	Name        string
	Description string
	Kind        Kind
	// Target is the share of good events in (0, 1], for availability and latency.
	Target float64
	// RateLimitedBad and ClientErrorsBad widen what availability counts as bad.
	RateLimitedBad  bool
	ClientErrorsBad bool
	// Threshold is the latency bound; requests at or under it are fast.
	Threshold time.Duration
	// Percentile is true for the percentile form ("p90 <= 400ms"), false for the threshold
	// form ("99% <= 300ms"). Both are judged as Target of requests <= Threshold.
	Percentile bool
	// MinRPS is the throughput floor in successful requests per second.
	MinRPS float64
	// MaxBytes is the memory ceiling.
	MaxBytes float64
	// Raw holds the PromQL of a ratio objective (KindRatio).
	Raw *RawSLI
	// Labels are extra labels of this objective's rules (a sloth SLO's labels, an
	// OpenSLO SLO's metadata.labels).
	Labels map[string]string
	// Alerting renames and relabels the generated alerts, as a sloth spec asks; nil keeps
	// delayctl's own.
	Alerting *Alerting
	// ModelMetric is a model objective's health metric, bounded by ModelBound from below
	// (ModelAtLeast) or above; ModelVariable narrows feature_psi to one variable.
	ModelMetric   string
	ModelBound    float64
	ModelAtLeast  bool
	ModelVariable string
}

// EventBased reports whether the objective is a ratio of good to valid events and so has an
// error budget (availability and latency).
func (o Objective) EventBased() bool {
	return o.Kind == KindAvailability || o.Kind == KindLatency || o.Kind == KindRatio
}

// String states the objective in one short phrase, e.g. "p90 <= 400ms" or
// "availability >= 99.95%".
func (o Objective) String() string {
	switch o.Kind {
	case KindAvailability:
		return "good requests >= " + FormatPercent(o.Target)
	case KindLatency:
		if o.Percentile {
			return PercentileName(o.Target) + " <= " + FormatDuration(o.Threshold)
		}
		return FormatPercent(o.Target) + " of requests <= " + FormatDuration(o.Threshold)
	case KindThroughput:
		return "successful req/s >= " + formatFloat(o.MinRPS)
	case KindMemory:
		return "resident memory <= " + FormatBytes(o.MaxBytes)
	case KindRatio:
		return "good events >= " + FormatPercent(o.Target) + " (" + o.Raw.Source + ")"
	case KindModel:
		return o.modelString()
	}
	return string(o.Kind)
}

// BadStatus reports whether an HTTP status code makes a request bad for an availability
// objective. Code 0 (no response) is always bad.
func (o Objective) BadStatus(code int) bool {
	switch {
	case code == 0 || code >= 500:
		return true
	case code == 429:
		return o.RateLimitedBad || o.ClientErrorsBad
	case code >= 400:
		return o.ClientErrorsBad
	}
	return false
}

// LoadFile reads, checks and compiles the SLO file at path. Errors name the file, the line
// and the field.
func LoadFile(path string) (*SLO, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &SpecError{File: path, Err: fmt.Errorf("could not open slo spec: %w", err)}
	}
	defer f.Close()
	return Load(f, path)
}

// Load reads, checks and compiles one SLO document; name labels errors (a file name).
// Besides delayctl's own format it reads sloth "prometheus/v1" specs and OpenSLO v1 SLOs,
// told apart by their version or apiVersion field (see LoadForeign).
func Load(r io.Reader, name string) (*SLO, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSpecBytes+1))
	if err != nil {
		return nil, &SpecError{File: name, Err: fmt.Errorf("could not read slo spec: %w", err)}
	}
	s, foreign, err := LoadForeign(data)
	if !foreign {
		s, err = loadOwn(data)
	}
	var se *SpecError
	if errors.As(err, &se) {
		se.File = name
	}
	return s, err
}

func loadOwn(data []byte) (*SLO, error) {
	spec, lines, err := LoadSpec(bytes.NewReader(data))
	if err == nil {
		var s *SLO
		if s, err = compile(spec, lines); err == nil {
			return s, nil
		}
	}
	return nil, err
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func compile(spec Spec, lines Lines) (*SLO, error) {
	fail := func(path string, format string, args ...any) error {
		return &SpecError{Line: lines[path], Path: path, Err: fmt.Errorf(format, args...)}
	}
	if spec.Version != Version && spec.Version != LegacyVersion {
		return nil, fail("version", "invalid spec version %q, should be %q", spec.Version, Version)
	}
	s := &SLO{Service: strings.TrimSpace(spec.Service), Window: DefaultWindow, RoutesExpr: DefaultRoutes, Labels: spec.Labels}
	if s.Service == "" {
		return nil, fail("service", "service is required")
	}
	if !model.LabelValue(s.Service).IsValid() {
		return nil, fail("service", "service %q is not valid UTF-8", s.Service)
	}
	if spec.Window != "" {
		w, err := parseDuration(spec.Window)
		if err != nil {
			return nil, fail("window", "%w", err)
		}
		s.Window = w
	}
	if spec.Routes != "" {
		s.RoutesExpr = spec.Routes
	}
	re, err := regexp.Compile("^(?:" + s.RoutesExpr + ")$")
	if err != nil {
		return nil, fail("routes", "invalid regular expression %q: %w", s.RoutesExpr, err)
	}
	s.Routes = re
	for k := range spec.Labels {
		if err := checkLabelName(k); err != nil {
			return nil, fail("labels."+k, "%w", err)
		}
	}
	if len(spec.Objectives) == 0 {
		return nil, fail("objectives", "at least one objective is required")
	}
	seen := map[string]string{}
	for i, os := range spec.Objectives {
		path := fmt.Sprintf("objectives[%d]", i)
		o, err := compileObjective(os, path, fail)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[o.Name]; dup {
			return nil, fail(path+".name", "name %q is already used by %s", o.Name, prev)
		}
		seen[o.Name] = path
		s.Objectives = append(s.Objectives, o)
	}
	return s, nil
}

// checkLabelName refuses a rule label name Prometheus would reject or that delayctl sets.
func checkLabelName(k string) error {
	if !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
		return fmt.Errorf("invalid label name %q", k)
	}
	if k == "service" || k == "slo" || k == "severity" || k == "window" {
		return fmt.Errorf("label %q is set by delayctl itself", k)
	}
	return nil
}

func compileObjective(os ObjectiveSpec, path string, fail func(string, string, ...any) error) (Objective, error) {
	o := Objective{Name: os.Name, Description: os.Description}
	if o.Name == "" {
		return o, fail(path+".name", "name is required")
	}
	if !nameRe.MatchString(o.Name) {
		return o, fail(path+".name", "name %q must be lower case letters, digits, '-' or '_'", o.Name)
	}
	var kinds []string
	if os.Availability != nil {
		kinds = append(kinds, "availability")
	}
	if os.Latency != nil {
		kinds = append(kinds, "latency")
	}
	if os.Throughput != nil {
		kinds = append(kinds, "throughput")
	}
	if os.Memory != nil {
		kinds = append(kinds, "memory")
	}
	if os.Model != nil {
		kinds = append(kinds, "model")
	}
	switch len(kinds) {
	case 0:
		return o, fail(path, "objective %q needs exactly one of availability, latency, throughput, memory, model", o.Name)
	case 1:
	default:
		return o, fail(path, "objective %q sets %s: exactly one kind is allowed", o.Name, strings.Join(kinds, " and "))
	}
	var err error
	switch {
	case os.Availability != nil:
		a, p := os.Availability, path+".availability"
		o.Kind = KindAvailability
		o.RateLimitedBad, o.ClientErrorsBad = a.RateLimitedBad, a.ClientErrorsBad
		if o.Target, err = parseTarget(a.Target); err != nil {
			return o, fail(p+".target", "%w", err)
		}
	case os.Latency != nil:
		l, p := os.Latency, path+".latency"
		o.Kind = KindLatency
		switch {
		case l.Percentile != "" && l.Target != "":
			return o, fail(p+".target", "give either percentile (p90 <= threshold) or target (99%% of requests <= threshold), not both")
		case l.Percentile != "":
			o.Percentile = true
			if o.Target, err = parsePercentile(l.Percentile); err != nil {
				return o, fail(p+".percentile", "%w", err)
			}
		case l.Target != "":
			if o.Target, err = parseTarget(l.Target); err != nil {
				return o, fail(p+".target", "%w", err)
			}
		default:
			return o, fail(p, "percentile (e.g. p90) or target (e.g. 99%%) is required")
		}
		if l.Threshold == "" {
			return o, fail(p+".threshold", "threshold is required (e.g. 400ms)")
		}
		if o.Threshold, err = parseDuration(l.Threshold); err != nil {
			return o, fail(p+".threshold", "%w", err)
		}
	case os.Throughput != nil:
		p := path + ".throughput.min_rps"
		o.Kind = KindThroughput
		if o.MinRPS, err = parsePositive(os.Throughput.MinRPS, "requests per second"); err != nil {
			return o, fail(p, "%w", err)
		}
	case os.Memory != nil:
		p := path + ".memory.max"
		o.Kind = KindMemory
		if o.MaxBytes, err = ParseBytes(os.Memory.Max); err != nil {
			return o, fail(p, "%w", err)
		}
	case os.Model != nil:
		if err := compileModel(os.Model, &o, path+".model", fail); err != nil {
			return o, err
		}
	}
	return o, nil
}

// parseTarget reads a percentage in (0, 100]: "99.95%" or "99.95". A bare number below 1
// is refused because it is almost always a ratio (0.999) meant as 99.9%.
func parseTarget(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("target is required (a percentage such as 99.9%)")
	}
	raw, pct := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid target %q: want a percentage such as 99.9%%", s)
	}
	if v <= 0 || v > 100 {
		return 0, fmt.Errorf("target %s is outside (0, 100%%]", s)
	}
	if !pct && v < 1 {
		return 0, fmt.Errorf("target %s is read as %s%%: write %s%% if that is meant, or %s for a ratio of %s", s, s, s, formatFloat(v*100), s)
	}
	return v / 100, nil
}

// parsePercentile reads "p90", "P99.9" or "90" as a quantile in (0, 1].
func parsePercentile(s string) (float64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "p"), "P")
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid percentile %q: want p90, p99.9 or a number in (0, 100]", s)
	}
	if v <= 0 || v > 100 {
		return 0, fmt.Errorf("percentile %s is outside (0, 100]", s)
	}
	return v / 100, nil
}

// parseDuration reads a Go duration ("1m30s", "400ms") or a Prometheus one ("30d", "4w").
// It refuses negative and zero durations.
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		md, merr := model.ParseDuration(t)
		if merr != nil {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 400ms, 1s, 30d", s)
		}
		d = time.Duration(md)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be greater than zero", s)
	}
	return d, nil
}

func parsePositive(s, what string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid %s %q: want a number greater than zero", what, s)
	}
	if v <= 0 {
		return 0, fmt.Errorf("%s %s must be greater than zero", what, s)
	}
	return v, nil
}

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30},
	{"B", 1},
}

// ParseBytes reads a size such as "268435456", "256MB" (10^6 bytes each) or "256MiB"
// (2^20 bytes each). It refuses negative, zero and non-finite sizes.
func ParseBytes(s string) (float64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid size %q: want bytes such as 268435456, 256MB or 256MiB", s)
	}
	if v <= 0 {
		return 0, fmt.Errorf("size %q must be greater than zero", s)
	}
	return v * mult, nil
}
