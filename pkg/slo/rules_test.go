package slo_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// exported are the metric names delayctl serve exports that rules may read.
var exported = map[string]bool{
	contract.Requests:           true,
	contract.DurationBucket:     true,
	contract.DurationCount:      true,
	contract.RSS:                true,
	contract.DriftPredictionPSI: true, contract.DriftFeaturePSI: true, contract.DriftUnseenRatio: true,
}

func TestRulesParseAndReadOnlyExportedMetrics(t *testing.T) {
	tests := map[string]struct {
		spec     string
		selector string
		// wantAlerts counts alerting rules: page and ticket per event objective, one per memory
		// objective, and the absent alert.
		wantAlerts int
	}{
		"The shipped SLO without a selector skips memory.":  {spec: "../../configs/slo.yaml", wantAlerts: 8},
		"The shipped SLO with a selector alerts on memory.": {spec: "../../configs/slo.yaml", selector: `job="delayctl"`, wantAlerts: 9},
		"The 99% SLO counts 429 as bad.":                    {spec: "../../configs/slo-99.yaml", wantAlerts: 3},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := slo.LoadFile(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := slo.WriteRules(&buf, s, slo.RulesOptions{Selector: tt.selector, Source: tt.spec}); err != nil {
				t.Fatal(err)
			}
			groups, errs := rulefmt.Parse(buf.Bytes(), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
			if len(errs) > 0 {
				t.Fatalf("rulefmt rejects the rules: %v\n%s", errs, buf.String())
			}
			recorded := map[string]bool{}
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					if r.Record != "" {
						recorded[r.Record] = true
					}
				}
			}
			alerts := 0
			p := parser.NewParser(parser.Options{})
			for _, g := range groups.Groups {
				for _, r := range g.Rules {
					if r.Alert != "" {
						alerts++
					}
					expr, err := p.ParseExpr(r.Expr)
					if err != nil {
						t.Fatalf("rule %s%s: %v", r.Record, r.Alert, err)
					}
					parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
						vs, ok := n.(*parser.VectorSelector)
						if !ok {
							return nil
						}
						if !exported[vs.Name] && !recorded[vs.Name] {
							t.Errorf("rule %s%s reads %q, which delayctl serve does not export and no rule records", r.Record, r.Alert, vs.Name)
						}
						if tt.selector != "" && !strings.Contains(vs.String(), `job="delayctl"`) && !recorded[vs.Name] {
							t.Errorf("rule %s%s: selector %s lacks the extra matcher", r.Record, r.Alert, vs)
						}
						return nil
					})
				}
			}
			if alerts != tt.wantAlerts {
				t.Errorf("%d alerting rules, want %d", alerts, tt.wantAlerts)
			}
		})
	}
}

