package dockerrun

import (
	"context"
	"errors"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/dockerrun/dockerrun/internal/protocol"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Observer is told what a [Runner] does, for metrics. Its methods are called
// synchronously from the Runner's goroutines, concurrently: they must be
// quick and safe for concurrent use. What a Runner holds at a given moment
// (runs in flight, runs waiting, warm containers ready) is not pushed to the
// Observer: read it with [Runner.Stats] when it is needed, for example at
// each scrape. The package metrics adapts an Observer and Stats to
// Prometheus.
type Observer interface {
	// RunDone reports a call of [Runner.Run] that has returned.
	RunDone(RunInfo)
	// ContainersReaped reports n leftover containers removed by
	// [Runner.Reap]; it is not called when n is 0.
	ContainersReaped(n int)
	// DockerError reports a failed call to the Docker daemon. op is the
	// name of the call, one of [DockerOps]. Answers that something does not
	// exist (an image that is not on the daemon, a container already gone),
	// that a container is already stopping, and calls cancelled by the
	// caller are not errors: they are not the daemon's trouble.
	DockerError(op string)
}

// RunInfo describes one call of [Runner.Run] for an [Observer].
type RunInfo struct {
	// Image is the image the caller named, with the implied ":latest" tag
	// added. It is whatever the caller sent, which may not exist: see
	// Container.
	Image string
	// Code is "" when the container answered and its agent reported no
	// limit; the code of Run's error when Run failed; and [CodeExecutionTime]
	// or [CodeOutputSize] when the agent stopped the user's program at one of
	// its limits and said so in the answer's error field (Run succeeded).
	Code Code
	// Container reports whether a container of Image was created (or taken
	// from the warm pool) for the run, which proves that Image exists on the
	// daemon. Runs refused earlier (a name not allowed, a full queue, an
	// image the daemon does not have) have false.
	Container bool
	// Warm reports whether the run used a container of the warm pool.
	Warm bool
	// WarmMiss reports whether Image has a warm pool but no container of it
	// was ready, so that the run started a cold container.
	WarmMiss bool
	// Queued reports whether the run asked for a place (every run that
	// passed the checks and found no warm container); QueueWait is then
	// how long it waited, whether it got the place or not.
	Queued    bool
	QueueWait time.Duration
	// Duration is how long the run took from having its place (a warm
	// container, or a place for a cold one) to Run's return: for a cold run
	// it includes creating and starting the container. Zero when Container
	// is false.
	Duration time.Duration
}

// Stats is what a [Runner] holds at one moment.
type Stats struct {
	// Running is how many calls of Run are in progress and not waiting for
	// a place.
	Running int
	// Waiting is how many calls of Run wait for a place.
	Waiting int
	// WarmReady has, for each image with a warm pool, how many of its
	// containers are started and idle. Nil without a warm pool.
	WarmReady map[string]int
}

// Stats returns what the Runner holds now.
func (r *Runner) Stats() Stats {
	waiting := r.waiting.Load()
	return Stats{
		Running:   int(max(r.active.Load()-waiting, 0)),
		Waiting:   int(waiting),
		WarmReady: r.pool.ready(),
	}
}

// Ready reports whether the Runner can take a run now: the daemon answers,
// the Runner is not closed, and a run would not be refused with [ErrBusy]
// (a place is free or the queue has room). It returns nil, or an [*Error]
// that says why not. Load balancers ask it through the server's GET /readyz.
func (r *Runner) Ready(ctx context.Context) error {
	if r.closed.Load() {
		return errorf(CodeClosed, nil, "the runner is closed")
	}
	if err := r.Ping(ctx); err != nil {
		return err
	}
	if r.waiting.Load() < r.cfg.maxQueue {
		return nil
	}
	if !r.sem.TryAcquire(1) {
		return errorf(CodeBusy, nil, "all %d places are taken and %d runs are already waiting", r.cfg.maxConcurrent, r.cfg.maxQueue)
	}
	r.sem.Release(1)
	return nil
}

// WithObserver makes the Runner report what it does to o. Default: none.
func WithObserver(o Observer) Option {
	return func(c *config) {
		if o == nil {
			c.problem("observer: nil")
		}
		c.observer = o
	}
}

// agentLimit returns the code of the limit that an agent's error field
// reports, or "".
func agentLimit(answerError string) Code {
	switch {
	case strings.HasPrefix(answerError, protocol.ErrorTimeLimit):
		return CodeExecutionTime
	case strings.HasPrefix(answerError, protocol.ErrorOutputLimit):
		return CodeOutputSize
	}
	return ""
}

// observeRun reports a finished run to the observer.
func (r *Runner) observeRun(info *RunInfo, res *Result, err error) {
	if r.cfg.observer == nil {
		return
	}
	switch {
	case err != nil:
		info.Code = ErrorCode(err)
	case res != nil:
		info.Code = agentLimit(res.Error)
	}
	r.cfg.observer.RunDone(*info)
}

// DockerOps returns the names of the Docker calls that
// [Observer.DockerError] reports.
func DockerOps() []string {
	return []string{"image_inspect", "create", "attach", "start", "kill", "remove", "inspect", "list", "ping", "version"}
}

// observedDocker reports the failed calls of a DockerAPI to an Observer.
type observedDocker struct {
	DockerAPI
	obs Observer
}

// failed reports err, unless it is nil or part of the normal course.
func (d observedDocker) failed(op string, err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	if cerrdefs.IsNotFound(err) || (op == "kill" || op == "remove" || op == "inspect") && cerrdefs.IsConflict(err) {
		return
	}
	d.obs.DockerError(op)
}

func (d observedDocker) ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error) {
	resp, err := d.DockerAPI.ContainerCreate(ctx, config, hostConfig, networkingConfig, platform, name)
	d.failed("create", err)
	return resp, err
}

