package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Set by the Makefile through -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailure = 1 // a runtime failure, or an SLO objective breached
	exitUsage   = 2 // bad flags, bad config or bad input files
)

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

// usageError marks an error as the caller's mistake: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// asUsage marks err (bad input the user can fix) for exit code 2, keeping its chain.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// exitCoder lets a pkg error choose its exit code (slo uses it for "objective breached").
type exitCoder interface{ ExitCode() int }

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
environment variables; flags win over the environment, which wins over the file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate("delayctl {{.Version}}\n")
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w\nRun '%s --help' for usage", err, c.CommandPath())}
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
// errors, exit code 2, like flag mistakes; cobra's flag error hook does not see them.
func argErrorsAreUsage(c *cobra.Command) {
	if validate := c.Args; validate != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			return asUsage(validate(cmd, args))
		}
	}
	for _, sub := range c.Commands() {
		argErrorsAreUsage(sub)
	}
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

func exitCode(err error) int {
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	// cobra reports an unknown subcommand before any hook of ours runs.
	if strings.HasPrefix(err.Error(), "unknown command ") {
		return exitUsage
	}
	return exitFailure
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