func TestRulesUseTheWorkbookBurnRates(t *testing.T) {
	s := mustSLO(t, seedsSLO)
	var buf bytes.Buffer
	if _, err := slo.WriteRules(&buf, s, slo.RulesOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// 30d window, 99.95%: budget 0.0005; factors 14.4 (1h/5m), 6 (6h/30m), 3 (1d/2h), 1 (3d/6h).
	for _, want := range []string{
		`slo:sli_error:ratio_rate1h{service="delayctl",slo="availability",window="1h"} > (14.4 * 0.0005)`,
		`slo:sli_error:ratio_rate5m{service="delayctl",slo="availability",window="5m"} > (14.4 * 0.0005)`,
		`slo:sli_error:ratio_rate6h{service="delayctl",slo="availability",window="6h"} > (6 * 0.0005)`,
		`slo:sli_error:ratio_rate30m{service="delayctl",slo="availability",window="30m"} > (6 * 0.0005)`,
		`slo:sli_error:ratio_rate1d{service="delayctl",slo="availability",window="1d"} > (3 * 0.0005)`,
		`slo:sli_error:ratio_rate2h{service="delayctl",slo="availability",window="2h"} > (3 * 0.0005)`,
		`slo:sli_error:ratio_rate3d{service="delayctl",slo="availability",window="3d"} > (1 * 0.0005)`,
		`slo:sli_error:ratio_rate6h{service="delayctl",slo="availability",window="6h"} > (1 * 0.0005)`,
		// p90 <= 400ms: 10% budget, factors capped at 20% / 10% = 2, and the 0.4s bucket.
		`slo:sli_error:ratio_rate1h{service="delayctl",slo="latency-p90",window="1h"} > (2 * 0.1)`,
		`slo:sli_error:ratio_rate3d{service="delayctl",slo="latency-p90",window="3d"} > (1 * 0.1)`,
		`delayctl_http_request_duration_seconds_bucket{route=~"/|/predict|/v2/models/[^/]+/infer",le="0.4"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rules lack %q", want)
		}
	}
	for _, a := range slo.AlertWindows {
		if f := a.BurnFactor(s.Window); f <= 0 {
			t.Errorf("burn factor %v for %v", f, a.Long)
		}
	}
}

func TestAlertFactorsAreReachableAndAbove1x(t *testing.T) {
	tests := map[string]struct {
		budget float64
		want   []float64 // page fast, page slow, ticket fast, ticket slow
		wantOK bool
	}{
		"A 99.95% objective keeps the workbook's factors.":      {budget: 0.0005, want: []float64{14.4, 6, 3, 1}, wantOK: true},
		"A 99% objective keeps them too (14.4% < 20%).":         {budget: 0.01, want: []float64{14.4, 6, 3, 1}, wantOK: true},
		"A p90 objective's factors are capped at 20% / 10%.":    {budget: 0.1, want: []float64{2, 2, 2, 1}, wantOK: true},
		"A 95% objective's factors are capped at 20% / 5%.":     {budget: 0.05, want: []float64{4, 4, 3, 1}, wantOK: true},
		"An 80% objective cannot page on an outage above 1x.":   {budget: 0.2, want: []float64{1, 1, 1, 1}, wantOK: false},
		"A p50 objective gets no alerts (its cap is below 1x).": {budget: 0.5, want: []float64{0.4, 0.4, 0.4, 0.4}, wantOK: false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got []float64
			for _, a := range slo.AlertWindows {
				f, ok := slo.AlertFactor(a, slo.DefaultWindow, tt.budget)
				if ok != tt.wantOK {
					t.Errorf("%s %v: ok %v, want %v", a.Severity, a.Long, ok, tt.wantOK)
				}
				if ok && f*tt.budget > slo.MaxAlertErrorRatio+1e-12 {
					t.Errorf("%s %v: factor %v needs an error ratio of %v, above %v", a.Severity, a.Long, f, f*tt.budget, slo.MaxAlertErrorRatio)
				}
				got = append(got, f)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("factors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRulesSkipAlertsOfObjectivesThatCannotPage(t *testing.T) {
	s := mustSLO(t, `version: delayctl/v1
service: s
objectives:
  - name: median
    latency: {percentile: p50, threshold: 100ms}
`)
	var buf bytes.Buffer
	skipped, err := slo.WriteRules(&buf, s, slo.RulesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "median: an error budget of 50%") {
		t.Errorf("skipped %q, want the median objective's alerts with the reason", skipped)
	}
	if strings.Contains(buf.String(), "BudgetBurn") || !strings.Contains(buf.String(), "slo:period_error_budget_remaining:ratio") {
		t.Errorf("want recording rules and no burn-rate alert:\n%s", buf.String())
	}
}

func TestRulesRefuseThresholdsOffTheBuckets(t *testing.T) {
	s := mustSLO(t, `version: delayctl/v1
service: s
objectives:
  - name: p99
    latency: {percentile: p99, threshold: 350ms}
`)
	_, err := slo.WriteRules(&bytes.Buffer{}, s, slo.RulesOptions{})
	if !errors.Is(err, inputerr.Err) || !strings.Contains(err.Error(), "350ms is not a bucket bound") || !strings.Contains(err.Error(), "400ms") {
		t.Errorf("error %v, want an input error naming 350ms and listing the bounds", err)
	}
}

func TestRulesMatchWholeNumberBucketsInBothSpellings(t *testing.T) {
	s := mustSLO(t, `version: delayctl/v1
service: s
objectives:
  - name: slow
    latency: {target: 99%, threshold: 1s}
`)
	var buf bytes.Buffer
	if _, err := slo.WriteRules(&buf, s, slo.RulesOptions{}); err != nil {
		t.Fatal(err)
	}
	// client_golang writes le="1", Prometheus 3 normalises it to le="1.0".
	if !strings.Contains(buf.String(), `le=~"1|1\\.0"`) {
		t.Errorf("rules do not match le=1 and le=1.0:\n%s", buf.String())
	}
}

func TestRulesGolden(t *testing.T) {
	s, err := slo.LoadFile("../../configs/slo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := slo.WriteRules(&buf, s, slo.RulesOptions{Selector: `job="delayctl"`, Source: "configs/slo.yaml"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "rules-slo.yaml", buf.Bytes())
}
