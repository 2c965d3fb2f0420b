// Package testenv gives integration tests a real Docker engine and the small
// images they need, built on the spot: no registry is needed.
//
// Outside CI a test without a reachable engine is skipped; with CI=true it
// fails, because a skipped integration test in CI is a failed one.
package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// ProbeImage is the tag of the image built from ./probe.
const ProbeImage = "dockerrun-test/probe:latest"

// LabelTest marks the images that tests build.
const LabelTest = "dockerrun.test"

var (
	clientOnce sync.Once
	cli        *client.Client
	cliErr     error

	probeOnce sync.Once
	probeErr  error
)

// Docker returns a client of the engine named by the environment, or skips
// the test (fails it under CI=true) when the engine does not answer.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	clientOnce.Do(func() {
		cli, cliErr = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if cliErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, cliErr = cli.Ping(ctx)
	})
	if cliErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker engine unreachable under CI=true (start dockerd; see .ci/run): %v", cliErr)
		}
		t.Skipf("Docker engine unreachable, skipping integration test: %v", cliErr)
	}
	return cli
}

// Probe builds the probe image once per test binary and returns its tag.
func Probe(t testing.TB) string {
	t.Helper()
	c := Docker(t)
	probeOnce.Do(func() { probeErr = BuildProbe(c, ProbeImage) })
	if probeErr != nil {
		t.Fatalf("build probe image: %v", probeErr)
	}
	return ProbeImage
}

// BuildProbe builds the probe image of ./probe, a static agent FROM scratch
// whose answers the payload chooses, under tag. Tests use [Probe]; the
// benchmark builds it as its trivial image.
func BuildProbe(c *client.Client, tag string) error {
	dir, err := os.MkdirTemp("", "dockerrun-probe")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/dockerrun/dockerrun/internal/testenv/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build probe: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	// /etc/passwd gives uid 1000 a name and a home, as in glot's images.
	files := map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nCOPY probe /probe\nCOPY passwd /etc/passwd\nUSER 1000\nCMD [\"/probe\"]\n"),
		"probe":      exe,
		"passwd":     []byte("root:x:0:0:root:/root:/probe\nglot:x:1000:1000:glot:/home/glot:/probe\n"),
	}
	return BuildImage(c, tag, files)
}

// BuildImage builds an image tagged tag from a context holding files (a
// Dockerfile among them), with the legacy builder, which needs no registry
// for FROM scratch.
func BuildImage(c *client.Client, tag string, files map[string][]byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		mode := int64(0o644)
		if name != "Dockerfile" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := c.ImageBuild(ctx, &buf, build.ImageBuildOptions{
		Tags:        []string{tag},
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
		Labels:      map[string]string{LabelTest: "1"},
	})
	if err != nil {
		return fmt.Errorf("image build: %w", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("image build output: %w", err)
		}
		if msg.Error != "" {
			return fmt.Errorf("image build: %s", msg.Error)
		}
	}
}

// Containers lists the containers, running or not, that carry the label
// key=value.
func Containers(t testing.TB, key, value string) []container.Summary {
	t.Helper()
	return ContainersOn(t, Docker(t), key, value)
}

// ContainersOn is [Containers] on the daemon of cli, such as a private
// one ([Dockerd.Client]).
func ContainersOn(t testing.TB, cli *client.Client, key, value string) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", key+"="+value)),
	})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	return list
}

// WaitContainers polls the containers that carry the label key=value
// until done holds for them, and returns the list and how long that took.
// It fails the test after timeout, naming what it waited for (a phrase
// such as "no container" or "a running container") and listing what it
// saw last.
func WaitContainers(t testing.TB, key, value string, timeout time.Duration, what string, done func([]container.Summary) bool) ([]container.Summary, time.Duration) {
	t.Helper()
	return WaitContainersOn(t, Docker(t), key, value, timeout, what, done)
}

// WaitContainersOn is [WaitContainers] on the daemon of cli.
func WaitContainersOn(t testing.TB, cli *client.Client, key, value string, timeout time.Duration, what string, done func([]container.Summary) bool) ([]container.Summary, time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		list := ContainersOn(t, cli, key, value)
		if done(list) {
			return list, time.Since(start)
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, c := range list {
				seen = append(seen, c.ID[:12]+" ("+c.State+")")
			}
			t.Fatalf("waited %v for %s with %s=%s; have [%s]", timeout, what, key, value, strings.Join(seen, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitNoContainers fails the test unless, within timeout, no container
// carries the label key=value, and returns how long that took. Containers
// are removed in the background after a run, so a short wait is part of
// the contract.
func WaitNoContainers(t testing.TB, key, value string, timeout time.Duration) time.Duration {
	t.Helper()
	_, took := WaitContainers(t, key, value, timeout, "no container", func(list []container.Summary) bool { return len(list) == 0 })
	return took
}
