package dockerrun

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/dockerrun/dockerrun/internal/protocol"
)

// Option configures a [Runner]. Options are checked together by [New], which
// names every invalid one.
type Option func(*config)

// Validate reports what is wrong with o on its own, in the words [New]
// would use, so that a program reading options from its own configuration
// can name the setting at fault. Problems that only show when options are
// combined are left to New.
func (o Option) Validate() error {
	c := defaultConfig()
	o(c)
	if len(c.problems) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalidConfig, Message: strings.Join(c.problems, "; ")}
}

// Defaults. They are the secure settings a reviewer would sign; each one has
// an option to change it.
const (
	DefaultHostname         = "dockerrun"
	DefaultUser             = "1000:1000"
	DefaultMemory           = 512 << 20 // bytes
	DefaultNofile           = 1024
	DefaultPidsLimit        = 128
	DefaultNanoCPUs         = 1_000_000_000 // one CPU
	DefaultTmpDirPath       = "/tmp"
	DefaultTmpDirOptions    = "rw,noexec,nosuid,size=64m"
	DefaultWorkDirPath      = "/home/glot"
	DefaultWorkDirOptions   = "rw,exec,nosuid,size=64m,uid=1000,gid=1000"
	DefaultMaxExecutionTime = 10 * time.Second
	DefaultMaxOutputSize    = 1 << 20 // bytes
	DefaultMaxConcurrent    = 8
	DefaultMaxQueue         = 64
	DefaultQueueWait        = 30 * time.Second
	DefaultDockerTimeout    = 30 * time.Second
	DefaultWarmMaxAge       = 5 * time.Minute
	DefaultOwner            = "docker-run"
)

// Limits of the protocol itself, whatever the options say.
const (
	// MaxPayloadSize is the largest payload, in bytes, that Run accepts.
	MaxPayloadSize = 16 << 20
	// maxAgentStderr is how much of the agent's stderr an error message
	// carries, in bytes.
	maxAgentStderr = 4 << 10
)

// Environment variables set in every container, so that an agent can apply
// the limits itself and return partial output before the runner's hard limits
// kill it.
const (
	// EnvMaxOutputSize holds the output limit in bytes.
	EnvMaxOutputSize = protocol.EnvMaxOutputSize
	// EnvMaxExecutionTime holds the execution time limit in milliseconds.
	EnvMaxExecutionTime = protocol.EnvMaxExecutionTime
	// EnvRunAs, set only for images labelled [LabelPrivsep], names the user
	// (the [WithUser] user, else the image's) that the agent, started as
	// root, runs the code as.
	EnvRunAs = protocol.EnvRunAs
	// EnvNproc, set only with EnvRunAs and under gVisor, is the
	// RLIMIT_NPROC the agent gives the code: inside a gVisor sandbox it
	// counts that sandbox's processes alone (under runc it counts every
	// process of the host uid, so it is not set there). With it the agent
	// also gets the capability SYS_RESOURCE, so that it can carry the
	// limit itself: gVisor applies it to root too, but not to a task with
	// that capability.
	EnvNproc = protocol.EnvNproc
)

// Under gVisor (a runtime whose name starts with "runsc"), the pids cgroup
// counts the sandbox's own host threads, twenty to fifty for each process
// of the code, and a fork bomb starves the sandbox itself at the pids limit. So
// for images labelled [LabelPrivsep] the code's processes and threads are
// capped inside the sandbox instead, where RLIMIT_NPROC counts them alone
// ([EnvNproc]: the pids limit / runscNprocDivisor), and the cgroup's limit,
// left as the host's backstop, is multiplied by runscPidsFactor. Measured
// on gVisor's ptrace platform, on the same 2-core machine on different
// days: fork bombs capped at 32 processes peaked at 430 to 760 host
// threads, then at 1,500 to 1,650 (how many threads the sentry runs
// varies, and each process's address space gets a stub thread for each);
// at 1,024 (a factor of 8) the sentry itself failed to start a thread and
// the sandbox died. A factor of 32 leaves 2.5 times the highest peak.
const (
	runscNprocDivisor = 4
	runscPidsFactor   = 32
)

