package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/delayctl/delayctl/pkg/inputerr"
)

// expandGlobs expands file patterns (pod-*.bin) that name no file as given, so that a
// results merge works where no shell expands them: a container image holding only the
// delayctl binary, or a Kubernetes Job's args. A pattern that matches nothing is a usage
// error naming it.
func expandGlobs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if a == "-" || !strings.ContainsAny(a, "*?[") {
			out = append(out, a)
			continue
		}
		if _, err := os.Stat(a); err == nil {
			out = append(out, a)
			continue
		}
		matches, err := filepath.Glob(a)
		if err != nil {
			return nil, inputerr.Errorf("bad file pattern %q: %w", a, err)
		}
		if len(matches) == 0 {
			return nil, inputerr.Errorf("no file matches %q", a)
		}
		out = append(out, matches...)
	}
	return out, nil
}
