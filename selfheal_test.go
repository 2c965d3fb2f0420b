package dockerrun

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// flakyDocker is a fake daemon that can go away and come back, as a
// restarted or crashed dockerd does. While it is down, every call fails as
// a refused connection would, and nothing listens at DaemonHost. Like a
// real client, it can keep answering inspects on a kept-alive connection
// while nothing listens any more (keepInspect).
type flakyDocker struct {
	*fakeDocker
	sock string // where DaemonHost says the daemon listens

	mu          sync.Mutex
	down        bool         // calls fail
	keepInspect bool         // but inspects still work
	ln          net.Listener // nil while nothing listens at sock
}

func newFlakyDocker(t *testing.T) *flakyDocker {
	dir, err := os.MkdirTemp("", "drt") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &flakyDocker{fakeDocker: newFakeDocker(), sock: filepath.Join(dir, "d.sock")}
	d.listen(t, true)
	t.Cleanup(func() { d.listen(t, false) })
	return d
}

// DaemonHost says where the daemon listens, as *client.Client does.
func (d *flakyDocker) DaemonHost() string { return "unix://" + d.sock }

// listen opens or closes the daemon's socket.
func (d *flakyDocker) listen(t *testing.T, on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case on && d.ln == nil:
		ln, err := net.Listen("unix", d.sock)
		if err != nil {
			t.Fatal(err)
		}
		d.ln = ln
	case !on && d.ln != nil:
		d.ln.Close() // removes the socket file
		d.ln = nil
	}
}

// setDown makes the daemon go away (closing its socket) or come back.
func (d *flakyDocker) setDown(t *testing.T, down, keepInspect bool) {
	d.listen(t, !down)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down, d.keepInspect = down, keepInspect
}

func (d *flakyDocker) err(inspect bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down && !(inspect && d.keepInspect) {
		return refusedError()
	}
	return nil
}

// refusedError is the error of a call to a daemon that does not listen.
func refusedError() error {
	return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

func (d *flakyDocker) ContainerCreate(ctx context.Context, cfg *container.Config, host *container.HostConfig, n *network.NetworkingConfig, p *ocispec.Platform, name string) (container.CreateResponse, error) {
	if err := d.err(false); err != nil {
		return container.CreateResponse{}, err
	}
	return d.fakeDocker.ContainerCreate(ctx, cfg, host, n, p, name)
}

func (d *flakyDocker) ContainerAttach(ctx context.Context, id string, opts container.AttachOptions) (types.HijackedResponse, error) {
	if err := d.err(false); err != nil {
		return types.HijackedResponse{}, err
	}
	return d.fakeDocker.ContainerAttach(ctx, id, opts)
}

func (d *flakyDocker) ContainerStart(ctx context.Context, id string, opts container.StartOptions) error {
	if err := d.err(false); err != nil {
		return err
	}
	return d.fakeDocker.ContainerStart(ctx, id, opts)
}

func (d *flakyDocker) ContainerKill(ctx context.Context, id, signal string) error {
	if err := d.err(false); err != nil {
		return err
	}
	return d.fakeDocker.ContainerKill(ctx, id, signal)
}

func (d *flakyDocker) ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error {
	if err := d.err(false); err != nil {
		return err
	}
	return d.fakeDocker.ContainerRemove(ctx, id, opts)
}

func (d *flakyDocker) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	if err := d.err(true); err != nil {
		return container.InspectResponse{}, err
	}
	return d.fakeDocker.ContainerInspect(ctx, id)
}

func (d *flakyDocker) ContainerList(ctx context.Context, opts container.ListOptions) ([]container.Summary, error) {
	if err := d.err(false); err != nil {
		return nil, err
	}
	return d.fakeDocker.ContainerList(ctx, opts)
}

func (d *flakyDocker) Ping(ctx context.Context) (types.Ping, error) {
	if err := d.err(false); err != nil {
		return types.Ping{}, err
	}
	return d.fakeDocker.Ping(ctx)
}

// exit ends container id's process with code, as the daemon's stop or
// kill does, behind the runner's back.
func (f *fakeDocker) exit(id string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok || !c.state.Running {
		return
	}
	f.stop(c)
	c.state.ExitCode = code
}

// cut closes container id's stream, as a daemon that goes away does, and
// leaves its process running.
func (f *fakeDocker) cut(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id].conn.Close()
}

