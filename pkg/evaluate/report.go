package evaluate

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/delayctl/delayctl/pkg/train"
)

// Report is an evaluation: today's figures beside the training-time ones, drift against the
// model's baseline, and the objectives' verdicts.
type Report struct {
	Model     string  `json:"model"`
	Version   string  `json:"version"`
	Source    string  `json:"source"`
	Rows      int     `json:"rows"`
	Positives int     `json:"positives"`
	Threshold float64 `json:"threshold"`
	// Now scores the model on the new rows at its own threshold.
	Now train.Metrics `json:"now"`
	// Training is the random held-out split's scores at training; TrainingTime the
	// time-ordered holdout's, when the model recorded one.
	Training     *train.Scores    `json:"training,omitempty"`
	TrainingTime *train.Scores    `json:"training_time_holdout,omitempty"`
	Calibration  []CalibrationBin `json:"calibration"`
	// ScoreBins counts the new rows per probability bin (the baseline's bins).
	ScoreBins  []float64         `json:"score_bins"`
	Drift      *Drift            `json:"drift,omitempty"`
	Objectives []ObjectiveResult `json:"objectives"`
	Notes      []string          `json:"notes,omitempty"`
}

// CalibrationBin is one probability bin: today's mean prediction and observed delay rate,
// and the observed rate of the training baseline's held-out rows in the same bin.
type CalibrationBin struct {
	Low              float64 `json:"low"`
	High             float64 `json:"high"`
	Rows             int     `json:"rows"`
	MeanPredicted    Num     `json:"mean_predicted"`
	Observed         Num     `json:"observed"`
	TrainingRows     int     `json:"training_rows"`
	TrainingObserved Num     `json:"training_observed"`
}

// Drift is the PSI of the predictions and of each feature against the model's baseline,
// features sorted from most to least drifted.
type Drift struct {
	BaselineRows  int            `json:"baseline_rows"`
	PredictionPSI Num            `json:"prediction_psi"`
	Features      []FeatureDrift `json:"features"`
}

// FeatureDrift is one feature's PSI, its share of unseen categories now and at training, and
// the bins that moved most.
type FeatureDrift struct {
	Variable            string     `json:"variable"`
	PSI                 Num        `json:"psi"`
	UnseenShare         Num        `json:"unseen_share"`
	TrainingUnseenShare Num        `json:"training_unseen_share"`
	TopBins             []BinShift `json:"top_bins"`
}

// BinShift is one category's (or value range's) share now and at training, and its term of
// the PSI sum.
type BinShift struct {
	Bin           string  `json:"bin"`
	TrainingShare float64 `json:"training_share"`
	Share         float64 `json:"share"`
	Contribution  float64 `json:"psi_contribution"`
}

// Healthy reports whether no objective is breached.
func (r *Report) Healthy() bool { return r.Err() == nil }

func write(w io.Writer, r *Report, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatMarkdown:
		return writeMarkdown(w, r)
	case FormatHTML:
		return writeHTML(w, r)
	}
	return writeTable(w, r)
}

// qualityRow is one line of the quality table: a name and how to read it from scores.
type qualityRow struct {
	name string
	get  func(*train.Scores) float64
}

var qualityRows = []qualityRow{
	{"roc_auc", func(s *train.Scores) float64 { return s.ROCAUC }},
	{"pr_auc", func(s *train.Scores) float64 { return s.PRAUC }},
	{"log_loss", func(s *train.Scores) float64 { return s.LogLoss }},
	{"brier", func(s *train.Scores) float64 { return s.Brier }},
	{"precision", func(s *train.Scores) float64 { return s.Precision }},
	{"recall", func(s *train.Scores) float64 { return s.Recall }},
	{"f1", func(s *train.Scores) float64 { return s.F1 }},
	{"accuracy", func(s *train.Scores) float64 { return s.Accuracy }},
}

func cell(s *train.Scores, get func(*train.Scores) float64) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", get(s))
}

func verdict(r *Report) string {
	if r.Healthy() {
		return "HEALTHY: every model objective is met"
	}
	return "UNHEALTHY: " + r.Err().Error()
}

