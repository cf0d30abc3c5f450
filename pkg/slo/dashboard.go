package slo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/delayctl/delayctl/pkg/atomicfile"
	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/inputerr"
)

// DashboardOptions configures RunDashboard (slo dashboard).
type DashboardOptions struct {
	// SLOFile is the SLO spec the dashboard shows (delayctl, sloth or OpenSLO).
	SLOFile string
	// Selector holds extra label matchers for the queries that read serve's metrics, e.g.
	// job="delayctl"; use the one given to `slo rules`.
	Selector string
	// Output is the file to write; "" or "-" writes to standard output.
	Output string
}

// Validate checks DashboardOptions for usage mistakes.
func (o DashboardOptions) Validate() error {
	if o.SLOFile == "" {
		return errors.New("--slo is required")
	}
	if o.Output != "" && o.Output != "-" && filepath.Clean(o.Output) == filepath.Clean(o.SLOFile) {
		return fmt.Errorf("--output %s would overwrite the SLO file", o.Output)
	}
	return ValidSelector(o.Selector)
}

// RunDashboard loads the SLO file and writes its Grafana dashboard to opts.Output (through
// a temporary file renamed into place) or to out.
func RunDashboard(ctx context.Context, opts DashboardOptions, out, errOut io.Writer) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	s, err := LoadFile(opts.SLOFile)
	if err != nil {
		return err
	}
	data, err := Dashboard(s, opts.Selector)
	if err != nil {
		return err
	}
	if opts.Output == "" || opts.Output == "-" {
		_, err = out.Write(data)
		return err
	}
	if err := atomicfile.Write(opts.Output, 0o644, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return err
	}
	fmt.Fprintf(errOut, "wrote the %s SLO dashboard (%d objectives) to %s; import it in Grafana under Dashboards > New > Import\n",
		s.Service, len(s.Objectives), opts.Output)
	return nil
}

// Grafana's classic dashboard JSON model, the fields delayctl writes.
type (
	grafanaDashboard struct {
		UID           string            `json:"uid"`
		Title         string            `json:"title"`
		Description   string            `json:"description"`
		Tags          []string          `json:"tags"`
		Timezone      string            `json:"timezone"`
		SchemaVersion int               `json:"schemaVersion"`
		Version       int               `json:"version"`
		Editable      bool              `json:"editable"`
		Time          map[string]string `json:"time"`
		Refresh       string            `json:"refresh"`
		Templating    struct {
			List []grafanaVariable `json:"list"`
		} `json:"templating"`
		Panels []grafanaPanel `json:"panels"`
	}
	grafanaVariable struct {
		Name    string `json:"name"`
		Label   string `json:"label"`
		Type    string `json:"type"`
		Query   string `json:"query"`
		Refresh int    `json:"refresh"`
		Hide    int    `json:"hide"`
	}
	grafanaPanel struct {
		ID          int                `json:"id"`
		Type        string             `json:"type"`
		Title       string             `json:"title"`
		Description string             `json:"description,omitempty"`
		GridPos     grafanaGridPos     `json:"gridPos"`
		Datasource  *grafanaDatasource `json:"datasource,omitempty"`
		Targets     []grafanaTarget    `json:"targets,omitempty"`
		FieldConfig *grafanaFieldCfg   `json:"fieldConfig,omitempty"`
		Options     map[string]any     `json:"options,omitempty"`
	}
	grafanaGridPos    struct{ H, W, X, Y int }
	grafanaDatasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	grafanaTarget struct {
		RefID        string             `json:"refId"`
		Datasource   *grafanaDatasource `json:"datasource"`
		Expr         string             `json:"expr"`
		LegendFormat string             `json:"legendFormat,omitempty"`
		Format       string             `json:"format,omitempty"`
	}
	grafanaFieldCfg struct {
		Defaults  grafanaDefaults `json:"defaults"`
		Overrides []any           `json:"overrides"`
	}
	grafanaDefaults struct {
		Unit       string            `json:"unit,omitempty"`
		Decimals   *int              `json:"decimals,omitempty"`
		Min        *float64          `json:"min,omitempty"`
		Thresholds *grafanaThreshold `json:"thresholds,omitempty"`
	}
	grafanaThreshold struct {
		Mode  string        `json:"mode"`
		Steps []grafanaStep `json:"steps"`
	}
	grafanaStep struct {
		Color string   `json:"color"`
		Value *float64 `json:"value"`
	}
)

