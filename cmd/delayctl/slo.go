package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/spf13/cobra"
)

func init() { commandConstructors = append(commandConstructors, newSLOCmd) }

func newSLOCmd(ios *IOStreams) *cobra.Command { return newSLOCmdWith(ios, nil, nil) }

// newSLOCmdWith lets tests capture the parsed options instead of running.
func newSLOCmdWith(ios *IOStreams, reportF func(context.Context, slo.Options) error, rulesF func(context.Context, slo.RulesRunOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "slo",
		Short: "Compute SLIs against SLOs, error budgets, CI gates and Prometheus alert rules",
		Long: `slo judges the objectives of an SLO file (configs/slo.yaml, see docs/SLO.md).

  delayctl slo report   SLIs, error budgets and burn rates from bench results, a live
                        /metrics endpoint or a Prometheus server; exits 1 when an
                        objective is breached, so CI can gate a deploy on it
  delayctl slo rules    Prometheus recording and multi-window multi-burn-rate alert rules
  delayctl slo dashboard  a Grafana dashboard of the same objectives

--slo also reads a sloth "prometheus/v1" spec or OpenSLO v1 SLO objects.

Exit codes: 0 all objectives met; 1 an objective breached (or without data), or a server
that could not be reached or answered an error status; 2 usage or input error (bad flags,
bad SLO file, unreadable results, a URL that is not a delayctl /metrics endpoint or a
Prometheus API, a query Prometheus rejects).`,
	}
	cmd.AddCommand(newSLOReportCmd(ios, reportF), newSLORulesCmd(ios, rulesF), newSLODashboardCmd(ios, nil))
	return cmd
}

func newSLOReportCmd(ios *IOStreams, runF func(context.Context, slo.Options) error) *cobra.Command {
	opts := slo.Options{}
	formats := make([]string, len(slo.Formats))
	for i, f := range slo.Formats {
		formats[i] = string(f)
	}
	cmd := &cobra.Command{
		Use:   "report --slo FILE (--results FILE... | --scrape URL | --prometheus URL)",
		Short: "Report SLIs, error budgets and burn rates; exit 1 when an objective is breached",
		Example: `  delayctl slo report --slo configs/slo.yaml --results run.bin
  delayctl slo report --slo configs/slo.yaml --results a.bin b.json c.csv --output markdown
  vegeta attack -targets t.txt -duration 30s | delayctl slo report --results -
  delayctl slo report --scrape http://127.0.0.1:8080/metrics --interval 60s
  delayctl slo report --prometheus http://prometheus:9090 --selector 'job="delayctl"' --range 7d`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyConfig(cmd, ios, "slo"); err != nil {
				return err
			}
			results, err := expandGlobs(append(opts.Results, args...))
			if err != nil {
				return err
			}
			opts.Results = results
			opts.Stdin = ios.In
			if opts.Format == slo.FormatTable {
				fmt.Fprintln(ios.ErrOut, "delayctl: -o table is deprecated: it is now -o text, as in every other command")
			}
			if err := opts.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return slo.Run(cmd.Context(), opts, ios.Out, ios.ErrOut)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.SLOFile, "slo", slo.DefaultSLOFile, "SLO `file` to judge against")
	f.StringSliceVar(&opts.Results, "results", nil, "vegeta results `files` (gob, JSON or CSV; - for stdin), merged; more may follow as arguments")
	f.StringVar(&opts.Scrape, "scrape", "", "delayctl serve /metrics `URL`: scrape twice, --interval apart, and judge the increase")
	f.DurationVar(&opts.Interval, "interval", slo.DefaultInterval, "time between the two scrapes of --scrape")
	f.StringVar(&opts.Prometheus, "prometheus", "", "Prometheus server base `URL` to query over --range")
	f.DurationVar(&opts.Range, "range", 0, "Prometheus query range ending now (default: the SLO window)")
	f.StringVar(&opts.Selector, "selector", "", "extra label `matchers` for Prometheus queries, e.g. job=\"delayctl\"")
	f.StringVarP((*string)(&opts.Format), "output", "o", string(slo.DefaultFormat), "report format: "+strings.Join(formats, ", "))
	f.DurationVar(&opts.Timeout, "timeout", slo.DefaultTimeout, "timeout of each HTTP request to a metrics endpoint or Prometheus")
	return cmd
}

func newSLORulesCmd(ios *IOStreams, runF func(context.Context, slo.RulesRunOptions) error) *cobra.Command {
	opts := slo.RulesRunOptions{}
	cmd := &cobra.Command{
		Use:   "rules --slo FILE",
		Short: "Write Prometheus recording and multi-window multi-burn-rate alerting rules",
		Example: `  delayctl slo rules --slo configs/slo.yaml > deploy/prometheus/delayctl-slo.rules.yaml
  delayctl slo rules --slo configs/slo.yaml --selector 'job="delayctl"' | promtool check rules /dev/stdin`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "slo"); err != nil {
				return err
			}
			if err := opts.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return slo.RunRules(cmd.Context(), opts, ios.Out, ios.ErrOut)
		},
	}
	cmd.Flags().StringVar(&opts.SLOFile, "slo", slo.DefaultSLOFile, "SLO `file` to generate rules for")
	cmd.Flags().StringVar(&opts.Selector, "selector", "", "extra label `matchers` for every selector, e.g. job=\"delayctl\" (needed for memory rules)")
	return cmd
}

func newSLODashboardCmd(ios *IOStreams, runF func(context.Context, slo.DashboardOptions) error) *cobra.Command {
	opts := slo.DashboardOptions{}
	cmd := &cobra.Command{
		Use:   "dashboard --slo FILE [--selector MATCHERS] [-o FILE]",
		Short: "Write a Grafana dashboard (JSON) of the SLOs: SLIs, budgets, burn rates, latency, shed requests",
		Example: `  delayctl slo dashboard --slo configs/slo.yaml --selector 'job="delayctl"' -o delayctl-slo.json
  delayctl slo dashboard --slo sloth-slos.yaml > dashboard.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Its own section: DELAYCTL_SLO_OUTPUT is report's format, not this file.
			if err := applyConfig(cmd, ios, "slo-dashboard"); err != nil {
				return err
			}
			if err := opts.Validate(); err != nil {
				return inputerr.Wrap(err)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return slo.RunDashboard(cmd.Context(), opts, ios.Out, ios.ErrOut)
		},
	}
	cmd.Flags().StringVar(&opts.SLOFile, "slo", slo.DefaultSLOFile, "SLO `file` to show")
	cmd.Flags().StringVar(&opts.Selector, "selector", "", "extra label `matchers` for the queries of serve's metrics, e.g. job=\"delayctl\" (use the one given to slo rules)")
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "dashboard `file` to write (default: standard output)")
	return cmd
}
