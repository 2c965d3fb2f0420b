package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// DockerdOptions say how to start a private Docker daemon.
type DockerdOptions struct {
	// Args are added to dockerd's command line, for example
	// "--host", "tcp://127.0.0.1:2376", "--tlsverify", ... to listen on TCP
	// as well as on its own unix socket.
	Args []string
}

// Dockerd is a Docker daemon of its own, started by a test for what must
// not happen to the shared one: restarts, kills, a TCP listener with TLS, a
// second engine standing in for a second host. It has its own socket, data
// root, exec root (and so its own containerd) and pid file, its own bridge
// interface and no iptables rules, and the runtime "runsc" when runsc is installed. Its
// containers use network mode "none", as the runner's do by default.
type Dockerd struct {
	dir string // data root and configuration, under /var/lib (overlay2 needs a real file system)
	run string // exec root and socket, short: unix socket paths are limited to 108 bytes
	// bridge is the daemon's own bridge interface. Not "--bridge none":
	// dockerd then deletes docker0, the shared daemon's bridge, which
	// every `docker run` with the default network needs.
	bridge string
	args   []string
	log    *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartDockerd starts a private daemon and waits until it answers. It is
// stopped and its files are removed when the test ends. It fails the test
// (skips it outside CI) when there is no dockerd binary, and fails it when
// the daemon does not come up.
func StartDockerd(t testing.TB, opts DockerdOptions) *Dockerd {
	t.Helper()
	Docker(t) // the shared engine: images come from there
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dockerd not found under CI=true (see .ci/setup-docker.sh): %v", err)
		}
		t.Skipf("dockerd not found, skipping: %v", err)
	}
	id := strings.ToLower(rand.Text()[:8])
	d := &Dockerd{
		dir:    filepath.Join("/var/lib/dockerrun-test", id),
		run:    filepath.Join("/run", "drt-"+id),
		bridge: "drt-" + id, // interface names are at most 15 bytes
	}
	if out, err := exec.Command("ip", "link", "add", d.bridge, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("private dockerd: create its bridge %s: %v: %s", d.bridge, err, out)
	}
	for _, p := range []string{d.dir, d.run} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatalf("private dockerd: %v", err)
		}
	}
	conf := map[string]any{}
	if runsc, err := exec.LookPath("runsc"); err == nil {
		conf["runtimes"] = map[string]any{"runsc": map[string]any{"path": runsc, "runtimeArgs": []string{"--network=none"}}}
	}
	b, _ := json.Marshal(conf)
	confPath := filepath.Join(d.dir, "daemon.json")
	if err := os.WriteFile(confPath, b, 0o600); err != nil {
		t.Fatalf("private dockerd: %v", err)
	}
	d.log, err = os.Create(filepath.Join(d.dir, "dockerd.log"))
	if err != nil {
		t.Fatalf("private dockerd: %v", err)
	}
	d.args = append([]string{bin,
		"--host", d.Host(),
		"--data-root", filepath.Join(d.dir, "root"),
		"--exec-root", filepath.Join(d.run, "exec"),
		"--pidfile", filepath.Join(d.run, "docker.pid"),
		"--config-file", confPath,
		"--bridge", d.bridge, "--iptables=false", "--ip-masq=false", "--ip6tables=false",
		"--storage-driver", "overlay2",
	}, opts.Args...)
	t.Cleanup(func() { d.cleanup(t) })
	d.Start(t)
	return d
}

// Host returns the daemon's unix socket address, "unix:///run/drt-.../docker.sock".
func (d *Dockerd) Host() string { return "unix://" + filepath.Join(d.run, "docker.sock") }

// Env returns DOCKER_HOST for a process that should use this daemon.
func (d *Dockerd) Env() []string { return []string{"DOCKER_HOST=" + d.Host()} }