// table is the report as rows of cells, shared by the text and Markdown writers.
type table struct {
	head []string
	rows [][]string
}

func (r *Report) tables() (quality, drift, objectives table) {
	quality.head = []string{"metric", "now", "training (random split)", "training (time holdout)"}
	for _, q := range qualityRows {
		quality.rows = append(quality.rows, []string{q.name, cell(&r.Now.Scores, q.get), cell(r.Training, q.get), cell(r.TrainingTime, q.get)})
	}
	if r.Drift != nil {
		drift.head = []string{"variable", "psi", "unseen now", "unseen at training", "moved most (training -> now)"}
		drift.rows = append(drift.rows, []string{"(predictions)", fmt.Sprintf("%.4f", float64(r.Drift.PredictionPSI)), "", "", ""})
		for _, f := range r.Drift.Features {
			var moved []string
			for _, b := range f.TopBins {
				moved = append(moved, fmt.Sprintf("%s %.1f%% -> %.1f%%", b.Bin, 100*b.TrainingShare, 100*b.Share))
			}
			drift.rows = append(drift.rows, []string{f.Variable, fmt.Sprintf("%.4f", float64(f.PSI)), pct(float64(f.UnseenShare)), pct(float64(f.TrainingUnseenShare)), strings.Join(moved, ", ")})
		}
	}
	objectives.head = []string{"objective", "target", "measured", "status"}
	for _, o := range r.Objectives {
		v := fmt.Sprintf("%.4f", float64(o.Value))
		if math.IsNaN(float64(o.Value)) {
			v = "-"
		}
		if o.Detail != "" {
			v += " (" + o.Detail + ")"
		}
		objectives.rows = append(objectives.rows, []string{o.Name, o.Objective.String(), v, o.Status})
	}
	return quality, drift, objectives
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func (r *Report) header() string {
	return fmt.Sprintf("model %s version %s on %s: %d rows, %d delayed (%.1f%%); threshold %.4f",
		r.Model, r.Version, r.Source, r.Rows, r.Positives, 100*float64(r.Positives)/float64(r.Rows), r.Threshold)
}

func writeTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, r.header())
	q, d, o := r.tables()
	for _, t := range []table{q, d, o} {
		if t.head == nil {
			continue
		}
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, strings.Join(t.head, "\t"))
		for _, row := range t.rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
	}
	c := r.Now.Confusion
	fmt.Fprintf(tw, "\nconfusion at %.4f\tpredicted delayed\tpredicted on time\n", r.Threshold)
	fmt.Fprintf(tw, "delayed\t%d\t%d\n", c.TP, c.FN)
	fmt.Fprintf(tw, "on time\t%d\t%d\n", c.FP, c.TN)
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "\nnote: %s\n", n)
	}
	fmt.Fprintf(tw, "\n%s\n", verdict(r))
	return tw.Flush()
}

func writeMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Model health: %s %s\n\n%s\n\n**%s**\n", r.Model, r.Version, r.header(), verdict(r))
	q, d, o := r.tables()
	for _, t := range []struct {
		title string
		t     table
	}{{"Objectives", o}, {"Quality", q}, {"Drift (PSI against the training baseline)", d}} {
		if t.t.head == nil {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n| %s |\n|%s\n", t.title, strings.Join(t.t.head, " | "), strings.Repeat(" --- |", len(t.t.head)))
		for _, row := range t.t.rows {
			for i := range row {
				row[i] = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(row[i])
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		}
	}
	c := r.Now.Confusion
	fmt.Fprintf(&b, "\n## Confusion at %.4f\n\n| | predicted delayed | predicted on time |\n| --- | --- | --- |\n| delayed | %d | %d |\n| on time | %d | %d |\n",
		r.Threshold, c.TP, c.FN, c.FP, c.TN)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n> note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Num is a float64 that encodes NaN (no data) as JSON null.
type Num float64

// MarshalJSON writes null for NaN and infinities, the number otherwise.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}
