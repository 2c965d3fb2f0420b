package adversarial

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockerrun/dockerrun/internal/testenv"
)

// defaultParallel is how many attacks run at once unless -parallel says
// otherwise. Most attacks wait on a time limit rather than use a CPU.
const defaultParallel = "4"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", defaultParallel)
	}
	code := m.Run()
	if os.Getenv("DOCKERRUN_UPDATE_SECURITY_DOC") == "1" {
		if code != 0 {
			fmt.Fprintln(os.Stderr, "adversarial: tests failed: docs/security.md not updated")
		} else if err := updateSecurityDoc(); err != nil {
			fmt.Fprintln(os.Stderr, "adversarial: update docs/security.md:", err)
			code = 1
		} else {
			fmt.Fprintln(os.Stderr, "adversarial: docs/security.md updated")
		}
	}
	os.Exit(code)
}

// Runtime names as the daemon knows them.
const (
	runc  = "runc"
	runsc = "runsc"
)

var (
	runtimesOnce sync.Once
	daemonKnows  map[string]bool
	runtimesErr  error
)

// wantedRuntimes returns the runtimes to test, from DOCKERRUN_TEST_RUNTIMES.
func wantedRuntimes() []string {
	if v := strings.Fields(os.Getenv("DOCKERRUN_TEST_RUNTIMES")); len(v) > 0 {
		return v
	}
	return []string{runc, runsc}
}

// checkRuntime skips the test (fails it under CI=true) when the daemon does
// not know runtime rt.
func checkRuntime(t *testing.T, rt string) {
	t.Helper()
	cli := testenv.Docker(t)
	runtimesOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		info, err := cli.Info(ctx)
		if err != nil {
			runtimesErr = err
			return
		}
		daemonKnows = map[string]bool{}
		for name := range info.Runtimes {
			daemonKnows[name] = true
		}
	})
	if runtimesErr != nil {
		t.Fatalf("docker info: %v", runtimesErr)
	}
	if !daemonKnows[rt] {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the daemon has no runtime %q under CI=true (see .ci/setup-docker.sh)", rt)
		}
		t.Skipf("the daemon has no runtime %q; set DOCKERRUN_TEST_RUNTIMES to choose", rt)
	}
}

// eachRuntime runs f as a parallel subtest per runtime.
func eachRuntime(t *testing.T, f func(t *testing.T, rt string)) {
	t.Parallel()
	for _, rt := range wantedRuntimes() {
		t.Run(rt, func(t *testing.T) {
			checkRuntime(t, rt)
			t.Parallel()
			f(t, rt)
		})
	}
}

// eachRuntimeAlone runs f as a subtest per runtime, one after the other and
// before the parallel attacks start, for the checks that measure latency.
func eachRuntimeAlone(t *testing.T, f func(t *testing.T, rt string)) {
	for _, rt := range wantedRuntimes() {
		t.Run(rt, func(t *testing.T) {
			checkRuntime(t, rt)
			f(t, rt)
		})
	}
}

// An attack is one row of the table in docs/security.md.
type attack struct {
	id   string
	what string
}

