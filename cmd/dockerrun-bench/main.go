// Command dockerrun-bench measures, in one run on one machine, how long a
// run takes with `docker run --rm -i`, with the plain Engine API sequence,
// and with dockerrun (library and server, cold and warm), and prints the
// table that docs/performance.md keeps:
//
//	go run ./cmd/dockerrun-bench -out /tmp/bench.md
//
// It needs a Docker engine (DOCKER_HOST or the local socket), the go tool
// (it builds the probe agent and cmd/docker-run) and, for the python rows,
// the image dockerrun/python:latest (examples/images/build.sh python). It
// must run from inside the module. Everything it starts listens on
// 127.0.0.1 only, and every container it creates carries a label with the
// run's id and is removed before it exits.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"
)

// options are the command's flags.
type options struct {
	runs        int
	waves       int
	passes      int
	clients     []int
	images      []string
	runtimes    []string
	methods     []method
	pool        int
	workers     int
	cellTimeout time.Duration
	rssClients  int
	floodRuns   int
	pythonImage string
	out         string
	refillPools []int
	refillTime  time.Duration
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("dockerrun-bench", flag.ContinueOnError)
	o := &options{}
	clients := fs.String("concurrency", "1,4,16", "comma-separated numbers of concurrent clients, one set of rows each")
	images := fs.String("images", "trivial,python", "comma-separated images: trivial (the probe, built FROM scratch) and python")
	runtimes := fs.String("runtime", "runc", "comma-separated OCI runtimes registered with the daemon, one set of rows each, e.g. runc,runsc")
	methods := fs.String("methods", strings.Join(methodNames(allMethods), ","), "comma-separated methods to measure")
	fs.IntVar(&o.runs, "runs", 32, "runs per cell (image, method, concurrency), at least -waves per client")
	fs.IntVar(&o.waves, "waves", 20, "runs per client a cell has at least, so that a throughput is not that of a burst")
	fs.IntVar(&o.passes, "passes", 16, "batches each cell is split into, the methods taking turns batch by batch in a shuffled order so that a change of load hits them alike; a batch is at least one run per client")
	fs.IntVar(&o.pool, "pool", 16, "warm pool size per image, for the library and the server; at least the largest concurrency")
	fs.IntVar(&o.workers, "workers", 96, "SERVER_WORKER_THREADS of the server and max concurrent runs of the library; more than the pool plus the RSS clients")
	fs.DurationVar(&o.cellTimeout, "cell-timeout", time.Minute, "time allowed per cell; past it no new batch starts, and the cells report the runs they finished")
	fs.IntVar(&o.rssClients, "rss-clients", 64, "concurrent requests of the server RSS run; 0 skips it")
	fs.IntVar(&o.floodRuns, "flood-runs", 5, "runs of the output flood; 0 skips it")
	refillPools := fs.String("refill-pools", "4,16", "comma-separated warm pool sizes of the refill measurement")
	fs.DurationVar(&o.refillTime, "refill-time", 10*time.Second, "time per rate of the refill measurement (runs at a steady rate against a warm pool); 0 skips it")
	fs.StringVar(&o.pythonImage, "python-image", "dockerrun/python:latest", "the python image")
	fs.StringVar(&o.out, "out", "", "also write the report (markdown) to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var problems []string
	positive := func(f string) (int, bool) { n, err := strconv.Atoi(f); return n, err == nil && n >= 1 }
	o.clients = list(&problems, "-concurrency", *clients, "want positive whole numbers", positive)
	o.images = list(&problems, "-images", *images, "want trivial or python", func(f string) (string, bool) { return f, f == "trivial" || f == "python" })
	o.refillPools = list(&problems, "-refill-pools", *refillPools, "want positive whole numbers", positive)
	seen := map[string]bool{}
	o.runtimes = list(&problems, "-runtime", *runtimes, "want distinct runtime names", func(f string) (string, bool) {
		ok := f != "" && !seen[f]
		seen[f] = true
		return f, ok
	})
	o.methods = list(&problems, "-methods", *methods, "want some of "+strings.Join(methodNames(allMethods), ", "), methodByName)
	problems = append(problems, o.check()...)
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return o, nil
}

// list parses the comma-separated value of flag name with parse, and adds
// a problem saying want for each item that parse refuses.
func list[T any](problems *[]string, name, value, want string, parse func(string) (T, bool)) []T {
	var out []T
	for _, f := range strings.Split(value, ",") {
		x, ok := parse(strings.TrimSpace(f))
		if !ok {
			*problems = append(*problems, fmt.Sprintf("%s: %q: %s", name, f, want))
			continue
		}
		out = append(out, x)
	}
	return out
}

// check returns what is wrong with the options together.
func (o *options) check() []string {
	var problems []string
	maxClients := slices.Max(append([]int{1}, o.clients...))
	if o.runs < 1 {
		problems = append(problems, fmt.Sprintf("-runs: %d: want at least 1", o.runs))
	}
	if o.pool < maxClients {
		problems = append(problems, fmt.Sprintf("-pool: %d: want at least the largest concurrency, %d, so that a burst of warm runs finds the pool full", o.pool, maxClients))
	}
	if len(o.refillPools) > 0 && o.refillTime > 0 && o.workers <= slices.Max(o.refillPools) {
		problems = append(problems, fmt.Sprintf("-workers: %d: want more than the largest of -refill-pools", o.workers))
	}
	if o.workers <= o.pool || o.workers < max(maxClients, o.rssClients) {
		problems = append(problems, fmt.Sprintf("-workers: %d: want more than -pool (%d) and at least the concurrency and -rss-clients", o.workers, o.pool))
	}
	if o.waves < 1 {
		problems = append(problems, fmt.Sprintf("-waves: %d: want at least 1", o.waves))
	}
	if o.passes < 1 {
		problems = append(problems, "-passes: want at least 1")
	}
	if o.cellTimeout <= 0 {
		problems = append(problems, "-cell-timeout: want a positive duration")
	}
	if o.refillTime < 0 {
		problems = append(problems, "-refill-time: want 0 (skip) or a positive duration")
	}
	return problems
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockerrun-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dockerrun-bench:", err)
		os.Exit(1)
	}
}

