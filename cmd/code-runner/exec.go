package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/dockerrun/dockerrun/internal/protocol"
)

// pipeGrace is how long the agent keeps reading stdout and stderr after the
// user's main process has exited, for children it left behind. Then it kills
// the process group and stops reading.
const pipeGrace = 100 * time.Millisecond

var (
	errOutputLimit = errors.New("output limit exceeded")
	errTimeLimit   = errors.New("execution time limit exceeded")
)

// command is one shell script to run.
type command struct {
	script string
	dir    string
	env    []string
	// stdin is fed to the script; nil means no input (/dev/null).
	stdin io.Reader
	// maxOutput caps stdout and stderr together, in bytes; 0 means no cap.
	maxOutput int64
	// started, if not nil, gets the time the process was started.
	started *int64
	// sb says as whom the script runs and what is stopped after it.
	sb sandbox
}

// outcome is what running a command gave.
type outcome struct {
	stdout, stderr []byte
	// status is the wait status of the main process; valid when err is nil.
	status syscall.WaitStatus
	// limit is errOutputLimit or errTimeLimit when the agent stopped the
	// command for that reason, else nil.
	limit error
	// err is set when the command could not be started or waited for.
	err error
	// usage is what the main process and the children it waited for used.
	usage protocol.Usage
}

// failed reports whether the command did not succeed.
func (o outcome) failed() bool {
	return o.err != nil || o.limit != nil || !o.status.Exited() || o.status.ExitStatus() != 0
}

// describe says how the command ended, for the result's error field; "" for
// success. what names the command ("program" or "build").
func (o outcome) describe(what string, lim limits, elapsed time.Duration) string {
	switch {
	case o.limit == errOutputLimit:
		return fmt.Sprintf("%s the %s wrote more than %d bytes and was stopped", outputLimitPrefix, what, lim.maxOutputSize)
	case o.limit == errTimeLimit:
		return fmt.Sprintf("%s the %s was stopped after %v", timeLimitPrefix, what, elapsed.Round(10*time.Millisecond))
	case o.err != nil:
		return o.err.Error()
	case o.status.Signaled():
		return "Killed by signal: " + signalName(o.status.Signal())
	case o.status.Exited() && o.status.ExitStatus() != 0:
		return fmt.Sprintf("Exit code: %d", o.status.ExitStatus())
	}
	return ""
}

const (
	outputLimitPrefix = protocol.ErrorOutputLimit
	timeLimitPrefix   = protocol.ErrorTimeLimit
)

// runCommand runs c.script with sh -c (or directly, see startCommand) in its
// own process group. The whole
// group is killed when ctx is done (ctx's cause, if errTimeLimit, is reported
// as the limit), when the output cap is reached, and in any case once the main
// process has exited and the pipe grace has passed; then, where the sandbox
// allows, every other process of the user's code too, whatever its group.
func runCommand(ctx context.Context, c command) outcome {
	if ctx.Err() != nil {
		// Out of time before it could start.
		return outcome{limit: errTimeLimit}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	capt := &capture{max: c.maxOutput, onOverflow: func() { cancel(errOutputLimit) }}
	stdout := &captureStream{c: capt, buf: &capt.stdout}
	stderr := &captureStream{c: capt, buf: &capt.stderr}
	cmd, err := startCommand(c.script, c.dir, func(cmd *exec.Cmd) {
		cmd.Dir = c.dir
		cmd.Env = c.env
		cmd.Stdin = c.stdin
		cmd.Stdout = stdout
		cmd.Stderr = stderr
		cmd.WaitDelay = pipeGrace
		// As the user, with no capability, when the sandbox says so.
		c.sb.prepare(cmd)
	})
	if err != nil {
		return outcome{err: fmt.Errorf("start %s: %w", cmd.Path, err)}
	}
	if c.started != nil {
		*c.started = now()
	}
	pgid := cmd.Process.Pid
	// Kill the group, not just the main process, as soon as ctx is done.
	// exec.CommandContext would only kill the main process.
	stop := context.AfterFunc(ctx, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	err = cmd.Wait()
	stop()
	syscall.Kill(-pgid, syscall.SIGKILL) // children left behind
	c.sb.sweepProcesses()                // and those that left the group

	out := outcome{stdout: capt.bytes(&capt.stdout), stderr: capt.bytes(&capt.stderr)}
	var exitErr *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay), errors.As(err, &exitErr):
		out.status = cmd.ProcessState.Sys().(syscall.WaitStatus)
		out.usage = usageOf(cmd.ProcessState)
	default:
		out.err = fmt.Errorf("wait: %w", err)
	}
	switch cause := context.Cause(ctx); {
	case capt.overflowed():
		out.limit = errOutputLimit
	case errors.Is(cause, errTimeLimit) && out.status.Signaled():
		out.limit = errTimeLimit
	}
	return out
}

