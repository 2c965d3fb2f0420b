// Package deploy holds no Go code: deploy/ has the server's image, systemd
// unit and compose file, and these tests check that they work.
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
// FROM scratch), checks its size, runs it as docs/operations.md says (host
// network, the host's socket mounted), serves a run through it and stops
// it with SIGTERM: it exits 0 and leaves no container behind.
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
	addr := testenv.FreeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	owner := "image-" + strings.ToLower(rand.Text()[:8])
	token := rand.Text()
	name := owner + "-server"
	// The documented line, with a port and an owner of the test's own.
	run := exec.Command("docker", "run", "-d", "--name", name, "--network", "host",
		"--label", testenv.LabelTest+"=1",
		"-v", socket+":/var/run/docker.sock",
		"-e", "API_ACCESS_TOKEN="+token,
		"-e", "SERVER_LISTEN_PORT="+port,
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

	// docker stop sends SIGTERM: a graceful shutdown exits 0.
	if out, err := exec.Command("docker", "stop", "-t", "30", name).CombinedOutput(); err != nil {
		t.Fatalf("docker stop: %v\n%s", err, out)
	}
	state, err := cli.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatalf("inspect the server's container: %v", err)
	}
	if state.State.ExitCode != 0 {
		t.Errorf("the server exited %d on SIGTERM, want 0\n%s", state.State.ExitCode, logs())
	}
	testenv.WaitContainersOn(t, cli, dockerrun.LabelOwner, owner, 15*time.Second, "no container",
		func(list []container.Summary) bool { return len(list) == 0 })
}
