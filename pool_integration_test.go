package dockerrun_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

// waitPool waits until the owner's containers are exactly n running warm
// containers, which is a full pool with no run in flight and no removal
// pending, and returns them.
func waitPool(t *testing.T, owner string, n int, timeout time.Duration) []container.Summary {
	t.Helper()
	list, _ := testenv.WaitContainers(t, dockerrun.LabelOwner, owner, timeout, fmt.Sprintf("a full pool of %d idle warm containers", n), func(list []container.Summary) bool {
		return len(list) == n && !slices.ContainsFunc(list, func(c container.Summary) bool {
			return c.State != "running" || c.Labels[dockerrun.LabelWarm] != "true"
		})
	})
	return list
}

// waitGone waits until no container of owner has an ID that starts with one
// of prefixes: a used container is removed in the background after its run.
func waitGone(t *testing.T, owner string, prefixes ...string) {
	t.Helper()
	testenv.WaitContainers(t, dockerrun.LabelOwner, owner, 30*time.Second, fmt.Sprintf("containers %v removed", prefixes), func(list []container.Summary) bool {
		return !slices.ContainsFunc(list, func(c container.Summary) bool {
			return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(c.ID, p) })
		})
	})
}

func ids(list []container.Summary) []string {
	var out []string
	for _, c := range list {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return out
}

// runHost runs the probe's "id" mode and returns the container's hostname,
// which is the first 12 characters of its ID when the Runner sets none.
func runHost(t *testing.T, r *dockerrun.Runner, image string) (string, *dockerrun.Result) {
	t.Helper()
	res, err := r.Run(context.Background(), image, map[string]any{"mode": "id"})
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	_, host, ok := strings.Cut(res.Stdout, "host=")
	if !ok || len(host) != 12 {
		t.Fatalf("Run() stdout = %q, want it to end in host=<12 characters of the container ID>", res.Stdout)
	}
	return host, res
}

func TestPoolFillsAndUsesEachContainerOnce(t *testing.T) {
	t.Parallel()
	const size = 3
	image := testenv.Probe(t)
	// Four places for a pool of three: a run that kept a place it did not
	// own would leave none for the next.
	r, owner := newOwnedRunner(t,
		dockerrun.WithWarmPool(map[string]int{image: size}),
		dockerrun.WithMaxConcurrentRuns(size+1),
		dockerrun.WithQueue(8, 10*time.Second),
		dockerrun.WithHostname(""), // the hostname is then the container ID
		dockerrun.WithMaxOutputSize(100_000),
	)

	pool := waitPool(t, owner, size, 30*time.Second)
	for _, c := range pool {
		want := map[string]string{dockerrun.LabelOwner: owner, dockerrun.LabelInstance: r.Instance(), dockerrun.LabelWarm: "true"}
		got := map[string]string{dockerrun.LabelOwner: c.Labels[dockerrun.LabelOwner], dockerrun.LabelInstance: c.Labels[dockerrun.LabelInstance], dockerrun.LabelWarm: c.Labels[dockerrun.LabelWarm]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("labels of pool container %s mismatch (-want +got):\n%s", c.ID[:12], diff)
		}
	}

	// Sequential runs: each takes one of the idle containers, which is then
	// removed and replaced.
	used := map[string]bool{}
	for i := range 2 * size {
		before := ids(pool)
		host, res := runHost(t, r, image)
		if !res.Warm {
			t.Errorf("run %d: Result.Warm = false with a full pool", i)
		}
		if used[host] {
			t.Errorf("run %d: container %s was used a second time", i, host)
		}
		used[host] = true
		if !slices.ContainsFunc(before, func(id string) bool { return strings.HasPrefix(id, host) }) {
			t.Errorf("run %d: ran in %s, which was not one of the idle pool containers %v", i, host, before)
		}
		waitGone(t, owner, host)
		pool = waitPool(t, owner, size, 30*time.Second)
	}

	// A burst as large as the pool: every run warm, every container
	// different.
	hosts := make(chan string, size)
	var wg sync.WaitGroup
	for range size {
		wg.Go(func() {
			host, res := runHost(t, r, image)
			if !res.Warm {
				t.Errorf("burst: Result.Warm = false with a full pool")
			}
			hosts <- host
		})
	}
	wg.Wait()
	close(hosts)
	var burst []string
	for host := range hosts {
		if used[host] {
			t.Errorf("burst: container %s was used a second time", host)
		}
		used[host] = true
		burst = append(burst, host)
	}
	waitGone(t, owner, burst...)
	waitPool(t, owner, size, 30*time.Second)
}

func TestPoolImageNamesNormalized(t *testing.T) {
	t.Parallel()
	image := testenv.Probe(t)
	short := strings.TrimSuffix(image, ":latest")
	r, owner := newOwnedRunner(t, dockerrun.WithWarmPool(map[string]int{short: 1}), dockerrun.WithMaxConcurrentRuns(2))
	waitPool(t, owner, 1, 30*time.Second)
	res, err := r.Run(context.Background(), image, map[string]any{"mode": "echo"})
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if !res.Warm {
		t.Errorf("Run(%q) with a pool for %q: Result.Warm = false, want true", image, short)
	}
}

func TestPoolDeadlineStartsWithThePayload(t *testing.T) {
	t.Parallel()
	const limit = time.Second
	image := testenv.Probe(t)
	r, owner := newOwnedRunner(t,
		dockerrun.WithWarmPool(map[string]int{image: 1}),
		dockerrun.WithMaxConcurrentRuns(2),
		dockerrun.WithMaxExecutionTime(limit),
	)
	waitPool(t, owner, 1, 30*time.Second)
	// Idle for longer than the execution limit: a deadline that started
	// with the container would have passed.
	time.Sleep(limit + limit/2)
	res, err := r.Run(context.Background(), image, map[string]any{"mode": "echo", "sleep": "300ms"})
	if err != nil {
		t.Fatalf("Run() on a container idle for %v error: %v", limit+limit/2, err)
	}
	if !res.Warm {
		t.Errorf("Result.Warm = false with a full pool")
	}

	// The limit still holds, counted from the payload.
	waitPool(t, owner, 1, 30*time.Second)
	time.Sleep(limit + limit/2)
	start := time.Now()
	_, err = r.Run(context.Background(), image, map[string]any{"mode": "echo", "sleep": "1h"})
	took := time.Since(start)
	if !errors.Is(err, dockerrun.ErrExecutionTime) {
		t.Fatalf("Run() error = %v, want %s", err, dockerrun.CodeExecutionTime)
	}
	if took < limit-50*time.Millisecond || took > limit+2*time.Second {
		t.Errorf("Run() timed out after %v, want about %v after the payload", took, limit)
	}
}

func TestPoolReplacesOldContainers(t *testing.T) {
	t.Parallel()
	// Long enough for a loaded machine to fill the pool within it.
	const maxAge = 5 * time.Second
	image := testenv.Probe(t)
	r, owner := newOwnedRunner(t,
		dockerrun.WithWarmPool(map[string]int{image: 2}),
		dockerrun.WithMaxConcurrentRuns(3),
		dockerrun.WithWarmMaxAge(maxAge),
	)
	first := ids(waitPool(t, owner, 2, 30*time.Second))
	filled := time.Now()
	waitGone(t, owner, first...)
	if gone := time.Since(filled); gone > maxAge+5*time.Second {
		t.Errorf("idle containers removed %v after the pool was full, want soon after %v", gone, maxAge)
	}
	waitPool(t, owner, 2, 30*time.Second)
	res, err := r.Run(context.Background(), image, map[string]any{"mode": "echo"})
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if !res.Warm {
		t.Errorf("Result.Warm = false after the pool was renewed")
	}
}

// logBuffer is an io.Writer for a slog handler that tests read from.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records with the given message.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(b.buf.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

const backoffMsg = "warm pool: cannot start a container; backing off"

// checkBackoff checks that the pool's retry delays double.
func checkBackoff(t *testing.T, recs []map[string]any) {
	t.Helper()
	if len(recs) < 3 {
		t.Fatalf("%d %q log records, want at least 3", len(recs), backoffMsg)
	}
	prev := 0.0
	for i, rec := range recs {
		d, ok := rec["retry_in"].(float64) // nanoseconds
		if !ok {
			t.Fatalf("record %d has no retry_in: %v", i, rec)
		}
		if i > 0 && d < 1.9*prev {
			t.Errorf("retry %d after %v, retry %d after %v: want the delay doubled", i-1, time.Duration(prev), i, time.Duration(d))
		}
		prev = d
	}
}

func TestPoolBadImageBacksOff(t *testing.T) {
	t.Parallel()
	cli := testenv.Docker(t)
	probe := testenv.Probe(t)
	// An image whose containers are created but cannot start.
	broken := "dockerrun-test/broken-agent:latest"
	if err := testenv.BuildImage(cli, broken, map[string][]byte{
		"Dockerfile": []byte("FROM " + probe + "\nCMD [\"/no-such-agent\"]\n"),
	}); err != nil {
		t.Fatalf("build %s: %v", broken, err)
	}
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), broken, image.RemoveOptions{})
	})
	missing := "dockerrun-test/no-such-image:latest"

	owner := "it-pool-backoff-" + strings.ToLower(time.Now().Format("150405.000000"))
	owner = strings.ReplaceAll(owner, ".", "-")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, evErrs := cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"),
		filters.Arg("event", "create"),
		filters.Arg("label", dockerrun.LabelOwner+"="+owner),
	)})
	var logs logBuffer
	r, err := dockerrun.New(
		dockerrun.WithOwner(owner),
		// Several containers each: the fillers of an image that fails must
		// not multiply the attempts.
		dockerrun.WithWarmPool(map[string]int{broken: 3, missing: 3}),
		dockerrun.WithMaxConcurrentRuns(8),
		dockerrun.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))),
	)
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	if err := r.Ping(context.Background()); err != nil {
		t.Fatalf("Ping() error: %v", err)
	}
	closed := false
	closeRunner := func() {
		if closed {
			return
		}
		closed = true
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if err := r.Close(cctx); err != nil {
			t.Errorf("Close() error: %v", err)
		}
	}
	t.Cleanup(func() {
		closeRunner()
		testenv.WaitNoContainers(t, dockerrun.LabelOwner, owner, 10*time.Second)
	})

	// The first containers created from the broken image: each attempt
	// after a failure waits the backoff, from 100ms and doubling, however
	// many containers the pool wants; a pool that spins would create one
	// every few tens of ms. Slowness only widens the gaps.
	var creates []time.Time
	timeout := time.After(30 * time.Second)
	for len(creates) < 4 {
		select {
		case ev := <-evs:
			if ev.Actor.Attributes["image"] == broken {
				creates = append(creates, time.Unix(0, ev.TimeNano))
			}
		case err := <-evErrs:
			t.Fatalf("docker events: %v", err)
		case <-timeout:
			t.Fatalf("%d containers created for the broken image within 30s, want 4", len(creates))
		}
	}
	for i, want := 1, 100*time.Millisecond; i < len(creates); i, want = i+1, 2*want {
		if gap := creates[i].Sub(creates[i-1]); gap < want {
			t.Errorf("container %d of the broken image created %v after the one before, want at least %v (a backoff from 100ms, doubling)", i+1, gap, want)
		}
	}

	// The failing images keep none of the places: a cold run goes through.
	res, err := r.Run(context.Background(), probe, map[string]any{"mode": "echo"})
	if err != nil {
		t.Errorf("cold Run() beside a failing pool error: %v", err)
	} else if res.Warm {
		t.Errorf("cold Run() has Result.Warm = true")
	}
	// Enough failures of each image to see the delays grow.
	waitLogs := time.Now().Add(20 * time.Second)
	for time.Now().Before(waitLogs) {
		n := map[any]int{}
		for _, rec := range logs.records(t, backoffMsg) {
			n[rec["image"]]++
		}
		if n[broken] >= 3 && n[missing] >= 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	closeRunner()
	var brokenRecs, missingRecs []map[string]any
	for _, rec := range logs.records(t, backoffMsg) {
		switch rec["image"] {
		case broken:
			brokenRecs = append(brokenRecs, rec)
		case missing:
			missingRecs = append(missingRecs, rec)
		}
	}
	for _, tt := range []struct {
		name string
		recs []map[string]any
		code dockerrun.Code
	}{
		{"broken agent", brokenRecs, dockerrun.CodeContainerStart},
		{"missing image", missingRecs, dockerrun.CodeContainerCreate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkBackoff(t, tt.recs)
			if got := tt.recs[0]["code"]; got != string(tt.code) {
				t.Errorf("code of the failure = %v, want %s", got, tt.code)
			}
		})
	}
}

