package adversarial

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/dockerrun/dockerrun/internal/serverproc"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// A server killed with SIGKILL mid-run leaves its container behind; the
// next server with the same SERVER_INSTANCE_NAME removes it at start-up,
// before it listens.
func TestKill9Reap(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		testenv.LanguageImages(t, "python", "bash")
		owner := "adversarial-kill9-" + rand.Text()[:8]
		t.Cleanup(func() { removeOwned(t, owner) })
		dead := startRaw(t, "DOCKER_CONTAINER_RUNTIME="+rt, "SERVER_INSTANCE_NAME="+owner)
		go dead.Run(context.Background(), httpClient, pythonImage, pythonPayload("import time\ntime.sleep(3600)\n"))
		waitOwned(t, owner, "running", 30*time.Second)
		dead.Kill()
		left := testenv.Containers(t, ownerLabel, owner)
		if len(left) != 1 {
			t.Fatalf("%d containers left by the killed server; want its one run's", len(left))
		}

		tg := start(t, rt, "SERVER_INSTANCE_NAME="+owner)
		n, err := logged(tg.Logs(), "removed containers left by an earlier instance", "count")
		if err != nil || n != "1" {
			t.Fatalf("the new server did not log removing 1 container (%q, %v):\n%s", n, err, tg.Logs())
		}
		// start waited for its own first run's container to go: nothing of
		// the owner is left.
		if c := testenv.Containers(t, ownerLabel, owner); len(c) > 0 {
			t.Fatalf("%d containers of %s after the new server started", len(c), owner)
		}
		record(t, "kill9-reap", rt, fmt.Sprintf("1 container (%s) left by the killed server; the new server removed it before listening", left[0].State))
	})
}

// waitOwned waits until a container of owner is in state.
func waitOwned(t *testing.T, owner, state string, timeout time.Duration) {
	t.Helper()
	testenv.WaitContainers(t, ownerLabel, owner, timeout, "a container "+state, func(list []container.Summary) bool {
		return slices.ContainsFunc(list, func(c container.Summary) bool { return c.State == state })
	})
}

// removeOwned removes every container of owner, for a test that failed
// before the server under test could.
func removeOwned(t *testing.T, owner string) {
	cli := testenv.Docker(t)
	for _, c := range testenv.Containers(t, ownerLabel, owner) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		cancel()
	}
}

// startRaw starts docker-run with env and waits until it listens. Unlike
// testenv's servers it may be killed, and at the end of the test it is
// killed if still running.
func startRaw(t *testing.T, env ...string) *serverproc.Proc {
	t.Helper()
	p, err := serverproc.Start(context.Background(), testenv.ServerBinary(t), serverproc.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}
