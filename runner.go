package dockerrun

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/dockerrun/dockerrun/internal/protocol"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"golang.org/x/sync/semaphore"
)

// DockerAPI is the part of the Docker Engine API client that a [Runner]
// uses. *client.Client from github.com/docker/docker/client implements it.
type DockerAPI interface {
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error)
	ContainerAttach(ctx context.Context, id string, options container.AttachOptions) (types.HijackedResponse, error)
	ContainerStart(ctx context.Context, id string, options container.StartOptions) error
	ContainerKill(ctx context.Context, id, signal string) error
	ContainerRemove(ctx context.Context, id string, options container.RemoveOptions) error
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	Ping(ctx context.Context) (types.Ping, error)
	ServerVersion(ctx context.Context) (types.Version, error)
}

// Runner runs payloads in transient containers. It is safe for concurrent
// use. Create it with [New]; call [Runner.Close] when done, which removes
// every container it still has.
type Runner struct {
	cfg        *config
	docker     DockerAPI
	daemonHost string         // where the daemon listens, when the client says (*client.Client does)
	ownClient  *client.Client // closed by Close; nil when the caller gave one
	log        *slog.Logger
	sem        *semaphore.Weighted
	waiting    atomic.Int64 // runs waiting for a place
	active     atomic.Int64 // calls of Run in progress, waiting ones included

	host container.HostConfig // the same for every container

	live    sync.Map // container ID -> struct{}: containers in use by a run or the pool
	orphans sync.Map // container ID -> struct{}: removals that failed, for Reap
	pool    *pool
	removes sync.WaitGroup // background removals in flight
	removeQ chan struct{}  // bounds removals in parallel

	closed    atomic.Bool
	closeMu   sync.RWMutex   // orders a run's start before Close's wait
	runs      sync.WaitGroup // runs in flight
	closeOnce sync.Once
	poolOnce  sync.Once // starts the pool
}

// How many containers are removed at once in the background.
const parallelRemovals = 4

// New returns a Runner configured by opts. It validates every option and
// reports all the invalid ones in one [*Error] with code
// [CodeInvalidConfig]. New does no I/O: use [Runner.Ping] to check that the
// daemon answers. A warm pool ([WithWarmPool]) starts filling at the first
// call that talks to the daemon: Ping, Run or Reap.
func New(opts ...Option) (*Runner, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.instance == "" {
		var b [6]byte
		rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
		cfg.instance = hex.EncodeToString(b[:])
	}
	r := &Runner{
		cfg:     cfg,
		docker:  cfg.docker,
		log:     cfg.logger.With("instance", cfg.instance),
		sem:     semaphore.NewWeighted(cfg.maxConcurrent),
		host:    hostConfig(cfg),
		removeQ: make(chan struct{}, parallelRemovals),
	}
	if r.docker == nil {
		copts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
		if cfg.dockerHost != "" {
			copts = append(copts, client.WithHost(cfg.dockerHost))
		}
		c, err := client.NewClientWithOpts(copts...)
		if err != nil {
			return nil, errorf(CodeInvalidConfig, err, "docker client: check DOCKER_HOST and the TLS variables")
		}
		r.docker, r.ownClient = c, c
	}
	if h, ok := r.docker.(interface{ DaemonHost() string }); ok {
		r.daemonHost = h.DaemonHost() // before a wrapper hides it
	}
	if cfg.observer != nil {
		r.docker = observedDocker{r.docker, cfg.observer}
	}
	if len(cfg.warmPool) > 0 {
		r.pool = newPool(r, cfg.warmPool)
	}
	if cfg.seccomp == SeccompUnconfined {
		r.log.Warn("seccomp is off: containers run unconfined, and untrusted code can make every system call the kernel has")
	}
	return r, nil
}

// Instance returns the identifier of this Runner, the value of the
// [LabelInstance] label on its containers.
func (r *Runner) Instance() string { return r.cfg.instance }

// MaxExecutionTime returns the configured execution time limit.
func (r *Runner) MaxExecutionTime() time.Duration { return r.cfg.maxExecutionTime }

// MaxRunDuration returns how long a server should allow one [Runner.Run]
// (or [Runner.Close]) to take: the queue wait, the execution time limit and
// its [AnswerGrace], and two daemon timeouts for the calls around the run.
// A server's write timeout and its graceful shutdown are set from it.
func (r *Runner) MaxRunDuration() time.Duration {
	return r.cfg.queueWait + r.cfg.maxExecutionTime + AnswerGrace + 2*r.cfg.dockerTimeout
}

// startPool starts filling the warm pool, once, unless the Runner is
// closed: after Close, nothing may start.
func (r *Runner) startPool() {
	if r.pool == nil {
		return
	}
	r.poolOnce.Do(func() {
		r.closeMu.RLock()
		defer r.closeMu.RUnlock()
		if !r.closed.Load() {
			r.pool.start()
		}
	})
}

// Ping checks that the Docker daemon answers. The first call also starts
// filling the warm pool, if there is one: call it after [New] to have the
// pool warm before the first run.
func (r *Runner) Ping(ctx context.Context) error {
	r.startPool()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.dockerTimeout)
	defer cancel()
	if _, err := r.docker.Ping(ctx); err != nil {
		return r.dockerError(ctx, CodeDockerUnixSocket, err, "the Docker daemon does not answer: check that it runs and that DOCKER_HOST or the socket path is right")
	}
	return nil
}

