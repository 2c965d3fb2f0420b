package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dockerrun/dockerrun"
)

// lookupIn returns a lookup function that reads env.
func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// with returns a copy of env with more variables set.
func with(env map[string]string, more ...string) map[string]string {
	out := make(map[string]string, len(env)+len(more)/2)
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(more); i += 2 {
		out[more[i]] = more[i+1]
	}
	return out
}

const testToken = "t0ken"

// minimal is the smallest valid environment.
var minimal = map[string]string{"API_ACCESS_TOKEN": testToken}

// defaultConfig is the configuration of [minimal]: the documented defaults.
func defaultConfig() *config {
	return &config{
		listenAddr:   "127.0.0.1",
		listenPort:   8088,
		workers:      dockerrun.DefaultMaxConcurrent,
		accessToken:  testToken,
		queueSize:    dockerrun.DefaultMaxQueue,
		queueTimeout: dockerrun.DefaultQueueWait,
		maxBody:      8 << 20,
		reapInterval: time.Minute,
		logLevel:     slog.LevelInfo,
		logFormat:    "json",

		socketPath:    "",
		dockerTimeout: dockerrun.DefaultDockerTimeout,

		hostname:        dockerrun.DefaultHostname,
		user:            dockerrun.DefaultUser,
		memory:          dockerrun.DefaultMemory,
		cpus:            1,
		pidsLimit:       dockerrun.DefaultPidsLimit,
		networkDisabled: true,
		nofile:          dockerrun.Ulimit{Soft: dockerrun.DefaultNofile, Hard: dockerrun.DefaultNofile},
		nproc:           nil,
		capAdd:          nil,
		capDrop:         []string{"ALL"},
		noNewPrivileges: true,
		readonlyRootfs:  true,
		tmpDir:          dockerrun.Tmpfs{Path: dockerrun.DefaultTmpDirPath, Options: dockerrun.DefaultTmpDirOptions},
		workDir:         dockerrun.Tmpfs{Path: dockerrun.DefaultWorkDirPath, Options: dockerrun.DefaultWorkDirOptions},
		runtime:         "",

		maxExecutionTime: dockerrun.DefaultMaxExecutionTime,
		maxOutputSize:    dockerrun.DefaultMaxOutputSize,
		allowedImages:    nil,
		warmPool:         nil,
		warmMaxAge:       dockerrun.DefaultWarmMaxAge,
		owner:            dockerrun.DefaultOwner,
		keepContainer:    false,
	}
}

// fullEnv sets every variable to a value other than its default.
var fullEnv = map[string]string{
	// docker-run's variables.
	"SERVER_LISTEN_ADDR":                  "0.0.0.0",
	"SERVER_LISTEN_PORT":                  "9090",
	"SERVER_WORKER_THREADS":               "4",
	"API_ACCESS_TOKEN":                    "another token",
	"DOCKER_UNIX_SOCKET_PATH":             "/nonexistent/docker.sock",
	"DOCKER_UNIX_SOCKET_READ_TIMEOUT":     "12",
	"DOCKER_UNIX_SOCKET_WRITE_TIMEOUT":    "9",
	"DOCKER_CONTAINER_HOSTNAME":           "glot",
	"DOCKER_CONTAINER_USER":               "glot",
	"DOCKER_CONTAINER_MEMORY":             "1000000000",
	"DOCKER_CONTAINER_NETWORK_DISABLED":   "false",
	"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT": "90",
	"DOCKER_CONTAINER_ULIMIT_NOFILE_HARD": "100",
	"DOCKER_CONTAINER_ULIMIT_NPROC_SOFT":  "70",
	"DOCKER_CONTAINER_ULIMIT_NPROC_HARD":  "80",
	"DOCKER_CONTAINER_CAP_ADD":            "NET_BIND_SERVICE  CHOWN",
	"DOCKER_CONTAINER_CAP_DROP":           "MKNOD NET_RAW",
	"DOCKER_CONTAINER_READONLY_ROOTFS":    "false",
	"DOCKER_CONTAINER_TMP_DIR_PATH":       "/scratch",
	"DOCKER_CONTAINER_TMP_DIR_OPTIONS":    "rw,noexec,size=1m",
	"DOCKER_CONTAINER_WORK_DIR_PATH":      "/home/user",
	"DOCKER_CONTAINER_WORK_DIR_OPTIONS":   "rw,exec,size=2m",
	"RUN_MAX_EXECUTION_TIME":              "15",
	"RUN_MAX_OUTPUT_SIZE":                 "100000",
	"DEBUG_KEEP_CONTAINER":                "true",
	// dockerrun's own.
	"SERVER_QUEUE_SIZE":                  "7",
	"SERVER_QUEUE_TIMEOUT":               "5",
	"SERVER_MAX_BODY_SIZE":               "65536",
	"SERVER_REAP_INTERVAL":               "0",
	"SERVER_INSTANCE_NAME":               "runner-2",
	"LOG_LEVEL":                          "warn",
	"LOG_FORMAT":                         "text",
	"DOCKER_CONTAINER_CPUS":              "0.5",
	"DOCKER_CONTAINER_PIDS_LIMIT":        "64",
	"DOCKER_CONTAINER_NO_NEW_PRIVILEGES": "false",
	"DOCKER_CONTAINER_RUNTIME":           "runsc",
	"RUN_ALLOWED_IMAGES":                 "glot/python:latest glot/bash",
	"RUN_WARM_POOL":                      "glot/python:latest=2 glot/bash=1",
	"RUN_WARM_MAX_AGE":                   "60",
}

