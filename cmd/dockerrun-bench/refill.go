package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// refillStep is one step of the refill measurement: requests at a steady
// rate against a warm pool that was full at the start.
type refillStep struct {
	image, runtime string
	pool           int
	rate           float64 // runs started per second
	runs, warm     int
	errs           int
	firstErr       error
	// firstCold is when the first run that found the pool empty started,
	// from the start of the step; 0 if every run was warm.
	firstCold time.Duration
	lat       []time.Duration
}

// refillRates are the rates tried, per second, in order; the measurement
// of a pool stops after the first rate at which at most half the runs were
// warm.
var refillRates = []float64{1, 2, 4, 8, 16, 32}

// measureRefill sends runs at steady rates through a library with a warm
// pool of each size of -refill-pools, for -refill-time per rate.
func (bn *bench) measureRefill(ctx context.Context, img *benchImage) ([]*refillStep, error) {
	var steps []*refillStep
	for _, n := range bn.o.refillPools {
		lib, err := bn.newLibrary(fmt.Sprintf("refill%d", n), img, n)
		if err != nil {
			return steps, err
		}
		h := &handle{m: libWarm, t: lib}
		bn.watch(h, time.Now().Add(-time.Second))
		for _, rate := range refillRates {
			if err := bn.settle(ctx, h, 2*time.Minute); err != nil {
				h.close()
				return steps, err
			}
			s := bn.refillStep(ctx, h, lib, rate)
			s.image, s.runtime, s.pool = img.name, img.runtime, n
			steps = append(steps, s)
			bn.logf("refill: %s %s pool=%d rate=%.0f/s runs=%d warm=%d first cold after %v p50=%v errors=%d",
				img.name, img.runtime, n, rate, s.runs, s.warm, s.firstCold.Round(time.Millisecond), percentile(s.lat, 50).Round(100*time.Microsecond), s.errs)
			if s.firstErr != nil {
				bn.logf("  first error: %v", s.firstErr)
			}
			if ctx.Err() != nil || 2*s.warm <= s.runs {
				break
			}
		}
		err = bn.settle(ctx, h, 2*time.Minute)
		if cerr := h.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return steps, err
		}
	}
	return steps, nil
}

// refillStep starts runs at the given rate for -refill-time, open loop:
// a run starts on time whether or not the ones before have answered.
func (bn *bench) refillStep(ctx context.Context, h *handle, lib *library, rate float64) *refillStep {
	s := &refillStep{rate: rate}
	var mu sync.Mutex
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; time.Since(start) < bn.o.refillTime && ctx.Err() == nil; i++ {
		at := time.Since(start)
		h.used.Add(1)
		wg.Go(func() {
			t0 := time.Now()
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			warm, err := lib.run(rctx)
			cancel()
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			s.runs++
			switch {
			case err != nil:
				s.errs++
				if s.firstErr == nil {
					s.firstErr = err
				}
			case warm:
				s.warm++
				s.lat = append(s.lat, d)
			default:
				if s.firstCold == 0 || at < s.firstCold {
					s.firstCold = max(at, time.Nanosecond)
				}
				s.lat = append(s.lat, d)
			}
		})
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	wg.Wait()
	return s
}

// refillTable renders the refill measurement.
func refillTable(steps []*refillStep, every time.Duration) string {
	if len(steps) == 0 {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("\nWarm pool under a steady rate (library, %s image under %s): runs started at a fixed rate for %v, open loop, the pool full at the start of each rate; a pool stops at the first rate where at most half the runs were warm.\n\n", steps[0].image, steps[0].runtime, every)
	p("| pool | rate, runs/s | runs | warm | first cold run after | p50 ms | p95 ms | errors |\n|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, s := range steps {
		cold := "-"
		if s.firstCold > 0 {
			cold = fmt.Sprintf("%.1f s", s.firstCold.Seconds())
		}
		p("| %d | %.0f | %d | %d (%.0f%%) | %s | %s | %s | %d |\n", s.pool, s.rate, s.runs, s.warm, 100*float64(s.warm)/float64(max(s.runs, 1)), cold, ms(percentile(s.lat, 50)), ms(percentile(s.lat, 95)), s.errs)
	}
	return b.String()
}
