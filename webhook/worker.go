package webhook

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhr/herald/internal/failpoint"
	"github.com/heraldhr/herald/store"
)

// lifecycle holds what Start creates and Shutdown tears down.
type lifecycle struct {
	mu       sync.Mutex
	started  bool
	stopping bool
	stop     chan struct{} // closed by Shutdown: claim no more
	done     chan struct{} // closed when every goroutine of Start ended
	runCtx   context.Context
	cancel   context.CancelFunc
	inflight sync.WaitGroup

	ackMu     sync.RWMutex
	ackClosed bool
	acks      chan store.Result
	// acksNotified: the store's notifications, which this process
	// receives, report the work an ack makes claimable.
	acksNotified bool
}

// shutdownGrace bounds the wait, after in-flight attempts were cancelled,
// for hooks that ignore their context.
const shutdownGrace = 2 * time.Second

// Start launches the workers and returns at once. Workers claim due
// deliveries, woken by Publish, by the store's notifications when it has
// them, and by a poll every PollInterval. Cancelling ctx is a hard stop:
// attempts in flight are cancelled and their leases released. Use Shutdown
// for a graceful stop.
func (d *Dispatcher) Start(ctx context.Context) error {
	l := &d.life
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return ErrStarted
	}
	l.started = true
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	l.runCtx, l.cancel = context.WithCancel(ctx)
	l.acks = make(chan store.Result, 4*d.cfg.Workers)
	var notes <-chan struct{}
	if n, ok := d.store.(store.Notifier); ok {
		ch, err := n.Subscribe(l.runCtx)
		if err != nil {
			d.log.Warn("herald: store notifications unavailable; polling", "error", err)
		} else {
			notes = ch
			an, ok := d.store.(store.AckNotifier)
			l.acksNotified = ok && an.NotifiesAcks()
		}
	}
	d.startObserver()
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		d.ackLoop(l.acks)
	}()
	purgeCtx, stopPurge := context.WithCancel(l.runCtx)
	purgeDone := make(chan struct{})
	go func() {
		defer close(purgeDone)
		d.retentionLoop(purgeCtx)
	}()
	go func() {
		defer close(l.done)
		d.claimLoop(l.runCtx, l.stop, notes)
		stopPurge()
		<-purgeDone
		l.inflight.Wait()
		d.unpark()
		<-d.hookRuns.wait() // hooks that outlived their attempt
		l.ackMu.Lock()
		l.ackClosed = true
		close(l.acks)
		l.ackMu.Unlock()
		<-ackDone
		d.stopObserver()
		l.cancel()
		if notes != nil {
			for range notes { // the store closes it once runCtx ends
			}
		}
	}()
	return nil
}

// Shutdown stops claiming, waits for attempts in flight until ctx ends,
// then cancels them and releases their leases so another dispatcher can
// take the work at once, waits a short grace for hooks that ignore their
// context, and returns ctx.Err(). It also closes the idle connections of
// the client herald built, so no keep-alive goroutine outlives it. A second
// call does nothing more.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	defer d.closeIdle()
	l := &d.life
	l.mu.Lock()
	if !l.started || l.stopping {
		l.mu.Unlock()
		return nil
	}
	l.stopping = true
	close(l.stop)
	l.mu.Unlock()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
	}
	l.cancel()
	t := time.NewTimer(shutdownGrace)
	defer t.Stop()
	select {
	case <-l.done:
	case <-t.C:
		d.log.Error("herald: hooks still running after shutdown; they ignore their context")
	}
	return ctx.Err()
}

// closeIdle closes the idle keep-alive connections of the clients herald
// built itself; a client the application supplied is the application's.
func (d *Dispatcher) closeIdle() {
	if d.cfg.ownClient {
		d.client.CloseIdleConnections()
	}
	for _, c := range d.cfg.tlsClients {
		c.CloseIdleConnections()
	}
}

