package slo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

const day = 24 * time.Hour

func TestForeignSpecsMapOntoObjectives(t *testing.T) {
	tests := map[string]struct {
		file string
		want slo.SLO
	}{
		"A sloth spec maps delayctl metrics onto objectives and keeps other PromQL.": {
			file: "sloth.yaml",
			want: slo.SLO{Service: "delayctl", Window: 30 * day, RoutesExpr: "/predict", Labels: map[string]string{"owner": "mlops", "tier": "1"},
				Objectives: []slo.Objective{
					{Name: "requests-availability", Description: "Prediction requests answered without a 5xx or a 429.", Kind: slo.KindAvailability,
						Target: 0.999, RateLimitedBad: true, Labels: map[string]string{"category": "availability"},
						Alerting: &slo.Alerting{Name: "DelayctlHighErrorRate", Labels: map[string]string{"category": "availability"},
							Annotations: map[string]string{"summary": "High error rate on delayctl predictions"},
							Page:        slo.AlertOverride{Labels: map[string]string{"severity": "pageteam", "routing_key": "mlops"}},
							Ticket:      slo.AlertOverride{Disable: true}}},
					{Name: "requests-latency", Description: "Predictions answered within 300ms.", Kind: slo.KindLatency, Target: 0.99,
						Threshold: 300 * time.Millisecond, Alerting: &slo.Alerting{Page: slo.AlertOverride{Disable: true}}},
					{Name: "gateway-availability", Kind: slo.KindRatio, Target: 0.995, Raw: &slo.RawSLI{
						Source:    "sloth slos[2].sli.events",
						Bad:       `sum(rate(http_request_duration_seconds_count{job="gateway",code=~"(5..|429)"}[{{.window}}]))`,
						Total:     `sum(rate(http_request_duration_seconds_count{job="gateway"}[{{.window}}]))`,
						PerSecond: true}},
					{Name: "gateway-raw", Kind: slo.KindRatio, Target: 0.95, Raw: &slo.RawSLI{
						Source: "sloth slos[3].sli.raw",
						ErrorRatio: "sum(rate(http_request_duration_seconds_count{job=\"gateway\",code=~\"5..\"}[{{.window}}]))\n/\n" +
							"sum(rate(http_request_duration_seconds_count{job=\"gateway\"}[{{.window}}]))",
						PerSecond: true}},
				}},
		},
		"OpenSLO ratio metrics over delayctl metrics map onto availability and latency.": {
			file: "openslo-ratio.yaml",
			want: slo.SLO{Service: "delayctl", Window: 28 * day, RoutesExpr: "/|/predict",
				Objectives: []slo.Objective{
					{Name: "availability", Description: "Prediction availability", Kind: slo.KindAvailability, Target: 0.999,
						Labels: map[string]string{"team": "mlops"}},
					{Name: "latency", Description: "Predictions within 400ms.", Kind: slo.KindLatency, Target: 0.99, Threshold: 400 * time.Millisecond},
				}},
		},
		"OpenSLO threshold metrics and ratios of other metrics stay PromQL.": {
			file: "openslo-threshold.yaml",
			want: slo.SLO{Service: "delayctl", Window: 7 * day, RoutesExpr: slo.DefaultRoutes,
				Objectives: []slo.Objective{
					{Name: "p95-latency", Description: "p95 under 250ms", Kind: slo.KindRatio, Target: 0.99, Raw: &slo.RawSLI{
						Source:      `OpenSLO documents[0].spec.indicator.spec`,
						Good:        "sum(sum_over_time((((histogram_quantile(0.95, sum by (le) (rate(delayctl_http_request_duration_seconds_bucket[5m])))) <= bool 0.25) unless ((histogram_quantile(0.95, sum by (le) (rate(delayctl_http_request_duration_seconds_bucket[5m])))) != (histogram_quantile(0.95, sum by (le) (rate(delayctl_http_request_duration_seconds_bucket[5m]))))))[{{.window}}:1m]))",
						Total:       "sum(count_over_time((((histogram_quantile(0.95, sum by (le) (rate(delayctl_http_request_duration_seconds_bucket[5m])))) <= bool 0.25) unless ((histogram_quantile(0.95, sum by (le) (rate(delayctl_http_request_duration_seconds_bucket[5m])))) != (histogram_quantile(0.95, sum by (le) (rate(delayctl_http_request_duration_seconds_bucket[5m]))))))[{{.window}}:1m]))",
						Sample:      "((histogram_quantile(0.95, sum by (le) (rate(delayctl_http_request_duration_seconds_bucket[5m])))) <= bool 0.25) unless ((histogram_quantile(0.95, sum by (le) (rate(delayctl_http_request_duration_seconds_bucket[5m])))) != (histogram_quantile(0.95, sum by (le) (rate(delayctl_http_request_duration_seconds_bucket[5m])))))",
						SampleEvery: time.Minute, Recorded: `{service="delayctl",slo="p95-latency"}`}},
					{Name: "gateway-success", Kind: slo.KindRatio, Target: 0.995, Raw: &slo.RawSLI{
						Source:      `OpenSLO documents[1].spec.indicator.spec`,
						Good:        `sum(avg_over_time((sum(rate(gateway_requests_total{upstream="delayctl",code!~"5.."}[1m])))[{{.window}}:1m]))`,
						Total:       `sum(avg_over_time((sum(rate(gateway_requests_total{upstream="delayctl"}[1m])))[{{.window}}:1m]))`,
						PerSecond:   true,
						Sample:      `sum(sum(rate(gateway_requests_total{upstream="delayctl",code!~"5.."}[1m]))) or 0 * sum(sum(rate(gateway_requests_total{upstream="delayctl"}[1m])))`,
						SampleTotal: `sum(sum(rate(gateway_requests_total{upstream="delayctl"}[1m])))`,
						SampleEvery: time.Minute, Recorded: `{service="delayctl",slo="gateway-success"}`}},
				}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := slo.LoadFile(filepath.Join("testdata", "interop", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, *got, cmpopts.IgnoreFields(slo.SLO{}, "Routes")); diff != "" {
				t.Errorf("mapping differs (-want +got):\n%s", diff)
			}
			if !got.Routes.MatchString("/predict") {
				t.Errorf("routes %q do not select /predict", got.Routes)
			}
		})
	}
}

func TestForeignSpecRulesPassPromtool(t *testing.T) {
	promtool := promtoolPath(t)
	for _, file := range []string{"sloth.yaml", "openslo-ratio.yaml", "openslo-threshold.yaml"} {
		t.Run(file, func(t *testing.T) {
			var out, errOut bytes.Buffer
			path := filepath.Join("testdata", "interop", file)
			if err := slo.RunRules(context.Background(), slo.RulesRunOptions{SLOFile: path}, &out, &errOut); err != nil {
				t.Fatal(err)
			}
			rules := parseRules(t, out.Bytes())
			if len(rules.alerts) == 0 || len(rules.recorded) == 0 {
				t.Fatalf("no rules written:\n%s", out.String())
			}
			if promtool == "" {
				return
			}
			f := filepath.Join(t.TempDir(), "rules.yaml")
			if err := os.WriteFile(f, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
				t.Fatalf("promtool check rules: %v\n%s\n%s", err, msg, out.String())
			}
		})
	}
}

// promtoolPath finds promtool (Debian's prometheus package brings it). Without it the
// caller checks less and says so, except in CI, where its absence fails the test.
func promtoolPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not on PATH; CI must install it (apt-get install -y prometheus)")
		}
		t.Log("promtool is not on PATH: the rules are checked without Prometheus's own engine")
	}
	return p
}