func TestPoolCloseRemovesEveryContainer(t *testing.T) {
	t.Parallel()
	image := testenv.Probe(t)
	// Close at different moments of the fill: before any container, while
	// some are being created, and with a full pool.
	for _, after := range []time.Duration{0, 30 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond, -1} {
		name := "full"
		if after >= 0 {
			name = "after " + after.String()
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const size = 3
			r, owner := newOwnedRunner(t, dockerrun.WithWarmPool(map[string]int{image: size}), dockerrun.WithMaxConcurrentRuns(size+1))
			if after < 0 {
				waitPool(t, owner, size, 30*time.Second)
			} else {
				time.Sleep(after)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := r.Close(ctx); err != nil {
				t.Fatalf("Close() error: %v", err)
			}
			if left := testenv.Containers(t, dockerrun.LabelOwner, owner); len(left) > 0 {
				t.Errorf("Close() returned with %d containers of its owner left: %v", len(left), ids(left))
			}
			// A create the daemon finishes after Close would show up late.
			time.Sleep(time.Second)
			if left := testenv.Containers(t, dockerrun.LabelOwner, owner); len(left) > 0 {
				t.Errorf("%d containers of the owner appeared after Close(): %v", len(left), ids(left))
			}
			if _, err := r.Run(context.Background(), image, map[string]any{"mode": "echo"}); !errors.Is(err, dockerrun.ErrClosed) {
				t.Errorf("Run() after Close() error = %v, want %s", err, dockerrun.CodeClosed)
			}
		})
	}
}

func TestPoolCountsAgainstTheConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const limit, size = 3, 2
	cli := testenv.Docker(t)
	probe := testenv.Probe(t)
	// The same probe under a second name, so that its runs are cold. The
	// name is this run's own: test binaries of other work trees may tag and
	// remove theirs meanwhile on the same daemon.
	other := "dockerrun-test/probe:cold-" + strings.ToLower(rand.Text()[:8])
	if err := cli.ImageTag(context.Background(), probe, other); err != nil {
		t.Fatalf("tag %s: %v", other, err)
	}
	t.Cleanup(func() {
		cli.ImageRemove(context.Background(), other, image.RemoveOptions{})
	})
	r, owner := newOwnedRunner(t, dockerrun.WithWarmPool(map[string]int{probe: size}), dockerrun.WithMaxConcurrentRuns(limit))
	waitPool(t, owner, size, 30*time.Second)

	const runs = 3
	peak := peakContainers(t, r, owner, other, runs)
	if peak > limit {
		t.Errorf("%d containers existed at once, pool included, want at most %d", peak, limit)
	}
	if peak < size+1 {
		t.Errorf("at most %d containers existed at once, want the pool of %d plus a run", peak, size)
	}
}

// An agent that fails at its start (here: an unknown user) writes to
// stderr and exits. Its warm containers are not handed to runs, the pool
// backs off as for an image whose containers die at once, and each run
// gets the agent's message from a cold container.
func TestPoolAgentThatFailsAtStartBacksOff(t *testing.T) {
	t.Parallel()
	img := testenv.LanguageImages(t, "python")[0]
	owner := "it-pool-failstart-" + strings.ToLower(rand.Text()[:8])
	var logs logBuffer
	r, err := dockerrun.New(
		dockerrun.WithOwner(owner),
		dockerrun.WithUser("nosuchuser"),
		dockerrun.WithWarmPool(map[string]int{img: 1}),
		dockerrun.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))),
	)
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close() error: %v", err)
		}
		testenv.WaitNoContainers(t, dockerrun.LabelOwner, owner, 30*time.Second)
	})
	if err := r.Ping(context.Background()); err != nil {
		t.Fatalf("Ping() error: %v", err)
	}
	const diedYoung = "warm pool: an idle container died within a second of its start; backing off"
	deadline := time.Now().Add(30 * time.Second)
	for len(logs.records(t, diedYoung)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d %q log records within 30s, want 3", len(logs.records(t, diedYoung)), diedYoung)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if recs := logs.records(t, diedYoung); !strings.Contains(fmt.Sprint(recs[0]["error"]), "nosuchuser") {
		t.Errorf("log record %v: want the agent's message in its error", recs[0])
	}
	checkBackoff(t, logs.records(t, diedYoung))
	payload := map[string]any{"language": "python", "files": []map[string]string{{"name": "main.py", "content": "print(1)"}}}
	for i := range 4 {
		_, err := r.Run(context.Background(), img, payload)
		if dockerrun.ErrorCode(err) != dockerrun.CodeAgentStderr || !strings.Contains(err.Error(), "nosuchuser") {
			t.Errorf("Run() #%d error = %v; want %s with the agent's message", i, err, dockerrun.CodeAgentStderr)
		}
	}
	// A run may take a container in the milliseconds before its agent
	// fails; four in a row would mean that the pool hands them out.
	if n := len(logs.records(t, "warm container died before it could read the payload; running on a cold one")); n > 1 {
		t.Errorf("%d of 4 runs took a warm container whose agent had failed, then ran cold; want at most 1", n)
	}
}
