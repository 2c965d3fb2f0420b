package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockerrun/dockerrun/internal/protocol"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// runIn runs req in a fresh work directory, as the agent would right after
// reading it.
// ignoreUsage leaves usage out of comparisons; TestRunUsage checks it.
var ignoreUsage = cmpopts.IgnoreFields(Result{}, "Usage")

func runIn(t *testing.T, req Request, lim limits) Result {
	t.Helper()
	return runInDir(t, t.TempDir(), req, lim)
}

func runInDir(t *testing.T, dir string, req Request, lim limits) Result {
	t.Helper()
	if len(req.Files) == 0 {
		req.Files = []File{{Name: "input.txt", Content: "file content\n"}}
	}
	return run(context.Background(), &protocol.AgentRequest{Request: req}, dir, lim, time.Now())
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		needs string // a program the test needs
		req   Request
		want  Result
	}{
		{
			name: "stdout and stderr",
			req:  Request{Command: "echo hi; echo err >&2"},
			want: Result{Stdout: "hi\n", Stderr: "err\n"},
		},
		{
			name: "exit code",
			req:  Request{Command: "echo partial; sh -c 'exit 3'"},
			want: Result{Stdout: "partial\n", Error: "Exit code: 3"},
		},
		{
			name: "killed by SIGKILL",
			req:  Request{Command: "echo before; kill -9 $$"},
			want: Result{Stdout: "before\n", Error: "Killed by signal: SIGKILL (9)"},
		},
		{
			name: "killed by SIGSEGV",
			req:  Request{Command: "kill -SEGV $$"},
			want: Result{Error: "Killed by signal: SIGSEGV (11)"},
		},
		{
			name: "invalid UTF-8 output",
			req:  Request{Command: `printf 'a\377b\303'; printf '\346\227' >&2`},
			want: Result{Stdout: "a\uFFFDb\uFFFD", Stderr: "\uFFFD"},
		},
		{
			name: "stdin delivered",
			req:  Request{Command: "cat; echo; wc -l", Stdin: "line 1\nline 2\n"},
			want: Result{Stdout: "line 1\nline 2\n\n0\n"},
		},
		{
			name: "no stdin is empty stdin",
			req:  Request{Command: "cat; echo end"},
			want: Result{Stdout: "end\n"},
		},
		{
			name: "large stdin the program ignores",
			req:  Request{Command: "echo ignored", Stdin: strings.Repeat("x", 1<<20)},
			want: Result{Stdout: "ignored\n"},
		},
		{
			name: "files are in the work directory",
			req:  Request{Command: "cat main.sh sub/dir/data.txt", Files: []File{{Name: "main.sh", Content: "A\n"}, {Name: "sub/dir/data.txt", Content: "B\n"}}},
			want: Result{Stdout: "A\nB\n"},
		},
		{
			name: "language default",
			req:  Request{Language: "bash", Files: []File{{Name: "main.sh", Content: "read name; echo \"hello $name from $(basename \"$0\")\""}}, Stdin: "glot\n"},
			want: Result{Stdout: "hello glot from main.sh\n"},
		},
		{
			name:  "language default, compiled, killed by a signal",
			needs: "cc",
			req: Request{Language: "c", Files: []File{{Name: "main.c", Content: "#include <stdio.h>\n#include <math.h>\n" +
				"int main(void) { printf(\"%.3f\\n\", sqrt(2.0)); fflush(stdout); volatile int *p = 0; return *p; }\n"}}},
			want: Result{Stdout: "1.414\n", Error: "Killed by signal: SIGSEGV (11)"},
		},
		{
			name: "build then run",
			req: Request{Files: []File{{Name: "x"}}, Stdin: "in", RunInstructions: &RunInstructions{
				BuildCommands: []string{"echo step1 > log; echo noise", "echo step2 >> log; cat > build-stdin"},
				RunCommand:    "cat log; cat; cat build-stdin",
			}},
			want: Result{Stdout: "step1\nstep2\nin"},
		},
		{
			name: "build failure stops before run",
			req: Request{Files: []File{{Name: "x"}}, RunInstructions: &RunInstructions{
				BuildCommands: []string{"echo first", "echo compiling; echo 'main.c:1: error' >&2; exit 2", "touch third"},
				RunCommand:    "echo ran; touch ran",
			}},
			want: Result{Stdout: "compiling\n", Stderr: "main.c:1: error\n", Error: "Exit code: 2"},
		},
		{
			name: "build killed by a signal",
			req:  Request{Files: []File{{Name: "x"}}, RunInstructions: &RunInstructions{BuildCommands: []string{"kill -9 $$"}, RunCommand: "true"}},
			want: Result{Error: "Killed by signal: SIGKILL (9)"},
		},
		{
			name: "unknown language",
			req:  Request{Language: "cobol"},
			want: Result{Error: `unknown language "cobol": give a command or runInstructions`},
		},
		{
			name: "command not found",
			req:  Request{Command: "no-such-command-here"},
			want: Result{Stderr: "/bin/sh: 1: no-such-command-here: not found\n", Error: "Exit code: 127"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(tt.needs); tt.needs != "" && err != nil {
				t.Skipf("needs %s: %v", tt.needs, err)
			}
			dir := t.TempDir()
			got := runInDir(t, dir, tt.req, limits{})
			if got.Duration < 0 || got.Duration > 30*time.Second {
				t.Errorf("run() duration = %v", got.Duration)
			}
			got.Duration = 0
			if strings.Contains(tt.name, "command not found") {
				// The shell's wording varies: dash, bash and busybox differ.
				if !strings.Contains(got.Stderr, "no-such-command-here") {
					t.Errorf("run() stderr = %q, want the command name", got.Stderr)
				}
				got.Stderr = tt.want.Stderr
			}
			if diff := cmp.Diff(tt.want, got, ignoreUsage); diff != "" {
				t.Errorf("run() mismatch (-want +got):\n%s", diff)
			}
			for _, name := range []string{"ran", "third"} {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					t.Errorf("run() ran a command after a failed build (%s exists)", name)
				}
			}
		})
	}
}

