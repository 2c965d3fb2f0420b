package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/httpapi"
)

// config is the server's configuration, read from the environment: the
// Runner's options, and the few settings that are the server's own. The
// variables are docker-run's, with the same names and meanings, plus
// dockerrun's own; only API_ACCESS_TOKEN is required.
type config struct {
	// options are the Runner's options, one per table entry whose
	// variables are set: the library has the defaults of the others.
	options []dockerrun.Option
	// args are, by the entry's first variable, the arguments its option
	// was made with, for tests.
	args map[string][]any

	server
}

// server holds the settings that are the server's own, not the Runner's.
type server struct {
	listenAddr   string
	listenPort   int
	accessToken  string
	maxBody      int64
	reapInterval time.Duration
	debugAddr    string
	// listenFD is set by socket activation: serve on fd 3.
	listenFD    bool
	listenPID   int
	metricsAddr string
	logLevel    slog.Level
	logFormat   string
}

// The defaults of the server's own settings.
const (
	defaultListenAddr   = "127.0.0.1"
	defaultListenPort   = 8088
	defaultReapInterval = time.Minute
	defaultLogFormat    = "json"
)

// defaultServer is the server's own settings when no variable is set.
func defaultServer() server {
	return server{
		listenAddr:   defaultListenAddr,
		listenPort:   defaultListenPort,
		maxBody:      httpapi.DefaultMaxBodyBytes,
		reapInterval: defaultReapInterval,
		logLevel:     slog.LevelInfo,
		logFormat:    defaultLogFormat,
	}
}

// envVar documents one variable, as the README's tables show it.
type envVar struct {
	name   string
	syntax string // the Type column: what a value looks like
	def    string // the Default column
	doc    string // the Meaning column
}

// entry is one row of the configuration table: one or a few variables, and
// what their values become. Exactly one of option and set is non-nil.
type entry struct {
	vars []envVar
	// glot marks docker-run's own variables (the README's first table).
	glot bool
	// option turns the values of vars (nil where unset) into a Runner
	// option and the arguments it was made with. It is called when at
	// least one of vars is set; the library validates the option.
	option func(vals []*string) (dockerrun.Option, []any, error)
	// set applies the value of the single variable of a server setting.
	set func(s *server, v string) error
	// docker marks variables that the Docker client reads itself, shown
	// in one row.
	docker bool
}

// loadConfig reads the configuration. Its error names every variable that
// is missing or malformed, with its value and what is wanted instead.
func loadConfig(lookup func(string) (string, bool)) (*config, error) {
	c := &config{args: map[string][]any{}, server: defaultServer()}
	var problems []string
	for _, e := range table {
		if p := c.apply(e, lookup); p != "" {
			problems = append(problems, p)
		}
	}
	if c.accessToken == "" {
		problems = append(problems, "API_ACCESS_TOKEN: required: set it to a long random secret that clients send in X-Access-Token")
	}
	if len(problems) > 0 {
		return nil, errors.New("invalid configuration:\n  " + strings.Join(problems, "\n  "))
	}
	return c, nil
}

// apply reads the variables of e and applies them to c; it returns the
// problem with them, if any, naming the variables and their values.
func (c *config) apply(e entry, lookup func(string) (string, bool)) string {
	vals := make([]*string, len(e.vars))
	var given []string
	for i, v := range e.vars {
		if s, ok := lookup(v.name); ok {
			vals[i] = &s
			given = append(given, fmt.Sprintf("%s=%q", v.name, s))
		}
	}
	if given == nil || e.docker {
		return ""
	}
	var err error
	switch {
	case e.set != nil:
		err = e.set(&c.server, *vals[0])
	default:
		var opt dockerrun.Option
		var args []any
		opt, args, err = e.option(vals)
		var invalid *dockerrun.Error
		if err == nil && errors.As(opt.Validate(), &invalid) {
			err = errors.New(invalid.Message)
		}
		if err == nil {
			c.options = append(c.options, opt)
			c.args[e.vars[0].name] = args
		}
	}
	if err != nil {
		return strings.Join(given, ", ") + ": " + err.Error()
	}
	return ""
}

