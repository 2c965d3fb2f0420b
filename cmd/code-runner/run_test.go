package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// runIn runs req in a fresh work directory, as the agent would right after
// reading it.
func runIn(t *testing.T, req Request, lim limits) Result {
	t.Helper()
	return runInDir(t, t.TempDir(), req, lim)
}

func runInDir(t *testing.T, dir string, req Request, lim limits) Result {
	t.Helper()
	if len(req.Files) == 0 {
		req.Files = []File{{Name: "input.txt", Content: "file content\n"}}
	}
	return run(context.Background(), &req, dir, lim, time.Now())
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
			want: Result{Error: "Build failed: Exit code: 2\ncompiling\nmain.c:1: error\n"},
		},
		{
			name: "build killed by a signal",
			req:  Request{Files: []File{{Name: "x"}}, RunInstructions: &RunInstructions{BuildCommands: []string{"kill -9 $$"}, RunCommand: "true"}},
			want: Result{Error: "Build failed: Killed by signal: SIGKILL (9)"},
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
			if diff := cmp.Diff(tt.want, got); diff != "" {
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
			wantErr: "Build failed: Output limit exceeded: the build wrote more than 10000 bytes and was stopped",
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
			if strings.HasPrefix(tt.wantErr, "Build failed") {
				out = strings.TrimPrefix(got.Error, tt.wantErr+"\n")
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
	stoppedAfter := regexp.MustCompile(`^(Build failed: )?Execution time limit exceeded: the (program|build) was stopped after ([0-9.]+)(s|ms)`)
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
			wantPrefix: "Build failed: Execution time limit exceeded: the build was stopped after",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got := run(context.Background(), &tt.req, t.TempDir(), limits{maxExecutionTime: 1500 * time.Millisecond}, start)
			elapsed := time.Since(start)
			// The margin for 1.5s is 200ms: the agent stops the program at
			// 1.3s, well before the runner's own deadline.
			if elapsed < 1200*time.Millisecond || elapsed > 1500*time.Millisecond+time.Second {
				t.Errorf("run() returned after %v, want about 1.3s", elapsed)
			}
			if !strings.HasPrefix(got.Error, tt.wantPrefix) || !stoppedAfter.MatchString(got.Error) {
				t.Errorf("run() error = %q, want prefix %q", got.Error, tt.wantPrefix)
			}
			if got.Stdout != tt.wantStdout {
				t.Errorf("run() stdout = %q, want %q", got.Stdout, tt.wantStdout)
			}
			if strings.Contains(tt.name, "build") && !strings.HasSuffix(got.Error, "\ncompiling\n") {
				t.Errorf("run() error = %q, want the build output", got.Error)
			}
		})
	}
}

func TestRunTimeLimitCountsFromStart(t *testing.T) {
	t.Parallel()
	// The request was read 2s ago and the limit is 1s: nothing may run.
	req := Request{Command: "echo ran", Files: []File{{Name: "x"}}}
	got := run(context.Background(), &req, t.TempDir(), limits{maxExecutionTime: time.Second}, time.Now().Add(-2*time.Second))
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
			if diff := cmp.Diff(tt.want, got); diff != "" {
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
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("commandEnv() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKillMargin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit, want time.Duration
	}{
		{limit: 100 * time.Millisecond, want: 50 * time.Millisecond},
		{limit: time.Second, want: 200 * time.Millisecond},
		{limit: 3 * time.Second, want: 300 * time.Millisecond},
		{limit: 10 * time.Second, want: time.Second},
		{limit: time.Minute, want: time.Second},
	}
	for _, tt := range tests {
		if got := killMargin(tt.limit); got != tt.want {
			t.Errorf("killMargin(%v) = %v, want %v", tt.limit, got, tt.want)
		}
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
