package main

import (
	"context"
	"io"
	"strings"

	"github.com/delayctl/delayctl/pkg/evaluate"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/spf13/cobra"
)

func init() { commandConstructors = append(commandConstructors, newEvaluateCmd) }

func newEvaluateCmd(ios *IOStreams) *cobra.Command {
	return newEvaluateCmdWith(ios, func(ctx context.Context, o evaluate.Options, out io.Writer) error {
		_, err := evaluate.Run(ctx, o, out)
		return err
	})
}

func newEvaluateCmdWith(ios *IOStreams, runF func(context.Context, evaluate.Options, io.Writer) error) *cobra.Command {
	var o evaluate.Options
	var sloFile string
	cmd := &cobra.Command{
		Use:   "evaluate --model M (--data NEW.csv | --predictions LOG --outcomes CSV)",
		Short: "Is the deployed model still as good as at training? Quality and drift on new labelled data",
		Long: `evaluate scores a model on newly labelled flights: a CSV in any layout train reads
(cleaned by the model's own training config unless --pipeline is given), or the server's
--prediction-log joined with a CSV of outcomes by request id. It reports ROC AUC, PR AUC,
log loss, Brier, calibration and the confusion at the model's threshold beside the
training-time figures, and the PSI of every feature and of the predictions against the
baseline recorded in the model, naming the categories that moved most.

Model objectives come from the SLO file's model objectives (--slo); without one, prediction
PSI <= 0.25 and the largest feature PSI <= 0.25 are judged.

Exit codes: 0 healthy, 1 a model objective breached, 2 usage or input error.`,
		Example: `  delayctl evaluate --model out/model.json --data out/later.csv
  delayctl evaluate --model out/model.json --data out/later.csv --slo configs/slo.yaml --html out/health.html
  delayctl evaluate --model out/model.json --predictions out/predictions.jsonl --outcomes outcomes.csv --key-column id`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "evaluate"); err != nil {
				return err
			}
			if sloFile != "" {
				objs, err := modelObjectives(sloFile)
				if err != nil {
					return inputerr.Wrap(err)
				}
				o.Objectives = objs
			}
			if err := o.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			return runF(cmd.Context(), o, ios.Out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ModelPath, "model", "", "model `file` to evaluate (required)")
	f.StringVar(&o.DataPath, "data", "", "labelled flight `CSV` to score")
	f.StringVar(&o.ConfigPath, "pipeline", "", "training pipeline config `file` for --data (default: the config recorded in the model)")
	f.StringVar(&o.PredictionsPath, "predictions", "", "serve --prediction-log `file` to join with --outcomes")
	f.StringVar(&o.OutcomesPath, "outcomes", "", "`CSV` of true outcomes for --predictions")
	f.StringVar(&o.KeyColumn, "key-column", evaluate.DefaultKeyColumn, "column of --outcomes holding the request id (X-Request-Id; id/N for a batch's N-th instance)")
	f.StringVar(&o.LabelColumn, "label-column", "", "0/1 outcome column of --outcomes (default: the model's label column)")
	f.StringVar(&sloFile, "slo", "", "SLO `file` whose model objectives to judge (default: prediction_psi <= 0.25, feature_psi <= 0.25)")
	f.StringVarP(&o.Format, "output", "o", evaluate.FormatTable, "report format: "+strings.Join(evaluate.Formats, ", "))
	f.StringVar(&o.HTMLPath, "html", "", "also write the HTML report with its plots to this `file`")
	f.StringVar(&o.PlotsDir, "plots", "", "write calibration.png, scores.png and psi.png into this `dir`")
	return cmd
}

// modelObjectives reads the model objectives of an SLO file for evaluate.
func modelObjectives(path string) ([]evaluate.Objective, error) {
	s, err := slo.LoadFile(path)
	if err != nil {
		return nil, err
	}
	objs := []evaluate.Objective{}
	for _, o := range s.Objectives {
		if o.Kind == slo.KindModel {
			objs = append(objs, evaluate.Objective{Name: o.Name, Metric: o.ModelMetric, Bound: o.ModelBound, Variable: o.ModelVariable})
		}
	}
	return objs, nil
}
