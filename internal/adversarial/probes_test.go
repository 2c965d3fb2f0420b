package adversarial

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// agentCapBnd is the bounding set of a container of our images, as
// /proc/PID/status shows it: CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7);
// under gVisor also CAP_SYS_RESOURCE (24), with which the agent carries the
// code's RLIMIT_NPROC.
func agentCapBnd(rt string) string {
	if rt == runsc {
		return "00000000010000e0"
	}
	return "00000000000000e0"
}

// boundingSet names the capabilities of agentCapBnd(rt).
func boundingSet(rt string) string {
	if rt == runsc {
		return "KILL, SETGID, SETUID, SYS_RESOURCE"
	}
	return "KILL, SETGID, SETUID"
}

// probe runs code, which prints one JSON object, and decodes it into v.
func probe(t *testing.T, tg *target, code string, v any) response {
	t.Helper()
	r := tg.python(context.Background(), code)
	if r.status != http.StatusOK || r.agentErr != "" {
		t.Fatalf("probe: want 200, got %s", r.detail())
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("probe output %q: %v", r.stdout, err)
	}
	return r
}

// Probes from inside a container. gVisor shows less of /proc/self/status
// (no NoNewPrivs line; Seccomp 0, because the sentry applies its own filter
// on the host rather than the container's profile inside), so the checks
// that matter are made with system calls in both.
func TestProbes(t *testing.T) {
	eachRuntime(t, func(t *testing.T, rt string) {
		secret := rand.Text()
		// The server's secrets: its token and a decoy in its environment.
		tg := start(t, rt, "AWS_SECRET_ACCESS_KEY="+secret)

		t.Run("network", func(t *testing.T) {
			t.Parallel()
			var got struct {
				Interfaces []string          `json:"interfaces"`
				DNS        string            `json:"dns"`
				Routes     int               `json:"routes"`
				Connect    map[string]string `json:"connect"`
			}
			r := probe(t, tg, `
import json, os, socket
out = {"interfaces": sorted(os.listdir("/sys/class/net")), "connect": {}}
try:
    socket.getaddrinfo("example.com", 443)
    out["dns"] = "resolved"
except OSError as e:
    out["dns"] = str(e)
try:
    out["routes"] = len(open("/proc/net/route").read().splitlines()[1:])
except OSError:
    out["routes"] = -1
for host, port in [("1.1.1.1", 53), ("172.17.0.1", 2375), ("10.0.0.1", 80), ("2606:4700:4700::1111", 53)]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        out["connect"][host] = "connected"
    except OSError as e:
        out["connect"][host] = os.strerror(e.errno) if e.errno else str(e)
    finally:
        s.close()
print(json.dumps(out))
`, &got)
			if !slices.Equal(got.Interfaces, []string{"lo"}) {
				t.Errorf("interfaces %q: want only lo", got.Interfaces)
			}
			if got.DNS == "resolved" {
				t.Errorf("DNS resolved example.com")
			}
			if got.Routes != 0 {
				t.Errorf("%d routes in /proc/net/route: want none", got.Routes)
			}
			// Linux has no route; gVisor's netstack says the same in
			// other words.
			want := "Network is unreachable"
			if rt == runsc {
				want = "No route to host"
			}
			for host, res := range got.Connect {
				if res != want {
					t.Errorf("connect to %s: %q; want %s", host, res, want)
				}
			}
			if len(got.Connect) != 4 {
				t.Errorf("connect results %v: want 4", got.Connect)
			}
			record(t, "probe-network", rt, fmt.Sprintf("%v; interfaces %v, no routes, DNS fails (%s), TCP to 4 addresses (IPv4, IPv6, Docker's bridge): %s", r, got.Interfaces, clip(got.DNS, 40), want))
		})

		t.Run("privileges", func(t *testing.T) {
			t.Parallel()
			var got struct {
				Status      map[string]string `json:"status"`
				NoNewPrivs  int               `json:"no_new_privs"`
				Setuid      string            `json:"setuid"`
				Unshare     string            `json:"unshare"`
				Mount       string            `json:"mount"`
				SetHostname string            `json:"sethostname"`
				Nproc       string            `json:"nproc"`
			}
			r := probe(t, tg, `
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
def err(rc):
    return "OK" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
out = {"status": {}}
for line in open("/proc/self/status"):
    k, _, v = line.partition(":")
    if k.startswith("Cap") or k in ("NoNewPrivs", "Seccomp"):
        out["status"][k] = v.strip()
out["no_new_privs"] = libc.prctl(39, 0, 0, 0, 0)  # PR_GET_NO_NEW_PRIVS
try:
    os.setuid(0)
    out["setuid"] = "OK"
except OSError as e:
    out["setuid"] = errno.errorcode[e.errno]
out["unshare"] = err(libc.unshare(0x10000000))  # CLONE_NEWUSER
out["mount"] = err(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
out["sethostname"] = err(libc.sethostname(b"x", 1))
import resource
lim = [("unlimited" if v == resource.RLIM_INFINITY else str(v)) for v in resource.getrlimit(resource.RLIMIT_NPROC)]
try:
    resource.setrlimit(resource.RLIMIT_NPROC, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    raised = "OK"
except ValueError:  # Python's answer to setrlimit's EPERM on the hard limit
    raised = "EPERM"
except OSError as e:
    raised = errno.errorcode.get(e.errno, str(e))
out["nproc"] = " ".join(lim) + ", raise " + raised
print(json.dumps(out))
`, &got)
			for _, k := range []string{"CapInh", "CapPrm", "CapEff"} {
				if got.Status[k] != "0000000000000000" {
					t.Errorf("%s = %q; want no capabilities", k, got.Status[k])
				}
			}
			// The bounding set is the container's: the agent's KILL,
			// SETGID and SETUID. With NoNewPrivs set, nothing the code
			// executes can bring them back.
			if got.Status["CapBnd"] != agentCapBnd(rt) {
				t.Errorf("CapBnd = %q; want %s, the agent's capabilities only", got.Status["CapBnd"], agentCapBnd(rt))
			}
			// Under gVisor the code inherits the agent's RLIMIT_NPROC, and
			// without a capability it cannot raise it.
			if want := "32 32, raise EPERM"; rt == runsc && got.Nproc != want {
				t.Errorf("RLIMIT_NPROC %q; want %q", got.Nproc, want)
			}
			if v, ok := got.Status["CapAmb"]; ok && v != "0000000000000000" {
				t.Errorf("CapAmb = %q; want no capabilities", v)
			}
			if got.NoNewPrivs != 1 {
				t.Errorf("prctl(PR_GET_NO_NEW_PRIVS) = %d; want 1", got.NoNewPrivs)
			}
			if got.Setuid != "EPERM" || got.Mount != "EPERM" || got.SetHostname != "EPERM" {
				t.Errorf("setuid(0) %s, mount %s, sethostname %s: want EPERM for each", got.Setuid, got.Mount, got.SetHostname)
			}
			var note string
			switch rt {
			case runc:
				if got.Status["NoNewPrivs"] != "1" || got.Status["Seccomp"] != "2" {
					t.Errorf("NoNewPrivs %q, Seccomp %q: want 1 and 2 (filter)", got.Status["NoNewPrivs"], got.Status["Seccomp"])
				}
				if got.Unshare != "EPERM" {
					t.Errorf("unshare(CLONE_NEWUSER) = %s; want EPERM from the seccomp profile", got.Unshare)
				}
				note = "NoNewPrivs 1 (status and prctl), Seccomp 2 (dockerrun's profile)"
			default:
				if _, ok := got.Status["NoNewPrivs"]; ok {
					t.Errorf("gVisor now shows NoNewPrivs in /proc/self/status (%q): update the test", got.Status["NoNewPrivs"])
				}
				note = fmt.Sprintf("NoNewPrivs 1 by prctl (gVisor's status has no such line), Seccomp %q inside the sandbox (gVisor filters the sentry's own system calls on the host)", got.Status["Seccomp"])
			}
			record(t, "probe-privileges", rt, fmt.Sprintf("%v; effective, permitted, inheritable and ambient sets 0, bounding set the agent's %s; %s; setuid(0) %s, mount %s, sethostname %s, unshare(CLONE_NEWUSER) %s; RLIMIT_NPROC %s",
				r, boundingSet(rt), note, got.Setuid, got.Mount, got.SetHostname, got.Unshare, got.Nproc))
		})

		t.Run("syscalls", func(t *testing.T) {
			t.Parallel()
			var got map[string]string
			r := probe(t, tg, testenv.SyscallProbe, &got)
			var answers []string
			for _, c := range testenv.DeniedCalls {
				answers = append(answers, c+" "+got[c])
				// Under runsc the sentry answers every call itself and
				// the host kernel sees none of them: what it answers is
				// recorded, not required.
				if rt == runc && got[c] != "EPERM" {
					t.Errorf("%s answered %s under runc; want EPERM from the seccomp profile", c, got[c])
				}
			}
			if got["thread"] != "OK" {
				t.Errorf("starting a thread: %s; want OK (clone3 answers %s)", got["thread"], got["clone3"])
			}
			note := "all denied by dockerrun's seccomp profile"
			if rt == runsc {
				note = "answered by gVisor's sentry, not the host kernel (the profile is not applied without runsc --oci-seccomp)"
			}
			record(t, "probe-syscalls", rt, fmt.Sprintf("%v; %s; %s; clone3 %s, so threads start through clone", r, strings.Join(answers, ", "), note, got["clone3"]))
		})

		t.Run("host info", func(t *testing.T) {
			t.Parallel()
			host, err := os.ReadFile("/proc/cmdline")
			if err != nil {
				t.Fatalf("the host's /proc/cmdline: %v", err)
			}
			masked := dockerrun.MaskedPaths()
			daemonMasked, _ := testenv.DaemonDefaults(t, pythonImage)
			var got map[string]any
			r := probe(t, tg, testenv.HostProbe(masked), &got)
			cmdline, _ := got["/proc/cmdline content"].(string)
			if strings.TrimSpace(cmdline) != "" && strings.Contains(string(host), strings.TrimSpace(cmdline)) {
				t.Errorf("/proc/cmdline in the container is the host's: %q", cmdline)
			}
			var readable []string
			for _, p := range masked {
				switch got[p] {
				case "nothing", "ENOENT":
				default:
					readable = append(readable, fmt.Sprintf("%s (%v)", p, got[p]))
				}
			}
			for _, p := range daemonMasked {
				if !slices.Contains(masked, p) {
					t.Errorf("the daemon masks %s by default and the runner does not", p)
				}
			}
			var outcome string
			switch rt {
			case runc:
				if cmdline != "" {
					t.Errorf("/proc/cmdline reads %q under runc; want nothing", cmdline)
				}
				if len(readable) > 0 {
					t.Errorf("masked paths that read something under runc: %s", strings.Join(readable, ", "))
				}
				outcome = fmt.Sprintf("/proc/cmdline reads nothing; so do the %d masked paths (the daemon's %d defaults among them)", len(masked), len(daemonMasked))
			default:
				outcome = fmt.Sprintf("/proc/cmdline is gVisor's own (%q); of the %d masked paths, these read gVisor's own content, not the host's: %s", strings.TrimSpace(cmdline), len(masked), strings.Join(readable, ", "))
			}
			record(t, "probe-host-info", rt, fmt.Sprintf("%v; %s", r, outcome))

			lines, _ := got["mountinfo"].([]any)
			switch {
			case rt == runc && len(lines) == 0:
				t.Errorf("/proc/self/mountinfo names no path under /var/lib/docker under runc: update docs/security.md, which says it does")
			case rt == runsc && len(lines) > 0:
				t.Errorf("/proc/self/mountinfo names host paths under runsc: %v", lines)
			}
			if rt == runc {
				record(t, "probe-mountinfo", rt, fmt.Sprintf("%v; %d lines name /var/lib/docker (the root's overlay layers): accepted, it cannot be masked (see above)", r, len(lines)))
			} else {
				record(t, "probe-mountinfo", rt, fmt.Sprintf("%v; no line names a host path: the sandbox has its own mount table", r))
			}
		})

		t.Run("user", func(t *testing.T) {
			t.Parallel()
			var got struct {
				UID, EUID, GID, EGID int
				Groups               []int
			}
			r := probe(t, tg, `
import json, os
print(json.dumps({"UID": os.getuid(), "EUID": os.geteuid(), "GID": os.getgid(), "EGID": os.getegid(), "Groups": os.getgroups()}))
`, &got)
			if got.UID != 1000 || got.EUID != 1000 || got.GID != 1000 || got.EGID != 1000 || slices.Contains(got.Groups, 0) {
				t.Errorf("uid %d euid %d gid %d egid %d groups %v: want 1000 and no group 0", got.UID, got.EUID, got.GID, got.EGID, got.Groups)
			}
			record(t, "probe-user", rt, fmt.Sprintf("%v; uid %d, gid %d, groups %v", r, got.UID, got.GID, got.Groups))
		})

		t.Run("docker socket", func(t *testing.T) {
			t.Parallel()
			var got struct {
				Present []string `json:"present"`
				Sockets []string `json:"sockets"`
			}
			r := probe(t, tg, `
import json, os, stat
paths = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock", "/var/run/docker/containerd/containerd.sock"]
out = {"present": [p for p in paths if os.path.lexists(p)], "sockets": []}
for top in ("/run", "/var/run", "/tmp", "/home", "/dev"):
    for root, dirs, files in os.walk(top):
        for f in files:
            p = os.path.join(root, f)
            try:
                if stat.S_ISSOCK(os.lstat(p).st_mode):
                    out["sockets"].append(p)
            except OSError:
                pass
print(json.dumps(out))
`, &got)
			if len(got.Present) > 0 || len(got.Sockets) > 0 {
				t.Errorf("found %v and sockets %v: want none", got.Present, got.Sockets)
			}
			record(t, "probe-docker-socket", rt, r.String()+"; no Docker or containerd socket, no Unix socket under /run, /var/run, /tmp, /home, /dev")
		})

		t.Run("environment", func(t *testing.T) {
			t.Parallel()
			var got struct {
				Env      []string `json:"env"`
				InitEnv  string   `json:"init_env"`
				InitArgs string   `json:"init_args"`
			}
			r := probe(t, tg, `
import json, os
def read(p):
    try:
        return open(p, "rb").read().decode(errors="replace").replace("\0", " ")
    except OSError as e:
        return "error: " + e.strerror
print(json.dumps({"env": sorted(os.environ), "init_env": read("/proc/1/environ"), "init_args": read("/proc/1/cmdline")}))
`, &got)
			for _, s := range []string{tg.Token, secret} {
				if strings.Contains(string(r.body), s) {
					t.Fatalf("a secret of the server's is visible inside the container: %s", r.detail())
				}
			}
			for _, k := range got.Env {
				if strings.HasPrefix(k, "API_") || strings.HasPrefix(k, "SERVER_") || strings.HasPrefix(k, "DOCKER_") || strings.HasPrefix(k, "AWS_") {
					t.Errorf("environment variable %s of the server's is visible", k)
				}
			}
			record(t, "probe-environment", rt, fmt.Sprintf("%v; neither API_ACCESS_TOKEN nor a decoy secret of the server's anywhere; variables: %s", r, strings.Join(got.Env, " ")))
		})
	})
}
