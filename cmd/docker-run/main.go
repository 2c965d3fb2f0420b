// Command docker-run serves dockerrun's HTTP API: a drop-in replacement for
// glot.io's docker-run, configured by the same environment variables.
//
//	API_ACCESS_TOKEN=secret go run ./cmd/docker-run
//
// Only API_ACCESS_TOKEN is required; README.md lists every variable and its
// default. On SIGTERM or SIGINT the server stops accepting, lets runs in
// flight finish (up to the execution time limit), removes their containers
// and exits 0.
//
// `docker-run seccomp-profile` prints the builtin seccomp profile, the
// starting point of a profile of one's own for
// DOCKER_CONTAINER_SECCOMP_PROFILE.
//
// SERVER_DEBUG_ADDR (off by default; a loopback address only) opens a second
// listener with net/http/pprof under /debug/pprof/ and the goroutine count
// under /debug/vars. SERVER_METRICS_ADDR (off by default) opens another with
// Prometheus metrics under /metrics, without a token: docs/operations.md
// lists them.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/httpapi"
	"github.com/dockerrun/dockerrun/metrics"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "seccomp-profile" {
		if err := printSeccompProfile(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "docker-run:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.LookupEnv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "docker-run:", err)
		os.Exit(1)
	}
}

// printSeccompProfile writes the builtin seccomp profile, indented: the
// starting point of a profile for DOCKER_CONTAINER_SECCOMP_PROFILE.
func printSeccompProfile(w io.Writer) error {
	p, err := dockerrun.BuiltinSeccompProfile()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, p, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err = b.WriteTo(w)
	return err
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, lookup func(string) (string, bool), logOut io.Writer) error {
	cfg, err := loadConfig(lookup)
	if err != nil {
		return err
	}
	log := newLogger(cfg.server, logOut)

	opts := cfg.runnerOptions(log)
	var m *metrics.Metrics
	if cfg.metricsAddr != "" {
		m = metrics.New()
		opts = append(opts, dockerrun.WithObserver(m))
	}
	runner, err := dockerrun.New(opts...)
	if err != nil {
		return fmt.Errorf("invalid configuration (see the DOCKER_CONTAINER_*, RUN_* and SERVER_* variables): %w", err)
	}
	// Whatever happens from here on, remove every container we made.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), runner.MaxRunDuration())
		defer cancel()
		if err := runner.Close(cctx); err != nil {
			log.Error("close runner", "error", err)
		}
	}()
	if m != nil {
		m.Watch(runner)
		stop, err := serveSide("metrics", cfg.metricsAddr, "SERVER_METRICS_ADDR", metricsHandler(m, log), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := start(ctx, runner, cfg.reapInterval, log); err != nil {
		return err
	}
	if cfg.debugAddr != "" {
		stop, err := serveSide("debug", cfg.debugAddr, "SERVER_DEBUG_ADDR", debugHandler(), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	// Listen once the daemon answers: a client that connects is served.
	ln, err := cfg.listen()
	if err != nil {
		return err
	}
	return serve(ctx, ln, cfg.server, runner, log)
}

// newLogger returns the logger that the settings ask for, writing to out.
func newLogger(s server, out io.Writer) *slog.Logger {
	hopts := &slog.HandlerOptions{Level: s.logLevel}
	if s.logFormat == "text" {
		return slog.New(slog.NewTextHandler(out, hopts))
	}
	return slog.New(slog.NewJSONHandler(out, hopts))
}

// listen returns the API's listener: the socket a service manager passed
// (LISTEN_FDS), or a new one on SERVER_LISTEN_ADDR:SERVER_LISTEN_PORT.
func (s *server) listen() (net.Listener, error) {
	if s.listenFD && (s.listenPID == 0 || s.listenPID == os.Getpid()) {
		f := os.NewFile(3, "LISTEN_FDS socket")
		defer f.Close()
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("the socket passed as fd 3 (LISTEN_FDS): %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", s.addr())
	if err != nil {
		return nil, fmt.Errorf("listen on %s (SERVER_LISTEN_ADDR, SERVER_LISTEN_PORT): %w", s.addr(), err)
	}
	return ln, nil
}

// start checks that the daemon answers, removes what an earlier instance
// left and, every interval (0: never), what this one leaves, until ctx is
// done.
func start(ctx context.Context, runner *dockerrun.Runner, interval time.Duration, log *slog.Logger) error {
	if err := runner.Ping(ctx); err != nil {
		if tlsProblem(err) {
			return fmt.Errorf("the TLS handshake with the Docker daemon at DOCKER_HOST failed: check DOCKER_CERT_PATH (its ca.pem must have signed the daemon's certificate, whose names must include DOCKER_HOST's host; cert.pem and key.pem are a client certificate that the daemon's CA signed) and DOCKER_TLS_VERIFY: %w", err)
		}
		return fmt.Errorf("cannot reach the Docker daemon (is dockerd running? check DOCKER_UNIX_SOCKET_PATH or DOCKER_HOST): %w", err)
	}
	if n, err := runner.Reap(ctx); err != nil {
		log.Warn("remove leftover containers", "error", err)
	} else if n > 0 {
		log.Info("removed containers left by an earlier instance", "count", n)
	}
	if interval > 0 {
		go reapEvery(ctx, runner, interval, log)
	}
	return nil
}

// serveSide serves h on addr, the value of the variable named v, until
// stop is called.
func serveSide(name, addr, v string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, v, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Info(name+" listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// serve serves the API on ln until ctx is done, then lets the runs in
// flight finish.
func serve(ctx context.Context, ln net.Listener, s server, runner *dockerrun.Runner, log *slog.Logger) error {
	handler, err := httpapi.New(httpapi.Config{
		Runner:       runner,
		AccessToken:  s.accessToken,
		Logger:       log,
		MaxBodyBytes: s.maxBody,
	})
	if err != nil {
		return err
	}
	// A run may take the execution time limit plus the Docker calls around
	// it; the write timeout leaves room for both.
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      runner.MaxRunDuration(),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "version", dockerrun.Version(), "instance", runner.Instance())

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing runs in flight")
	sctx, cancel := context.WithTimeout(context.Background(), runner.MaxRunDuration())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown: runs still in flight were cut", "error", err)
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// debugHandler serves what SERVER_DEBUG_ADDR exposes: net/http/pprof under
// /debug/pprof/ and, under /debug/vars, a JSON object with the number of
// goroutines, for leak checks.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/vars", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"goroutines": runtime.NumGoroutine()})
	})
	return mux
}

// reapEvery removes leftover containers periodically until ctx is done.
func reapEvery(ctx context.Context, r *dockerrun.Runner, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := r.Reap(ctx); err != nil {
				log.Warn("remove leftover containers", "error", err)
			} else if n > 0 {
				log.Info("removed leftover containers", "count", n)
			}
		}
	}
}

// tlsProblem reports whether err comes from the TLS handshake with the
// daemon: a certificate that does not verify, or one the daemon refused.
func tlsProblem(err error) bool {
	var (
		alert    tls.AlertError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	if errors.As(err, &alert) || errors.As(err, &verify) || errors.As(err, &record) ||
		errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return true
	}
	// The daemon refused the client certificate: crypto/tls reports the
	// daemon's alert as a *net.OpError "remote error".
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}
