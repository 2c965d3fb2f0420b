package dockerrun_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/testenv"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runPython runs code in the python image and decodes the JSON object it
// prints into v.
func runPython(t *testing.T, r *dockerrun.Runner, code string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := r.Run(ctx, testenv.Image("python"), map[string]any{
		"language": "python",
		"files":    []map[string]string{{"name": "main.py", "content": code}},
	})
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	if res.Error != "" || json.Unmarshal([]byte(res.Stdout), v) != nil {
		t.Fatalf("the probe answered stdout %q, stderr %q, error %q", res.Stdout, res.Stderr, res.Error)
	}
}

// engineMajor returns the major version of the daemon's Docker Engine.
func engineMajor(t *testing.T) int {
	t.Helper()
	v, err := testenv.Docker(t).ServerVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	major, err := strconv.Atoi(strings.SplitN(v.Version, ".", 2)[0])
	if err != nil {
		t.Fatalf("engine version %q: %v", v.Version, err)
	}
	return major
}

// TestSeccompModes runs the system call probe under each seccomp mode, with
// the daemon's default runtime (runc); internal/adversarial covers runsc.
func TestSeccompModes(t *testing.T) {
	t.Parallel()
	testenv.LanguageImages(t, "python")
	denied := map[string]string{"clone3": "ENOSYS", "thread": "OK"}
	for _, c := range testenv.DeniedCalls {
		denied[c] = "EPERM"
	}

	// A profile of one's own: the builtin one with io_uring allowed again,
	// which neither the builtin profile nor Docker 25's allows.
	builtin, err := dockerrun.BuiltinSeccompProfile()
	if err != nil {
		t.Fatal(err)
	}
	var own seccomp.Seccomp
	if err := json.Unmarshal(builtin, &own); err != nil {
		t.Fatal(err)
	}
	own.Syscalls = append(own.Syscalls[:len(own.Syscalls)-1], &seccomp.Syscall{
		LinuxSyscall: specs.LinuxSyscall{Names: []string{"io_uring_setup"}, Action: specs.ActAllow},
	})
	ownJSON, err := json.MarshalIndent(&own, "", "  ")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		opts []dockerrun.Option
		want func(map[string]string) // edits denied into what is expected
	}{
		{"builtin by default", nil, func(map[string]string) {}},
		{"builtin", []dockerrun.Option{dockerrun.WithSeccompProfile(dockerrun.SeccompBuiltin)}, func(map[string]string) {}},
		{
			name: "daemon",
			opts: []dockerrun.Option{dockerrun.WithSeccompProfile(dockerrun.SeccompDaemon)},
			want: func(m map[string]string) {
				// The reason for the builtin profile: before Docker 25
				// the daemon's own allows io_uring and every socket
				// family.
				if engineMajor(t) < 25 {
					m["io_uring_setup"] = "OK"
					m["socket(AF_VSOCK)"] = "OK"
				}
			},
		},
		{
			name: "a profile of its own",
			opts: []dockerrun.Option{dockerrun.WithSeccompProfile(string(ownJSON))},
			want: func(m map[string]string) { m["io_uring_setup"] = "OK" },
		},
		{
			name: "unconfined when allowed",
			opts: []dockerrun.Option{dockerrun.WithSeccompProfile(dockerrun.SeccompUnconfined), dockerrun.WithDangerouslyAllowUnconfinedSeccomp(true)},
			want: func(m map[string]string) {
				// Only the kernel says no now: to what needs a
				// capability, and to an unknown bpf command.
				for k := range m {
					m[k] = "OK"
				}
				m["bpf"], m["perf_event_open"], m["mount"], m["clone3"] = "EINVAL", "EFAULT", "EPERM", "EINVAL"
				m["kexec_load"] = "" // EPERM, or ENOSYS on a kernel built without kexec
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRunner(t, append([]dockerrun.Option{dockerrun.WithMaxExecutionTime(20 * time.Second)}, tt.opts...)...)
			want := map[string]string{}
			for k, v := range denied {
				want[k] = v
			}
			tt.want(want)
			var got map[string]string
			runPython(t, r, testenv.SyscallProbe, &got)
			if want["kexec_load"] == "" && (got["kexec_load"] == "EPERM" || got["kexec_load"] == "ENOSYS") {
				want["kexec_load"] = got["kexec_load"]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("system calls mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMaskedPathsInContainer checks that a runner's container masks every path the
// daemon masks by default, and dockerrun's own, and keeps the daemon's
// read-only paths.
func TestMaskedPathsInContainer(t *testing.T) {
	t.Parallel()
	image := testenv.LanguageImages(t, "python")[0]
	daemonMasked, daemonReadonly := testenv.DaemonDefaults(t, image)
	ours := dockerrun.MaskedPaths()
	for _, p := range daemonMasked {
		if !slices.Contains(ours, p) {
			t.Errorf("the daemon masks %s by default, and dockerrun.MaskedPaths() does not", p)
		}
	}

	r, owner := newOwnedRunner(t, dockerrun.WithKeepContainer(true), dockerrun.WithMaxExecutionTime(20*time.Second))
	var got map[string]any
	runPython(t, r, testenv.HostProbe(ours), &got)
	for _, p := range ours {
		switch got[p] {
		case "nothing", "ENOENT":
		default:
			t.Errorf("%s reads %v, want nothing", p, got[p])
		}
	}

	// The kept container shows what the runner asked for.
	list, _ := testenv.WaitContainers(t, dockerrun.LabelOwner, owner, 10*time.Second, "the kept container", func(l []container.Summary) bool { return len(l) == 1 })
	info, err := testenv.Docker(t).ContainerInspect(context.Background(), list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.Docker(t).ContainerRemove(context.Background(), list[0].ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ours, info.HostConfig.MaskedPaths); diff != "" {
		t.Errorf("masked paths of the runner's container mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(daemonReadonly, info.HostConfig.ReadonlyPaths); diff != "" {
		t.Errorf("read-only paths of the runner's container mismatch (-want +got):\n%s", diff)
	}
}
