package main

import (
	"errors"
	"fmt"
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

// An agent with CAP_SYS_RESOURCE holds the limit itself, and its commands
// inherit it; without the capability it leaves the limit to the launcher.
func TestHoldNproc(t *testing.T) {
	if os.Getenv(helperEnv) == "hold" {
		held, err := holdNproc(7, func() (uint64, error) { return 1 << capSysResource, nil })
		if !held || err != nil {
			fmt.Fprintf(os.Stderr, "holdNproc = %v, %v\n", held, err)
			os.Exit(3)
		}
		out, err := exec.Command("/bin/sh", "-c", "ulimit -p 2>/dev/null || ulimit -u").CombinedOutput()
		fmt.Printf("%s", out)
		if err != nil {
			os.Exit(4)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldNproc$")
	cmd.Env = []string{helperEnv + "=hold"}
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "7" {
		t.Errorf("a command's process limit under an agent holding 7: %q, %v; want 7", out, err)
	}

	capErr := errors.New("no /proc")
	tests := []struct {
		name    string
		n       int64
		caps    uint64
		capErr  error
		want    bool
		wantErr error
	}{
		{name: "no limit", n: 0, caps: 1 << capSysResource},
		{name: "no capability: the launcher", n: 32, caps: 1<<6 | 1<<7 | 1<<5},
		{name: "capabilities unknown", n: 32, capErr: capErr, wantErr: capErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			held, err := holdNproc(tt.n, func() (uint64, error) { return tt.caps, tt.capErr })
			if held != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("holdNproc(%d) = %v, %v; want %v, %v", tt.n, held, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCapEff(t *testing.T) {
	tests := []struct {
		status  string
		want    uint64
		wantErr string
	}{
		{status: "Name:\tcode-runner\nCapInh:\t0000000000000000\nCapEff:\t00000000010000e0\nCapBnd:\t00000000010000e0\n", want: 1<<capSysResource | 1<<7 | 1<<6 | 1<<5},
		{status: "CapEff:\t0000000000000000\n", want: 0},
		{status: "CapEff:\t000001fffeffffff", want: 0x1fffeffffff},
		{status: "Name:\tx\n", wantErr: "no CapEff"},
		{status: "CapEff:\tzz\n", wantErr: `CapEff "zz"`},
	}
	for _, tt := range tests {
		got, err := parseCapEff(tt.status)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseCapEff(%q) error = %v, want one with %q", tt.status, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseCapEff(%q) = %#x, %v; want %#x", tt.status, got, err, tt.want)
		}
	}
	if _, err := readCapEff(); err != nil {
		t.Errorf("readCapEff: %v", err)
	}
}
