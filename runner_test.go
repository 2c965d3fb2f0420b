package dockerrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// newTestRunner returns a Runner on f, closed after the test, which then
// checks that nothing of it is left in f.
func newTestRunner(t *testing.T, f *fakeDocker, opts ...Option) *Runner {
	t.Helper()
	r, err := New(append([]Option{WithDockerClient(f), WithMaxExecutionTime(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	// Ping starts the warm pool, if any, as a server's start-up does.
	if err := r.Ping(context.Background()); err != nil {
		t.Fatalf("Ping() error: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close() error: %v", err)
		}
		f.checkClean(t, r.Instance())
	})
	return r
}

func closeRunner(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close() error: %v", err)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitRunning returns the ID of the next container that reads its payload.
func waitRunning(t *testing.T, f *fakeDocker) string {
	t.Helper()
	select {
	case id := <-f.running:
		return id
	case <-time.After(5 * time.Second):
		t.Fatalf("no container read its payload within 5s")
		return ""
	}
}

// resultPayload returns the payload that the container echoed in Raw.
func resultPayload(t *testing.T, res *Result) map[string]any {
	t.Helper()
	var raw struct {
		Payload map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(res.Raw, &raw); err != nil {
		t.Fatalf("Result.Raw is not JSON: %v", err)
	}
	return raw.Payload
}

var ignoreMeasured = cmpopts.IgnoreFields(Result{}, "Duration", "Raw", "Timing")

func TestRunCallsInOrder(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f, WithEnv("LANG=C.UTF-8"), WithOwner("unit"), WithMaxOutputSize(4096))
	payload := map[string]any{"mode": "echo", "text": "héllo \"wörld\" {}\n"}
	res, err := r.Run(context.Background(), "fake/img", payload)
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if diff := cmp.Diff(&Result{Stdout: "c01"}, res, ignoreMeasured); diff != "" {
		t.Errorf("Run() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(payload, resultPayload(t, res)); diff != "" {
		t.Errorf("payload as the container read it mismatch (-want +got):\n%s", diff)
	}
	if res.Duration <= 0 || res.Duration > 5*time.Second {
		t.Errorf("Run() Duration = %v, want between 0 and 5s", res.Duration)
	}

	cfg, host := f.config("c01")
	wantCfg := container.Config{
		Image:    "fake/img",
		Hostname: DefaultHostname,
		User:     DefaultUser,
		Env: []string{
			EnvMaxOutputSize + "=4096",
			EnvMaxExecutionTime + "=5000",
			"LANG=C.UTF-8",
		},
		AttachStdin:     true,
		AttachStdout:    true,
		AttachStderr:    true,
		OpenStdin:       true,
		StdinOnce:       true,
		NetworkDisabled: true,
		Healthcheck:     &container.HealthConfig{Test: []string{"NONE"}},
		Labels:          map[string]string{LabelOwner: "unit", LabelInstance: r.Instance(), LabelWarm: "false"},
	}
	if diff := cmp.Diff(wantCfg, cfg); diff != "" {
		t.Errorf("container config mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(r.host, host); diff != "" {
		t.Errorf("host config mismatch (-want +got):\n%s", diff)
	}

	closeRunner(t, r)
	want := []fakeCall{{"create", "c01"}, {"attach", "c01"}, {"start", "c01"}, {"remove", "c01"}}
	if diff := cmp.Diff(want, f.callList()); diff != "" {
		t.Errorf("Docker calls mismatch (-want +got):\n%s", diff)
	}
}

func TestRunAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload any
		want    *Result
	}{
		{"answer in many small frames", map[string]any{"mode": "split"}, &Result{Stdout: "c01"}},
		// The container does not exit after answering: Run must not wait
		// for it (the execution time limit is 5s).
		{"answer then hang", map[string]any{"mode": "answer-then-hang"}, &Result{Stdout: "c01"}},
		{"answer near the output limit", map[string]any{"mode": "big", "bytes": 3000}, &Result{Stdout: strings.Repeat("y", 3000)}},
		{"raw payload", json.RawMessage(`{"mode":"echo"}`), &Result{Stdout: "c01"}},
		{"byte payload", []byte(` {"mode":"echo"}`), &Result{Stdout: "c01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDocker()
			r := newTestRunner(t, f, WithMaxOutputSize(4096))
			start := time.Now()
			res, err := r.Run(context.Background(), "fake/img", tt.payload)
			if err != nil {
				t.Fatalf("Run() error: %v", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Run() took %v, want it to return as soon as the answer is complete", took)
			}
			if diff := cmp.Diff(tt.want, res, ignoreMeasured); diff != "" {
				t.Errorf("Run() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

var errClientGone = errors.New("client went away")

func TestRunErrors(t *testing.T) {
	t.Parallel()
	notFoundImage := errdefs.NotFound(errors.New("No such image: fake/img:latest"))
	refused := fmt.Errorf("Cannot connect to the Docker daemon: %w",
		&net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: "/var/run/docker.sock", Net: "unix"}, Err: syscall.ECONNREFUSED})
	tests := []struct {
		name    string
		opts    []Option
		setup   func(*fakeDocker)
		image   string // default fake/img
		payload any
		// ctx returns the caller's context; default Background.
		ctx func(t *testing.T, f *fakeDocker) context.Context
		// want is the error code; wantIs are further errors.Is targets.
		want    Code
		wantIs  []error
		wantNot []error
		inMsg   string
		// wantOps are the Docker calls: those up to start in order, the
		// rest (which may race: a kill at the deadline and the removal)
		// sorted and without repeats.
		wantOps []string
	}{
		{
			name: "image missing on the daemon",
			setup: func(f *fakeDocker) {
				f.failCreate = func(context.Context, *container.Config) error { return notFoundImage }
			},
			want:    CodeContainerCreate,
			wantIs:  []error{ErrContainerCreate, notFoundImage},
			inMsg:   "never pulled",
			wantOps: []string{"create"},
		},
		{
			name:    "daemon unreachable at create",
			setup:   func(f *fakeDocker) { f.failCreate = func(context.Context, *container.Config) error { return refused } },
			want:    CodeDockerUnixSocket,
			wantIs:  []error{ErrDockerUnixSocket, syscall.ECONNREFUSED},
			wantOps: []string{"create"},
		},
		{
			name: "daemon does not answer create in time",
			opts: []Option{WithDockerTimeout(50 * time.Millisecond)},
			setup: func(f *fakeDocker) {
				f.failCreate = func(ctx context.Context, _ *container.Config) error {
					<-ctx.Done()
					return ctx.Err()
				}
			},
			want:    CodeDockerUnixSocket,
			wantNot: []error{ErrCanceled},
			inMsg:   "did not answer within 50ms",
			wantOps: []string{"create"},
		},
		{
			name:    "attach fails",
			setup:   func(f *fakeDocker) { f.failAttach = errors.New("attach: hijack failed") },
			want:    CodeContainerAttach,
			wantIs:  []error{ErrContainerAttach},
			wantOps: []string{"create", "attach", "remove"},
		},
		{
			name:    "start fails",
			setup:   func(f *fakeDocker) { f.failStart = errdefs.System(errors.New("OCI runtime create failed")) },
			want:    CodeContainerStart,
			inMsg:   "OCI runtime create failed",
			wantOps: []string{"create", "attach", "start", "remove"},
		},
		{
			name:    "agent writes to stderr and exits",
			payload: map[string]any{"mode": "stderr"},
			want:    CodeAgentStderr,
			wantIs:  []error{ErrAgentStderr},
			inMsg:   "agent crashed: boom",
			wantOps: []string{"create", "attach", "start", "inspect", "remove"},
		},
		{
			name:    "agent writes to stderr and answers",
			payload: map[string]any{"mode": "stderr-and-answer"},
			want:    CodeAgentStderr,
			inMsg:   "warning from agent",
			wantOps: []string{"create", "attach", "start", "remove"},
		},
		{
			name:    "invalid JSON",
			payload: map[string]any{"mode": "invalid"},
			want:    CodeStdoutDecode,
			wantIs:  []error{ErrStdoutDecode},
			inMsg:   "this is not json",
			wantOps: []string{"create", "attach", "start", "inspect", "remove"},
		},
		{
			name:    "answer is an array",
			payload: map[string]any{"mode": "array"},
			want:    CodeStdoutDecode,
			inMsg:   "[1,2]",
			wantOps: []string{"create", "attach", "start", "inspect", "remove"},
		},
		{
			name:    "answer without an error field",
			payload: map[string]any{"mode": "missing-field"},
			want:    CodeStdoutDecode,
			inMsg:   "no error field",
			wantOps: []string{"create", "attach", "start", "remove"},
		},
		{
			name:    "exits without a word",
			payload: map[string]any{"mode": "silent"},
			want:    CodeStdoutDecode,
			inMsg:   "exit code 3",
			wantOps: []string{"create", "attach", "start", "inspect", "remove"},
		},
		{
			name:    "killed for memory",
			payload: map[string]any{"mode": "oom"},
			want:    CodeMemory,
			wantIs:  []error{ErrMemory},
			wantOps: []string{"create", "attach", "start", "inspect", "remove"},
		},
		{
			// Docker left State.OOMKilled unset (its exit event came
			// first), but published the "oom" event.
			name:    "killed for memory, known from the oom event",
			payload: map[string]any{"mode": "oom-event-only"},
			want:    CodeMemory,
			wantIs:  []error{ErrMemory},
			wantOps: []string{"create", "attach", "start", "events", "inspect", "remove"},
		},
		{
			// Exit code 137 alone is no OOM kill: the code may have sent
			// the agent SIGKILL.
			name:    "exit code 137 without an oom event",
			payload: map[string]any{"mode": "sigkill-self"},
			want:    CodeStdoutDecode,
			inMsg:   "exit code 137",
			wantOps: []string{"create", "attach", "start", "events", "inspect", "remove"},
		},
		{
			name:    "daemon error frame",
			payload: map[string]any{"mode": "daemon-error"},
			want:    CodeStreamRead,
			inMsg:   "container runtime error: boom",
			wantOps: []string{"create", "attach", "start", "inspect", "remove"},
		},
		{
			name:    "malformed frame",
			payload: map[string]any{"mode": "bad-frame"},
			want:    CodeStreamRead,
			wantIs:  []error{errBadFrame},
			wantOps: []string{"create", "attach", "start", "remove"},
		},
		{
			name: "container never reads stdin",
			setup: func(f *fakeDocker) {
				f.programs["fake/img"] = func(*fakeProc) (int, bool) { return 0, false }
			},
			want:    CodeStdin,
			wantIs:  []error{ErrStdin},
			wantOps: []string{"create", "attach", "start", "inspect", "remove"},
		},
		{
			name:    "execution time limit",
			opts:    []Option{WithMaxExecutionTime(100 * time.Millisecond)},
			payload: map[string]any{"mode": "sleep"},
			want:    CodeExecutionTime,
			wantIs:  []error{ErrExecutionTime},
			wantNot: []error{ErrCanceled, context.Canceled, context.DeadlineExceeded},
			inMsg:   "longer than 100ms",
			wantOps: []string{"create", "attach", "start", "kill", "remove"},
		},
		{
			name:    "execution time limit with a trickle of output",
			opts:    []Option{WithMaxExecutionTime(100 * time.Millisecond)},
			payload: map[string]any{"mode": "trickle"},
			want:    CodeExecutionTime,
			wantOps: []string{"create", "attach", "start", "kill", "remove"},
		},
		{
			name:    "caller cancels",
			payload: map[string]any{"mode": "sleep"},
			ctx: func(t *testing.T, f *fakeDocker) context.Context {
				ctx, cancel := context.WithCancelCause(context.Background())
				go func() {
					select {
					case <-f.running:
						cancel(errClientGone)
					case <-t.Context().Done():
					}
				}()
				return ctx
			},
			want:    CodeCanceled,
			wantIs:  []error{ErrCanceled, errClientGone},
			wantNot: []error{ErrExecutionTime},
			wantOps: []string{"create", "attach", "start", "kill", "remove"},
		},
		{
			name:    "caller's own deadline",
			payload: map[string]any{"mode": "sleep"},
			ctx: func(t *testing.T, f *fakeDocker) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want:    CodeCanceled,
			wantIs:  []error{context.DeadlineExceeded},
			wantNot: []error{ErrExecutionTime},
			wantOps: []string{"create", "attach", "start", "kill", "remove"},
		},
		{
			name: "caller canceled before the run",
			ctx: func(t *testing.T, f *fakeDocker) context.Context {
				ctx, cancel := context.WithCancelCause(context.Background())
				cancel(errClientGone)
				return ctx
			},
			want:    CodeCanceled,
			wantIs:  []error{errClientGone},
			wantNot: []error{ErrDockerUnixSocket},
			// No container is created for a caller that is gone.
			wantOps: nil,
		},
		{
			name:    "output flood",
			opts:    []Option{WithMaxOutputSize(4096)},
			payload: map[string]any{"mode": "flood"},
			want:    CodeOutputSize,
			wantIs:  []error{ErrOutputSize},
			inMsg:   "more than 4096 bytes",
			wantOps: []string{"create", "attach", "start", "kill", "remove"},
		},
		{
			name:    "answer over the output limit",
			opts:    []Option{WithMaxOutputSize(4096)},
			payload: map[string]any{"mode": "big", "bytes": 5000},
			want:    CodeOutputSize,
			wantOps: []string{"create", "attach", "start", "kill", "remove"},
		},
		{
			name:    "payload not an object",
			payload: []int{1, 2},
			want:    CodePayloadSerialize,
		},
		{
			name:    "payload not JSON",
			payload: json.RawMessage(`{"a":`),
			want:    CodePayloadSerialize,
		},
		{
			name:    "payload cannot be marshalled",
			payload: map[string]any{"f": func() {}},
			want:    CodePayloadSerialize,
		},
		{
			name:  "image on a registry",
			image: "ghcr.io/evil/img:latest",
			want:  CodeImageNotAllowed,
		},
		{
			name:   "image not on the allow-list",
			opts:   []Option{WithAllowedImages("fake/other")},
			want:   CodeImageNotAllowed,
			wantIs: []error{ErrImageNotAllowed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDocker()
			if tt.setup != nil {
				tt.setup(f)
			}
			r := newTestRunner(t, f, tt.opts...)
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx(t, f)
			}
			image := tt.image
			if image == "" {
				image = "fake/img"
			}
			payload := tt.payload
			if payload == nil {
				payload = map[string]any{"mode": "echo"}
			}
			res, err := r.Run(ctx, image, payload)
			if err == nil {
				t.Fatalf("Run() = %+v, want error %s", res, tt.want)
			}
			if diff := cmp.Diff(tt.want, ErrorCode(err)); diff != "" {
				t.Errorf("Run() error code mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("Run() error %T is not an *Error", err)
			}
			for _, target := range append([]error{&Error{Code: tt.want}}, tt.wantIs...) {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false, want true", err, target)
				}
			}
			for _, target := range tt.wantNot {
				if errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = true, want false", err, target)
				}
			}
			if tt.inMsg != "" && !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("Run() error = %q, want it to contain %q", err, tt.inMsg)
			}
			if errors.Is(err, notFoundImage) && !cerrdefs.IsNotFound(err) {
				t.Errorf("cerrdefs.IsNotFound(%v) = false: Docker's error is not kept", err)
			}

			closeRunner(t, r) // waits for the removal
			if slices.Contains(tt.wantOps, "kill") {
				// The kill at a deadline or a cancellation runs on its own
				// goroutine, concurrently with the end of Run.
				waitFor(t, 5*time.Second, "the kill", func() bool { return f.count("kill") > 0 })
			}
			if diff := cmp.Diff(tt.wantOps, normalizeOps(f.ops()), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Docker calls mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// normalizeOps keeps the leading create, attach and start calls in order,
// then sorts the rest and drops repeats: the kill at a deadline runs
// concurrently with the removal, and the exit state may be polled more than
// once.
func normalizeOps(ops []string) []string {
	i := 0
	for i < len(ops) && (ops[i] == "create" || ops[i] == "attach" || ops[i] == "start") {
		i++
	}
	rest := slices.Clone(ops[i:])
	slices.Sort(rest)
	return append(slices.Clone(ops[:i]), slices.Compact(rest)...)
}

func TestRunNeverExceedsConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const limit, runs = 3, 30
	f := newFakeDocker()
	r := newTestRunner(t, f, WithMaxConcurrentRuns(limit))
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	for i := range runs {
		wg.Go(func() {
			_, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "slow", "ms": 2 + i%5})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Run() error: %v", err)
		}
	}
	closeRunner(t, r)
	if got := f.peak(); got > limit || got < 2 {
		t.Errorf("at most %d containers existed at once, want 2 to %d", got, limit)
	}
	if got := f.count("create"); got != runs {
		t.Errorf("%d containers created, want %d", got, runs)
	}
}

func TestRunWaitsForAPlaceWithinItsContext(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f, WithMaxConcurrentRuns(1))
	first := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "slow", "ms": 5000})
		first <- err
	}()
	id := waitRunning(t, f)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := r.Run(ctx, "fake/img", map[string]any{"mode": "echo"})
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run() error = %v, want %s caused by the context's deadline", err, CodeCanceled)
	}
	if got := f.count("create"); got != 1 {
		t.Errorf("%d containers created, want 1: a run without a place must not create one", got)
	}
	// Free the place: the first run's container dies.
	f.mu.Lock()
	f.stop(f.containers[id])
	f.mu.Unlock()
	if err := <-first; err == nil {
		t.Errorf("first Run() succeeded, want an error: its container was killed")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := r.Run(ctx2, "fake/img", map[string]any{"mode": "echo"}); err != nil {
		t.Errorf("Run() after the place was freed: %v", err)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f)
	for _, mode := range []string{"echo", "stderr", "oom", "answer-then-hang"} {
		r.Run(context.Background(), "fake/img", map[string]any{"mode": mode})
	}
	closeRunner(t, r)
	if left := f.ids(func(*fakeContainer) bool { return true }); len(left) > 0 {
		t.Errorf("containers left after Close: %v", left)
	}
	creates := f.count("create")
	_, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Run() after Close error = %v, want %s", err, CodeClosed)
	}
	if got := f.count("create"); got != creates {
		t.Errorf("Run() after Close created a container")
	}
	if err := r.Close(context.Background()); err != nil {
		t.Errorf("second Close() error: %v", err)
	}
}

func TestCloseWaitsForRunsInFlight(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f)
	ran := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "slow", "ms": 200})
		ran <- err
	}()
	id := waitRunning(t, f)
	closeRunner(t, r)
	if f.exists(id) {
		t.Errorf("Close() returned before the container %s of the run in flight was removed", id)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run() in flight during Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Run() in flight during Close did not return")
	}
}

func TestCloseGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f)
	go r.Run(context.Background(), "fake/img", map[string]any{"mode": "slow", "ms": 300})
	waitRunning(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrContainerRemove) {
		t.Errorf("Close() error = %v, want %s wrapping %v", err, CodeContainerRemove, context.DeadlineExceeded)
	}
	// The cleanup's Close waits for the rest.
}

func TestReap(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f, WithOwner("svc"))
	ours := func(instance string) map[string]string {
		return map[string]string{LabelOwner: "svc", LabelInstance: instance, LabelWarm: "false"}
	}
	deadRunning := f.seed(ours("dead1"), true)
	deadExited := f.seed(ours("dead2"), false)
	untracked := f.seed(ours(r.Instance()), false)
	otherOwner := f.seed(map[string]string{LabelOwner: "other", LabelInstance: "x"}, true)
	unlabelled := f.seed(nil, true)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, "fake/img", map[string]any{"mode": "sleep"})
		ran <- err
	}()
	live := waitRunning(t, f)

	n, err := r.Reap(context.Background())
	if err != nil {
		t.Fatalf("Reap() error: %v", err)
	}
	if n != 3 {
		t.Errorf("Reap() = %d, want 3", n)
	}
	got := map[string]bool{}
	for _, id := range []string{deadRunning, deadExited, untracked, otherOwner, unlabelled, live} {
		got[id] = f.exists(id)
	}
	want := map[string]bool{deadRunning: false, deadExited: false, untracked: false, otherOwner: true, unlabelled: true, live: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("containers existing after Reap() mismatch (-want +got):\n%s", diff)
	}

	cancel()
	if err := <-ran; !errors.Is(err, ErrCanceled) {
		t.Errorf("Run() error = %v, want %s", err, CodeCanceled)
	}
}

