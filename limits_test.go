package dockerrun

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"
)

// problemNames returns the option named by each problem of a
// config.invalid error: the text before the first ':' of each.
func problemNames(t *testing.T, err error) []string {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T (%v) is not an *Error", err, err)
	}
	var names []string
	for _, p := range strings.Split(e.Message, "; ") {
		name, _, _ := strings.Cut(p, ":")
		names = append(names, name)
	}
	return names
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	t.Parallel()
	fake := newFakeDocker()
	tests := []struct {
		name string
		opts []Option
		want []string // the options named, in order
	}{
		{"negative memory", []Option{WithMemory(-1)}, []string{"memory"}},
		{"memory under Docker's minimum", []Option{WithMemory(4 << 20)}, []string{"memory"}},
		{"negative cpus", []Option{WithCPUs(-0.5)}, []string{"cpus"}},
		{"too many cpus", []Option{WithCPUs(2048)}, []string{"cpus"}},
		{"NaN cpus", []Option{WithCPUs(math.NaN())}, []string{"cpus"}},
		{"infinite cpus", []Option{WithCPUs(math.Inf(1))}, []string{"cpus"}},
		{"cpus that round to no limit", []Option{WithCPUs(1e-10)}, []string{"cpus"}},
		{"cpus under Docker's minimum", []Option{WithCPUs(0.001)}, []string{"cpus"}},
		{"negative pids limit", []Option{WithPidsLimit(-1)}, []string{"pids limit"}},
		{"nofile soft over hard", []Option{WithNofile(2048, 1024)}, []string{"nofile ulimit"}},
		{"negative nofile", []Option{WithNofile(-1, 1024)}, []string{"nofile ulimit"}},
		{"nproc soft over hard", []Option{WithNproc(10, 5)}, []string{"nproc ulimit"}},
		{"capability with a space", []Option{WithCapAdd("NET ADMIN")}, []string{"cap add"}},
		{"empty capability", []Option{WithCapDrop("")}, []string{"cap drop"}},
		{"relative tmp dir", []Option{WithTmpDir("tmp", "rw")}, []string{"tmp dir"}},
		{"work dir with a colon", []Option{WithWorkDir("/home/a:b", "rw")}, []string{"work dir"}},
		{"tmp dir and work dir at one path", []Option{WithTmpDir("/sandbox", "rw"), WithWorkDir("/sandbox", "rw")}, []string{"tmp dir and work dir"}},
		{"env without =", []Option{WithEnv("LANG")}, []string{"env"}},
		{"env without a key", []Option{WithEnv("=x")}, []string{"env"}},
		{"zero execution time", []Option{WithMaxExecutionTime(0)}, []string{"max execution time"}},
		{"output size too small", []Option{WithMaxOutputSize(10)}, []string{"max output size"}},
		{"output size too big", []Option{WithMaxOutputSize(2 << 30)}, []string{"max output size"}},
		{"no concurrent runs", []Option{WithMaxConcurrentRuns(0)}, []string{"max concurrent runs"}},
		{"negative queue", []Option{WithQueue(-1, time.Second)}, []string{"queue"}},
		{"zero queue wait", []Option{WithQueue(1, 0)}, []string{"queue wait"}},
		{"nil docker client", []Option{WithDockerClient(nil)}, []string{"docker client"}},
		{"docker host without a scheme", []Option{WithDockerHost("/var/run/docker.sock")}, []string{"docker host"}},
		{"docker host and client", []Option{WithDockerHost("unix:///var/run/docker.sock"), WithDockerClient(fake)}, []string{"docker host and docker client"}},
		{"zero docker timeout", []Option{WithDockerTimeout(0)}, []string{"docker timeout"}},
		{"allowed image on a registry", []Option{WithAllowedImages("ghcr.io/a/b")}, []string{"allowed images"}},
		{"allowed image empty", []Option{WithAllowedImages("")}, []string{"allowed images"}},
		{"warm pool image uppercase", []Option{WithWarmPool(map[string]int{"Python": 1})}, []string{"warm pool"}},
		{"warm pool negative size", []Option{WithWarmPool(map[string]int{"python": -1})}, []string{"warm pool"}},
		{"warm pool image not allowed", []Option{WithWarmPool(map[string]int{"python": 1}), WithAllowedImages("ruby")}, []string{"warm pool"}},
		{"warm pool as big as the limit", []Option{WithWarmPool(map[string]int{"python": 2}), WithMaxConcurrentRuns(2)}, []string{"warm pool"}},
		{"zero warm max age", []Option{WithWarmMaxAge(0)}, []string{"warm max age"}},
		{"empty owner", []Option{WithOwner("")}, []string{"owner"}},
		{"owner with a space", []Option{WithOwner("a b")}, []string{"owner"}},
		{"owner too long", []Option{WithOwner(strings.Repeat("a", 64))}, []string{"owner"}},
		{"nil logger", []Option{WithLogger(nil)}, []string{"logger"}},
		{"seccomp unconfined, not allowed", []Option{WithSeccompProfile(SeccompUnconfined)}, []string{"seccomp profile"}},
		{"seccomp unconfined, allowed then not", []Option{WithDangerouslyAllowUnconfinedSeccomp(true), WithSeccompProfile(SeccompUnconfined), WithDangerouslyAllowUnconfinedSeccomp(false)}, []string{"seccomp profile"}},
		{"seccomp empty", []Option{WithSeccompProfile("")}, []string{"seccomp profile"}},
		{"seccomp unknown word", []Option{WithSeccompProfile("default")}, []string{"seccomp profile"}},
		{"seccomp a path, not a profile", []Option{WithSeccompProfile("/etc/docker/seccomp.json")}, []string{"seccomp profile"}},
		{"seccomp not an object", []Option{WithSeccompProfile(`["SCMP_ACT_ERRNO"]`)}, []string{"seccomp profile"}},
		{"seccomp two objects", []Option{WithSeccompProfile(`{"defaultAction":"SCMP_ACT_ERRNO"} {}`)}, []string{"seccomp profile"}},
		{"seccomp without a default action", []Option{WithSeccompProfile(`{"syscalls":[]}`)}, []string{"seccomp profile"}},
		{"seccomp with architectures and archMap", []Option{WithSeccompProfile(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`)}, []string{"seccomp profile"}},
		{"seccomp rule with name and names", []Option{WithSeccompProfile(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}`)}, []string{"seccomp profile"}},
		{"seccomp rule without a name", []Option{WithSeccompProfile(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}`)}, []string{"seccomp profile"}},
		{"seccomp with a bad kernel version", []Option{WithSeccompProfile(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"four"}}]}`)}, []string{"seccomp profile"}},
		{
			name: "several bad options reported together",
			opts: []Option{WithMemory(-1), WithOwner(""), WithMaxConcurrentRuns(0), WithEnv("A=1", "B"), WithDockerClient(fake)},
			want: []string{"memory", "owner", "max concurrent runs", "env"},
		},
		{
			name: "every problem of one option",
			opts: []Option{WithAllowedImages("A", "docker.io/x", "ok"), WithCapAdd("A B", "C D")},
			want: []string{"allowed images", "allowed images", "cap add", "cap add"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := New(tt.opts...)
			if err == nil {
				closeRunner(t, r)
				t.Fatalf("New() succeeded, want an error naming %v", tt.want)
			}
			if r != nil {
				t.Errorf("New() = %v with an error, want nil", r)
			}
			if diff := cmp.Diff(CodeInvalidConfig, ErrorCode(err)); diff != "" {
				t.Errorf("New() error code mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("errors.Is(%v, ErrInvalidConfig) = false", err)
			}
			if diff := cmp.Diff(tt.want, problemNames(t, err)); diff != "" {
				t.Errorf("New() options named mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			// An option that is wrong alone says so alone, in New's words
			// (and one wrong only with the defaults of others, not at all).
			if len(tt.opts) == 1 {
				if v := tt.opts[0].Validate(); v != nil {
					if diff := cmp.Diff(err, v); diff != "" {
						t.Errorf("Validate() mismatch with New()'s error (-new +validate):\n%s", diff)
					}
				}
			}
		})
	}
}

// Validate leaves to New the problems that only show in combination.
func TestOptionValidateAlone(t *testing.T) {
	t.Parallel()
	for _, o := range []Option{
		WithWarmPool(map[string]int{"python": DefaultMaxConcurrent}),
		WithWorkDir(DefaultTmpDirPath, "rw"),
		WithMemory(0),
	} {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate() = %v, want nil", err)
		}
	}
	if err := WithMemory(-1).Validate(); ErrorCode(err) != CodeInvalidConfig {
		t.Errorf("WithMemory(-1).Validate() = %v, want a %s error", err, CodeInvalidConfig)
	}
}

func TestNewAcceptsValidOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []Option
	}{
		{"defaults", nil},
		{"fake client", []Option{WithDockerClient(newFakeDocker())}},
		{"docker host", []Option{WithDockerHost("tcp://127.0.0.1:1")}},
		{"no limits", []Option{WithMemory(0), WithCPUs(0), WithPidsLimit(0), WithNetworkDisabled(false)}},
		{"smallest limits", []Option{WithMemory(6 << 20), WithCPUs(0.01), WithPidsLimit(1), WithNofile(0, 0), WithNproc(1, 1), WithMaxOutputSize(64), WithMaxConcurrentRuns(1), WithQueue(0, time.Nanosecond)}},
		{"largest limits", []Option{WithCPUs(1024), WithMaxOutputSize(1 << 30)}},
		{"no tmpfs", []Option{WithTmpDir("", ""), WithWorkDir("", "")}},
		{"same path when one is off", []Option{WithTmpDir("", ""), WithWorkDir(DefaultTmpDirPath, "rw")}},
		{"capabilities", []Option{WithCapAdd("NET_BIND_SERVICE", "cap_chown"), WithCapDrop("ALL", "CAP_SYS_ADMIN")}},
		{"no capabilities dropped", []Option{WithCapDrop()}},
		{"everything", []Option{
			WithHostname("box"), WithUser(""), WithRuntime("runsc"), WithEnv("A=", "B=c=d"),
			WithMaxExecutionTime(time.Millisecond), WithDockerTimeout(time.Second),
			WithAllowedImages("python", "org/ruby:3.3", "x@sha256:"+strings.Repeat("a", 64)),
			WithWarmPool(map[string]int{"python:latest": 2, "org/ruby:3.3": 0}), WithWarmMaxAge(time.Second),
			WithMaxConcurrentRuns(3), WithOwner("svc-1.a_b"), WithKeepContainer(true),
			WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithNoNewPrivileges(false), WithReadonlyRootfs(false),
			WithDockerClient(newFakeDocker()),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := New(tt.opts...)
			if err != nil {
				t.Fatalf("New() error: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Close(ctx); err != nil {
				t.Errorf("Close() error: %v", err)
			}
		})
	}
}