// Warm containers killed behind the runner's back while idle are noticed
// without a call to the daemon, removed and replaced; no run gets one.
func TestWarmPoolReplacesKilledContainers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": 2}), WithMaxConcurrentRuns(4))
		synctest.Wait()
		killed := warmIDs(f, r.Instance())
		if len(killed) != 2 {
			t.Fatalf("warm containers = %v, want 2", killed)
		}
		time.Sleep(poolShortLife) // they lived: not an image that cannot start
		for _, id := range killed {
			if err := f.ContainerKill(context.Background(), id, "KILL"); err != nil {
				t.Fatal(err)
			}
		}
		inspects := f.count("inspect")
		synctest.Wait()
		for _, id := range killed {
			if f.exists(id) {
				t.Errorf("killed warm container %s was not removed", id)
			}
		}
		if got := poolSize(r, "fake/img"); got != 2 {
			t.Errorf("pool holds %d containers after two were killed, want 2 (refilled)", got)
		}
		if got := f.count("inspect"); got != inspects {
			t.Errorf("%d inspects to notice the dead containers, want none", got-inspects)
		}
		for i := range 4 {
			res, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"})
			if err != nil {
				t.Fatalf("Run() #%d after warm containers were killed: %v", i, err)
			}
			if slices.Contains(killed, res.Stdout) {
				t.Errorf("Run() #%d ran in %s, a killed container", i, res.Stdout)
			}
		}
	})
}

// A container dies when die is closed, but its stream stays open until
// the runner writes to it, as with a daemon slow to close it: the runner
// takes it for alive. It never reads the payload. Cold containers of the
// image behave as modeProgram.
func zombieProgram(die <-chan struct{}) fakeProgram {
	return func(p *fakeProc) (int, bool) {
		if p.c.config.Labels[LabelWarm] != "true" {
			return modeProgram(p)
		}
		<-die
		p.f.mu.Lock()
		p.c.state = container.State{Status: "exited", ExitCode: 137, StartedAt: p.c.state.StartedAt, FinishedAt: stamp()}
		p.f.mu.Unlock()
		var b [1]byte
		p.c.conn.Read(b[:]) // the runner's first byte: the stream closes
		return 137, false
	}
}

// A warm container that turns out dead after it was taken, but that died
// before the payload was written to it, cannot have read it: the run goes
// to a cold container, once. One that died after the payload was written
// may have run it: the run fails, and nothing runs it again.
func TestWarmContainerDeadAfterTake(t *testing.T) {
	t.Run("died before the payload was written", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeDocker()
			die := make(chan struct{})
			f.programs["fake/zombie:latest"] = zombieProgram(die) // the pool names images in full
			r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/zombie": 1}))
			synctest.Wait()
			warm := warmIDs(f, r.Instance())
			if len(warm) != 1 {
				t.Fatalf("warm containers = %v, want 1", warm)
			}
			time.Sleep(time.Second)
			close(die)
			synctest.Wait()
			time.Sleep(time.Millisecond) // the payload comes after the death
			if got := poolSize(r, "fake/zombie"); got != 1 {
				t.Fatalf("pool holds %d containers, want the dead one not yet noticed", got)
			}
			res, err := r.Run(context.Background(), "fake/zombie", map[string]any{"mode": "echo"})
			if err != nil {
				t.Fatalf("Run() on a warm container that died before the payload: %v; want a retry on a cold one", err)
			}
			if res.Warm || res.Stdout == warm[0] {
				t.Errorf("Run() = container %s, warm %v; want a cold container", res.Stdout, res.Warm)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if p := f.all[warm[0]].payload; p != nil {
				t.Errorf("the dead warm container read the payload %s", p)
			}
		})
	})
	t.Run("died after reading the payload", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeDocker()
			r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/img": 1}))
			synctest.Wait()
			time.Sleep(time.Second)
			creates := f.count("create")
			_, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "silent"})
			if !errors.Is(err, ErrStdoutDecode) {
				t.Fatalf("Run() of a warm container that exits after reading the payload: %v; want %s", err, CodeStdoutDecode)
			}
			synctest.Wait()
			// One create: the pool's replacement, no cold retry.
			if got := f.count("create") - creates; got != 1 {
				t.Errorf("%d containers created during the run, want 1 (the pool's refill): the payload must not run twice", got)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			n := 0
			for _, c := range f.all {
				if c.payload != nil {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d containers read the payload, want 1", n)
			}
		})
	})
}

// A warm container that a run finds dead, having died within a second of
// its start, counts as one that dies at once: the pool backs off instead
// of replacing it at once.
func TestWarmContainerDeadAfterTakeBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		die := make(chan struct{})
		f.programs["fake/zombie:latest"] = zombieProgram(die)
		r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/zombie": 1}),
			WithMemory(0)) // its exit code 137 is then no OOM kill to wait for: a run takes no time
		synctest.Wait()
		close(die) // at once: it died young, but its stream stays open
		synctest.Wait()
		creates := f.count("create")
		for i := range 2 {
			time.Sleep(10 * time.Millisecond) // the run comes after the death
			res, err := r.Run(context.Background(), "fake/zombie", map[string]any{"mode": "echo"})
			if err != nil || res.Warm {
				t.Fatalf("Run() #%d = %+v, %v; want an answer from a cold container", i, res, err)
			}
			synctest.Wait()
		}
		// The first run's take leaves the pool empty, so it wakes the
		// filler at once; whether the filler creates before the run finds
		// the container dead (3 creates) or after (2) is the scheduler's
		// choice. From then on the pool backs off: without the backoff,
		// each run would also get a refill (4).
		if got := f.count("create") - creates; got < 2 || got > 3 {
			t.Errorf("%d containers created during two runs, want 2 cold ones and at most one refill: the pool backs off", got)
		}
	})
}

