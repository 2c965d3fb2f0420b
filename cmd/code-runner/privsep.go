package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/dockerrun/dockerrun/internal/protocol"
)

// Environment variables of privilege separation: the runner sets
// protocol.EnvRunAs (and, under gVisor, protocol.EnvNproc) for images
// labelled protocol.LabelPrivsep=1, and starts their containers as root with
// only the capabilities SETUID, SETGID and KILL.
const (
	envRunAs = protocol.EnvRunAs
	envNproc = protocol.EnvNproc
	// envUnderInit is set by our PID 1 for the agent it starts: the agent
	// then knows it has a process namespace of its own, where every process
	// but itself and PID 1 belongs to the user's code.
	envUnderInit = "DOCKERRUN_AGENT_UNDER_INIT"
)

// sandbox is how the agent keeps the user's code away from itself and
// stops what the code leaves behind. The zero sandbox runs the code as the
// agent's own user and stops only the command's process group.
type sandbox struct {
	// cred, when not nil, is the user the code runs as, with no
	// supplementary group; the agent itself is root.
	cred *syscall.Credential
	// nproc, when not 0, is the RLIMIT_NPROC of the user's commands, set
	// by exe (this binary) started in nprocExecArg mode. It is 0 when the
	// agent holds the limit itself (see holdNproc): gVisor applies it to
	// root too, so an agent without CAP_SYS_RESOURCE cannot.
	nproc int64
	exe   string
	// sweep allows killing every process of the namespace but the agent
	// and PID 1 after each command (see sweepProcesses).
	sweep bool
}

type sandboxKey struct{}

// withSandbox returns ctx carrying sb, for run.
func withSandbox(ctx context.Context, sb sandbox) context.Context {
	return context.WithValue(ctx, sandboxKey{}, sb)
}

// sandboxFrom returns the sandbox that ctx carries, or the zero sandbox.
func sandboxFrom(ctx context.Context) sandbox {
	sb, _ := ctx.Value(sandboxKey{}).(sandbox)
	return sb
}

// sandboxFromEnv sets the agent up for the environment it runs in: with
// DOCKERRUN_RUN_AS naming another user while the agent is root, the agent
// becomes non-dumpable, caps the user's processes with DOCKERRUN_NPROC if
// given, and runs the code as that user. Under our own PID 1, it may sweep.
func sandboxFromEnv(getenv func(string) string) (sandbox, error) {
	var sb sandbox
	// Even without separation, a non-dumpable agent keeps code of its own
	// user from opening its /proc entries under runc.
	if err := setNonDumpable(); err != nil {
		return sandbox{}, err
	}
	// Our init marks its child, and the child's parent must still be PID 1:
	// never sweep a process namespace that is not the container's.
	sb.sweep = os.Getpid() == 1 || getenv(envUnderInit) == "1" && os.Getppid() == 1
	spec := strings.TrimSpace(getenv(envRunAs))
	if spec == "" {
		return sb, nil
	}
	uid, gid, err := lookupUser(spec)
	if err != nil {
		return sandbox{}, fmt.Errorf("%s: %w", envRunAs, err)
	}
	euid := os.Geteuid()
	if euid == int(uid) {
		return sb, nil // already that user: nothing to separate
	}
	if euid != 0 {
		return sandbox{}, fmt.Errorf("%s=%s: the agent runs as uid %d, not root, and cannot change user: start the container as root (the runner does for images labelled dockerrun.agent.privsep=1)", envRunAs, spec, euid)
	}
	nproc, err := envInt(getenv, envNproc)
	if err != nil {
		return sandbox{}, err
	}
	held, err := holdNproc(nproc, readCapEff)
	if err != nil {
		return sandbox{}, err
	}
	if nproc > 0 && !held {
		exe, err := os.Executable()
		if err != nil {
			exe = "/proc/self/exe"
		}
		sb.nproc, sb.exe = nproc, exe
	}
	sb.cred = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
	return sb, nil
}

// rlimitNproc is RLIMIT_NPROC, which package syscall does not name.
const rlimitNproc = 6

// capSysResource is CAP_SYS_RESOURCE's bit in a capability set.
const capSysResource = 24

// holdNproc gives the agent itself an RLIMIT_NPROC of n (none if n is 0),
// which every command it starts inherits, when the agent's effective
// capabilities (from capEff) include CAP_SYS_RESOURCE: gVisor does not
// apply the limit to a task with that capability, so the agent and its
// threads are not held back, while each command loses every capability
// with its change of user and meets the limit. The runner grants the
// capability wherever it sets DOCKERRUN_NPROC. Without it, holdNproc
// reports false and each command starts through the launcher instead (see
// nprocExecArg), which costs one more exec of this binary per command.
func holdNproc(n int64, capEff func() (uint64, error)) (bool, error) {
	if n <= 0 {
		return false, nil
	}
	caps, err := capEff()
	if err != nil {
		return false, err
	}
	if caps&(1<<capSysResource) == 0 {
		return false, nil
	}
	if err := syscall.Setrlimit(rlimitNproc, &syscall.Rlimit{Cur: uint64(n), Max: uint64(n)}); err != nil {
		return false, fmt.Errorf("%s=%d: setrlimit(RLIMIT_NPROC): %w", envNproc, n, err)
	}
	return true, nil
}

