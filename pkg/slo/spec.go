package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"gopkg.in/yaml.v3"
)

// Version is the spec version of an SLO file, which starts with "version: delayctl.slo/v1".
// It differs from the train pipeline config's, so one file cannot pass for the other.
const Version = "delayctl.slo/v1"

// LegacyVersion is the version SLO files shared with train configs before; it is still read
// as Version.
const LegacyVersion = "delayctl/v1"

// Spec is the SLO file as written by a person. It keeps values as text so that every
// mistake can be reported with its field path and line; Load turns it into an SLO.
type Spec struct {
	// Version must be Version ("delayctl.slo/v1"); LegacyVersion is still read.
	Version string `yaml:"version"`
	// Service names the service the objectives are about. It labels generated rules
	// ("service" label) and heads every report. Required.
	Service string `yaml:"service"`
	// Window is the SLO period over which the error budget is counted, as a Prometheus
	// duration such as "30d", "4w" or "720h". Default "30d".
	Window string `yaml:"window,omitempty"`
	// Routes is a regular expression, anchored at both ends, that selects the requests the
	// objectives judge: it is matched against the path of each result's URL and against the
	// route label of the served metrics. Default: the prediction routes
	// "/|/predict|/v2/models/[^/]+/infer".
	Routes string `yaml:"routes,omitempty"`
	// Labels are extra labels added to every generated recording and alerting rule.
	Labels map[string]string `yaml:"labels,omitempty"`
	// Objectives lists what the service promises. At least one is required.
	Objectives []ObjectiveSpec `yaml:"objectives"`
}

// ObjectiveSpec is one objective. Exactly one of Availability, Latency, Throughput, Memory
// and Model must be set.
type ObjectiveSpec struct {
	// Name identifies the objective in reports and in the "slo" label of generated rules:
	// lower case letters, digits, "-" and "_", unique within the file. Required.
	Name string `yaml:"name"`
	// Description is free text shown in reports and alert annotations.
	Description string `yaml:"description,omitempty"`
	// Availability makes this an availability objective.
	Availability *AvailabilitySpec `yaml:"availability,omitempty"`
	// Latency makes this a latency objective.
	Latency *LatencySpec `yaml:"latency,omitempty"`
	// Throughput makes this a throughput objective.
	Throughput *ThroughputSpec `yaml:"throughput,omitempty"`
	// Memory makes this a memory objective.
	Memory *MemorySpec `yaml:"memory,omitempty"`
	// Model makes this a model-health objective (modelobj.go).
	Model *ModelSpec `yaml:"model,omitempty"`
}

// AvailabilitySpec is the share of requests that must be good. A request is good when it
// got a response (no transport error such as a refused connection or a timeout) whose
// status is not 5xx and, if so configured, not 429 or another 4xx.
type AvailabilitySpec struct {
	// Target is the share of good requests, a percentage in (0, 100]: "99.95%" or 99.95.
	Target string `yaml:"target"`
	// RateLimitedBad counts 429 Too Many Requests as bad (default false: shedding load
	// on purpose is the server doing its job, and the client was told to retry).
	RateLimitedBad bool `yaml:"rate_limited_bad,omitempty"`
	// ClientErrorsBad counts every other 4xx as bad too (default false: a malformed request
	// is the caller's fault).
	ClientErrorsBad bool `yaml:"client_errors_bad,omitempty"`
}

// LatencySpec bounds response time. Write either the percentile form (Percentile plus
// Threshold: "p90 of requests take at most 400ms") or the threshold form (Target plus
// Threshold: "99% of requests take at most 300ms"). Both mean "at least this share of
// requests completes within Threshold" and are judged exactly that way; the percentile form
// also reports the percentile's value. Requests that failed with a transport error count as
// slow.
type LatencySpec struct {
	// Percentile is the percentile form's quantile: "p90", "p99.9" or a bare number such as
	// 90, read as a percentage in (0, 100].
	Percentile string `yaml:"percentile,omitempty"`
	// Target is the threshold form's share of requests, a percentage in (0, 100].
	Target string `yaml:"target,omitempty"`
	// Threshold is the latency bound, a Go or Prometheus duration such as "400ms" or "1s".
	// Requests at or under it are fast. For `slo rules` and Prometheus sources it must be one
	// of the request duration histogram's bucket bounds (contract.DurationBuckets).
	Threshold string `yaml:"threshold"`
}

// ThroughputSpec sets a floor on successful (2xx and 3xx) requests per second.
type ThroughputSpec struct {
	// MinRPS is the least acceptable rate of successful requests per second, > 0.
	MinRPS string `yaml:"min_rps"`
}

// MemorySpec caps the server's resident memory, read from process_resident_memory_bytes.
type MemorySpec struct {
	// Max is the largest acceptable resident set size, in bytes or with a unit: "256MB"
	// (10^6), "256MiB" (2^20), also kB/KiB, GB/GiB.
	Max string `yaml:"max"`
}

// SpecError is a mistake in an SLO file: which file, line and field, and what is wrong.
// Its error text reads "configs/slo.yaml:12: objectives[1].latency.threshold: ...".
type SpecError struct {
	// File is the name the spec was loaded from; empty when read from a stream.
	File string
	// Line is the 1-based line of the offending field, or 0 when unknown.
	Line int
	// Path names the field, e.g. "objectives[1].latency.threshold"; empty for the document.
	Path string
	// Err says what is wrong.
	Err error
}