// A run whose stream ends without an answer is the daemon's failure (a
// docker.* code) when the daemon went away or cut the stream, and the
// agent's (coderunner.stdout.decode) when the container ended by itself.
func TestRunDaemonFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault func(t *testing.T, d *flakyDocker, id string)
		want  Code
		inMsg string
	}{
		{
			name: "daemon stops: socket closed, container stopped, inspect answers on a kept-alive connection",
			fault: func(t *testing.T, d *flakyDocker, id string) {
				d.setDown(t, true, true)
				d.exit(id, 143)
			},
			want:  CodeDockerUnixSocket,
			inMsg: "shutting down",
		},
		{
			name: "daemon crashes: stream cut, container alive, no answer",
			fault: func(t *testing.T, d *flakyDocker, id string) {
				d.setDown(t, true, false)
				d.cut(id)
			},
			want:  CodeDockerUnixSocket,
			inMsg: "went away",
		},
		{
			name:  "stream cut while the container runs",
			fault: func(t *testing.T, d *flakyDocker, id string) { d.cut(id) },
			want:  CodeStreamRead,
			inMsg: "still runs",
		},
		{
			name: "container removed from outside",
			fault: func(t *testing.T, d *flakyDocker, id string) {
				d.fakeDocker.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true})
			},
			want:  CodeStreamRead,
			inMsg: "removed by someone else",
		},
		{
			name:  "the agent dies, the daemon is fine",
			fault: func(t *testing.T, d *flakyDocker, id string) { d.exit(id, 143) },
			want:  CodeStdoutDecode,
			inMsg: "exit code 143",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := newFlakyDocker(t)
				// With an observer, as a server with metrics has: it
				// wraps the client.
				r := newTestRunner(t, d.fakeDocker, WithDockerClient(d), WithObserver(&recorder{}))
				errc := make(chan error, 1)
				go func() {
					_, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "sleep"})
					errc <- err
				}()
				synctest.Wait()
				id := <-d.running
				tt.fault(t, d, id)
				err := <-errc
				if got := ErrorCode(err); got != tt.want {
					t.Errorf("Run() error = %v; want code %s", err, tt.want)
				}
				var e *Error
				if errors.As(err, &e) && !strings.Contains(e.Message, tt.inMsg) {
					t.Errorf("Run() message %q does not say %q", e.Message, tt.inMsg)
				}
				// The daemon comes back; the reaper removes what the
				// run could not.
				d.setDown(t, false, false)
				synctest.Wait()
				if _, err := r.Reap(context.Background()); err != nil {
					t.Errorf("Reap() after the daemon came back: %v", err)
				}
			})
		})
	}
}

// After a daemon restart, which stops every container, the pool notices
// its dead containers, backs off while the daemon is away, and refills by
// itself once it is back.
func TestWarmPoolRefillsAfterDaemonRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFlakyDocker(t)
		r := newTestRunner(t, d.fakeDocker, WithDockerClient(d), WithWarmPool(map[string]int{"fake/img": 3}), WithMaxConcurrentRuns(4))
		synctest.Wait()
		old := warmIDs(d.fakeDocker, r.Instance())
		if len(old) != 3 {
			t.Fatalf("warm containers = %v, want 3", old)
		}
		time.Sleep(time.Minute)
		d.setDown(t, true, false)
		for _, id := range old {
			d.exit(id, 143)
		}
		synctest.Wait()
		if got := poolSize(r, "fake/img"); got != 0 {
			t.Errorf("pool holds %d containers while the daemon is away, want 0", got)
		}
		_, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"})
		if !errors.Is(err, ErrDockerUnixSocket) {
			t.Errorf("Run() while the daemon is away: %v; want %s", err, CodeDockerUnixSocket)
		}
		time.Sleep(10 * time.Second)
		d.setDown(t, false, false)
		// The pool backs off up to poolBackoffMax between attempts.
		time.Sleep(poolBackoffMax)
		synctest.Wait()
		if got := poolSize(r, "fake/img"); got != 3 {
			t.Errorf("pool holds %d containers after the daemon came back, want 3", got)
		}
		for i := range 3 {
			res, err := r.Run(context.Background(), "fake/img", map[string]any{"mode": "echo"})
			if err != nil || !res.Warm {
				t.Errorf("Run() #%d after the restart: %+v, %v; want a warm run", i, res, err)
			}
		}
		// The dead containers could not be removed while the daemon was
		// away: the reaper removes them. (Once the refill is over: the
		// fake lists containers without their creation time, so Reap
		// would take one being created for a leftover.)
		synctest.Wait()
		if n, err := r.Reap(context.Background()); err != nil || n != len(old) {
			t.Errorf("Reap() = %d, %v; want the %d containers left while the daemon was away", n, err, len(old))
		}
	})
}