// attacks lists every attack in the order of the table.
var attacks = []attack{
	{"fork-bomb", "Fork bomb: every process forks as fast as it can for 3 s, while another run goes on"},
	{"fork-bomb-bash", "The classic bash fork bomb :(){ :|:& };: then sleep 3 and echo"},
	{"thread-bomb", "Thread bomb: start threads until the runtime refuses"},
	{"memory-bomb", "Memory bomb: allocate and fill 16 MiB blocks forever (DOCKER_CONTAINER_MEMORY=64 MiB)"},
	{"tmpfs-fill", "Fill /tmp and the work dir /home/glot"},
	{"readonly-root", "Write to /, /etc, /usr/bin, /var/tmp, /proc/sys; execute a file from /tmp and /dev/shm"},
	{"many-files", "Create 100,000 files in the work dir"},
	{"cpu-spin", "Spin on twice as many processes as the host has cores; another run must finish quickly meanwhile"},
	{"output-infinite", "Print lines forever"},
	{"output-no-newline", "Write forever without a newline"},
	{"output-under", "Write 512 bytes less than the output limit"},
	{"output-at", "Write exactly the output limit"},
	{"output-over", "Write one byte more than the output limit"},
	{"output-binary", "Write every byte value (NUL, invalid UTF-8)"},
	{"stderr-flood", "Write gigabytes to stderr"},
	{"agent-stdout-flood", "Flood the container's stdout directly (/proc/1/fd/1), past the agent"},
	{"fake-result", "Write a forged result object to the container's stdout (/proc/1/fd/1)"},
	{"agent-stderr", "Write 256 KiB to the container's stderr (/proc/1/fd/2)"},
	{"forge-agent-fd", "Write a forged result object to the descriptors 0, 1, 2 of PID 1 and of the agent (/proc/PID/fd/N)"},
	{"agent-proc", "Read PID 1's and the agent's environ, mem, maps, auxv, stack, syscall, io, cmdline, fd; process_vm_readv"},
	{"ptrace-agent", "ptrace the agent and PID 1 (PTRACE_ATTACH, PTRACE_SEIZE)"},
	{"signal-agent", "Send SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGSTOP, SIGKILL to the agent and PID 1"},
	{"ignore-sigterm", "Ignore SIGTERM and sleep forever"},
	{"sigstop-self", "Stop itself with SIGSTOP"},
	{"stop-agent", "SIGSTOP every other process, PID 1 and the agent included, then sleep"},
	{"kill-agent", "SIGKILL every other process, PID 1 and the agent included"},
	{"daemonize", "Double-fork a daemon (new session) that outlives the main process"},
	{"setsid-orphan", "A setsid orphan prints every 20 ms after the main program exits"},
	{"setsid-orphan-build", "A build command's setsid orphan appends to a file every 20 ms; the run command watches the file"},
	{"probe-network", "Probe the network: interfaces, DNS, routes, connections out"},
	{"probe-privileges", "Probe privileges: capabilities, NoNewPrivs, seccomp, setuid(0), unshare, mount"},
	{"probe-syscalls", "Make the system calls that must be denied: io_uring_setup, userfaultfd, unshare(CLONE_NEWUSER), keyctl, bpf, perf_event_open, mount, kexec_load, socket(AF_VSOCK)"},
	{"probe-host-info", "Read what /proc and /sys tell about the host: /proc/cmdline, Docker's masked paths and dockerrun's"},
	{"probe-mountinfo", "Look for the host's paths in /proc/self/mountinfo"},
	{"probe-user", "Probe the user: uid, gid, groups"},
	{"probe-docker-socket", "Look for the Docker or containerd socket"},
	{"probe-environment", "Look for the server's secrets in the environment, /proc/1/environ and /proc/1/cmdline"},
	{"api-token", "POST /run and GET /version with no token, an empty one, a wrong one"},
	{"api-huge-body", "A body one byte over SERVER_MAX_BODY_SIZE (8 MiB)"},
	{"api-nested-json", "A payload nested 100,000 levels deep"},
	{"api-wrong-types", "Bodies with wrong types: not JSON, image a number, payload a string or array, two values"},
	{"api-image-not-allowed", "An image that is present but not on RUN_ALLOWED_IMAGES"},
	{"api-registry-host", "Image names with a registry host (docker.io/..., localhost:5000/..., ghcr.io/...)"},
	{"api-image-absent", "A valid image name that is not on the daemon (busybox:latest)"},
	{"api-overload", "20 runs at once against SERVER_WORKER_THREADS=2, SERVER_QUEUE_SIZE=2"},
	{"api-client-disconnect", "The client goes away 1 s into a run that sleeps forever (RUN_MAX_EXECUTION_TIME=60)"},
	{"api-slowloris", "20 connections that send their headers one byte every 300 ms"},
	{"kill9-reap", "The server is killed with SIGKILL mid-run; a new one with the same SERVER_INSTANCE_NAME starts"},
	{"warm-killed", "Every idle warm container killed behind the server's back (docker kill), then twice as many runs at once (RUN_WARM_POOL=python=2)"},
	{"daemon-restart-pool", "dockerd restarts (SIGTERM) while the warm pool is full (RUN_WARM_POOL=python=2)"},
	{"daemon-restart", "dockerd restarts (SIGTERM: it stops the containers) during a run"},
	{"daemon-crash", "dockerd is killed (SIGKILL) during a run, then started again"},
}

// ledger collects the observed outcome of each attack under each runtime.
type ledger struct {
	mu  sync.Mutex
	out map[string]map[string]string // attack id -> runtime -> outcome
}

var observed = &ledger{out: map[string]map[string]string{}}

// record notes the outcome of attack id under runtime rt, for
// docs/security.md. A test records only what it has asserted.
func record(t *testing.T, id, rt, outcome string) {
	t.Helper()
	if !slices.ContainsFunc(attacks, func(a attack) bool { return a.id == id }) {
		t.Fatalf("record: unknown attack %q: add it to attacks", id)
	}
	observed.mu.Lock()
	defer observed.mu.Unlock()
	if observed.out[id] == nil {
		observed.out[id] = map[string]string{}
	}
	observed.out[id][rt] = outcome
	t.Logf("outcome of %s under %s: %s", id, rt, outcome)
}

func (l *ledger) get(id, rt string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.out[id][rt]
	return s, ok
}