func TestRunDuration(t *testing.T) {
	t.Parallel()
	got := runIn(t, Request{Command: "sleep 0.3"}, limits{})
	if got.Duration < 300*time.Millisecond || got.Duration > 5*time.Second {
		t.Errorf("run() duration = %v, want about 300ms", got.Duration)
	}
}

// TestRunDurationIsTheCommands checks that duration is that of the run
// command alone, or of the build command that failed, as glot's agent
// reports it, and with runs that of the build. The bounds tell them apart:
// the build sleeps 0.4 s, the run command 0.1 s.
func TestRunDurationIsTheCommands(t *testing.T) {
	t.Parallel()
	build := func(script string) *RunInstructions {
		return &RunInstructions{BuildCommands: []string{"sleep 0.4", script}, RunCommand: "sleep 0.1"}
	}
	tests := []struct {
		name     string
		req      Request
		min, max time.Duration
	}{
		{name: "run command only", req: Request{RunInstructions: build("true")}, min: 100 * time.Millisecond, max: 490 * time.Millisecond},
		{name: "the failed build command", req: Request{RunInstructions: build("exit 1")}, max: 390 * time.Millisecond},
		{name: "with runs: the whole build", req: Request{RunInstructions: build("true"), Runs: []protocol.RunInput{{}}}, min: 400 * time.Millisecond, max: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := runIn(t, tt.req, limits{})
			if got.Duration < tt.min || got.Duration > tt.max {
				t.Errorf("run() duration = %v, want between %v and %v", got.Duration, tt.min, tt.max)
			}
		})
	}
}

