package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/protocol"
)

// phases is where the time of one warm run went. The runner's steps come
// from the library's [dockerrun.Timing] or the server's Server-Timing
// header, the agent's from the "trace" of its answer (code-runner with
// "trace": true in the payload); all on the host's clock.
type phases struct {
	total time.Duration // as the client saw it
	// The runner's and the server's steps, in order.
	read, wait, write, container, decode time.Duration
	// The agent's steps, zero when the agent has no trace (the probe).
	agentRead, parse, files, start, program, answer time.Duration
	// relay is the container's time minus the agent's: the daemon carrying
	// the payload in and the answer out. relayIn and relayOut split it,
	// where the runner's clock is at hand (the library).
	relay, relayIn, relayOut time.Duration
	traced, split            bool
	warm                     bool // the run had a warm container
}

// addTrace fills the agent's phases from an answer, if it has a trace.
func (p *phases) addTrace(answer []byte) {
	var a struct {
		Trace *protocol.Trace `json:"trace"`
	}
	if json.Unmarshal(answer, &a) != nil || a.Trace == nil || a.Trace.Received == 0 {
		return
	}
	t := a.Trace
	ns := func(from, to int64) time.Duration { return time.Duration(to - from) }
	p.agentRead, p.parse, p.files = ns(t.Received, t.Read), ns(t.Read, t.Parsed), ns(t.Parsed, t.Files)
	p.start, p.program, p.answer = ns(t.Files, t.Started), ns(t.Started, t.Exited), ns(t.Exited, t.Done)
	p.relay = p.container - ns(t.Received, t.Done)
	p.traced = true
}

// fromTiming fills the runner's phases from a library run, with the split
// of the relay.
func (p *phases) fromTiming(t dockerrun.Timing, end time.Time, answer []byte) {
	written := t.Written
	if written.IsZero() {
		written = t.Taken
	}
	p.wait, p.write, p.container, p.decode = t.Taken.Sub(t.Start), written.Sub(t.Taken), t.Answered.Sub(written), end.Sub(t.Answered)
	p.addTrace(answer)
	var a struct {
		Trace *protocol.Trace `json:"trace"`
	}
	if p.traced && json.Unmarshal(answer, &a) == nil {
		p.relayIn = time.Unix(0, a.Trace.Received).Sub(written)
		p.relayOut = t.Answered.Sub(time.Unix(0, a.Trace.Done))
		p.split = true
	}
}

// fromServerTiming fills the server's phases from its Server-Timing
// header, and whether the run was warm from the desc of its wait; the HTTP
// layer's time is what is left of the total.
func (p *phases) fromServerTiming(h string) error {
	got := map[string]time.Duration{}
	for _, m := range strings.Split(h, ",") {
		params := strings.Split(strings.TrimSpace(m), ";")
		name, dur := params[0], ""
		for _, kv := range params[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "dur":
				dur = v
			case "desc":
				p.warm = p.warm || (name == "wait" && v == `"warm"`)
			}
		}
		v, err := strconv.ParseFloat(dur, 64)
		if err != nil {
			return fmt.Errorf("Server-Timing %q: want name;dur=MS entries: %w", h, err)
		}
		got[name] = time.Duration(v * float64(time.Millisecond))
	}
	for name, d := range map[string]*time.Duration{"read": &p.read, "wait": &p.wait, "write": &p.write, "container": &p.container, "decode": &p.decode} {
		v, ok := got[name]
		if !ok {
			return fmt.Errorf("Server-Timing %q has no %s", h, name)
		}
		*d = v
	}
	return nil
}

// http is the time of the HTTP layer, client and server: the total minus
// the server's steps.
func (p *phases) http() time.Duration {
	return p.total - (p.read + p.wait + p.write + p.container + p.decode)
}

// recorder collects the phases of a cell's runs.
type recorder struct {
	mu  sync.Mutex
	all []phases
}

type recorderKey struct{}

// record adds a run's phases to the recorder ctx carries, if any.
func record(ctx context.Context, p phases) {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		r.mu.Lock()
		r.all = append(r.all, p)
		r.mu.Unlock()
	}
}

