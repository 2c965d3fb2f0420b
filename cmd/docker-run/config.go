package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dockerrun/dockerrun"
)

// config is the server's configuration, read from the environment. The
// variables are docker-run's, with the same names and meanings, plus
// dockerrun's own; only API_ACCESS_TOKEN is required.
type config struct {
	listenAddr   string
	listenPort   int
	workers      int64
	accessToken  string
	queueSize    int64
	queueTimeout time.Duration
	maxBody      int64
	reapInterval time.Duration
	debugAddr    string
	logLevel     slog.Level
	logFormat    string

	socketPath    string
	dockerTimeout time.Duration

	hostname        string
	user            string
	memory          int64
	cpus            float64
	pidsLimit       int64
	networkDisabled bool
	nofile          dockerrun.Ulimit
	nproc           *dockerrun.Ulimit
	capAdd          []string
	capDrop         []string
	noNewPrivileges bool
	readonlyRootfs  bool
	tmpDir          dockerrun.Tmpfs
	workDir         dockerrun.Tmpfs
	runtime         string

	maxExecutionTime time.Duration
	maxOutputSize    int64
	allowedImages    []string
	warmPool         map[string]int
	warmMaxAge       time.Duration
	owner            string
	keepContainer    bool
}

// envReader reads typed variables and collects every problem.
type envReader struct {
	lookup   func(string) (string, bool)
	problems []string
}

func (e *envReader) bad(name, value, want string) {
	e.problems = append(e.problems, fmt.Sprintf("%s=%q: %s", name, value, want))
}

func (e *envReader) str(name, def string) string {
	if v, ok := e.lookup(name); ok {
		return v
	}
	return def
}

