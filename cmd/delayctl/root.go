package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/delayctl/delayctl/pkg/evaluate"
	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/slo"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Set by the Makefile through -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes: the one table for the whole binary, documented in the README's "Exit codes"
// section and in the root command's help. Packages say what happened (inputerr.Err,
// slo.ErrObjectiveMissed, evaluate.ErrObjectiveBreached); exitCode alone turns that into a number.
const (
	exitOK      = 0
	exitFailure = 1 // the run failed: an unreachable server, a write error, an SLO objective breached
	exitUsage   = 2 // the input is wrong: a bad flag, environment value, config file or input file
)

// exitCode maps the error a command returned to the process exit code.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, slo.ErrObjectiveMissed), errors.Is(err, evaluate.ErrObjectiveBreached):
		return exitFailure
	case errors.Is(err, inputerr.Err):
		return exitUsage
	default:
		return exitFailure
	}
}

// IOStreams carries the process's streams and environment so commands can be tested with buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// ErrTTY reports whether ErrOut is a terminal (progress lines are drawn only then).
	ErrTTY bool
	Getenv func(string) (string, bool)
}

func newSystemIO() *IOStreams {
	return &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		Getenv: os.LookupEnv,
	}
}

func newRootCmd(ios *IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "delayctl",
		Short: "Train, serve, load-test and SLO-check a flight delay model",
		Long: `delayctl runs the whole life of a small prediction service, from CSV to SLO verdict:

  delayctl data      write synthetic flight data with a known delay signal
  delayctl clean     clean a flight CSV and report what was dropped or imputed
  delayctl train     fit an L2 logistic regression and write a checksummed JSON model
  delayctl serve     serve the model over HTTP (/predict, Open Inference Protocol v2, /metrics)
  delayctl bench     load-test any URL with an embedded vegeta attacker
  delayctl slo       compute SLIs against SLOs, error budgets and alert rules
  delayctl evaluate  quality and drift of a model on newly labelled flights

Every flag can also be set in a config file (--config) or through DELAYCTL_<COMMAND>_<FLAG>
environment variables; flags win over the environment, which wins over the file. For train
and clean, --config is the training pipeline file instead (configs/train.yaml), and their
flag values come from flags and the environment only.

Exit codes: 0 success; 1 the run failed (an unreachable server, a file that could not be
written, an SLO objective breached or without data); 2 the input is wrong (a bad flag,
environment value or config file, an input file that is missing or malformed).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate("delayctl {{.Version}}\n")
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return inputerr.Errorf("%w\nRun '%s --help' for usage", err, c.CommandPath())
	})
	root.PersistentFlags().String("config", "", "config `file` (YAML, JSON or TOML) supplying flag values")

	for _, add := range commandConstructors {
		root.AddCommand(add(ios))
	}
	root.AddCommand(newVersionCmd(ios))
	argErrorsAreUsage(root)
	return root
}

// argErrorsAreUsage makes positional-argument mistakes (cobra.NoArgs and friends) usage
// errors, exit code 2, like flag mistakes; cobra's flag error hook does not see them. A
// command that only groups subcommands prints its help, and an unknown subcommand under it
// is a usage error (cobra would otherwise print the help and exit 0).
func argErrorsAreUsage(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.Args = noArgs
		c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	} else if validate := c.Args; validate != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			return inputerr.Wrap(validate(cmd, args))
		}
	}
	for _, sub := range c.Commands() {
		argErrorsAreUsage(sub)
	}
}

// noArgs is cobra.NoArgs as a usage error (exit code 2), with cobra's suggestions.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := ""
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		hint = "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return inputerr.Errorf("unknown command %q for %q%s\nRun '%s --help' for usage", args[0], cmd.CommandPath(), hint, cmd.CommandPath())
}

// commandConstructors is filled by each command file's init, so adding a verb touches only its own file.
var commandConstructors []func(*IOStreams) *cobra.Command

func run(ctx context.Context, args []string, ios *IOStreams) int {
	root := newRootCmd(ios)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(ios.ErrOut, "delayctl: %v\n", err)
	return exitCode(err)
}

func newVersionCmd(ios *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit delayctl was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(ios.Out, "delayctl %s (commit %s)\n", version, commit)
			return err
		},
	}
}
