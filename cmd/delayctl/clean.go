package main

import (
	"context"
	"io"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/train"
	"github.com/spf13/cobra"
)

func init() { commandConstructors = append(commandConstructors, newCleanCmd) }

func newCleanCmd(ios *IOStreams) *cobra.Command {
	return newCleanCmdWith(ios, func(ctx context.Context, o train.CleanOptions, out io.Writer) error {
		_, err := train.RunClean(ctx, o, out)
		return err
	})
}

func newCleanCmdWith(ios *IOStreams, runF func(context.Context, train.CleanOptions, io.Writer) error) *cobra.Command {
	var o train.CleanOptions
	cmd := &cobra.Command{
		Use:   "clean --data FILE [--out cleaned.csv]",
		Short: "Clean a flight CSV as training does and report what was dropped or imputed",
		Long: `Clean applies the training pipeline's cleaning step on its own, so it can be inspected:
it selects the configured columns, drops cancelled and diverted flights (or counts them as
delayed, per config), drops rows without a label, applies the missing-value policy, and
prints rows read, kept, dropped per reason (with row numbers for unparseable cells) and
values imputed per column. train runs exactly the same code in-process.`,
		Example: `  delayctl clean --data data/flightdata.csv
  delayctl clean --data data/flightdata.csv --out out/cleaned.csv --describe
  delayctl clean --data nyc.csv --config configs/nycflights.yaml --output json`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"ownConfig": "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "clean"); err != nil {
				return err
			}
			o.ConfigPath, _ = cmd.Flags().GetString("config")
			if len(o.DataPaths) > 0 {
				o.DataPath = o.DataPaths[0]
			}
			if err := o.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			return runF(cmd.Context(), o, ios.Out)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.DataPaths, "data", nil, "flight `files` to clean (required): .csv, .csv.gz or .zip, globs, several read as one table")
	f.IntVar(&o.MaxLineBytes, "max-line-bytes", train.DefaultMaxLineBytes, "refuse a CSV line longer than this many bytes")
	f.StringVar(&o.OutPath, "out", "", "write the cleaned rows (canonical fields + delayed) to this CSV `file`")
	f.StringVarP(&o.Format, "output", "o", "text", "report format: text or json")
	f.BoolVar(&o.Describe, "describe", false, "also print summary statistics of the cleaned columns")
	f.String("config", "", "training pipeline `file` whose columns, label and missing-value policy apply, as configs/train.yaml. Unlike other commands' --config it holds no flag values: set those with flags or DELAYCTL_CLEAN_*")
	return cmd
}
