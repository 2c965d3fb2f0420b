package dockerrun

import (
	"context"
	"slices"
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
	wg     sync.WaitGroup // fillers and watchers

	mu      sync.Mutex
	closed  bool              // set by close: containers made since are disposed of
	idle    map[string][]*box // oldest first
	filling map[string]int    // containers being prepared
	healthy map[string]bool   // the image's last container started fine
	dying   map[string]bool   // its last container lost died young (poolShortLife)
	backoff map[string]time.Duration
	retryAt map[string]time.Time // no new attempt before, after a failure
	wake    map[string]chan struct{}
	fillers map[string]int // image -> size, for start
}

// Backoff of an image whose containers fail to start.
const (
	poolBackoffMin = 100 * time.Millisecond
	poolBackoffMax = 30 * time.Second
)

// poolShortLife: an idle container that dies sooner than this after its
// start counts as a failed start, so that an image whose containers die at
// once backs off instead of being replaced in a loop. One that lived
// longer (a daemon restart, a `docker kill`) is replaced at once.
const poolShortLife = time.Second

// poolFillers is how many containers of one image the pool prepares at
// once, once the image has started fine: a burst of runs empties the pool,
// and the daemon starts containers faster in parallel. While an image
// fails, one attempt at a time.
const poolFillers = 4

func newPool(r *Runner, sizes map[string]int) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{
		r:       r,
		ctx:     ctx,
		cancel:  cancel,
		idle:    make(map[string][]*box),
		filling: make(map[string]int),
		healthy: make(map[string]bool),
		dying:   make(map[string]bool),
		backoff: make(map[string]time.Duration),
		retryAt: make(map[string]time.Time),
		wake:    make(map[string]chan struct{}),
		fillers: make(map[string]int),
	}
	for image, n := range sizes {
		if n == 0 {
			continue
		}
		image = normalizeImage(image)
		p.wake[image] = make(chan struct{}, 1)
		p.backoff[image] = poolBackoffMin
		p.fillers[image] = max(p.fillers[image], n)
	}
	return p
}

// start starts the fillers. The maps are complete by then: the fillers
// read p.wake unlocked, and one image's filler may lock and read the
// others'.
func (p *pool) start() {
	for image, n := range p.fillers {
		for range min(n, poolFillers) {
			p.wg.Add(1)
			go p.fill(image, n)
		}
	}
}

// poolRefillDelay bounds how long the refill of a container that a run took
// waits for that run to end (see refillLater). A refill is a create and a
// start: under gVisor, hundreds of milliseconds of CPU for runsc, its gofer
// and its sentry, which on a small machine the run's program would share.
// Most warm runs end sooner, and their refill starts then. Only while at
// least half the pool is idle: a pool that runs lower is draining, and
// then a refill at once matters more (a later one lowered the rate a pool
// of 4 could serve warm from 95% and 82% to 64% at 8 runs/s).
const poolRefillDelay = 500 * time.Millisecond

// take returns an idle container of image, or nil. It skips, and
// disposes of, containers past their age and those whose stream has ended
// (see [box.dead]): the check costs no call to the daemon.
//
// The fillers are woken at once when the pool is left less than half idle,
// when none was taken, or when one was skipped. Otherwise the taken
// container's refill waits for the run: take returns refill, to be called
// when the run ends, and the fillers are woken then or after
// poolRefillDelay, whichever comes first. refill is never nil.
func (p *pool) take(image string) (c *box, refill func()) {
	refill = func() {}
	if p == nil {
		return nil, refill
	}
	image = normalizeImage(image)
	p.mu.Lock()
	defer p.mu.Unlock()
	wake, ok := p.wake[image]
	if !ok {
		return nil, refill
	}
	skipped := false
	for len(p.idle[image]) > 0 && c == nil {
		c = p.idle[image][0]
		p.idle[image] = p.idle[image][1:]
		switch {
		case c.dead():
			p.lostLocked(c)
			c, skipped = nil, true
		case time.Since(c.ready) > p.r.cfg.warmMaxAge:
			p.r.dispose(c)
			c, skipped = nil, true
		}
	}
	if c == nil || skipped || 2*len(p.idle[image]) < p.fillers[image] {
		wakeUp(wake)
		return c, refill
	}
	return c, refillLater(wake)
}