// runnerOptions returns the Runner's options, with log as its logger.
func (c *config) runnerOptions(log *slog.Logger) []dockerrun.Option {
	return append([]dockerrun.Option{dockerrun.WithLogger(log)}, c.options...)
}

// addr is the address to listen on.
func (s *server) addr() string {
	return net.JoinHostPort(s.listenAddr, strconv.Itoa(s.listenPort))
}

// Parsers of values. Each accepts the syntax only; the library checks the
// range of a Runner option's value, the setter that of a server setting.

func parseInt(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, errors.New("want a whole number")
	}
	return n, nil
}

func parseFloat(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, errors.New("want a number such as 0.5 or 2")
	}
	return f, nil
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return false, errors.New("want true or false")
	}
	return b, nil
}

// parseSeconds reads a whole number of seconds, as docker-run does.
func parseSeconds(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
		return 0, errors.New("want a whole number of seconds")
	}
	return time.Duration(n) * time.Second, nil
}

func parseString(v string) (string, error) { return v, nil }

// parseFields splits a space-separated list.
func parseFields(v string) ([]string, error) { return strings.Fields(v), nil }

// parseSeccompProfile reads a seccomp mode, or the path of a profile in
// Docker's JSON format, whose content it returns.
func parseSeccompProfile(v string) (string, error) {
	switch v {
	case dockerrun.SeccompBuiltin, dockerrun.SeccompDaemon, dockerrun.SeccompUnconfined:
		return v, nil
	case "":
		return "", fmt.Errorf("want %s, %s, %s or the path of a JSON profile", dockerrun.SeccompBuiltin, dockerrun.SeccompDaemon, dockerrun.SeccompUnconfined)
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return "", fmt.Errorf("want %s, %s, %s or the path of a JSON profile: %w", dockerrun.SeccompBuiltin, dockerrun.SeccompDaemon, dockerrun.SeccompUnconfined, err)
	}
	return string(b), nil
}

// parseWarmPool reads IMAGE=SIZE entries separated by spaces.
func parseWarmPool(v string) (map[string]int, error) {
	pool := map[string]int{}
	for _, f := range strings.Fields(v) {
		image, n, found := strings.Cut(f, "=")
		size, err := strconv.Atoi(n)
		if !found || image == "" || err != nil {
			return nil, fmt.Errorf("entry %q: want IMAGE=SIZE entries separated by spaces, e.g. dockerrun/python:latest=2", f)
		}
		pool[image] = size
	}
	return pool, nil
}

// one is the entry of a single variable whose value, parsed, is the
// argument of a Runner option.
func one[T any](v envVar, glot bool, parse func(string) (T, error), with func(T) dockerrun.Option) entry {
	return entry{vars: []envVar{v}, glot: glot, option: func(vals []*string) (dockerrun.Option, []any, error) {
		x, err := parse(*vals[0])
		if err != nil {
			return nil, nil, err
		}
		return with(x), []any{x}, nil
	}}
}

// pair is the entry of two variables that make one Runner option. An
// unset one takes the value that fill derives from the other (given
// first) or from the library's default.
func pair[T any](a, b envVar, glot bool, parse func(string) (T, error), fill func(x, y *T) (T, T), with func(x, y T) dockerrun.Option) entry {
	return entry{vars: []envVar{a, b}, glot: glot, option: func(vals []*string) (dockerrun.Option, []any, error) {
		var xy [2]*T
		for i, v := range vals {
			if v == nil {
				continue
			}
			p, err := parse(*v)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", []envVar{a, b}[i].name, err)
			}
			xy[i] = &p
		}
		x, y := fill(xy[0], xy[1])
		return with(x, y), []any{x, y}, nil
	}}
}

// server is the entry of a server setting.
func serverVar(v envVar, glot bool, set func(s *server, v string) error) entry {
	return entry{vars: []envVar{v}, glot: glot, set: set}
}