// TestPromQLObjectivesEvaluateInPrometheus runs the recording rules of PromQL objectives in
// Prometheus's own rule engine (promtool test rules) over series with known error ratios.
func TestPromQLObjectivesEvaluateInPrometheus(t *testing.T) {
	promtool := promtoolPath(t)
	if promtool == "" {
		return
	}
	dir := t.TempDir()
	var rules bytes.Buffer
	for i, spec := range []string{"sloth.yaml", "openslo-threshold.yaml"} {
		rules.Reset()
		if err := slo.RunRules(context.Background(), slo.RulesRunOptions{SLOFile: filepath.Join("testdata", "interop", spec)}, &rules, io.Discard); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, fmt.Sprintf("rules%d.yaml", i), rules.Bytes())
	}
	// gateway_requests_total: 100 requests a minute, 25 of them 5xx, read as rates (OpenSLO
	// counter: false): an error ratio of 0.25.
	// gateway: 100 requests a minute, 50 of them 5xx: an error ratio of 0.5 in every window
	// (a share that floats exactly: promtool compares values exactly); idle after 2h, when
	// the error ratios have no sample rather than NaN.
	// delayctl: 600 requests a minute, all under 100ms for the first hour, then all over
	// 250ms (in the 0.5s bucket): the p95 <= 250ms threshold holds, then fails, minute by
	// minute.
	const tests = `rule_files: [rules0.yaml, rules1.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'http_request_duration_seconds_count{job="gateway",code="200"}'
        values: '0+50x120 6000+0x120'
      - series: 'http_request_duration_seconds_count{job="gateway",code="503"}'
        values: '0+50x120 6000+0x120'
      - series: 'gateway_requests_total{upstream="delayctl",code="200"}'
        values: '0+75x240'
      - series: 'gateway_requests_total{upstream="delayctl",code="502"}'
        values: '0+25x240'
      - series: 'delayctl_http_request_duration_seconds_bucket{route="/predict",le="0.1"}'
        values: '0+600x60 36000+0x180'
      - series: 'delayctl_http_request_duration_seconds_bucket{route="/predict",le="0.5"}'
        values: '0+600x240'
      - series: 'delayctl_http_request_duration_seconds_bucket{route="/predict",le="+Inf"}'
        values: '0+600x240'
    promql_expr_test:
      - expr: slo:sli_error:ratio_rate5m{slo="gateway-availability"}
        eval_time: 30m
        exp_samples:
          - labels: 'slo:sli_error:ratio_rate5m{service="delayctl",slo="gateway-availability",owner="mlops",tier="1",window="5m"}'
            value: 0.5
      - expr: slo:sli_error:ratio_rate30m{slo="gateway-raw"}
        eval_time: 2h
        exp_samples:
          - labels: 'slo:sli_error:ratio_rate30m{service="delayctl",slo="gateway-raw",owner="mlops",tier="1",window="30m"}'
            value: 0.5
      - expr: slo:sli_error:ratio_rate30m{slo=~"gateway-(availability|raw)"}
        eval_time: 3h
      - expr: slo:sli_error:ratio_rate1h{slo="gateway-success"}
        eval_time: 3h
        exp_samples:
          - labels: 'slo:sli_error:ratio_rate1h{service="delayctl",slo="gateway-success",window="1h"}'
            value: 0.25
      - expr: slo:sli_error:ratio_rate30m{slo="p95-latency"}
        eval_time: 50m
        exp_samples:
          - labels: 'slo:sli_error:ratio_rate30m{service="delayctl",slo="p95-latency",window="30m"}'
            value: 0
      - expr: slo:sli_error:ratio_rate30m{slo="p95-latency"}
        eval_time: 2h
        exp_samples:
          - labels: 'slo:sli_error:ratio_rate30m{service="delayctl",slo="p95-latency",window="30m"}'
            value: 1
`
	writeFile(t, dir, "tests.yaml", []byte(tests))
	cmd := exec.Command(promtool, "test", "rules", "tests.yaml")
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, msg)
	}
}