func TestReapListFails(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	f.failList = fmt.Errorf("list: %w", &net.OpError{Op: "dial", Net: "unix", Err: syscall.ENOENT})
	r := newTestRunner(t, f)
	n, err := r.Reap(context.Background())
	if n != 0 || !errors.Is(err, ErrDockerUnixSocket) {
		t.Errorf("Reap() = %d, %v; want 0, %s", n, err, CodeDockerUnixSocket)
	}
}

func TestReapRemoveFails(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f, WithOwner("svc"))
	dead := f.seed(map[string]string{LabelOwner: "svc", LabelInstance: "dead"}, true)
	f.mu.Lock()
	f.failRemove = errdefs.System(errors.New("device or resource busy"))
	f.mu.Unlock()
	n, err := r.Reap(context.Background())
	if n != 0 || !errors.Is(err, ErrContainerRemove) {
		t.Errorf("Reap() = %d, %v; want 0, %s", n, err, CodeContainerRemove)
	}
	f.mu.Lock()
	f.failRemove = nil
	f.mu.Unlock()
	if n, err := r.Reap(context.Background()); n != 1 || err != nil || f.exists(dead) {
		t.Errorf("second Reap() = %d, %v; want 1, nil and the container gone", n, err)
	}
}

// poolSize returns how many idle containers of image the pool holds.
func poolSize(r *Runner, image string) int {
	return r.pool.size(normalizeImage(image))
}