// bench is one run of the benchmark and what it started.
type bench struct {
	o     *options
	id    string // labels and owners of this run's containers
	cli   *client.Client
	tmp   string // built binaries
	log   io.Writer
	start time.Time

	server string // path of the docker-run binary
	owners []string
}

func run(ctx context.Context, o *options, out, log io.Writer) (err error) {
	var b [4]byte
	rand.Read(b[:])
	bn := &bench{o: o, id: hex.EncodeToString(b[:]), log: log, start: time.Now()}
	bn.cli, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer bn.cli.Close()
	if _, err := bn.cli.Ping(ctx); err != nil {
		return fmt.Errorf("the Docker engine does not answer (is dockerd running?): %w", err)
	}
	bn.tmp, err = os.MkdirTemp("", "dockerrun-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bn.tmp)
	defer func() {
		if n, cerr := bn.cleanup(); cerr != nil {
			err = errors.Join(err, cerr)
		} else if n > 0 {
			err = errors.Join(err, fmt.Errorf("%d containers were left behind and have been removed", n))
		}
	}()

	machine, err := bn.machine(ctx)
	if err != nil {
		return err
	}
	bn.logf("%s", machine.String())
	rep, err := bn.measure(ctx, machine)
	if err != nil {
		return err
	}
	machine.loadEnd = loadAvg()
	machine.took = time.Since(bn.start).Round(time.Second)

	text := rep.markdown()
	fmt.Fprint(out, text)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if n := rep.failed(); n > 0 {
		return fmt.Errorf("%d runs failed: see the errors column of the report, and the first error of each cell above", n)
	}
	return nil
}

// measure builds what the methods need and measures every image under
// every runtime.
func (bn *bench) measure(ctx context.Context, machine *machineInfo) (*report, error) {
	if err := bn.buildServer(ctx); err != nil {
		return nil, err
	}
	if err := bn.checkRuntimes(ctx); err != nil {
		return nil, err
	}
	var images []*benchImage
	for _, name := range bn.o.images {
		img, err := bn.image(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, rt := range bn.o.runtimes {
			img := *img
			img.runtime = rt
			images = append(images, &img)
		}
	}

	rep := &report{machine: machine, o: bn.o}
	for _, img := range images {
		if err := bn.measureImage(ctx, img, rep); err != nil {
			return nil, err
		}
	}
	if bn.o.refillTime > 0 {
		// The python image if measured (a real run), under the first runtime.
		img := images[0]
		for _, i := range images {
			if i.name == "python" && i.runtime == bn.o.runtimes[0] {
				img = i
			}
		}
		var err error
		if rep.refill, err = bn.measureRefill(ctx, img); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func (bn *bench) logf(format string, args ...any) {
	fmt.Fprintf(bn.log, "%s  %s\n", time.Since(bn.start).Round(100*time.Millisecond), fmt.Sprintf(format, args...))
}

// checkRuntimes checks that the daemon knows every runtime of -runtime.
func (bn *bench) checkRuntimes(ctx context.Context) error {
	info, err := bn.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("docker info: %w", err)
	}
	for _, rt := range bn.o.runtimes {
		if _, ok := info.Runtimes[rt]; !ok {
			return fmt.Errorf("-runtime: the daemon has no runtime %q (it has %v): register it in daemon.json", rt, slices.Sorted(maps.Keys(info.Runtimes)))
		}
	}
	return nil
}
