package dockerrun

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu           sync.Mutex
	runs         []RunInfo
	reaped       int
	dockerErrors []string
}

func (o *recorder) RunDone(info RunInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.runs = append(o.runs, info)
}

func (o *recorder) ContainersReaped(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reaped += n
}

func (o *recorder) DockerError(op string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dockerErrors = append(o.dockerErrors, op)
}

func (o *recorder) snapshot() ([]RunInfo, int, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]RunInfo(nil), o.runs...), o.reaped, append([]string(nil), o.dockerErrors...)
}

// limitedProgram answers as an agent that stopped the user's program at
// its own time limit.
func limitedProgram(p *fakeProc) (int, bool) {
	if _, err := p.readPayload(); err != nil {
		return 1, false
	}
	p.write(streamStdout, `{"stdout":"partial","stderr":"","error":"Execution time limit exceeded: the program was stopped after 1s"}`+"\n")
	return 0, false
}

func TestObserverRunInfo(t *testing.T) {
	t.Parallel()
	missingImage := func(context.Context, *container.Config) error {
		return errdefs.NotFound(errors.New("No such image: fake/img:latest"))
	}
	tests := []struct {
		name             string
		opts             []Option
		setup            func(f *fakeDocker)
		image            string
		mode             string
		want             RunInfo
		wantRunOK        bool // Run succeeds (the code, if any, is the agent's)
		wantDockerErrors []string
	}{
		{
			name: "answered", image: "fake/img", mode: "echo",
			want:      RunInfo{Image: "fake/img:latest", Container: true, Queued: true},
			wantRunOK: true,
		},
		{
			name: "killed at the runner's limit", image: "fake/img", mode: "sleep",
			opts: []Option{WithMaxExecutionTime(50 * time.Millisecond)},
			want: RunInfo{Image: "fake/img:latest", Code: CodeExecutionTime, Container: true, Queued: true},
		},
		{
			name: "limit reported by the agent", image: "fake/limited:v1", mode: "echo",
			setup:     func(f *fakeDocker) { f.programs["fake/limited:v1"] = limitedProgram },
			want:      RunInfo{Image: "fake/limited:v1", Code: CodeExecutionTime, Container: true, Queued: true},
			wantRunOK: true,
		},
		{
			name: "image not allowed", image: "fake/img", mode: "echo",
			opts: []Option{WithAllowedImages("fake/other")},
			want: RunInfo{Image: "fake/img:latest", Code: CodeImageNotAllowed},
		},
		{
			name: "image missing", image: "fake/img", mode: "echo",
			// The daemon answered: not its trouble.
			setup: func(f *fakeDocker) { f.setFailCreate(missingImage) },
			want:  RunInfo{Image: "fake/img:latest", Code: CodeContainerCreate, Queued: true},
		},
		{
			name: "attach fails", image: "fake/img", mode: "echo",
			setup:            func(f *fakeDocker) { f.failAttach = errors.New("attach: boom") },
			want:             RunInfo{Image: "fake/img:latest", Code: CodeContainerAttach, Queued: true},
			wantDockerErrors: []string{"attach"},
		},
		{
			// The pool never fills: the run misses it and runs cold.
			name: "warm pool miss", image: "fake/img", mode: "echo",
			opts:  []Option{WithWarmPool(map[string]int{"fake/img": 1})},
			setup: func(f *fakeDocker) { f.setFailCreate(missingImage) },
			want:  RunInfo{Image: "fake/img:latest", Code: CodeContainerCreate, WarmMiss: true, Queued: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDocker()
			if tt.setup != nil {
				tt.setup(f)
			}
			obs := &recorder{}
			r := newTestRunner(t, f, append(tt.opts, WithObserver(obs))...)
			_, err := r.Run(context.Background(), tt.image, map[string]any{"mode": tt.mode})
			if tt.wantRunOK && err != nil || !tt.wantRunOK && ErrorCode(err) != tt.want.Code {
				t.Errorf("Run() error = %v, want code %q (nil: %v)", err, tt.want.Code, tt.wantRunOK)
			}
			runs, _, dockerErrors := obs.snapshot()
			if len(runs) != 1 {
				t.Fatalf("RunDone called %d times, want 1: %+v", len(runs), runs)
			}
			got := runs[0]
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(RunInfo{}, "QueueWait", "Duration")); diff != "" {
				t.Errorf("RunInfo mismatch (-want +got):\n%s", diff)
			}
			if got.Container != (got.Duration > 0) {
				t.Errorf("RunInfo.Duration = %v with Container %v: want > 0 exactly when there was a container", got.Duration, got.Container)
			}
			if !tt.wantRunOK && tt.want.Code == CodeExecutionTime && got.Duration < 50*time.Millisecond {
				t.Errorf("RunInfo.Duration = %v, want at least the 50ms limit", got.Duration)
			}
			// The pool may keep failing to create while the test ends.
			if tt.name != "warm pool miss" {
				if diff := cmp.Diff(tt.wantDockerErrors, dockerErrors); diff != "" {
					t.Errorf("DockerError calls mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestObserverWarmRun(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	obs := &recorder{}
	r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": 1}), WithMaxConcurrentRuns(2), WithObserver(obs))
	waitFor(t, 5*time.Second, "the pool to fill", func() bool { return poolSize(r, "fake/img") == 1 })
	if diff := cmp.Diff(map[string]int{"fake/img:latest": 1}, r.Stats().WarmReady); diff != "" {
		t.Errorf("Stats().WarmReady mismatch (-want +got):\n%s", diff)
	}
	if _, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"}); err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	runs, _, _ := obs.snapshot()
	want := []RunInfo{{Image: "fake/img:latest", Container: true, Warm: true}}
	if diff := cmp.Diff(want, runs, cmpopts.IgnoreFields(RunInfo{}, "Duration")); diff != "" {
		t.Errorf("RunInfo mismatch (-want +got):\n%s", diff)
	}
}

func TestObserverReaped(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	obs := &recorder{}
	r := newTestRunner(t, f, WithOwner("svc"), WithObserver(obs))
	for i := range 2 {
		f.seed(map[string]string{LabelOwner: "svc", LabelInstance: fmt.Sprintf("dead%d", i)}, false)
	}
	f.seed(map[string]string{LabelOwner: "someone-else", LabelInstance: "x"}, false)
	for range 2 { // the second Reap finds nothing and reports nothing
		if _, err := r.Reap(context.Background()); err != nil {
			t.Fatalf("Reap() error: %v", err)
		}
	}
	if _, reaped, _ := obs.snapshot(); reaped != 2 {
		t.Errorf("ContainersReaped total = %d, want 2", reaped)
	}
}

// TestStatsAndReady holds one place with a sleeping run and checks what
// Stats and Ready say, with and without room in the queue.
func TestStatsAndReady(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		queue int64
	}{
		{name: "no queue", queue: 0},
		{name: "queue of one", queue: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDocker()
			r := newTestRunner(t, f, WithMaxConcurrentRuns(1), WithQueue(tt.queue, 5*time.Second))
			ctx := context.Background()
			if err := r.Ready(ctx); err != nil {
				t.Fatalf("Ready() of an idle runner: %v", err)
			}

			rctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			run := func() {
				defer wg.Done()
				r.Run(rctx, "fake/img", map[string]any{"mode": "sleep"})
			}
			wg.Add(1)
			go run()
			waitRunning(t, f)
			if diff := cmp.Diff(Stats{Running: 1}, r.Stats()); diff != "" {
				t.Errorf("Stats() with one run mismatch (-want +got):\n%s", diff)
			}
			err := r.Ready(ctx)
			if tt.queue == 0 && !errors.Is(err, ErrBusy) {
				t.Errorf("Ready() with every place taken and no queue = %v, want %s", err, CodeBusy)
			}
			if tt.queue > 0 && err != nil {
				t.Errorf("Ready() with room in the queue = %v, want nil", err)
			}
			if tt.queue > 0 {
				wg.Add(1)
				go run()
				waitFor(t, 5*time.Second, "a run to wait", func() bool { return r.Stats().Waiting == 1 })
				if diff := cmp.Diff(Stats{Running: 1, Waiting: 1}, r.Stats()); diff != "" {
					t.Errorf("Stats() with one run and one waiting mismatch (-want +got):\n%s", diff)
				}
				if err := r.Ready(ctx); !errors.Is(err, ErrBusy) {
					t.Errorf("Ready() with the queue full = %v, want %s", err, CodeBusy)
				}
			}
			cancel()
			wg.Wait()
			// The place comes back once the container is removed.
			waitFor(t, 5*time.Second, "the runner to be ready again", func() bool { return r.Ready(ctx) == nil })
			if diff := cmp.Diff(Stats{}, r.Stats()); diff != "" {
				t.Errorf("Stats() after the runs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadyClosed(t *testing.T) {
	t.Parallel()
	r, err := New(WithDockerClient(newFakeDocker()))
	if err != nil {
		t.Fatal(err)
	}
	closeRunner(t, r)
	if err := r.Ready(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Ready() after Close = %v, want %s", err, CodeClosed)
	}
}

func TestAgentLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		answerError string
		want        Code
	}{
		{"", ""},
		{"Exit code: 1", ""},
		{"Execution time limit exceeded: the program was stopped after 1s", CodeExecutionTime},
		{"Output limit exceeded: the program wrote more than 100 bytes and was stopped", CodeOutputSize},
		{"Build failed: Execution time limit exceeded: no", ""},
	}
	for _, tt := range tests {
		if got := agentLimit(tt.answerError); got != tt.want {
			t.Errorf("agentLimit(%q) = %q, want %q", tt.answerError, got, tt.want)
		}
	}
}
