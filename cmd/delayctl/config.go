package main

import (
	"fmt"
	"strings"

	"github.com/delayctl/delayctl/pkg/inputerr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// applyConfig fills every flag of cmd that was not given on the command line, first from the
// environment (DELAYCTL_<SECTION>_<FLAG>, dashes as underscores), then from the --config file
// (key "<section>.<flag>" or a top-level "<flag>"). The flag's own default applies last.
// This is the only place that knows about viper: commands bind flags straight into their
// pkg Options, so once this has run the Options are complete.
func applyConfig(cmd *cobra.Command, ios *IOStreams, section string) error {
	v := viper.New()
	path, _ := cmd.Flags().GetString("config")
	if path != "" && !readsOwnConfig(cmd) {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return inputerr.Wrap(fmt.Errorf("could not read config file %q: %w", path, err))
		}
	}
	return applyFrom(cmd, ios, section, v)
}

// readsOwnConfig reports whether the command gives --config its own meaning (train's
// pipeline file), in which case the caller loads it with loadConfigFile.
func readsOwnConfig(cmd *cobra.Command) bool {
	return cmd.Annotations["ownConfig"] == "true"
}

func applyFrom(cmd *cobra.Command, ios *IOStreams, section string, v *viper.Viper) error {
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = inputerr.Wrap(err)
		}
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		env := envName(section, f.Name)
		if val, ok := ios.Getenv(env); ok {
			if err := setFlag(f, val); err != nil {
				fail(fmt.Errorf("environment %s=%q: %w", env, val, err))
			}
			return
		}
		for _, key := range []string{section + "." + f.Name, f.Name} {
			if !v.IsSet(key) {
				continue
			}
			if err := setFlag(f, v.Get(key)); err != nil {
				fail(fmt.Errorf("config key %q: %w", key, err))
			}
			return
		}
	})
	return firstErr
}

func envName(section, flag string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return "DELAYCTL_" + strings.ToUpper(r.Replace(section)) + "_" + strings.ToUpper(r.Replace(flag))
}

// setFlag sets a flag from an env string or a decoded config value and marks it Changed.
// Lists in the config file replace a slice flag's value; an env string for a slice flag is
// comma-separated.
func setFlag(f *pflag.Flag, val any) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		var items []string
		switch t := val.(type) {
		case []any:
			for _, it := range t {
				items = append(items, fmt.Sprint(it))
			}
		case []string:
			items = t
		default:
			s := fmt.Sprint(t)
			if s != "" {
				items = strings.Split(s, ",")
			}
		}
		if err := sv.Replace(items); err != nil {
			return err
		}
	} else if err := f.Value.Set(fmt.Sprint(val)); err != nil {
		return err
	}
	// Mark the flag as given, so commands can tell "set anywhere" from "default".
	f.Changed = true
	return nil
}