// or returns *p, or def if p is nil.
func or[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// ulimits fills an unset half of a ulimit: an unset soft limit is the
// default, lowered to a hard limit set below it; an unset hard limit is the
// default, raised to a soft limit set above it.
func ulimits(def int64) func(soft, hard *int64) (int64, int64) {
	return func(soft, hard *int64) (int64, int64) {
		switch {
		case soft == nil:
			return min(def, *hard), *hard
		case hard == nil:
			return *soft, max(def, *soft)
		}
		return *soft, *hard
	}
}

// sameUlimits fills an unset half of a ulimit that has no default with the
// half that is set.
func sameUlimits(soft, hard *int64) (int64, int64) {
	return or(soft, or(hard, 0)), or(hard, or(soft, 0))
}

// tmpfs fills an unset path or options of a tmpfs mount with its default.
func tmpfs(defPath, defOptions string) func(path, options *string) (string, string) {
	return func(path, options *string) (string, string) { return or(path, defPath), or(options, defOptions) }
}

func bytesDefault(n int64) string {
	return fmt.Sprintf("`%d` (%d MiB)", n, n>>20)
}

func secondsDefault(d time.Duration) string {
	return fmt.Sprintf("`%d`", d/time.Second)
}

func quoted(s string) string { return "`" + s + "`" }

// table is every variable the server reads, in the README's order. The
// README's tables are generated from it (see TestREADMEVariables).
var table = []entry{
	serverVar(envVar{"API_ACCESS_TOKEN", "string", "**required**", "token clients send in `X-Access-Token`"}, true,
		func(s *server, v string) error { s.accessToken = v; return nil }),
	serverVar(envVar{"SERVER_LISTEN_ADDR", "IP address", quoted(defaultListenAddr), "listen address (`0.0.0.0` for all)"}, true,
		func(s *server, v string) error {
			if _, err := netip.ParseAddr(v); err != nil && v != "localhost" {
				return errors.New("want an IP address such as 127.0.0.1 or 0.0.0.0")
			}
			s.listenAddr = v
			return nil
		}),
	serverVar(envVar{"SERVER_LISTEN_PORT", "0-65535", quoted(strconv.Itoa(defaultListenPort)), "listen port (0: any free port, logged)"}, true,
		func(s *server, v string) error {
			n, err := parseInt(v)
			if err != nil || n < 0 || n > 65535 {
				return errors.New("want a port number from 0 to 65535")
			}
			s.listenPort = int(n)
			return nil
		}),
	one(envVar{"SERVER_WORKER_THREADS", "integer", quoted(strconv.Itoa(dockerrun.DefaultMaxConcurrent)), "how many runs (containers) at once, warm pool included"}, true,
		parseInt, dockerrun.WithMaxConcurrentRuns),
	one(envVar{"DOCKER_UNIX_SOCKET_PATH", "path", "`DOCKER_HOST` or `/var/run/docker.sock`", "the daemon's socket"}, true,
		parseString, func(p string) dockerrun.Option { return dockerrun.WithDockerHost("unix://" + p) }),
	pair(envVar{"DOCKER_UNIX_SOCKET_READ_TIMEOUT", "seconds", secondsDefault(dockerrun.DefaultDockerTimeout), "bound on each daemon call (create, start, kill, remove...); the larger of the two that are set is used. Never applied to a run's output stream: the run has its own deadline"},
		envVar{"DOCKER_UNIX_SOCKET_WRITE_TIMEOUT", "seconds", secondsDefault(dockerrun.DefaultDockerTimeout), "as above"}, true,
		parseSeconds,
		func(r, w *time.Duration) (time.Duration, time.Duration) { return or(r, 0), or(w, 0) },
		func(r, w time.Duration) dockerrun.Option { return dockerrun.WithDockerTimeout(max(r, w)) }),
	one(envVar{"DOCKER_CONTAINER_HOSTNAME", "string", quoted(dockerrun.DefaultHostname), "hostname inside the container"}, true,
		parseString, dockerrun.WithHostname),
	one(envVar{"DOCKER_CONTAINER_USER", "user[:group]", quoted(dockerrun.DefaultUser), "user the code runs as (glot's images: `glot`, uid 1000); images labelled `dockerrun.agent.privsep=1` (ours) run their agent as root beside it"}, true,
		parseString, dockerrun.WithUser),
	one(envVar{"DOCKER_CONTAINER_MEMORY", "bytes", bytesDefault(dockerrun.DefaultMemory), "memory limit; swap is limited to the same (no swap). 0: none"}, true,
		parseInt, dockerrun.WithMemory),
	one(envVar{"DOCKER_CONTAINER_NETWORK_DISABLED", "bool", "`true`", "no network (network mode `none`: only `lo`)"}, true,
		parseBool, dockerrun.WithNetworkDisabled),
	pair(envVar{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT", "integer", quoted(strconv.Itoa(dockerrun.DefaultNofile)), "open files, soft"},
		envVar{"DOCKER_CONTAINER_ULIMIT_NOFILE_HARD", "integer", quoted(strconv.Itoa(dockerrun.DefaultNofile)), "open files, hard"}, true,
		parseInt, ulimits(dockerrun.DefaultNofile), dockerrun.WithNofile),
	pair(envVar{"DOCKER_CONTAINER_ULIMIT_NPROC_SOFT", "integer", "unset", "processes per host uid, soft (shared by parallel runs of the same uid; `DOCKER_CONTAINER_PIDS_LIMIT` is the per-container defence)"},
		envVar{"DOCKER_CONTAINER_ULIMIT_NPROC_HARD", "integer", "unset", "as above, hard"}, true,
		parseInt, sameUlimits, dockerrun.WithNproc),
	one(envVar{"DOCKER_CONTAINER_CAP_ADD", "space-separated", "empty", "capabilities to add (not for images labelled `dockerrun.agent.privsep=1`: their agent gets SETUID, SETGID and KILL (and SYS_RESOURCE under runsc), the code none)"}, true,
		parseFields, func(caps []string) dockerrun.Option { return dockerrun.WithCapAdd(caps...) }),
	one(envVar{"DOCKER_CONTAINER_CAP_DROP", "space-separated", "`ALL`", "capabilities to drop (images labelled `dockerrun.agent.privsep=1` drop `ALL`)"}, true,
		parseFields, func(caps []string) dockerrun.Option { return dockerrun.WithCapDrop(caps...) }),
	one(envVar{"DOCKER_CONTAINER_READONLY_ROOTFS", "bool", "`true`", "read-only root filesystem"}, true,
		parseBool, dockerrun.WithReadonlyRootfs),
	pair(envVar{"DOCKER_CONTAINER_TMP_DIR_PATH", "path", quoted(dockerrun.DefaultTmpDirPath), "tmpfs mount for temporary files (empty: none)"},
		envVar{"DOCKER_CONTAINER_TMP_DIR_OPTIONS", "mount options", quoted(dockerrun.DefaultTmpDirOptions), "its options"}, true,
		parseString, tmpfs(dockerrun.DefaultTmpDirPath, dockerrun.DefaultTmpDirOptions), dockerrun.WithTmpDir),
	pair(envVar{"DOCKER_CONTAINER_WORK_DIR_PATH", "path", quoted(dockerrun.DefaultWorkDirPath), "tmpfs mount for the agent's work dir (empty: none)"},
		envVar{"DOCKER_CONTAINER_WORK_DIR_OPTIONS", "mount options", quoted(dockerrun.DefaultWorkDirOptions), "its options"}, true,
		parseString, tmpfs(dockerrun.DefaultWorkDirPath, dockerrun.DefaultWorkDirOptions), dockerrun.WithWorkDir),
	one(envVar{"RUN_MAX_EXECUTION_TIME", "seconds", secondsDefault(dockerrun.DefaultMaxExecutionTime), "wall-clock limit of a run, from writing the payload: our agent stops the program at the limit and answers; a container with no answer " + dockerrun.AnswerGrace.String() + " later is killed"}, true,
		parseSeconds, dockerrun.WithMaxExecutionTime),
	one(envVar{"RUN_MAX_OUTPUT_SIZE", "bytes", quoted(strconv.Itoa(dockerrun.DefaultMaxOutputSize)), "cap on bytes read from the container; past it the container is killed"}, true,
		parseInt, dockerrun.WithMaxOutputSize),
	one(envVar{"DEBUG_KEEP_CONTAINER", "bool", "`false`", "keep containers (killed, not removed, labelled `dockerrun.kept=true`; never reaped) for debugging"}, true,
		parseBool, dockerrun.WithKeepContainer),

	{vars: []envVar{{"DOCKER_HOST", "", "Docker's", "a remote engine, as for the docker CLI"}, {name: "DOCKER_TLS_VERIFY"}, {name: "DOCKER_CERT_PATH"}, {name: "DOCKER_API_VERSION"}}, docker: true},
	one(envVar{"DOCKER_CONTAINER_PIDS_LIMIT", "integer", quoted(strconv.Itoa(dockerrun.DefaultPidsLimit)), "processes and threads per container (fork-bomb defence); under runsc, with our images, the code's RLIMIT_NPROC is a quarter of it and the container's limit 32 times it. 0: none"}, false,
		parseInt, dockerrun.WithPidsLimit),
	one(envVar{"DOCKER_CONTAINER_CPUS", "number", quoted(strconv.FormatFloat(dockerrun.DefaultNanoCPUs/1e9, 'g', -1, 64)), "CPU quota. 0: none"}, false,
		parseFloat, dockerrun.WithCPUs),
	one(envVar{"DOCKER_CONTAINER_NO_NEW_PRIVILEGES", "bool", "`true`", "`no-new-privileges` security option; always on for images labelled `dockerrun.agent.privsep=1` (ours), whose root agent holds SETUID, SETGID and KILL (and SYS_RESOURCE under runsc)"}, false,
		parseBool, dockerrun.WithNoNewPrivileges),
	one(envVar{"DOCKER_CONTAINER_RUNTIME", "string", "daemon default", "OCI runtime, e.g. `runsc` for gVisor"}, false,
		parseString, dockerrun.WithRuntime),
	one(envVar{"DOCKER_CONTAINER_SECCOMP_PROFILE", "`builtin`/`daemon`/`unconfined`/path", quoted(dockerrun.SeccompBuiltin), "seccomp profile: `builtin` (Docker's current default profile with io_uring denied, the same on every engine), `daemon` (the engine's own default), the path of a profile in Docker's JSON format (read at start-up; `docker-run seccomp-profile` prints the builtin one), or `unconfined` (refused unless `DANGEROUSLY_ALLOW_UNCONFINED_SECCOMP=true`). Under runsc gVisor ignores it. See docs/security.md"}, false,
		parseSeccompProfile, dockerrun.WithSeccompProfile),
	one(envVar{"DANGEROUSLY_ALLOW_UNCONFINED_SECCOMP", "bool", "`false`", "allows `DOCKER_CONTAINER_SECCOMP_PROFILE=unconfined`: untrusted code may then make every system call; logged as a warning at start-up"}, false,
		parseBool, dockerrun.WithDangerouslyAllowUnconfinedSeccomp),
	one(envVar{"RUN_ALLOWED_IMAGES", "space-separated", "empty (any local image)", "images clients may name"}, false,
		parseFields, func(images []string) dockerrun.Option { return dockerrun.WithAllowedImages(images...) }),
	one(envVar{"RUN_WARM_POOL", "`IMAGE=N ...`", "empty", "containers started ahead of time per image, e.g. `dockerrun/python:latest=2`"}, false,
		parseWarmPool, dockerrun.WithWarmPool),
	one(envVar{"RUN_WARM_MAX_AGE", "seconds", secondsDefault(dockerrun.DefaultWarmMaxAge), "idle warm containers older than this are replaced"}, false,
		parseSeconds, dockerrun.WithWarmMaxAge),
	pair(envVar{"SERVER_QUEUE_SIZE", "integer", quoted(strconv.Itoa(dockerrun.DefaultMaxQueue)), "runs that may wait for a place; past it: 503 `runner.busy`"},
		envVar{"SERVER_QUEUE_TIMEOUT", "seconds", secondsDefault(dockerrun.DefaultQueueWait), "how long a run may wait for a place; then 503 `runner.busy`"}, false,
		func(v string) (int64, error) { return parseInt(v) },
		func(n, wait *int64) (int64, int64) {
			return or(n, dockerrun.DefaultMaxQueue), or(wait, int64(dockerrun.DefaultQueueWait/time.Second))
		},
		func(n, wait int64) dockerrun.Option { return dockerrun.WithQueue(n, time.Duration(wait)*time.Second) }),
	serverVar(envVar{"SERVER_MAX_BODY_SIZE", "bytes", quoted(strconv.Itoa(httpapi.DefaultMaxBodyBytes)), "request body limit (413 past it)"}, false,
		func(s *server, v string) error {
			n, err := parseInt(v)
			if err != nil || n < 1024 || n > 1<<30 {
				return errors.New("want a number of bytes from 1024 to 1073741824")
			}
			s.maxBody = n
			return nil
		}),
	one(envVar{"SERVER_INSTANCE_NAME", "name", quoted(dockerrun.DefaultOwner), "owner label of the containers; at start-up and every `SERVER_REAP_INTERVAL` the server removes containers of this owner left by a dead instance. Servers sharing a daemon need different names"}, false,
		parseString, dockerrun.WithOwner),
	serverVar(envVar{"SERVER_REAP_INTERVAL", "seconds", secondsDefault(defaultReapInterval), "how often to look for leftovers (0: only at start-up)"}, false,
		func(s *server, v string) error {
			d, err := parseSeconds(v)
			if err != nil || d < 0 {
				return errors.New("want a whole number of seconds, 0 or more")
			}
			s.reapInterval = d
			return nil
		}),
	serverVar(envVar{"LISTEN_FDS", "`1`", "unset", "systemd socket activation: serve on the socket passed as fd 3 instead of `SERVER_LISTEN_ADDR`:`SERVER_LISTEN_PORT`"}, false,
		func(s *server, v string) error {
			if v != "1" {
				return errors.New("want 1: the server takes one socket")
			}
			s.listenFD = true
			return nil
		}),
	serverVar(envVar{"LISTEN_PID", "pid", "unset", "with `LISTEN_FDS`: the process the socket is for; another's is ignored, as systemd wants"}, false,
		func(s *server, v string) error {
			n, err := parseInt(v)
			if err != nil || n <= 0 {
				return errors.New("want a process id")
			}
			s.listenPID = int(n)
			return nil
		}),
	serverVar(envVar{"SERVER_DEBUG_ADDR", "loopback `host:port`", "empty (off)", "serves `net/http/pprof` and `{\"goroutines\": N}` at `/debug/vars`; refused unless loopback, since it has no token"}, false,
		func(s *server, v string) error {
			if v != "" && !loopback(v) {
				return errors.New("want a loopback address and port such as 127.0.0.1:6060: the debug listener has no token")
			}
			s.debugAddr = v
			return nil
		}),
	serverVar(envVar{"SERVER_METRICS_ADDR", "`host:port`", "empty (off)", "serves Prometheus metrics at `/metrics` on a listener of its own, without a token: bind it to an address only your monitoring reaches. [docs/operations.md](docs/operations.md#metrics) lists them"}, false,
		func(s *server, v string) error {
			if v != "" && !hostPort(v) {
				return errors.New("want host:port such as 10.0.0.5:9090 or 127.0.0.1:9090")
			}
			s.metricsAddr = v
			return nil
		}),
	serverVar(envVar{"LOG_LEVEL", "`debug`/`info`/`warn`/`error`", quoted(strings.ToLower(slog.LevelInfo.String())), "log level"}, false,
		func(s *server, v string) error {
			if err := s.logLevel.UnmarshalText([]byte(v)); err != nil {
				return errors.New("want debug, info, warn or error")
			}
			return nil
		}),
	serverVar(envVar{"LOG_FORMAT", "`json`/`text`", quoted(defaultLogFormat), "log format; one line per request with status, code and duration, never payloads or tokens"}, false,
		func(s *server, v string) error {
			if v != "json" && v != "text" {
				return errors.New("want json or text")
			}
			s.logFormat = v
			return nil
		}),
}

// hostPort reports whether addr is host:port with a port number (the host
// may be empty: every address).
func hostPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// loopback reports whether addr is host:port with a loopback host.
func loopback(addr string) bool {
	if !hostPort(addr) {
		return false
	}
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