func TestRunOutputLimit(t *testing.T) {
	t.Parallel()
	const limit = 10000
	tests := []struct {
		name    string
		req     Request
		line    string // what the program repeats
		stderr  bool   // the output goes to stderr
		wantErr string
	}{
		{
			name:    "stdout forever",
			req:     Request{Command: "yes hello"},
			line:    "hello\n",
			wantErr: "Output limit exceeded: the program wrote more than 10000 bytes and was stopped",
		},
		{
			name:    "stderr forever",
			req:     Request{Command: "yes oops >&2"},
			line:    "oops\n",
			stderr:  true,
			wantErr: "Output limit exceeded: the program wrote more than 10000 bytes and was stopped",
		},
		{
			name:    "expanding escapes, finite",
			req:     Request{Command: `i=0; while [ $i -lt 900 ]; do printf '\001\002\003\004\005\006\007\010'; i=$((i+1)); done`},
			line:    "\x01\x02\x03\x04\x05\x06\x07\x08",
			wantErr: "Output limit exceeded: the output does not fit in 10000 bytes and was truncated",
		},
		{
			name:    "build output forever",
			req:     Request{Files: []File{{Name: "x"}}, RunInstructions: &RunInstructions{BuildCommands: []string{"yes warning"}, RunCommand: "true"}},
			line:    "warning\n",
			wantErr: "Output limit exceeded: the build wrote more than 10000 bytes and was stopped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			res := runIn(t, tt.req, limits{maxOutputSize: limit})
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("run() took %v to stop the program", d)
			}
			b := res.encode(limit)
			if len(b) >= limit {
				t.Fatalf("encoded result is %d bytes, want under %d", len(b), limit)
			}
			got := decodeResult(t, b)
			if !strings.HasPrefix(got.Error, tt.wantErr) {
				t.Errorf("run() error = %.200q, want prefix %q", got.Error, tt.wantErr)
			}
			out := got.Stdout
			if tt.stderr {
				out = got.Stderr
			}
			if n := jsonLen(out); n < limit/2 {
				t.Errorf("run() kept %d bytes of output (encoded), want at least %d", n, limit/2)
			}
			if want := strings.Repeat(tt.line, limit); !strings.HasPrefix(want, out) {
				t.Errorf("run() output = %.100q..., want a prefix of the program's output", out)
			}
		})
	}
}

func TestRunTimeLimit(t *testing.T) {
	t.Parallel()
	stoppedAfter := regexp.MustCompile(`^Execution time limit exceeded: the (program|build) was stopped after ([0-9.]+)(s|ms)`)
	tests := []struct {
		name       string
		req        Request
		wantStdout string
		wantPrefix string
	}{
		{
			name:       "sleep",
			req:        Request{Command: "echo started; echo warming >&2; sleep 30"},
			wantStdout: "started\n",
			wantPrefix: "Execution time limit exceeded: the program was stopped after",
		},
		{
			name:       "children in the background",
			req:        Request{Command: "sleep 30 & sleep 30 & echo started; wait"},
			wantStdout: "started\n",
			wantPrefix: "Execution time limit exceeded: the program was stopped after",
		},
		{
			name:       "busy loop ignoring SIGTERM",
			req:        Request{Command: "trap '' TERM; echo looping; while :; do :; done"},
			wantStdout: "looping\n",
			wantPrefix: "Execution time limit exceeded: the program was stopped after",
		},
		{
			name: "build counts too",
			req: Request{Files: []File{{Name: "x"}}, RunInstructions: &RunInstructions{
				BuildCommands: []string{"echo compiling; sleep 30"}, RunCommand: "echo ran"}},
			wantStdout: "compiling\n",
			wantPrefix: "Execution time limit exceeded: the build was stopped after",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got := run(context.Background(), &protocol.AgentRequest{Request: tt.req}, t.TempDir(), limits{maxExecutionTime: 1500 * time.Millisecond}, start)
			elapsed := time.Since(start)
			// The agent stops the program at the limit itself; the runner
			// waits dockerrun.AnswerGrace more for the answer.
			if elapsed < 1500*time.Millisecond || elapsed > 1500*time.Millisecond+time.Second {
				t.Errorf("run() returned after %v, want about 1.5s", elapsed)
			}
			if !strings.HasPrefix(got.Error, tt.wantPrefix) || !stoppedAfter.MatchString(got.Error) {
				t.Errorf("run() error = %q, want prefix %q", got.Error, tt.wantPrefix)
			}
			if got.Stdout != tt.wantStdout {
				t.Errorf("run() stdout = %q, want %q", got.Stdout, tt.wantStdout)
			}
		})
	}
}

