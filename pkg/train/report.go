package train

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteReport prints the cleaning summary and the evaluation table.
func WriteReport(w io.Writer, r *Result, modelPath string) error {
	m := r.Metrics
	b := m.Baseline
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	c := r.Clean
	fmt.Fprintf(tw, "rows read %d, kept %d (%s), delayed %d (%.1f%%)\n", c.RowsRead, c.RowsKept,
		droppedText(&c), c.Delayed, 100*float64(c.Delayed)/float64(max(c.RowsKept, 1)))
	fmt.Fprintf(tw, "fit: %s, %d iterations, %d passes, gradient norm %.1e (tolerance %g), l2 %g, %.3fs; total %.3fs\n\n",
		r.Fit.Solver, r.Fit.Iterations, r.Fit.Passes, r.Fit.GradientNorm, r.Fit.Tolerance, m.L2, r.Fit.Seconds, r.Fit.TotalSeconds)
	fmt.Fprintf(tw, "held-out test split: %d rows, %d delayed; threshold %.4f (%s)\n\n", m.Rows, m.Positives, m.Threshold, m.ThresholdMethod)
	th := m.TimeHoldout
	if th != nil {
		fmt.Fprintf(tw, "time holdout: trained on %s (%d rows), tested on %s (%d rows, %d delayed)\n\n",
			th.TrainPeriod, th.TrainRows, th.TestPeriod, th.Metrics.Rows, th.Metrics.Positives)
		fmt.Fprintf(tw, "metric\trandom split\ttime holdout\tbaseline (always %s)\n", b.Prediction)
	} else {
		fmt.Fprintf(tw, "metric\tmodel\tbaseline (always %s)\n", b.Prediction)
	}
	row := func(name string, get func(*Scores) float64) {
		fmt.Fprintf(tw, "%s\t%.4f", name, get(&m.Scores))
		if th != nil {
			fmt.Fprintf(tw, "\t%.4f", get(&th.Metrics.Scores))
		}
		fmt.Fprintf(tw, "\t%.4f\n", get(&b.Scores))
	}
	row("accuracy", func(s *Scores) float64 { return s.Accuracy })
	row("precision", func(s *Scores) float64 { return s.Precision })
	row("recall", func(s *Scores) float64 { return s.Recall })
	row("f1", func(s *Scores) float64 { return s.F1 })
	row("roc_auc", func(s *Scores) float64 { return s.ROCAUC })
	row("pr_auc", func(s *Scores) float64 { return s.PRAUC })
	row("log_loss", func(s *Scores) float64 { return s.LogLoss })
	row("brier", func(s *Scores) float64 { return s.Brier })
	cm := m.Confusion
	fmt.Fprintf(tw, "\nconfusion\tpredicted delayed\tpredicted on time\n")
	fmt.Fprintf(tw, "delayed\t%d\t%d\n", cm.TP, cm.FN)
	fmt.Fprintf(tw, "on time\t%d\t%d\n", cm.FP, cm.TN)
	if ls := m.L2Search; ls != nil {
		fmt.Fprintf(tw, "\nl2 chosen by %d-fold cross-validation of the training split: %g\n", ls.Folds, ls.Chosen)
		for _, g := range ls.Grid {
			mark := ""
			if g.L2 == ls.Chosen {
				mark = "  <- chosen"
			}
			fmt.Fprintf(tw, "  l2 %-8g roc_auc %.4f ± %.4f%s\n", g.L2, g.ROCAUC, g.ROCAUCStd, mark)
		}
	}
	if m.CVROCAUCMean != nil {
		folds := make([]string, len(m.CVROCAUC))
		for i, a := range m.CVROCAUC {
			folds[i] = fmt.Sprintf("%.4f", a)
		}
		fmt.Fprintf(tw, "\n%d-fold stratified cross-validation: roc_auc %.4f ± %.4f (folds %s)\n",
			m.CVFolds, *m.CVROCAUCMean, *m.CVROCAUCStd, strings.Join(folds, " "))
	}
	if cv := m.TimeCV; cv != nil {
		folds := make([]string, len(cv.ROCAUC))
		for i, a := range cv.ROCAUC {
			folds[i] = fmt.Sprintf("%.4f", a)
		}
		fmt.Fprintf(tw, "\n%d-fold time-blocked cross-validation: roc_auc %.4f ± %.4f (folds %s, tested on %s)\n",
			cv.Folds, cv.ROCAUCMean, cv.ROCAUCStd, strings.Join(folds, " "), strings.Join(cv.TestPeriods, ", "))
	}
	if th != nil {
		fmt.Fprintf(tw, "\nexpect the time holdout's figures in production: a deployed model always predicts days it has not seen\n")
	}
	if modelPath != "" {
		fmt.Fprintf(tw, "\nmodel %s version %s written to %s (%d features)\n", r.Model.Name, r.Model.Version, modelPath, r.Model.NumFeatures())
	}
	return tw.Flush()
}

func droppedText(c *CleanReport) string {
	if len(c.Dropped) == 0 {
		return "none dropped"
	}
	keys := make([]string, 0, len(c.Dropped))
	for k := range c.Dropped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", c.Dropped[k], k)
	}
	return "dropped " + strings.Join(parts, ", ")
}