// An image whose containers die right after they start is backed off, not
// replaced in a loop.
func TestWarmPoolBacksOffContainersThatDieAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.programs["fake/dies:latest"] = func(*fakeProc) (int, bool) { return 1, false }
		newTestRunner(t, f, WithWarmPool(map[string]int{"fake/dies": 2}))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		// One attempt at a time, backing off from 100 ms, doubling:
		// attempts at about 0, 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3 s.
		// Without the backoff: a hundred.
		if got := f.count("create"); got < 5 || got > 9 {
			t.Errorf("%d containers created in 10 s for an image whose containers die at once, want 5 to 9: back off", got)
		}
	})
}

// A warm container that writes before it is given a payload is an agent
// that failed at its start (here: an unknown user): it is not kept as a
// warm container, its image backs off as one whose containers die at once,
// and a run gets the agent's message from a cold container, not a warm
// container wasted first.
func TestWarmPoolDropsContainersThatWriteAtStart(t *testing.T) {
	const msg = "unknown user nosuchuser"
	for _, tc := range []struct {
		name string
		prog fakeProgram
	}{
		{"writes to stderr and exits", func(p *fakeProc) (int, bool) {
			p.write(streamStderr, msg+"\n")
			return 1, false
		}},
		{"writes to stderr and waits", func(p *fakeProc) (int, bool) {
			p.write(streamStderr, msg+"\n")
			p.readPayload()
			return 1, false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeDocker()
				f.programs["fake/baduser"] = tc.prog        // a cold run names it as given
				f.programs["fake/baduser:latest"] = tc.prog // the pool names images in full
				r := newTestRunner(t, f, WithWarmPool(map[string]int{"fake/baduser": 1}))
				time.Sleep(10 * time.Second)
				synctest.Wait()
				if got := poolSize(r, "fake/baduser"); got != 0 {
					t.Errorf("pool holds %d containers of an image whose agent fails at its start, want 0", got)
				}
				// Backing off as in TestWarmPoolBacksOffContainersThatDieAtOnce.
				if got := f.count("create"); got < 5 || got > 9 {
					t.Errorf("%d containers created in 10 s, want 5 to 9: back off", got)
				}
				creates := f.count("create")
				for range 4 {
					_, err := r.Run(context.Background(), "fake/baduser", map[string]any{"mode": "echo"})
					if ErrorCode(err) != CodeAgentStderr || !strings.Contains(err.Error(), msg) {
						t.Errorf("Run() error = %v; want %s with %q", err, CodeAgentStderr, msg)
					}
				}
				// One cold container per run, and at most one attempt of
				// the pool's: no warm container taken and wasted first.
				if got := f.count("create") - creates; got > 5 {
					t.Errorf("%d containers created for 4 runs, want at most 5", got)
				}
			})
		})
	}
}

// Close returns when its context ends, even while a filler is blocked in a
// create; the container that the create makes is removed when it returns.
func TestCloseWhileCreateBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		release := make(chan struct{})
		f.failCreate = func(context.Context, *container.Config) error {
			<-release // a daemon that does not answer, then creates
			return nil
		}
		r, err := New(WithDockerClient(f), WithWarmPool(map[string]int{"fake/img": 1}))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close() with a create blocked = %v; want %v", err, context.DeadlineExceeded)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("Close() returned after %v; want 1s, its context", waited)
		}
		close(release)
		r.pool.wait()
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("second Close() = %v", err)
		}
		if got := f.count("create"); got != 1 {
			t.Errorf("%d creates, want 1", got)
		}
		f.checkClean(t, r.Instance())
	})
}

// The check of a warm container before use is a receive from a channel.
func BenchmarkWarmContainerCheck(b *testing.B) {
	for _, alive := range []bool{true, false} {
		name := "alive"
		if !alive {
			name = "dead"
		}
		b.Run(name, func(b *testing.B) {
			runnerEnd, containerEnd := net.Pipe()
			defer runnerEnd.Close()
			c := &box{stream: types.NewHijackedResponse(runnerEnd, types.MediaTypeMultiplexedStream)}
			done := make(chan struct{})
			c.watch(func() { close(done) })
			if !alive {
				containerEnd.Close()
				<-done
			}
			for b.Loop() {
				if c.dead() == alive {
					b.Fatalf("dead() = %v", alive)
				}
			}
			containerEnd.Close()
			<-done
		})
	}
}
