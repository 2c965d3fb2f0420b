package dockerrun

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeDocker is an in-memory Docker daemon implementing DockerAPI. A
// container's attached stream is a net.Pipe; when the container starts, a
// goroutine plays its program on the far end, reading the payload and writing
// multiplexed frames. The fake records every call, tracks the containers that
// exist, and fails calls on demand. It also records protocol violations
// (start before attach, a payload to a container that already had one) for
// checkClean to report.
type fakeDocker struct {
	mu         sync.Mutex
	seq        int
	containers map[string]*fakeContainer // those that exist
	all        map[string]*fakeContainer // every one ever created
	calls      []fakeCall
	maxLive    int // most containers that existed at once
	removed    []*fakeContainer
	violations []string

	// Injected failures. failCreate is called without the lock held, so it
	// may block on ctx.
	failCreate func(ctx context.Context, cfg *container.Config) error
	failAttach error
	failStart  error
	failList   error
	failRemove error // set with f.mu held
	// programs overrides the container program for an image.
	programs map[string]fakeProgram
	// images are the images' configurations, by name, for ImageInspect;
	// an image not there exists, with no label, unless failInspect says.
	images      map[string]ocispec.ImageConfig
	failInspect error
	inspects    int // ImageInspect calls, kept out of calls

	running chan string    // IDs of containers that have read their payload
	progs   sync.WaitGroup // container programs
}

var _ DockerAPI = (*fakeDocker)(nil)

type fakeCall struct {
	Op, ID string
}

type fakeContainer struct {
	id       string
	config   container.Config
	host     container.HostConfig
	state    container.State
	attached bool
	started  bool
	conn     net.Conn      // the container's end of the attached stream
	killed   chan struct{} // closed when the container is killed
	payload  json.RawMessage
	// oomEvent: the daemon published an "oom" event for the container,
	// with or without State.OOMKilled.
	oomEvent bool
}

// fakeProgram plays a container's process; it returns its exit code and
// whether the kernel killed it for memory.
type fakeProgram func(p *fakeProc) (code int, oom bool)

func newFakeDocker() *fakeDocker {
	return &fakeDocker{
		containers: make(map[string]*fakeContainer),
		all:        make(map[string]*fakeContainer),
		programs:   make(map[string]fakeProgram),
		images:     make(map[string]ocispec.ImageConfig),
		running:    make(chan string, 1000),
	}
}

// stamp returns the time as the daemon writes StartedAt and FinishedAt.
func stamp() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func notFound(id string) error {
	return errdefs.NotFound(fmt.Errorf("No such container: %s", id))
}

// record appends a call; f.mu must be held.
func (f *fakeDocker) record(op, id string) {
	f.calls = append(f.calls, fakeCall{Op: op, ID: id})
}

