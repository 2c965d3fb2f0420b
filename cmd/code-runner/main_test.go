package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// helperEnv makes the test binary act as something else, see TestMain.
const helperEnv = "CODE_RUNNER_TEST_HELPER"

// TestMain lets tests run this binary as a helper process:
//
//	init   a stand-in for PID 1 (a child subreaper) running initMain; its
//	       agent is this binary again, in mode agent. It reports the zombies
//	       left among its children on stderr after the agent exits.
//	agent  agentMain with the real stdin, stdout and stderr.
//	reap   reapUntil on a shell that leaves orphans behind.
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "init":
		becomeSubreaper()
		os.Setenv(helperEnv, "agent")
		code := initMain(os.Args, os.Stdin, os.Stdout, os.Stderr)
		fmt.Fprintf(os.Stderr, "zombies=%d\n", zombieChildren())
		os.Exit(code)
	case "scrub":
		scrubEnviron()
		environ, err := os.ReadFile("/proc/self/environ")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Printf("%q %q\n", bytes.Trim(environ, "\x00"), os.Getenv("SCRUB_ME"))
		os.Exit(0)
	case "agent":
		os.Exit(agentMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
	case "reap":
		becomeSubreaper()
		pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", os.Getenv("REAP_SCRIPT")}, &syscall.ProcAttr{
			Files: []uintptr{os.Stdin.Fd(), os.Stdout.Fd(), os.Stderr.Fd()},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "fork:", err)
			os.Exit(3)
		}
		ws, reaped, err := reapUntil(pid)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reapUntil:", err)
			os.Exit(3)
		}
		fmt.Printf("status=%d reaped=%d zombies=%d\n", exitCode(ws), reaped, zombieChildren())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// becomeSubreaper makes this process adopt orphaned descendants, as PID 1
// does in a container.
func becomeSubreaper() {
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "prctl(PR_SET_CHILD_SUBREAPER):", errno)
		os.Exit(3)
	}
}

// zombieChildren counts this process's children that have exited but were not
// reaped.
func zombieChildren() int {
	me := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:])) // state, ppid, ...
		if len(fields) > 1 && fields[0] == "Z" && fields[1] == me {
			n++
		}
	}
	return n
}

func helper(t *testing.T, mode string, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run helper: %v", err)
	}
	return outBuf.String(), errBuf.String(), cmd.ProcessState.ExitCode()
}

