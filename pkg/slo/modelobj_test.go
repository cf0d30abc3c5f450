package slo_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/delayctl/delayctl/pkg/slo"
)

const modelSLO = `version: delayctl/v1
service: delayctl
objectives:
  - name: auc
    model: {metric: roc_auc, min: 0.6}
  - name: prediction-drift
    model: {metric: prediction_psi, max: 0.2}
  - name: any-feature
    model: {metric: feature_psi, max: 0.25}
  - name: airports
    model: {metric: feature_psi, variable: origin, max: 0.1}
  - name: unseen
    model: {metric: unseen_share, max: 0.05}
`

func TestModelObjectiveMistakes(t *testing.T) {
	head := "version: delayctl/v1\nservice: s\nobjectives:\n  - name: a\n    model:\n"
	tests := map[string]struct{ doc, want string }{
		"An unknown metric is refused.":                 {head + "      metric: accuracy\n      min: 0.8\n", `objectives[0].model.metric: unknown metric "accuracy"`},
		"A quality score takes a floor, not a ceiling.": {head + "      metric: roc_auc\n      max: 0.8\n", "roc_auc needs min (and only min)"},
		"A PSI takes a ceiling.":                        {head + "      metric: prediction_psi\n      min: 0.1\n", "prediction_psi needs max"},
		"A bound must be a number.":                     {head + "      metric: brier\n      max: low\n", `want a finite number >= 0, got "low"`},
		"A variable narrows feature_psi only.":          {head + "      metric: prediction_psi\n      max: 0.2\n      variable: origin\n", "variable applies to feature_psi and unseen_share only"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := slo.Load(strings.NewReader(tc.doc), "slo.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// driftExposition adds serve's drift gauges to a request exposition.
func driftExposition(prediction, origin, month float64) string {
	unseen := 0.0
	if month > 1 {
		unseen = 1 // a month the model never saw
	}
	return exposition(map[string]int{"200": 1000}, 900, 1000, 1000, 1000, 50e6) +
		"# TYPE delayctl_drift_prediction_psi gauge\ndelayctl_drift_prediction_psi " + ftoa(prediction) + "\n" +
		"# TYPE delayctl_drift_feature_psi gauge\n" +
		`delayctl_drift_feature_psi{variable="origin"} ` + ftoa(origin) + "\n" +
		`delayctl_drift_feature_psi{variable="month"} ` + ftoa(month) + "\n" +
		"# TYPE delayctl_drift_feature_unseen_ratio gauge\n" +
		`delayctl_drift_feature_unseen_ratio{variable="origin"} 0` + "\n" +
		`delayctl_drift_feature_unseen_ratio{variable="month"} ` + ftoa(unseen) + "\n"
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func TestModelObjectivesFromScrape(t *testing.T) {
	tests := map[string]struct {
		text string
		want map[string]string
	}{
		"Drift gauges under their bounds are met; quality needs evaluate.": {
			text: driftExposition(0.05, 0.02, 0.2),
			want: map[string]string{"auc": "skipped", "prediction-drift": "met", "any-feature": "met", "airports": "met", "unseen": "met"},
		},
		"The largest feature PSI breaches even when the named variable is fine.": {
			text: driftExposition(0.05, 0.02, 3),
			want: map[string]string{"prediction-drift": "met", "any-feature": "breached", "airports": "met", "unseen": "breached"},
		},
		"Without drift gauges (too few predictions) there is no data.": {
			text: exposition(map[string]int{"200": 1000}, 900, 1000, 1000, 1000, 50e6),
			want: map[string]string{"auc": "skipped", "prediction-drift": "no_data", "airports": "no_data"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := twoScrapes(t, tc.text, tc.text)
			var out, errOut bytes.Buffer
			opts := slo.Options{SLOFile: writeFile(t, t.TempDir(), "slo.yaml", []byte(modelSLO)), Scrape: srv.URL + "/metrics",
				Interval: time.Millisecond, Timeout: 5 * time.Second, Format: slo.FormatJSON, Now: fixedClock(t0, time.Second)}
			_ = slo.Run(context.Background(), opts, &out, &errOut)
			got := decodeReport(t, out.Bytes())
			for name, want := range tc.want {
				if got[name].Status != want {
					t.Errorf("%s: %s (%v), want %s", name, got[name].Status, got[name].Value, want)
				}
			}
		})
	}
}

func TestModelObjectiveRules(t *testing.T) {
	s := mustSLO(t, modelSLO)
	var buf bytes.Buffer
	skipped, err := slo.WriteRules(&buf, s, slo.RulesOptions{Selector: `job="delayctl"`})
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "auc: roc_auc needs outcomes") {
		t.Errorf("skipped %q, want the AUC objective only", skipped)
	}
	for _, want := range []string{
		`max(delayctl_drift_prediction_psi{job="delayctl"}) > 0.2`,
		`max(delayctl_drift_feature_psi{job="delayctl"}) > 0.25`,
		`max(delayctl_drift_feature_psi{variable="origin",job="delayctl"}) > 0.1`,
		"alert: DelayctlAirportsOutOfBounds",
		`max(delayctl_drift_feature_unseen_ratio{job="delayctl"}) > 0.05`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("rules lack %q:\n%s", want, buf.String())
		}
	}
}