// refillLater wakes a filler on wake when the returned function is called,
// or after poolRefillDelay, whichever comes first.
func refillLater(wake chan struct{}) (now func()) {
	t := time.AfterFunc(poolRefillDelay, func() { wakeUp(wake) })
	return func() {
		if t.Stop() {
			wakeUp(wake)
		}
	}
}

// wakeUp wakes one filler waiting on wake, if none is woken already.
func wakeUp(wake chan struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// fill keeps n idle containers of image until the pool is closed. Each
// image has up to [poolFillers] fill goroutines.
func (p *pool) fill(image string, n int) {
	defer p.wg.Done()
	log := p.r.log.With("image", image)
	tick := time.NewTicker(max(p.r.cfg.warmMaxAge/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		p.expire(image)
		if wait := p.claim(image, n); wait != 0 {
			var retry <-chan time.Time
			if wait > 0 {
				retry = time.After(wait)
			}
			select {
			case <-p.ctx.Done():
				return
			case <-p.wake[image]:
			case <-tick.C:
			case <-retry:
			}
			continue
		}
		if err := p.r.sem.Acquire(p.ctx, 1); err != nil {
			p.done(image, nil)
			return
		}
		// prepare does not cut a create short (the daemon could make a
		// container that nobody knows of); it removes what it made if
		// close comes meanwhile. A create is bounded by the Docker
		// timeout; Close waits for it as long as its context allows.
		c, err := p.r.prepare(p.ctx, image, true, p.r.cfg.memory)
		if err != nil {
			p.r.sem.Release(1)
			retry := p.failed(image)
			if p.ctx.Err() != nil {
				return
			}
			log.Warn("warm pool: cannot start a container; backing off", "code", ErrorCode(err), "error", err, "retry_in", retry)
			continue
		}
		p.done(image, c)
	}
}

// claim reserves the preparation of one container of image when the pool
// holds fewer than n with those being prepared. Otherwise it returns how
// long to wait before looking again: -1 for a wake-up, more while the
// image backs off.
func (p *pool) claim(image string, n int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle[image])+p.filling[image] >= n {
		return -1
	}
	if p.dying[image] && slices.ContainsFunc(p.idle[image], func(c *box) bool { return time.Since(c.ready) >= poolShortLife }) {
		p.provenLocked(image)
	}
	if !p.healthy[image] {
		// Until the image has started fine, one attempt at a time, with
		// the backoff between failures.
		if p.filling[image] > 0 {
			return -1
		}
		if wait := time.Until(p.retryAt[image]); wait > 0 {
			return wait
		}
	}
	p.filling[image]++
	// Pass the wake-up on, so that another filler looks too.
	wakeUp(p.wake[image])
	return 0
}

// done ends a preparation claimed with claim: c, if not nil, joins the
// idle containers and is watched, or is disposed of if the pool is closed.
func (p *pool) done(image string, c *box) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filling[image]--
	if c == nil {
		return
	}
	if p.closed {
		p.r.dispose(c)
		return
	}
	p.idle[image] = append(p.idle[image], c)
	p.wg.Add(1)
	c.watch(func() {
		defer p.wg.Done()
		if c.dead() {
			p.evict(c)
		}
	})
	// While the image's containers die young, starting is not enough: a
	// container must live (provenLocked).
	if !p.dying[image] {
		p.provenLocked(image)
	}
}

// provenLocked records that a container of image started fine and, unless
// they die young, lived: the image stops backing off, and its fillers may
// prepare containers in parallel. p.mu is held.
func (p *pool) provenLocked(image string) {
	p.dying[image] = false
	if p.healthy[image] {
		return
	}
	p.healthy[image] = true
	p.backoff[image] = poolBackoffMin
	wakeUp(p.wake[image]) // the other fillers may start now
}