// claimLoop runs the worker pool until stop or ctx ends it. The pool
// has no claiming goroutine of its own: one idle worker at a time holds
// the claimer's turn. It waits until work may be due, claims up to one
// message per idle worker, keeps the first for itself, hands the others
// to idle workers and passes the turn on before it sends its own. A
// published message so reaches the worker that sends it with one wake-up
// instead of two (the claimer's, then the worker's), and a worker that
// frees the pool's last slot claims at once instead of waking a claimer.
func (d *Dispatcher) claimLoop(ctx context.Context, stop <-chan struct{}, notes <-chan struct{}) {
	l := &d.life
	c := &claiming{d: d, ctx: ctx, stop: stop, notes: notes,
		turn: make(chan struct{}, 1), quit: make(chan struct{}), work: make(chan store.Message),
		poll: time.NewTimer(d.cfg.PollInterval), pollAt: time.Now().Add(d.cfg.PollInterval),
		due: true} // what is due already is claimed at once
	defer c.poll.Stop()
	c.turn <- struct{}{}
	hctx := withClaimer(ctx, stop)
	var pool sync.WaitGroup
	// Workers live as long as the loop: a goroutine per message grew a
	// fresh stack for every attempt.
	for range d.cfg.Workers {
		pool.Add(1)
		go func() {
			defer pool.Done()
			for {
				var m store.Message
				select {
				case m = <-c.work:
				case <-c.turn:
					var ok bool
					if m, ok = c.claim(); !ok {
						// The pool stops: the turn is not passed on, and
						// every worker leaves once idle.
						close(c.quit)
						return
					}
					c.turn <- struct{}{}
				case <-c.quit:
					return
				}
				d.work(hctx, m)
				l.inflight.Done()
				c.busy.Add(-1)
			}
		}()
	}
	pool.Wait()
}

// claiming is the state of the worker pool's claiming, used by whichever
// worker holds the turn (receiving from turn orders the uses).
type claiming struct {
	d     *Dispatcher
	ctx   context.Context
	stop  <-chan struct{}
	notes <-chan struct{}
	turn  chan struct{}      // holds the turn while no worker has it
	quit  chan struct{}      // closed when claiming has ended
	work  chan store.Message // the turn's holder hands claimed messages to idle workers

	// busy counts the workers holding a message, from its claim until
	// the worker is done with it, so a worker is free for every message
	// handed over.
	busy     atomic.Int64
	due      bool // the last claim was full: more may be due at once
	failures int
	poll     *time.Timer
	pollAt   time.Time // when poll fires, unless it has
}

// claim waits until work may be due and claims it, as the holder of the
// turn, which is an idle worker; it returns the message that worker
// sends, or false when the pool stops.
func (c *claiming) claim() (store.Message, bool) {
	d, l := c.d, &c.d.life
	for {
		if !c.due {
			select {
			case <-c.stop:
				return store.Message{}, false
			case <-c.ctx.Done():
				return store.Message{}, false
			case <-d.wake:
			case <-c.notes:
			case <-c.poll.C:
				c.poll.Reset(d.cfg.PollInterval)
				c.pollAt = time.Now().Add(d.cfg.PollInterval)
			}
		}
		select {
		case <-c.stop:
			return store.Message{}, false
		case <-c.ctx.Done():
			return store.Message{}, false
		default:
		}
		// The claim below answers every wake-up sent so far (work is
		// stored before its signal is sent): drop them, or each would cost
		// an empty claim. A Publish both signals and is notified by the
		// store, so there are often two.
		drain(d.wake)
		drain(c.notes)
		n := d.cfg.Workers - int(c.busy.Load()) // this worker is idle: n >= 1
		msgs, err := d.store.Claim(c.ctx, store.Claim{Now: d.now(), Lease: d.cfg.LeaseDuration, Limit: n})
		c.busy.Add(int64(len(msgs)))
		c.due = err == nil && len(msgs) == n
		var wait time.Duration
		switch {
		case err != nil:
			if c.ctx.Err() != nil {
				c.busy.Add(-int64(len(msgs)))
				return store.Message{}, false
			}
			c.failures++
			wait = min(100*time.Millisecond<<min(c.failures, 6), 5*time.Second)
			d.log.Error("herald: claiming failed; backing off", "error", err, "wait", wait)
		case len(msgs) < n:
			c.failures = 0
			wait = d.health.nextWake(d.now(), d.cfg.PollInterval)
		default:
			c.failures = 0
		}
		// The poll timer is set again only to fire sooner, or once it
		// fired: an idle claimer still looks every PollInterval, without
		// a timer reset on every wake-up.
		if !c.due {
			if at := time.Now().Add(wait); at.Before(c.pollAt) || err != nil {
				c.poll.Reset(wait) // no stale tick survives a Reset (Go 1.23 timers)
				c.pollAt = at
			}
		}
		if len(msgs) == 0 {
			continue
		}
		l.inflight.Add(len(msgs))
		for _, m := range msgs[1:] {
			c.work <- m
		}
		return msgs[0], true
	}
}