func TestNewInstance(t *testing.T) {
	t.Parallel()
	a, b := newTestRunner(t, newFakeDocker()), newTestRunner(t, newFakeDocker())
	if a.Instance() == b.Instance() || !labelValue.MatchString(a.Instance()) {
		t.Errorf("Instance() = %q and %q, want two different label values", a.Instance(), b.Instance())
	}
}

func TestCheckImageName(t *testing.T) {
	t.Parallel()
	digest := "@sha256:" + strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		image string
		ok    bool
	}{
		{"python", true},
		{"python:3.12", true},
		{"python:3.12-slim", true},
		{"dockerrun/python:latest", true},
		{"glot/python:latest", true},
		{"a/b/c", true},
		{"my-org/my_image.v2", true},
		{"my__org/image", true},
		{"python:Tag_With.Caps-1", true},
		{"python" + digest, true},
		{"org/python:3" + digest, true},
		{"docker.io", true}, // a one-part name, not a host

		{"", false},
		{"docker.io/library/python", false},
		{"docker.io/x", false},
		{"localhost:5000/x", false},
		{"localhost/x", false},
		{"ghcr.io/a/b", false},
		{"registry.example.com:443/a", false},
		{"127.0.0.1:5000/x", false},
		{"my.org/image", false},
		{"Python", false},
		{"org/Python", false},
		{"python:", false},
		{":latest", false},
		{"python@sha256:abc", false},
		{"python" + strings.ToUpper(digest), false},
		{"a//b", false},
		{"/a", false},
		{"a/", false},
		{"-a", false},
		{"a-", false},
		{"a b", false},
		{"a\nb", false},
		{"python:" + strings.Repeat("t", 129), false},
		{strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			t.Parallel()
			err := checkImageName(tt.image)
			if got := err == nil; got != tt.ok {
				t.Errorf("checkImageName(%q) = %v, want ok %v", tt.image, err, tt.ok)
			}
		})
	}
}

