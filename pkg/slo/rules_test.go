package slo_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// exported are the metric names delayctl serve exports that rules may read.
var exported = map[string]bool{
	"delayctl_http_requests_total":                  true,
	"delayctl_http_request_duration_seconds_bucket": true,
	"delayctl_http_request_duration_seconds_count":  true,
	"process_resident_memory_bytes":                 true,
}

func TestRulesParseAndReadOnlyExportedMetrics(t *testing.T) {
	tests := map[string]struct {
		spec     string
		selector string
		// wantAlerts counts alerting rules: page and ticket per event objective, one per memory objective.
		wantAlerts int
	}{
		"The shipped SLO without a selector skips memory.":  {spec: "../../configs/slo.yaml", wantAlerts: 4},
		"The shipped SLO with a selector alerts on memory.": {spec: "../../configs/slo.yaml", selector: `job="delayctl"`, wantAlerts: 5},
		"The 99% SLO counts 429 as bad.":                    {spec: "../../configs/slo-99.yaml", wantAlerts: 2},
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
		// p90 <= 400ms: 10% budget, and the 0.4s bucket.
		`slo:sli_error:ratio_rate1h{service="delayctl",slo="latency-p90",window="1h"} > (14.4 * 0.1)`,
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
