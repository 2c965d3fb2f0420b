package deploy

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAlertRules checks deploy/alerts.yaml with promtool: the rules parse,
// and alerts_test.yaml's cases (each alert fires on the series that should
// raise it, and not on a healthy node) pass. (The metrics package's tests
// check that the series the rules name are the server's.)
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool not found under CI=true (.ci/setup-fleet.sh installs it): %v", err)
		}
		t.Skipf("promtool not found (bash .ci/setup-fleet.sh installs it): %v", err)
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

}