// Version returns the daemon's answer to GET /version.
func (r *Runner) Version(ctx context.Context) (types.Version, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.dockerTimeout)
	defer cancel()
	v, err := r.docker.ServerVersion(ctx)
	if err != nil {
		return v, r.dockerError(ctx, CodeDockerUnixSocket, err, "the Docker daemon did not answer GET /version")
	}
	return v, nil
}

// Run runs payload in a fresh container of image and returns the
// container's answer. payload is marshalled with encoding/json;
// json.RawMessage and []byte are sent as they are, after checking that they
// hold one JSON object.
//
// Run waits for a place when [WithMaxConcurrentRuns] containers already
// exist, as long as ctx allows. The execution time limit starts when the
// payload is written. Cancelling ctx kills the container. The container is
// removed whatever happens, after Run returns (the removal still counts
// against the concurrency limit). A warm container found dead before it
// could have read the payload is replaced by a cold one, once; a payload
// that a container may have read is never run again. Every error is an
// [*Error]; a daemon that goes away during the run is a docker.* error
// ([CodeDockerUnixSocket]), not the agent's ([CodeStdoutDecode]).
//
// Options lower the limits of this run ([WithLimits]).
func (r *Runner) Run(ctx context.Context, image string, payload any, opts ...RunOption) (res *Result, err error) {
	start := time.Now()
	info := RunInfo{Image: normalizeImage(image)}
	defer func() { r.observeRun(&info, res, err) }()
	if !r.begin() {
		return nil, errorf(CodeClosed, nil, "the runner is closed")
	}
	defer r.runs.Done()
	r.active.Add(1)
	defer r.active.Add(-1)
	r.startPool()
	if err := checkImageName(image); err != nil {
		return nil, &Error{Code: CodeImageNotAllowed, Message: err.Error()}
	}
	if !r.cfg.imageAllowed(image) {
		return nil, errorf(CodeImageNotAllowed, nil, "image %q is not on the allow-list", image)
	}
	body, err := encodePayload(payload)
	if err != nil {
		return nil, err
	}
	lim, err := r.limitsFor(opts)
	if err != nil {
		return nil, err
	}
	if body, err = protocol.WithLimits(body, lim.lowered); err != nil {
		return nil, errorf(CodePayloadSerialize, err, "add limits to the payload")
	}

	// A warm container holds a place already; a cold run waits for one.
	// Warm containers have the configured memory limit: a run with a lower
	// one runs cold.
	// Its replacement may wait for the run's end (refill): not on the CPU
	// the program needs (see pool.take).
	if c, refill := r.takeWarm(image, lim); c != nil {
		placed := time.Now()
		info.Container, info.Warm = true, true
		res, err := r.runIn(ctx, start, c, body, lim)
		info.Duration = time.Since(placed)
		if !errors.Is(err, errUnread) {
			r.pool.proven(c) // it lived to be used
			refill()
			return res, err
		}
		// Never a second try for a payload that a container may have
		// read: see errUnread. The pool learns of the death first, so
		// that an image whose containers die at once backs off instead
		// of being refilled.
		r.pool.lost(c)
		refill()
		r.log.Info("warm container died before it could read the payload; running on a cold one", "image", image, "container", short(c.id))
		info = RunInfo{Image: info.Image, WarmMiss: true}
	} else {
		// A run with a lower memory limit runs cold by design: no miss.
		info.WarmMiss = r.pool.has(image) && lim.memory == r.cfg.memory
	}
	info.Queued = true
	waited := time.Now()
	err = r.acquire(ctx)
	info.QueueWait = time.Since(waited)
	if err != nil {
		return nil, err
	}
	placed := time.Now()
	c, err := r.prepare(ctx, image, false, lim.memory)
	if err != nil {
		r.sem.Release(1)
		return nil, err
	}
	info.Container = true
	res, err = r.runIn(ctx, start, c, body, lim)
	info.Duration = time.Since(placed)
	return res, err
}

// takeWarm returns a warm container of image for a run with lim, or nil,
// and what to call when the run ends (see [pool.take]).
func (r *Runner) takeWarm(image string, lim runLimits) (*box, func()) {
	if lim.memory != r.cfg.memory {
		return nil, func() {}
	}
	return r.pool.take(image)
}

// runIn runs body in c, which holds a place, within lim, then disposes of
// c, which frees the place. start is when Run was called.
func (r *Runner) runIn(ctx context.Context, start time.Time, c *box, body []byte, lim runLimits) (*Result, error) {
	taken := time.Now()
	res, err := r.exec(ctx, c, body, lim)
	r.dispose(c)
	switch {
	case errors.Is(err, errUnread):
	case ErrorCode(err) == CodeDockerUnixSocket || ErrorCode(err) == CodeStreamRead:
		// The daemon's failure, not the image's or the code's.
		r.log.Warn("run failed: Docker daemon error", "image", c.image, "container", short(c.id), "warm", c.warm, "code", ErrorCode(err), "error", err)
	case err != nil:
		r.log.Info("run failed", "image", c.image, "container", short(c.id), "warm", c.warm, "code", ErrorCode(err), "error", err)
	default:
		res.Timing.Start, res.Timing.Taken = start, taken
		r.log.Debug("run done", "image", c.image, "container", short(c.id), "warm", c.warm, "duration", res.Duration)
	}
	return res, err
}

