package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/dockerrun/dockerrun/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAlertRules checks deploy/alerts.yaml with promtool: the rules parse,
// and alerts_test.yaml's cases (each alert fires on the series that should
// raise it, and not on a healthy node) pass. Every dockerrun_* series the
// rules name is one the server exports.
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

	rules, err := os.ReadFile("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	go func() {
		metrics.New().Describe(ch)
		close(ch)
	}()
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		exported[name.FindStringSubmatch(d.String())[1]] = true
	}
	for _, m := range regexp.MustCompile(`dockerrun_[a-z_]+`).FindAllString(string(rules), -1) {
		if !exported[strings.TrimSuffix(m, "_bucket")] {
			t.Errorf("alerts.yaml names %s, which the server does not export", m)
		}
	}
}
