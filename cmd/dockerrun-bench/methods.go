package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/dockerrun/dockerrun"
)

// method is one way of running a payload in a container.
type method int

const (
	dockerRun method = iota // (1) docker run --rm -i, the CLI
	engineAPI               // (2) the plain Engine API sequence
	libCold                 // (3) dockerrun library, no pool
	libWarm                 // (4) dockerrun library, warm pool
	httpCold                // (5) the docker-run server, no pool
	httpWarm                // (5) the docker-run server, warm pool
	floor                   // (0) the python program alone, in a running container
)

var allMethods = []method{floor, dockerRun, engineAPI, libCold, libWarm, httpCold, httpWarm}

func (m method) String() string {
	return [...]string{"docker-run", "engine-api", "lib-cold", "lib-warm", "http-cold", "http-warm", "floor"}[m]
}

// label is the method as the table shows it.
func (m method) label() string {
	return [...]string{
		"(1) `docker run --rm -i`",
		"(2) Engine API, plain",
		"(3) library, cold",
		"(4) library, warm",
		"(5) server, cold",
		"(5) server, warm",
		"(0) the program alone, in a running container",
	}[m]
}

// warm says whether the method runs in rounds, without a container's
// create and remove in its time: the warm methods, and the floor.
func (m method) warm() bool { return m == libWarm || m == httpWarm || m == floor }

func methodByName(name string) (method, bool) {
	for _, m := range allMethods {
		if m.String() == name {
			return m, true
		}
	}
	return 0, false
}

func methodNames(ms []method) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.String())
	}
	return s
}

// target runs the payload of one image one way.
type target interface {
	// run runs the payload once and checks the answer; warm says whether a
	// warm container served it, where the method knows.
	run(ctx context.Context) (warm bool, err error)
	// owner is the owner label of the target's containers, "" when the
	// target removes its containers before run returns.
	owner() string
	// poolSize is how many idle warm containers the target keeps.
	poolSize() int
	close() error
}

// selfTimed is a target that measures the time of a run itself.
type selfTimed interface {
	runTimed(ctx context.Context) (time.Duration, error)
}

// dockerCLI runs `docker run --rm -i IMAGE` with the payload on stdin, as a
// user would by hand.
type dockerCLI struct {
	bn  *bench
	img *benchImage
}

func (t *dockerCLI) run(ctx context.Context) (bool, error) {
	cmd := exec.CommandContext(ctx, "docker", "run", "--rm", "-i", "--runtime", t.img.runtime, "--label", labelBench+"="+t.bn.id, t.img.ref)
	cmd.Stdin = bytes.NewReader(t.img.payload)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return false, fmt.Errorf("docker run: %w: %.200s", err, stderr.Bytes())
	}
	return false, t.img.check(out)
}

func (t *dockerCLI) owner() string { return "" }
func (t *dockerCLI) poolSize() int { return 0 }
func (t *dockerCLI) close() error  { return nil }

// plainAPI is the Engine API sequence done plainly: create, attach, start,
// write stdin, read until EOF, wait, remove. Its containers have the very
// configuration dockerrun gives its own ([dockerrun.Runner.ContainerConfig]),
// so that the comparison measures the orchestration only.
type plainAPI struct {
	bn   *bench
	img  *benchImage
	cfg  container.Config
	host container.HostConfig
}

func newPlainAPI(ctx context.Context, bn *bench, img *benchImage) (*plainAPI, error) {
	r, err := dockerrun.New(dockerrun.WithDockerClient(bn.cli), dockerrun.WithRuntime(img.runtime),
		dockerrun.WithOwner(bn.owner("plain-"+img.name+"-"+img.runtime)))
	if err != nil {
		return nil, err
	}
	defer r.Close(ctx)
	cfg, host, err := r.ContainerConfig(ctx, img.ref)
	if err != nil {
		return nil, err
	}
	cfg.Labels[labelBench] = bn.id
	return &plainAPI{bn: bn, img: img, cfg: *cfg, host: *host}, nil
}

