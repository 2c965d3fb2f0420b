package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

// defaultServer is the server settings of [minimal]: the documented
// defaults.
func minimalServer() server {
	s := defaultServer()
	s.accessToken = testToken
	return s
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
	"SERVER_QUEUE_SIZE":                    "7",
	"SERVER_QUEUE_TIMEOUT":                 "5",
	"SERVER_MAX_BODY_SIZE":                 "65536",
	"SERVER_REAP_INTERVAL":                 "0",
	"SERVER_DEBUG_ADDR":                    "127.0.0.1:6060",
	"LISTEN_FDS":                           "1",
	"LISTEN_PID":                           "4242",
	"SERVER_METRICS_ADDR":                  "10.0.0.5:9100",
	"SERVER_INSTANCE_NAME":                 "runner-2",
	"LOG_LEVEL":                            "warn",
	"LOG_FORMAT":                           "text",
	"DOCKER_CONTAINER_CPUS":                "0.5",
	"DOCKER_CONTAINER_PIDS_LIMIT":          "64",
	"DOCKER_CONTAINER_NO_NEW_PRIVILEGES":   "false",
	"DOCKER_CONTAINER_RUNTIME":             "runsc",
	"DOCKER_CONTAINER_SECCOMP_PROFILE":     "daemon",
	"DANGEROUSLY_ALLOW_UNCONFINED_SECCOMP": "true",
	"RUN_ALLOWED_IMAGES":                   "glot/python:latest glot/bash",
	"RUN_WARM_POOL":                        "glot/python:latest=2 glot/bash=1",
	"RUN_WARM_MAX_AGE":                     "60",
}

// fullConfig is the configuration of [fullEnv], without its options.
func fullConfig() *config {
	return &config{
		server: server{
			listenAddr:   "0.0.0.0",
			listenPort:   9090,
			accessToken:  "another token",
			maxBody:      65536,
			reapInterval: 0,
			debugAddr:    "127.0.0.1:6060",
			listenFD:     true,
			listenPID:    4242,
			metricsAddr:  "10.0.0.5:9100",
			logLevel:     slog.LevelWarn,
			logFormat:    "text",
		},
		args: map[string][]any{
			"SERVER_WORKER_THREADS":                {int64(4)},
			"SERVER_QUEUE_SIZE":                    {int64(7), int64(5)},
			"DOCKER_UNIX_SOCKET_PATH":              {"/nonexistent/docker.sock"},
			"DOCKER_UNIX_SOCKET_READ_TIMEOUT":      {12 * time.Second, 9 * time.Second},
			"DOCKER_CONTAINER_HOSTNAME":            {"glot"},
			"DOCKER_CONTAINER_USER":                {"glot"},
			"DOCKER_CONTAINER_MEMORY":              {int64(1000000000)},
			"DOCKER_CONTAINER_CPUS":                {0.5},
			"DOCKER_CONTAINER_PIDS_LIMIT":          {int64(64)},
			"DOCKER_CONTAINER_NETWORK_DISABLED":    {false},
			"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT":  {int64(90), int64(100)},
			"DOCKER_CONTAINER_ULIMIT_NPROC_SOFT":   {int64(70), int64(80)},
			"DOCKER_CONTAINER_CAP_ADD":             {[]string{"NET_BIND_SERVICE", "CHOWN"}},
			"DOCKER_CONTAINER_CAP_DROP":            {[]string{"MKNOD", "NET_RAW"}},
			"DOCKER_CONTAINER_NO_NEW_PRIVILEGES":   {false},
			"DOCKER_CONTAINER_READONLY_ROOTFS":     {false},
			"DOCKER_CONTAINER_TMP_DIR_PATH":        {"/scratch", "rw,noexec,size=1m"},
			"DOCKER_CONTAINER_WORK_DIR_PATH":       {"/home/user", "rw,exec,size=2m"},
			"DOCKER_CONTAINER_RUNTIME":             {"runsc"},
			"DOCKER_CONTAINER_SECCOMP_PROFILE":     {"daemon"},
			"DANGEROUSLY_ALLOW_UNCONFINED_SECCOMP": {true},
			"RUN_MAX_EXECUTION_TIME":               {15 * time.Second},
			"RUN_MAX_OUTPUT_SIZE":                  {int64(100000)},
			"RUN_ALLOWED_IMAGES":                   {[]string{"glot/python:latest", "glot/bash"}},
			"RUN_WARM_POOL":                        {map[string]int{"glot/python:latest": 2, "glot/bash": 1}},
			"RUN_WARM_MAX_AGE":                     {time.Minute},
			"SERVER_INSTANCE_NAME":                 {"runner-2"},
			"DEBUG_KEEP_CONTAINER":                 {true},
		},
	}
}

