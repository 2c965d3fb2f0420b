package dockerrun

import (
	"context"
	"sync"
	"time"
)

// pool keeps containers created, attached and started ahead of time, per
// image, each used for exactly one run. Every pool container holds a place
// of the Runner's semaphore; a run that takes one takes its place with it.
// A nil *pool is an empty pool.
type pool struct {
	r      *Runner
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // fillers

	mu   sync.Mutex
	idle map[string][]*box // oldest first
	wake map[string]chan struct{}
}

// Backoff of a filler whose image fails to start.
const (
	poolBackoffMin = 100 * time.Millisecond
	poolBackoffMax = 30 * time.Second
)

func newPool(r *Runner, sizes map[string]int) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{
		r:      r,
		ctx:    ctx,
		cancel: cancel,
		idle:   make(map[string][]*box),
		wake:   make(map[string]chan struct{}),
	}
	for image, n := range sizes {
		if n == 0 {
			continue
		}
		p.wake[image] = make(chan struct{}, 1)
		p.wg.Add(1)
		go p.fill(image, n)
	}
	return p
}

// take returns an idle container of image, or nil.
func (p *pool) take(image string) *box {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	wake, ok := p.wake[image]
	if !ok {
		return nil
	}
	var c *box
	for len(p.idle[image]) > 0 && c == nil {
		c = p.idle[image][0]
		p.idle[image] = p.idle[image][1:]
		if time.Since(c.created) > p.r.cfg.warmMaxAge {
			p.r.dispose(c)
			c = nil
		}
	}
	select {
	case wake <- struct{}{}:
	default:
	}
	return c
}

// fill keeps n idle containers of image until the pool is closed.
func (p *pool) fill(image string, n int) {
	defer p.wg.Done()
	log := p.r.log.With("image", image)
	backoff := poolBackoffMin
	tick := time.NewTicker(max(p.r.cfg.warmMaxAge/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		p.expire(image)
		p.mu.Lock()
		have := len(p.idle[image])
		p.mu.Unlock()
		if have >= n {
			select {
			case <-p.ctx.Done():
				return
			case <-p.wake[image]:
			case <-tick.C:
			}
			continue
		}
		if err := p.r.sem.Acquire(p.ctx, 1); err != nil {
			return
		}
		c, err := p.r.prepare(p.ctx, image, true)
		if err != nil {
			p.r.sem.Release(1)
			if p.ctx.Err() != nil {
				return
			}
			log.Warn("warm pool: cannot start a container; backing off", "code", ErrorCode(err), "error", err, "retry_in", backoff)
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, poolBackoffMax)
			continue
		}
		backoff = poolBackoffMin
		p.mu.Lock()
		p.idle[image] = append(p.idle[image], c)
		p.mu.Unlock()
	}
}

// expire disposes of idle containers of image older than the maximum age.
func (p *pool) expire(image string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.idle[image]
	for len(q) > 0 && time.Since(q[0].created) > p.r.cfg.warmMaxAge {
		p.r.dispose(q[0])
		q = q[1:]
	}
	p.idle[image] = q
}

// size returns how many idle containers of image the pool holds.
func (p *pool) size(image string) int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle[image])
}

// close stops the fillers and disposes of every idle container.
func (p *pool) close() {
	if p == nil {
		return
	}
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for image, q := range p.idle {
		for _, c := range q {
			p.r.dispose(c)
		}
		delete(p.idle, image)
	}
}

// wait waits for the fillers to stop.
func (p *pool) wait() {
	if p != nil {
		p.wg.Wait()
	}
}