// begin counts a run in flight, so that Close waits for it, unless the
// runner is closed.
func (r *Runner) begin() bool {
	r.closeMu.RLock()
	defer r.closeMu.RUnlock()
	if r.closed.Load() {
		return false
	}
	r.runs.Add(1)
	return true
}

// errQueueWait is the cause of a wait for a place that took too long.
var errQueueWait = errors.New("queue wait limit reached")

// acquire takes a place, waiting in the bounded queue if there is none.
func (r *Runner) acquire(ctx context.Context) error {
	if r.sem.TryAcquire(1) {
		return nil
	}
	if r.waiting.Add(1) > r.cfg.maxQueue {
		r.waiting.Add(-1)
		return errorf(CodeBusy, nil, "all %d places are taken and %d runs are already waiting: try again later", r.cfg.maxConcurrent, r.cfg.maxQueue)
	}
	defer r.waiting.Add(-1)
	wctx, cancel := context.WithTimeoutCause(ctx, r.cfg.queueWait, errQueueWait)
	defer cancel()
	if err := r.sem.Acquire(wctx, 1); err != nil {
		if errors.Is(context.Cause(wctx), errQueueWait) {
			return errorf(CodeBusy, nil, "no place became free within %v: try again later", r.cfg.queueWait)
		}
		return errorf(CodeCanceled, context.Cause(ctx), "canceled while waiting for a free place")
	}
	return nil
}

// encodePayload returns payload as one JSON object.
func encodePayload(payload any) ([]byte, error) {
	var body []byte
	switch p := payload.(type) {
	case json.RawMessage:
		body = p
	case []byte:
		body = p
	default:
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return nil, errorf(CodePayloadSerialize, err, "payload cannot be encoded as JSON")
		}
	}
	if len(body) > MaxPayloadSize {
		return nil, errorf(CodePayloadSerialize, nil, "payload is %d bytes: at most %d are accepted", len(body), MaxPayloadSize)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(body) {
		return nil, errorf(CodePayloadSerialize, nil, "payload must be one JSON object")
	}
	return body, nil
}

// box is one container, created, attached and started, waiting for its
// payload on stdin.
type box struct {
	id     string
	image  string
	warm   bool
	memory int64     // its memory limit in bytes, 0: none
	ready  time.Time // started and waiting for its payload since
	stream types.HijackedResponse

	// A warm container's stream is watched while it is idle (see watch).
	watched chan struct{} // closed when the watcher's read returned; nil: not watched
	peekErr error         // why the watcher's read returned, set before watched is closed
	peeked  time.Time     // when it returned, set before watched is closed
	died    time.Time     // when it died, by the daemon's record, when a run found it dead
}

// errIdleOutput: a warm container wrote output before it was given a
// payload. A container waiting for its payload writes nothing: one that
// does is an agent that failed at its start (an unknown user, a missing
// interpreter) and is about to exit, or not an agent at all.
var errIdleOutput = errors.New("the container wrote output while waiting for its payload")

// watch reads the first byte of c's stream in the background, without
// consuming it. A container waiting for its payload writes nothing: the
// read returns when the container dies (its stream ends: the daemon closes
// it when the container exits, or goes away with the daemon), when it
// writes (an agent that failed at its start), or when c is disposed of.
// Then, if no payload was written yet, [box.dead] says so without a call
// to the daemon. Whoever reads c's stream next waits for watched first, so
// that there is only ever one reader.
func (c *box) watch(after func()) {
	c.watched = make(chan struct{})
	go func() {
		_, c.peekErr = c.stream.Reader.Peek(1)
		if c.peekErr == nil {
			c.peekErr = idleOutput(c.stream.Reader)
		}
		c.peeked = time.Now()
		close(c.watched)
		after()
	}()
}

// idleOutput returns an errIdleOutput with what of the output r holds
// already, without consuming it.
func idleOutput(r *bufio.Reader) error {
	b, _ := r.Peek(r.Buffered())
	d := newDemux(bytes.NewReader(b), maxAgentStderr)
	d.run()
	return fmt.Errorf("%w: %s", errIdleOutput, excerpt(append(d.stderr, d.stdout...), maxAgentStderr))
}

// dead reports whether c's watcher saw its stream end or output come, so
// that c must not be given a payload. It does not block: a receive from a
// channel, well under a microsecond (BenchmarkWarmContainerCheck). A
// container that is not watched is not known dead. Once a payload was
// written, the watcher's read returns with the answer: dead is only
// meaningful before.
func (c *box) dead() bool {
	select {
	case <-c.watched:
		return c.peekErr != nil
	default:
		return false
	}
}