func TestReapUntil(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
		want   string
	}{
		{
			name:   "orphans are reaped, the main status is kept",
			script: `sh -c "sleep 0.1 &"; sh -c "sleep 0.1 & sleep 0.1 &"; sleep 0.5; exit 7`,
			want:   "status=7 reaped=3 zombies=0\n",
		},
		{
			name:   "main killed by a signal",
			script: `sh -c "sleep 0.1 &"; sleep 0.3; kill -9 $$`,
			want:   "status=137 reaped=1 zombies=0\n",
		},
		{
			name:   "no orphans",
			script: `exit 0`,
			want:   "status=0 reaped=0 zombies=0\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := helper(t, "reap", "", []string{"REAP_SCRIPT=" + tt.script})
			if code != 0 || stderr != "" {
				t.Fatalf("helper exited %d: %s", code, stderr)
			}
			if diff := cmp.Diff(tt.want, stdout); diff != "" {
				t.Errorf("reapUntil() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInitMain runs the agent the way it runs as PID 1 in a container: the
// init re-executes itself as the agent, which answers on the shared stdout,
// while the init reaps the orphans the user's program left.
func TestInitMain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	req := `{"command":"sh -c 'sleep 0.1 &'; sleep 0.4; echo done; exit 5","files":[{"name":"main.sh","content":""}]}`
	stdout, stderr, code := helper(t, "init", req, nil, "--path", dir)
	if code != 0 {
		t.Fatalf("init exited %d, stderr %q", code, stderr)
	}
	if stderr != "zombies=0\n" {
		t.Errorf("init stderr = %q, want %q", stderr, "zombies=0\n")
	}
	var got Result
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("init stdout %q: %v", stdout, err)
	}
	got.Duration = 0
	if diff := cmp.Diff(Result{Stdout: "done\n", Error: "Exit code: 5"}, got, ignoreUsage); diff != "" {
		t.Errorf("initMain() mismatch (-want +got):\n%s", diff)
	}
}

func TestAgentMain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		stdin      string
		wantCode   int
		wantResult *Result // nil: nothing on stdout
		wantStderr string
	}{
		{
			name:       "runs the request in --path",
			args:       []string{"--path", "WORKDIR"},
			stdin:      `{"language":"bash","files":[{"name":"main.sh","content":"pwd; cat data/x"},{"name":"data/x","content":"x\n"}]}`,
			wantResult: &Result{Stdout: "WORKDIR\nx\n"},
		},
		{
			name:       "bad request is a result, not an agent failure",
			args:       []string{"--path", "WORKDIR"},
			stdin:      `{"language":"python","files":[{"name":"../../etc/passwd","content":"x"}]}`,
			wantResult: &Result{Error: `file name "../../etc/passwd" has a ".." component`},
		},
		{
			name:       "not JSON",
			args:       []string{"--path", "WORKDIR"},
			stdin:      "print('hi')",
			wantResult: &Result{Error: "decode request: invalid character 'p' looking for beginning of value"},
		},
		{
			name:       "empty stdin",
			args:       []string{"--path", "WORKDIR"},
			wantResult: &Result{Error: "empty request: expected a JSON object on stdin"},
		},
		{
			name:       "bad limit is an agent failure",
			args:       []string{"--path", "WORKDIR"},
			env:        map[string]string{envMaxOutputSize: "lots"},
			stdin:      `{"command":"true","files":[{"name":"x"}]}`,
			wantCode:   1,
			wantStderr: "code-runner: DOCKERRUN_MAX_OUTPUT_SIZE: strconv.ParseInt: parsing \"lots\": invalid syntax\n",
		},
		{
			name:       "missing work directory",
			args:       []string{"--path", "WORKDIR/missing"},
			stdin:      `{"command":"true","files":[{"name":"x"}]}`,
			wantResult: &Result{Error: "open work directory WORKDIR/missing: no such file or directory"},
		},
		{
			name:       "unexpected argument",
			args:       []string{"extra"},
			wantCode:   2,
			wantStderr: "code-runner: unexpected arguments: [\"extra\"]\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "WORKDIR", dir)
			}
			var stdout, stderr bytes.Buffer
			code := agentMain(args, strings.NewReader(tt.stdin), &stdout, &stderr, func(k string) string { return tt.env[k] })
			if code != tt.wantCode {
				t.Errorf("agentMain() = %d, want %d", code, tt.wantCode)
			}
			if got, want := stderr.String(), strings.ReplaceAll(tt.wantStderr, "WORKDIR", dir); got != want {
				t.Errorf("agentMain() stderr = %q, want %q", got, want)
			}
			if tt.wantResult == nil {
				if stdout.Len() != 0 {
					t.Errorf("agentMain() stdout = %q, want nothing", stdout.String())
				}
				return
			}
			got := decodeResult(t, stdout.Bytes())
			got.Duration = 0
			want := *tt.wantResult
			want.Stdout = strings.ReplaceAll(want.Stdout, "WORKDIR", dir)
			want.Error = strings.ReplaceAll(want.Error, "WORKDIR", dir)
			if diff := cmp.Diff(want, got, ignoreUsage); diff != "" {
				t.Errorf("agentMain() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAgentMainOutputLimit checks the limit end to end: what the agent writes
// stays under DOCKERRUN_MAX_OUTPUT_SIZE.
func TestAgentMainOutputLimit(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	env := map[string]string{envMaxOutputSize: "5000", envMaxExecutionTime: "20000"}
	req := `{"command":"while :; do printf '\\001\"\\\\<>&\\303\\251\\377'; done","files":[{"name":"x"}]}`
	code := agentMain([]string{"--path", t.TempDir()}, strings.NewReader(req), &stdout, &stderr, func(k string) string { return env[k] })
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("agentMain() = %d, stderr %q", code, stderr.String())
	}
	if stdout.Len() >= 5000 {
		t.Errorf("agentMain() wrote %d bytes, want under 5000", stdout.Len())
	}
	got := decodeResult(t, stdout.Bytes())
	if !strings.HasPrefix(got.Error, "Output limit exceeded: the program wrote more than 5000 bytes and was stopped") {
		t.Errorf("agentMain() error = %q", got.Error)
	}
	if want := strings.Repeat("\x01\"\\<>&é\uFFFD", 5000); len(got.Stdout) < 500 || !strings.HasPrefix(want, got.Stdout) {
		t.Errorf("agentMain() stdout = %q, want a long prefix of the output", got.Stdout)
	}
}

// TestAgentMainRequestOutputLimit checks that a request that lowers the output
// size gets an answer cut to its own size, not to the environment's: the
// runner reads no more than the lowered size, so a longer answer would be
// lost.
func TestAgentMainRequestOutputLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  string
	}{
		{
			name: "without runs",
			req:  `{"command":"head -c 5000 /dev/zero | tr '\\0' x","files":[{"name":"x"}],"limits":{"output_size":1000}}`,
		},
		{
			name: "with runs",
			req:  `{"command":"cat; head -c 5000 /dev/zero | tr '\\0' x","files":[{"name":"x"}],"runs":[{"stdin":"a"},{"stdin":"b"}],"limits":{"output_size":1000}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			env := map[string]string{envMaxOutputSize: "100000", envMaxExecutionTime: "20000"}
			code := agentMain([]string{"--path", t.TempDir()}, strings.NewReader(tt.req), &stdout, &stderr, func(k string) string { return env[k] })
			if code != 0 || stderr.Len() != 0 {
				t.Fatalf("agentMain() = %d, stderr %q", code, stderr.String())
			}
			if stdout.Len() >= 1000 {
				t.Errorf("agentMain() wrote %d bytes, want under the request's 1000", stdout.Len())
			}
			got := decodeResult(t, stdout.Bytes())
			errs := got.Error
			for _, r := range got.Runs {
				errs += "\n" + r.Error
			}
			if !strings.Contains(errs, "Output limit exceeded") || !strings.Contains(errs, "1000 bytes") {
				t.Errorf("agentMain() errors = %q, want the output limit of 1000 bytes", errs)
			}
		})
	}
}
