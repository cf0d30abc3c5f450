package main

import (
	"github.com/delayctl/delayctl/pkg/train"
	"github.com/spf13/cobra"
)

func init() { commandConstructors = append(commandConstructors, newDataCmd) }

func newDataCmd(ios *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Flight data helpers",
	}
	cmd.AddCommand(newSynthCmd(ios))
	return cmd
}

func newSynthCmd(ios *IOStreams) *cobra.Command {
	var o train.SynthOptions
	var out string
	cmd := &cobra.Command{
		Use:   "synth --rows N --out FILE",
		Short: "Write synthetic flights with a planted, documented delay signal",
		Long: `Synth writes rows in the BTS layout of flightdata.csv (same 26 columns) whose delay label
follows known coefficients (see data/README.md), for scale benchmarks and for checking
that training recovers a signal it is told about. The same seed writes the same bytes.`,
		Example: `  delayctl data synth --rows 1000000 --seed 1 --out data/synth-1m.csv`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "data"); err != nil {
				return err
			}
			return train.SynthFile(out, o, ios.Out)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Rows, "rows", 10000, "number of rows")
	f.Int64Var(&o.Seed, "seed", 1, "random seed")
	f.StringVar(&out, "out", "-", "output CSV `file` (- for stdout)")
	return cmd
}
