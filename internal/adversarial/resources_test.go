package adversarial

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockerrun/dockerrun/internal/testenv"
)

// The pids limit (DOCKER_CONTAINER_PIDS_LIMIT, default 128) stops a fork
// bomb under runc: fork fails with EAGAIN and the code lives on. Under
// gVisor the pids cgroup counts the sandbox's own host threads, so our
// agent gives the code RLIMIT_NPROC instead (a quarter of the pids limit,
// counted inside the sandbox), and the cgroup's limit is raised to leave
// room for gVisor's threads: fork fails with EAGAIN there too. Either way
// another run on the same server goes on.
func TestForkBomb(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		bomb := tg.goPython(`
import os, time
root = os.getpid()
end = time.time() + 3
failures = 0
while time.time() < end:
    try:
        os.fork()
    except OSError:
        failures += 1
        time.sleep(0.001)
if os.getpid() == root:
    procs = len([p for p in os.listdir("/proc") if p.isdigit()])
    print("survived", failures, procs, flush=True)
os._exit(0)
`)
		time.Sleep(time.Second)
		tg.runNormally("while the fork bomb runs")
		r := <-bomb
		m := regexp.MustCompile(`(?m)^survived (\d+) (\d+)$`).FindStringSubmatch(r.stdout)
		if r.status != http.StatusOK || m == nil {
			t.Fatalf("want 200 with the root process's report, got %s", r.detail())
		}
		failures, _ := strconv.Atoi(m[1])
		procs, _ := strconv.Atoi(m[2])
		// How many are left when the root looks depends on when the
		// children's own 3 s run out; that the root's forks failed
		// shows the bomb reached the limit.
		if procs > 128 || failures == 0 {
			t.Fatalf("%d processes visible at the end, %d of the root's forks refused; want at most the pids limit, 128, and forks refused", procs, failures)
		}
		within(t, r, 3*time.Second, execLimit+slowStart)
		record(t, "fork-bomb", rt, fmt.Sprintf("%v; %d processes at the end (%s), %d of the root's own forks failed with EAGAIN; the other run succeeded", r, procs, processLimit(rt), failures))
	})
}

// processLimit names what limits the code's processes under runtime rt.
func processLimit(rt string) string {
	if rt == runsc {
		return "RLIMIT_NPROC 32 inside the sandbox, from the agent"
	}
	return "pids limit 128"
}

// The classic bash fork bomb, in the bash image.
func TestForkBombBash(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		r := tg.bash(context.Background(), ":(){ :|:& };:\nsleep 3\necho survived\n")
		if r.status != http.StatusOK || r.stdout != "survived\n" || !strings.Contains(r.stderr, "fork: retry: Resource temporarily unavailable") {
			t.Fatalf("want 200, the script surviving and bash's fork retries, got %s", r.detail())
		}
		record(t, "fork-bomb-bash", rt, r.String()+`; bash: "fork: retry: Resource temporarily unavailable" (`+processLimit(rt)+`), and the script went on`)
		within(t, r, 0, execLimit+slowStart)
	})
}

// Threads count against the pids limit (runc) and RLIMIT_NPROC (gVisor)
// too.
func TestThreadBomb(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		r := tg.python(context.Background(), `
import threading, time
n = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        n += 1
except RuntimeError as e:
    print("refused after", n, "threads:", e)
`)
		m := regexp.MustCompile(`^refused after (\d+) threads: can't start new thread`).FindStringSubmatch(r.stdout)
		if r.status != http.StatusOK || m == nil {
			t.Fatalf("want 200 with a refused thread, got %s", r.detail())
		}
		if n, _ := strconv.Atoi(m[1]); n >= 128 {
			t.Fatalf("%d threads started; want fewer than the pids limit, 128", n)
		}
		within(t, r, 0, execLimit+slowStart)
		record(t, "thread-bomb", rt, fmt.Sprintf("%v; %q (%s)", r, strings.TrimSpace(r.stdout), processLimit(rt)))
	})
}

// Memory is limited with no swap. Under runc the kernel's OOM killer picks
// the biggest process, the user's, and the agent reports it; under gVisor
// the whole sandbox is killed and the runner reports limits.memory, from
// Docker's State.OOMKilled or, when Docker's exit event came before its OOM
// event and left the flag unset, from the "oom" event.
func TestMemoryBomb(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		// 64 MiB rather than the default 512 MiB: page faults are slow on
		// a busy machine, and the limit must come well before the time
		// limit.
		tg := start(t, rt, fmt.Sprint("DOCKER_CONTAINER_MEMORY=", 64<<20))
		r := tg.python(context.Background(), `
hold = []
while True:
    hold.append(b"m" * (16 << 20))
`)
		switch {
		case rt == runc:
			// The main process is the shell or, when the shell execs
			// it, python.
			if r.status != http.StatusOK || (r.agentErr != "Exit code: 137" && r.agentErr != "Killed by signal: SIGKILL (9)") {
				t.Fatalf("want 200 with the agent's report of a SIGKILL, got %s", r.detail())
			}
			record(t, "memory-bomb", rt, r.String()+": the kernel's OOM killer chose the program, the agent answered")
		default:
			expect(t, r, http.StatusBadRequest, "limits.memory")
			record(t, "memory-bomb", rt, r.String()+": the host's OOM killer killed the sandbox; Docker's State.OOMKilled or its oom event says why")
		}
		within(t, r, 0, execLimit+slowStart)
	})
}