// warmIDs returns the IDs of the idle warm containers the fake holds for
// the instance: started and without a payload.
func warmIDs(f *fakeDocker, instance string) []string {
	return f.ids(func(c *fakeContainer) bool {
		return c.config.Labels[LabelInstance] == instance && c.config.Labels[LabelWarm] == "true" &&
			c.state.Running && c.payload == nil
	})
}

func TestWarmPool(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testWarmPool)
}

func testWarmPool(t *testing.T) {
	const size = 2
	f := newFakeDocker()
	r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": size}), WithMaxConcurrentRuns(4))
	synctest.Wait() // the pool has filled, and stopped
	if got := len(warmIDs(f, r.Instance())); got != size {
		t.Errorf("pool holds %d containers after filling, want %d", got, size)
	}

	used := map[string]bool{}
	for i := range 5 {
		waitFor(t, 5*time.Second, "the pool to refill", func() bool { return poolSize(r, "fake/img") == size })
		idle := warmIDs(f, r.Instance())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := r.Run(ctx, "fake/img", map[string]any{"mode": "echo", "i": i})
		cancel()
		if err != nil {
			t.Fatalf("Run() #%d error: %v", i, err)
		}
		if !res.Warm {
			t.Errorf("Run() #%d: Warm = false, want true", i)
		}
		if !slices.Contains(idle, res.Stdout) {
			t.Errorf("Run() #%d ran in %s, want one of the idle warm containers %v", i, res.Stdout, idle)
		}
		if used[res.Stdout] {
			t.Errorf("Run() #%d reused container %s", i, res.Stdout)
		}
		used[res.Stdout] = true
	}
	for id := range used {
		waitFor(t, 5*time.Second, "used warm container "+id+" to be removed", func() bool { return !f.exists(id) })
	}

	// An image without a pool runs cold.
	res, err := r.Run(context.Background(), "fake/other", map[string]any{"mode": "echo"})
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if res.Warm {
		t.Errorf("Run() of an image without a pool: Warm = true")
	}
	closeRunner(t, r)
	if left := f.ids(func(*fakeContainer) bool { return true }); len(left) > 0 {
		t.Errorf("containers left after Close: %v", left)
	}
}

