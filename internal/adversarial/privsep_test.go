package adversarial

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The agent of our images runs as root, non-dumpable, with the
// capabilities KILL, SETGID and SETUID only; the code runs as uid 1000 with
// none. The code can neither write to the agent's descriptors (to forge
// the answer), nor read its memory, nor trace it, nor signal it or PID 1.
func TestAgentSeparation(t *testing.T) {
	tests := []struct {
		id   string
		code string
		// check checks the program's JSON report and returns a note for
		// the table.
		check func(t *testing.T, rt string, got map[string]string) string
	}{
		{
			id: "forge-agent-fd",
			code: `import errno, json, os
agent = os.getppid()
forged = '{"stdout": "forged", "stderr": "", "error": "", "admin": true}\n'
out = {"agent": str(agent)}
for pid in (1, agent):
    for fd in (0, 1, 2):
        p = "/proc/%d/fd/%d" % (pid, fd)
        try:
            with open(p, "w") as f:
                f.write(forged)
            out[p] = "written"
        except OSError as e:
            out[p] = errno.errorcode[e.errno]
print(json.dumps(out))
`,
			check: func(t *testing.T, rt string, got map[string]string) string {
				denied(t, got, func(k string) bool { return strings.Contains(k, "/fd/") }, "EACCES")
				return "open(/proc/{1,AGENT}/fd/{0,1,2}) EACCES for each: PID 1 and the agent run as root, non-dumpable; the answer is the agent's"
			},
		},
		{
			id: "agent-proc",
			code: `import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
agent = os.getppid()
out = {}
def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))
for pid in (1, agent):
    for name in ("environ", "mem", "maps", "auxv", "stack", "syscall", "io", "cmdline"):
        p = "/proc/%d/%s" % (pid, name)
        try:
            with open(p, "rb") as f:
                data = f.read(1 << 16)
            if name == "environ":
                found = [kv for kv in data.decode(errors="replace").split("\0") if "=" in kv]
                out[p] = "read %d bytes, %d variables" % (len(data), len(found))
            else:
                out[p] = "read"
        except OSError as e:
            out[p] = err(e)
    p = "/proc/%d/fd" % pid
    try:
        out[p] = "listed %d" % len(os.listdir(p))
    except OSError as e:
        out[p] = err(e)
    p = "/proc/%d/fd/1 (readlink)" % pid
    try:
        out[p] = "link " + os.readlink("/proc/%d/fd/1" % pid)
    except OSError as e:
        out[p] = err(e)
    # process_vm_readv: one byte at the start of the agent's binary.
    class iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    buf = ctypes.create_string_buffer(1)
    local, remote = iovec(ctypes.cast(buf, ctypes.c_void_p), 1), iovec(0x400000, 1)
    rc = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    out["process_vm_readv %d" % pid] = "read" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
print(json.dumps(out))
`,
			check: func(t *testing.T, rt string, got map[string]string) string {
				// Memory, never (gVisor has no process_vm_readv); under
				// runc, nothing but cmdline.
				denied(t, got, func(k string) bool { return strings.HasSuffix(k, "/mem") }, "EACCES", "EPERM")
				denied(t, got, func(k string) bool { return strings.HasPrefix(k, "process_vm_readv") }, "EACCES", "EPERM", "ENOSYS")
				if rt == runc {
					denied(t, got, func(k string) bool { return !strings.HasSuffix(k, "/cmdline") }, "EACCES", "EPERM")
					return "environ, mem, maps, auxv, stack, syscall, io, fd (list and links), process_vm_readv: denied for PID 1 and the agent; cmdline readable (/code-runner --path /home/glot)"
				}
				// gVisor lets any process read another's environ, maps
				// and auxv and list its fd directory. The agent and PID 1
				// zero the environment they started with, so environ
				// shows no variable.
				var readable []string
				for k, v := range got {
					if strings.HasSuffix(k, "/environ") && !strings.HasSuffix(v, " 0 variables") {
						t.Errorf("%s: %s; want no variable: the agent zeroes its initial environment", k, v)
					}
					if !strings.HasPrefix(v, "E") && !strings.HasPrefix(k, "process_vm_readv") {
						readable = append(readable, strings.TrimPrefix(k, "/proc/"))
					}
				}
				slices.Sort(readable)
				return "mem denied, process_vm_readv ENOSYS; gVisor lets the code read " + strings.Join(readable, ", ") +
					" (environ: zeroes, no variable; fd links: host:[N]; maps and auxv: addresses of a static binary)"
			},
		},
		{
			id: "ptrace-agent",
			code: `import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
agent = os.getppid()
out = {}
for pid in (1, agent):
    for name, req in (("PTRACE_ATTACH", 16), ("PTRACE_SEIZE", 0x4206)):
        rc = libc.ptrace(req, pid, None, None)
        out["%s %d" % (name, pid)] = "attached" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
print(json.dumps(out))
`,
			check: func(t *testing.T, rt string, got map[string]string) string {
				denied(t, got, func(string) bool { return true }, "EPERM")
				return "PTRACE_ATTACH and PTRACE_SEIZE: EPERM for PID 1 and the agent"
			},
		},
		{
			id: "signal-agent",
			code: `import errno, json, os, signal
agent = os.getppid()
out = {}
for pid in (1, agent):
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(pid, sig)
            out["%s %d" % (sig.name, pid)] = "sent"
        except OSError as e:
            out["%s %d" % (sig.name, pid)] = errno.errorcode[e.errno]
print(json.dumps(out))
`,
			check: func(t *testing.T, rt string, got map[string]string) string {
				denied(t, got, func(string) bool { return true }, "EPERM")
				return "SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGSTOP, SIGKILL: EPERM for PID 1 and the agent; the agent's answer"
			},
		},
	}
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)
		for _, tt := range tests {
			t.Run(tt.id, func(t *testing.T) {
				t.Parallel()
				var got map[string]string
				r := probe(t, tg, tt.code, &got)
				if strings.Contains(string(r.body), "forged") {
					t.Fatalf("a forged answer got through: %s", r.detail())
				}
				note := tt.check(t, rt, got)
				within(t, r, 0, execLimit+slowStart)
				record(t, tt.id, rt, r.String()+"; "+note)
			})
		}
	})
}