func TestTmpfsFill(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		r := tg.python(context.Background(), `
import os
for d in ("/tmp", "/home/glot"):
    n = 0
    try:
        with open(os.path.join(d, "fill"), "wb") as f:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
                n += 1
    except OSError as e:
        print(d, n, e.strerror)
`)
		m := regexp.MustCompile(`(?m)^/tmp (\d+) No space left on device\n/home/glot (\d+) No space left on device$`).FindStringSubmatch(r.stdout)
		if r.status != http.StatusOK || r.agentErr != "" || m == nil {
			t.Fatalf("want 200 with ENOSPC in both, got %s", r.detail())
		}
		for _, mib := range m[1:] {
			if n, _ := strconv.Atoi(mib); n > 64 {
				t.Errorf("wrote %d MiB; want at most the tmpfs size, 64 MiB", n)
			}
		}
		within(t, r, 0, execLimit+slowStart)
		record(t, "tmpfs-fill", rt, fmt.Sprintf("%v; ENOSPC after %s MiB in /tmp and %s MiB in /home/glot (size=64m)", r, m[1], m[2]))
	})
}

func TestReadonlyRoot(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		r := tg.python(context.Background(), `
import errno, os, shutil, subprocess
def attempt(name, f):
    try:
        f()
        print(name, "OK")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
def write(path):
    return lambda: open(path, "a").write("x")
attempt("/x", write("/x"))
attempt("/etc/passwd", write("/etc/passwd"))
attempt("/usr/bin/x", write("/usr/bin/x"))
attempt("/var/tmp/x", write("/var/tmp/x"))
attempt("/proc/sys/kernel/hostname", write("/proc/sys/kernel/hostname"))
shutil.copy("/bin/true", "/tmp/t")
os.chmod("/tmp/t", 0o755)
attempt("exec /tmp/t", lambda: subprocess.run(["/tmp/t"], check=True))
shutil.copy("/bin/true", "/dev/shm/t")
os.chmod("/dev/shm/t", 0o755)
attempt("exec /dev/shm/t", lambda: subprocess.run(["/dev/shm/t"], check=True))
shutil.copy("/bin/true", "/home/glot/t")
os.chmod("/home/glot/t", 0o755)
attempt("exec /home/glot/t", lambda: subprocess.run(["/home/glot/t"], check=True))
`)
		if r.status != http.StatusOK || r.agentErr != "" {
			t.Fatalf("want 200, got %s", r.detail())
		}
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				got[line[:i]] = line[i+1:]
			}
		}
		var refused []string
		for _, name := range []string{"/x", "/etc/passwd", "/usr/bin/x", "/var/tmp/x", "/proc/sys/kernel/hostname", "exec /tmp/t", "exec /dev/shm/t"} {
			switch got[name] {
			case "EROFS", "EACCES", "EPERM":
				refused = append(refused, name+": "+got[name])
			default:
				t.Errorf("%s: %q; want EROFS, EACCES or EPERM", name, got[name])
			}
		}
		if got["exec /home/glot/t"] != "OK" {
			t.Errorf("exec from the work dir: %q; want OK (it is mounted exec)", got["exec /home/glot/t"])
		}
		record(t, "readonly-root", rt, fmt.Sprintf("%v; %s; executing from the work dir works", r, strings.Join(refused, ", ")))
	})
}

// Many files cost the daemon and the kernel when the container is removed.
// Under gVisor file creation is slow enough that the agent's time limit
// comes first.
func TestManyFiles(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		r := tg.python(context.Background(), `
import os
os.mkdir("many")
for i in range(100000):
    open("many/%d" % i, "w").close()
print("created", len(os.listdir("many")))
`)
		answered := time.Now()
		// Whether 100,000 files fit in the time limit depends on the
		// runtime (gVisor's file system is slower) and on the machine's
		// load; the run must end either way, and its container go.
		switch {
		case r.status == http.StatusOK && r.agentErr == "" && r.stdout == "created 100000\n":
		case r.status == http.StatusOK && strings.HasPrefix(r.agentErr, "Execution time limit exceeded"):
		default:
			t.Fatalf("want 200 with 100000 files created or the agent's time limit, got %s", r.detail())
		}
		within(t, r, 0, execLimit+slowStart)
		waitGone(t, tg, 10*time.Second)
		record(t, "many-files", rt, fmt.Sprintf("%v; container removed %.1f s after the answer", r, time.Since(answered).Seconds()))
	})
}