func (t *plainAPI) run(ctx context.Context) (bool, error) {
	cli := t.bn.cli
	cfg, host := t.cfg, t.host
	resp, err := cli.ContainerCreate(ctx, &cfg, &host, nil, nil, "")
	if err != nil {
		return false, fmt.Errorf("create: %w", err)
	}
	removed := false
	defer func() {
		if !removed {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			cli.ContainerRemove(rctx, resp.ID, container.RemoveOptions{Force: true})
		}
	}()
	hj, err := cli.ContainerAttach(ctx, resp.ID, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return false, fmt.Errorf("attach: %w", err)
	}
	defer hj.Close()
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return false, fmt.Errorf("start: %w", err)
	}
	if _, err := hj.Conn.Write(t.img.payload); err != nil {
		return false, fmt.Errorf("write stdin: %w", err)
	}
	if err := hj.CloseWrite(); err != nil {
		return false, fmt.Errorf("close stdin: %w", err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, hj.Reader); err != nil {
		return false, fmt.Errorf("read: %w", err)
	}
	waited, errc := cli.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning)
	select {
	case <-waited:
	case err := <-errc:
		return false, fmt.Errorf("wait: %w", err)
	}
	if err := cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{}); err != nil {
		return false, fmt.Errorf("remove: %w", err)
	}
	removed = true
	if stderr.Len() > 0 {
		return false, fmt.Errorf("agent stderr: %.200s", stderr.Bytes())
	}
	return false, t.img.check(stdout.Bytes())
}

func (t *plainAPI) owner() string { return "" }
func (t *plainAPI) poolSize() int { return 0 }
func (t *plainAPI) close() error  { return nil }

// library runs through a dockerrun.Runner in this process.
type library struct {
	r     *dockerrun.Runner
	img   *benchImage
	own   string
	warmN int
}

// newLibrary returns a Runner configured like the server, with a warm pool
// of n containers of the image if n > 0.
func (bn *bench) newLibrary(name string, img *benchImage, n int, extra ...dockerrun.Option) (*library, error) {
	own := bn.owner(name + "-" + img.name + "-" + img.runtime)
	opts := []dockerrun.Option{
		dockerrun.WithOwner(own),
		dockerrun.WithRuntime(img.runtime),
		dockerrun.WithMaxConcurrentRuns(int64(bn.o.workers)),
		dockerrun.WithQueue(int64(4*bn.o.workers), time.Minute),
		dockerrun.WithWarmMaxAge(time.Hour), // no renewal in the middle of a cell
	}
	if n > 0 {
		opts = append(opts, dockerrun.WithWarmPool(map[string]int{img.ref: n}))
	}
	r, err := dockerrun.New(append(opts, extra...)...)
	if err != nil {
		return nil, err
	}
	// Ping starts the pool filling, as the server's start-up does.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err != nil {
		r.Close(ctx)
		return nil, err
	}
	return &library{r: r, img: img, own: own, warmN: n}, nil
}

func (t *library) run(ctx context.Context) (bool, error) {
	res, err := t.r.Run(ctx, t.img.ref, t.img.payload)
	end := time.Now()
	if err != nil {
		return false, err
	}
	p := phases{total: end.Sub(res.Timing.Start)}
	p.fromTiming(res.Timing, end, res.Raw)
	record(ctx, p)
	return res.Warm, t.img.checkStdout(res.Stdout, res.Error)
}

func (t *library) owner() string { return t.own }
func (t *library) poolSize() int { return t.warmN }

func (t *library) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return t.r.Close(ctx)
}

// overHTTP posts the payload to a docker-run server.
type overHTTP struct {
	srv *server
	img *benchImage
}

func (t *overHTTP) run(ctx context.Context) (bool, error) {
	status, body, p, err := t.srv.postTimed(ctx, t.img.ref, t.img.payload)
	if err != nil {
		return false, err
	}
	if status != http.StatusOK {
		return false, fmt.Errorf("status %d: %.200s", status, body)
	}
	record(ctx, p)
	return p.warm, t.img.check(body)
}

func (t *overHTTP) owner() string { return t.srv.owner }
func (t *overHTTP) poolSize() int { return t.srv.pool }
func (t *overHTTP) close() error  { return t.srv.stop() }

// errorCode returns the "error" field of a server's error body.
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(body, &e)
	return e.Error
}
