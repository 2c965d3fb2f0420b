package dockerrun

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allowedBy returns, for each system call that p allows under some
// condition or none, the rules that allow it.
func allowedBy(p *seccomp.Seccomp) map[string][]*seccomp.Syscall {
	m := map[string][]*seccomp.Syscall{}
	for _, r := range p.Syscalls {
		if r.Action != specs.ActAllow {
			continue
		}
		for _, n := range append(slices.Clone(r.Names), r.Name) {
			m[n] = append(m[n], r)
		}
	}
	return m
}

func TestBuiltinSeccompProfile(t *testing.T) {
	t.Parallel()
	raw, err := BuiltinSeccompProfile()
	if err != nil {
		t.Fatal(err)
	}
	var p seccomp.Seccomp
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("the builtin profile is not in Docker's format: %v", err)
	}
	if p.DefaultAction != specs.ActErrno {
		t.Errorf("default action %s, want %s", p.DefaultAction, specs.ActErrno)
	}
	allowed := allowedBy(&p)
	for _, n := range ioUringCalls {
		if rules := allowed[n]; len(rules) > 0 {
			t.Errorf("%s is allowed by %d rules, want none", n, len(rules))
		}
	}
	last := p.Syscalls[len(p.Syscalls)-1]
	eperm := uint(linuxEPERM)
	wantLast := specs.LinuxSyscall{Names: ioUringCalls, Action: specs.ActErrno, ErrnoRet: &eperm}
	if diff := cmp.Diff(wantLast, last.LinuxSyscall); diff != "" || last.Includes != nil || last.Excludes != nil {
		t.Errorf("last rule mismatch (-want +got):\n%s\nincludes %+v, excludes %+v", diff, last.Includes, last.Excludes)
	}
	// What the agent needs to drop root for the user's code, and what every
	// program needs, must be allowed without any condition.
	for _, n := range []string{"setuid", "setgid", "setgroups", "setresuid", "setresgid", "setfsuid", "setfsgid", "capget", "capset", "prctl", "kill", "execve", "read", "write", "mmap", "futex", "wait4"} {
		unconditional := slices.ContainsFunc(allowed[n], func(r *seccomp.Syscall) bool {
			return r.Includes == nil && r.Excludes == nil && len(r.Args) == 0
		})
		if !unconditional {
			t.Errorf("%s is not allowed unconditionally", n)
		}
	}
	// What must stay denied to a container without capabilities: allowed
	// only to one that has CAP_SYS_ADMIN or the call's own capability.
	for _, n := range []string{"unshare", "mount", "bpf", "perf_event_open", "setns", "keyctl", "kexec_load", "userfaultfd", "add_key", "request_key"} {
		for _, r := range allowed[n] {
			if r.Includes == nil || len(r.Includes.Caps) == 0 {
				t.Errorf("%s is allowed by a rule that needs no capability: %+v", n, r)
			}
		}
	}
	// glibc creates threads with clone3 and falls back to clone only on
	// ENOSYS: the profile must answer ENOSYS, not the default EPERM.
	nosys := slices.ContainsFunc(p.Syscalls, func(r *seccomp.Syscall) bool {
		return slices.Contains(r.Names, "clone3") && r.Action == specs.ActErrno && r.ErrnoRet != nil && *r.ErrnoRet == 38
	})
	if !nosys {
		t.Errorf("no rule answers clone3 with ENOSYS")
	}
}

func TestBuiltinSeccompProfileIsACopy(t *testing.T) {
	t.Parallel()
	a, err := BuiltinSeccompProfile()
	if err != nil {
		t.Fatal(err)
	}
	a[0] = 'x'
	b, _ := BuiltinSeccompProfile()
	if b[0] != '{' {
		t.Errorf("BuiltinSeccompProfile returned the shared copy")
	}
}

func TestDenyIOUring(t *testing.T) {
	t.Parallel()
	eperm := uint(linuxEPERM)
	deny := &seccomp.Syscall{
		LinuxSyscall: specs.LinuxSyscall{Names: ioUringCalls, Action: specs.ActErrno, ErrnoRet: &eperm},
		Comment:      "dockerrun: io_uring is denied on every engine, as Docker 25 and later do",
	}
	allow := func(names ...string) *seccomp.Syscall {
		return &seccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: names, Action: specs.ActAllow}}
	}
	nosys := uint(38)
	tests := []struct {
		name  string
		rules []*seccomp.Syscall
		want  []*seccomp.Syscall
	}{
		{"none allowed", []*seccomp.Syscall{allow("read", "write")}, []*seccomp.Syscall{allow("read", "write"), deny}},
		{"among others", []*seccomp.Syscall{allow("io_uring_enter", "read", "io_uring_setup", "write", "io_uring_register")}, []*seccomp.Syscall{allow("read", "write"), deny}},
		{"a rule of their own", []*seccomp.Syscall{allow("read"), allow("io_uring_setup", "io_uring_enter", "io_uring_register")}, []*seccomp.Syscall{allow("read"), deny}},
		{
			name:  "the deprecated name field",
			rules: []*seccomp.Syscall{{LinuxSyscall: specs.LinuxSyscall{Action: specs.ActAllow}, Name: "io_uring_setup"}, allow("read")},
			want:  []*seccomp.Syscall{allow("read"), deny},
		},
		{
			name: "allowed under a condition",
			rules: []*seccomp.Syscall{
				{LinuxSyscall: specs.LinuxSyscall{Names: []string{"io_uring_setup", "bpf"}, Action: specs.ActAllow}, Includes: &seccomp.Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
			},
			want: []*seccomp.Syscall{
				{LinuxSyscall: specs.LinuxSyscall{Names: []string{"bpf"}, Action: specs.ActAllow}, Includes: &seccomp.Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
				deny,
			},
		},
		{
			name:  "denied with another errno",
			rules: []*seccomp.Syscall{{LinuxSyscall: specs.LinuxSyscall{Names: []string{"io_uring_setup"}, Action: specs.ActErrno, ErrnoRet: &nosys}}},
			want:  []*seccomp.Syscall{deny},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &seccomp.Seccomp{LinuxSeccomp: specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, Syscalls: tt.rules}
			got := denyIOUring(p).Syscalls
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("denyIOUring() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMaskedPaths(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, p := range maskedPaths {
		if seen[p] {
			t.Errorf("%s is masked twice", p)
		}
		seen[p] = true
	}
	// What language runtimes read must stay readable.
	for _, keep := range []string{"/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/self", "/proc/sys", "/sys/fs/cgroup", "/sys/devices/system/cpu", "/sys/kernel/mm", "/sys/class/net"} {
		for _, p := range maskedPaths {
			if p == keep || strings.HasPrefix(keep, p+"/") {
				t.Errorf("%s is masked (by %s): language runtimes read it", keep, p)
			}
		}
	}
}

func TestUnconfinedIsLogged(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	newTestRunner(t, newFakeDocker(), WithLogger(log), WithSeccompProfile(SeccompUnconfined), WithDangerouslyAllowUnconfinedSeccomp(true))
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "unconfined") {
		t.Errorf("New with an unconfined profile logged %q, want a warning", logs.String())
	}
}