// normalizeCaps edits capabilities the way the real client does, so that a
// Runner that shares its configuration between calls races.
func normalizeCaps(caps []string) []string {
	var out []string
	for _, c := range caps {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

func (f *fakeDocker) ContainerCreate(ctx context.Context, cfg *container.Config, host *container.HostConfig, _ *network.NetworkingConfig, _ *ocispec.Platform, _ string) (container.CreateResponse, error) {
	// Like the real client, edit what the caller passed.
	host.CapAdd, host.CapDrop = normalizeCaps(host.CapAdd), normalizeCaps(host.CapDrop)
	f.mu.Lock()
	fail := f.failCreate
	f.mu.Unlock()
	err := ctx.Err()
	if err == nil && fail != nil {
		err = fail(ctx, cfg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.record("create", "")
		return container.CreateResponse{}, err
	}
	f.seq++
	id := fmt.Sprintf("c%02d", f.seq)
	f.record("create", id)
	f.containers[id] = &fakeContainer{
		id:     id,
		config: *cfg,
		host:   *host,
		state:  container.State{Status: "created"},
		killed: make(chan struct{}),
	}
	f.all[id] = f.containers[id]
	f.maxLive = max(f.maxLive, len(f.containers))
	return container.CreateResponse{ID: id}, nil
}

func (f *fakeDocker) ContainerAttach(ctx context.Context, id string, opts container.AttachOptions) (types.HijackedResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.find(ctx, "attach", id, f.failAttach)
	if err != nil {
		return types.HijackedResponse{}, err
	}
	if c.started {
		f.violations = append(f.violations, id+": attach after start: output is lost")
	}
	if !opts.Stream || !opts.Stdin || !opts.Stdout || !opts.Stderr {
		f.violations = append(f.violations, fmt.Sprintf("%s: attach options %+v: want stream, stdin, stdout and stderr", id, opts))
	}
	runnerEnd, containerEnd := net.Pipe()
	c.conn, c.attached = containerEnd, true
	return types.NewHijackedResponse(runnerEnd, types.MediaTypeMultiplexedStream), nil
}

func (f *fakeDocker) ContainerStart(ctx context.Context, id string, _ container.StartOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.find(ctx, "start", id, f.failStart)
	if err != nil {
		return err
	}
	if c.started {
		return errdefs.Conflict(fmt.Errorf("container %s already started", id))
	}
	c.started = true
	if !c.attached {
		f.violations = append(f.violations, id+": start before attach: output is lost")
		c.state = container.State{Status: "exited"}
		return nil
	}
	c.state = container.State{Status: "running", Running: true, StartedAt: stamp()}
	prog := f.programs[c.config.Image]
	if prog == nil {
		prog = modeProgram
	}
	f.progs.Add(1)
	go f.play(c, prog)
	return nil
}

// find records op on id and returns its container, or the daemon's error:
// no such container, a cancelled call, or fail, an injected failure. f.mu
// is held.
func (f *fakeDocker) find(ctx context.Context, op, id string, fail error) (*fakeContainer, error) {
	f.record(op, id)
	c, ok := f.containers[id]
	switch {
	case !ok:
		return nil, notFound(id)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case fail != nil:
		return nil, fail
	}
	return c, nil
}

// play runs the container's program, then exits the container.
func (f *fakeDocker) play(c *fakeContainer, prog fakeProgram) {
	defer f.progs.Done()
	code, oom := prog(&fakeProc{f: f, c: c, dec: json.NewDecoder(c.conn)})
	f.mu.Lock()
	if c.state.Running {
		c.state = container.State{Status: "exited", ExitCode: code, OOMKilled: oom, StartedAt: c.state.StartedAt, FinishedAt: stamp()}
		c.oomEvent = c.oomEvent || oom
	}
	f.mu.Unlock()
	c.conn.Close() // the stream ends when the process does
}

// stop kills c's process; f.mu must be held.
func (f *fakeDocker) stop(c *fakeContainer) {
	c.state = container.State{Status: "exited", ExitCode: 137, StartedAt: c.state.StartedAt, FinishedAt: stamp()}
	close(c.killed)
	c.conn.Close()
}

func (f *fakeDocker) ContainerKill(ctx context.Context, id, signal string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.find(ctx, "kill", id, nil)
	if err != nil {
		return err
	}
	switch {
	case signal != "KILL":
		f.violations = append(f.violations, fmt.Sprintf("%s: kill with %s: want KILL", id, signal))
	case !c.state.Running:
		return errdefs.Conflict(fmt.Errorf("container %s is not running", id))
	}
	f.stop(c)
	return nil
}

func (f *fakeDocker) ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.find(ctx, "remove", id, f.failRemove)
	if err != nil {
		return err
	}
	switch {
	case c.state.Running && !opts.Force:
		return errdefs.Conflict(fmt.Errorf("container %s is running: stop it or use force", id))
	case c.state.Running:
		f.stop(c)
	}
	if c.conn != nil {
		c.conn.Close()
	}
	delete(f.containers, id)
	f.removed = append(f.removed, c)
	return nil
}

func (f *fakeDocker) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("inspect", id)
	c, ok := f.containers[id]
	if !ok {
		return container.InspectResponse{}, notFound(id)
	}
	state := c.state
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{ID: id, State: &state}}, nil
}