// The refill of a warm container that a run took waits for the run to end,
// where it would share the CPU with the program, or for poolRefillDelay
// when the run is long; at once when the pool is left less than half full.
func TestWarmPoolRefillsAfterTheRun(t *testing.T) {
	tests := []struct {
		name     string
		pool     int
		held     int           // containers that longer runs took before
		ms       int           // how long the run takes
		refillAt time.Duration // when its refill's create comes, after Run is called
	}{
		{name: "short run: at its end", pool: 2, ms: 100, refillAt: 100 * time.Millisecond},
		{name: "long run: after the delay", pool: 2, ms: 2000, refillAt: poolRefillDelay},
		{name: "pool left empty: at once", pool: 1, ms: 100, refillAt: 0},
		// Two runs leave 3, then 2 of 4: half, so their refills wait.
		{name: "pool left below half: at once", pool: 4, held: 2, ms: 2000, refillAt: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeDocker()
				r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": tt.pool}))
				synctest.Wait() // the pool has filled
				for range tt.held {
					go r.Run(context.Background(), "fake/img", map[string]any{"mode": "slow", "ms": 5000})
					synctest.Wait()
				}
				creates := f.count("create")
				start := time.Now()
				done := make(chan error)
				go func() {
					res, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "slow", "ms": tt.ms})
					if err == nil && !res.Warm {
						err = errors.New("the run was cold")
					}
					done <- err
				}()
				for f.count("create") == creates {
					time.Sleep(time.Millisecond) // the bubble's clock
				}
				if got := time.Since(start); got < tt.refillAt || got > tt.refillAt+10*time.Millisecond {
					t.Errorf("the refill's create came %v after Run was called, want %v", got, tt.refillAt)
				}
				if err := <-done; err != nil {
					t.Fatalf("Run() error: %v", err)
				}
				closeRunner(t, r)
			})
		})
	}
}

// A warm run must give its place back: the pool and runs together never
// need more places than the limit.
func TestWarmPoolReturnsPlaces(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": 1}), WithMaxConcurrentRuns(2))
	for i := range 6 {
		waitFor(t, 5*time.Second, "the pool to refill", func() bool { return poolSize(r, "fake/img") == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := r.Run(ctx, "fake/img", map[string]any{"mode": "echo"})
		cancel()
		if err != nil {
			t.Fatalf("Run() #%d error: %v", i, err)
		}
		if !res.Warm {
			t.Errorf("Run() #%d: Warm = false, want true", i)
		}
	}
}

// A warm container already holds a place: a run that takes it does not
// wait for another.
func TestWarmRunNeedsNoFreePlace(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": 1}), WithMaxConcurrentRuns(2))
	waitFor(t, 5*time.Second, "the pool to fill", func() bool { return poolSize(r, "fake/img") == 1 })
	// The other place goes to a long run.
	go r.Run(context.Background(), "fake/other", map[string]any{"mode": "slow", "ms": 3000})
	waitRunning(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := r.Run(ctx, "fake/img", map[string]any{"mode": "echo"})
	if err != nil {
		t.Fatalf("Run() with an idle warm container and no free place: %v", err)
	}
	if !res.Warm {
		t.Errorf("Run(): Warm = false, want true")
	}
}

func TestWarmPoolExpires(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": 1}), WithWarmMaxAge(30*time.Millisecond))
	waitFor(t, 5*time.Second, "the pool to fill", func() bool { return poolSize(r, "fake/img") == 1 })
	first := warmIDs(f, r.Instance())
	if len(first) != 1 {
		t.Fatalf("warm containers = %v, want 1", first)
	}
	waitFor(t, 5*time.Second, "the first warm container to be retired", func() bool { return !f.exists(first[0]) })
	waitFor(t, 5*time.Second, "3 containers to be retired", func() bool { return f.count("remove") >= 3 })
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.removed {
		if c.payload != nil {
			t.Errorf("retired container %s got a payload, but no Run happened", c.id)
		}
		if c.config.Labels[LabelWarm] != "true" {
			t.Errorf("container %s is not a warm one, but no Run happened", c.id)
		}
	}
	if live := len(f.containers); live > DefaultMaxConcurrent {
		t.Errorf("%d containers exist, want at most %d, the concurrency limit", live, DefaultMaxConcurrent)
	}
}

// take must not hand out a container past its age, even before the filler
// notices.
func TestWarmPoolTakeSkipsExpired(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": 1}), WithWarmMaxAge(time.Hour))
	waitFor(t, 5*time.Second, "the pool to fill", func() bool { return poolSize(r, "fake/img") == 1 })
	old := warmIDs(f, r.Instance())[0]
	func() {
		r.pool.mu.Lock()
		defer r.pool.mu.Unlock()
		q := r.pool.idle[normalizeImage("fake/img")]
		if len(q) != 1 {
			t.Fatalf("pool holds %d containers, want 1", len(q))
		}
		q[0].ready = time.Now().Add(-2 * time.Hour)
	}()
	res, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"})
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if res.Stdout == old || res.Warm {
		t.Errorf("Run() = container %s, warm %v; want a cold run, not the expired %s", res.Stdout, res.Warm, old)
	}
	waitFor(t, 5*time.Second, "the expired container to be removed", func() bool { return !f.exists(old) })
}

func TestWarmPoolBacksOff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.failCreate = func(context.Context, *container.Config) error {
			return errdefs.NotFound(errors.New("No such image: fake/img:latest"))
		}
		r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": 2}))
		// Backoff from poolBackoffMin, doubling: attempts at 0, 1, 3 and 7
		// times it, and none in between.
		start := time.Now()
		var got []int
		for _, at := range []time.Duration{0, 2, 4, 6, 8} {
			time.Sleep(time.Until(start.Add(at * poolBackoffMin / 2)))
			synctest.Wait()
			got = append(got, f.count("create"))
		}
		if diff := cmp.Diff([]int{1, 2, 2, 3, 3}, got); diff != "" {
			t.Errorf("create calls at 0, 1, 2, 3 and 4 times the minimum backoff mismatch (-want +got):\n%s", diff)
		}
		// Once create works again, the pool fills.
		f.setFailCreate(nil)
		time.Sleep(poolBackoffMax)
		synctest.Wait()
		if got := poolSize(r, "fake/img"); got != 2 {
			t.Errorf("pool holds %d containers once create works, want 2", got)
		}
	})
}