func TestSlothAlertingRenamesRelabelsAndDisables(t *testing.T) {
	s, err := slo.LoadFile("testdata/interop/sloth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := slo.WriteRules(&out, s, slo.RulesOptions{}); err != nil {
		t.Fatal(err)
	}
	got := map[string][]map[string]string{}
	for _, a := range parseRules(t, out.Bytes()).alerts {
		got[a.Labels["slo"]] = append(got[a.Labels["slo"]], map[string]string{
			"alert": a.Alert, "severity": a.Labels["severity"], "category": a.Labels["category"],
			"routing_key": a.Labels["routing_key"], "summary": a.Annotations["summary"], "owner": a.Labels["owner"]})
	}
	want := map[string][]map[string]string{
		// The ticket alert is disabled; the page alert takes sloth's name, labels and summary.
		"requests-availability": {{"alert": "DelayctlHighErrorRate", "severity": "pageteam", "category": "availability", "routing_key": "mlops",
			"summary": "High error rate on delayctl predictions", "owner": "mlops"}},
		// The page alert is disabled; the ticket alert keeps delayctl's name.
		"requests-latency": {{"alert": "DelayctlRequestsLatencyBudgetBurn", "severity": "ticket", "category": "", "routing_key": "", "owner": "mlops",
			"summary": "delayctl requests-latency SLO (99% of requests <= 300ms) is burning its 30d error budget too fast"}},
		// Both objectives read serve's own counters, so the spec also gets the page for their
		// absence (it carries the spec's labels, not one objective's).
		"": {{"alert": "DelayctlRequestsAbsent", "severity": "page", "category": "", "routing_key": "", "owner": "mlops",
			"summary": "delayctl: no request counter scraped for 10m; its SLOs cannot be measured"}},
	}
	for k := range got {
		if strings.HasPrefix(k, "gateway") {
			delete(got, k)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts differ (-want +got):\n%s", diff)
	}
}

func TestForeignSpecMistakesNameFieldAndLine(t *testing.T) {
	sloth := "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n"
	osl := "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n"
	ratio := "  indicator:\n    metadata: {name: i}\n    spec:\n      ratioMetric:\n        counter: true\n" +
		"        bad: {metricSource: {type: Prometheus, spec: {query: 'x{code=\"5\"}'}}}\n" +
		"        total: {metricSource: {type: Prometheus, spec: {query: x}}}\n"
	tests := map[string]struct {
		doc      string
		wantLine int
		wantText string
	}{
		"A sloth SLI plugin is refused.": {sloth + "    sli:\n      plugin:\n        id: sloth-common/kubernetes/apiserver/availability\n", 8,
			"slos[0].sli.plugin: sloth SLI plugins have no mapping"},
		"Sloth SLO plugins are refused.": {"version: prometheus/v1\nservice: s\nslo_plugins:\n  chain: []\nslos: []\n", 4, "slo_plugins: sloth SLO plugins have no mapping"},
		"A sloth query without the window template is refused.": {sloth + "    sli:\n      events:\n        error_query: sum(rate(x{code=\"5\"}[5m]))\n        total_query: sum(rate(x[{{.window}}]))\n", 8,
			"slos[0].sli.events.error_query: query \"sum(rate(x{code=\\\"5\\\"}[5m]))\" must use the {{.window}} template"},
		"A sloth query that is not PromQL is refused.": {sloth + "    sli:\n      raw:\n        error_ratio_query: sum(rate(x[{{.window}}])\n", 8,
			"slos[0].sli.raw.error_ratio_query: query \"sum(rate(x[{{.window}}])\" is not valid PromQL"},
		"A sloth objective of 0 is refused.":     {"version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 0\n    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n", 5, "slos[0].objective: objective 0 is outside (0, 100]"},
		"A sloth SLI without a kind is refused.": {sloth + "    sli: {}\n", 6, "slos[0].sli: an SLI is required"},
		"An unknown sloth field is refused.":     {sloth + "    objetive: 99\n", 6, `slos[0].objetive: unknown field "objetive"`},
		"A sloth name delayctl cannot label is refused.": {"version: prometheus/v1\nservice: s\nslos:\n  - name: Requests Availability\n    objective: 99\n", 4,
			`slos[0].name: name "Requests Availability" must be lower case`},
		"An OpenSLO calendar window is refused.": {osl + ratio + "  timeWindow:\n    - duration: 1M\n      calendar: {startTime: '2022-01-01 12:00:00', timeZone: UTC}\n  objectives: [{target: 0.99}]\n", 14,
			"spec.timeWindow[0]: calendar windows have no mapping"},
		"An OpenSLO rolling month is refused.": {osl + ratio + "  timeWindow:\n    - duration: 1M\n      isRolling: true\n  objectives: [{target: 0.99}]\n", 14,
			`spec.timeWindow[0].duration: duration "1M" has no fixed length`},
		"OpenSLO timeslices of a ratio metric are refused.": {osl + ratio + "  budgetingMethod: Timeslices\n  objectives: [{target: 0.99}]\n", 13,
			`spec.budgetingMethod: budgeting method "Timeslices" has no mapping for a ratio metric`},
		"OpenSLO alert policies are refused.": {osl + ratio + "  alertPolicies: [fast-burn]\n  objectives: [{target: 0.99}]\n", 13, "spec.alertPolicies: alert policies have no mapping"},
		"An OpenSLO AlertPolicy object is refused.": {osl + ratio + "  objectives: [{target: 0.99}]\n---\napiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: p}\nspec: {}\n", 16,
			`documents[1].kind: kind "AlertPolicy" has no mapping`},
		"OpenSLO v1alpha is refused.": {"apiVersion: openslo/v1alpha\nkind: SLO\nmetadata: {name: a}\nspec: {}\n", 1, `apiVersion: apiVersion "openslo/v1alpha" is not read`},
		"A non-Prometheus metric source is refused.": {osl + strings.Replace(ratio, "bad: {metricSource: {type: Prometheus", "bad: {metricSource: {type: Datadog", 1) + "  objectives: [{target: 0.99}]\n", 11,
			`spec.indicator.spec.ratioMetric.bad.metricSource.type: metric source type "Datadog" has no mapping`},
		"A counter that is not a selector is refused.": {osl + strings.Replace(ratio, "query: x}", "query: 'sum(x)'}", 1) + "  objectives: [{target: 0.99}]\n", 12,
			`counter query "sum(x)" must be a metric selector`},
		"A threshold objective without op is refused.": {osl + "  indicator:\n    metadata: {name: i}\n    spec:\n      thresholdMetric: {metricSource: {spec: {query: up}}}\n  objectives: [{target: 0.99}]\n", 10,
			`spec.objectives[0].op: op "": a threshold metric's objective needs op lt, lte, gt or gte`},
		"A sloth SLO label delayctl sets itself is refused.": {sloth + "    labels: {severity: high}\n    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n", 6,
			`slos[0].labels.severity: label "severity" is set by delayctl itself`},
		"An OpenSLO label that is not a label name is refused.": {strings.Replace(osl, "metadata: {name: a}", "metadata: {name: a, labels: {team-name: x}}", 1) + ratio + "  objectives: [{target: 0.99}]\n", 3,
			`metadata.labels.team-name: invalid label name "team-name"`},
		"A target above 1 is refused.":              {osl + ratio + "  objectives: [{target: 99}]\n", 13, "spec.objectives[0].target: target 99 is outside (0, 1]"},
		"A missing indicatorRef target is refused.": {osl + "  indicatorRef: nowhere\n  objectives: [{target: 0.99}]\n", 6, `spec.indicatorRef: no SLI object named "nowhere"`},
		"Composite objectives are refused.":         {osl + ratio + "  objectives: [{target: 0.99, indicatorRef: other, compositeWeight: 1}]\n", 13, "composite SLOs"},
		"Two services in one file are refused.": {osl + ratio + "  objectives: [{target: 0.99}]\n---\n" + strings.Replace(strings.Replace(osl, "service: s", "service: t", 1), "name: a", "name: b", 1) + ratio + "  objectives: [{target: 0.99}]\n", 19,
			`documents[1].spec.service: service "t" differs from "s"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := slo.Load(strings.NewReader(tt.doc), "in.yaml")
			var se *slo.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *SpecError", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			if se.Line != tt.wantLine || se.File != "in.yaml" {
				t.Errorf("error at %s:%d, want in.yaml:%d (%v)", se.File, se.Line, tt.wantLine, err)
			}
		})
	}
}

func TestPromQLObjectivesNeedPrometheus(t *testing.T) {
	dir := t.TempDir()
	results := writeFile(t, dir, "run.bin", encode(t, run(10, func(int) (uint16, time.Duration) { return 200, time.Millisecond }), "gob"))
	tests := map[string]slo.Options{
		"Results files cannot evaluate PromQL.": {Results: []string{results}},
		"A scrape cannot evaluate PromQL.":      {Scrape: "http://127.0.0.1:1/metrics", Interval: time.Second},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			opts.SLOFile, opts.Format, opts.Timeout = "testdata/interop/sloth.yaml", slo.FormatTable, time.Second
			var out, errOut bytes.Buffer
			err := slo.Run(context.Background(), opts, &out, &errOut)
			if !errors.Is(err, slo.ErrPromQLOnly) {
				t.Fatalf("got %v, want ErrPromQLOnly", err)
			}
			for _, want := range []string{`"gateway-availability" (sloth slos[2].sli.events)`, `"gateway-raw" (sloth slos[3].sli.raw)`, "use --prometheus"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if out.Len() > 0 {
				t.Errorf("a report was written: %s", out.String())
			}
		})
	}
}

// parsedRules holds the recording rule names and the alerts of a rules file.
type parsedRules struct {
	recorded map[string]bool
	alerts   []parsedAlert
	exprs    []string
}

type parsedAlert struct {
	Alert       string            `yaml:"alert"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func parseRules(t *testing.T, data []byte) parsedRules {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []struct {
				Record      string `yaml:"record"`
				Expr        string `yaml:"expr"`
				parsedAlert `yaml:",inline"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("rules are not YAML: %v", err)
	}
	out := parsedRules{recorded: map[string]bool{}}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out.exprs = append(out.exprs, r.Expr)
			if r.Record != "" {
				out.recorded[r.Record] = true
			} else {
				out.alerts = append(out.alerts, r.parsedAlert)
			}
		}
	}
	return out
}

func FuzzLoadForeign(f *testing.F) {
	// Small seeds: the fuzzer minimises every input that finds new code, and minimising the
	// fixture files through the PromQL parser takes longer than a short fuzz run.
	for _, seed := range []string{
		"version: prometheus/v1\nservice: s\nslos:\n- name: a\n  objective: 99.9\n  sli: {events: {error_query: 'sum(rate(delayctl_http_requests_total{code=~\"5..\"}[{{.window}}]))', total_query: 'sum(rate(delayctl_http_requests_total[{{.window}}]))'}}\n  alerting: {name: A, page_alert: {disable: true}}\n",
		"version: prometheus/v1\nservice: s\nslos:\n- name: b\n  objective: 95\n  sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n",
		"apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n  timeWindow: [{duration: 7d, isRolling: true}]\n  indicator: {metadata: {name: i}, spec: {ratioMetric: {counter: true, good: {metricSource: {spec: {query: 'delayctl_http_request_duration_seconds_bucket{le=\"0.4\"}'}}}, total: {metricSource: {spec: {query: delayctl_http_request_duration_seconds_count}}}}}}\n  objectives: [{targetPercent: 99}]\n",
		"apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec:\n  service: s\n  budgetingMethod: Timeslices\n  indicator: {metadata: {name: i}, spec: {thresholdMetric: {metricSource: {type: Prometheus, spec: {query: up}}}}}\n  objectives: [{op: gte, value: 1, target: 0.99, timeSliceWindow: 1m}]\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		s, foreign, err := slo.LoadForeign([]byte(doc))
		if err != nil {
			var se *slo.SpecError
			if !foreign || !errors.As(err, &se) {
				t.Fatalf("error %v (foreign %v) is not a *SpecError of a foreign spec", err, foreign)
			}
			return
		}
		if !foreign {
			return
		}
		if s.Window <= 0 || len(s.Objectives) == 0 || s.Service == "" || s.Routes == nil {
			t.Fatalf("accepted an invalid slo: %+v", s)
		}
		for _, o := range s.Objectives {
			if o.Target <= 0 || o.Target > 1 || o.Kind == slo.KindRatio && o.Raw == nil {
				t.Fatalf("objective %+v is invalid", o)
			}
		}
		if _, err := slo.WriteRules(io.Discard, s, slo.RulesOptions{}); err != nil {
			t.Fatalf("an accepted spec has no rules: %v", err)
		}
	})
}

func TestStepJudgeSkipsPromQLObjectives(t *testing.T) {
	s, err := slo.LoadFile("testdata/interop/sloth.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j := slo.NewStepJudge(s)
	for _, r := range run(1000, func(int) (uint16, time.Duration) { return 200, 2 * time.Millisecond }) {
		j.Add(&r)
	}
	ok, line := j.Verdict()
	want := "requests-availability 100% >= 99.9% ok, requests-latency share <= 300ms: 100% >= 99% ok, gateway-availability skipped, gateway-raw skipped"
	if !ok || line != want {
		t.Errorf("verdict %v %q, want true %q", ok, line, want)
	}
}

func TestSlothSLIsOverDelayctlMetrics(t *testing.T) {
	tests := map[string]struct {
		errorQuery, totalQuery string
		want                   slo.Objective
		wantRoutes             string
	}{
		"5xx over all requests is availability on every route.": {
			errorQuery: `sum(rate(delayctl_http_requests_total{code=~"5.."}[{{.window}}]))`,
			totalQuery: `sum(rate(delayctl_http_requests_total[{{.window}}]))`,
			want:       slo.Objective{Kind: slo.KindAvailability}, wantRoutes: ".*"},
		"4xx and 5xx with increase and one route make client errors bad.": {
			errorQuery: `sum(increase(delayctl_http_requests_total{route="/predict",code=~"5..|4.."}[{{.window}}]))`,
			totalQuery: `sum(increase(delayctl_http_requests_total{route="/predict"}[{{.window}}]))`,
			want:       slo.Objective{Kind: slo.KindAvailability, ClientErrorsBad: true}, wantRoutes: "/predict"},
		"Latency in sloth's documented form, in parentheses, maps onto a threshold.": {
			errorQuery: "(\n  sum(rate(delayctl_http_request_duration_seconds_count[{{.window}}]))\n  -\n  sum(rate(delayctl_http_request_duration_seconds_bucket{le=\"0.1\"}[{{.window}}]))\n)",
			totalQuery: `sum(rate(delayctl_http_request_duration_seconds_count[{{.window}}]))`,
			want:       slo.Objective{Kind: slo.KindLatency, Threshold: 100 * time.Millisecond}, wantRoutes: ".*"},
		"A threshold that is not a bucket bound stays PromQL.": {
			errorQuery: "sum(rate(delayctl_http_request_duration_seconds_count[{{.window}}])) - sum(rate(delayctl_http_request_duration_seconds_bucket{le=\"0.15\"}[{{.window}}]))",
			totalQuery: `sum(rate(delayctl_http_request_duration_seconds_count[{{.window}}]))`,
			want:       slo.Objective{Kind: slo.KindRatio}, wantRoutes: slo.DefaultRoutes},
		"A job matcher stays PromQL.": {
			errorQuery: `sum(rate(delayctl_http_requests_total{job="delayctl",code=~"5.."}[{{.window}}]))`,
			totalQuery: `sum(rate(delayctl_http_requests_total{job="delayctl"}[{{.window}}]))`,
			want:       slo.Objective{Kind: slo.KindRatio}, wantRoutes: slo.DefaultRoutes},
		"Different routes on the two sides stay PromQL.": {
			errorQuery: `sum(rate(delayctl_http_requests_total{route="/",code=~"5.."}[{{.window}}]))`,
			totalQuery: `sum(rate(delayctl_http_requests_total{route="/predict"}[{{.window}}]))`,
			want:       slo.Objective{Kind: slo.KindRatio}, wantRoutes: slo.DefaultRoutes},
		"A sum by a label stays PromQL.": {
			errorQuery: `sum by (route) (rate(delayctl_http_requests_total{code=~"5.."}[{{.window}}]))`,
			totalQuery: `sum by (route) (rate(delayctl_http_requests_total[{{.window}}]))`,
			want:       slo.Objective{Kind: slo.KindRatio}, wantRoutes: slo.DefaultRoutes},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			doc := fmt.Sprintf("version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 99\n    sli:\n      events:\n        error_query: %q\n        total_query: %q\n",
				tt.errorQuery, tt.totalQuery)
			s, err := slo.Load(strings.NewReader(doc), "in.yaml")
			if err != nil {
				t.Fatal(err)
			}
			got := s.Objectives[0]
			if got.Kind == slo.KindRatio {
				got.Raw = nil
			}
			tt.want.Name, tt.want.Target = "a", 0.99
			if diff := cmp.Diff(tt.want, got); diff != "" || s.RoutesExpr != tt.wantRoutes {
				t.Errorf("routes %q (want %q); objective (-want +got):\n%s", s.RoutesExpr, tt.wantRoutes, diff)
			}
		})
	}
}
