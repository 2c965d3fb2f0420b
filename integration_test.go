package dockerrun_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

var owners atomic.Int64

// ownerRun tells this test binary's owners from those of the same tests run
// at the same time from another work tree on the same daemon.
var ownerRun = strings.ToLower(rand.Text()[:6])

// newRunner returns a Runner against the real engine, with an owner label of
// its own, and checks after the test that it left no container behind.
func newRunner(t *testing.T, opts ...dockerrun.Option) *dockerrun.Runner {
	t.Helper()
	r, _ := newOwnedRunner(t, opts...)
	return r
}

// newOwnedRunner is newRunner that also returns the owner label.
func newOwnedRunner(t *testing.T, opts ...dockerrun.Option) (*dockerrun.Runner, string) {
	t.Helper()
	testenv.Docker(t)
	owner := fmt.Sprintf("it-%s-%d-%s", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), owners.Add(1), ownerRun)
	if len(owner) > 63 {
		owner = owner[len(owner)-63:]
		owner = "x" + owner[1:]
	}
	r, err := dockerrun.New(append([]dockerrun.Option{
		dockerrun.WithOwner(owner),
		dockerrun.WithMaxExecutionTime(5 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	// Ping starts the warm pool, if any, as a server's start-up does.
	if err := r.Ping(context.Background()); err != nil {
		t.Fatalf("Ping() error: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close() error: %v", err)
		}
		testenv.WaitNoContainers(t, dockerrun.LabelOwner, owner, 10*time.Second)
	})
	return r, owner
}

func TestRunSuccess(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	image := testenv.Probe(t)
	payload := map[string]any{"mode": "echo", "text": "héllo, wörld ✓ 日本語 \u0000 \"quoted\"\n"}
	res, err := r.Run(context.Background(), image, payload)
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	want, _ := json.Marshal(payload)
	if diff := cmp.Diff(string(want)+"", strings.TrimSpace(res.Stdout)); diff != "" {
		t.Errorf("payload as the container read it mismatch (-want +got):\n%s", diff)
	}
	var raw map[string]any
	if err := json.Unmarshal(res.Raw, &raw); err != nil {
		t.Fatalf("Raw is not JSON: %v", err)
	}
	if diff := cmp.Diff(map[string]any{"duration": 1234.0, "extra": []any{1.0, 2.0}}, map[string]any{"duration": raw["duration"], "extra": raw["extra"]}); diff != "" {
		t.Errorf("extra fields mismatch (-want +got):\n%s", diff)
	}
	if res.Duration <= 0 || res.Duration > 5*time.Second {
		t.Errorf("Duration = %v, want between 0 and 5s", res.Duration)
	}
}

func TestRunRawPayloadVerbatim(t *testing.T) {
	t.Parallel()
	r := newRunner(t)
	image := testenv.Probe(t)
	raw := json.RawMessage(`{"mode":"echo",  "z": 1, "a": "ünïcödé", "big": "` + strings.Repeat("ab", 200_000) + `"}`)
	res, err := r.Run(context.Background(), image, raw)
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if got := strings.TrimSpace(res.Stdout); got != string(raw) {
		t.Errorf("payload arrived changed: got %d bytes, want %d bytes, same prefix %v", len(got), len(raw), strings.HasPrefix(got, string(raw[:50])))
	}
}

func TestRunFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		payload  any
		opts     []dockerrun.Option
		image    string
		want     dockerrun.Code
		inMsg    string
		maxTotal time.Duration
	}{
		// maxTotal includes creating and starting the container, which can
		// take seconds on a loaded daemon; it still tells a 2 s limit from
		// a run that never ends (the sleep is an hour, the trickle endless).
		{name: "timeout", payload: map[string]any{"mode": "echo", "sleep": "1h"}, want: dockerrun.CodeExecutionTime, maxTotal: 20 * time.Second},
		{name: "timeout with trickle of output", payload: map[string]any{"mode": "trickle"}, want: dockerrun.CodeExecutionTime, maxTotal: 20 * time.Second},
		{name: "output flood", payload: map[string]any{"mode": "flood"}, want: dockerrun.CodeOutputSize, maxTotal: 20 * time.Second},
		{name: "answer over the limit", payload: map[string]any{"mode": "big", "bytes": 300_000}, want: dockerrun.CodeOutputSize},
		{name: "agent stderr", payload: map[string]any{"mode": "stderr"}, want: dockerrun.CodeAgentStderr, inMsg: "agent crashed: boom"},
		{name: "agent stderr with an answer", payload: map[string]any{"mode": "stderr-and-answer"}, want: dockerrun.CodeAgentStderr, inMsg: "warning from agent"},
		{name: "agent invalid JSON", payload: map[string]any{"mode": "invalid"}, want: dockerrun.CodeStdoutDecode, inMsg: "this is not json"},
		{name: "agent answers an array", payload: map[string]any{"mode": "not-object"}, want: dockerrun.CodeStdoutDecode},
		{name: "agent answer without error field", payload: map[string]any{"mode": "missing-field"}, want: dockerrun.CodeStdoutDecode, inMsg: "no error field"},
		{name: "agent exits silently", payload: map[string]any{"mode": "silent"}, want: dockerrun.CodeStdoutDecode, inMsg: "exit code 3"},
		{name: "memory", payload: map[string]any{"mode": "memory"}, opts: []dockerrun.Option{dockerrun.WithMemory(32 << 20), dockerrun.WithMaxExecutionTime(20 * time.Second)}, want: dockerrun.CodeMemory},
		{name: "missing image", image: "dockerrun-test/no-such-image:latest", payload: map[string]any{}, want: dockerrun.CodeContainerCreate, inMsg: "never pulled"},
		{name: "registry host refused", image: "registry.example.com/evil:latest", payload: map[string]any{}, want: dockerrun.CodeImageNotAllowed},
		{name: "payload not an object", payload: []int{1, 2}, want: dockerrun.CodePayloadSerialize},
		{name: "payload not JSON", payload: json.RawMessage(`{"a":`), want: dockerrun.CodePayloadSerialize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := append([]dockerrun.Option{dockerrun.WithMaxExecutionTime(2 * time.Second), dockerrun.WithMaxOutputSize(100_000)}, tt.opts...)
			r := newRunner(t, opts...)
			image := tt.image
			if image == "" {
				image = testenv.Probe(t)
			}
			start := time.Now()
			res, err := r.Run(context.Background(), image, tt.payload)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("Run() = %+v, want error %s", res, tt.want)
			}
			if diff := cmp.Diff(tt.want, dockerrun.ErrorCode(err)); diff != "" {
				t.Errorf("Run() error code mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			if !errors.Is(err, &dockerrun.Error{Code: tt.want}) {
				t.Errorf("errors.Is(%v, code %s) = false", err, tt.want)
			}
			if tt.inMsg != "" && !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("Run() error = %q, want it to contain %q", err, tt.inMsg)
			}
			if tt.maxTotal > 0 && took > tt.maxTotal {
				t.Errorf("Run() took %v, want at most %v", took, tt.maxTotal)
			}
		})
	}
}