// MarshalJSON writes gridPos with Grafana's lower-case keys.
func (g grafanaGridPos) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]int{"h": g.H, "w": g.W, "x": g.X, "y": g.Y})
}

// dashboardDatasource points every panel at the dashboard's datasource variable.
var dashboardDatasource = &grafanaDatasource{Type: "prometheus", UID: "${datasource}"}

// Dashboard builds the Grafana dashboard of s as JSON: per objective its SLI over the SLO
// window, the error budget remaining and the burn rates over the alert windows (from the
// series `slo rules` records), then the request latency heatmap, the requests by status
// code and the shed and rate-limited requests (from serve's metrics, with selector's
// matchers). A datasource variable picks the Prometheus server.
func Dashboard(s *SLO, selector string) ([]byte, error) {
	if err := ValidSelector(selector); err != nil {
		return nil, inputerr.Wrap(err)
	}
	q := newQueries(s, selector)
	windows := ruleWindows(s.Window)
	short := windows[0]
	d := grafanaDashboard{
		UID:   dashboardUID(s.Service),
		Title: s.Service + " SLOs",
		Description: fmt.Sprintf("Generated by `delayctl slo dashboard` from the %s SLOs (window %s). Event objectives read the series `delayctl slo rules` records; load those rules first.",
			s.Service, formatWindow(s.Window)),
		Tags: []string{"delayctl", "slo"}, Timezone: "browser", SchemaVersion: 39, Version: 1, Editable: true,
		Time: map[string]string{"from": "now-24h", "to": "now"}, Refresh: "1m",
	}
	d.Templating.List = []grafanaVariable{{Name: "datasource", Label: "Prometheus", Type: "datasource", Query: "prometheus", Refresh: 1}}
	b := panelBuilder{}
	for _, o := range s.Objectives {
		b.row(fmt.Sprintf("%s: %s", o.Name, o.String()))
		switch o.Kind {
		case KindThroughput, KindMemory:
			mq, err := q.measure(o, short)
			if err != nil {
				return nil, inputerr.Wrap(err)
			}
			unit, limit, desc := "reqps", o.MinRPS, "Successful requests per second over "+promDuration(short)+"; the objective is the floor."
			below, above := "red", "green"
			if o.Kind == KindMemory {
				unit, limit, desc = "bytes", o.MaxBytes, "Highest resident memory over "+promDuration(short)+"; the objective is the ceiling."
				below, above = "green", "red"
				if selector == "" {
					desc += " Without --selector this is the largest of every Go process Prometheus scrapes."
				}
			}
			b.add(24, 6, grafanaPanel{Type: "timeseries", Title: o.Name, Description: desc,
				Targets:     []grafanaTarget{{Expr: mq.Value, LegendFormat: o.Name}},
				FieldConfig: fieldConfig(unit, nil, thresholdSteps(below, limit, above))})
			continue
		}
		period := promDuration(s.Window)
		budget := 1 - o.Target
		b.add(6, 6, grafanaPanel{Type: "stat", Title: "SLI over " + formatWindow(s.Window),
			Description: fmt.Sprintf("Share of good events over the SLO window; the objective is %s.", FormatPercent(o.Target)),
			Targets:     []grafanaTarget{{Expr: "1 - " + sloSel(recordErrorRatio+period, s, o, period)}},
			FieldConfig: fieldConfig("percentunit", intPtr(3), thresholdSteps("red", o.Target, "green"))})
		b.add(6, 6, grafanaPanel{Type: "stat", Title: "Error budget remaining",
			Description: fmt.Sprintf("Share of the %s error budget (%s of events) left over the SLO window; negative once overspent.", formatWindow(s.Window), FormatPercent(budget)),
			Targets:     []grafanaTarget{{Expr: sloSel(recordBudgetRemaining, s, o, "")}},
			FieldConfig: fieldConfig("percentunit", intPtr(1), thresholdSteps("red", 0, "green"))})
		var targets []grafanaTarget
		for _, w := range windows {
			ws := promDuration(w)
			targets = append(targets, grafanaTarget{
				Expr:         fmt.Sprintf("%s\n/ on (service, slo) group_left\n%s", sloSel(recordErrorRatio+ws, s, o, ws), sloSel(recordBudget, s, o, "")),
				LegendFormat: ws})
		}
		var desc []string
		for _, a := range AlertWindows {
			desc = append(desc, fmt.Sprintf("%s %sx over %s and %s", a.Severity, formatFloat(a.BurnFactor(s.Window)), promDuration(a.Long), promDuration(a.Short)))
		}
		b.add(12, 6, grafanaPanel{Type: "timeseries", Title: "Burn rate over the alert windows",
			Description: "Error ratio divided by the error budget: 1 spends the budget exactly over the window. Alerts fire when a long and a short window both exceed a factor: " + strings.Join(desc, "; ") + ".",
			Targets:     targets,
			FieldConfig: fieldConfig("none", nil, nil)})
	}
	b.row("Requests to " + s.Service)
	b.add(12, 8, grafanaPanel{Type: "heatmap", Title: "Request latency",
		Description: "Requests per second in each bucket of " + contract.Duration + ".",
		Targets: []grafanaTarget{{Expr: fmt.Sprintf("sum by (le) (rate(%s[%s]))", q.sel(contract.Duration+"_bucket", true), promDuration(short)),
			LegendFormat: "{{le}}", Format: "heatmap"}},
		Options: map[string]any{"calculate": false, "yAxis": map[string]any{"unit": "s"}, "cellGap": 1}})
	b.add(12, 8, grafanaPanel{Type: "timeseries", Title: "Requests by status code",
		Targets:     []grafanaTarget{{Expr: fmt.Sprintf("sum by (code) (rate(%s[%s]))", q.sel(contract.Requests, true), promDuration(short)), LegendFormat: "{{code}}"}},
		FieldConfig: fieldConfig("reqps", nil, nil)})
	b.add(24, 6, grafanaPanel{Type: "timeseries", Title: "Shed and rate-limited requests",
		Description: "Requests turned away before the model ran: shed under overload (503) and refused by the rate limiter (429).",
		Targets: []grafanaTarget{
			{Expr: fmt.Sprintf("sum(rate(%s[%s]))", q.sel(contract.Shed, false), promDuration(short)), LegendFormat: "shed"},
			{Expr: fmt.Sprintf("sum(rate(%s[%s]))", q.sel(contract.RateLimited, false), promDuration(short)), LegendFormat: "rate limited"},
		},
		FieldConfig: fieldConfig("reqps", nil, nil)})
	d.Panels = b.panels
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // PromQL's <, > and & stay readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("could not encode dashboard: %w", err)
	}
	return buf.Bytes(), nil
}