// lifetime is how long c was usable: how long it ran by the daemon's
// record when a run found it dead, else from its start to the watcher's
// read's return, or to now if that has not returned.
func (c *box) lifetime() time.Duration {
	if !c.died.IsZero() {
		return c.died.Sub(c.ready)
	}
	select {
	case <-c.watched:
		return c.peeked.Sub(c.ready)
	default:
		return time.Since(c.ready)
	}
}

// prepare creates, attaches and starts a container of image with the given
// memory limit in bytes (0: none). On error the container, if created, is
// removed and the error is an *Error.
func (r *Runner) prepare(ctx context.Context, image string, warm bool, memory int64) (*box, error) {
	if ctx.Err() != nil {
		return nil, errorf(CodeCanceled, context.Cause(ctx), "canceled before the container was created")
	}
	// The create is not cut short by the caller: one abandoned midway can
	// leave a container that the daemon made and nobody knows of. The
	// caller's cancellation is checked as soon as it returns.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.dockerTimeout)
	defer ccancel()
	spec, host, err := r.containerSpec(cctx, image, warm, memory)
	if err != nil {
		return nil, r.imageError(cctx, err, image)
	}
	resp, err := r.docker.ContainerCreate(cctx, &spec, &host, nil, nil, "")
	if err != nil {
		return nil, r.imageError(cctx, err, image)
	}
	c := &box{id: resp.ID, image: image, warm: warm, memory: memory}
	r.live.Store(c.id, struct{}{})

	ctx, cancel := context.WithTimeout(ctx, r.cfg.dockerTimeout)
	defer cancel()
	if ctx.Err() != nil {
		r.remove(c)
		return nil, errorf(CodeCanceled, context.Cause(ctx), "canceled while the container was created; it was removed")
	}

	// Attach before start, so that no output is lost.
	c.stream, err = r.docker.ContainerAttach(ctx, c.id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		r.remove(c)
		return nil, r.dockerError(ctx, CodeContainerAttach, err, "attach to container %s", short(c.id))
	}
	if err := r.docker.ContainerStart(ctx, c.id, container.StartOptions{}); err != nil {
		c.stream.Close()
		r.remove(c)
		return nil, r.dockerError(ctx, CodeContainerStart, err, "start container %s", short(c.id))
	}
	c.ready = time.Now()
	return c, nil
}

// imageError classifies an error of inspecting image or creating a
// container from it: a missing image says so.
func (r *Runner) imageError(ctx context.Context, err error, image string) error {
	if cerrdefs.IsNotFound(err) {
		return errorf(CodeContainerCreate, err, "no image %q on the daemon: build or load it there (images are never pulled)", image)
	}
	return r.dockerError(ctx, CodeContainerCreate, err, "create a container from image %q", image)
}

// dockerError classifies an error of a Docker call: an unreachable daemon
// and a cancelled caller have their own codes; anything else gets code.
func (r *Runner) dockerError(ctx context.Context, code Code, err error, format string, args ...any) error {
	switch {
	case client.IsErrConnectionFailed(err) || isConnError(err):
		return errorf(CodeDockerUnixSocket, err, "the Docker daemon does not answer")
	case ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		// Cancelled by the caller, with or without a cause of its own.
		return errorf(CodeCanceled, context.Cause(ctx), "canceled")
	case ctx.Err() != nil:
		return errorf(CodeDockerUnixSocket, err, "the Docker daemon did not answer within %v", r.cfg.dockerTimeout)
	}
	return errorf(code, err, format, args...)
}

func isConnError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// errDeadline is the cause of a run's context when its execution time limit
// and the AnswerGrace after it pass, as opposed to the caller cancelling it.
var errDeadline = errors.New("execution time limit reached")

// errUnread: a warm container turned out dead, and provably so since
// before the first byte of the payload was written to it; so it did not
// read the payload, and the run may go to another container. A payload
// counts as read by the container (consumed) from the moment its first
// byte is handed to the stream, unless the daemon's record of the
// container shows that it had died before that moment (see unread). Run
// retries only on this error, once, on a cold container: no payload runs
// twice.
var errUnread = errors.New("the warm container died before it could read the payload")

// exec writes body to the container's stdin and reads its answer, within
// the run's limits. For a
// warm container that was dead before the payload was written, it returns
// errUnread; every other error is an *Error.
func (r *Runner) exec(ctx context.Context, c *box, body []byte, lim runLimits) (*Result, error) {
	if c.dead() {
		return nil, errUnread
	}
	ctx, cancel := context.WithTimeoutCause(ctx, lim.executionTime+AnswerGrace, errDeadline)
	defer cancel()
	// At the deadline, or when the caller gives up, kill the container and
	// close the stream so that reads and writes return at once.
	stop := context.AfterFunc(ctx, func() {
		c.stream.Close()
		r.kill(c)
	})
	defer stop()

	start := time.Now()
	wrote := make(chan error, 1)
	var written atomic.Int64 // Unix nanoseconds
	go func() {
		_, err := c.stream.Conn.Write(body)
		if err == nil {
			err = c.stream.CloseWrite()
			written.Store(time.Now().UnixNano())
		}
		wrote <- err
	}()

	if c.watched != nil {
		<-c.watched // the watcher's read is over: the stream is the demux's
	}
	d := newDemux(c.stream.Reader, lim.outputSize)
	done, err := d.run()
	answered := time.Now()
	elapsed := answered.Sub(start)

	if !done {
		return nil, r.noAnswer(ctx, c, d, err, lim, start, wrote)
	}
	if len(d.stderr) > 0 {
		return nil, errorf(CodeAgentStderr, nil, "the image's agent wrote to stderr: %s", excerpt(d.stderr, maxAgentStderr))
	}
	res, err := decodeResult(d.result())
	if err != nil {
		return nil, errorf(CodeStdoutDecode, nil, "the container's answer is not a valid result object: %v", err)
	}
	res.Duration, res.Warm = elapsed, c.warm
	res.Timing.Answered = answered
	if w := written.Load(); w != 0 {
		res.Timing.Written = time.Unix(0, w)
	}
	return res, nil
}

