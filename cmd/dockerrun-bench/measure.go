package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/dockerrun/dockerrun"
)

// labelBench is on the containers that the benchmark creates itself
// (docker run, the plain API), with the run's id.
const labelBench = "dockerrun.bench"

// floodLimit is the server's RUN_MAX_OUTPUT_SIZE, in bytes.
const floodLimit = 1 << 20

// owner returns the owner label for one of the run's Runners or servers.
func (bn *bench) owner(name string) string {
	o := "bench-" + bn.id + "-" + name
	bn.owners = append(bn.owners, o)
	return o
}

// handle is a target and what the benchmark knows of its containers.
type handle struct {
	m      method
	t      target
	srv    *server      // for the server's methods
	used   atomic.Int64 // runs started: each ends with one container destroyed
	events context.CancelFunc
	gone   atomic.Int64  // containers of the owner destroyed
	goneC  chan struct{} // signalled after gone grows
	lost   atomic.Value  // error: the event stream ended
}

// watch counts the destroyed containers of the target's owner.
func (bn *bench) watch(h *handle, since time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	h.events = cancel
	h.goneC = make(chan struct{}, 1)
	msgs, errs := bn.cli.Events(ctx, events.ListOptions{
		Since: strconv.FormatInt(since.Unix(), 10),
		Filters: filters.NewArgs(
			filters.Arg("type", "container"),
			filters.Arg("event", "destroy"),
			filters.Arg("label", dockerrun.LabelOwner+"="+h.t.owner()),
		),
	})
	go func() {
		for {
			select {
			case <-msgs:
				h.gone.Add(1)
				select {
				case h.goneC <- struct{}{}:
				default:
				}
			case err := <-errs:
				if ctx.Err() == nil {
					h.lost.Store(fmt.Errorf("lost the Docker event stream at %s (was the daemon restarted? the numbers would not compare: run again): %w", time.Now().Format("15:04:05"), err))
				}
				return
			}
		}
	}()
}