// New does no I/O: the pool starts filling at the first call that talks to
// the daemon, and a Runner closed before that creates nothing.
func TestWarmPoolStartsAtFirstDaemonCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		call  func(*Runner) error
		fills bool
	}{
		{name: "Ping", call: func(r *Runner) error { return r.Ping(context.Background()) }, fills: true},
		{name: "Reap", call: func(r *Runner) error { _, err := r.Reap(context.Background()); return err }, fills: true},
		{name: "Run", call: func(r *Runner) error {
			_, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"})
			return err
		}, fills: true},
		{name: "Close first", call: func(r *Runner) error {
			if err := r.Close(context.Background()); err != nil {
				return err
			}
			return r.Ping(context.Background())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := newFakeDocker()
				r, err := New(WithDockerClient(f), WithWarmPool(map[string]int{"fake/img": 2}), WithMaxConcurrentRuns(4))
				if err != nil {
					t.Fatalf("New() error: %v", err)
				}
				defer func() {
					if err := r.Close(context.Background()); err != nil {
						t.Errorf("Close() error: %v", err)
					}
					f.checkClean(t, r.Instance())
				}()
				synctest.Wait()
				if diff := cmp.Diff([]string(nil), f.ops()); diff != "" {
					t.Fatalf("Docker calls after New, before any call on the Runner (-want +got):\n%s", diff)
				}
				if err := tt.call(r); err != nil {
					t.Fatalf("%s error: %v", tt.name, err)
				}
				if tt.fills {
					waitFor(t, 5*time.Second, "the pool to fill", func() bool { return poolSize(r, "fake/img") == 2 })
					return
				}
				synctest.Wait()
				if got := f.count("create"); got != 0 {
					t.Errorf("%d containers created by a Runner closed before its first call, want 0", got)
				}
			})
		})
	}
}

func TestWarmPoolCloseRemovesContainers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/a": 2, "fake/b": 1}), WithMaxConcurrentRuns(4))
		waitFor(t, 5*time.Second, "the pools to fill", func() bool { return len(warmIDs(f, r.Instance())) == 3 })
		closeRunner(t, r)
		if left := f.ids(func(*fakeContainer) bool { return true }); len(left) > 0 {
			t.Errorf("containers left after Close: %v", left)
		}
		creates := f.count("create")
		synctest.Wait()
		if got := f.count("create"); got != creates {
			t.Errorf("the pool created %d containers after Close", got-creates)
		}
	})
}