// noAnswer returns why the container gave no answer: the demux d ended
// with err, the run started at start, and wrote has the payload write's
// outcome. It is errUnread for a warm container that died before the
// payload reached it, else an *Error.
func (r *Runner) noAnswer(ctx context.Context, c *box, d *demux, err error, lim runLimits, start time.Time, wrote <-chan error) error {
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errDeadline) {
			return errorf(CodeExecutionTime, nil, "the run took longer than %v and was killed", lim.executionTime)
		}
		return errorf(CodeCanceled, context.Cause(ctx), "canceled during the run; the container was killed")
	}
	switch {
	case errors.Is(err, errOutputLimit):
		// Close the stream first: the daemon does not finish a kill while
		// it is blocked writing output that nobody reads. The kill waits
		// for the container to die, so it runs beside the answer; Close
		// waits for it.
		c.stream.Close()
		r.removes.Add(1)
		go func() {
			defer r.removes.Done()
			r.kill(c)
		}()
		return errorf(CodeOutputSize, nil, "the container wrote more than %d bytes and was killed", lim.outputSize)
	case errors.Is(err, errBadFrame):
		return errorf(CodeStreamRead, err, "read container output")
	}

	// The stream ended or broke without an answer: find out why. The
	// daemon may have killed the container or gone away; a warm container
	// may have died before the payload reached it.
	state, serr := r.exitState(c)
	if ran, ok := unread(c, state, start); ok && c.warm {
		c.died = c.ready.Add(ran)
		return errUnread
	}
	if err := r.daemonFault(c, state, serr); err != nil {
		return err
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return errorf(CodeStreamRead, err, "read container output")
	}
	switch {
	case r.oomKilled(c, state):
		return errorf(CodeMemory, nil, "the container exceeded its memory limit of %d bytes and was killed", c.memory)
	case len(d.system) > 0:
		return errorf(CodeStreamRead, nil, "the daemon reported: %s", excerpt(d.system, maxAgentStderr))
	case len(d.stderr) > 0:
		return errorf(CodeAgentStderr, nil, "the image's agent wrote to stderr: %s", excerpt(d.stderr, maxAgentStderr))
	}
	if werr := <-wrote; werr != nil {
		return errorf(CodeStdin, werr, "write payload to the container's stdin")
	}
	exit := fmt.Sprintf(" (exit code %d)", state.ExitCode)
	if len(d.stdout) == 0 {
		return errorf(CodeStdoutDecode, nil, "the container exited without writing an answer%s: is its command an agent that speaks the protocol?", exit)
	}
	return errorf(CodeStdoutDecode, nil, "the container's stdout is not one JSON object%s: %s", exit, excerpt(d.stdout, maxAgentStderr))
}

// exitState waits briefly (exitWait) for the container to stop and
// returns its state: the last one seen if it still runs at the end of the
// wait. The error is the daemon's, when it does not answer an inspect
// within inspectWait (or the daemon timeout, if shorter) or does not know
// the container; the end of the wait is none.
func (r *Runner) exitState(c *box) (*container.State, error) {
	wait := time.Now().Add(exitWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(r.cfg.dockerTimeout, inspectWait))
		info, err := r.docker.ContainerInspect(ctx, c.id)
		cancel()
		if err != nil {
			return nil, err
		}
		if info.ContainerJSONBase == nil || info.State == nil {
			return nil, fmt.Errorf("inspect container %s: no state in the daemon's answer", short(c.id))
		}
		if !info.State.Running || time.Now().After(wait) {
			return info.State, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitWait is how long exitState waits for the daemon to record the exit of
// a container whose stream has ended; inspectWait bounds each inspect, so
// that a daemon that hangs is told from one that is slow without holding
// the answer for the whole daemon timeout.
const (
	exitWait    = 2 * time.Second
	inspectWait = 5 * time.Second
)

// oomKilled reports whether the kernel killed c, whose exit state is s, for
// exceeding its memory limit. Docker sets State.OOMKilled only when the
// runtime's OOM event reaches it before the exit event, and the flag is
// final once the exit is recorded; the two events race, under gVisor most
// often (the sandbox as a whole is killed). The daemon publishes the "oom"
// event either way: for an exit with code 137 without the flag, oomKilled
// looks for that event among the container's since its start, waiting up
// to oomEventWait for one still on its way. The event comes from the
// kernel's cgroup notification, so the code cannot fake it by killing its
// own process with SIGKILL.
func (r *Runner) oomKilled(c *box, s *container.State) bool {
	if s.OOMKilled {
		return true
	}
	if s.ExitCode != 137 || c.memory == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), oomEventWait)
	defer cancel()
	// The client turns the daemon's RFC 3339 StartedAt into the
	// timestamp the API wants; the daemon applies the filters, so any
	// message is the container's oom event.
	msgs, errs := r.docker.Events(ctx, events.ListOptions{Since: s.StartedAt, Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("container", c.id),
		filters.Arg("event", string(events.ActionOOM)),
	)})
	select {
	case <-msgs:
		return true
	case <-errs: // the wait's end, or an error: no event seen
		return false
	}
}