// panelBuilder lays panels out left to right on Grafana's 24-column grid.
type panelBuilder struct {
	panels []grafanaPanel
	x, y   int
	rowH   int
}

func (b *panelBuilder) row(title string) {
	b.newLine()
	b.panels = append(b.panels, grafanaPanel{ID: len(b.panels) + 1, Type: "row", Title: title, GridPos: grafanaGridPos{H: 1, W: 24, Y: b.y}})
	b.y++
}

func (b *panelBuilder) add(w, h int, p grafanaPanel) {
	if b.x+w > 24 {
		b.newLine()
	}
	p.ID = len(b.panels) + 1
	p.GridPos = grafanaGridPos{H: h, W: w, X: b.x, Y: b.y}
	p.Datasource = dashboardDatasource
	for i := range p.Targets {
		p.Targets[i].RefID = string(rune('A' + i))
		p.Targets[i].Datasource = dashboardDatasource
	}
	b.panels = append(b.panels, p)
	b.x += w
	b.rowH = max(b.rowH, h)
}

func (b *panelBuilder) newLine() {
	if b.x > 0 {
		b.y += b.rowH
	}
	b.x, b.rowH = 0, 0
}

func fieldConfig(unit string, decimals *int, th *grafanaThreshold) *grafanaFieldCfg {
	return &grafanaFieldCfg{Defaults: grafanaDefaults{Unit: unit, Decimals: decimals, Thresholds: th}, Overrides: []any{}}
}

// thresholdSteps colours values below at with below and from at up with above.
func thresholdSteps(below string, at float64, above string) *grafanaThreshold {
	return &grafanaThreshold{Mode: "absolute", Steps: []grafanaStep{{Color: below}, {Color: above, Value: &at}}}
}

func intPtr(i int) *int { return &i }

// dashboardUID is a stable Grafana uid for the service, so that re-importing replaces the
// dashboard: at most 40 characters of [a-z0-9-].
func dashboardUID(service string) string {
	uid := "delayctl-slo-" + strings.Trim(strings.TrimSuffix(groupName(service, ""), "-slo-"), "-")
	if len(uid) > 40 {
		uid = uid[:40]
	}
	return uid
}