// AnswerGrace is how long past a run's execution time limit the runner
// waits for the container's answer before it kills the container: the time
// dockerrun's agent, which stops the program at the limit, has to stop it
// and hand its answer through the daemon on a loaded host. (When the agent
// stopped the program a little before the limit instead, a host busy for a
// few hundred milliseconds turned its answer into a limits.execution_time
// error, and the program's output was lost.)
const AnswerGrace = time.Second

// gvisor reports whether the configured runtime is gVisor's.
func (c *config) gvisor() bool { return strings.HasPrefix(c.runtime, "runsc") }

// agentNproc returns the RLIMIT_NPROC that a separating agent gives the
// code, or 0 for none: only under gVisor and with a pids limit.
func (c *config) agentNproc() int64 {
	if !c.gvisor() || c.pidsLimit == 0 {
		return 0
	}
	return max(c.pidsLimit/runscNprocDivisor, 1)
}

// LabelPrivsep, set to "1" on an image, says that the image's agent
// separates privileges: started as root, it runs the user's code as the
// user named by [EnvRunAs], and needs only the capabilities SETUID, SETGID
// and KILL. dockerrun's own images carry it; glot's do not, and run as
// before.
const LabelPrivsep = protocol.LabelPrivsep

// Labels on every container a Runner creates.
const (
	// LabelOwner names the service that owns the container (see [WithOwner]).
	LabelOwner = "dockerrun.owner"
	// LabelInstance identifies the Runner that created the container.
	LabelInstance = "dockerrun.instance"
	// LabelWarm is "true" on containers created for the warm pool.
	LabelWarm = "dockerrun.warm"
	// LabelKept is "true" on containers that [WithKeepContainer] keeps:
	// [Runner.Reap] leaves them alone.
	LabelKept = "dockerrun.kept"
)

// ulimit is a soft and hard resource limit.
type ulimit struct {
	soft, hard int64
}

// tmpfs is a tmpfs mount: where, and its mount options (for example
// "rw,exec,nosuid,size=64m").
type tmpfs struct {
	path, options string
}

type config struct {
	hostname        string
	user            string
	memory          int64
	nanoCPUs        int64
	pidsLimit       int64
	networkDisabled bool
	nofile          *ulimit
	nproc           *ulimit
	capAdd          []string
	capDrop         []string
	noNewPrivileges bool
	seccomp         string
	unconfinedOK    bool
	readonlyRootfs  bool
	tmpDir          *tmpfs
	workDir         *tmpfs
	runtime         string
	env             []string

	maxExecutionTime time.Duration
	maxOutputSize    int64
	maxConcurrent    int64
	maxQueue         int64
	queueWait        time.Duration

	docker        DockerAPI
	dockerHost    string
	dockerTimeout time.Duration

	allowedImages []string
	warmPool      map[string]int
	warmMaxAge    time.Duration

	owner         string
	instance      string
	keepContainer bool
	logger        *slog.Logger
	observer      Observer

	problems []string
}

func defaultConfig() *config {
	return &config{
		hostname:         DefaultHostname,
		user:             DefaultUser,
		memory:           DefaultMemory,
		nanoCPUs:         DefaultNanoCPUs,
		pidsLimit:        DefaultPidsLimit,
		networkDisabled:  true,
		nofile:           &ulimit{soft: DefaultNofile, hard: DefaultNofile},
		capDrop:          []string{"ALL"},
		noNewPrivileges:  true,
		seccomp:          SeccompBuiltin,
		readonlyRootfs:   true,
		tmpDir:           &tmpfs{path: DefaultTmpDirPath, options: DefaultTmpDirOptions},
		workDir:          &tmpfs{path: DefaultWorkDirPath, options: DefaultWorkDirOptions},
		maxExecutionTime: DefaultMaxExecutionTime,
		maxOutputSize:    DefaultMaxOutputSize,
		maxConcurrent:    DefaultMaxConcurrent,
		maxQueue:         DefaultMaxQueue,
		queueWait:        DefaultQueueWait,
		dockerTimeout:    DefaultDockerTimeout,
		warmMaxAge:       DefaultWarmMaxAge,
		owner:            DefaultOwner,
		logger:           slog.New(slog.DiscardHandler),
	}
}