// oomEventWait is how long oomKilled waits for an "oom" event that has not
// come yet.
const oomEventWait = time.Second

// unread reports whether c, according to the daemon's record s of it, had
// died before written, the moment the first byte of the payload was handed
// to its stream: then it cannot have read the payload. The daemon records
// StartedAt after the process started and FinishedAt after it died, both
// on its own clock; c.ready was taken after the start returned, on ours.
// So the death came at most FinishedAt-StartedAt after c.ready, whatever
// the offset between the two clocks. (A step of the daemon host's clock
// during the container's life would fool this.) ran is how long c ran, by
// that record.
func unread(c *box, s *container.State, written time.Time) (ran time.Duration, ok bool) {
	if s == nil || s.Running || s.Restarting {
		return 0, false
	}
	started, err1 := time.Parse(time.RFC3339Nano, s.StartedAt)
	finished, err2 := time.Parse(time.RFC3339Nano, s.FinishedAt)
	if err1 != nil || err2 != nil || started.IsZero() || finished.Before(started) {
		return 0, false
	}
	ran = finished.Sub(started)
	return ran, c.ready.Add(ran).Before(written)
}

// daemonFault returns the error of a run whose stream ended without an
// answer because of the daemon rather than the container, given what
// exitState found: the daemon went away or is shutting down (a restart, a
// crash), ended the stream of a container that still runs, or the
// container was removed behind the runner's back. Each is a docker.* code
// (a 5xx), distinct from an agent that died ([CodeStdoutDecode]). It
// returns nil when the container ended by itself.
func (r *Runner) daemonFault(c *box, state *container.State, serr error) error {
	switch {
	case cerrdefs.IsNotFound(serr):
		return errorf(CodeStreamRead, serr, "container %s was removed by someone else during the run", short(c.id))
	case serr != nil:
		return errorf(CodeDockerUnixSocket, serr, "the Docker daemon went away during the run (a restart?): the run's outcome is unknown; try again once the daemon is back")
	case state.Running:
		return errorf(CodeStreamRead, nil, "the daemon ended the stream of container %s, which still runs (a daemon restart with live-restore?)", short(c.id))
	case !r.daemonListening():
		return errorf(CodeDockerUnixSocket, nil, "the Docker daemon is shutting down: it stopped the container during the run (exit code %d); try again once the daemon is back", state.ExitCode)
	}
	return nil
}

// daemonListening reports whether the daemon accepts a new connection,
// when the client says where it is (*client.Client does). A daemon that is
// shutting down first closes its listener, then stops the containers,
// while still answering on the client's kept-alive connections: an inspect
// of a container it stopped succeeds, a new connection fails. Other hosts
// (ssh://) are taken as listening.
func (r *Runner) daemonListening() bool {
	if r.daemonHost == "" {
		return true
	}
	u, err := url.Parse(r.daemonHost)
	if err != nil {
		return true
	}
	var network, addr string
	switch u.Scheme {
	case "unix":
		network, addr = "unix", u.Path
	case "tcp", "http", "https":
		network, addr = "tcp", u.Host
	default:
		return true
	}
	conn, err := net.DialTimeout(network, addr, min(r.cfg.dockerTimeout, 2*time.Second))
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// kill sends SIGKILL to the container; untrusted code gets no graceful stop.
func (r *Runner) kill(c *box) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.dockerTimeout)
	defer cancel()
	err := r.docker.ContainerKill(ctx, c.id, "KILL")
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
		r.log.Warn("kill container", "container", short(c.id), "error", err)
	}
}

// dispose closes the container's stream and removes it in the background,
// then frees its place.
func (r *Runner) dispose(c *box) {
	c.stream.Close()
	r.removes.Add(1)
	go func() {
		defer r.removes.Done()
		r.removeQ <- struct{}{}
		if r.cfg.keepContainer {
			r.kill(c)
			r.live.Delete(c.id)
			r.log.Info("kept container", "container", c.id)
		} else {
			r.remove(c)
		}
		<-r.removeQ
		r.sem.Release(1)
	}()
}

// remove force-removes the container. If the daemon cannot be reached, the
// container is remembered as an orphan, and [Runner.Reap] removes it later.
func (r *Runner) remove(c *box) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.dockerTimeout)
	defer cancel()
	err := r.docker.ContainerRemove(ctx, c.id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) { // a conflict: removal under way
		r.log.Warn("remove container: Reap will retry", "container", short(c.id), "error", err)
		r.orphans.Store(c.id, struct{}{})
	}
	r.live.Delete(c.id)
}