func (e *SpecError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		if e.File == "" {
			b.WriteString("line ")
		}
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *SpecError) Unwrap() error { return e.Err }

// Is makes a SpecError an input error: errors.Is(err, inputerr.Err) holds.
func (e *SpecError) Is(target error) bool { return target == inputerr.Err }

// maxSpecBytes bounds what LoadSpec reads: an SLO file is a few hundred bytes.
const maxSpecBytes = 1 << 20

// LoadSpec reads one SLO document. It rejects unknown fields, a wrong or missing version,
// and a file without objectives, naming the field and line. Values are checked by Compile.
// The returned Lines maps each field path to its line so Compile's errors can cite it.
func LoadSpec(r io.Reader) (Spec, Lines, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSpecBytes+1))
	if err != nil {
		return Spec{}, nil, fmt.Errorf("could not read slo spec: %w", err)
	}
	if len(data) > maxSpecBytes {
		return Spec{}, nil, &SpecError{Err: fmt.Errorf("spec is larger than %d bytes", maxSpecBytes)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Spec{}, nil, &SpecError{Err: errors.New("empty spec: want a YAML document starting with \"version: " + Version + "\"")}
		}
		return Spec{}, nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Spec{}, nil, &SpecError{Line: extra.Line, Err: errors.New("more than one YAML document: put every objective in one document")}
	}
	lines := Lines{}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if err := checkFields(root, reflect.TypeOf(Spec{}), "", lines); err != nil {
		return Spec{}, nil, err
	}
	var spec Spec
	if err := root.Decode(&spec); err != nil {
		return Spec{}, nil, yamlError(err)
	}
	if spec.Version != Version && spec.Version != LegacyVersion {
		return Spec{}, nil, &SpecError{Line: lines["version"], Path: "version", Err: fmt.Errorf("invalid spec version %q, should be %q", spec.Version, Version)}
	}
	if len(spec.Objectives) == 0 {
		return Spec{}, nil, &SpecError{Line: lines["objectives"], Path: "objectives", Err: errors.New("at least one objective is required")}
	}
	return spec, lines, nil
}

// Lines maps a field path such as "objectives[0].latency.threshold" to its 1-based line in
// the SLO file.
type Lines map[string]int

// checkFields walks a YAML node against the Go type it will decode into, rejecting keys
// that have no field (with the known ones listed) and recording each field's line.
func checkFields(n *yaml.Node, t reflect.Type, path string, lines Lines) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		lines[path] = n.Line
	}
	if t == yamlNodeType {
		return nil // kept as written, checked by whoever reads it
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return &SpecError{Line: n.Line, Path: path, Err: fmt.Errorf("want a mapping of fields, got %s", nodeKind(n))}
		}
		fields := map[string]reflect.StructField{}
		var known []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f
			known = append(known, name)
		}
		sort.Strings(known)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				return &SpecError{Line: k.Line, Path: joinPath(path, k.Value), Err: fmt.Errorf("unknown field %q (known fields: %s)", k.Value, strings.Join(known, ", "))}
			}
			if seen[k.Value] {
				return &SpecError{Line: k.Line, Path: joinPath(path, k.Value), Err: fmt.Errorf("field %q given twice", k.Value)}
			}
			seen[k.Value] = true
			if err := checkFields(v, f.Type, joinPath(path, k.Value), lines); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return &SpecError{Line: n.Line, Path: path, Err: fmt.Errorf("want a list, got %s", nodeKind(n))}
		}
		for i, c := range n.Content {
			if err := checkFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return &SpecError{Line: n.Line, Path: path, Err: fmt.Errorf("want a mapping, got %s", nodeKind(n))}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return &SpecError{Line: v.Line, Path: joinPath(path, k.Value), Err: fmt.Errorf("want a string, got %s", nodeKind(v))}
			}
			lines[joinPath(path, k.Value)] = k.Line
		}
	default:
		if n.Kind != yaml.ScalarNode {
			return &SpecError{Line: n.Line, Path: path, Err: fmt.Errorf("want a single value, got %s", nodeKind(n))}
		}
		if t.Kind() == reflect.Bool {
			if _, err := strconv.ParseBool(n.Value); err != nil || n.Tag != "!!bool" {
				return &SpecError{Line: n.Line, Path: path, Err: fmt.Errorf("want true or false, got %q", n.Value)}
			}
		}
	}
	return nil
}

var yamlNodeType = reflect.TypeOf(yaml.Node{})

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// yamlError turns a yaml.v3 error ("yaml: line 3: did not find expected key") into a
// SpecError carrying the line, without repeating it in the message.
func yamlError(err error) *SpecError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	m := yamlLineRe.FindStringSubmatch(msg)
	if m == nil {
		return &SpecError{Err: errors.New(msg)}
	}
	line, _ := strconv.Atoi(m[1])
	return &SpecError{Line: line, Err: errors.New(strings.TrimSpace(strings.Replace(msg, m[0], "", 1)))}
}

var yamlLineRe = regexp.MustCompile(`line (\d+): `)