// unflaggedOOM is a Docker client that never reports State.OOMKilled, as
// Docker does when the exit event of a container killed for memory reaches
// it before the OOM event.
type unflaggedOOM struct{ dockerrun.DockerAPI }

func (d unflaggedOOM) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	info, err := d.DockerAPI.ContainerInspect(ctx, id)
	if err == nil && info.ContainerJSONBase != nil && info.State != nil {
		s := *info.State
		s.OOMKilled = false
		info.State = &s
	}
	return info, err
}

// A run killed for memory whose State.OOMKilled Docker left unset is still
// limits.memory: the runner finds the daemon's "oom" event.
func TestRunMemoryKnownFromTheOOMEvent(t *testing.T) {
	t.Parallel()
	r := newRunner(t, dockerrun.WithDockerClient(unflaggedOOM{testenv.Docker(t)}),
		dockerrun.WithMemory(32<<20), dockerrun.WithMaxExecutionTime(20*time.Second))
	res, err := r.Run(context.Background(), testenv.Probe(t), map[string]any{"mode": "memory"})
	if got := dockerrun.ErrorCode(err); got != dockerrun.CodeMemory {
		t.Errorf("Run() = %+v, %v; want %s", res, err, dockerrun.CodeMemory)
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	r, owner := newOwnedRunner(t, dockerrun.WithMaxExecutionTime(time.Minute))
	image := testenv.Probe(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, image, map[string]any{"mode": "echo", "sleep": "1h"})
		done <- err
	}()
	// Cancel once the container runs, as a client that goes away mid-run.
	deadline := time.Now().Add(30 * time.Second)
	for running := false; !running; {
		for _, c := range testenv.Containers(t, dockerrun.LabelOwner, owner) {
			running = running || c.State == "running"
		}
		if time.Now().After(deadline) {
			t.Fatal("the run's container never ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the payload be written
	cancel()
	canceled := time.Now()
	err := <-done
	if !errors.Is(err, dockerrun.ErrCanceled) {
		t.Fatalf("Run() error = %v, want %s", err, dockerrun.CodeCanceled)
	}
	if took := time.Since(canceled); took > 2*time.Second {
		t.Errorf("Run() returned %v after the cancel, want promptly", took)
	}
	// The container goes too (newRunner's cleanup checks that none is left).
}

func TestRunContainerSettings(t *testing.T) {
	t.Parallel()
	r := newRunner(t, dockerrun.WithHostname("sandbox"), dockerrun.WithMaxOutputSize(200_000))
	image := testenv.Probe(t)
	res, err := r.Run(context.Background(), image, map[string]any{"mode": "id"})
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if diff := cmp.Diff("uid=1000 gid=1000 host=sandbox", res.Stdout); diff != "" {
		t.Errorf("identity inside the container mismatch (-want +got):\n%s", diff)
	}
	for _, want := range []string{"NoNewPrivs:\t1", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("/proc/self/status lacks %q:\n%s", want, res.Stderr)
		}
	}
	res, err = r.Run(context.Background(), image, map[string]any{"mode": "env"})
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	for _, want := range []string{"DOCKERRUN_MAX_OUTPUT_SIZE=200000", "DOCKERRUN_MAX_EXECUTION_TIME_MS=5000"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("environment lacks %q:\n%s", want, res.Stdout)
		}
	}
}

func TestRunConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const limit, runs = 2, 6
	r, owner := newOwnedRunner(t, dockerrun.WithMaxConcurrentRuns(limit))
	image := testenv.Probe(t)
	peak := peakContainers(t, r, owner, image, runs)
	if peak > limit || peak == 0 {
		t.Errorf("at most %d containers existed at once, want 1 to %d", peak, limit)
	}
}

// peakContainers starts runs short runs of image at once and returns the
// most containers of owner seen at one time while they ran; every run must
// succeed.
func peakContainers(t *testing.T, r *dockerrun.Runner, owner, image string, runs int) int {
	t.Helper()
	errs := make(chan error, runs)
	for range runs {
		go func() {
			_, err := r.Run(context.Background(), image, map[string]any{"mode": "echo", "sleep": "300ms"})
			errs <- err
		}()
	}
	peak := 0
	for done := 0; done < runs; {
		select {
		case err := <-errs:
			if err != nil {
				t.Errorf("Run() error: %v", err)
			}
			done++
		case <-time.After(10 * time.Millisecond):
			peak = max(peak, len(testenv.Containers(t, dockerrun.LabelOwner, owner)))
		}
	}
	return peak
}