// Reap removes containers that carry this Runner's owner label but that no
// Runner is using: those of other instances (a server that died), and this
// instance's own containers that it no longer tracks (a removal that failed
// while the daemon was away). It leaves containers that [WithKeepContainer]
// kept. It returns how many it removed.
func (r *Runner) Reap(ctx context.Context) (int, error) {
	r.startPool()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.dockerTimeout)
	defer cancel()
	list, err := r.docker.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", LabelOwner+"="+r.cfg.owner)),
	})
	if err != nil {
		return 0, r.dockerError(ctx, CodeDockerUnixSocket, err, "list containers")
	}
	n := 0
	var errs []error
	for _, s := range list {
		if s.Labels[LabelKept] == "true" {
			continue
		}
		if s.Labels[LabelInstance] == r.cfg.instance {
			if _, ok := r.live.Load(s.ID); ok {
				continue
			}
			// Neither in use nor a failed removal: a container created a
			// moment ago may not be tracked yet.
			_, orphan := r.orphans.Load(s.ID)
			if young := time.Since(time.Unix(s.Created, 0)) < 2*r.cfg.dockerTimeout; !orphan && young {
				continue
			}
		}
		err := r.docker.ContainerRemove(ctx, s.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		switch {
		case err == nil:
			n++
			r.orphans.Delete(s.ID)
			r.log.Info("reaped container", "container", short(s.ID), "owner_instance", s.Labels[LabelInstance])
		case cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err):
			r.orphans.Delete(s.ID)
		default:
			errs = append(errs, err)
		}
	}
	if n > 0 && r.cfg.observer != nil {
		r.cfg.observer.ContainersReaped(n)
	}
	if len(errs) > 0 {
		return n, errorf(CodeContainerRemove, errors.Join(errs...), "%d leftover containers of owner %s were not removed (%d were); the next Reap tries again", len(errs), r.cfg.owner, n)
	}
	return n, nil
}

// Close stops the warm pool, waits for runs in flight to end and for their
// containers to be removed, and removes the pool's containers. Runs after
// Close fail with [ErrClosed]. Close waits as long as ctx allows, and no
// longer, even while the pool is in the middle of creating a container;
// the container is removed when its create returns.
func (r *Runner) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.closeMu.Lock()
		r.closed.Store(true)
		r.closeMu.Unlock()
	})
	r.pool.close()
	waited := make(chan struct{})
	go func() {
		r.runs.Wait()
		r.pool.wait()
		r.removes.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		return errorf(CodeContainerRemove, context.Cause(ctx), "close: gave up waiting for runs to end and containers to be removed")
	}
	if r.ownClient != nil {
		if err := r.ownClient.Close(); err != nil {
			return errorf(CodeDockerUnixSocket, err, "close the Docker client")
		}
	}
	return nil
}

// agentCaps are the only capabilities of a container whose agent separates
// privileges: to change to the user that runs the code (SETUID, SETGID)
// and to stop every process of that user (KILL). The user's code has none.
var agentCaps = []string{"SETUID", "SETGID", "KILL"}

// agentNprocCap is added to agentCaps where the agent gives the code an
// RLIMIT_NPROC ([EnvNproc]): gVisor applies the limit to root too, unless
// the task has this capability, so with it the agent carries the limit
// itself and every command inherits it, instead of starting each command
// through one more exec that sets it. The code loses it with its change of
// user, as it loses the others.
const agentNprocCap = "SYS_RESOURCE"

// privsep inspects image and returns the user its agent must run the code
// as when the image says its agent separates privileges ([LabelPrivsep])
// and that user is not root; else "". The image is inspected before every
// create, so that an image rebuilt under the same name, with or without the
// label, is never run the wrong way.
func (r *Runner) privsep(ctx context.Context, name string) (string, error) {
	img, err := r.docker.ImageInspect(ctx, name)
	if err != nil {
		return "", err
	}
	if img.Config == nil || img.Config.Labels[LabelPrivsep] != "1" {
		return "", nil
	}
	user := r.cfg.user
	if user == "" {
		user = img.Config.User
	}
	if isRoot(user) {
		return "", nil
	}
	return user, nil
}

// isRoot reports whether a Docker user (user[:group]) is root, or empty,
// which is root unless the image says otherwise.
func isRoot(user string) bool {
	u, _, _ := strings.Cut(user, ":")
	return u == "" || u == "root" || strings.Trim(u, "0") == ""
}