func TestNormalizeImage(t *testing.T) {
	t.Parallel()
	digest := "@sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		image, want string
	}{
		{"python", "python:latest"},
		{"python:3", "python:3"},
		{"python:latest", "python:latest"},
		{"org/python", "org/python:latest"},
		{"org/python:3.12", "org/python:3.12"},
		{"a/b/c", "a/b/c:latest"},
		{"python" + digest, "python" + digest},
		{"python:3" + digest, "python:3" + digest},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, normalizeImage(tt.image)); diff != "" {
				t.Errorf("normalizeImage(%q) mismatch (-want +got):\n%s", tt.image, diff)
			}
		})
	}
}

func TestImageAllowed(t *testing.T) {
	t.Parallel()
	digest := "@sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		allowed []string
		image   string
		want    bool
	}{
		{"no list allows all", nil, "anything:1", true},
		{"exact", []string{"python:3"}, "python:3", true},
		{"implied latest in the list", []string{"python"}, "python:latest", true},
		{"implied latest in the run", []string{"python:latest"}, "python", true},
		{"both implied", []string{"org/python"}, "org/python", true},
		{"other tag", []string{"python"}, "python:3", false},
		{"other image", []string{"python", "ruby"}, "perl", false},
		{"second entry", []string{"python", "ruby"}, "ruby:latest", true},
		{"prefix is not enough", []string{"python"}, "python2", false},
		{"org matters", []string{"python"}, "org/python", false},
		{"digest exact", []string{"python" + digest}, "python" + digest, true},
		{"digest is not the tag", []string{"python"}, "python" + digest, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := defaultConfig()
			c.allowedImages = tt.allowed
			if got := c.imageAllowed(tt.image); got != tt.want {
				t.Errorf("imageAllowed(%q) with %q = %v, want %v", tt.image, tt.allowed, got, tt.want)
			}
		})
	}
}

// builtinOpt is the security option that sets the builtin seccomp profile.
func builtinOpt() string {
	p, err := BuiltinSeccompProfile()
	if err != nil {
		panic(err)
	}
	return "seccomp=" + string(p)
}

// defaultHost is the host configuration of a Runner with default options.
func defaultHost() container.HostConfig {
	pids := int64(DefaultPidsLimit)
	return container.HostConfig{
		LogConfig:      container.LogConfig{Type: "none"},
		NetworkMode:    "none",
		IpcMode:        "private",
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{builtinOpt(), "no-new-privileges"},
		MaskedPaths:    maskedPaths,
		ReadonlyRootfs: true,
		Tmpfs: map[string]string{
			DefaultTmpDirPath:  DefaultTmpDirOptions,
			DefaultWorkDirPath: DefaultWorkDirOptions,
		},
		Resources: container.Resources{
			Memory:     DefaultMemory,
			MemorySwap: DefaultMemory,
			NanoCPUs:   DefaultNanoCPUs,
			PidsLimit:  &pids,
			Ulimits: []*container.Ulimit{
				{Name: "core", Soft: 0, Hard: 0},
				{Name: "nofile", Soft: DefaultNofile, Hard: DefaultNofile},
			},
		},
	}
}

func TestHostConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []Option
		want func(h *container.HostConfig)
	}{
		{"defaults", nil, func(*container.HostConfig) {}},
		{
			name: "no limits",
			opts: []Option{WithMemory(0), WithCPUs(0), WithPidsLimit(0)},
			want: func(h *container.HostConfig) {
				h.Memory, h.MemorySwap, h.NanoCPUs, h.PidsLimit = 0, 0, 0, nil
			},
		},
		{
			name: "limits",
			opts: []Option{WithMemory(64 << 20), WithCPUs(1.5), WithPidsLimit(32), WithNofile(64, 128), WithNproc(50, 60)},
			want: func(h *container.HostConfig) {
				pids := int64(32)
				h.Memory, h.MemorySwap, h.NanoCPUs, h.PidsLimit = 64<<20, 64<<20, 1_500_000_000, &pids
				h.Ulimits = []*container.Ulimit{
					{Name: "core", Soft: 0, Hard: 0},
					{Name: "nofile", Soft: 64, Hard: 128},
					{Name: "nproc", Soft: 50, Hard: 60},
				}
			},
		},
		{
			name: "loosened",
			opts: []Option{WithNetworkDisabled(false), WithNoNewPrivileges(false), WithReadonlyRootfs(false), WithCapDrop(), WithCapAdd("NET_ADMIN")},
			want: func(h *container.HostConfig) {
				h.NetworkMode, h.SecurityOpt, h.ReadonlyRootfs = "", []string{builtinOpt()}, false
				h.CapDrop, h.CapAdd = nil, []string{"NET_ADMIN"}
			},
		},
		{
			name: "tmpfs mounts",
			opts: []Option{WithTmpDir("", ""), WithWorkDir("/work", "rw,size=1m")},
			want: func(h *container.HostConfig) {
				h.Tmpfs = map[string]string{"/work": "rw,size=1m"}
			},
		},
		{
			name: "seccomp: the daemon's profile",
			opts: []Option{WithSeccompProfile(SeccompDaemon)},
			want: func(h *container.HostConfig) { h.SecurityOpt = []string{"no-new-privileges"} },
		},
		{
			name: "seccomp: the daemon's profile, no other option",
			opts: []Option{WithSeccompProfile(SeccompDaemon), WithNoNewPrivileges(false)},
			want: func(h *container.HostConfig) { h.SecurityOpt = nil },
		},
		{
			name: "seccomp: unconfined, allowed",
			opts: []Option{WithSeccompProfile(SeccompUnconfined), WithDangerouslyAllowUnconfinedSeccomp(true)},
			want: func(h *container.HostConfig) { h.SecurityOpt = []string{"seccomp=unconfined", "no-new-privileges"} },
		},
		{
			name: "seccomp: allowed but not chosen",
			opts: []Option{WithDangerouslyAllowUnconfinedSeccomp(true)},
			want: func(*container.HostConfig) {},
		},
		{
			name: "seccomp: a profile of one's own, compacted",
			opts: []Option{WithSeccompProfile("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"}]\n}\n")},
			want: func(h *container.HostConfig) {
				h.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`, "no-new-privileges"}
			},
		},
		{
			name: "runtime",
			opts: []Option{WithRuntime("runsc")},
			want: func(h *container.HostConfig) { h.Runtime = "runsc" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newTestRunner(t, newFakeDocker(), tt.opts...)
			want := defaultHost()
			tt.want(&want)
			if diff := cmp.Diff(want, r.host); diff != "" {
				t.Errorf("hostConfig() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
