package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockerrun/dockerrun/internal/testenv"
)

// TestSystemdUnit checks deploy/docker-run.service with systemd-analyze
// verify: every directive is known and well-formed (a value with spaces
// that is not quoted, for example, is reported). The binary is the test's
// build of cmd/docker-run. It does not start the unit: these machines do
// not run systemd.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("systemd-analyze not found under CI=true (.ci/setup-fleet.sh installs systemd): %v", err)
		}
		t.Skipf("systemd-analyze not found: %v", err)
	}
	unit, err := os.ReadFile("docker-run.service")
	if err != nil {
		t.Fatal(err)
	}
	const execStart = "ExecStart=/usr/local/bin/docker-run"
	if !strings.Contains(string(unit), execStart+"\n") {
		t.Fatalf("docker-run.service has no line %q", execStart)
	}
	path := filepath.Join(t.TempDir(), "docker-run.service")
	patched := strings.Replace(string(unit), execStart, "ExecStart="+testenv.ServerBinary(t), 1)
	if err := os.WriteFile(path, []byte(patched), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify docker-run.service: %v\n%s", err, out)
	}
}