// ContainerConfig returns the configuration of the cold containers that r
// creates from image, as copies the caller may change: what Run passes to
// the daemon's create, labels included. Like a run, it inspects the image
// (see [LabelPrivsep]). It serves tools that must create the very same
// containers, such as the benchmark's plain Engine API method, and the
// curious who want to see what a run's container looks like.
func (r *Runner) ContainerConfig(ctx context.Context, image string) (*container.Config, *container.HostConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.dockerTimeout)
	defer cancel()
	spec, host, err := r.containerSpec(ctx, image, false, r.cfg.memory)
	if err != nil {
		return nil, nil, r.imageError(ctx, err, image)
	}
	host.Tmpfs = maps.Clone(host.Tmpfs)
	host.SecurityOpt = slices.Clone(host.SecurityOpt)
	host.MaskedPaths = slices.Clone(host.MaskedPaths)
	host.Ulimits = slices.Clone(host.Ulimits)
	for i, u := range host.Ulimits {
		c := *u
		host.Ulimits[i] = &c
	}
	if host.PidsLimit != nil {
		pids := *host.PidsLimit
		host.PidsLimit = &pids
	}
	return &spec, &host, nil
}

// containerSpec returns the configuration of a container of image with the
// given memory limit in bytes (0: none): copies that the Docker client may
// edit, as it does.
func (r *Runner) containerSpec(ctx context.Context, image string, warm bool, memory int64) (container.Config, container.HostConfig, error) {
	runAs, err := r.privsep(ctx, image)
	if err != nil {
		return container.Config{}, container.HostConfig{}, err
	}
	spec, host := r.spec(image, warm, runAs), r.host
	if runAs != "" {
		host.CapAdd, host.CapDrop = agentCaps, []string{"ALL"}
		// The code's user could regain root, and the agent's capabilities,
		// through the image's setuid binaries (su, mount) without it.
		if !slices.Contains(host.SecurityOpt, noNewPrivileges) {
			host.SecurityOpt = append(slices.Clone(host.SecurityOpt), noNewPrivileges)
		}
		if r.cfg.agentNproc() > 0 {
			pids := r.cfg.pidsLimit * runscPidsFactor
			host.PidsLimit = &pids
			host.CapAdd = append(slices.Clone(agentCaps), agentNprocCap)
		}
	}
	host.CapAdd, host.CapDrop = slices.Clone(host.CapAdd), slices.Clone(host.CapDrop)
	host.Memory, host.MemorySwap = memory, memory // no swap
	return spec, host, nil
}

// spec returns the container configuration for image. For
// an image whose agent separates privileges (runAs not ""), the container
// runs as root and the agent runs the code as runAs.
func (r *Runner) spec(image string, warm bool, runAs string) container.Config {
	cfg := r.cfg
	env := append([]string{
		EnvMaxOutputSize + "=" + strconv.FormatInt(cfg.maxOutputSize, 10),
		EnvMaxExecutionTime + "=" + strconv.FormatInt(cfg.maxExecutionTime.Milliseconds(), 10),
	}, cfg.env...)
	s := container.Config{
		Image:           image,
		Hostname:        cfg.hostname,
		User:            cfg.user,
		Env:             env,
		AttachStdin:     true,
		AttachStdout:    true,
		AttachStderr:    true,
		OpenStdin:       true,
		StdinOnce:       true,
		NetworkDisabled: cfg.networkDisabled,
		Healthcheck:     &container.HealthConfig{Test: []string{"NONE"}},
		Labels: map[string]string{
			LabelOwner:    cfg.owner,
			LabelInstance: cfg.instance,
			LabelWarm:     strconv.FormatBool(warm),
		},
	}
	if cfg.keepContainer {
		s.Labels[LabelKept] = "true"
	}
	if runAs != "" {
		s.User = "0:0"
		s.Env = append(s.Env, EnvRunAs+"="+runAs)
		if n := cfg.agentNproc(); n > 0 {
			s.Env = append(s.Env, EnvNproc+"="+strconv.FormatInt(n, 10))
		}
	}
	return s
}

// hostConfig is the part of the container configuration that is the same
// for every image.
func hostConfig(cfg *config) container.HostConfig {
	h := container.HostConfig{
		LogConfig:      container.LogConfig{Type: "none"},
		IpcMode:        "private",
		CapAdd:         cfg.capAdd,
		CapDrop:        cfg.capDrop,
		ReadonlyRootfs: cfg.readonlyRootfs,
		Runtime:        cfg.runtime,
		Tmpfs:          map[string]string{},
	}
	if cfg.networkDisabled {
		h.NetworkMode = "none"
	}
	h.SecurityOpt, _ = cfg.securityOpt() // checked by validate
	h.MaskedPaths = slices.Clone(maskedPaths)
	for _, t := range []*tmpfs{cfg.tmpDir, cfg.workDir} {
		if t != nil {
			h.Tmpfs[t.path] = t.options
		}
	}
	h.Memory = cfg.memory
	if cfg.memory > 0 {
		h.MemorySwap = cfg.memory // no swap
	}
	h.NanoCPUs = cfg.nanoCPUs
	if cfg.pidsLimit > 0 {
		pids := cfg.pidsLimit
		h.PidsLimit = &pids
	}
	h.Ulimits = []*container.Ulimit{{Name: "core", Soft: 0, Hard: 0}}
	if u := cfg.nofile; u != nil {
		h.Ulimits = append(h.Ulimits, &container.Ulimit{Name: "nofile", Soft: u.soft, Hard: u.hard})
	}
	if u := cfg.nproc; u != nil {
		h.Ulimits = append(h.Ulimits, &container.Ulimit{Name: "nproc", Soft: u.soft, Hard: u.hard})
	}
	return h
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