func (f *fakeDocker) ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("list", "")
	if f.failList != nil {
		return nil, f.failList
	}
	var list []container.Summary
	for _, c := range f.containers {
		if (opts.All || c.state.Running) && opts.Filters.MatchKVList("label", c.config.Labels) {
			list = append(list, container.Summary{ID: c.id, Labels: c.config.Labels, State: c.state.Status})
		}
	}
	slices.SortFunc(list, func(a, b container.Summary) int { return strings.Compare(a.ID, b.ID) })
	return list, nil
}

func (f *fakeDocker) ImageInspect(ctx context.Context, name string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspects++
	if f.failInspect != nil {
		return image.InspectResponse{}, f.failInspect
	}
	cfg := &dockerspec.DockerOCIImageConfig{ImageConfig: f.images[name]}
	return image.InspectResponse{ID: "sha256:" + name, Config: cfg}, ctx.Err()
}

// Events replays the "oom" events of the container that opts filter on, as
// the daemon replays past events, then waits for ctx as for live ones.
func (f *fakeDocker) Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("events", "")
	msgs, errs := make(chan events.Message, 1), make(chan error, 1)
	id := opts.Filters.Get("container")
	if len(id) == 1 && opts.Filters.ExactMatch("event", string(events.ActionOOM)) {
		if c, ok := f.all[id[0]]; ok && c.oomEvent {
			msgs <- events.Message{Type: events.ContainerEventType, Action: events.ActionOOM, Actor: events.Actor{ID: c.id}}
		}
	}
	context.AfterFunc(ctx, func() { errs <- ctx.Err() })
	return msgs, errs
}

func (f *fakeDocker) Ping(ctx context.Context) (types.Ping, error) {
	return types.Ping{APIVersion: "1.51"}, ctx.Err()
}

func (f *fakeDocker) ServerVersion(ctx context.Context) (types.Version, error) {
	return types.Version{Version: "28.5.2"}, ctx.Err()
}

// seed adds a container that some other process created.
func (f *fakeDocker) seed(labels map[string]string, running bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := fmt.Sprintf("c%02d", f.seq)
	c := &fakeContainer{id: id, config: container.Config{Image: "fake/img", Labels: labels}, killed: make(chan struct{})}
	c.state = container.State{Status: "exited"}
	if running {
		c.state = container.State{Status: "running", Running: true}
		c.conn, _ = net.Pipe()
	}
	f.containers[id] = c
	return id
}

func (f *fakeDocker) setFailCreate(fail func(context.Context, *container.Config) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCreate = fail
}

// ops returns the operations called, in order.
func (f *fakeDocker) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ops []string
	for _, c := range f.calls {
		ops = append(ops, c.Op)
	}
	return ops
}

func (f *fakeDocker) callList() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeDocker) count(op string) int {
	return len(slices.DeleteFunc(f.ops(), func(o string) bool { return o != op }))
}

// ids returns the IDs of the existing containers that match.
func (f *fakeDocker) ids(match func(*fakeContainer) bool) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, c := range f.containers {
		if match(c) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (f *fakeDocker) exists(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.containers[id]
	return ok
}

func (f *fakeDocker) config(id string) (container.Config, container.HostConfig) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.all[id]
	return c.config, c.host
}

func (f *fakeDocker) peak() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxLive
}