func (e *envReader) int(name string, def, lo, hi int64) int64 {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < lo || n > hi {
		e.bad(name, v, fmt.Sprintf("want a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

func (e *envReader) float(name string, def, lo, hi float64) float64 {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < lo || f > hi {
		e.bad(name, v, fmt.Sprintf("want a number from %g to %g", lo, hi))
		return def
	}
	return f
}

func (e *envReader) bool(name string, def bool) bool {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		e.bad(name, v, "want true or false")
		return def
	}
	return b
}

// seconds reads a whole number of seconds, as docker-run does.
func (e *envReader) seconds(name string, def time.Duration, lo, hi int64) time.Duration {
	return time.Duration(e.int(name, int64(def/time.Second), lo, hi)) * time.Second
}

func (e *envReader) list(name string, def []string) []string {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	return strings.Fields(v)
}

// loadConfig reads the configuration. Its error names every variable that
// is missing or malformed, with its value.
func loadConfig(lookup func(string) (string, bool)) (*config, error) {
	e := &envReader{lookup: lookup}
	c := &config{
		listenAddr:   e.str("SERVER_LISTEN_ADDR", "127.0.0.1"),
		listenPort:   int(e.int("SERVER_LISTEN_PORT", 8088, 0, 65535)),
		workers:      e.int("SERVER_WORKER_THREADS", dockerrun.DefaultMaxConcurrent, 1, 10_000),
		accessToken:  e.str("API_ACCESS_TOKEN", ""),
		queueSize:    e.int("SERVER_QUEUE_SIZE", dockerrun.DefaultMaxQueue, 0, 1_000_000),
		queueTimeout: e.seconds("SERVER_QUEUE_TIMEOUT", dockerrun.DefaultQueueWait, 1, 3600),
		maxBody:      e.int("SERVER_MAX_BODY_SIZE", 8<<20, 1024, 1<<30),
		reapInterval: e.seconds("SERVER_REAP_INTERVAL", time.Minute, 0, 86400),
		debugAddr:    e.str("SERVER_DEBUG_ADDR", ""),
		logFormat:    e.str("LOG_FORMAT", "json"),

		socketPath: e.str("DOCKER_UNIX_SOCKET_PATH", ""),
		// One bound for every daemon call: the larger of the two timeouts
		// that are set, or the default.
		dockerTimeout: max(e.seconds("DOCKER_UNIX_SOCKET_READ_TIMEOUT", 0, 1, 3600), e.seconds("DOCKER_UNIX_SOCKET_WRITE_TIMEOUT", 0, 1, 3600)),

		hostname:        e.str("DOCKER_CONTAINER_HOSTNAME", dockerrun.DefaultHostname),
		user:            e.str("DOCKER_CONTAINER_USER", dockerrun.DefaultUser),
		memory:          e.int("DOCKER_CONTAINER_MEMORY", dockerrun.DefaultMemory, 0, 1<<40),
		cpus:            e.float("DOCKER_CONTAINER_CPUS", 1, 0, 1024),
		pidsLimit:       e.int("DOCKER_CONTAINER_PIDS_LIMIT", dockerrun.DefaultPidsLimit, 0, 1<<22),
		networkDisabled: e.bool("DOCKER_CONTAINER_NETWORK_DISABLED", true),
		capAdd:          e.list("DOCKER_CONTAINER_CAP_ADD", nil),
		capDrop:         e.list("DOCKER_CONTAINER_CAP_DROP", []string{"ALL"}),
		noNewPrivileges: e.bool("DOCKER_CONTAINER_NO_NEW_PRIVILEGES", true),
		readonlyRootfs:  e.bool("DOCKER_CONTAINER_READONLY_ROOTFS", true),
		tmpDir: dockerrun.Tmpfs{
			Path:    e.str("DOCKER_CONTAINER_TMP_DIR_PATH", dockerrun.DefaultTmpDirPath),
			Options: e.str("DOCKER_CONTAINER_TMP_DIR_OPTIONS", dockerrun.DefaultTmpDirOptions),
		},
		workDir: dockerrun.Tmpfs{
			Path:    e.str("DOCKER_CONTAINER_WORK_DIR_PATH", dockerrun.DefaultWorkDirPath),
			Options: e.str("DOCKER_CONTAINER_WORK_DIR_OPTIONS", dockerrun.DefaultWorkDirOptions),
		},
		runtime: e.str("DOCKER_CONTAINER_RUNTIME", ""),

		maxExecutionTime: e.seconds("RUN_MAX_EXECUTION_TIME", dockerrun.DefaultMaxExecutionTime, 1, 3600),
		maxOutputSize:    e.int("RUN_MAX_OUTPUT_SIZE", dockerrun.DefaultMaxOutputSize, 64, 1<<30),
		allowedImages:    e.list("RUN_ALLOWED_IMAGES", nil),
		warmMaxAge:       e.seconds("RUN_WARM_MAX_AGE", dockerrun.DefaultWarmMaxAge, 1, 86400),
		owner:            e.str("SERVER_INSTANCE_NAME", dockerrun.DefaultOwner),
		keepContainer:    e.bool("DEBUG_KEEP_CONTAINER", false),
	}
	if c.dockerTimeout == 0 {
		c.dockerTimeout = dockerrun.DefaultDockerTimeout
	}
	_, nofileSoftSet := lookup("DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT")
	nofileSoft := e.int("DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT", dockerrun.DefaultNofile, 0, 1<<20)
	c.nofile = dockerrun.Ulimit{Soft: nofileSoft, Hard: e.int("DOCKER_CONTAINER_ULIMIT_NOFILE_HARD", max(nofileSoft, dockerrun.DefaultNofile), 0, 1<<20)}
	if !nofileSoftSet {
		// An unset soft limit follows a hard limit set below its default.
		c.nofile.Soft = min(c.nofile.Soft, c.nofile.Hard)
	}
	_, softSet := lookup("DOCKER_CONTAINER_ULIMIT_NPROC_SOFT")
	_, hardSet := lookup("DOCKER_CONTAINER_ULIMIT_NPROC_HARD")
	if softSet || hardSet {
		soft := e.int("DOCKER_CONTAINER_ULIMIT_NPROC_SOFT", -1, 0, 1<<22)
		hard := e.int("DOCKER_CONTAINER_ULIMIT_NPROC_HARD", soft, 0, 1<<22)
		if soft < 0 {
			soft = hard
		}
		c.nproc = &dockerrun.Ulimit{Soft: soft, Hard: hard}
	}

	if c.accessToken == "" {
		e.problems = append(e.problems, "API_ACCESS_TOKEN: required: set it to a long random secret that clients send in X-Access-Token")
	}
	if _, err := netip.ParseAddr(c.listenAddr); err != nil && c.listenAddr != "localhost" {
		e.bad("SERVER_LISTEN_ADDR", c.listenAddr, "want an IP address such as 127.0.0.1 or 0.0.0.0")
	}
	if c.debugAddr != "" && !loopback(c.debugAddr) {
		e.bad("SERVER_DEBUG_ADDR", c.debugAddr, "want a loopback address and port such as 127.0.0.1:6060: the debug listener has no token")
	}
	if v, ok := lookup("LOG_LEVEL"); ok {
		if err := c.logLevel.UnmarshalText([]byte(v)); err != nil {
			e.bad("LOG_LEVEL", v, "want debug, info, warn or error")
		}
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		e.bad("LOG_FORMAT", c.logFormat, "want json or text")
	}
	if v, ok := lookup("RUN_WARM_POOL"); ok {
		c.warmPool = map[string]int{}
		for _, f := range strings.Fields(v) {
			image, n, found := strings.Cut(f, "=")
			size, err := strconv.Atoi(n)
			if !found || image == "" || err != nil || size < 0 {
				e.bad("RUN_WARM_POOL", v, fmt.Sprintf("entry %q: want IMAGE=SIZE entries separated by spaces, e.g. dockerrun/python:latest=2", f))
				continue
			}
			c.warmPool[image] = size
		}
	}
	if len(e.problems) > 0 {
		return nil, errors.New("invalid configuration:\n  " + strings.Join(e.problems, "\n  "))
	}
	return c, nil
}

// loopback reports whether addr is host:port with a loopback host.
func loopback(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// addr is the address to listen on.
func (c *config) addr() string {
	return net.JoinHostPort(c.listenAddr, strconv.Itoa(c.listenPort))
}

// options turns the configuration into the Runner's options.
func (c *config) options(log *slog.Logger) []dockerrun.Option {
	opts := []dockerrun.Option{
		dockerrun.WithLogger(log),
		dockerrun.WithDockerTimeout(c.dockerTimeout),
		dockerrun.WithHostname(c.hostname),
		dockerrun.WithUser(c.user),
		dockerrun.WithMemory(c.memory),
		dockerrun.WithCPUs(c.cpus),
		dockerrun.WithPidsLimit(c.pidsLimit),
		dockerrun.WithNetworkDisabled(c.networkDisabled),
		dockerrun.WithNofile(c.nofile.Soft, c.nofile.Hard),
		dockerrun.WithCapAdd(c.capAdd...),
		dockerrun.WithCapDrop(c.capDrop...),
		dockerrun.WithNoNewPrivileges(c.noNewPrivileges),
		dockerrun.WithReadonlyRootfs(c.readonlyRootfs),
		dockerrun.WithTmpDir(c.tmpDir.Path, c.tmpDir.Options),
		dockerrun.WithWorkDir(c.workDir.Path, c.workDir.Options),
		dockerrun.WithRuntime(c.runtime),
		dockerrun.WithMaxExecutionTime(c.maxExecutionTime),
		dockerrun.WithMaxOutputSize(c.maxOutputSize),
		dockerrun.WithMaxConcurrentRuns(c.workers),
		dockerrun.WithQueue(c.queueSize, c.queueTimeout),
		dockerrun.WithAllowedImages(c.allowedImages...),
		dockerrun.WithWarmPool(c.warmPool),
		dockerrun.WithWarmMaxAge(c.warmMaxAge),
		dockerrun.WithOwner(c.owner),
		dockerrun.WithKeepContainer(c.keepContainer),
	}
	if c.nproc != nil {
		opts = append(opts, dockerrun.WithNproc(c.nproc.Soft, c.nproc.Hard))
	}
	if c.socketPath != "" {
		opts = append(opts, dockerrun.WithDockerHost("unix://"+c.socketPath))
	}
	return opts
}
