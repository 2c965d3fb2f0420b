package adversarial

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Signals and processes: the agent kills the program's whole process group
// with SIGKILL at the time limit and answers. The agent and
// PID 1 run as root and the code as uid 1000 with no capability, so the
// code cannot stop or kill them.
func TestProcesses(t *testing.T) {
	tests := []struct {
		id    string
		code  string
		check func(t *testing.T, r response) string
	}{
		{
			id:   "ignore-sigterm",
			code: "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(1)\n",
			check: func(t *testing.T, r response) string {
				expectAgentError(t, r, "Execution time limit exceeded")
				within(t, r, execLimit-2*time.Second, execLimit+slowStart)
				return "SIGKILL for the process group, no SIGTERM to ignore"
			},
		},
		{
			id:   "sigstop-self",
			code: "import os, signal\nprint(\"stopping\", flush=True)\nos.kill(os.getpid(), signal.SIGSTOP)\nprint(\"resumed\")\n",
			check: func(t *testing.T, r response) string {
				expectAgentError(t, r, "Execution time limit exceeded")
				within(t, r, execLimit-2*time.Second, execLimit+slowStart)
				if r.stdout != "stopping\n" {
					t.Fatalf("stdout %q: want the output before the stop", r.stdout)
				}
				return "SIGKILL reaches a stopped process; output before the stop returned"
			},
		},
		{
			id: "stop-agent",
			code: `import os, signal, time
me = os.getpid()
for p in os.listdir("/proc"):
    if p.isdigit() and int(p) not in (me, 1):
        try:
            os.kill(int(p), signal.SIGSTOP)
        except OSError:
            pass
try:
    os.kill(1, signal.SIGSTOP)
except OSError:
    pass
time.sleep(3600)
`,
			check: func(t *testing.T, r response) string {
				expectAgentError(t, r, "Execution time limit exceeded")
				within(t, r, execLimit-2*time.Second, execLimit+slowStart)
				return "PID 1 and the agent run as root: SIGSTOP refused (EPERM); the agent stops the program at its time limit"
			},
		},
		{
			id: "kill-agent",
			code: `import os, signal
me = os.getpid()
refused = 0
for p in os.listdir("/proc"):
    if p.isdigit() and int(p) != me:
        try:
            os.kill(int(p), signal.SIGKILL)
        except PermissionError:
            refused += 1
print("refused", refused)
`,
			check: func(t *testing.T, r response) string {
				if r.status != http.StatusOK || r.agentErr != "" || r.stdout != "refused 2\n" {
					t.Fatalf("want 200 and SIGKILL refused for PID 1 and the agent, got %s", r.detail())
				}
				within(t, r, 0, execLimit+slowStart)
				return "SIGKILL refused (EPERM) for PID 1 and the agent, which run as root; the agent's answer"
			},
		},
		{
			id: "daemonize",
			code: `import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for i in range(600):
            print("daemon", i, flush=True)
            time.sleep(0.1)
    os._exit(0)
time.sleep(0.3)
print("main done", flush=True)
`,
			check: func(t *testing.T, r response) string {
				if r.status != http.StatusOK || r.agentErr != "" || !strings.Contains(r.stdout, "main done\n") {
					t.Fatalf("want 200 with the main process's output, got %s", r.detail())
				}
				// The daemon prints for a minute: the answer comes when the
				// main process exits, not when the daemon does.
				if d := agentDuration(t, r); d > 5*time.Second {
					t.Fatalf("the agent took %v: want the main process's time, under a second", d)
				}
				within(t, r, 0, execLimit+slowStart)
				return "answered when the main process exited; the agent killed the daemon after the grace period"
			},
		},
	}
	eachRuntime(t, func(t *testing.T, rt string) {
		for _, tt := range tests {
			t.Run(tt.id, func(t *testing.T) {
				t.Parallel()
				tg := start(t, rt)
				r := tg.python(context.Background(), tt.code)
				note := tt.check(t, r)
				gone := waitGone(t, tg, 10*time.Second)
				record(t, tt.id, rt, fmt.Sprintf("%v; %s; container gone %.1f s after the answer", r, note, gone.Seconds()))
			})
		}
	})
}
