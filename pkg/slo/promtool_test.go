package slo_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/delayctl/delayctl/pkg/slo"
)

// needTool returns the path of a Debian prometheus package binary. Without it the test is
// skipped on a workstation and fails under CI=true: .ci/run installs the package.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not on PATH and CI=true: install it with apt-get install -y prometheus (.ci/run does)", name)
	}
	t.Skipf("%s is not on PATH; apt-get install -y prometheus to run this test", name)
	return ""
}

// TestPromtoolRules runs the promtool unit tests in testdata/promtool against the rules
// `delayctl slo rules --slo configs/slo.yaml --selector 'job="delayctl"'` writes: every alert
// fires at the burns it is designed for and stays quiet below, and the recordings are
// numbers through idle hours, restarts and scrape gaps.
func TestPromtoolRules(t *testing.T) {
	promtool := needTool(t, "promtool")
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