// denied fails the test unless every entry of got whose key matches has
// one of the errors in want.
func denied(t *testing.T, got map[string]string, match func(string) bool, want ...string) {
	t.Helper()
	n := 0
	for k, v := range got {
		if k == "agent" || !match(k) {
			continue
		}
		n++
		if !slices.Contains(want, v) {
			t.Errorf("%s: %s; want %s", k, v, strings.Join(want, " or "))
		}
	}
	if n == 0 {
		t.Fatalf("no entry to check in %v", got)
	}
}

// A setsid orphan is stopped once the main program has exited and the
// grace period (100 ms) is over, whatever its process group or session:
// the agent kills every process but itself and PID 1 after each command.
func TestOrphans(t *testing.T) {
	const daemon = `import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open("orphan.log", "a") as log:
            for i in range(500):
                print("orphan", i, flush=True)
                log.write("%d\n" % i)
                log.flush()
                time.sleep(0.02)
        os._exit(0)
    os._exit(0)
`
	eachRuntime(t, func(t *testing.T, rt string) {
		tg := start(t, rt)

		// The orphan of the run command writes to the program's stdout
		// every 20 ms: what it writes in the grace period is the
		// program's, and then it is stopped.
		t.Run("setsid-orphan", func(t *testing.T) {
			t.Parallel()
			r := tg.python(context.Background(), daemon+`time.sleep(0.3)
print("main done", flush=True)
`)
			_, after, ok := strings.Cut(r.stdout, "main done\n")
			if r.status != http.StatusOK || r.agentErr != "" || !ok {
				t.Fatalf("want 200 with the main program's output, got %s", r.detail())
			}
			lines := strings.Count(after, "orphan ")
			// 100 ms of grace at one line per 20 ms, and slack for a
			// busy machine; unstopped, it would write 500.
			if lines > 15 {
				t.Errorf("%d lines of the orphan after the main program's exit: want those of the grace period only", lines)
			}
			d := agentDuration(t, r)
			if d > 2*time.Second {
				t.Errorf("the agent took %v: want the main program's 0.3 s and the grace period", d)
			}
			within(t, r, 0, execLimit+slowStart)
			record(t, "setsid-orphan", rt, fmt.Sprintf("%v; %d orphan lines after the main program's exit (grace period 100 ms); agent's duration %.2f s", r, lines, d.Seconds()))
		})

		// The orphan of a build command appends to a file every 20 ms;
		// the run command, which starts after the build and its sweep,
		// sees whether the file still grows.
		t.Run("setsid-orphan-build", func(t *testing.T) {
			t.Parallel()
			r, err := tg.tryRun(context.Background(), pythonImage, map[string]any{
				"language": "python",
				"files": []map[string]string{
					{"name": "main.py", "content": `import os, time
before = os.path.getsize("orphan.log")
time.sleep(0.5)
after = os.path.getsize("orphan.log")
print("grew" if after > before else "still", before, after)
`},
					{"name": "daemon.py", "content": daemon},
				},
				"runInstructions": map[string]any{
					"buildCommands": []string{"python3 daemon.py"},
					"runCommand":    "python3 main.py",
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`^(grew|still) (\d+) (\d+)\n$`).FindStringSubmatch(r.stdout)
			if r.status != http.StatusOK || r.agentErr != "" || m == nil {
				t.Fatalf("want 200 with the run command's report, got %s", r.detail())
			}
			if m[1] != "still" {
				t.Fatalf("orphan.log grew from %s to %s bytes while the run command slept: the build's orphan was not stopped", m[2], m[3])
			}
			within(t, r, 0, execLimit+slowStart)
			n, _ := strconv.Atoi(m[2])
			record(t, "setsid-orphan-build", rt, fmt.Sprintf("%v; the orphan had written %d bytes, then nothing in the 0.5 s the run command watched", r, n))
		})
	})
}