func TestRunTimeLimitCountsFromStart(t *testing.T) {
	t.Parallel()
	// The request was read 2s ago and the limit is 1s: nothing may run.
	req := Request{Command: "echo ran", Files: []File{{Name: "x"}}}
	got := run(context.Background(), &protocol.AgentRequest{Request: req}, t.TempDir(), limits{maxExecutionTime: time.Second}, time.Now().Add(-2*time.Second))
	if !strings.HasPrefix(got.Error, "Execution time limit exceeded:") || got.Stdout != "" {
		t.Errorf("run() = %+v, want a time limit error and no output", got)
	}
}

// TestRunBackgroundChild checks that a child left behind holding stdout or
// stderr delays the answer by no more than the pipe grace, and is killed.
func TestRunBackgroundChild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		command string
		want    Result
	}{
		{name: "holding stdout", command: "sleep 30 & echo $! > pid; echo done", want: Result{Stdout: "done\n"}},
		{name: "holding stderr", command: "sleep 30 >&2 & echo $! > pid; echo done", want: Result{Stdout: "done\n"}},
		{name: "failing main process", command: "sleep 30 & echo $! > pid; exit 4", want: Result{Error: "Exit code: 4"}},
		{name: "late output of a child is kept within the grace", command: "(echo late; sleep 30) & echo $! > pid",
			want: Result{Stdout: "late\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			start := time.Now()
			got := runInDir(t, dir, Request{Command: tt.command}, limits{})
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("run() took %v with a child holding the pipes", d)
			}
			got.Duration = 0
			if diff := cmp.Diff(tt.want, got, ignoreUsage); diff != "" {
				t.Errorf("run() mismatch (-want +got):\n%s", diff)
			}
			b, err := os.ReadFile(filepath.Join(dir, "pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			waitGone(t, pid)
		})
	}
}