// fullConfig is the configuration of [fullEnv].
func fullConfig() *config {
	return &config{
		listenAddr:   "0.0.0.0",
		listenPort:   9090,
		workers:      4,
		accessToken:  "another token",
		queueSize:    7,
		queueTimeout: 5 * time.Second,
		maxBody:      65536,
		reapInterval: 0,
		logLevel:     slog.LevelWarn,
		logFormat:    "text",

		socketPath:    "/nonexistent/docker.sock",
		dockerTimeout: 12 * time.Second, // the longer of read and write

		hostname:        "glot",
		user:            "glot",
		memory:          1000000000,
		cpus:            0.5,
		pidsLimit:       64,
		networkDisabled: false,
		nofile:          dockerrun.Ulimit{Soft: 90, Hard: 100},
		nproc:           &dockerrun.Ulimit{Soft: 70, Hard: 80},
		capAdd:          []string{"NET_BIND_SERVICE", "CHOWN"},
		capDrop:         []string{"MKNOD", "NET_RAW"},
		noNewPrivileges: false,
		readonlyRootfs:  false,
		tmpDir:          dockerrun.Tmpfs{Path: "/scratch", Options: "rw,noexec,size=1m"},
		workDir:         dockerrun.Tmpfs{Path: "/home/user", Options: "rw,exec,size=2m"},
		runtime:         "runsc",

		maxExecutionTime: 15 * time.Second,
		maxOutputSize:    100000,
		allowedImages:    []string{"glot/python:latest", "glot/bash"},
		warmPool:         map[string]int{"glot/python:latest": 2, "glot/bash": 1},
		warmMaxAge:       time.Minute,
		owner:            "runner-2",
		keepContainer:    true,
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want *config
	}{
		{name: "defaults", env: minimal, want: defaultConfig()},
		{name: "every variable", env: fullEnv, want: fullConfig()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := loadConfig(lookupIn(tt.env))
			if err != nil {
				t.Fatalf("loadConfig() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("loadConfig() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadConfigVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string // name, value, ... on top of minimal
		edit func(c *config)
	}{
		{name: "listen on localhost", env: []string{"SERVER_LISTEN_ADDR", "localhost"}, edit: func(c *config) { c.listenAddr = "localhost" }},
		{name: "listen on IPv6", env: []string{"SERVER_LISTEN_ADDR", "::1"}, edit: func(c *config) { c.listenAddr = "::1" }},
		{name: "any port", env: []string{"SERVER_LISTEN_PORT", "0"}, edit: func(c *config) { c.listenPort = 0 }},
		{name: "spaces around a number", env: []string{"SERVER_WORKER_THREADS", " 16\n"}, edit: func(c *config) { c.workers = 16 }},
		// The larger of the two timeouts is used, each 30 s by default.
		{name: "read timeout alone, lower", env: []string{"DOCKER_UNIX_SOCKET_READ_TIMEOUT", "5"}, edit: func(c *config) { c.dockerTimeout = 5 * time.Second }},
		{name: "read timeout alone, higher", env: []string{"DOCKER_UNIX_SOCKET_READ_TIMEOUT", "50"}, edit: func(c *config) { c.dockerTimeout = 50 * time.Second }},
		{name: "write timeout alone, higher", env: []string{"DOCKER_UNIX_SOCKET_WRITE_TIMEOUT", "45"}, edit: func(c *config) { c.dockerTimeout = 45 * time.Second }},
		{name: "both timeouts", env: []string{"DOCKER_UNIX_SOCKET_READ_TIMEOUT", "5", "DOCKER_UNIX_SOCKET_WRITE_TIMEOUT", "7"}, edit: func(c *config) { c.dockerTimeout = 7 * time.Second }},
		{name: "socket path", env: []string{"DOCKER_UNIX_SOCKET_PATH", "/var/run/docker.sock"}, edit: func(c *config) { c.socketPath = "/var/run/docker.sock" }},
		{name: "no memory limit", env: []string{"DOCKER_CONTAINER_MEMORY", "0"}, edit: func(c *config) { c.memory = 0 }},
		{name: "image's user", env: []string{"DOCKER_CONTAINER_USER", ""}, edit: func(c *config) { c.user = "" }},
		{name: "bool 1", env: []string{"DEBUG_KEEP_CONTAINER", "1"}, edit: func(c *config) { c.keepContainer = true }},
		{name: "bool TRUE", env: []string{"DEBUG_KEEP_CONTAINER", "TRUE"}, edit: func(c *config) { c.keepContainer = true }},
		{name: "bool 0", env: []string{"DOCKER_CONTAINER_NETWORK_DISABLED", "0"}, edit: func(c *config) { c.networkDisabled = false }},
		{name: "nofile soft above default", env: []string{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT", "2048"}, edit: func(c *config) { c.nofile = dockerrun.Ulimit{Soft: 2048, Hard: 2048} }},
		{name: "nofile soft below default", env: []string{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT", "100"}, edit: func(c *config) { c.nofile = dockerrun.Ulimit{Soft: 100, Hard: dockerrun.DefaultNofile} }},
		{name: "nofile hard above default", env: []string{"DOCKER_CONTAINER_ULIMIT_NOFILE_HARD", "4096"}, edit: func(c *config) { c.nofile = dockerrun.Ulimit{Soft: dockerrun.DefaultNofile, Hard: 4096} }},
		{name: "nofile hard below default", env: []string{"DOCKER_CONTAINER_ULIMIT_NOFILE_HARD", "512"}, edit: func(c *config) { c.nofile = dockerrun.Ulimit{Soft: 512, Hard: 512} }},
		{name: "nproc soft alone", env: []string{"DOCKER_CONTAINER_ULIMIT_NPROC_SOFT", "50"}, edit: func(c *config) { c.nproc = &dockerrun.Ulimit{Soft: 50, Hard: 50} }},
		{name: "nproc hard alone", env: []string{"DOCKER_CONTAINER_ULIMIT_NPROC_HARD", "60"}, edit: func(c *config) { c.nproc = &dockerrun.Ulimit{Soft: 60, Hard: 60} }},
		{name: "cap add, any spaces", env: []string{"DOCKER_CONTAINER_CAP_ADD", "  NET_ADMIN\tSYS_PTRACE \n"}, edit: func(c *config) { c.capAdd = []string{"NET_ADMIN", "SYS_PTRACE"} }},
		{name: "cap drop none", env: []string{"DOCKER_CONTAINER_CAP_DROP", ""}, edit: func(c *config) { c.capDrop = nil }},
		{name: "no tmp dir", env: []string{"DOCKER_CONTAINER_TMP_DIR_PATH", ""}, edit: func(c *config) { c.tmpDir.Path = "" }},
		{name: "log level DEBUG", env: []string{"LOG_LEVEL", "DEBUG"}, edit: func(c *config) { c.logLevel = slog.LevelDebug }},
		{name: "log level error", env: []string{"LOG_LEVEL", "error"}, edit: func(c *config) { c.logLevel = slog.LevelError }},
		{name: "empty warm pool", env: []string{"RUN_WARM_POOL", ""}, edit: func(c *config) { c.warmPool = map[string]int{} }},
		{name: "warm pool", env: []string{"RUN_WARM_POOL", " a=1  b:2=0 "}, edit: func(c *config) { c.warmPool = map[string]int{"a": 1, "b:2": 0} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := defaultConfig()
			tt.edit(want)
			got, err := loadConfig(lookupIn(with(minimal, tt.env...)))
			if err != nil {
				t.Fatalf("loadConfig() error: %v", err)
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(config{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("loadConfig() mismatch (-want +got):\n%s", diff)
			}
			// A warm pool starts filling at New: keep it off the real daemon.
			got.socketPath = "/nonexistent.sock"
			r, err := dockerrun.New(got.options(slog.New(slog.DiscardHandler))...)
			if err != nil {
				t.Fatalf("dockerrun.New(options()) error: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Close(ctx); err != nil {
				t.Errorf("Close() error: %v", err)
			}
		})
	}
}

func TestLoadConfigMissingToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
	}{
		{name: "unset", env: map[string]string{}},
		{name: "empty", env: map[string]string{"API_ACCESS_TOKEN": ""}},
		{name: "unset, others set", env: map[string]string{"SERVER_LISTEN_PORT": "9000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(lookupIn(tt.env))
			if err == nil {
				t.Fatalf("loadConfig() = %+v, nil; want an error", c)
			}
			if !strings.Contains(err.Error(), "API_ACCESS_TOKEN") {
				t.Errorf("loadConfig() error %q does not name API_ACCESS_TOKEN", err)
			}
		})
	}
}

func TestLoadConfigMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
	}{
		{"SERVER_LISTEN_ADDR", "not-an-ip"},
		{"SERVER_LISTEN_ADDR", "127.0.0.1:80"},
		{"SERVER_LISTEN_PORT", "abc"},
		{"SERVER_LISTEN_PORT", "65536"},
		{"SERVER_LISTEN_PORT", "-1"},
		{"SERVER_WORKER_THREADS", "0"},
		{"SERVER_WORKER_THREADS", "2.5"},
		{"DOCKER_UNIX_SOCKET_READ_TIMEOUT", "0"},
		{"DOCKER_UNIX_SOCKET_WRITE_TIMEOUT", "10s"},
		{"DOCKER_CONTAINER_MEMORY", "1g"},
		{"DOCKER_CONTAINER_MEMORY", "-1"},
		{"DOCKER_CONTAINER_NETWORK_DISABLED", "yes"},
		{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT", "many"},
		{"DOCKER_CONTAINER_ULIMIT_NOFILE_HARD", "-5"},
		{"DOCKER_CONTAINER_ULIMIT_NPROC_SOFT", "x"},
		{"DOCKER_CONTAINER_ULIMIT_NPROC_HARD", "y"},
		{"DOCKER_CONTAINER_READONLY_ROOTFS", "2"},
		{"RUN_MAX_EXECUTION_TIME", "10s"},
		{"RUN_MAX_EXECUTION_TIME", "0"},
		{"RUN_MAX_OUTPUT_SIZE", "10"},
		{"RUN_MAX_OUTPUT_SIZE", "1MB"},
		{"DEBUG_KEEP_CONTAINER", "maybe"},
		{"SERVER_QUEUE_SIZE", "-1"},
		{"SERVER_QUEUE_TIMEOUT", "0"},
		{"SERVER_MAX_BODY_SIZE", "12"},
		{"SERVER_REAP_INTERVAL", "soon"},
		{"LOG_LEVEL", "loud"},
		{"LOG_FORMAT", "xml"},
		{"DOCKER_CONTAINER_CPUS", "two"},
		{"DOCKER_CONTAINER_PIDS_LIMIT", "-2"},
		{"DOCKER_CONTAINER_NO_NEW_PRIVILEGES", "nope"},
		{"RUN_WARM_POOL", "python"},
		{"RUN_WARM_POOL", "python=-1"},
		{"RUN_WARM_MAX_AGE", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(lookupIn(with(minimal, tt.name, tt.value)))
			if err == nil {
				t.Fatalf("loadConfig(%s=%q) = %+v, nil; want an error", tt.name, tt.value, c)
			}
			if c != nil {
				t.Errorf("loadConfig(%s=%q) returned a configuration with its error", tt.name, tt.value)
			}
			for _, s := range []string{tt.name, tt.value} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("loadConfig(%s=%q) error %q does not name %q", tt.name, tt.value, err, s)
				}
			}
		})
	}
}

func TestLoadConfigManyProblems(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"SERVER_LISTEN_PORT":     "abc",
		"DOCKER_CONTAINER_USER":  "fine",
		"RUN_MAX_EXECUTION_TIME": "forever",
		"DOCKER_CONTAINER_CPUS":  "lots",
		"LOG_FORMAT":             "xml",
	}
	_, err := loadConfig(lookupIn(bad))
	if err == nil {
		t.Fatal("loadConfig() = nil error; want one naming every problem")
	}
	var missing []string
	for _, s := range []string{"API_ACCESS_TOKEN", "SERVER_LISTEN_PORT", "abc", "RUN_MAX_EXECUTION_TIME", "forever", "DOCKER_CONTAINER_CPUS", "lots", "LOG_FORMAT", "xml"} {
		if !strings.Contains(err.Error(), s) {
			missing = append(missing, s)
		}
	}
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("loadConfig() error %q: names missing (-want +got):\n%s", err, diff)
	}
	if strings.Contains(err.Error(), "DOCKER_CONTAINER_USER") {
		t.Errorf("loadConfig() error %q names a valid variable", err)
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // a substring of dockerrun.New's error; "" for none
	}{
		{name: "defaults", env: minimal},
		{name: "every variable", env: fullEnv},
		{name: "socket path unreachable", env: with(minimal, "DOCKER_UNIX_SOCKET_PATH", "/nonexistent.sock")},
		// Problems only dockerrun.New sees show that the values reach it.
		{name: "warm pool as large as the workers", env: with(minimal, "SERVER_WORKER_THREADS", "2", "RUN_WARM_POOL", "a=2"), wantErr: "warm pool"},
		{name: "tmp dir is work dir", env: with(minimal, "DOCKER_CONTAINER_TMP_DIR_PATH", "/x", "DOCKER_CONTAINER_WORK_DIR_PATH", "/x"), wantErr: "tmp dir and work dir"},
		{name: "bad capability", env: with(minimal, "DOCKER_CONTAINER_CAP_ADD", "NET-ADMIN"), wantErr: "NET-ADMIN"},
		{name: "bad owner", env: with(minimal, "SERVER_INSTANCE_NAME", "a b"), wantErr: "owner"},
		{name: "tiny memory", env: with(minimal, "DOCKER_CONTAINER_MEMORY", "1024"), wantErr: "memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(lookupIn(tt.env))
			if err != nil {
				t.Fatalf("loadConfig() error: %v", err)
			}
			r, err := dockerrun.New(c.options(slog.New(slog.DiscardHandler))...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("dockerrun.New(options()) error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("dockerrun.New(options()) error: %v", err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := r.Close(ctx); err != nil {
					t.Errorf("Close() error: %v", err)
				}
			})
			if got := r.MaxExecutionTime(); got != c.maxExecutionTime {
				t.Errorf("MaxExecutionTime() = %v, want %v", got, c.maxExecutionTime)
			}
		})
	}
}

// TestRunRefusesBadConfig checks that the server stops before it touches
// Docker or the network when the configuration is malformed.
func TestRunRefusesBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{name: "no token", env: map[string]string{}, want: []string{"API_ACCESS_TOKEN"}},
		{name: "bad port", env: with(minimal, "SERVER_LISTEN_PORT", "abc"), want: []string{"SERVER_LISTEN_PORT", "abc"}},
		{name: "options New refuses", env: with(minimal, "DOCKER_CONTAINER_MEMORY", "1024"), want: []string{"memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var log strings.Builder
			err := run(context.Background(), lookupIn(tt.env), &log)
			if err == nil {
				t.Fatal("run() = nil; want an error")
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("run() error %q does not name %q", err, s)
				}
			}
		})
	}
}
