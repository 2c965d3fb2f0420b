// Command playground serves a web page where people run code in the
// languages whose images are on the Docker daemon: a language picker, an
// editor filled with the language's hello world, a stdin box and the
// answer. It embeds the library (a Runner with a warm container per
// language) and needs nothing but the engine and the images; the page's
// files are embedded and use no framework, so it works offline.
//
//	examples/images/build.sh python bash c   # once
//	go run ./examples/playground             # then open http://127.0.0.1:8089
//
// The page talks to POST /run on the same address: the body is the agent's
// payload ({"language": "python", "files": [...], "stdin": "..."}), which
// names a language, never an image; the answer and the errors are those of
// the server's POST /run (see api_docs), with the server's default limits.
//
// The languages are those with an image PREFIX/LANGUAGE:latest carrying
// the dockerrun.language label (examples/images/build.sh sets it), found at
// start-up. PREFIX is -images, by default DOCKERRUN_IMAGES_PREFIX as for
// build.sh, else "dockerrun". Its containers' owner label is -owner. By
// default that is one of its own, "playground-" and a random suffix, and it
// removes nothing at start-up: playgrounds sharing a daemon never remove
// each other's containers, and each removes its own when it stops
// (SIGINT, SIGTERM). With -owner NAME it first removes the containers of
// owner NAME that no runner uses, such as those a killed playground with
// the same -owner left: give each playground on a daemon its own NAME.
//
// With -smoke it runs every language's hello world through its own
// endpoint, prints the answers and exits: that is what CI runs.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/examples/images/hello"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8089", "listen address (port 0: any free port)")
	prefix := flag.String("images", cmp.Or(os.Getenv("DOCKERRUN_IMAGES_PREFIX"), "dockerrun"), "image name prefix: the images are PREFIX/LANGUAGE:latest")
	owner := flag.String("owner", "", "owner label of its containers; when given, containers of that owner left by another playground (a killed one) are removed at start-up (default: playground-RANDOM, one of its own, nothing removed at start-up)")
	smoke := flag.Bool("smoke", false, "run each language's hello world through the page's endpoint, print the answers and exit")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *addr, *prefix, *owner, *smoke, log); err != nil {
		log.Error("playground", "error", err)
		os.Exit(1)
	}
}

// serve finds the languages, starts the runner (see newRunner for owner)
// and serves the page until ctx ends (or, with smoke, until the smoke run
// is done).
func serve(ctx context.Context, addr, prefix, owner string, smoke bool, log *slog.Logger) (err error) {
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer docker.Close()
	hellos, err := hello.All()
	if err != nil {
		return err
	}
	langs, err := discover(ctx, docker, prefix, hellos)
	if err != nil {
		return fmt.Errorf("%w (is dockerd running?)", err)
	}
	if len(langs) == 0 {
		return fmt.Errorf("no image %s/LANGUAGE:latest with the label %s on the daemon: build some with examples/images/build.sh python bash c", prefix, labelLanguage)
	}
	r, err := newRunner(ctx, docker, owner, langs, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, r.Close(cctx))
	}()
	h, err := newHandler(config{Run: runner(r), Languages: langs, TimeLimit: r.MaxExecutionTime(), Logger: log})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	log.Info("playground: open "+url, "languages", names(langs), "images", prefix+"/LANGUAGE:latest")

	if smoke {
		err = smokeRun(ctx, url, hellos, langs)
	} else {
		select {
		case <-ctx.Done():
		case err = <-served:
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.MaxExecutionTime()+5*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(sctx))
}

// newRunner returns a started runner for langs, with a warm container per
// language. With owner "", its containers' owner is one of its own
// (playground-RANDOM) and nothing is removed: another playground on the
// daemon, with its runs in flight, is left alone. With an owner, it first
// removes the containers of that owner that no runner uses ([Runner.Reap]),
// those of other instances included: the caller says that no other
// playground runs with that owner.
func newRunner(ctx context.Context, docker client.APIClient, owner string, langs []language, log *slog.Logger) (*dockerrun.Runner, error) {
	reap := owner != ""
	if !reap {
		owner = "playground-" + strings.ToLower(rand.Text()[:12])
	}
	pool := make(map[string]int, len(langs))
	images := make([]string, len(langs))
	for i, l := range langs {
		pool[l.Image] = 1
		images[i] = l.Image
	}
	r, err := dockerrun.New(
		dockerrun.WithDockerClient(docker),
		dockerrun.WithOwner(owner),
		dockerrun.WithAllowedImages(images...),
		dockerrun.WithWarmPool(pool),
		dockerrun.WithLogger(log),
	)
	if err != nil {
		return nil, err
	}
	if reap {
		if _, err := r.Reap(ctx); err != nil {
			return nil, errors.Join(err, r.Close(context.WithoutCancel(ctx)))
		}
	}
	if err := r.Ping(ctx); err != nil {
		return nil, errors.Join(err, r.Close(context.WithoutCancel(ctx)))
	}
	return r, nil
}

// smokeRun posts every language's hello world to the playground at url, as
// the page does, and checks the answers' stdout.
func smokeRun(ctx context.Context, url string, hellos []hello.Program, langs []language) error {
	resp, err := http.Get(url + "/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /: %s", resp.Status)
	}
	want := make(map[string]string, len(hellos))
	for _, h := range hellos {
		want[h.Language] = h.Stdout
	}
	var failed []string
	for _, l := range langs {
		start := time.Now()
		got, err := post(ctx, url+"/run", l.Hello)
		switch {
		case err != nil:
			failed = append(failed, fmt.Sprintf("%s: %v", l.Name, err))
		case got.Stdout != want[l.Name] || got.Error != "":
			failed = append(failed, fmt.Sprintf("%s: stdout %q, error %q; want stdout %q", l.Name, got.Stdout, got.Error, want[l.Name]))
		default:
			fmt.Printf("%-12s %-20q %v\n", l.Name, got.Stdout, time.Since(start).Round(time.Millisecond))
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// answer is the part of an agent's answer that the smoke run checks.
type answer struct {
	Stdout string `json:"stdout"`
	Error  string `json:"error"`
}

// post posts payload to url and decodes the answer.
func post(ctx context.Context, url string, payload []byte) (*answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	var res answer
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