// usageOf returns the resources a process used, from its rusage: user plus
// system CPU time, and the peak resident set (ru_maxrss, in KiB on Linux).
func usageOf(ps *os.ProcessState) protocol.Usage {
	u := protocol.Usage{CPUTime: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.Memory = ru.Maxrss * 1024
	}
	return u
}

// capture collects stdout and stderr under one cap on their total size.
type capture struct {
	mu             sync.Mutex
	max            int64 // 0: no cap
	n              int64
	stdout, stderr bytes.Buffer
	overflow       bool
	onOverflow     func()
}

// captureStream is the io.Writer for one stream of a capture.
type captureStream struct {
	c   *capture
	buf *bytes.Buffer
}

// Write keeps what fits under the cap and drops the rest; it never fails, so
// that the copying goroutine keeps draining the pipe until the process dies.
func (s *captureStream) Write(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.overflow {
		return len(p), nil
	}
	keep := p
	if c.max > 0 && c.n+int64(len(p)) > c.max {
		keep = p[:c.max-c.n]
		c.overflow = true
		c.onOverflow()
	}
	s.buf.Write(keep)
	c.n += int64(len(keep))
	return len(p), nil
}

func (c *capture) overflowed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.overflow
}

func (c *capture) bytes(b *bytes.Buffer) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(b.Bytes())
}

// commandEnv returns the environment for user commands: the agent's own, with
// HOME pointed at workDir when the real HOME is missing or not writable (the
// root file system is read-only in hardened containers).
func commandEnv(environ []string, workDir string) []string {
	home := ""
	for _, kv := range environ {
		if len(kv) > 5 && kv[:5] == "HOME=" {
			home = kv[5:]
		}
	}
	if home != "" && syscall.Access(home, 2 /* W_OK */) == nil {
		return environ
	}
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if len(kv) < 5 || kv[:5] != "HOME=" {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+workDir)
}

// signalName names a signal the way the result reports it: "SIGKILL (9)".
func signalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
		syscall.SIGILL: "SIGILL", syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT",
		syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL",
		syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
		syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
		syscall.SIGCHLD: "SIGCHLD", syscall.SIGCONT: "SIGCONT", syscall.SIGSTOP: "SIGSTOP",
		syscall.SIGTSTP: "SIGTSTP", syscall.SIGTTIN: "SIGTTIN", syscall.SIGTTOU: "SIGTTOU",
		syscall.SIGURG: "SIGURG", syscall.SIGXCPU: "SIGXCPU", syscall.SIGXFSZ: "SIGXFSZ",
		syscall.SIGVTALRM: "SIGVTALRM", syscall.SIGPROF: "SIGPROF", syscall.SIGWINCH: "SIGWINCH",
		syscall.SIGIO: "SIGIO", syscall.SIGSYS: "SIGSYS",
	}
	name, ok := names[sig]
	if !ok {
		name = "signal"
	}
	return fmt.Sprintf("%s (%d)", name, int(sig))
}
