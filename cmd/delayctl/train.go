package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/train"
	"github.com/spf13/cobra"
)

func init() { commandConstructors = append(commandConstructors, newTrainCmd) }

func newTrainCmd(ios *IOStreams) *cobra.Command {
	return newTrainCmdWith(ios, func(ctx context.Context, o train.Options, out io.Writer) error {
		_, err := train.Run(ctx, o, out)
		return err
	})
}

func newTrainCmdWith(ios *IOStreams, runF func(context.Context, train.Options, io.Writer) error) *cobra.Command {
	var o train.Options
	cmd := &cobra.Command{
		Use:   "train --data FILE --out model.json",
		Short: "Clean a flight CSV, fit a logistic regression and write the model",
		Long: `Train cleans flight CSVs (.csv, .csv.gz or BTS monthly .zip; several files or globs read
as one table) by the pipeline config (--config, default: the BTS layout of
configs/train.yaml), one-hot encodes the calendar, hour and airport features and their
crosses, fits an L2-regularised logistic regression (Newton, or Newton-CG for wide designs;
--l2 auto chooses the strength by cross-validation), evaluates it on a stratified held-out
split against the majority-class baseline, and writes a checksummed JSON model. An output
that would overwrite an input is refused.

The same data, config and seed give the same model file on any number of cores.
Details: docs/TRAIN.md.`,
		Example: `  delayctl train --data data/flightdata.csv --out out/model.json
  delayctl train --data data/flightdata.csv --out out/model.json --cv 5 --metrics-out out/metrics.json --plots out/plots
  delayctl train --data 'bts/On_Time_*_2023_*.zip' --out out/model.json
  delayctl train --data nyc.csv --config configs/nycflights.yaml --out nyc-model.json`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"ownConfig": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "train"); err != nil {
				return err
			}
			o.ConfigPath, _ = cmd.Flags().GetString("config")
			if len(o.DataPaths) > 0 {
				o.DataPath = o.DataPaths[0]
			}
			o.SeedSet = cmd.Flags().Changed("seed")
			o.TimeHoldoutSet = cmd.Flags().Changed("time-holdout")
			o.TimeCVSet = cmd.Flags().Changed("time-cv")
			o.ToolVersion = version
			o.Logger = slog.New(slog.NewTextHandler(ios.ErrOut, nil))
			if err := o.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			return runF(cmd.Context(), o, ios.Out)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.DataPaths, "data", nil, "flight `files` to train on (required): .csv, .csv.gz or BTS monthly .zip; globs and several files (repeat the flag or separate by commas) are read as one table")
	f.IntVar(&o.MaxLineBytes, "max-line-bytes", train.DefaultMaxLineBytes, "refuse a CSV line longer than this many bytes")
	f.StringVar(&o.OutPath, "out", "", "where to write the model JSON (required)")
	f.StringVar(&o.MetricsOut, "metrics-out", "", "also write the evaluation as JSON to this `file`")
	f.StringVar(&o.PlotsDir, "plots", "", "write roc.png and calibration.png into this `dir`")
	f.StringVar(&o.L2, "l2", "", "L2 regularisation: a number, or auto to choose it by cross-validation of the training split (default: the config's training.l2)")
	f.IntVar(&o.CVFolds, "cv", -1, "stratified k-fold cross-validation folds (0 = off; default: the config's training.cv_folds)")
	f.Float64Var(&o.TimeHoldout, "time-holdout", train.DefaultTimeHoldout, "share of the latest dates to test an earlier-dates model on (0 = off; default: the config's training.time_holdout)")
	f.IntVar(&o.TimeCVFolds, "time-cv", 0, "time-blocked cross-validation folds (0 = off; default: the config's training.time_cv_folds)")
	f.StringVar(&o.ThresholdSplit, "threshold-split", "", "choose the best_f1 threshold on a random or the latest (time) slice of the training rows (default: the config's training.threshold_split)")
	f.Int64Var(&o.Seed, "seed", 0, "random seed for the splits (default: the config's training.seed)")
	f.StringVar(&o.ModelVersion, "model-version", "", "model version to record (default: derived from the model's content)")
	// train's --config is its pipeline file, shadowing the root's flag-values file.
	f.String("config", "", "training pipeline `file` (columns, features, label, fit settings) as configs/train.yaml; default: the built-in BTS pipeline. Unlike other commands' --config it holds no flag values: set those with flags or DELAYCTL_TRAIN_*")
	return cmd
}
