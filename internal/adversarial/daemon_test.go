package adversarial

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// The attacks here are done to the daemon, not by the code: warm
// containers killed behind the server's back, and daemon restarts and
// crashes. Those that stop a daemon use a private one each, so that they
// run beside the other attacks.

// warmPoolSize is the warm pool of the servers here.
const warmPoolSize = 2

// privateDaemon starts a daemon of the test's own with the python image,
// and returns it, a client of it and an owner name for the server. When
// the test ends, after the server has stopped, it checks that no container
// of the owner is left on the daemon.
func privateDaemon(t *testing.T) (*testenv.Dockerd, *client.Client, string) {
	t.Helper()
	testenv.LanguageImages(t, "python")
	d := testenv.StartDockerd(t, testenv.DockerdOptions{})
	d.LoadImages(t, pythonImage)
	cli := d.Client(t)
	owner := "adversarial-daemon-" + rand.Text()[:8]
	t.Cleanup(func() {
		testenv.WaitContainersOn(t, cli, ownerLabel, owner, 30*time.Second, "no container", func(l []container.Summary) bool { return len(l) == 0 })
	})
	return d, cli, owner
}

// warmIDs returns the IDs of the server's idle warm containers: running,
// labelled warm.
func (tg *target) warmIDs() []string {
	var ids []string
	for _, c := range testenv.ContainersOn(tg.t, tg.cli, ownerLabel, tg.Owner) {
		if c.State == "running" && c.Labels[warmLabel] == "true" {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// waitNewPool waits until the server's containers are warmPoolSize idle
// warm ones, none of them in old, and returns how long that took.
func (tg *target) waitNewPool(old []string, timeout time.Duration) time.Duration {
	tg.t.Helper()
	_, took := testenv.WaitContainersOn(tg.t, tg.cli, ownerLabel, tg.Owner, timeout,
		fmt.Sprintf("%d new idle warm containers and no other", warmPoolSize), func(list []container.Summary) bool {
			for _, c := range list {
				if slices.Contains(old, c.ID) || c.State != "running" || c.Labels[warmLabel] != "true" {
					return false
				}
			}
			return len(list) == warmPoolSize
		})
	return took
}

// Idle warm containers killed behind the server's back (an operator's
// docker kill, an OOM) cost no request an error: runs sent right after
// the kills all succeed, and the pool replaces the dead containers by
// itself.
func TestWarmContainersKilled(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		cli := testenv.Docker(t)
		tg := startOn(t, rt, cli, warmPoolSize, fmt.Sprintf("RUN_WARM_POOL=%s=%d", pythonImage, warmPoolSize))
		killed := tg.warmIDs()
		if len(killed) != warmPoolSize {
			t.Fatalf("idle warm containers %v, want %d", killed, warmPoolSize)
		}
		for _, id := range killed {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := cli.ContainerKill(ctx, id, "KILL")
			cancel()
			if err != nil {
				t.Fatalf("docker kill %s: %v", id[:12], err)
			}
		}
		// Runs at once, as many as the pool held and as many again: the
		// first ones race the pool's noticing the deaths.
		const runs = 2 * warmPoolSize
		answers := make([]<-chan response, runs)
		for i := range answers {
			answers[i] = tg.goPython(fmt.Sprintf("print(%d)", i))
		}
		var slowest time.Duration
		for i, ch := range answers {
			r := <-ch
			if r.status != http.StatusOK || r.agentErr != "" || r.stdout != fmt.Sprintf("%d\n", i) {
				t.Errorf("run %d right after the kills: %s", i, r.detail())
			}
			slowest = max(slowest, r.took)
		}
		refill := tg.waitNewPool(killed, time.Minute)
		record(t, "warm-killed", rt, fmt.Sprintf("%d runs sent right after the kills: 200, no error, each (the slowest in %.1f s); the pool held %d new containers %.1f s later, the killed ones removed",
			runs, slowest.Seconds(), warmPoolSize, refill.Seconds()))
	})
}

// A daemon restart stops every container, the warm pool's too. The pool
// notices, waits for the daemon, refills by itself, and runs succeed.
func TestDaemonRestartWarmPool(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		d, cli, owner := privateDaemon(t)
		env := append(d.Env(), "SERVER_INSTANCE_NAME="+owner, "SERVER_REAP_INTERVAL=1",
			fmt.Sprintf("RUN_WARM_POOL=%s=%d", pythonImage, warmPoolSize))
		tg := startOn(t, rt, cli, warmPoolSize, env...)
		old := tg.warmIDs()
		stopped := time.Now()
		d.Restart(t)
		away := time.Since(stopped)
		refill := tg.waitNewPool(old, 90*time.Second)
		for i := range warmPoolSize + 1 {
			r := tg.python(context.Background(), fmt.Sprintf("print(%d)", i))
			if r.status != http.StatusOK || r.agentErr != "" || r.stdout != fmt.Sprintf("%d\n", i) {
				t.Errorf("run %d after the restart: %s", i, r.detail())
			}
		}
		record(t, "daemon-restart-pool", rt, fmt.Sprintf("the daemon was away %.1f s; the pool held %d new containers %.1f s after it was back, the old ones removed; the next %d runs: 200, no error",
			away.Seconds(), warmPoolSize, refill.Seconds(), warmPoolSize+1))
	})
}