// waitGone waits until pid has exited (it may stay a zombie until whoever
// adopted it reaps it).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return // gone
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return // dead, not yet reaped
		}
		if time.Now().After(deadline) {
			t.Errorf("process %d left behind is still running: %s", pid, stat)
			syscall.Kill(pid, syscall.SIGKILL)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunHome(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{name: "writable home is kept", environ: []string{"PATH=/bin", "HOME=" + dir}, want: []string{"PATH=/bin", "HOME=" + dir}},
		{name: "missing home", environ: []string{"PATH=/bin", "HOME=/nonexistent/home"}, want: []string{"PATH=/bin", "HOME=/work"}},
		{name: "unset home", environ: []string{"PATH=/bin"}, want: []string{"PATH=/bin", "HOME=/work"}},
		{name: "empty home", environ: []string{"HOME=", "PATH=/bin"}, want: []string{"PATH=/bin", "HOME=/work"}},
	}
	if os.Geteuid() != 0 {
		tests = append(tests, struct {
			name    string
			environ []string
			want    []string
		}{name: "read-only home", environ: []string{"HOME=/"}, want: []string{"HOME=/work"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := commandEnv(tt.environ, "/work")
			if diff := cmp.Diff(tt.want, got, ignoreUsage); diff != "" {
				t.Errorf("commandEnv() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimitsFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    limits
		wantErr string
	}{
		{name: "none", want: limits{}},
		{name: "zero", env: map[string]string{envMaxOutputSize: "0", envMaxExecutionTime: "0"}, want: limits{}},
		{name: "both", env: map[string]string{envMaxOutputSize: "100000", envMaxExecutionTime: "10000"},
			want: limits{maxOutputSize: 100000, maxExecutionTime: 10 * time.Second}},
		{name: "spaces", env: map[string]string{envMaxOutputSize: " 42\n"}, want: limits{maxOutputSize: 42}},
		{name: "not a number", env: map[string]string{envMaxOutputSize: "10k"},
			wantErr: `DOCKERRUN_MAX_OUTPUT_SIZE: strconv.ParseInt: parsing "10k": invalid syntax`},
		{name: "negative", env: map[string]string{envMaxExecutionTime: "-1"}, wantErr: "DOCKERRUN_MAX_EXECUTION_TIME_MS: -1 is negative"},
		{name: "too large", env: map[string]string{envMaxExecutionTime: "9223372036854775807"},
			wantErr: "DOCKERRUN_MAX_EXECUTION_TIME_MS: 9223372036854775807 is too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := limitsFromEnv(func(k string) string { return tt.env[k] })
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Fatalf("limitsFromEnv() error = %q, want %q", gotErr, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(limits{})); diff != "" {
				t.Errorf("limitsFromEnv() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunRuns(t *testing.T) {
	t.Parallel()
	// The build appends to a log: each run shows that it was built once.
	build := func(cmds ...string) *RunInstructions {
		return &RunInstructions{BuildCommands: cmds, RunCommand: `cat; echo " $(wc -l < log)"`}
	}
	in := func(stdins ...string) []protocol.RunInput {
		var out []protocol.RunInput
		for _, s := range stdins {
			out = append(out, protocol.RunInput{Stdin: s})
		}
		return out
	}
	tests := []struct {
		name string
		req  Request
		lim  limits
		want Result
	}{
		{
			name: "built once, run per entry",
			req:  Request{RunInstructions: build("echo built >> log; echo warning >&2"), Runs: in("a", "b", "c")},
			want: Result{Stderr: "warning\n", Runs: []RunResult{{Stdout: "a 1\n"}, {Stdout: "b 1\n"}, {Stdout: "c 1\n"}}},
		},
		{
			name: "nothing to build",
			req:  Request{Command: "cat", Runs: in("x", "")},
			want: Result{Runs: []RunResult{{Stdout: "x"}, {}}},
		},
		{
			name: "build fails: its output and exit code, no runs",
			req:  Request{RunInstructions: build("echo compiling; echo 'main.c:1: error' >&2; exit 1", "touch ran"), Runs: in("a")},
			want: Result{Stdout: "compiling\n", Stderr: "main.c:1: error\n", Error: "Exit code: 1", Runs: []RunResult{}},
		},
		{
			name: "a failing run does not stop the next",
			req: Request{Command: `read x; case $x in fail) echo no >&2; exit 3;; kill) kill -9 $$;; *) echo "ok $x";; esac`,
				Runs: in("1", "fail", "kill", "4")},
			want: Result{Runs: []RunResult{
				{Stdout: "ok 1\n"}, {Stderr: "no\n", Error: "Exit code: 3"},
				{Error: "Killed by signal: SIGKILL (9)"}, {Stdout: "ok 4\n"},
			}},
		},
		{
			name: "the output limit covers the whole answer",
			req:  Request{Command: "cat", Runs: in(strings.Repeat("x", 600), strings.Repeat("y", 600), "z")},
			lim:  limits{maxOutputSize: 1000},
			want: Result{Runs: []RunResult{
				{Stdout: strings.Repeat("x", 600)},
				{Stdout: strings.Repeat("y", 400), Error: "Output limit exceeded: the program was stopped when the answer reached 1000 bytes of output"},
				{Error: "Output limit exceeded: the program was not run: the answer already holds 1000 bytes of output"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			got := runInDir(t, dir, tt.req, tt.lim)
			if got.Usage == nil {
				t.Errorf("run() usage = nil, want the build's")
			}
			got.Duration = 0
			for i := range got.Runs {
				got.Runs[i].Duration, got.Runs[i].Usage = 0, protocol.Usage{}
			}
			if diff := cmp.Diff(tt.want, got, ignoreUsage); diff != "" {
				t.Errorf("run() mismatch (-want +got):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
				t.Errorf("run() ran a build command after a failed one")
			}
		})
	}
}

// TestRunRunsTimeLimit checks that a run stopped at its own time limit does
// not stop the next, and that runs left when the request's limit is reached
// are reported as not run.
func TestRunRunsTimeLimit(t *testing.T) {
	t.Parallel()
	req := Request{
		Command: `read x; if [ "$x" = sleep ]; then echo sleeping; sleep 30; fi; echo "done $x"`,
		Runs: []protocol.RunInput{
			{Stdin: "1"}, {Stdin: "sleep", ExecutionTime: 300 * time.Millisecond}, {Stdin: "3"},
			{Stdin: "sleep"}, {Stdin: "5"},
		},
	}
	start := time.Now()
	got := run(context.Background(), &protocol.AgentRequest{Request: req}, t.TempDir(), limits{maxExecutionTime: 3 * time.Second}, start)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("run() took %v, want under the 3s limit", d)
	}
	if len(got.Runs) != 5 {
		t.Fatalf("run() has %d runs, want 5: %+v", len(got.Runs), got)
	}
	if r := got.Runs[1]; r.Duration < 300*time.Millisecond || r.Duration > 2*time.Second {
		t.Errorf("run 1 took %v, want about its 300ms limit", r.Duration)
	}
	for i, r := range got.Runs {
		got.Runs[i].Error = regexp.MustCompile(`after [0-9.]+m?s$`).ReplaceAllString(r.Error, "after T")
		got.Runs[i].Duration, got.Runs[i].Usage = 0, protocol.Usage{}
	}
	want := []RunResult{
		{Stdout: "done 1\n"},
		{Stdout: "sleeping\n", Error: "Execution time limit exceeded: the program was stopped after T"},
		{Stdout: "done 3\n"},
		{Stdout: "sleeping\n", Error: "Execution time limit exceeded: the program was stopped after T"},
		{Error: "Execution time limit exceeded: the program was not run: the time limit of the request was reached before"},
	}
	if diff := cmp.Diff(want, got.Runs); diff != "" {
		t.Errorf("run() runs mismatch (-want +got):\n%s", diff)
	}
}

// TestRunRequestLimits checks that limits in the request lower the
// environment's, and never raise them.
func TestRunRequestLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     limits
		req     *protocol.Limits
		wantLim limits
	}{
		{name: "none", env: limits{maxOutputSize: 100, maxExecutionTime: time.Second}, wantLim: limits{maxOutputSize: 100, maxExecutionTime: time.Second}},
		{name: "lower", env: limits{maxOutputSize: 100, maxExecutionTime: time.Second},
			req:     &protocol.Limits{OutputSize: 50, ExecutionTime: 500 * time.Millisecond, Memory: 1 << 20},
			wantLim: limits{maxOutputSize: 50, maxExecutionTime: 500 * time.Millisecond}},
		{name: "higher is ignored", env: limits{maxOutputSize: 100, maxExecutionTime: time.Second},
			req:     &protocol.Limits{OutputSize: 500, ExecutionTime: 5 * time.Second},
			wantLim: limits{maxOutputSize: 100, maxExecutionTime: time.Second}},
		{name: "no limit in the environment", req: &protocol.Limits{OutputSize: 50, ExecutionTime: time.Second},
			wantLim: limits{maxOutputSize: 50, maxExecutionTime: time.Second}},
	}
	for _, tt := range tests {
		if got := tt.env.lower(tt.req); got != tt.wantLim {
			t.Errorf("%s: lower() = %+v, want %+v", tt.name, got, tt.wantLim)
		}
	}

	// End to end: a sleeping program is stopped at the request's limit.
	req := &protocol.AgentRequest{Request: Request{Command: "echo started; sleep 30"}, Limits: &protocol.Limits{ExecutionTime: time.Second}}
	start := time.Now()
	got := run(context.Background(), req, t.TempDir(), limits{maxExecutionTime: time.Minute}, start)
	if d := time.Since(start); d < 700*time.Millisecond || d > 3*time.Second {
		t.Errorf("run() returned after %v, want about 800ms", d)
	}
	if !strings.HasPrefix(got.Error, "Execution time limit exceeded:") || got.Stdout != "started\n" {
		t.Errorf("run() = %+v, want the time limit and the output so far", got)
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	// The shell holds 64 MiB in a variable, then burns some CPU.
	const size = 64 << 20
	script := fmt.Sprintf(`x=$(head -c %d /dev/zero | tr '\0' a); echo ${#x}; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done`, size)
	got := runIn(t, Request{Command: script}, limits{})
	if got.Error != "" || got.Stdout != fmt.Sprintf("%d\n", size) {
		t.Fatalf("run() = %.200v", got)
	}
	u := got.Usage
	if u == nil || u.Memory < size {
		t.Errorf("run() usage = %+v, want memory at least %d bytes", u, size)
	}
	if u != nil && (u.CPUTime <= 0 || u.CPUTime > got.Duration+time.Second) {
		t.Errorf("run() usage = %+v, want CPU time above 0 and about the duration %v at most", u, got.Duration)
	}
}