// WithHostname sets the hostname inside the container. Default:
// [DefaultHostname].
func WithHostname(name string) Option {
	return func(c *config) { c.hostname = name }
}

// WithUser sets the user (name or uid[:gid]) that the container's command
// runs as. An empty user runs as the image's user, which is often root.
// Default: [DefaultUser], uid 1000 as in glot's images.
func WithUser(user string) Option {
	return func(c *config) { c.user = user }
}

// minMemory is the smallest memory limit Docker accepts, in bytes.
const minMemory = 6 << 20

// WithMemory sets the container's memory limit in bytes; swap is limited to
// the same amount, so the container cannot swap. Zero means no limit.
// Default: [DefaultMemory] (512 MiB).
func WithMemory(bytes int64) Option {
	return func(c *config) {
		if bytes < 0 || (bytes > 0 && bytes < minMemory) {
			c.problem("memory: %d bytes: want 0 (no limit) or at least 6 MiB, Docker's minimum", bytes)
		}
		c.memory = bytes
	}
}

// WithCPUs limits the container to the given number of CPUs (for example 0.5
// or 2). Zero means no limit. Default: 1.
func WithCPUs(cpus float64) Option {
	return func(c *config) {
		// Under 0.01 the kernel refuses the CFS quota at start, and under
		// 1e-9 the limit would round to none; NaN fails every comparison.
		if !(cpus == 0 || cpus >= 0.01 && cpus <= 1024) {
			c.problem("cpus: %g: want 0 (no limit) or 0.01 to 1024", cpus)
		}
		c.nanoCPUs = int64(cpus * 1e9)
	}
}

// WithPidsLimit limits how many processes and threads can exist in the
// container at once, the real defence against fork bombs. Zero means no
// limit. Under gVisor, for images labelled [LabelPrivsep], the code gets a
// quarter of it as its RLIMIT_NPROC ([EnvNproc]) and the container 32
// times it, for gVisor's own threads. Default: [DefaultPidsLimit].
func WithPidsLimit(n int64) Option {
	return func(c *config) {
		if n < 0 {
			c.problem("pids limit: %d: want 0 (no limit) or a positive number", n)
		}
		c.pidsLimit = n
	}
}

// WithNetworkDisabled disables networking in the container (network mode
// "none": only a loopback interface). Default: true.
func WithNetworkDisabled(disabled bool) Option {
	return func(c *config) { c.networkDisabled = disabled }
}

// WithNofile sets the open-files ulimit. Default: [DefaultNofile] for both.
func WithNofile(soft, hard int64) Option {
	return func(c *config) {
		c.checkUlimit("nofile", soft, hard)
		c.nofile = &ulimit{soft: soft, hard: hard}
	}
}

// WithNproc sets the processes ulimit. It counts every process of the
// container's uid on the host, so parallel runs as the same uid share it;
// [WithPidsLimit] is the per-container limit. Default: not set.
func WithNproc(soft, hard int64) Option {
	return func(c *config) {
		c.checkUlimit("nproc", soft, hard)
		c.nproc = &ulimit{soft: soft, hard: hard}
	}
}

var capability = regexp.MustCompile(`^(?i:ALL|(CAP_)?[A-Z_]+)$`)

// WithCapAdd adds Linux capabilities (for example "NET_BIND_SERVICE").
// Default: none. Containers of images labelled [LabelPrivsep] get SETUID,
// SETGID and KILL for their agent instead (and under gVisor SYS_RESOURCE,
// see [EnvNproc]), and [WithCapDrop] "ALL".
func WithCapAdd(caps ...string) Option {
	return func(c *config) {
		c.checkCaps("cap add", caps)
		c.capAdd = caps
	}
}

// WithCapDrop drops Linux capabilities; "ALL" drops every one. Default:
// ["ALL"].
func WithCapDrop(caps ...string) Option {
	return func(c *config) {
		c.checkCaps("cap drop", caps)
		c.capDrop = caps
	}
}