// checkClean reports containers of the instance left behind, programs
// still running and protocol violations.
func (f *fakeDocker) checkClean(t *testing.T, instance string) {
	t.Helper()
	if left := f.ids(func(c *fakeContainer) bool { return c.config.Labels[LabelInstance] == instance }); len(left) > 0 {
		t.Errorf("containers left after Close: %v", left)
	}
	done := make(chan struct{})
	go func() {
		f.progs.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("container programs still running 5s after Close")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.violations {
		t.Errorf("Docker API misuse: %s", v)
	}
}

// fakeProc is what a container program sees: its stream and its container.
type fakeProc struct {
	f   *fakeDocker
	c   *fakeContainer
	dec *json.Decoder
}

// readPayload reads the payload, one JSON object, from stdin.
func (p *fakeProc) readPayload() (json.RawMessage, error) {
	var raw json.RawMessage
	if err := p.dec.Decode(&raw); err != nil {
		return nil, err
	}
	p.f.mu.Lock()
	if p.c.payload != nil {
		p.f.violations = append(p.f.violations, p.c.id+": a second payload: containers must be used once")
	}
	p.c.payload = raw
	p.f.mu.Unlock()
	select {
	case p.f.running <- p.c.id:
	default:
	}
	return raw, nil
}

func (p *fakeProc) write(stream byte, s string) error {
	_, err := p.c.conn.Write(frame(stream, s))
	return err
}

// answer writes an answer whose stdout is the container's ID and which
// carries the payload, so that tests see which container ran what.
func (p *fakeProc) answer(payload json.RawMessage, stdout string) error {
	if stdout == "" {
		stdout = p.c.id
	}
	b, err := json.Marshal(map[string]any{"stdout": stdout, "stderr": "", "error": "", "payload": payload})
	if err != nil {
		return err
	}
	return p.write(streamStdout, string(b)+"\n")
}

// sleep waits for d or until the container is killed; it reports whether
// the container is still alive.
func (p *fakeProc) sleep(d time.Duration) bool {
	select {
	case <-p.c.killed:
		return false
	case <-time.After(d):
		return true
	}
}

// modeProgram is the default container program: it does what the
// payload's "mode" says, like the probe image of the integration tests.
func modeProgram(p *fakeProc) (int, bool) {
	raw, err := p.readPayload()
	if err != nil {
		return 1, false // stdin closed without a payload: a warm container retired
	}
	var in struct {
		Mode  string `json:"mode"`
		MS    int    `json:"ms"`
		Bytes int    `json:"bytes"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return 2, false
	}
	switch in.Mode {
	case "", "echo":
		p.answer(raw, "")
	case "slow":
		if p.sleep(time.Duration(in.MS) * time.Millisecond) {
			p.answer(raw, "")
		}
	case "answer-then-hang":
		p.answer(raw, "")
		<-p.c.killed
	case "split":
		// The answer in 3-byte frames.
		b, _ := json.Marshal(map[string]string{"stdout": p.c.id, "stderr": "", "error": ""})
		for len(b) > 0 {
			n := min(3, len(b))
			if p.write(streamStdout, string(b[:n])) != nil {
				return 1, false
			}
			b = b[n:]
		}
	case "sleep":
		<-p.c.killed
	case "trickle":
		for p.sleep(5*time.Millisecond) && p.write(streamStdout, "tick\n") == nil {
		}
	case "flood":
		chunk := strings.Repeat("x", 1024)
		for p.write(streamStdout, chunk) == nil {
		}
	case "big":
		p.answer(raw, strings.Repeat("y", in.Bytes))
	case "stderr":
		p.write(streamStderr, "agent crashed: boom\n")
		return 1, false
	case "stderr-and-answer":
		p.write(streamStderr, "warning from agent\n")
		p.answer(raw, "")
	case "invalid":
		p.write(streamStdout, "this is not json\n")
	case "array":
		p.write(streamStdout, "[1,2]\n")
	case "missing-field":
		p.write(streamStdout, `{"stdout":"","stderr":""}`)
	case "silent":
		return 3, false
	case "oom":
		return 137, true
	case "oom-event-only": // the exit event reached the daemon first
		p.f.mu.Lock()
		p.c.oomEvent = true
		p.f.mu.Unlock()
		return 137, false
	case "sigkill-self": // exit code 137, no OOM: the code killed the agent
		return 137, false
	case "daemon-error":
		p.write(streamSystem, "container runtime error: boom")
		return 1, false
	case "bad-frame":
		p.c.conn.Write([]byte{7, 0, 0, 0, 0, 0, 0, 1, 'x'})
	default:
		p.write(streamStderr, "unknown mode "+in.Mode)
		return 1, false
	}
	return 0, false
}
