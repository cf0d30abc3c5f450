package slo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/model"
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/delayctl/delayctl/pkg/slo"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func TestDashboardGolden(t *testing.T) {
	tests := map[string]struct {
		spec, selector, golden string
	}{
		"The shipped SLO with a job selector.": {spec: "../../configs/slo.yaml", selector: `job="delayctl"`, golden: "dashboard-slo.json"},
		"A sloth spec with PromQL objectives.": {spec: "testdata/interop/sloth.yaml", golden: "dashboard-sloth.json"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := slo.LoadFile(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := slo.Dashboard(s, tt.selector)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, got)
		})
	}
}

// dashboardJSON is the part of Grafana's model the checks read.
type dashboardJSON struct {
	Templating struct {
		List []struct{ Name, Type, Query string } `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Type       string               `json:"type"`
		Title      string               `json:"title"`
		Datasource struct{ UID string } `json:"datasource"`
		Targets    []struct {
			Expr       string               `json:"expr"`
			Datasource struct{ UID string } `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestDashboardQueriesParseAndReadOnlyRealSeries(t *testing.T) {
	served := servedSeries(t)
	for _, name := range []string{contract.Requests, contract.Duration + "_bucket", contract.RSS} {
		if !served[name] {
			t.Fatalf("serve does not expose %s; scraped %d names", name, len(served))
		}
	}
	tests := map[string]struct{ spec, selector string }{
		"The shipped SLO.":                     {spec: "../../configs/slo.yaml"},
		"The shipped SLO with a selector.":     {spec: "../../configs/slo.yaml", selector: `job="delayctl",env!="dev"`},
		"The 99% SLO.":                         {spec: "../../configs/slo-99.yaml"},
		"A sloth spec.":                        {spec: "testdata/interop/sloth.yaml"},
		"OpenSLO ratios over delayctl series.": {spec: "testdata/interop/openslo-ratio.yaml"},
		"OpenSLO PromQL objectives.":           {spec: "testdata/interop/openslo-threshold.yaml"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := slo.LoadFile(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			var rules bytes.Buffer
			if _, err := slo.WriteRules(&rules, s, slo.RulesOptions{Selector: tt.selector}); err != nil {
				t.Fatal(err)
			}
			recorded := parseRules(t, rules.Bytes()).recorded
			data, err := slo.Dashboard(s, tt.selector)
			if err != nil {
				t.Fatal(err)
			}
			var d dashboardJSON
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatalf("dashboard is not JSON: %v", err)
			}
			if len(d.Templating.List) != 1 || d.Templating.List[0].Type != "datasource" || d.Templating.List[0].Query != "prometheus" {
				t.Errorf("want one prometheus datasource variable, got %+v", d.Templating.List)
			}
			p := parser.NewParser(parser.Options{})
			exprs, heatmaps := 0, 0
			for _, panel := range d.Panels {
				if panel.Type == "heatmap" {
					heatmaps++
				}
				if panel.Type != "row" && panel.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q reads datasource %q, not the variable", panel.Title, panel.Datasource.UID)
				}
				for _, tg := range panel.Targets {
					exprs++
					if tg.Datasource.UID != "${datasource}" {
						t.Errorf("panel %q: a target reads datasource %q", panel.Title, tg.Datasource.UID)
					}
					expr, err := p.ParseExpr(tg.Expr)
					if err != nil {
						t.Errorf("panel %q: %q does not parse: %v", panel.Title, tg.Expr, err)
						continue
					}
					parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
						vs, ok := n.(*parser.VectorSelector)
						if !ok {
							return nil
						}
						switch {
						case recorded[vs.Name]:
						case served[vs.Name]:
							if tt.selector != "" && !strings.Contains(vs.String(), `job="delayctl"`) {
								t.Errorf("panel %q: %s lacks the selector", panel.Title, vs)
							}
						default:
							t.Errorf("panel %q reads %q, which serve does not expose and `slo rules` does not record", panel.Title, vs.Name)
						}
						return nil
					})
				}
			}
			if heatmaps != 1 || exprs < 3*len(s.Objectives) {
				t.Errorf("%d heatmaps and %d queries for %d objectives", heatmaps, exprs, len(s.Objectives))
			}
		})
	}
}

// servedSeries scrapes a real delayctl serve handler, after one request so that the
// per-route series exist, and returns every series name it exposes.
func servedSeries(t *testing.T) map[string]bool {
	t.Helper()
	m := &model.Model{
		Name: model.DefaultName, Version: "1", Label: model.Label{Name: "delayed", Definition: "ARR_DEL15 == 1"},
		Input:        model.BTSColumns,
		Features:     []model.Feature{{Variable: "carrier", Encoding: model.OneHot, Vocabulary: []string{"AA", "DL"}}},
		VectorLength: 2, Coefficients: []float64{0.5, -0.5}, Threshold: 0.5,
		Training: model.Training{Metrics: json.RawMessage(`{}`), ToolVersion: "test"},
	}
	if err := m.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := m.Seal(); err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(m, serve.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	resp, err := http.Post(ts.URL+"/predict", "application/json", strings.NewReader(`{"instances": [{}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := expfmt.NewDecoder(resp.Body, expfmt.NewFormat(expfmt.TypeTextPlain))
	names := map[string]bool{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		if len(mf.Metric) == 0 {
			continue
		}
		names[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				names[mf.GetName()+suffix] = true
			}
		}
	}
	return names
}

func TestRunDashboardWritesAFileWholeOrNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "dash.json")
	var stdout, stderr bytes.Buffer
	if err := slo.RunDashboard(context.Background(), slo.DashboardOptions{SLOFile: "../../configs/slo.yaml", Output: out}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil || !json.Valid(data) || stdout.Len() != 0 || !strings.Contains(stderr.String(), "Dashboards > New > Import") {
		t.Fatalf("file %d bytes (valid %v, %v), stdout %q, stderr %q", len(data), json.Valid(data), err, stdout.String(), stderr.String())
	}
	bad := filepath.Join(dir, "bad.json")
	err = slo.RunDashboard(context.Background(), slo.DashboardOptions{SLOFile: "testdata/interop/missing.yaml", Output: bad}, &stdout, &stderr)
	var se *slo.SpecError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want a *SpecError", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s behind", bad)
	}
	err = slo.RunDashboard(context.Background(), slo.DashboardOptions{SLOFile: out, Output: out}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "would overwrite the SLO file") {
		t.Errorf("got %v, want a refusal to overwrite the input", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}
