package main

import (
	"strings"
	"testing"

	"github.com/delayctl/delayctl/pkg/evaluate"
)

func TestEvaluateFlags(t *testing.T) {
	tests := map[string]struct {
		args   []string
		want   func(o evaluate.Options) bool
		expErr string
	}{
		"A labelled CSV with the shipped SLO's model objectives.": {
			args: []string{"--model", "m.json", "--data", "new.csv", "--slo", "../../configs/slo.yaml", "-o", "markdown", "--html", "h.html"},
			want: func(o evaluate.Options) bool {
				return o.ModelPath == "m.json" && o.DataPath == "new.csv" && o.Format == "markdown" && o.HTMLPath == "h.html" &&
					len(o.Objectives) == 4 && o.Objectives[0].Metric == evaluate.MetricROCAUC && o.Objectives[2].Variable == "origin"
			},
		},
		"A prediction log joined with outcomes.": {
			args: []string{"--model", "m.json", "--predictions", "p.jsonl", "--outcomes", "o.csv", "--key-column", "id", "--label-column", "late"},
			want: func(o evaluate.Options) bool {
				return o.PredictionsPath == "p.jsonl" && o.OutcomesPath == "o.csv" && o.KeyColumn == "id" && o.LabelColumn == "late" &&
					o.Objectives == nil && o.Format == evaluate.FormatTable
			},
		},
		"Without a source it is a usage error.":    {args: []string{"--model", "m.json"}, expErr: "give --data"},
		"Predictions need outcomes.":               {args: []string{"--model", "m.json", "--predictions", "p"}, expErr: "--predictions needs --outcomes"},
		"An unknown format is a usage error.":      {args: []string{"--model", "m.json", "--data", "d", "-o", "pdf"}, expErr: `--format "pdf"`},
		"An unreadable SLO file is a usage error.": {args: []string{"--model", "m.json", "--data", "d", "--slo", "nope.yaml"}, expErr: "nope.yaml"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o, err := capture(t, nil, newEvaluateCmdWith, tc.args...)
			if tc.expErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.expErr) || exitCode(err) != exitUsage {
					t.Fatalf("error %v (exit %d), want a usage error saying %q", err, exitCode(err), tc.expErr)
				}
				return
			}
			if err != nil || !tc.want(o) {
				t.Fatalf("options %+v, error %v", o, err)
			}
		})
	}
}