// Client returns a client of this daemon, closed when the test ends.
func (d *Dockerd) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost(d.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("private dockerd client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Logs returns what the daemon has logged so far.
func (d *Dockerd) Logs() string {
	b, _ := os.ReadFile(d.log.Name())
	return string(b)
}

// Start starts the daemon (again, after [Dockerd.Stop] or [Dockerd.Kill],
// with the same data) and waits up to a minute for it to answer.
func (d *Dockerd) Start(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		t.Fatalf("private dockerd: already running")
	}
	cmd := exec.Command(d.args[0], d.args[1:]...)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	// Its own process group, so that a test's Ctrl-C does not reach it
	// before the cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start private dockerd: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	d.cmd, d.done = cmd, done

	c, err := client.NewClientWithOpts(client.WithHost(d.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("private dockerd client: %v", err)
	}
	defer c.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("private dockerd exited at start-up: %v\n%s", cmd.ProcessState, tail(d.Logs(), 30))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("private dockerd did not answer within a minute: %v\n%s", err, tail(d.Logs(), 30))
		}
	}
}

// Stop stops the daemon with SIGTERM, as a service manager does (it stops
// its containers first), and waits up to a minute for it to exit.
func (d *Dockerd) Stop(t testing.TB) {
	t.Helper()
	if err := d.signal(syscall.SIGTERM, time.Minute); err != nil {
		t.Fatalf("stop private dockerd: %v", err)
	}
}

// Kill kills the daemon and its containerd with SIGKILL, as a crash of the
// engine would, and waits for the daemon to exit. The containers' shims
// live on until the next start, which cleans them up. (A dockerd started
// while the old containerd still runs times out waiting for it.)
func (d *Dockerd) Kill(t testing.TB) {
	t.Helper()
	if err := d.signal(syscall.SIGKILL, 10*time.Second); err != nil {
		t.Fatalf("kill private dockerd: %v", err)
	}
	d.killContainerd()
}

// killContainerd kills the containerd that the daemon started, if it still
// runs, and waits up to 10 s for it to go.
func (d *Dockerd) killContainerd() {
	b, err := os.ReadFile(filepath.Join(d.run, "exec", "containerd", "containerd.pid"))
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 1 {
		return
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
}

// Restart stops the daemon with SIGTERM and starts it again.
func (d *Dockerd) Restart(t testing.TB) {
	t.Helper()
	d.Stop(t)
	d.Start(t)
}

// signal sends sig to the running daemon and waits up to timeout for it to
// exit. A daemon that is not running is not an error.
func (d *Dockerd) signal(sig syscall.Signal, timeout time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return nil
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("dockerd did not exit within %v of %v; killed", timeout, sig)
	}
	d.cmd, d.done = nil, nil
	return nil
}

// LoadImages copies images from the shared daemon into this one (docker
// save | docker load through the API).
func (d *Dockerd) LoadImages(t testing.TB, tags ...string) {
	t.Helper()
	src := Docker(t)
	dst := d.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rc, err := src.ImageSave(ctx, tags)
	if err != nil {
		t.Fatalf("save %v from the shared daemon: %v", tags, err)
	}
	defer rc.Close()
	resp, err := dst.ImageLoad(ctx, rc)
	if err != nil {
		t.Fatalf("load %v into the private daemon: %v", tags, err)
	}
	defer resp.Body.Close()
	// The answer is a JSON stream; an error is one of its messages.
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("load %v into the private daemon: %v", tags, err)
		}
		if m.Error != "" {
			t.Fatalf("load %v into the private daemon: %s", tags, m.Error)
		}
	}
}

// cleanup stops the daemon (killing it if it will not stop), then unmounts
// and removes its files.
func (d *Dockerd) cleanup(t testing.TB) {
	if err := d.signal(syscall.SIGTERM, time.Minute); err != nil {
		t.Logf("private dockerd: %v", err)
	}
	d.log.Close()
	d.killContainerd()
	for _, root := range []string{d.run, d.dir} {
		unmountUnder(root)
		if err := os.RemoveAll(root); err != nil {
			t.Logf("private dockerd: remove %s: %v", root, err)
		}
	}
	if out, err := exec.Command("ip", "link", "del", d.bridge).CombinedOutput(); err != nil {
		t.Logf("private dockerd: remove its bridge %s: %v: %s", d.bridge, err, out)
	}
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
