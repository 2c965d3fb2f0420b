package main

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scrubEnviron zeroes what /proc/self/environ shows and keeps the
// environment that Go sees.
func TestScrubEnviron(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{helperEnv + "=scrub", "SCRUB_ME=secret value"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if diff := cmp.Diff(`"" "secret value"`+"\n", string(out)); diff != "" {
		t.Errorf("/proc/self/environ and SCRUB_ME after scrubEnviron mismatch (-want +got):\n%s", diff)
	}
}

func TestLookupUser(t *testing.T) {
	tests := []struct {
		spec     string
		uid, gid uint32
		wantErr  string
	}{
		{spec: "1000:1000", uid: 1000, gid: 1000},
		{spec: "1234:5", uid: 1234, gid: 5},
		{spec: "4321", uid: 4321, gid: 4321}, // no passwd entry: the uid
		{spec: "root", uid: 0, gid: 0},
		{spec: "0:root", uid: 0, gid: 0},
		{spec: "no-such-user-here", wantErr: "no-such-user-here"},
		{spec: "1000:no-such-group-here", wantErr: "no-such-group-here"},
		{spec: ":1000", wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			uid, gid, err := lookupUser(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("lookupUser(%q) error = %v, want one naming %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil || uid != tt.uid || gid != tt.gid {
				t.Errorf("lookupUser(%q) = %d, %d, %v; want %d, %d", tt.spec, uid, gid, err, tt.uid, tt.gid)
			}
		})
	}
}

func TestDead(t *testing.T) {
	tests := []struct {
		stat string
		want bool
	}{
		{"12 (python3) S 1 12 12 0", false},
		{"12 (a) b) R 1 12", false},
		{"12 (sh) Z 1 12", true},
		{"12 (sh) X 1 12", true},
		{"12 (sh", true},
	}
	for _, tt := range tests {
		if got := dead([]byte(tt.stat)); got != tt.want {
			t.Errorf("dead(%q) = %v, want %v", tt.stat, got, tt.want)
		}
	}
}

// prepare starts the command in its own group as the sandbox's user, and
// through the launcher when there is an RLIMIT_NPROC to set.
func TestSandboxPrepare(t *testing.T) {
	cred := &syscall.Credential{Uid: 1000, Gid: 1000, Groups: []uint32{}}
	cmd := exec.Command("/bin/sh", "-c", "echo hi")
	sandbox{cred: cred, nproc: 32, exe: "/code-runner"}.prepare(cmd)
	if diff := cmp.Diff([]string{"/code-runner", nprocExecArg, "32", "/bin/sh", "/bin/sh", "-c", "echo hi"}, cmd.Args); diff != "" {
		t.Errorf("Args mismatch (-want +got):\n%s", diff)
	}
	if cmd.Path != "/code-runner" || !cmd.SysProcAttr.Setpgid || cmd.SysProcAttr.Credential != cred {
		t.Errorf("Path %q, SysProcAttr %+v: want the launcher, its own group and the user's credentials", cmd.Path, cmd.SysProcAttr)
	}

	cmd = exec.Command("/bin/sh", "-c", "echo hi")
	sandbox{}.prepare(cmd)
	if diff := cmp.Diff([]string{"/bin/sh", "-c", "echo hi"}, cmd.Args); diff != "" || cmd.SysProcAttr.Credential != nil || !cmd.SysProcAttr.Setpgid {
		t.Errorf("zero sandbox: Args %q, SysProcAttr %+v: want the command as is, in its own group", cmd.Args, cmd.SysProcAttr)
	}
}

// The launcher sets RLIMIT_NPROC and executes the program.
func TestNprocExec(t *testing.T) {
	if os.Getenv(helperEnv) == "nproc" {
		os.Exit(nprocExec(os.Args[len(os.Args)-5:], os.Stderr))
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNprocExec$", "7", "/bin/sh", "sh", "-c", "ulimit -p 2>/dev/null || ulimit -u")
	cmd.Env = []string{helperEnv + "=nproc"}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "7" {
		t.Errorf("the launched shell's process limit: %q, %v; want 7", out, err)
	}
	if code := nprocExec([]string{"0", "/bin/true", "true"}, new(strings.Builder)); code != 2 {
		t.Errorf("nprocExec with a limit of 0 = %d, want 2", code)
	}
}
