package server

import (
	"fmt"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Or returns v, or def when v is empty (an unset stack config key).
func Or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Duration reads a Go duration ("5s") from stack config key, def when unset.
func Duration(c *config.Config, key string, def time.Duration) (time.Duration, error) {
	v := c.Get(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("config %s: %q is not a non-negative duration such as 5s", key, v)
	}
	return d, nil
}
