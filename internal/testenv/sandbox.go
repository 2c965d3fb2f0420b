package testenv

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// DeniedCalls are the system calls that the sandbox must deny to user code
// at the default settings under runc, as [SyscallProbe] names them.
var DeniedCalls = []string{
	"io_uring_setup",
	"userfaultfd",
	"unshare(CLONE_NEWUSER)",
	"keyctl",
	"bpf",
	"perf_event_open",
	"mount",
	"kexec_load",
	"socket(AF_VSOCK)",
}

// SyscallProbe is a Python program for the python language image that makes
// each system call of [DeniedCalls], then clone3 and a thread, and prints
// one JSON object: the call's name and "OK" or the errno's name (EPERM...).
//
// The arguments are chosen so that a call the seccomp filter lets through
// gets another answer from the kernel: bpf with an unknown command gets
// EINVAL, perf_event_open with no attributes EFAULT, userfaultfd in user
// mode is allowed even where vm.unprivileged_userfaultfd is 0; mount and
// kexec_load need capabilities the container lacks, so they fail either
// way. socket(AF_VSOCK) only creates a socket: it connects nowhere. clone3
// with no arguments answers EINVAL from the kernel and ENOSYS from Docker's
// profile, which makes glibc fall back to clone: "thread" shows that
// threads still start. unshare comes after the others, since it succeeds
// under no filter and changes the process's user namespace, and before the
// thread, since a process with threads cannot enter a user namespace.
const SyscallProbe = `
import ctypes, errno, json, os, platform, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {
    "x86_64": dict(io_uring_setup=425, userfaultfd=323, unshare=272, keyctl=250, bpf=321, perf_event_open=298, mount=165, kexec_load=246, socket=41, clone3=435),
    "aarch64": dict(io_uring_setup=425, userfaultfd=282, unshare=97, keyctl=219, bpf=280, perf_event_open=241, mount=40, kexec_load=104, socket=198, clone3=435),
}[platform.machine()]
def call(name, *args):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    if rc >= 0:
        return "OK"
    e = ctypes.get_errno()
    return errno.errorcode.get(e, str(e))
out = {}
out["io_uring_setup"] = call("io_uring_setup", 8, ctypes.create_string_buffer(120))
out["userfaultfd"] = call("userfaultfd", os.O_CLOEXEC | 1)  # UFFD_USER_MODE_ONLY
out["keyctl"] = call("keyctl", 0, -3, 0)  # KEYCTL_GET_KEYRING_ID of the session keyring
out["bpf"] = call("bpf", 0xffff, None, 0)
out["perf_event_open"] = call("perf_event_open", None, 0, -1, -1, 0)
out["mount"] = call("mount", b"none", b"/tmp", b"tmpfs", 0, None)
out["kexec_load"] = call("kexec_load", 0, 0, None, 0)
out["socket(AF_VSOCK)"] = call("socket", 40, 1, 0)
out["clone3"] = call("clone3", None, 0)
out["unshare(CLONE_NEWUSER)"] = call("unshare", 0x10000000)
try:
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    out["thread"] = "OK"
except RuntimeError as e:
    out["thread"] = str(e)
print(json.dumps(out))
`

// HostProbe returns a Python program that prints one JSON object: for each
// of paths, what reading it gives ("nothing" for an empty file or
// directory, "N bytes" or "N entries", or the errno's name), and under
// "mountinfo" the lines of /proc/self/mountinfo that name
// /var/lib/docker.
func HostProbe(paths []string) string {
	list, _ := json.Marshal(paths)
	return `
import errno, json, os
paths = json.loads(` + "'" + string(list) + "'" + `)
def read(p):
    try:
        if os.path.isdir(p):
            n = len(os.listdir(p))
            return "nothing" if n == 0 else "%d entries" % n
        with open(p, "rb") as f:
            n = len(f.read(1 << 20))
        return "nothing" if n == 0 else "%d bytes" % n
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
out = {p: read(p) for p in paths}
out["mountinfo"] = [l for l in open("/proc/self/mountinfo").read().splitlines() if "/var/lib/docker" in l]
out["/proc/cmdline content"] = open("/proc/cmdline").read()
print(json.dumps(out))
`
}

// DaemonDefaults returns the paths that the daemon masks and makes
// read-only in a container created without lists of its own, as docker
// inspect shows them.
func DaemonDefaults(t testing.TB, image string) (masked, readonly []string) {
	t.Helper()
	c := Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.ContainerCreate(ctx, &container.Config{Image: image, Labels: map[string]string{LabelTest: "daemon-defaults"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatalf("create a container with the daemon's defaults: %v", err)
	}
	defer func() {
		if err := c.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove container %s: %v", resp.ID, err)
		}
	}()
	info, err := c.ContainerInspect(ctx, resp.ID)
	if err != nil {
		t.Fatalf("inspect container %s: %v", resp.ID, err)
	}
	return info.HostConfig.MaskedPaths, info.HostConfig.ReadonlyPaths
}