// readCapEff returns the process's effective capabilities, from
// /proc/self/status.
func readCapEff() (uint64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("capabilities: %w", err)
	}
	return parseCapEff(string(status))
}

// parseCapEff returns the capability set of the CapEff line of a
// /proc/PID/status.
func parseCapEff(status string) (uint64, error) {
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("capabilities: CapEff %q: %w", strings.TrimSpace(v), err)
			}
			return caps, nil
		}
	}
	return 0, errors.New("capabilities: no CapEff line in /proc/self/status")
}

// nprocExecArg, as the first argument, makes code-runner a launcher:
// code-runner -dockerrun-nproc-exec N PATH ARGV0 ARG... sets its
// RLIMIT_NPROC to N and executes PATH with ARGV0 ARG... as its arguments.
const nprocExecArg = "-dockerrun-nproc-exec"

// nprocExec is main for a launcher (see nprocExecArg); it returns only on
// error, with the exit status.
func nprocExec(args []string, stderr io.Writer) int {
	if len(args) < 3 {
		fmt.Fprintf(stderr, "code-runner: %s N PATH ARGV0 [ARG...]\n", nprocExecArg)
		return 2
	}
	n, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || n == 0 {
		fmt.Fprintf(stderr, "code-runner: %s: bad limit %q\n", nprocExecArg, args[0])
		return 2
	}
	if err := syscall.Setrlimit(rlimitNproc, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fmt.Fprintf(stderr, "code-runner: setrlimit(RLIMIT_NPROC, %d): %v\n", n, err)
		return 126
	}
	err = syscall.Exec(args[1], args[2:], os.Environ())
	fmt.Fprintf(stderr, "code-runner: exec %s: %v\n", args[1], err)
	return 127
}

// prepare makes cmd start in its own process group, as the user with no
// supplementary group when separated (changing uid from root clears every
// capability, and no-new-privileges keeps them away), and under the
// sandbox's RLIMIT_NPROC, through this binary as a launcher.
func (sb sandbox) prepare(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: sb.cred}
	if sb.nproc > 0 && cmd.Err == nil {
		cmd.Args = append([]string{sb.exe, nprocExecArg, strconv.FormatInt(sb.nproc, 10), cmd.Path}, cmd.Args...)
		cmd.Path = sb.exe
	}
}

// scrubEnviron zeroes the environment strings the process started with,
// which /proc/PID/environ shows: gVisor lets any process read another's
// environ, non-dumpable or not. Go copied them at start, so os.Getenv and
// os.Environ keep working. They lie on the initial stack right after the
// argument strings, which os.Args still points at; each one is checked
// against the environment before it is zeroed.
func scrubEnviron() {
	if len(os.Args) == 0 {
		return
	}
	last := os.Args[len(os.Args)-1]
	if len(last) == 0 {
		return // no pointer into the stack to start from
	}
	p := unsafe.Add(unsafe.Pointer(unsafe.StringData(last)), len(last)+1)
	for _, kv := range syscall.Environ() {
		b := unsafe.Slice((*byte)(p), len(kv)+1)
		if string(b[:len(kv)]) != kv || b[len(kv)] != 0 {
			return // not the layout expected: leave it
		}
		clear(b[:len(kv)])
		p = unsafe.Add(p, len(kv)+1)
	}
}

// setNonDumpable keeps processes of other users (and, under runc, of the
// same user) from reading this process's /proc entries or attaching to it.
func setNonDumpable() error {
	const prSetDumpable = 4
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", errno)
	}
	return nil
}

// lookupUser resolves uid[:gid] or name[:group], the way Docker reads its
// User field: a numeric uid needs no passwd entry; without a group, the
// user's primary group from /etc/passwd, else the uid.
func lookupUser(spec string) (uid, gid uint32, err error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	uid, gid, err = lookupID(name, func(s string) (string, string, error) {
		u, err := user.Lookup(s)
		if err != nil {
			return "", "", err
		}
		return u.Uid, u.Gid, nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: %w", name, err)
	}
	if !hasGroup {
		if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
			if g, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
				gid = uint32(g)
			}
		}
		return uid, gid, nil
	}
	gid, _, err = lookupID(group, func(s string) (string, string, error) {
		g, err := user.LookupGroup(s)
		if err != nil {
			return "", "", err
		}
		return g.Gid, g.Gid, nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("group %q: %w", group, err)
	}
	return uid, gid, nil
}