// WithNoNewPrivileges sets the no-new-privileges security option, so setuid
// binaries cannot raise privileges. Default: true. Containers of images
// labelled [LabelPrivsep] get it whatever on is: their agent runs as root
// with SETUID, SETGID and KILL, which the code could regain without it
// through the image's setuid binaries.
func WithNoNewPrivileges(on bool) Option {
	return func(c *config) { c.noNewPrivileges = on }
}

// WithSeccompProfile sets the seccomp profile of every container:
// [SeccompBuiltin], [SeccompDaemon], [SeccompUnconfined] (refused unless
// [WithDangerouslyAllowUnconfinedSeccomp]) or a profile of one's own in
// Docker's JSON format, the content of a file one would give to
// `docker run --security-opt seccomp=FILE` ([BuiltinSeccompProfile] is a
// starting point). Under gVisor (runsc) the profile is ignored unless the
// runtime was registered with --oci-seccomp: the sandbox's own kernel
// answers the system calls. Default: [SeccompBuiltin].
func WithSeccompProfile(profile string) Option {
	return func(c *config) {
		switch profile {
		case SeccompBuiltin, SeccompDaemon, SeccompUnconfined:
		default:
			if err := checkSeccompProfile(profile); err != nil {
				c.problem("seccomp profile: want %s, %s, %s or a profile in Docker's JSON format: %v", SeccompBuiltin, SeccompDaemon, SeccompUnconfined, err)
			}
		}
		c.seccomp = profile
	}
}

// WithDangerouslyAllowUnconfinedSeccomp allows [SeccompUnconfined]: without
// seccomp, untrusted code can make every system call the kernel has,
// io_uring and user namespaces included. [New] logs a warning when the
// profile is unconfined. Default: false.
func WithDangerouslyAllowUnconfinedSeccomp(allow bool) Option {
	return func(c *config) { c.unconfinedOK = allow }
}

// WithReadonlyRootfs mounts the container's root filesystem read-only.
// Default: true.
func WithReadonlyRootfs(readonly bool) Option {
	return func(c *config) { c.readonlyRootfs = readonly }
}

// WithTmpDir mounts a tmpfs at path with the given mount options; an empty
// path mounts none. Default: [DefaultTmpDirPath] with
// [DefaultTmpDirOptions].
func WithTmpDir(path, options string) Option {
	return func(c *config) { c.tmpDir = c.mount("tmp dir", path, options) }
}

// WithWorkDir mounts a tmpfs at path, the agent's work directory, with the
// given mount options; an empty path mounts none. Default:
// [DefaultWorkDirPath] with [DefaultWorkDirOptions].
func WithWorkDir(path, options string) Option {
	return func(c *config) { c.workDir = c.mount("work dir", path, options) }
}

// WithRuntime selects the OCI runtime registered with the daemon, for
// example "runsc" for gVisor. Default: "" (the daemon's default, runc).
func WithRuntime(name string) Option {
	return func(c *config) { c.runtime = name }
}

// WithEnv adds environment variables ("KEY=value") to every container.
// Default: none besides [EnvMaxOutputSize] and [EnvMaxExecutionTime].
func WithEnv(env ...string) Option {
	return func(c *config) {
		for _, e := range env {
			if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
				c.problem("env: %q: want KEY=value", e)
			}
		}
		c.env = env
	}
}

// WithMaxExecutionTime sets the wall-clock limit of a run, from writing the
// payload. dockerrun's agent, told the limit, stops the program at it and
// answers with what the program printed; a container that has not answered
// [AnswerGrace] after the limit (glot's images do not stop the program
// themselves) is killed. Default: [DefaultMaxExecutionTime].
func WithMaxExecutionTime(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.problem("max execution time: %v: want a positive duration", d)
		}
		c.maxExecutionTime = d
	}
}

// WithMaxOutputSize caps the bytes read from a container (stdout and stderr
// together); past it the container is killed and reading stops, so memory
// stays bounded. Default: [DefaultMaxOutputSize] (1 MiB).
func WithMaxOutputSize(bytes int64) Option {
	return func(c *config) {
		if bytes < 64 || bytes > 1<<30 {
			c.problem("max output size: %d bytes: want 64 bytes to 1 GiB", bytes)
		}
		c.maxOutputSize = bytes
	}
}