// A daemon that restarts (SIGTERM: it stops the containers) or crashes
// (SIGKILL) during a run: the run ends with a docker.* 5xx, an
// infrastructure error, not the agent's coderunner.stdout.decode; /healthz
// answers 503 while the daemon is away and 200 once it is back; the
// periodic reaper removes what the run could not; the next run succeeds.
func TestDaemonRestart(t *testing.T) {
	tests := []struct {
		id      string
		disrupt func(t *testing.T, d *testenv.Dockerd)
	}{
		{id: "daemon-restart", disrupt: func(t *testing.T, d *testenv.Dockerd) { d.Restart(t) }},
		{id: "daemon-crash", disrupt: func(t *testing.T, d *testenv.Dockerd) {
			d.Kill(t)
			d.Start(t)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			eachRuntime(t, func(t *testing.T, rt string) {
				d, cli, owner := privateDaemon(t)
				// With metrics, whose observer wraps the Docker client.
				tg := startOn(t, rt, cli, 0, append(d.Env(), "SERVER_INSTANCE_NAME="+owner, "SERVER_REAP_INTERVAL=1", "SERVER_METRICS_ADDR=127.0.0.1:0")...)
				inflight := tg.goPython("import time\ntime.sleep(3600)\n")
				tg.waitRunning(30 * time.Second)

				polling, stopPolling := context.WithCancel(context.Background())
				health := make(chan []int, 1)
				go func() { health <- pollHealth(polling, tg) }()

				stopped := time.Now()
				tt.disrupt(t, d)
				away := time.Since(stopped)

				var r response
				select {
				case r = <-inflight:
				case <-time.After(time.Minute):
					t.Fatal("the run in flight did not end within a minute of the daemon's return")
				}
				if r.status < 500 || !strings.HasPrefix(r.code, "docker.") {
					t.Errorf("the run in flight: %s; want a 5xx with a docker.* code", r.detail())
				}
				_, reaped := testenv.WaitContainersOn(t, cli, ownerLabel, owner, 30*time.Second, "no container", func(l []container.Summary) bool { return len(l) == 0 })
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
				stopPolling()
				seen := <-health
				if !slices.Contains(seen, http.StatusServiceUnavailable) {
					t.Errorf("/healthz never answered 503 while the daemon was away (seen %v)", seen)
				}
				record(t, tt.id, rt, fmt.Sprintf("the run in flight: %v (%s); /healthz went %s over the %.1f s the daemon was away; every container of the server gone %.1f s after the answer; the next run succeeded",
					r, clip(r.message, 60), statusPath(seen), away.Seconds(), reaped.Seconds()))
			})
		})
	}
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
		// Longer than the server's own 5 s bound on a probe: a ping that
		// hangs on a stopping daemon ends as the server's 503, which a
		// shorter client timeout would drop.
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := tg.do(rctx, http.MethodGet, "/healthz", nil, nil)
		cancel()
		if err == nil && (len(seen) == 0 || seen[len(seen)-1] != r.status) {
			seen = append(seen, r.status)
		}
		// The daemon is away for a second or two, and answers pings now
		// and then while it stops and starts (200 → 503 → 200 → 503 → 200
		// was seen): at 100 ms a loaded machine once missed every 503.
		time.Sleep(20 * time.Millisecond)
	}
	return seen
}