// waitGone fails the test unless the server's containers are gone within
// timeout, and returns how long they took.
func waitGone(t *testing.T, tg *target, timeout time.Duration) time.Duration {
	t.Helper()
	return testenv.WaitNoContainers(t, ownerLabel, tg.Owner, timeout)
}

// The CPU quota (DOCKER_CONTAINER_CPUS, default 1) keeps a spinning run to
// one CPU, so that another run on a two-core host still finishes quickly.
// It runs before the parallel attacks, so that they do not disturb the
// measurement.
func TestCPUSpin(t *testing.T) {
	eachRuntimeAlone(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		const wall = 6.0 // seconds of spinning
		spin := tg.goPython(fmt.Sprintf(`
import multiprocessing, os, resource, time
def spin(end):
    while time.time() < end:
        pass
end = time.time() + %g
ps = [multiprocessing.Process(target=spin, args=(end,)) for _ in range(2 * os.cpu_count())]
for p in ps:
    p.start()
for p in ps:
    p.join()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%%d processes, %%.2f CPU seconds" %% (len(ps), ru.ru_utime + ru.ru_stime))
`, wall))
		id := tg.waitRunning(30 * time.Second)
		time.Sleep(2 * time.Second)
		// The host's view: the CPU time the container's cgroup used.
		rate := cpuRate(t, id, 2*time.Second)
		quick := tg.python(context.Background(), `print("ok")`)
		r := <-spin
		if quick.status != http.StatusOK || quick.stdout != "ok\n" {
			t.Fatalf("the other run answered %s", quick.detail())
		}
		bound := 4 * time.Second
		if rt == runsc {
			bound = 8 * time.Second
		}
		if quick.took > bound {
			t.Errorf("the other run took %v while the spinner ran; want at most %v", quick.took.Round(time.Millisecond), bound)
		}
		m := regexp.MustCompile(`^(\d+) processes, [\d.]+ CPU seconds`).FindStringSubmatch(r.stdout)
		if r.status != http.StatusOK || r.agentErr != "" || m == nil {
			t.Fatalf("want 200 with the spinner's report, got %s", r.detail())
		}
		if rate > 1.15 {
			t.Errorf("the spinning container used %.2f CPUs; want at most one", rate)
		}
		record(t, "cpu-spin", rt, fmt.Sprintf("%v; %s processes, %.2f CPUs used as the host's cgroup counts (quota 1); the other run answered in %.1f s", r, m[1], rate, quick.took.Seconds()))
	})
}

// cpuRate returns how many CPUs the container used over d, from its
// cgroup's CPU accounting on the host (cgroup v1 or v2). For a gVisor
// sandbox it counts the sentry, which does the program's work.
func cpuRate(t *testing.T, id string, d time.Duration) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := testenv.Docker(t).ContainerInspect(ctx, id)
	if err != nil || info.State == nil || info.State.Pid == 0 {
		t.Fatalf("inspect %s: %v", id, err)
	}
	read := cgroupCPU(t, info.State.Pid)
	a := read()
	time.Sleep(d)
	b := read()
	return float64(b-a) / float64(d)
}

// cgroupCPU returns a function that reads the CPU time, in nanoseconds,
// of the cgroup of process pid.
func cgroupCPU(t *testing.T, pid int) func() int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c != "cpuacct" {
				continue
			}
			for _, dir := range []string{"cpuacct", "cpu,cpuacct"} {
				file := filepath.Join("/sys/fs/cgroup", dir, parts[2], "cpuacct.usage")
				if _, err := os.Stat(file); err == nil {
					return func() int64 {
						b, err := os.ReadFile(file)
						n, err2 := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
						if err != nil || err2 != nil {
							t.Fatalf("read %s: %v %v", file, err, err2)
						}
						return n
					}
				}
			}
		}
	}
	// cgroup v2: one hierarchy, usage_usec in cpu.stat.
	for _, line := range strings.Split(string(data), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			file := filepath.Join("/sys/fs/cgroup", path, "cpu.stat")
			return func() int64 {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
						n, _ := strconv.ParseInt(v, 10, 64)
						return n * 1000
					}
				}
				t.Fatalf("no usage_usec in %s", file)
				return 0
			}
		}
	}
	t.Fatalf("no CPU accounting for process %d in %s", pid, data)
	return nil
}
