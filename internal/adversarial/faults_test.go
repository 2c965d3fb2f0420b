package adversarial

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
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
		time.Sleep(time.Second)
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

// TestDaemonRestart restarts dockerd while a run is in flight: the run ends
// with an error, /healthz answers 503 while the daemon is away and 200 once
// it is back, the periodic reaper (SERVER_REAP_INTERVAL=1) removes the
// container left behind, and a run succeeds again. It disturbs every other
// test that uses Docker, so it runs only when DOCKERRUN_DAEMON_RESTART_TEST
// is 1, alone (.ci/run runs it last).
func TestDaemonRestart(t *testing.T) {
	if os.Getenv("DOCKERRUN_DAEMON_RESTART_TEST") != "1" {
		t.Skip("restarts dockerd: set DOCKERRUN_DAEMON_RESTART_TEST=1 and run it alone, as .ci/run does")
	}
	eachRuntimeAlone(t, func(t *testing.T, rt string) {
		tg := start(t, rt, "SERVER_REAP_INTERVAL=1")
		inflight := tg.goPython("import time\ntime.sleep(3600)\n")
		tg.waitRunning(30 * time.Second)

		polling, stopPolling := context.WithCancel(context.Background())
		health := make(chan []int, 1)
		go func() { health <- pollHealth(polling, tg) }()

		away := restartDockerd(t)
		// Whether the run's own clean-up removed its container before the
		// daemon went away depends on how fast the daemon stopped it.
		leftover := len(testenv.Containers(t, ownerLabel, tg.Owner))

		var r response
		select {
		case r = <-inflight:
		case <-time.After(time.Minute):
			t.Fatal("the run in flight did not end within a minute of the restart")
		}
		if r.status < 500 {
			t.Fatalf("the run in flight: %s; want a 5xx error", r.detail())
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			h, err := tg.do(ctx, http.MethodGet, "/healthz", nil, nil)
			cancel()
			if err == nil && h.status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz not 200 within 30 s of the daemon's return: %v %s", err, h.detail())
			}
			time.Sleep(200 * time.Millisecond)
		}
		reaped := time.Now()
		testenv.WaitNoContainers(t, ownerLabel, tg.Owner, 30*time.Second)
		stopPolling()
		seen := <-health
		if !slices.Contains(seen, http.StatusServiceUnavailable) {
			t.Errorf("/healthz never answered 503 while the daemon was away (seen %v)", seen)
		}
		cleanup := "the run's own clean-up had removed its container before dockerd stopped"
		if leftover > 0 {
			cleanup = fmt.Sprintf("%d container left when dockerd came back, reaped within %.1f s", leftover, time.Since(reaped).Seconds())
		}
		how := ""
		if m := regexp.MustCompile(`exit code (\d+)`).FindStringSubmatch(r.message); m != nil {
			how = " (the container's exit code: " + m[1] + ")"
		}
		record(t, "daemon-restart", rt, fmt.Sprintf("the run in flight: %v%s; /healthz went %s over the %.0f s restart; %s; the next run succeeded",
			r, how, statusPath(seen), away.Seconds(), cleanup))
	})
}

// statusPath writes statuses as "200 → 503 → 200".
func statusPath(statuses []int) string {
	s := make([]string, len(statuses))
	for i, st := range statuses {
		s[i] = strconv.Itoa(st)
	}
	return strings.Join(s, " → ")
}

// pollHealth polls /healthz until ctx is done and returns the statuses it
// saw, in order, without repeats.
func pollHealth(ctx context.Context, tg *target) []int {
	var seen []int
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		r, err := tg.do(rctx, http.MethodGet, "/healthz", nil, nil)
		cancel()
		if err == nil && (len(seen) == 0 || seen[len(seen)-1] != r.status) {
			seen = append(seen, r.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return seen
}

// restartDockerd stops dockerd with SIGTERM and starts it again the way
// .ci/setup-docker.sh does, then waits until it answers. It returns how long
// the daemon was away.
func restartDockerd(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		t.Fatalf("dockerd's pid: %v (this test restarts a dockerd started by .ci/setup-docker.sh)", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !alive(pid) {
		t.Fatalf("dockerd's pid %q: not a running process", b)
	}
	t.Cleanup(func() { ensureDockerd(t) })
	stopped := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM dockerd: %v", err)
	}
	for alive(pid) {
		if time.Since(stopped) > 90*time.Second {
			t.Fatalf("dockerd (pid %d) still running 90 s after SIGTERM", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	startDockerd(t)
	if err := waitDockerd(90 * time.Second); err != nil {
		t.Fatalf("dockerd did not answer after the restart: %v", err)
	}
	return time.Since(stopped)
}

// alive reports whether pid is a process that has not exited.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses; Z is a zombie.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// startDockerd starts dockerd as .ci/setup-docker.sh does (but appending to
// its log), in a session of its own so that it outlives the test.
func startDockerd(t *testing.T) {
	t.Helper()
	cmd := exec.Command("sh", "-c", "nohup dockerd >>/var/log/dockerd.log 2>&1 & echo $! >/var/run/dockerrun-dockerd.pid")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start dockerd: %v\n%s", err, out)
	}
}

// waitDockerd waits until the daemon answers a ping.
func waitDockerd(timeout time.Duration) error {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ensureDockerd starts dockerd if a failed test left it stopped.
func ensureDockerd(t *testing.T) {
	if waitDockerd(5*time.Second) == nil {
		return
	}
	b, _ := os.ReadFile("/var/run/docker.pid")
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && alive(pid) {
		if waitDockerd(60*time.Second) == nil {
			return
		}
	}
	t.Log("dockerd is not running after the test: starting it")
	startDockerd(t)
	if err := waitDockerd(90 * time.Second); err != nil {
		t.Errorf("dockerd does not answer: %v", err)
	}
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
