package slo

import (
	"fmt"
	"math"
	"strings"

	"gopkg.in/yaml.v3"
)

// slothVersion is the version field of the sloth specs LoadForeign reads.
const slothVersion = "prometheus/v1"

// slothSpec is sloth's prometheus/v1 spec (slok/sloth pkg/prometheus/api/v1), the fields
// delayctl reads. Fields it cannot map are decoded so that they can be refused by name.
type slothSpec struct {
	Version    string            `yaml:"version"`
	Service    string            `yaml:"service"`
	Labels     map[string]string `yaml:"labels,omitempty"`
	SLOPlugins yaml.Node         `yaml:"slo_plugins,omitempty"`
	SLOs       []slothSLO        `yaml:"slos"`
}

type slothSLO struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description,omitempty"`
	Objective   float64           `yaml:"objective"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	SLI         slothSLI          `yaml:"sli"`
	Alerting    slothAlerting     `yaml:"alerting"`
	Plugins     yaml.Node         `yaml:"plugins,omitempty"`
}

type slothSLI struct {
	Raw    *slothRaw    `yaml:"raw,omitempty"`
	Events *slothEvents `yaml:"events,omitempty"`
	Plugin yaml.Node    `yaml:"plugin,omitempty"`
}

type slothRaw struct {
	ErrorRatioQuery string `yaml:"error_ratio_query"`
}

type slothEvents struct {
	ErrorQuery string `yaml:"error_query"`
	TotalQuery string `yaml:"total_query"`
}

type slothAlerting struct {
	Name        string            `yaml:"name,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
	PageAlert   slothAlert        `yaml:"page_alert,omitempty"`
	TicketAlert slothAlert        `yaml:"ticket_alert,omitempty"`
}

type slothAlert struct {
	Disable     bool              `yaml:"disable,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// loadSloth maps a sloth spec onto an SLO: each slos[] entry becomes one objective over
// sloth's default 30-day period. Events SLIs over delayctl's metrics become availability
// or latency objectives; other PromQL becomes ratio objectives.
func loadSloth(data []byte) (*SLO, error) {
	root, err := oneDocument(data)
	if err != nil {
		return nil, err
	}
	lines := Lines{}
	var spec slothSpec
	if err := decodeChecked(root, &spec, "", lines); err != nil {
		return nil, err
	}
	fail := specFail(lines)
	if spec.SLOPlugins.Kind != 0 {
		return nil, fail("slo_plugins", "sloth SLO plugins have no mapping in delayctl: write the SLI as sli.events or sli.raw PromQL")
	}
	if len(spec.SLOs) == 0 {
		return nil, fail("slos", "at least one SLO is required")
	}
	s := &SLO{Service: strings.TrimSpace(spec.Service), Window: DefaultWindow, Labels: spec.Labels}
	var paths, labelPaths []string
	for i, in := range spec.SLOs {
		p := fmt.Sprintf("slos[%d]", i)
		if in.Plugins.Kind != 0 {
			return nil, fail(p+".plugins", "sloth SLO plugins have no mapping in delayctl")
		}
		if err := checkName(in.Name); err != nil {
			return nil, fail(p+".name", "%w", err)
		}
		if math.IsNaN(in.Objective) || in.Objective <= 0 || in.Objective > 100 {
			return nil, fail(p+".objective", "objective %s is outside (0, 100]: sloth objectives are percentages such as 99.9", formatFloat(in.Objective))
		}
		raw := RawSLI{PerSecond: true}
		switch {
		case in.SLI.Plugin.Kind != 0:
			return nil, fail(p+".sli.plugin", "sloth SLI plugins have no mapping in delayctl: write the SLI as sli.events or sli.raw PromQL")
		case in.SLI.Events != nil && in.SLI.Raw != nil:
			return nil, fail(p+".sli", "give exactly one of events, raw and plugin")
		case in.SLI.Events != nil:
			raw.Source = "sloth " + p + ".sli.events"
			if raw.Bad, err = slothQuery(in.SLI.Events.ErrorQuery); err != nil {
				return nil, fail(p+".sli.events.error_query", "%w", err)
			}
			if raw.Total, err = slothQuery(in.SLI.Events.TotalQuery); err != nil {
				return nil, fail(p+".sli.events.total_query", "%w", err)
			}
		case in.SLI.Raw != nil:
			raw.Source = "sloth " + p + ".sli.raw"
			if raw.ErrorRatio, err = slothQuery(in.SLI.Raw.ErrorRatioQuery); err != nil {
				return nil, fail(p+".sli.raw.error_ratio_query", "%w", err)
			}
		default:
			return nil, fail(p+".sli", "an SLI is required: events{error_query, total_query} or raw{error_ratio_query}")
		}
		o := eventObjective(s, in.Name, in.Description, math.Round(in.Objective*1e10)/1e12, raw)
		o.Labels = in.Labels
		if a := in.Alerting; a.Name != "" || len(a.Labels)+len(a.Annotations) > 0 || a.PageAlert.set() || a.TicketAlert.set() {
			o.Alerting = &Alerting{Name: a.Name, Labels: a.Labels, Annotations: a.Annotations,
				Page:   AlertOverride{Disable: a.PageAlert.Disable, Labels: a.PageAlert.Labels, Annotations: a.PageAlert.Annotations},
				Ticket: AlertOverride{Disable: a.TicketAlert.Disable, Labels: a.TicketAlert.Labels, Annotations: a.TicketAlert.Annotations}}
		}
		s.Objectives = append(s.Objectives, o)
		paths, labelPaths = append(paths, p+".name"), append(labelPaths, p+".labels")
	}
	return finishForeign(s, paths, labelPaths, fail)
}

func (a slothAlert) set() bool { return a.Disable || len(a.Labels)+len(a.Annotations) > 0 }

// slothQuery checks one sloth query: PromQL over the {{.window}} template.
func slothQuery(q string) (string, error) {
	if strings.TrimSpace(q) == "" {
		return "", fmt.Errorf("query is required")
	}
	q, err := normaliseWindowVar(q)
	if err != nil {
		return "", err
	}
	if !strings.Contains(q, WindowVar) {
		return "", fmt.Errorf("query %q must use the {{.window}} template as its range, as sloth requires", q)
	}
	if _, err := promParser.ParseExpr(renderWindow(q, DefaultWindow)); err != nil {
		return "", fmt.Errorf("query %q is not valid PromQL: %w", q, err)
	}
	return q, nil
}

// oneDocument parses data as exactly one YAML document and returns its root node.
func oneDocument(data []byte) (*yaml.Node, error) {
	docs, err := documents(data)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, &SpecError{Line: docs[1].Line, Err: fmt.Errorf("more than one YAML document: put every SLO in one document")}
	}
	return docs[0], nil
}
