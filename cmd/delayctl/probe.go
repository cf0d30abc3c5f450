package main

import (
	"fmt"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/spf13/cobra"
)

func init() { commandConstructors = append(commandConstructors, newProbeCmd) }

func newProbeCmd(ios *IOStreams) *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "probe --url URL",
		Short: "Exit 0 when URL answers 2xx (a health check for images without curl)",
		Example: `  delayctl probe --url http://127.0.0.1:8080/readyz
  HEALTHCHECK CMD ["/delayctl", "probe", "--url", "http://127.0.0.1:8080/readyz"]`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "probe"); err != nil {
				return err
			}
			if url == "" {
				return inputerr.Errorf("--url is required")
			}
			if err := serve.Probe(cmd.Context(), url, timeout); err != nil {
				return err
			}
			_, err := fmt.Fprintln(ios.Out, "ok")
			return err
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "URL to GET")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "give up after this long")
	return cmd
}
