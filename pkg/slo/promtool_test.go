package slo_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/delayctl/delayctl/internal/testtool"
	"github.com/delayctl/delayctl/pkg/slo"
)

// TestPromtoolRules runs the promtool unit tests in testdata/promtool against the rules
// `delayctl slo rules --slo configs/slo.yaml --selector 'job="delayctl"'` writes: every alert
// fires at the burns it is designed for and stays quiet below, and the recordings are
// numbers through idle hours, restarts and scrape gaps.
func TestPromtoolRules(t *testing.T) {
	promtool := testtool.Need(t, "promtool", "prometheus")
	s, err := slo.LoadFile("../../configs/slo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules bytes.Buffer
	if _, err := slo.WriteRules(&rules, s, slo.RulesOptions{Selector: `job="delayctl"`, Source: "configs/slo.yaml"}); err != nil {
		t.Fatal(err)
	}
	tests, err := filepath.Glob("testdata/promtool/*.yaml")
	if err != nil || len(tests) == 0 {
		t.Fatalf("no promtool tests in testdata/promtool (%v)", err)
	}
	for _, file := range tests {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(file)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(promtool, "test", "rules", filepath.Base(file))
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool test rules %s: %v\n%s", file, err, out)
			}
		})
	}
}