// nudge sends a wake-up on ch unless one is pending.
func nudge(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// drain takes a pending wake-up off ch, if there is one.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// ack hands a result to the ack loop, or writes it at once when the loop
// has ended (a hook that outlived Shutdown).
func (d *Dispatcher) ack(r store.Result) {
	l := &d.life
	l.ackMu.RLock()
	if !l.ackClosed {
		l.acks <- r
		l.ackMu.RUnlock()
		return
	}
	l.ackMu.RUnlock()
	d.writeAcks([]store.Result{r})
}

// ackLoop writes results in batches: whatever has arrived while the
// previous write ran goes in the next one.
func (d *Dispatcher) ackLoop(acks <-chan store.Result) {
	batch := make([]store.Result, 0, 256)
	for r := range acks {
		batch = append(batch[:0], r)
	more:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-acks:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		if d.writeAcks(batch) && d.wakeAfter(batch) {
			d.signal()
		}
	}
}

// wakeAfter reports whether the claimer should look for work after rs
// were recorded: a finished head lets the next record of its key move
// up, which a store that notifies acks reports itself; and a postponement
// may be due before the claimer's next look, which only this process
// knows.
func (d *Dispatcher) wakeAfter(rs []store.Result) bool {
	if !d.life.acksNotified {
		return true
	}
	for _, r := range rs {
		if r.Outcome == store.OutcomePostpone {
			return true
		}
	}
	return false
}

// writeAcks records results and reports whether the store took them (a
// lost lease drops only its own result).
func (d *Dispatcher) writeAcks(rs []store.Result) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	failpoint.Hit("ack.before-write")
	if err := d.store.Ack(ctx, rs); err != nil {
		if errors.Is(err, store.ErrLeaseLost) {
			d.log.Warn("herald: an attempt outlived its lease; its outcome was dropped and the message will be sent again", "error", err)
			return true
		}
		d.log.Error("herald: recording outcomes failed; the messages will be sent again when their leases expire", "error", err)
		return false
	}
	return true
}

func (d *Dispatcher) release(lease string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.store.Release(ctx, []string{lease}); err != nil {
		d.log.Error("herald: releasing a lease failed; the message waits for its lease to expire", "error", err)
	}
}

// ProcessDue claims and attempts every message due now, concurrently up to
// Workers (and to each webhook's MaxConcurrency), until none is due, and
// returns how many messages it attempted.
// Retries scheduled later are left for a later call (advance the clock
// first). It is meant for tests and for callers that run no workers; it
// does not need Start.
func (d *Dispatcher) ProcessDue(ctx context.Context) (int, error) {
	ctx = withClaimer(ctx, nil)
	total := 0
	for {
		msgs, err := d.store.Claim(ctx, store.Claim{Now: d.now(), Lease: d.cfg.LeaseDuration, Limit: d.cfg.Workers})
		if err != nil || len(msgs) == 0 {
			return total, err
		}
		results := make([]store.Result, len(msgs))
		keep := make([]bool, len(msgs))
		var wg sync.WaitGroup
		for i, m := range msgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], keep[i] = d.handle(ctx, m, nil)
			}()
		}
		wg.Wait()
		var acks []store.Result
		var leases []string
		for i, r := range results {
			if keep[i] {
				acks = append(acks, r)
			} else {
				leases = append(leases, msgs[i].Lease)
			}
		}
		if len(leases) > 0 {
			_ = d.store.Release(context.WithoutCancel(ctx), leases)
			return total, ctx.Err()
		}
		failpoint.Hit("ack.before-write")
		if err := d.store.Ack(ctx, acks); err != nil {
			return total, err
		}
		total += len(msgs)
	}
}