// failed ends a preparation claimed with claim that failed, and returns
// the delay before the next attempt, which doubles with each failure.
func (p *pool) failed(image string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filling[image]--
	return p.failedLocked(image)
}

// failedLocked marks image as failing and returns the delay before the
// next attempt, which doubles with each failure. p.mu is held.
func (p *pool) failedLocked(image string) time.Duration {
	p.healthy[image] = false
	wait := p.backoff[image]
	p.retryAt[image] = time.Now().Add(wait)
	p.backoff[image] = min(2*wait, poolBackoffMax)
	return wait
}

// evict disposes of c, whose stream ended while it was idle, unless a run
// took it first (the run then finds it dead, see [Runner.exec]).
func (p *pool) evict(c *box) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.idle[c.image]
	i := slices.Index(q, c)
	if i < 0 {
		return
	}
	p.idle[c.image] = slices.Delete(q, i, i+1)
	p.lostLocked(c)
}

// lostLocked disposes of c, an idle container that died, and has it
// replaced: at once, or after the image's backoff if it died young. p.mu
// is held.
func (p *pool) lostLocked(c *box) {
	p.r.dispose(c)
	p.replaceLocked(c)
}

// proven records that c, a container that the pool handed out, was alive
// when it was given its payload (see provenLocked). Taking it proves
// nothing: it may turn out dead (see lost).
func (p *pool) proven(c *box) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.provenLocked(c.image)
}

// lost has c, a container that the pool handed out and that turned out
// dead before it was given its payload, replaced as lostLocked does. The
// run disposes of c.
func (p *pool) lost(c *box) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replaceLocked(c)
}

// replaceLocked has c, a pool container that died, replaced: at once, or
// after the image's backoff if it died young. p.mu is held.
func (p *pool) replaceLocked(c *box) {
	lived := c.lifetime()
	log := p.r.log.With("image", c.image, "container", short(c.id), "lived", lived.Round(time.Millisecond), "error", c.peekErr)
	if p.closed {
		return
	}
	if lived < poolShortLife {
		p.dying[c.image] = true
		wait := p.failedLocked(c.image)
		log.Warn("warm pool: an idle container died within a second of its start; backing off", "retry_in", wait)
	} else {
		p.provenLocked(c.image)
		log.Warn("warm pool: an idle container died (a daemon restart, a docker kill?); replacing it")
	}
	wakeUp(p.wake[c.image])
}

// expire disposes of idle containers of image older than the maximum age.
func (p *pool) expire(image string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.idle[image]
	for len(q) > 0 && time.Since(q[0].ready) > p.r.cfg.warmMaxAge {
		p.r.dispose(q[0])
		q = q[1:]
		p.provenLocked(image) // one lived to its age
	}
	p.idle[image] = q
}

// has reports whether image has a warm pool.
func (p *pool) has(image string) bool {
	if p == nil {
		return false
	}
	_, ok := p.wake[normalizeImage(image)]
	return ok
}

// ready returns how many idle containers each image of the pool holds, or
// nil for a nil pool.
func (p *pool) ready() map[string]int {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.wake))
	for image := range p.wake {
		m[image] = len(p.idle[image])
	}
	return m
}

// size returns how many idle containers of image the pool holds.
func (p *pool) size(image string) int {
	if p == nil {
		return 0
	}
	image = normalizeImage(image)
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle[image])
}

// close disposes of every idle container and stops the fillers without
// waiting for them: a filler in the middle of a create disposes of its
// container when the create returns. [pool.wait] waits for them.
func (p *pool) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	for image, q := range p.idle {
		for _, c := range q {
			p.r.dispose(c)
		}
		delete(p.idle, image)
	}
	p.mu.Unlock()
	p.cancel()
}

// wait waits for the fillers and watchers to stop.
func (p *pool) wait() {
	if p != nil {
		p.wg.Wait()
	}
}