// lookupID parses s as a number, or looks it up by name. The second result
// is the number itself for a number, else what lookup gives.
func lookupID(s string, lookup func(string) (string, string, error)) (uint32, uint32, error) {
	if s == "" {
		return 0, 0, errors.New("empty")
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), uint32(n), nil
	}
	id, other, err := lookup(s)
	if err != nil {
		return 0, 0, err
	}
	a, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, 0, err
	}
	b, err := strconv.ParseUint(other, 10, 32)
	if err != nil {
		return 0, 0, err
	}
	return uint32(a), uint32(b), nil
}

// writeFiles writes the request's files as the user the code runs as, so
// that they belong to it and land only where it may write.
func (sb sandbox) writeFiles(dir string, files []File) error {
	if sb.cred == nil {
		return writeFiles(dir, files)
	}
	return sb.asUser(func() error { return writeFiles(dir, files) })
}

// asUser calls f on an OS thread of its own that has taken the user's
// effective uid, gid and (no) groups. Credentials are per thread for the
// kernel (and for gVisor); Go's syscall.Setuid would change every thread.
// The thread never gets root back: the goroutine ends locked to it, and Go
// ends the thread with it.
func (sb sandbox) asUser(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		c := sb.cred
		if _, _, errno := syscall.RawSyscall(syscall.SYS_SETGROUPS, 0, 0, 0); errno != 0 {
			errc <- fmt.Errorf("setgroups: %w", errno)
			return
		}
		if _, _, errno := syscall.RawSyscall(syscall.SYS_SETRESGID, ^uintptr(0), uintptr(c.Gid), ^uintptr(0)); errno != 0 {
			errc <- fmt.Errorf("setresgid: %w", errno)
			return
		}
		if _, _, errno := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), uintptr(c.Uid), ^uintptr(0)); errno != 0 {
			errc <- fmt.Errorf("setresuid: %w", errno)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// commandEnv returns the environment of the user's commands: the agent's,
// without the variables meant for the agent alone, and with HOME set for
// the user (see commandEnv). Separated, HOME is the user's home from
// /etc/passwd: Docker set the agent's, root's.
func (sb sandbox) commandEnv(environ []string, workDir string) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, envUnderInit+"=") && !(sb.cred != nil && strings.HasPrefix(kv, "HOME=")) {
			env = append(env, kv)
		}
	}
	if sb.cred == nil {
		return commandEnv(env, workDir)
	}
	home := workDir
	if u, err := user.LookupId(strconv.FormatUint(uint64(sb.cred.Uid), 10)); err == nil && u.HomeDir != "" {
		// Kept only if the user can write there, as commandEnv does.
		if sb.asUser(func() error { return syscall.Faccessat(unixAtFdcwd, u.HomeDir, 2 /* W_OK */, unixAtEaccess) }) == nil {
			home = u.HomeDir
		}
	}
	return append(env, "HOME="+home)
}

// Constants of faccessat that package syscall does not name.
const (
	unixAtFdcwd   = -100
	unixAtEaccess = 0x200
)

// How often and how long sweepProcesses kills.
const (
	sweepPause = time.Millisecond
	sweepLimit = 2 * time.Second
)

// sweepProcesses kills every process of the namespace but the agent and
// PID 1, whatever group or session it is in, and returns when none is left
// alive (zombies may remain until PID 1 reaps them) or after sweepLimit. A
// process that forks while being killed cannot outrun it: each round kills
// what the last one saw, and a process with SIGKILL pending forks no more.
// It does nothing unless the agent has a process namespace of its own.
func (sb sandbox) sweepProcesses() {
	if !sb.sweep {
		return
	}
	me := os.Getpid()
	deadline := time.Now().Add(sweepLimit)
	for {
		live := liveProcesses(me)
		if len(live) == 0 {
			return
		}
		// kill(-1) reaches every process this one may signal but itself
		// and PID 1, atomically with respect to fork under Linux; the
		// per-process kills cover runtimes where it is not.
		syscall.Kill(-1, syscall.SIGKILL)
		for _, pid := range live {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(sweepPause)
	}
}

// liveProcesses lists the processes of the namespace that are neither
// PID 1, nor me, nor dead.
func liveProcesses(me int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	var pids []int
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == 1 || pid == me {
			continue
		}
		if st, err := os.ReadFile("/proc/" + name + "/stat"); err == nil && !dead(st) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// dead reports whether a /proc/PID/stat line shows a zombie or a process
// that is going away.
func dead(stat []byte) bool {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	switch s[i+2] {
	case 'Z', 'X', 'x':
		return true
	}
	return false
}
