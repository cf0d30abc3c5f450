// Package testtool finds the outside programs some tests run against (Debian's prometheus
// and promtool), with one policy for all of them: skip on a workstation that lacks them,
// fail under CI=true, where .ci/run installs them.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of the program name. When it is not on PATH the test fails if the
// environment has CI=true and is skipped otherwise; install names the Debian package.
func Need(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not on PATH and CI=true: install it with apt-get install -y %s (.ci/run does)", name, install)
	}
	t.Skipf("%s is not on PATH; apt-get install -y %s to run this test", name, install)
	return ""
}
