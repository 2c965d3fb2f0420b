// Package deploy holds no Go code: deploy/ has the server's image, systemd
// unit, compose file and alerting rules, and these tests check that they
// work.
package deploy

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// TestImage builds the server's image with deploy/build.sh (offline:
// FROM scratch) and checks its size. Then it runs it the two ways
// docs/operations.md gives, the docker run line and deploy/compose.yaml
// (host network, the host's socket mounted), serves a run through it and
// stops it: it exits 0 and leaves no container behind.
func TestImage(t *testing.T) {
	python := testenv.LanguageImages(t, "python")[0]
	cli := testenv.Docker(t)
	ctx := context.Background()
	tag := strings.ToLower(testenv.ImagePrefix() + "/server-test:" + rand.Text()[:8])
	build := exec.Command("bash", "build.sh", tag)
	build.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/local/go/bin")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	info, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatalf("inspect %s: %v", tag, err)
	}
	if info.Size >= 40<<20 {
		t.Errorf("image %s is %d bytes, want under 40 MB", tag, info.Size)
	}
	socket := strings.TrimPrefix(cli.DaemonHost(), "unix://")

	t.Run("docker run", func(t *testing.T) {
		addr := testenv.FreeAddr(t)
		owner := "image-" + strings.ToLower(rand.Text()[:8])
		token := rand.Text()
		name := owner + "-server"
		// The documented line, with a port and an owner of the test's own.
		run := exec.Command("docker", "run", "-d", "--name", name, "--network", "host",
			"--label", testenv.LabelTest+"=1",
			"-v", socket+":/var/run/docker.sock",
			"-e", "API_ACCESS_TOKEN="+token,
			"-e", "SERVER_LISTEN_PORT="+port(addr),
			"-e", "SERVER_INSTANCE_NAME="+owner,
			tag)
		if out, err := run.CombinedOutput(); err != nil {
			t.Fatalf("docker run %s: %v\n%s", tag, err, out)
		}
		t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
		logs := func() string {
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			return string(out)
		}
		serveRun(t, addr, token, python, logs)
		// docker stop sends SIGTERM: a graceful shutdown exits 0.
		if out, err := exec.Command("docker", "stop", "-t", "30", name).CombinedOutput(); err != nil {
			t.Fatalf("docker stop: %v\n%s", err, out)
		}
		checkStopped(t, name, owner, logs)
	})

	t.Run("compose", func(t *testing.T) {
		if _, err := exec.LookPath("docker-compose"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("docker-compose not found under CI=true (.ci/setup-fleet.sh installs it): %v", err)
			}
			t.Skipf("docker-compose not found: %v", err)
		}
		if socket != "/var/run/docker.sock" {
			t.Skipf("compose.yaml mounts /var/run/docker.sock; this daemon's socket is %s", socket)
		}
		addr, metricsAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
		owner := "compose-" + strings.ToLower(rand.Text()[:8])
		token := rand.Text()
		compose := func(args ...string) (string, error) {
			cmd := exec.Command("docker-compose", append([]string{"-f", "compose.yaml", "-p", owner}, args...)...)
			cmd.Env = append(os.Environ(),
				"DOCKERRUN_SERVER_IMAGE="+tag,
				"API_ACCESS_TOKEN="+token,
				"SERVER_LISTEN_PORT="+port(addr),
				"SERVER_METRICS_ADDR="+metricsAddr,
				"SERVER_INSTANCE_NAME="+owner,
				"RUN_ALLOWED_IMAGES="+python,
				"RUN_WARM_POOL="+python+"=1",
			)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := compose("up", "-d"); err != nil {
			t.Fatalf("docker-compose up: %v\n%s", err, out)
		}
		t.Cleanup(func() { compose("down", "--timeout", "30") })
		name := owner + "_docker-run_1" // docker-compose 1.x's container name
		logs := func() string {
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			return string(out)
		}
		serveRun(t, addr, token, python, logs)
		if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET /metrics on SERVER_METRICS_ADDR: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		if out, err := compose("stop", "--timeout", "30"); err != nil {
			t.Fatalf("docker-compose stop: %v\n%s", err, out)
		}
		checkStopped(t, name, owner, logs)
	})
}

// port returns the port of a host:port address.
func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// serveRun waits until the server at addr is ready, then runs a python
// program through it.
func serveRun(t *testing.T, addr, token, python string, logs func() string) {
	t.Helper()
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server in the image did not become ready within 30s: %v\n%s", err, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	body, _ := json.Marshal(map[string]any{"image": python, "payload": map[string]any{
		"language": "python", "files": []map[string]string{{"name": "main.py", "content": "print(6*7)"}},
	}})
	req, _ := http.NewRequest(http.MethodPost, base+"/run", strings.NewReader(string(body)))
	req.Header.Set("X-Access-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /run: %v\n%s", err, logs())
	}
	var ans struct{ Stdout string }
	err = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || ans.Stdout != "42\n" {
		t.Fatalf("POST /run: status %d, stdout %q, %v; want 200 and \"42\\n\"\n%s", resp.StatusCode, ans.Stdout, err, logs())
	}
}

// checkStopped checks that the server's container exited 0 and that no
// container of owner is left.
func checkStopped(t *testing.T, name, owner string, logs func() string) {
	t.Helper()
	cli := testenv.Docker(t)
	state, err := cli.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatalf("inspect the server's container: %v", err)
	}
	if state.State.Running || state.State.ExitCode != 0 {
		t.Errorf("the server's container: running %v, exit code %d; want exited 0 on SIGTERM\n%s", state.State.Running, state.State.ExitCode, logs())
	}
	testenv.WaitContainersOn(t, cli, dockerrun.LabelOwner, owner, 15*time.Second, "no container",
		func(list []container.Summary) bool { return len(list) == 0 })
}