// WithMaxConcurrentRuns sets how many containers may exist at once, warm
// pool containers included; further runs wait for a place. Default:
// [DefaultMaxConcurrent].
func WithMaxConcurrentRuns(n int64) Option {
	return func(c *config) {
		if n < 1 {
			c.problem("max concurrent runs: %d: want at least 1", n)
		}
		c.maxConcurrent = n
	}
}

// WithQueue bounds the runs that wait for a place: at most maxWaiting wait
// at once, each for at most wait; past either, Run fails at once with
// [ErrBusy]. Default: [DefaultMaxQueue] runs for [DefaultQueueWait].
func WithQueue(maxWaiting int64, wait time.Duration) Option {
	return func(c *config) {
		if maxWaiting < 0 {
			c.problem("queue: %d waiting: want 0 or more", maxWaiting)
		}
		if wait <= 0 {
			c.problem("queue wait: %v: want a positive duration", wait)
		}
		c.maxQueue, c.queueWait = maxWaiting, wait
	}
}

// WithDockerClient makes the Runner use the given Docker API client, for
// example a *client.Client from github.com/docker/docker/client. The caller
// keeps ownership: [Runner.Close] does not close it. Default: a client
// configured from the environment (DOCKER_HOST, DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH, DOCKER_API_VERSION) with API version negotiation.
func WithDockerClient(c DockerAPI) Option {
	return func(cfg *config) {
		if c == nil {
			cfg.problem("docker client: nil")
		}
		cfg.docker = c
	}
}

// WithDockerHost makes the Runner talk to the daemon at host, for example
// "unix:///var/run/docker.sock" or "tcp://10.0.0.1:2376". Default: the
// DOCKER_HOST environment variable, or the local socket.
func WithDockerHost(host string) Option {
	return func(c *config) {
		if !strings.Contains(host, "://") {
			c.problem("docker host: %q: want a URL such as unix:///var/run/docker.sock", host)
		}
		c.dockerHost = host
	}
}

// WithDockerTimeout bounds every call to the daemon other than the attached
// stream (create, start, kill, remove, inspect, ping). Default:
// [DefaultDockerTimeout].
func WithDockerTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.problem("docker timeout: %v: want a positive duration", d)
		}
		c.dockerTimeout = d
	}
}

// WithAllowedImages restricts the images that Run accepts to the given
// references (matched exactly; "python" means "python:latest"). Default:
// any image present on the daemon. The daemon never pulls an image for a
// run either way.
func WithAllowedImages(images ...string) Option {
	return func(c *config) {
		for _, img := range images {
			if err := checkImageName(img); err != nil {
				c.problem("allowed images: %v", err)
			}
		}
		c.allowedImages = images
	}
}

// WithWarmPool keeps, for each image, the given number of containers
// created, attached and started ahead of time, each used for exactly one
// run. The pool starts filling at the first [Runner.Ping], [Runner.Run] or
// [Runner.Reap]. A container that a run takes is replaced when that run
// ends, or half a second after it was taken if the run lasts longer, so
// that the replacement's start does not take CPU from the run's program;
// at once if the pool is left less than half full.
// Default: none.
func WithWarmPool(sizes map[string]int) Option {
	return func(c *config) {
		for img, n := range sizes {
			if err := checkImageName(img); err != nil {
				c.problem("warm pool: %v", err)
			}
			if n < 0 {
				c.problem("warm pool: %s=%d: want a size of 0 or more", img, n)
			}
		}
		c.warmPool = sizes
	}
}

// WithWarmMaxAge sets how long a warm container may wait unused before it is
// replaced by a fresh one. Default: [DefaultWarmMaxAge].
func WithWarmMaxAge(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.problem("warm max age: %v: want a positive duration", d)
		}
		c.warmMaxAge = d
	}
}

var labelValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// WithOwner sets the owner label of the Runner's containers. [Runner.Reap]
// removes containers of the same owner left by other instances, so servers
// sharing a daemon must use different owners. Default: [DefaultOwner].
func WithOwner(owner string) Option {
	return func(c *config) {
		if !labelValue.MatchString(owner) {
			c.problem("owner: %q: want 1 to 63 letters, digits, '.', '_' or '-'", owner)
		}
		c.owner = owner
	}
}

// WithKeepContainer leaves containers in place after their run (they are
// still killed), for debugging. They carry the label [LabelKept], and stay
// until someone removes them: neither [Runner.Reap] nor [Runner.Close]
// does. Default: false.
func WithKeepContainer(keep bool) Option {
	return func(c *config) { c.keepContainer = keep }
}

// WithLogger sets the logger. Payloads are never logged. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.problem("logger: nil")
		}
		c.logger = l
	}
}

func (c *config) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *config) checkUlimit(name string, soft, hard int64) {
	if soft < 0 || hard < 0 || soft > hard {
		c.problem("%s ulimit: soft %d, hard %d: want 0 <= soft <= hard", name, soft, hard)
	}
}

func (c *config) checkCaps(name string, caps []string) {
	for _, cp := range caps {
		if !capability.MatchString(cp) {
			c.problem("%s: %q: want a capability name such as NET_ADMIN or ALL", name, cp)
		}
	}
}

func (c *config) mount(name, path, options string) *tmpfs {
	if path == "" {
		return nil
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, ": ,") {
		c.problem("%s: path %q: want an absolute path without ':', ',' or spaces", name, path)
	}
	return &tmpfs{path: path, options: options}
}

// validate reports every problem recorded while applying options, and those
// that only show in combination.
func (c *config) validate() error {
	if c.tmpDir != nil && c.workDir != nil && c.tmpDir.path == c.workDir.path {
		c.problem("tmp dir and work dir: both at %s: want different paths", c.tmpDir.path)
	}
	if len(c.allowedImages) > 0 {
		for img := range c.warmPool {
			if !c.imageAllowed(img) {
				c.problem("warm pool: %s is not an allowed image", img)
			}
		}
	}
	warm := 0
	for _, n := range c.warmPool {
		warm += n
	}
	if warm > 0 && int64(warm) >= c.maxConcurrent {
		c.problem("warm pool: %d containers: want fewer than max concurrent runs (%d), so that cold runs get a place", warm, c.maxConcurrent)
	}
	if c.seccomp == SeccompUnconfined && !c.unconfinedOK {
		c.problem("seccomp profile: unconfined: refused, since it lets untrusted code make every system call: if you mean it, allow it as well with WithDangerouslyAllowUnconfinedSeccomp(true), in the server DANGEROUSLY_ALLOW_UNCONFINED_SECCOMP=true")
	}
	if c.seccomp == SeccompBuiltin {
		if _, err := builtinSeccomp(); err != nil {
			c.problem("seccomp profile: %v", err)
		}
	}
	if c.docker != nil && c.dockerHost != "" {
		c.problem("docker host and docker client: both given: want one")
	}
	if len(c.problems) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalidConfig, Message: strings.Join(c.problems, "; ")}
}

var imageRef = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`)

// checkImageName accepts local image references ("name", "org/name:tag",
// "name@sha256:..."); it refuses anything with a registry host, so that a
// run can never name an image to be fetched from elsewhere.
func checkImageName(image string) error {
	if image == "" {
		return errors.New("image name is empty")
	}
	if len(image) > 255 || !imageRef.MatchString(image) {
		return fmt.Errorf("image %q: want a local image reference such as dockerrun/python:latest", image)
	}
	if first, _, ok := strings.Cut(image, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return fmt.Errorf("image %q: names a registry host %q: only local images can run", image, first)
	}
	return nil
}

// normalizeImage adds the implied ":latest" tag.
func normalizeImage(image string) string {
	if strings.Contains(image, "@") {
		return image
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if !strings.Contains(last, ":") {
		return image + ":latest"
	}
	return image
}

func (c *config) imageAllowed(image string) bool {
	if len(c.allowedImages) == 0 {
		return true
	}
	n := normalizeImage(image)
	for _, a := range c.allowedImages {
		if normalizeImage(a) == n {
			return true
		}
	}
	return false
}