func TestKeepContainer(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r, err := New(WithDockerClient(f), WithKeepContainer(true))
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	res, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "answer-then-hang"})
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	closeRunner(t, r)
	if !f.exists(res.Stdout) {
		t.Fatalf("container %s removed, want it kept", res.Stdout)
	}
	f.mu.Lock()
	running := f.containers[res.Stdout].state.Running
	f.mu.Unlock()
	if running {
		t.Errorf("kept container %s still running, want it killed", res.Stdout)
	}
	if diff := cmp.Diff("true", f.containers[res.Stdout].config.Labels[LabelKept]); diff != "" {
		t.Errorf("kept container's %s label mismatch (-want +got):\n%s", LabelKept, diff)
	}
	// Reap, by another Runner of the same owner, leaves it alone.
	r2 := newTestRunner(t, f)
	if n, err := r2.Reap(context.Background()); n != 0 || err != nil || !f.exists(res.Stdout) {
		t.Errorf("Reap() = %d, %v; want 0, nil and the kept container in place", n, err)
	}
	if err := f.ContainerRemove(context.Background(), res.Stdout, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestPingAndVersion(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f)
	if err := r.Ping(context.Background()); err != nil {
		t.Errorf("Ping() error: %v", err)
	}
	v, err := r.Version(context.Background())
	if err != nil || v.Version != "28.5.2" {
		t.Errorf("Version() = %q, %v; want 28.5.2, nil", v.Version, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Ping(ctx); !errors.Is(err, ErrCanceled) {
		t.Errorf("Ping(canceled) error = %v, want %s", err, CodeCanceled)
	}
	if _, err := r.Version(ctx); !errors.Is(err, ErrCanceled) {
		t.Errorf("Version(canceled) error = %v, want %s", err, CodeCanceled)
	}
}

func TestEncodePayload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload any
		want    string // "" for an error
	}{
		{"map", map[string]any{"a": 1}, `{"a":1}`},
		{"struct", struct {
			A string `json:"a"`
		}{"x"}, `{"a":"x"}`},
		{"raw message verbatim", json.RawMessage(` {"b": 2,  "a":1}`), ` {"b": 2,  "a":1}`},
		{"bytes verbatim", []byte(`{"z":[1, 2]}`), `{"z":[1, 2]}`},
		{"raw array", json.RawMessage(`[1]`), ""},
		{"raw invalid", json.RawMessage(`{"a":}`), ""},
		{"raw two objects", json.RawMessage(`{}{}`), ""},
		{"raw empty", json.RawMessage(``), ""},
		{"string", "hello", ""},
		{"nil", nil, ""},
		{"too big", json.RawMessage(`{"a":"` + strings.Repeat("x", MaxPayloadSize) + `"}`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := encodePayload(tt.payload)
			if tt.want == "" {
				if !errors.Is(err, ErrPayloadSerialize) {
					t.Errorf("encodePayload() = %q, %v; want %s", got, err, CodePayloadSerialize)
				}
				return
			}
			if err != nil {
				t.Fatalf("encodePayload() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("encodePayload() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorMatching(t *testing.T) {
	t.Parallel()
	cause := errdefs.NotFound(errors.New("no such image"))
	err := fmt.Errorf("run: %w", errorf(CodeContainerCreate, cause, "create container from image %q", "x"))
	tests := []struct {
		name   string
		target error
		want   bool
	}{
		{"own sentinel", ErrContainerCreate, true},
		{"code only", &Error{Code: CodeContainerCreate}, true},
		{"other sentinel", ErrContainerStart, false},
		{"target with a message", &Error{Code: CodeContainerCreate, Message: "x"}, false},
		{"cause", cause, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := errors.Is(err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", err, tt.target, got, tt.want)
			}
		})
	}
	if diff := cmp.Diff(CodeContainerCreate, ErrorCode(err)); diff != "" {
		t.Errorf("ErrorCode() mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Code(""), ErrorCode(errors.New("plain"))); diff != "" {
		t.Errorf("ErrorCode(plain) mismatch (-want +got):\n%s", diff)
	}
	want := `docker.container.create: create container from image "x": no such image`
	if diff := cmp.Diff(want, errors.Unwrap(err).Error()); diff != "" {
		t.Errorf("Error() mismatch (-want +got):\n%s", diff)
	}
}

// An image labelled dockerrun.agent.privsep=1 runs as root with the agent's
// capabilities only, and the agent learns the user to run the code as;
// other images run as the configured user, as before.
func TestPrivsep(t *testing.T) {
	labelled := map[string]string{LabelPrivsep: "1"}
	type want struct {
		User            string
		RunAs, Nproc    string // the values of EnvRunAs and EnvNproc, "" if unset
		CapAdd, CapDrop []string
		PidsLimit       int64
		NoNewPrivileges bool
	}
	tests := []struct {
		name  string
		opts  []Option
		image ocispec.ImageConfig
		want  want
	}{
		{
			name:  "glot image: as configured",
			opts:  []Option{WithCapAdd("NET_RAW")},
			image: ocispec.ImageConfig{User: "glot"},
			want:  want{User: DefaultUser, CapAdd: []string{"CAP_NET_RAW"}, CapDrop: []string{"ALL"}, PidsLimit: DefaultPidsLimit, NoNewPrivileges: true},
		},
		{
			name:  "label not 1",
			image: ocispec.ImageConfig{Labels: map[string]string{LabelPrivsep: "true"}},
			want:  want{User: DefaultUser, CapDrop: []string{"ALL"}, PidsLimit: DefaultPidsLimit, NoNewPrivileges: true},
		},
		{
			name:  "labelled: root agent, code as the configured user",
			opts:  []Option{WithCapAdd("NET_RAW")},
			image: ocispec.ImageConfig{User: "glot", Labels: labelled},
			want: want{User: "0:0", RunAs: DefaultUser,
				CapAdd: []string{"CAP_KILL", "CAP_SETGID", "CAP_SETUID"}, CapDrop: []string{"ALL"}, PidsLimit: DefaultPidsLimit, NoNewPrivileges: true},
		},
		{
			name:  "labelled, no configured user: the image's",
			opts:  []Option{WithUser("")},
			image: ocispec.ImageConfig{User: "glot", Labels: labelled},
			want: want{User: "0:0", RunAs: "glot",
				CapAdd: []string{"CAP_KILL", "CAP_SETGID", "CAP_SETUID"}, CapDrop: []string{"ALL"}, PidsLimit: DefaultPidsLimit, NoNewPrivileges: true},
		},
		{
			name:  "labelled, code as root: nothing to separate",
			opts:  []Option{WithUser("0:0")},
			image: ocispec.ImageConfig{User: "glot", Labels: labelled},
			want:  want{User: "0:0", CapDrop: []string{"ALL"}, PidsLimit: DefaultPidsLimit, NoNewPrivileges: true},
		},
		{
			name:  "labelled, image's user is root",
			opts:  []Option{WithUser("")},
			image: ocispec.ImageConfig{Labels: labelled},
			want:  want{User: "", CapDrop: []string{"ALL"}, PidsLimit: DefaultPidsLimit, NoNewPrivileges: true},
		},
		{
			name:  "labelled under gVisor: RLIMIT_NPROC inside, carried by the agent, the cgroup as a backstop",
			opts:  []Option{WithRuntime("runsc"), WithPidsLimit(100)},
			image: ocispec.ImageConfig{Labels: labelled},
			want: want{User: "0:0", RunAs: DefaultUser, Nproc: "25",
				CapAdd: []string{"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SYS_RESOURCE"}, CapDrop: []string{"ALL"}, PidsLimit: 3200, NoNewPrivileges: true},
		},
		{
			name:  "labelled under gVisor without a pids limit: no RLIMIT_NPROC, no SYS_RESOURCE",
			opts:  []Option{WithRuntime("runsc"), WithPidsLimit(0)},
			image: ocispec.ImageConfig{Labels: labelled},
			want: want{User: "0:0", RunAs: DefaultUser,
				CapAdd: []string{"CAP_KILL", "CAP_SETGID", "CAP_SETUID"}, CapDrop: []string{"ALL"}, NoNewPrivileges: true},
		},
		{
			name:  "glot image without no-new-privileges: as configured",
			opts:  []Option{WithNoNewPrivileges(false)},
			image: ocispec.ImageConfig{User: "glot"},
			want:  want{User: DefaultUser, CapDrop: []string{"ALL"}, PidsLimit: DefaultPidsLimit},
		},
		{
			name:  "labelled without no-new-privileges: forced, or the code regains root through setuid binaries",
			opts:  []Option{WithNoNewPrivileges(false)},
			image: ocispec.ImageConfig{User: "glot", Labels: labelled},
			want: want{User: "0:0", RunAs: DefaultUser,
				CapAdd: []string{"CAP_KILL", "CAP_SETGID", "CAP_SETUID"}, CapDrop: []string{"ALL"}, PidsLimit: DefaultPidsLimit, NoNewPrivileges: true},
		},
		{
			name:  "glot image under gVisor: as configured",
			opts:  []Option{WithRuntime("runsc")},
			image: ocispec.ImageConfig{},
			want:  want{User: DefaultUser, CapDrop: []string{"ALL"}, PidsLimit: DefaultPidsLimit, NoNewPrivileges: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDocker()
			f.images["fake/img"] = tt.image
			r := newTestRunner(t, f, tt.opts...)
			if _, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"}); err != nil {
				t.Fatalf("Run() error: %v", err)
			}
			cfg, host := f.config("c01")
			got := want{User: cfg.User, CapAdd: host.CapAdd, CapDrop: host.CapDrop, NoNewPrivileges: slices.Contains(host.SecurityOpt, "no-new-privileges")}
			for _, kv := range cfg.Env {
				if v, ok := strings.CutPrefix(kv, EnvRunAs+"="); ok {
					got.RunAs = v
				}
				if v, ok := strings.CutPrefix(kv, EnvNproc+"="); ok {
					got.Nproc = v
				}
			}
			if host.PidsLimit != nil {
				got.PidsLimit = *host.PidsLimit
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("container configuration mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// The image is inspected before every create, so that an image rebuilt
// under the same name is run the way its label says; an inspect that fails
// fails the run before anything is created.
func TestPrivsepInspectsEveryCreate(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	r := newTestRunner(t, f)
	payload := map[string]any{"mode": "echo"}
	if _, err := r.Run(context.Background(), "fake/img", payload); err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	f.mu.Lock()
	f.images["fake/img"] = ocispec.ImageConfig{Labels: map[string]string{LabelPrivsep: "1"}}
	f.mu.Unlock()
	if _, err := r.Run(context.Background(), "fake/img", payload); err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	first, _ := f.config("c01")
	second, _ := f.config("c02")
	if first.User != DefaultUser || second.User != "0:0" {
		t.Errorf("users %q then %q: want %q, then %q once the image has the label", first.User, second.User, DefaultUser, "0:0")
	}

	f.mu.Lock()
	f.failInspect = errors.New("inspect failed")
	f.mu.Unlock()
	_, err := r.Run(context.Background(), "fake/img", payload)
	if ErrorCode(err) != CodeContainerCreate || !strings.Contains(err.Error(), `from image "fake/img"`) {
		t.Errorf("Run() error = %v: want %s naming the image", err, CodeContainerCreate)
	}
	if n := f.count("create"); n != 2 {
		t.Errorf("%d creates: want 2, none after the failed inspect", n)
	}
}

// ContainerConfig gives what a cold Run passes to the daemon's create, as
// copies: changing them changes no later run.
func TestContainerConfig(t *testing.T) {
	t.Parallel()
	f := newFakeDocker()
	f.images["fake/img"] = ocispec.ImageConfig{Labels: map[string]string{LabelPrivsep: "1"}}
	r := newTestRunner(t, f, WithRuntime("runsc"))
	cfg, host, err := r.ContainerConfig(context.Background(), "fake/img")
	if err != nil {
		t.Fatalf("ContainerConfig() error: %v", err)
	}
	cfg.Labels["changed"] = "yes"
	host.SecurityOpt[0] = "changed"
	*host.PidsLimit = 1
	cfg2, host2, err := r.ContainerConfig(context.Background(), "fake/img")
	if err != nil {
		t.Fatalf("ContainerConfig() error: %v", err)
	}
	if _, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"}); err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	created, createdHost := f.config("c01")
	if created.Labels["changed"] != "" || slices.Contains(createdHost.SecurityOpt, "changed") || *createdHost.PidsLimit == 1 {
		t.Errorf("a change to ContainerConfig's answer reached a run's container: labels %v, security options %v, pids limit %d",
			created.Labels, createdHost.SecurityOpt, *createdHost.PidsLimit)
	}
	if diff := cmp.Diff(&created, cfg2); diff != "" {
		t.Errorf("ContainerConfig() config mismatch with the created one (-created +ContainerConfig):\n%s", diff)
	}
	// The daemon (and the fake) write capabilities as CAP_X, sorted.
	caps := make([]string, len(host2.CapAdd))
	for i, c := range host2.CapAdd {
		caps[i] = "CAP_" + c
	}
	slices.Sort(caps)
	host2.CapAdd = caps
	if diff := cmp.Diff(&createdHost, host2); diff != "" {
		t.Errorf("ContainerConfig() host config mismatch with the created one (-created +ContainerConfig):\n%s", diff)
	}
}