func (d observedDocker) ImageInspect(ctx context.Context, name string, opts ...client.ImageInspectOption) (image.InspectResponse, error) {
	resp, err := d.DockerAPI.ImageInspect(ctx, name, opts...)
	d.failed("image_inspect", err)
	return resp, err
}

func (d observedDocker) ContainerAttach(ctx context.Context, id string, options container.AttachOptions) (types.HijackedResponse, error) {
	resp, err := d.DockerAPI.ContainerAttach(ctx, id, options)
	d.failed("attach", err)
	return resp, err
}

func (d observedDocker) ContainerStart(ctx context.Context, id string, options container.StartOptions) error {
	err := d.DockerAPI.ContainerStart(ctx, id, options)
	d.failed("start", err)
	return err
}

func (d observedDocker) ContainerKill(ctx context.Context, id, signal string) error {
	err := d.DockerAPI.ContainerKill(ctx, id, signal)
	d.failed("kill", err)
	return err
}

func (d observedDocker) ContainerRemove(ctx context.Context, id string, options container.RemoveOptions) error {
	err := d.DockerAPI.ContainerRemove(ctx, id, options)
	d.failed("remove", err)
	return err
}

func (d observedDocker) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	resp, err := d.DockerAPI.ContainerInspect(ctx, id)
	d.failed("inspect", err)
	return resp, err
}

func (d observedDocker) ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error) {
	resp, err := d.DockerAPI.ContainerList(ctx, options)
	d.failed("list", err)
	return resp, err
}

func (d observedDocker) Ping(ctx context.Context) (types.Ping, error) {
	resp, err := d.DockerAPI.Ping(ctx)
	d.failed("ping", err)
	return resp, err
}

func (d observedDocker) ServerVersion(ctx context.Context) (types.Version, error) {
	resp, err := d.DockerAPI.ServerVersion(ctx)
	d.failed("version", err)
	return resp, err
}