// postTimed posts the payload to the server and returns the status, the body
// and the run's phases.
func (s *server) postTimed(ctx context.Context, image string, payload json.RawMessage) (int, []byte, phases, error) {
	var p phases
	body, err := json.Marshal(map[string]any{"image": image, "payload": payload})
	if err != nil {
		return 0, nil, p, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/run", bytes.NewReader(body))
	if err != nil {
		return 0, nil, p, err
	}
	req.Header.Set("X-Access-Token", s.Token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, p, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	p.total = time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp.StatusCode, b, p, err
	}
	if err := p.fromServerTiming(resp.Header.Get("Server-Timing")); err != nil {
		return resp.StatusCode, b, p, err
	}
	p.addTrace(b)
	return resp.StatusCode, b, p, nil
}

// median returns the median of one phase over the runs.
func median(all []phases, f func(*phases) time.Duration) time.Duration {
	d := make([]time.Duration, len(all))
	for i := range all {
		d[i] = f(&all[i])
	}
	return percentile(d, 50)
}

// breakdownCols are the cells that the breakdown of an image shows.
func (r *report) breakdownCols(image, runtime string) []*cell {
	var cols []*cell
	for _, m := range []method{libWarm, httpWarm} {
		if c := r.find(image, runtime, m, 1); c != nil && len(c.phases.all) > 0 {
			cols = append(cols, c)
		}
	}
	return cols
}

// breakdown renders where the time of a warm run at 1 client went, for
// one image and runtime: the library's and the server's runs side by side,
// each step the median over the cell's runs.
func (r *report) breakdown(image, runtime string) string {
	cols := r.breakdownCols(image, runtime)
	if len(cols) == 0 {
		return ""
	}
	traced := func(c *cell) bool { return c.phases.all[0].traced }
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("| step | %s |\n|---|", strings.Join(func() []string {
		var s []string
		for _, c := range cols {
			s = append(s, fmt.Sprintf("%s, ms (%d runs)", c.m.label(), len(c.phases.all)))
		}
		return s
	}(), " | "))
	for range cols {
		p("--:|")
	}
	p("\n")
	// row adds a step, unless no column has a time for it.
	row := func(name string, f func(c *cell) string) {
		var vals []string
		for _, c := range cols {
			vals = append(vals, f(c))
		}
		if strings.Trim(strings.Join(vals, ""), "-") == "" {
			return
		}
		p("| %s | %s |\n", name, strings.Join(vals, " | "))
	}
	step := func(name string, only func(*cell) bool, f func(*phases) time.Duration) {
		row(name, func(c *cell) string {
			if only != nil && !only(c) {
				return "-"
			}
			return ms3(median(c.phases.all, f))
		})
	}
	isServer := func(c *cell) bool { return c.m == httpWarm }
	step("HTTP, both ways: client, loopback, the server's net/http", isServer, (*phases).http)
	step("server: read and check the request", isServer, func(p *phases) time.Duration { return p.read })
	step("runner: take a warm container", nil, func(p *phases) time.Duration { return p.wait })
	step("runner: write the payload, close stdin", nil, func(p *phases) time.Duration { return p.write })
	row("daemon: carry the payload to the agent's stdin", func(c *cell) string {
		switch {
		case !traced(c):
			return "-"
		case c.phases.all[0].split:
			return ms3(median(c.phases.all, func(p *phases) time.Duration { return p.relayIn }))
		}
		return ms3(median(c.phases.all, func(p *phases) time.Duration { return p.relay })) + " (in and out)"
	})
	step("agent: read the request", traced, func(p *phases) time.Duration { return p.agentRead })
	step("agent: decode and check it", traced, func(p *phases) time.Duration { return p.parse })
	step("agent: write the files", traced, func(p *phases) time.Duration { return p.files })
	step("agent: start the program (fork, exec)", traced, func(p *phases) time.Duration { return p.start })
	step("the program, until its output is collected", traced, func(p *phases) time.Duration { return p.program })
	step("agent: the result", traced, func(p *phases) time.Duration { return p.answer })
	row("daemon: carry the answer to the runner", func(c *cell) string {
		if !traced(c) || !c.phases.all[0].split {
			return "-"
		}
		return ms3(median(c.phases.all, func(p *phases) time.Duration { return p.relayOut }))
	})
	row("container, untraced: payload in, agent, answer out", func(c *cell) string {
		if traced(c) {
			return "-"
		}
		return ms3(median(c.phases.all, func(p *phases) time.Duration { return p.container }))
	})
	step("runner: decode the answer", nil, func(p *phases) time.Duration { return p.decode })
	step("**total** (median of the totals)", nil, func(p *phases) time.Duration { return p.total })
	return b.String()
}

func ms3(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}
