package main

import (
	"github.com/delayctl/delayctl/pkg/serve"
	"github.com/spf13/cobra"
)

func init() { commandConstructors = append(commandConstructors, newKeysCmd) }

func newKeysCmd(ios *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Make API keys for 'delayctl serve --auth-keys'",
		Long: `The server stores only the SHA-256 hash of each API key, one per line of the --auth-keys
file, optionally followed by a name for the logs. 'keys new' makes a key and its line;
'keys hash' prints the line for a key you already have (read from stdin, so it stays out of
your shell history).`,
	}
	cmd.AddCommand(newKeysNewCmd(ios), newKeysHashCmd(ios))
	return cmd
}

func newKeysNewCmd(ios *IOStreams) *cobra.Command {
	var o serve.KeysOptions
	cmd := &cobra.Command{
		Use:   "new [--name NAME] [--append FILE]",
		Short: "Print a fresh random API key and the line that authorises it",
		Example: `  delayctl keys new --name ci
  delayctl keys new --name grafana --append keys.txt   # prints only the key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, ios, "keys"); err != nil {
				return err
			}
			return serve.RunKeysNew(o, ios.Out, ios.ErrOut)
		},
	}
	cmd.Flags().StringVar(&o.Name, "name", "", "name recorded beside the hash, shown in logs instead of the key")
	cmd.Flags().StringVar(&o.Append, "append", "", "add the hash line to this keys `file` (created 0600 if missing)")
	return cmd
}

func newKeysHashCmd(ios *IOStreams) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     "hash [--name NAME] < keyfile",
		Short:   "Print the --auth-keys line for a key read from stdin",
		Example: `  printf %s "$DELAYCTL_API_KEY" | delayctl keys hash --name ci >> keys.txt`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve.RunKeysHash(name, ios.In, ios.Out)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name recorded beside the hash, shown in logs instead of the key")
	return cmd
}