// settle waits until every container of the target's finished runs is
// gone and the warm pool, if any, is full again: then the next
// measurement starts from the same state.
func (bn *bench) settle(ctx context.Context, h *handle, timeout time.Duration) error {
	if h.t.owner() == "" {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		if err, _ := h.lost.Load().(error); err != nil {
			return err
		}
		if h.gone.Load() >= h.used.Load() {
			if h.t.poolSize() == 0 {
				// Every container is destroyed: nothing can be left.
				return nil
			}
			list, err := bn.cli.ContainerList(ctx, container.ListOptions{
				All:     true,
				Filters: filters.NewArgs(filters.Arg("label", dockerrun.LabelOwner+"="+h.t.owner())),
			})
			if err != nil {
				return err
			}
			ready := len(list) == h.t.poolSize()
			for _, c := range list {
				ready = ready && c.State == "running" && c.Labels[dockerrun.LabelWarm] == "true"
			}
			if ready {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: containers not settled within %v (%d runs, %d containers gone)", h.m, timeout, h.used.Load(), h.gone.Load())
		}
		// A cold run's last removal ends a measured span: wake at its
		// event rather than at the next tick. A pool's refill is not
		// evented, so poll for it.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.goneC:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cell is the measurement of one image, method and concurrency.
type cell struct {
	image   string
	runtime string
	m       method
	clients int

	lat      []time.Duration // of the successful runs
	errs     int
	firstErr error
	span     time.Duration // what runs/s is computed over
	warm     int           // successful runs that were warm
	rss      int64         // the server's peak RSS during the cell, bytes; 0 if not a server
	phases   recorder      // where the time of each run went, for warm runs at 1 client
}

func (c *cell) runs() int { return len(c.lat) + c.errs }

func (c *cell) rps() float64 {
	if c.span <= 0 {
		return 0
	}
	return float64(len(c.lat)) / c.span.Seconds()
}

// pct returns the p-th percentile (nearest rank) of the latencies.
func (c *cell) pct(p float64) time.Duration {
	return percentile(c.lat, p)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// record adds one run to the cell.
func (c *cell) record(mu *sync.Mutex, d time.Duration, warm bool, err error) {
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		c.errs++
		if c.firstErr == nil {
			c.firstErr = err
		}
		return
	}
	c.lat = append(c.lat, d)
	if warm {
		c.warm++
	}
}

// runs is the number of runs of a cell: -runs, and at least -waves runs
// per client. With three waves at 16 clients, the same method's runs/s
// moved by a quarter from one benchmark run to the next on an idle
// machine, and with ten by a tenth: the ramp-up and the final drain weigh
// too much in few waves, and a few slow batches in few batches.
func (bn *bench) runs(clients int) int {
	return max(bn.o.runs, bn.o.waves*clients)
}

// batch adds n runs at the given concurrency to the cell. Cold methods run
// closed-loop: each client starts its next run when the last one answered,
// and the time counted for runs/s ends when their containers are gone.
// Warm methods run in rounds: the pool is full, the clients start one run
// each at once, and the next round waits for the pool to refill; the time
// counted is that of the rounds only.
func (bn *bench) batch(ctx context.Context, h *handle, c *cell, n int) error {
	if err := bn.settle(ctx, h, time.Minute); err != nil {
		return err
	}
	if h.srv != nil {
		if err := resetPeakRSS(h.srv.Pid()); err != nil {
			return fmt.Errorf("reset peak RSS of docker-run: %w", err)
		}
	}
	var mu sync.Mutex
	one := func() {
		h.used.Add(1)
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		if h.m.warm() && c.clients == 1 {
			rctx = context.WithValue(rctx, recorderKey{}, &c.phases)
		}
		var warm bool
		var err error
		d := time.Duration(0)
		if st, ok := h.t.(selfTimed); ok {
			d, err = st.runTimed(rctx)
		} else {
			warm, err = h.t.run(rctx)
			d = time.Since(start)
		}
		cancel()
		c.record(&mu, d, warm, err)
	}
	if h.m.warm() {
		for done := 0; done < n && ctx.Err() == nil; {
			if err := bn.settle(ctx, h, time.Minute); err != nil {
				return err
			}
			k := min(c.clients, n-done)
			start := time.Now()
			var wg sync.WaitGroup
			for range k {
				wg.Go(one)
			}
			wg.Wait()
			c.span += time.Since(start)
			done += k
		}
	} else {
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range c.clients {
			wg.Go(func() {
				for next.Add(1) <= int64(n) && ctx.Err() == nil {
					one()
				}
			})
		}
		wg.Wait()
		if err := bn.settle(ctx, h, time.Minute); err != nil {
			return err
		}
		c.span += time.Since(start)
	}
	if h.srv != nil {
		rss, err := procStatus(h.srv.Pid(), "VmHWM")
		if err != nil {
			return err
		}
		c.rss = max(c.rss, rss)
	}
	return ctx.Err()
}

// open returns the target of a method for an image.
func (bn *bench) open(ctx context.Context, img *benchImage, m method) (*handle, error) {
	since := time.Now()
	h := &handle{m: m}
	switch m {
	case dockerRun:
		h.t = &dockerCLI{bn: bn, img: img}
	case floor:
		if img.name != "python" {
			return nil, nil // the trivial image has no program apart from its agent
		}
		t, err := bn.newFloor(ctx, img)
		if err != nil {
			return nil, err
		}
		h.t = t
	case engineAPI:
		t, err := newPlainAPI(ctx, bn, img)
		if err != nil {
			return nil, err
		}
		h.t = t
	case libCold, libWarm:
		n := 0
		if m == libWarm {
			n = bn.o.pool
		}
		l, err := bn.newLibrary(m.String(), img, n)
		if err != nil {
			return nil, err
		}
		h.t = l
	case httpCold, httpWarm:
		n := 0
		if m == httpWarm {
			n = bn.o.pool
		}
		srv, err := bn.startServer(ctx, m.String()+"-"+img.name+"-"+img.runtime, img, n)
		if err != nil {
			return nil, err
		}
		h.t, h.srv = &overHTTP{srv: srv, img: img}, srv
	}
	if h.t.owner() != "" {
		bn.watch(h, since)
	}
	return h, nil
}

func (h *handle) close() error {
	err := h.t.close()
	if h.events != nil {
		h.events()
	}
	return err
}

// measureImage measures every method at every concurrency for one image.
// The methods take turns within each concurrency, so that a change of the
// machine's load during the run spreads over all of them.
func (bn *bench) measureImage(ctx context.Context, img *benchImage, rep *report) (err error) {
	var handles []*handle
	defer func() {
		for _, h := range handles {
			if cerr := h.close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("%s %s: close: %w", img.name, h.m, cerr))
			}
		}
	}()
	for _, m := range bn.o.methods {
		h, err := bn.open(ctx, img, m)
		if err != nil {
			return fmt.Errorf("%s %s: %w", img.name, m, err)
		}
		if h != nil {
			handles = append(handles, h)
		}
	}
	// One run of each, not measured: the image in the page cache, the
	// connections open, the pools full.
	for _, h := range handles {
		if err := bn.settle(ctx, h, 2*time.Minute); err != nil {
			return err
		}
		h.used.Add(1)
		if _, err := h.t.run(ctx); err != nil {
			return fmt.Errorf("%s %s: warm-up run: %w", img.name, h.m, err)
		}
		if err := bn.settle(ctx, h, time.Minute); err != nil {
			return err
		}
	}
	for _, clients := range bn.o.clients {
		if err := bn.measureClients(ctx, img, handles, clients, rep); err != nil {
			return err
		}
	}
	if img.name != "trivial" || img.runtime != bn.o.runtimes[0] {
		return nil
	}
	i := slices.IndexFunc(handles, func(h *handle) bool { return h.m == httpWarm })
	if i < 0 {
		h, err := bn.open(ctx, img, httpWarm)
		if err != nil {
			return err
		}
		handles = append(handles, h)
		i = len(handles) - 1
	}
	return bn.measureServer(ctx, img, handles[i], rep)
}

// measureClients measures every method of handles with the given number of
// clients, and adds their cells to rep.
func (bn *bench) measureClients(ctx context.Context, img *benchImage, handles []*handle, clients int, rep *report) error {
	// Each cell in batches of at least one wave of clients, the methods
	// taking turns batch by batch.
	runs := bn.runs(clients)
	size := min(runs, max((runs+bn.o.passes-1)/bn.o.passes, clients))
	cells := make([]*cell, len(handles))
	var cold, warm []int
	for i, h := range handles {
		cells[i] = &cell{image: img.name, runtime: img.runtime, m: h.m, clients: clients}
		if h.m == floor && clients > 1 {
			cells[i] = nil // the floor is that of one program at a time
			continue
		}
		if h.m.warm() {
			warm = append(warm, i)
		} else {
			cold = append(cold, i)
		}
	}
	// The cold methods first, then the warm ones: a warm round ends with a
	// burst of removals and refills, and the batch after it came out up to
	// twice as slow, whatever its method. The close comparisons (cold
	// against the plain API) are among the cold methods.
	for _, group := range [][]int{cold, warm} {
		deadline := time.Now().Add(bn.o.cellTimeout * time.Duration(len(group)))
		for pass, done := 0, 0; done < runs && time.Now().Before(deadline); pass, done = pass+1, done+size {
			// Each pass in another order, the same in every run: a fixed
			// order lines up with periodic load.
			for _, k := range rand.New(rand.NewPCG(uint64(clients), uint64(pass))).Perm(len(group)) {
				i := group[k]
				if err := bn.batch(ctx, handles[i], cells[i], min(size, runs-done)); err != nil {
					return fmt.Errorf("%s %s c=%d: %w", img.name, handles[i].m, clients, err)
				}
			}
		}
	}
	for _, c := range cells {
		if c == nil {
			continue
		}
		rep.cells = append(rep.cells, c)
		bn.logf("%-7s %-5s %-12s c=%-2d runs=%d errors=%d p50=%v p95=%v runs/s=%.1f warm=%d rss=%s", img.name, img.runtime, c.m, clients, c.runs(), c.errs, c.pct(50).Round(100*time.Microsecond), c.pct(95).Round(100*time.Microsecond), c.rps(), c.warm, mib(c.rss))
		if c.firstErr != nil {
			bn.logf("  first error: %v", c.firstErr)
		}
	}
	return nil
}

// measureServer measures the server of warmSrv under many runs at once
// and under a flood of output, as the options ask.
func (bn *bench) measureServer(ctx context.Context, img *benchImage, warmSrv *handle, rep *report) (err error) {
	if bn.o.rssClients > 0 {
		if rep.rss, err = bn.measureRSS(ctx, img, warmSrv); err != nil {
			return err
		}
	}
	if bn.o.floodRuns > 0 {
		if rep.flood, err = bn.measureFlood(ctx, img, warmSrv); err != nil {
			return err
		}
	}
	return nil
}

// rssRun is the server's memory with many runs in flight at once.
type rssRun struct {
	clients    int
	errs       int
	firstErr   error
	idle, peak int64 // bytes
	took       time.Duration
}

// measureRSS sends rssClients requests at once, each of a run that holds
// its container for a second, and reads the server's peak RSS.
func (bn *bench) measureRSS(ctx context.Context, img *benchImage, h *handle) (*rssRun, error) {
	if err := bn.settle(ctx, h, time.Minute); err != nil {
		return nil, err
	}
	pid := h.srv.Pid()
	r := &rssRun{clients: bn.o.rssClients}
	var err error
	if r.idle, err = procStatus(pid, "VmRSS"); err != nil {
		return nil, err
	}
	if err := resetPeakRSS(pid); err != nil {
		return nil, err
	}
	payload := json.RawMessage(`{"mode":"echo","sleep":"1s","text":"hello"}`)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range r.clients {
		h.used.Add(1)
		wg.Go(func() {
			status, body, err := h.srv.post(ctx, img.ref, payload)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d: %.200s", status, body)
			}
			if err == nil {
				err = img.check(body)
			}
			if err != nil {
				mu.Lock()
				r.errs++
				if r.firstErr == nil {
					r.firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.took = time.Since(start)
	if r.peak, err = procStatus(pid, "VmHWM"); err != nil {
		return nil, err
	}
	bn.logf("rss: %d concurrent runs in %v, errors=%d, idle RSS %s, peak RSS %s", r.clients, r.took.Round(time.Millisecond), r.errs, mib(r.idle), mib(r.peak))
	return r, bn.settle(ctx, h, 2*time.Minute)
}

// floodRun is what an endless output costs.
type floodRun struct {
	runs, errs int
	firstErr   error
	// lat is the server's answer time for a flood (warm): payload written,
	// 1 MiB read, container killed, error answered.
	lat []time.Duration
	// echo is the p50 of a warm echo run on the same server, measured just
	// before: lat minus echo is the time the flood adds, writing the first
	// MiB included.
	echo time.Duration
	// gap is, through the library, the time from the moment the attached
	// stream had delivered the limit to the moment Run returned.
	gap        []time.Duration
	idle, peak int64 // the server's RSS, bytes
}

// measureFlood runs an agent that writes output without end, first through
// the server, then through the library with a clock on the stream.
func (bn *bench) measureFlood(ctx context.Context, img *benchImage, h *handle) (*floodRun, error) {
	f := &floodRun{runs: bn.o.floodRuns}
	pid := h.srv.Pid()
	var err error
	// The echo baseline, on the same server, just before.
	var echo []time.Duration
	for range f.runs {
		if err := bn.settle(ctx, h, time.Minute); err != nil {
			return nil, err
		}
		h.used.Add(1)
		start := time.Now()
		if _, err := h.t.run(ctx); err != nil {
			return nil, fmt.Errorf("flood baseline: %w", err)
		}
		echo = append(echo, time.Since(start))
	}
	f.echo = percentile(echo, 50)

	if err := bn.settle(ctx, h, time.Minute); err != nil {
		return nil, err
	}
	if f.idle, err = procStatus(pid, "VmRSS"); err != nil {
		return nil, err
	}
	if err := resetPeakRSS(pid); err != nil {
		return nil, err
	}
	flood := json.RawMessage(`{"mode":"flood"}`)
	for range f.runs {
		if err := bn.settle(ctx, h, time.Minute); err != nil {
			return nil, err
		}
		h.used.Add(1)
		start := time.Now()
		status, body, err := h.srv.post(ctx, img.ref, flood)
		d := time.Since(start)
		if err == nil && (status != http.StatusBadRequest || errorCode(body) != string(dockerrun.CodeOutputSize)) {
			err = fmt.Errorf("status %d %.200s: want 400 %s", status, body, dockerrun.CodeOutputSize)
		}
		if err != nil {
			f.fail(err)
			continue
		}
		f.lat = append(f.lat, d)
	}
	if f.peak, err = procStatus(pid, "VmHWM"); err != nil {
		return nil, err
	}
	if err := bn.floodLibrary(ctx, img, f); err != nil {
		return nil, err
	}
	bn.logf("flood: server answer p50 %v (echo %v), library limit-to-answer max %v, server RSS idle %s peak %s, errors=%d",
		percentile(f.lat, 50).Round(time.Millisecond), f.echo.Round(time.Millisecond), slices.Max(append([]time.Duration{0}, f.gap...)).Round(10*time.Microsecond), mib(f.idle), mib(f.peak), f.errs)
	if f.firstErr != nil {
		bn.logf("  first error: %v", f.firstErr)
	}
	return f, nil
}

// fail counts a failed flood run.
func (f *floodRun) fail(err error) {
	f.errs++
	if f.firstErr == nil {
		f.firstErr = err
	}
}

// floodLibrary runs the flood through the library, with a clock on the
// attached stream, and adds the gaps from the limit to the answer to f.
func (bn *bench) floodLibrary(ctx context.Context, img *benchImage, f *floodRun) error {
	flood := json.RawMessage(`{"mode":"flood"}`)
	td := &timedDocker{Client: bn.cli, limit: floodLimit}
	lib, err := bn.newLibrary("lib-flood", img, 1, dockerrun.WithDockerClient(td), dockerrun.WithMaxOutputSize(floodLimit))
	if err != nil {
		return err
	}
	lh := &handle{m: libWarm, t: lib}
	bn.watch(lh, time.Now().Add(-time.Second))
	defer lh.close()
	for range f.runs {
		if err := bn.settle(ctx, lh, time.Minute); err != nil {
			return err
		}
		lh.used.Add(1)
		td.reached.Store(0)
		_, err := lib.r.Run(ctx, img.ref, flood)
		done := time.Now()
		if !errors.Is(err, dockerrun.ErrOutputSize) {
			f.fail(fmt.Errorf("library flood: %v, want %s", err, dockerrun.CodeOutputSize))
			continue
		}
		if at := td.reached.Load(); at > 0 {
			f.gap = append(f.gap, done.Sub(time.Unix(0, at)))
		}
	}
	return bn.settle(ctx, lh, time.Minute)
}

// timedDocker is the Docker client with a clock on attached streams: it
// notes when a stream has delivered limit bytes.
type timedDocker struct {
	*client.Client
	limit   int64
	reached atomic.Int64 // unix nanoseconds, 0 if not yet
}

func (d *timedDocker) ContainerAttach(ctx context.Context, id string, opts container.AttachOptions) (types.HijackedResponse, error) {
	hj, err := d.Client.ContainerAttach(ctx, id, opts)
	if err != nil {
		return hj, err
	}
	hj.Reader = bufio.NewReader(&clockReader{r: hj.Reader, d: d})
	return hj, nil
}

type clockReader struct {
	r io.Reader
	d *timedDocker
	n int64
}

func (c *clockReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	before := c.n
	c.n += int64(n)
	// Frame headers count too, so this is a little early: the gap measured
	// is a little long.
	if before < c.d.limit && c.n >= c.d.limit {
		c.d.reached.Store(time.Now().UnixNano())
	}
	return n, err
}

// cleanup removes whatever containers of this run are left and returns how
// many there were.
func (bn *bench) cleanup() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	labels := []string{labelBench + "=" + bn.id}
	for _, o := range bn.owners {
		labels = append(labels, dockerrun.LabelOwner+"="+o)
	}
	// The daemon may be away for a moment (restarted under us): wait.
	for ctx.Err() == nil {
		if _, err := bn.cli.Ping(ctx); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	n := 0
	var errs []error
	for _, l := range labels {
		list, err := bn.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", l))})
		if err != nil {
			return n, fmt.Errorf("list containers: %w", err)
		}
		for _, c := range list {
			if err := bn.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

func mib(b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