// ignoreOptions leaves out the options, which are functions: the args
// they were made with stand for them.
var ignoreOptions = cmpopts.IgnoreFields(config{}, "options")

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want *config
	}{
		{name: "defaults", env: minimal, want: &config{server: minimalServer(), args: map[string][]any{}}},
		{name: "every variable", env: fullEnv, want: fullConfig()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := loadConfig(lookupIn(tt.env))
			if err != nil {
				t.Fatalf("loadConfig() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{}, server{}), ignoreOptions); diff != "" {
				t.Errorf("loadConfig() mismatch (-want +got):\n%s", diff)
			}
			if len(got.options) != len(got.args) {
				t.Errorf("loadConfig() made %d options from %d entries", len(got.options), len(got.args))
			}
		})
	}
}

func TestLoadConfigVariable(t *testing.T) {
	t.Parallel()
	nofile := int64(dockerrun.DefaultNofile)
	tests := []struct {
		name   string
		env    []string         // name, value, ... on top of minimal
		server func(s *server)  // the server settings that change
		args   map[string][]any // the options made
	}{
		{name: "listen on localhost", env: []string{"SERVER_LISTEN_ADDR", "localhost"}, server: func(s *server) { s.listenAddr = "localhost" }},
		{name: "listen on IPv6", env: []string{"SERVER_LISTEN_ADDR", "::1"}, server: func(s *server) { s.listenAddr = "::1" }},
		{name: "any port", env: []string{"SERVER_LISTEN_PORT", "0"}, server: func(s *server) { s.listenPort = 0 }},
		{name: "log level DEBUG", env: []string{"LOG_LEVEL", "DEBUG"}, server: func(s *server) { s.logLevel = slog.LevelDebug }},
		{name: "log level error", env: []string{"LOG_LEVEL", "error"}, server: func(s *server) { s.logLevel = slog.LevelError }},
		{name: "spaces around a number", env: []string{"SERVER_WORKER_THREADS", " 16\n"}, args: map[string][]any{"SERVER_WORKER_THREADS": {int64(16)}}},
		// The larger of the two timeouts is used, each the library's
		// default when neither is set.
		{name: "read timeout alone", env: []string{"DOCKER_UNIX_SOCKET_READ_TIMEOUT", "5"}, args: map[string][]any{"DOCKER_UNIX_SOCKET_READ_TIMEOUT": {5 * time.Second, time.Duration(0)}}},
		{name: "write timeout alone", env: []string{"DOCKER_UNIX_SOCKET_WRITE_TIMEOUT", "45"}, args: map[string][]any{"DOCKER_UNIX_SOCKET_READ_TIMEOUT": {time.Duration(0), 45 * time.Second}}},
		{name: "socket path", env: []string{"DOCKER_UNIX_SOCKET_PATH", "/var/run/docker.sock"}, args: map[string][]any{"DOCKER_UNIX_SOCKET_PATH": {"/var/run/docker.sock"}}},
		{name: "no memory limit", env: []string{"DOCKER_CONTAINER_MEMORY", "0"}, args: map[string][]any{"DOCKER_CONTAINER_MEMORY": {int64(0)}}},
		{name: "image's user", env: []string{"DOCKER_CONTAINER_USER", ""}, args: map[string][]any{"DOCKER_CONTAINER_USER": {""}}},
		{name: "bool 1", env: []string{"DEBUG_KEEP_CONTAINER", "1"}, args: map[string][]any{"DEBUG_KEEP_CONTAINER": {true}}},
		{name: "bool TRUE", env: []string{"DEBUG_KEEP_CONTAINER", "TRUE"}, args: map[string][]any{"DEBUG_KEEP_CONTAINER": {true}}},
		{name: "bool 0", env: []string{"DOCKER_CONTAINER_NETWORK_DISABLED", "0"}, args: map[string][]any{"DOCKER_CONTAINER_NETWORK_DISABLED": {false}}},
		{name: "nofile soft above default", env: []string{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT", "2048"}, args: map[string][]any{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT": {int64(2048), int64(2048)}}},
		{name: "nofile soft below default", env: []string{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT", "100"}, args: map[string][]any{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT": {int64(100), nofile}}},
		{name: "nofile hard above default", env: []string{"DOCKER_CONTAINER_ULIMIT_NOFILE_HARD", "4096"}, args: map[string][]any{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT": {nofile, int64(4096)}}},
		{name: "nofile hard below default", env: []string{"DOCKER_CONTAINER_ULIMIT_NOFILE_HARD", "512"}, args: map[string][]any{"DOCKER_CONTAINER_ULIMIT_NOFILE_SOFT": {int64(512), int64(512)}}},
		{name: "nproc soft alone", env: []string{"DOCKER_CONTAINER_ULIMIT_NPROC_SOFT", "50"}, args: map[string][]any{"DOCKER_CONTAINER_ULIMIT_NPROC_SOFT": {int64(50), int64(50)}}},
		{name: "nproc hard alone", env: []string{"DOCKER_CONTAINER_ULIMIT_NPROC_HARD", "60"}, args: map[string][]any{"DOCKER_CONTAINER_ULIMIT_NPROC_SOFT": {int64(60), int64(60)}}},
		{name: "cap add, any spaces", env: []string{"DOCKER_CONTAINER_CAP_ADD", "  NET_ADMIN\tSYS_PTRACE \n"}, args: map[string][]any{"DOCKER_CONTAINER_CAP_ADD": {[]string{"NET_ADMIN", "SYS_PTRACE"}}}},
		{name: "cap drop none", env: []string{"DOCKER_CONTAINER_CAP_DROP", ""}, args: map[string][]any{"DOCKER_CONTAINER_CAP_DROP": {[]string{}}}},
		{name: "no tmp dir", env: []string{"DOCKER_CONTAINER_TMP_DIR_PATH", ""}, args: map[string][]any{"DOCKER_CONTAINER_TMP_DIR_PATH": {"", dockerrun.DefaultTmpDirOptions}}},
		{name: "work dir options alone", env: []string{"DOCKER_CONTAINER_WORK_DIR_OPTIONS", "rw"}, args: map[string][]any{"DOCKER_CONTAINER_WORK_DIR_PATH": {dockerrun.DefaultWorkDirPath, "rw"}}},
		{name: "queue size alone", env: []string{"SERVER_QUEUE_SIZE", "3"}, args: map[string][]any{"SERVER_QUEUE_SIZE": {int64(3), int64(dockerrun.DefaultQueueWait / time.Second)}}},
		{name: "empty warm pool", env: []string{"RUN_WARM_POOL", ""}, args: map[string][]any{"RUN_WARM_POOL": {map[string]int{}}}},
		{name: "warm pool", env: []string{"RUN_WARM_POOL", " a=1  b:2=0 "}, args: map[string][]any{"RUN_WARM_POOL": {map[string]int{"a": 1, "b:2": 0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := &config{server: minimalServer(), args: tt.args}
			if tt.server != nil {
				tt.server(&want.server)
			}
			if want.args == nil {
				want.args = map[string][]any{}
			}
			got, err := loadConfig(lookupIn(with(minimal, tt.env...)))
			if err != nil {
				t.Fatalf("loadConfig() error: %v", err)
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(config{}, server{}), ignoreOptions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("loadConfig() mismatch (-want +got):\n%s", diff)
			}
			// A warm pool starts filling at New: keep it off the real daemon.
			opts := append(got.runnerOptions(slog.New(slog.DiscardHandler)), dockerrun.WithDockerHost("unix:///nonexistent.sock"))
			r, err := dockerrun.New(opts...)
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
		{"SERVER_METRICS_ADDR", "9100"},
		{"SERVER_METRICS_ADDR", "127.0.0.1:port"},
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
		{"DOCKER_CONTAINER_SECCOMP_PROFILE", ""},
		{"DOCKER_CONTAINER_SECCOMP_PROFILE", "default"},
		{"DOCKER_CONTAINER_SECCOMP_PROFILE", "/nonexistent/seccomp.json"},
		{"DANGEROUSLY_ALLOW_UNCONFINED_SECCOMP", "yes please"},
		// Values the library refuses are named by their variable too.
		{"DOCKER_CONTAINER_CAP_ADD", "NET-ADMIN"},
		{"SERVER_INSTANCE_NAME", "a b"},
		{"DOCKER_CONTAINER_MEMORY", "1024"},
		{"DOCKER_CONTAINER_CPUS", "NaN"},
		{"DOCKER_CONTAINER_TMP_DIR_PATH", "relative"},
		{"RUN_ALLOWED_IMAGES", "registry.example.com/python"},
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
		{name: "seccomp unconfined, not allowed", env: with(minimal, "DOCKER_CONTAINER_SECCOMP_PROFILE", "unconfined"), wantErr: "DANGEROUSLY_ALLOW_UNCONFINED_SECCOMP=true"},
		{name: "seccomp unconfined, allowed", env: with(minimal, "DOCKER_CONTAINER_SECCOMP_PROFILE", "unconfined", "DANGEROUSLY_ALLOW_UNCONFINED_SECCOMP", "true")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(lookupIn(tt.env))
			if err != nil {
				t.Fatalf("loadConfig() error: %v", err)
			}
			r, err := dockerrun.New(c.runnerOptions(slog.New(slog.DiscardHandler))...)
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
			want := dockerrun.DefaultMaxExecutionTime
			if a, ok := c.args["RUN_MAX_EXECUTION_TIME"]; ok {
				want = a[0].(time.Duration)
			}
			if got := r.MaxExecutionTime(); got != want {
				t.Errorf("MaxExecutionTime() = %v, want %v", got, want)
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
		{name: "option the library refuses", env: with(minimal, "DOCKER_CONTAINER_MEMORY", "1024"), want: []string{"DOCKER_CONTAINER_MEMORY", "memory"}},
		{name: "options New refuses together", env: with(minimal, "SERVER_WORKER_THREADS", "2", "RUN_WARM_POOL", "a=2"), want: []string{"warm pool"}},
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

// variableTable renders the README's table of the entries with glot set
// as given.
func variableTable(glot bool) string {
	var b strings.Builder
	b.WriteString("| Variable | Type | Default | Meaning |\n|:--|:--|:--|:--|\n")
	for _, e := range table {
		if e.glot != glot {
			continue
		}
		rows := e.vars
		if e.docker {
			rows = rows[:1]
		}
		for _, v := range rows {
			name := "`" + v.name + "`"
			if e.docker {
				var names []string
				for _, d := range e.vars {
					names = append(names, "`"+d.name+"`")
				}
				name = strings.Join(names, ", ")
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, v.syntax, v.def, v.doc)
		}
	}
	return b.String()
}

// README.md's two tables of variables are the configuration table's:
// docker-run's variables, then dockerrun's own. With
// DOCKERRUN_UPDATE_README=1 the test writes them instead.
func TestREADMEVariables(t *testing.T) {
	const path = "../../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	const head = "| Variable | Type | Default | Meaning |\n"
	start := strings.Index(doc, "## Configuration")
	if start < 0 {
		t.Fatal("README.md has no ## Configuration section")
	}
	var out strings.Builder
	out.WriteString(doc[:start])
	rest := doc[start:]
	for _, glot := range []bool{true, false} {
		i := strings.Index(rest, head)
		if i < 0 {
			t.Fatalf("README.md's configuration has fewer than two tables of variables")
		}
		end := strings.Index(rest[i:], "\n\n")
		if end < 0 {
			end = len(rest) - i
		}
		got, want := rest[i:i+end+1], variableTable(glot)
		if diff := cmp.Diff(want, got); diff != "" && os.Getenv("DOCKERRUN_UPDATE_README") != "1" {
			t.Errorf("README.md's table of variables (glot's: %v) mismatch (-want +got), rerun with DOCKERRUN_UPDATE_README=1:\n%s", glot, diff)
		}
		out.WriteString(rest[:i] + want)
		rest = rest[i+end+1:]
	}
	out.WriteString(rest)
	if os.Getenv("DOCKERRUN_UPDATE_README") == "1" {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Every variable is read by one entry and set in fullEnv, so that
// TestLoadConfig sees every entry at work.
func TestTableComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range table {
		if (e.option == nil) == (e.set == nil) && !e.docker {
			t.Errorf("entry %s: want exactly one of option and set", e.vars[0].name)
		}
		for _, v := range e.vars {
			if seen[v.name] {
				t.Errorf("%s: in two entries", v.name)
			}
			seen[v.name] = true
			if _, ok := fullEnv[v.name]; !ok && !e.docker {
				t.Errorf("%s: not in fullEnv", v.name)
			}
		}
	}
}

// TestSeccompProfileVariable reads each kind of
// DOCKER_CONTAINER_SECCOMP_PROFILE; TestOptions gives unconfined to New.
func TestSeccompProfileVariable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	profile := `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}`
	bad := filepath.Join(dir, "bad.json")
	for path, content := range map[string]string{good: profile, bad: `{"syscalls": []}`} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		value string
		want  any // the option's argument; nil: loadConfig fails
	}{
		{"builtin", "builtin"},
		{"daemon", "daemon"},
		{"unconfined", "unconfined"},
		{good, profile},
		{bad, nil},
		{filepath.Join(dir, "absent.json"), nil},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.value), func(t *testing.T) {
			t.Parallel()
			c, err := loadConfig(lookupIn(with(minimal, "DOCKER_CONTAINER_SECCOMP_PROFILE", tt.value)))
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), "DOCKER_CONTAINER_SECCOMP_PROFILE") {
					t.Fatalf("loadConfig() error %v; want one naming DOCKER_CONTAINER_SECCOMP_PROFILE", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig() error: %v", err)
			}
			if diff := cmp.Diff([]any{tt.want}, c.args["DOCKER_CONTAINER_SECCOMP_PROFILE"]); diff != "" {
				t.Errorf("option argument mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// An unconfined profile, when allowed, is logged at start-up.
func TestUnconfinedSeccompWarns(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(lookupIn(with(minimal, "DOCKER_CONTAINER_SECCOMP_PROFILE", "unconfined", "DANGEROUSLY_ALLOW_UNCONFINED_SECCOMP", "true")))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	r, err := dockerrun.New(c.runnerOptions(slog.New(slog.NewTextHandler(&logs, nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "unconfined") {
		t.Errorf("start-up logged %q; want a warning that seccomp is unconfined", logs.String())
	}
}

// `docker-run seccomp-profile` prints a profile that the variable accepts
// as a file, and that is the builtin one.
func TestPrintSeccompProfile(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := printSeccompProfile(&out); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seccomp.json")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(lookupIn(with(minimal, "DOCKER_CONTAINER_SECCOMP_PROFILE", path)))
	if err != nil {
		t.Fatalf("loadConfig() with the printed profile: %v", err)
	}
	builtin, err := dockerrun.BuiltinSeccompProfile()
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(c.args["DOCKER_CONTAINER_SECCOMP_PROFILE"][0].(string))); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(builtin), compact.String()); diff != "" {
		t.Errorf("printed profile mismatch (-want +got):\n%s", diff)
	}
}
