package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// machineInfo says where the numbers come from.
type machineInfo struct {
	date       time.Time
	cpus       int
	memory     int64 // bytes
	docker     string
	apiVersion string
	kernel     string
	goVersion  string
	loadStart  string
	loadEnd    string
	took       time.Duration
}

func (bn *bench) machine(ctx context.Context) (*machineInfo, error) {
	v, err := bn.cli.ServerVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker version: %w", err)
	}
	m := &machineInfo{
		date:       time.Now().UTC(),
		cpus:       runtime.NumCPU(),
		docker:     v.Version,
		apiVersion: v.APIVersion,
		kernel:     v.KernelVersion,
		goVersion:  runtime.Version(),
		loadStart:  loadAvg(),
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:")), "%d", &kb)
		m.memory = kb << 10
	}
	return m, nil
}

func (m *machineInfo) String() string {
	return fmt.Sprintf("%s UTC; %d CPUs (nproc), %.1f GiB memory, Docker %s (API %s), kernel %s, %s; load average %s at the start",
		m.date.Format("2006-01-02 15:04"), m.cpus, float64(m.memory)/(1<<30), m.docker, m.apiVersion, m.kernel, m.goVersion, m.loadStart)
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// report is everything measured in one run.
type report struct {
	machine *machineInfo
	o       *options
	cells   []*cell
	rss     *rssRun
	flood   *floodRun
	refill  []*refillStep
}

// failed returns how many runs of the report failed, in cells and in the
// memory and flood runs.
func (r *report) failed() int {
	n := 0
	for _, c := range r.cells {
		n += c.errs
	}
	if r.rss != nil {
		n += r.rss.errs
	}
	if r.flood != nil {
		n += r.flood.errs
	}
	for _, s := range r.refill {
		n += s.errs
	}
	return n
}

func (r *report) find(image, runtime string, m method, clients int) *cell {
	for _, c := range r.cells {
		if c.image == image && c.runtime == runtime && c.m == m && c.clients == clients {
			return c
		}
	}
	return nil
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// markdown renders the report.
func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.o
	p("Machine: %s; load average %s at the end; the run took %v.\n\n", r.machine, r.machine.loadEnd, r.machine.took)
	p("Settings: %d runs per cell (at least %d per client) in %d batches; warm pool of %d per image; SERVER_WORKER_THREADS=%d (the library: the same max concurrent runs); RUN_MAX_OUTPUT_SIZE=%d; every other setting at its default.\n\n", o.runs, o.waves, o.passes, o.pool, o.workers, floodLimit)
	p("| image | runtime | method | clients | runs | p50 ms | p95 ms | p99 ms | runs/s | errors | warm | server peak RSS | p50 vs (1) | p50 vs (2) | runs/s vs (2) |\n")
	p("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.cells {
		cli := r.find(c.image, c.runtime, dockerRun, c.clients)
		api := r.find(c.image, c.runtime, engineAPI, c.clients)
		vsCLI, vsAPI, rpsAPI := "-", "-", "-"
		if cli != nil && c.m != dockerRun {
			vsCLI = ratio(float64(c.pct(50)), float64(cli.pct(50)))
		}
		if api != nil && c.m != engineAPI {
			vsAPI = ratio(float64(c.pct(50)), float64(api.pct(50)))
			rpsAPI = ratio(c.rps(), api.rps())
		}
		warm := "-"
		if c.m != floor && (c.m.warm() || c.m == libCold || c.m == httpCold) {
			warm = fmt.Sprintf("%d/%d", c.warm, len(c.lat))
		}
		rps := fmt.Sprintf("%.1f", c.rps())
		if c.m == floor {
			rps, rpsAPI = "-", "-"
		}
		p("| %s | %s | %s | %d | %d | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |\n",
			c.image, c.runtime, c.m.label(), c.clients, c.runs(), ms(c.pct(50)), ms(c.pct(95)), ms(c.pct(99)), rps, c.errs, warm, mib(c.rss), vsCLI, vsAPI, rpsAPI)
	}
	p("\n(0) is the python program alone: its time from just before its process is started to just after it exited, measured inside a running container of the same image with the same settings (a bash loop reading $EPOCHREALTIME), one at a time. It is the floor of a warm python run.\n")
	for _, rt := range o.runtimes {
		for _, img := range o.images {
			if t := r.breakdown(img, rt); t != "" {
				p("\nWhere the time of a warm %s run goes under %s, 1 client (the median of each step; the medians need not add up to the median total, since a slow run is slow in one step or another):\n\n%s", img, rt, t)
				if fl := r.find(img, rt, floor, 1); fl != nil {
					p("| the program alone in a running container, (0) | %s |\n", strings.TrimSuffix(strings.Repeat(ms3(fl.pct(50))+" | ", len(r.breakdownCols(img, rt))), " | "))
				}
			}
		}
	}
	p("\nWarm rows run in rounds (a full pool, one run per client at once, then a wait for the refill that is not measured): their runs/s is that of a burst, not a sustained rate. Cold rows run closed-loop, and their runs/s counts until the last container is removed.\n")
	if n := slices.IndexFunc(r.cells, func(c *cell) bool { return c.firstErr != nil }); n >= 0 {
		p("\nFirst errors:\n\n")
		for _, c := range r.cells {
			if c.firstErr != nil {
				p("- %s %s %s c=%d: %v\n", c.image, c.runtime, c.m, c.clients, c.firstErr)
			}
		}
	}
	if s := r.rss; s != nil {
		p("\nServer memory, %d concurrent requests (trivial image, each holding its container for 1 s; warm pool of %d, the rest cold): all answered in %v, %d errors; RSS idle %s, peak %s.\n",
			s.clients, o.pool, s.took.Round(time.Millisecond), s.errs, mib(s.idle), mib(s.peak))
		if s.firstErr != nil {
			p("First error: %v\n", s.firstErr)
		}
	}
	if f := r.flood; f != nil {
		p("\nOutput flood (an agent writing without end, RUN_MAX_OUTPUT_SIZE=%d, warm): server answer p50 %s ms, max %s ms, against %s ms for a warm echo on the same server; through the library, from the moment the stream had delivered the limit to the answer: max %s ms; server RSS idle %s, peak %s; %d errors.\n",
			floodLimit, ms(percentile(f.lat, 50)), ms(percentile(f.lat, 100)), ms(f.echo), ms(percentile(f.gap, 100)), mib(f.idle), mib(f.peak), f.errs)
		if f.firstErr != nil {
			p("First error: %v\n", f.firstErr)
		}
	}
	p("%s", refillTable(r.refill, o.refillTime))
	p("\n%s", r.targets())
	return b.String()
}

// targets checks the targets of issues 5 and 14 against this run. Those
// of issue 5 are checked under the first runtime.
func (r *report) targets() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("| target | measured | met |\n|---|---|---|\n")
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	rt := r.o.runtimes[0]
	// warmVs checks the p50 of warm runs over HTTP at 1 client against
	// that of another method.
	warmVs := func(image, runtime string, m method, limit float64, what string) {
		w, other := r.find(image, runtime, httpWarm, 1), r.find(image, runtime, m, 1)
		if w == nil || other == nil {
			return
		}
		x := float64(w.pct(50)) / float64(other.pct(50))
		p("| warm %s over HTTP under %s, 1 client: p50 <= %.2fx %s | %s ms vs %s ms = %.3fx | %s |\n", image, runtime, limit, what, ms(w.pct(50)), ms(other.pct(50)), x, met(x <= limit && w.errs == 0 && other.errs == 0))
	}
	warmVs("trivial", rt, dockerRun, 0.10, "`docker run --rm -i`")
	warmVs("python", rt, dockerRun, 0.25, "`docker run --rm -i`")
	for _, img := range r.o.images {
		for _, m := range []method{libCold, httpCold} {
			c, api := r.find(img, rt, m, 1), r.find(img, rt, engineAPI, 1)
			if c == nil || api == nil {
				continue
			}
			x := float64(c.pct(50)) / float64(api.pct(50))
			p("| %s %s, 1 client: p50 <= 1.1x the plain API | %s ms vs %s ms = %.2fx | %s |\n", img, m, ms(c.pct(50)), ms(api.pct(50)), x, met(x <= 1.1 && c.errs == 0))
		}
	}
	for _, img := range r.o.images {
		for _, m := range []method{libCold, httpCold} {
			c, api := r.find(img, rt, m, 16), r.find(img, rt, engineAPI, 16)
			if c == nil || api == nil {
				continue
			}
			x := c.rps() / api.rps()
			p("| %s %s, 16 clients: runs/s >= 0.9x the plain API, no errors | %.1f vs %.1f runs/s = %.2fx, %d errors | %s |\n", img, m, c.rps(), api.rps(), x, c.errs, met(x >= 0.9 && c.errs == 0))
		}
	}
	if s := r.rss; s != nil {
		p("| server peak RSS at %d concurrent requests < 60 MB | %s, %d errors | %s |\n", s.clients, mib(s.peak), s.errs, met(s.peak < 60e6 && s.errs == 0))
	}
	if f := r.flood; f != nil {
		gap := percentile(f.gap, 100)
		extra := percentile(f.lat, 100) - f.echo
		p("| flood: answer within 1 s of reaching the output limit | library: max %s ms; server: max %s ms over a warm echo | %s |\n", ms(gap), ms(extra), met(len(f.gap) > 0 && gap < time.Second && extra < time.Second && f.errs == 0))
		grow := f.peak - f.idle
		p("| flood: server RSS bounded by the limit plus a small constant | peak %s, %s over idle for a %s limit | %s |\n", mib(f.peak), mib(grow), mib(floodLimit), met(grow < floodLimit+16<<20))
	}
	// Issue 14.
	for _, runtime := range r.o.runtimes {
		if runtime == "runsc" {
			warmVs("python", runtime, dockerRun, 0.15, "`docker run --runtime runsc --rm -i`")
			continue
		}
		warmVs("python", runtime, floor, 2, "the program alone in a running container (0)")
		warmVs("python", runtime, dockerRun, 0.10, "`docker run --rm -i`")
	}
	return b.String()
}
