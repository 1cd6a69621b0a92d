package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/heraldhr/herald/store"
)

// BreakerState is the state of a webhook's circuit breaker.
type BreakerState string

// Breaker states.
const (
	// BreakerClosed: requests flow.
	BreakerClosed BreakerState = "closed"
	// BreakerOpen: the webhook's deliveries wait, spending no attempt,
	// until the next probe.
	BreakerOpen BreakerState = "open"
	// BreakerHalfOpen: the probe time has come; one delivery goes out as
	// the probe while the others wait for its answer.
	BreakerHalfOpen BreakerState = "half-open"
)

// BreakerPolicy configures the circuit breaker each webhook has in each
// process. A zero field means its default.
//
// The breaker opens on sustained failure only: at least MinFailures failed
// requests within Window that are also at least FailureRatio of the
// requests in it. A failed request is one answered with anything but 2xx,
// or not answered at all. While the breaker is open, the webhook's
// deliveries wait without spending attempts. After Cooldown a single
// delivery is sent as a probe: if it succeeds the breaker closes; if it
// fails the breaker opens again for twice as long, up to MaxCooldown. Any
// successful request to the webhook (a probe, a replay, a ping) closes it.
type BreakerPolicy struct {
	// MinFailures is how many failed requests within Window open the
	// breaker; 0: 10.
	MinFailures int
	// FailureRatio is the share of the requests within Window that must
	// have failed too, above 0 and at most 1; 0: 0.5.
	FailureRatio float64
	// Window is how far back failures count; 0: 1 minute.
	Window time.Duration
	// Cooldown is how long the breaker stays open before its first
	// probe; 0: 30s.
	Cooldown time.Duration
	// MaxCooldown caps the cool-down as failed probes double it; 0: 10
	// minutes, or Cooldown if that is longer.
	MaxCooldown time.Duration
}

func (p BreakerPolicy) check() []error {
	var errs []error
	neg := func(name string, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("webhook: Config.Breaker.%s must not be negative", name))
		}
	}
	neg("MinFailures", p.MinFailures < 0)
	neg("Window", p.Window < 0)
	neg("Cooldown", p.Cooldown < 0)
	neg("MaxCooldown", p.MaxCooldown < 0)
	if p.FailureRatio < 0 || p.FailureRatio > 1 || math.IsNaN(p.FailureRatio) {
		errs = append(errs, errors.New("webhook: Config.Breaker.FailureRatio must be between 0 and 1"))
	}
	if p.MaxCooldown > 0 && p.MaxCooldown < p.Cooldown {
		errs = append(errs, errors.New("webhook: Config.Breaker.MaxCooldown must not be below Cooldown"))
	}
	return errs
}

// fillHealth sets the defaults of the health settings; Workers is set.
func (c *Config) fillHealth() {
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = max(1, c.Workers/2)
	}
	if c.DisableAfter == 0 {
		c.DisableAfter = 5 * 24 * time.Hour
	}
	b := &c.Breaker
	if b.MinFailures == 0 {
		b.MinFailures = 10
	}
	if b.FailureRatio == 0 {
		b.FailureRatio = 0.5
	}
	if b.Window == 0 {
		b.Window = time.Minute
	}
	if b.Cooldown == 0 {
		b.Cooldown = 30 * time.Second
	}
	if b.MaxCooldown == 0 {
		b.MaxCooldown = max(10*time.Minute, b.Cooldown)
	}
}

// checkLimits validates a webhook's own limits for Register and Update.
func checkLimits(w Webhook) []error {
	var errs []error
	if w.MaxConcurrency < 0 {
		errs = append(errs, inField("max_concurrency", fmt.Errorf("max_concurrency %d must not be negative", w.MaxConcurrency)))
	}
	if w.RateLimit < 0 || math.IsNaN(w.RateLimit) || math.IsInf(w.RateLimit, 0) {
		errs = append(errs, inField("rate_limit", fmt.Errorf("rate_limit %v must be a number of requests per second, 0 for none", w.RateLimit)))
	}
	return errs
}

// EndpointHealth is how a webhook's endpoint is doing: as this process
// sees it (breaker, requests in flight) and as the store keeps it
// (FailingSince, Disabled).
type EndpointHealth struct {
	WebhookID string
	// Breaker is the state of the webhook's circuit breaker in this
	// process. An open breaker whose NextProbe has passed probes with the
	// next delivery due.
	Breaker BreakerState
	// OpenedAt is when the breaker last opened; NextProbe is when it may
	// send its probe. Both are zero while it is closed.
	OpenedAt  time.Time
	NextProbe time.Time
	// Requests and Failures count the requests within the breaker's
	// window, while it is closed.
	Requests int
	Failures int
	// InFlight is the number of requests this process has open to the
	// webhook; MaxConcurrency caps it. Waiting is the number of its
	// messages this process has claimed and holds in memory until a
	// request ends.
	InFlight       int
	Waiting        int
	MaxConcurrency int
	// RateLimit is the webhook's cap in requests per second; 0: none.
	RateLimit float64
	// FailingSince is when the current run of failed requests began, as
	// stored or, before it is stored, as this process saw it; zero while
	// requests succeed.
	FailingSince   time.Time
	Disabled       bool
	DisabledReason string
}

// Health reports how a webhook's endpoint is doing. Breaker state and
// requests in flight are this process's own: each process keeps its own
// breaker and limits.
func (d *Dispatcher) Health(ctx context.Context, id string) (EndpointHealth, error) {
	w, err := d.Webhook(ctx, id)
	if err != nil {
		return EndpointHealth{}, err
	}
	e := EndpointHealth{WebhookID: w.ID, Breaker: BreakerClosed, MaxConcurrency: d.concurrencyFor(w),
		RateLimit: w.RateLimit, FailingSince: w.FailingSince, Disabled: w.Disabled, DisabledReason: w.DisabledReason}
	h := &d.health
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.gates[id]
	if g == nil {
		return e, nil
	}
	e.Breaker, e.InFlight, e.Waiting = g.state, len(g.tickets), len(g.park)+len(g.waiters)
	if g.state != BreakerClosed {
		e.OpenedAt, e.NextProbe = g.openedAt, g.probeAt
	} else {
		e.Requests, e.Failures = g.win.counts(d.now(), d.cfg.Breaker.Window)
	}
	if e.FailingSince.IsZero() {
		e.FailingSince = g.runStart
	}
	return e, nil
}

// concurrencyFor returns the cap on w's requests in flight.
func (d *Dispatcher) concurrencyFor(w Webhook) int {
	if w.MaxConcurrency > 0 {
		return w.MaxConcurrency
	}
	return d.cfg.MaxConcurrency
}

const (
	// minDefer is the shortest postponement, so a postponed message is
	// never due again at the instant it was postponed.
	minDefer = 5 * time.Millisecond
	// maxDefer caps how far ahead a limit postpones a message, so a
	// pessimistic estimate, or a limit raised later, delays it by a
	// minute at most.
	maxDefer = time.Minute
	// persistAfter is how long a run of failures lasts in one process
	// before it is written to the webhook's definition: short blips cost
	// no write.
	persistAfter = time.Minute
	// parkCap and parkBytes bound the messages parked in memory: per
	// webhook, and the payload bytes of all.
	parkCap   = 10000
	parkBytes = 64 << 20
	// answering is how recently a request to a webhook must have ended for
	// its receiver to count as answering.
	answering = time.Second
	// unknownLatency is what a request is assumed to take before one to
	// the webhook ended.
	unknownLatency = 10 * time.Millisecond
	// maxWakes bounds the postponement times kept to wake the claimer.
	maxWakes = 1024
	// breakerSlots is the number of buckets the breaker's window is cut
	// into.
	breakerSlots = 10
)

// health holds what this process knows of each webhook's endpoint: its
// requests in flight, rate, breaker and current run of failures. None of
// it needs to survive a restart, except the start of a long run of
// failures, which is written to the webhook's definition.
type health struct {
	mu          sync.Mutex
	gates       map[string]*gate
	wakes       []time.Time // postponements this process made, soonest first
	parkedBytes int64
}

// gate is one webhook's entry in health. Its fields are guarded by
// health.mu.
type gate struct {
	inflight    int // slots taken: by requests in flight, or handed to a waiting message
	tickets     map[*ticket]struct{}
	waiters     []*waiter     // ProcessDue's messages waiting for a slot, in order
	park        []parked      // the pool's messages waiting for a slot, in order
	latency     time.Duration // moving average of finished requests
	lastLatency time.Duration // the last finished request
	gap         time.Duration // moving average of the time between requests ending, all slots taken
	lastDone    time.Time     // when a request last ended (system time)
	firstBegan  time.Time     // when the first request began (system time)
	nextSlot    time.Time     // the end of the line of messages waiting for a slot

	limiter  *rate.Limiter
	perSec   float64
	reserved map[string]time.Time // message id -> when its token is due
	inserts  int

	state    BreakerState
	win      window
	openedAt time.Time
	probeAt  time.Time
	cooldown time.Duration
	probing  bool
	probeEnd time.Time // when the probe's answer is due at the latest

	runStart time.Time // first failure since the last success, in this process
	seen     time.Time // the stored FailingSince at the last failure
	writing  bool      // a write of the run (or a disable) is under way
}

// ticket is a request admitted past a webhook's breaker and limits.
type ticket struct {
	g     *gate
	start time.Time
	probe bool
	hand  *hand // nil outside the worker pool
}

// gateLocked returns id's gate, creating it. h.mu is held.
func (h *health) gateLocked(id string) *gate {
	if h.gates == nil {
		h.gates = map[string]*gate{}
	}
	g := h.gates[id]
	if g == nil {
		g = &gate{state: BreakerClosed, tickets: map[*ticket]struct{}{}}
		h.gates[id] = g
	}
	return g
}

// reset gives a webhook's endpoint a fresh start: breaker closed, run of
// failures forgotten. Requests in flight and the rate keep counting.
func (h *health) reset(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.gates[id]
	if g == nil {
		return
	}
	g.close()
	g.nextSlot = time.Time{}
	g.runStart, g.seen = time.Time{}, time.Time{}
}

// wakeAtLocked remembers a postponement so the claimer looks again when
// it comes due. h.mu is held.
func (h *health) wakeAtLocked(at time.Time) {
	i, found := slices.BinarySearchFunc(h.wakes, at, time.Time.Compare)
	if found || i >= maxWakes {
		return
	}
	h.wakes = slices.Insert(h.wakes, i, at)
	if len(h.wakes) > maxWakes {
		h.wakes = h.wakes[:maxWakes]
	}
}

// nextWake returns how long an idle claimer may wait: until the soonest
// postponement this process made comes due, at most poll.
func (h *health) nextWake(now time.Time, poll time.Duration) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := 0
	for i < len(h.wakes) && !h.wakes[i].After(now) {
		i++
	}
	h.wakes = h.wakes[i:]
	if len(h.wakes) == 0 {
		return poll
	}
	return min(poll, h.wakes[0].Sub(now))
}

// claimer tells admit who handles the message: the worker pool of Start,
// whose Shutdown closes stop, or ProcessDue (pool false).
type claimer struct {
	pool bool
	stop <-chan struct{}
}

type claimerKey struct{}

// withClaimer marks ctx as that of a message handled by the worker pool
// (stop non-nil: closed by Shutdown) or by ProcessDue (stop nil).
func withClaimer(ctx context.Context, stop <-chan struct{}) context.Context {
	return context.WithValue(ctx, claimerKey{}, claimer{pool: stop != nil, stop: stop})
}

// parked is a claimed message of the worker pool waiting in memory for
// one of its webhook's slots. It holds its lease, but neither a worker
// nor a goroutine.
type parked struct {
	m     store.Message
	at    time.Time // when it was claimed (system time)
	bytes int64
}

// hand is what the goroutine of the worker pool handling one message
// carries through handle: whether the message came with a slot (handed
// over by a request of its webhook that ended), and the parked message
// to handle next, with the slot it frees.
type hand struct {
	slotted bool
	at      time.Time // when the message was claimed (system time)
	used    bool      // admit took charge of the slot
	next    *parked
}

// outcomeParked is what handle returns for a message it parked: nothing
// to record, its lease still held.
const outcomeParked store.Outcome = 0

// work handles a claimed message for the worker pool, then the parked
// messages of its webhook that its slot is handed to, one after another,
// on the same worker.
func (d *Dispatcher) work(ctx context.Context, m store.Message) {
	h := &hand{at: time.Now()}
	for {
		r, ok := d.handle(ctx, m, h)
		if h.slotted && !h.used {
			// handle returned before admit (webhook deleted, disabled,
			// held): the slot passes on.
			d.health.mu.Lock()
			d.health.gateLocked(m.WebhookID).releaseSlot(h, d.stopping(ctx))
			d.health.mu.Unlock()
		}
		switch {
		case !ok:
			d.release(m.Lease)
		case r.Outcome != outcomeParked:
			d.ack(r)
		}
		if h.next == nil {
			return
		}
		p := h.next
		d.health.mu.Lock()
		d.health.parkedBytes -= p.bytes
		d.health.mu.Unlock()
		m, h = p.m, &hand{slotted: true, at: p.at}
	}
}

// stopping reports whether the worker pool is stopping: no parked message
// is started then.
func (d *Dispatcher) stopping(ctx context.Context) bool {
	cl, _ := ctx.Value(claimerKey{}).(claimer)
	return ctx.Err() != nil || stopped(cl.stop)
}

// unpark empties every webhook's park, once the worker pool has ended,
// and releases the leases of what was in them.
func (d *Dispatcher) unpark() {
	h := &d.health
	h.mu.Lock()
	var leases []string
	for _, g := range h.gates {
		for _, p := range g.park {
			leases = append(leases, p.m.Lease)
		}
		g.park = nil
	}
	h.parkedBytes = 0
	h.mu.Unlock()
	if len(leases) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.store.Release(ctx, leases); err != nil {
		d.log.Error("herald: releasing waiting messages failed; they wait for their leases to expire", "error", err)
	}
}

// waiter is a message of ProcessDue waiting for one of its webhook's
// slots.
type waiter struct {
	ch      chan struct{} // closed when granted
	granted bool          // the slot was handed over; guarded by health.mu
}

// releaseSlot gives up one of the webhook's slots, held by the goroutine
// carrying h (nil outside the worker pool): to a waiter of ProcessDue,
// or to the first parked message, which h then takes (unless the pool is
// stopping), or back. h.mu is held.
func (g *gate) releaseSlot(h *hand, stopping bool) {
	switch {
	case len(g.waiters) > 0:
		wt := popFront(&g.waiters)
		wt.granted = true
		close(wt.ch)
	case h != nil && !stopping && len(g.park) > 0:
		p := popFront(&g.park)
		h.next = &p
	default:
		g.inflight--
	}
}

// popFront takes the first element off a queue kept as a slice. It moves
// the slice's start rather than the elements: a month-end burst parks
// thousands of messages per webhook, and shifting them all for every one
// taken made each release cost as much as the whole park. The element
// left behind is zeroed, so the array does not keep its message alive;
// append copies the rest to a new array when the old one is used up.
func popFront[T any](q *[]T) T {
	v := (*q)[0]
	var zero T
	(*q)[0] = zero
	*q = (*q)[1:]
	return v
}

// leaseWait is how long a claimed message may wait for its webhook's slot
// and still make its attempt within its lease.
func (d *Dispatcher) leaseWait() time.Duration {
	return d.cfg.LeaseDuration - d.cfg.AttemptTimeout - 2*d.cfg.HookTimeout - 5*time.Second
}

// replayed reports whether m is a replay of one delivery: those go out at
// once, past an open breaker.
func replayed(m store.Message) bool {
	return len(m.Deliveries) == 1 && m.Deliveries[0].Replayed
}

// admit decides whether m may be sent now. It returns a ticket, to be
// handed to settle after the attempt (its start is the time to attempt
// at); or, with a nil ticket, what to record instead: a postponement, or
// nothing (outcomeParked) for a message parked in memory; or ok false
// when the caller's context ended, or Shutdown began, while m waited:
// nothing is then to be recorded and m's lease is to be released.
//
// In order: the breaker (an open one postpones m to its probe); the
// webhook's concurrency cap; then the rate, whose token is spent only by
// a message that also has a slot.
//
// When the webhook's slots are all taken, a message of the worker pool is
// parked, to be sent by the worker of the first of the webhook's requests
// to end: it waits without a worker and without a write to the store,
// and the webhook's requests follow one another as fast as its receiver
// answers. A park holds parkCap messages at most, parkBytes of payload in
// all, and messages that can still start within their lease; beyond, a
// message is postponed in the store to about its turn. ProcessDue has no
// pool to protect: there m waits for its turn.
func (d *Dispatcher) admit(ctx context.Context, w *compiled, m store.Message, hd *hand, now time.Time) (tk *ticket, r store.Result, ok bool) {
	h := &d.health
	postpone := func(at time.Time, why string) (*ticket, store.Result, bool) {
		h.wakeAtLocked(at)
		h.mu.Unlock()
		return nil, store.Result{MessageID: m.ID, Lease: m.Lease, Now: now, Outcome: store.OutcomePostpone, NextAttempt: at, Error: why}, true
	}
	replay := replayed(m)
	limit := d.concurrencyFor(w.Webhook)
	cl, known := ctx.Value(claimerKey{}).(claimer)
	stopping := d.stopping(ctx)
	start := time.Now()
	granted := hd != nil && hd.slotted // holds one of the webhook's slots
	if hd != nil {
		hd.used = true
		start = hd.at
	}
	h.mu.Lock()
	for {
		g := h.gateLocked(w.ID)
		probe := false
		if !replay {
			if g.state == BreakerOpen && now.Before(g.probeAt) {
				if granted {
					g.releaseSlot(hd, stopping)
				}
				return postpone(g.probeAt, "circuit breaker open; next probe at "+g.probeAt.UTC().Format(time.RFC3339))
			}
			if g.state == BreakerOpen {
				g.state = BreakerHalfOpen
			}
			if g.state == BreakerHalfOpen && g.probing {
				if granted {
					g.releaseSlot(hd, stopping)
				}
				at := g.probeEnd
				if !at.After(now) {
					at = now.Add(d.cfg.AttemptTimeout)
				}
				return postpone(at, "circuit breaker half-open; waiting for its probe")
			}
			probe = g.state == BreakerHalfOpen
		}
		if granted && time.Since(start) > d.leaseWait() {
			// Parked too long to finish within its lease.
			g.releaseSlot(hd, stopping)
			return postpone(now.Add(minDefer), "")
		}
		if !granted && g.inflight < limit && (len(g.park) == 0 || hd == nil) {
			g.inflight++
			granted = true
		}
		if !granted && cl.pool && hd != nil {
			size := messageBytes(m)
			per := g.estimate(now, limit)
			if len(g.park) < parkCap && h.parkedBytes+size <= parkBytes &&
				time.Duration(len(g.park)+1)*per < d.leaseWait()-time.Since(start) {
				g.park = append(g.park, parked{m: m, at: start, bytes: size})
				h.parkedBytes += size
				if g.inflight < limit {
					// Slots freed while others were parked: this worker
					// takes the first of them, in order.
					g.inflight++
					g.releaseSlot(hd, stopping)
				}
				h.mu.Unlock()
				return nil, store.Result{}, true
			}
			return postpone(g.deferSlot(now, per), "")
		}
		if !granted {
			maxWait := d.leaseWait() - time.Since(start)
			if !known || cl.pool || maxWait <= 0 {
				return postpone(g.deferSlot(now, g.estimate(now, limit)), "")
			}
			wt := &waiter{ch: make(chan struct{})}
			g.waiters = append(g.waiters, wt)
			h.mu.Unlock()
			timer := time.NewTimer(maxWait)
			select {
			case <-wt.ch:
			case <-timer.C:
			case <-ctx.Done():
			}
			timer.Stop()
			h.mu.Lock()
			if !wt.granted {
				g.waiters = slices.DeleteFunc(g.waiters, func(x *waiter) bool { return x == wt })
				if ctx.Err() != nil {
					h.mu.Unlock()
					return nil, store.Result{}, false
				}
				now = d.now()
				return postpone(g.deferSlot(now, g.estimate(now, limit)), "")
			}
			now = d.now()
			granted = true
			continue // the breaker may have opened meanwhile
		}
		if at, ok := g.reserve(m.ID, w.RateLimit, now); !ok {
			g.releaseSlot(hd, stopping)
			return postpone(at, "")
		}
		tk = &ticket{g: g, start: now, probe: probe, hand: hd}
		g.tickets[tk] = struct{}{}
		if g.firstBegan.IsZero() {
			g.firstBegan = time.Now()
		}
		if probe {
			g.probing, g.probeEnd = true, now.Add(d.cfg.AttemptTimeout)
		}
		h.mu.Unlock()
		return tk, store.Result{}, true
	}
}

// messageBytes is about what a parked message costs in memory.
func messageBytes(m store.Message) int64 {
	n := int64(512)
	for _, e := range m.Events {
		n += int64(len(e.Payload)) + 256
	}
	return n
}

func stopped(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// spacing is the expected time between two of the webhook's slots
// freeing while all are taken: as measured, or else a request's last
// measured time (or its average, if lower) divided by the slots.
func (g *gate) spacing(limit int) time.Duration {
	if g.gap > 0 {
		return g.gap
	}
	return min(g.latency, g.lastLatency) / time.Duration(limit)
}

// estimate is the spacing of the webhook's line. For a receiver that is
// answering (a request ended within the answering window) it is the
// measured spacing, which errs low: a message then costs at most another
// postponement. For one that is not (yet), it is a request's average time
// (unknownLatency before any ended), or the age of the youngest request
// in flight if that is longer (a receiver that started hanging), divided
// by the slots: it errs high, so a dead receiver's backlog comes back
// seldom.
func (g *gate) estimate(now time.Time, limit int) time.Duration {
	if !g.lastDone.IsZero() && time.Since(g.lastDone) <= answering {
		return g.spacing(limit)
	}
	est := g.latency
	if est == 0 {
		est = unknownLatency
	}
	if len(g.tickets) > 0 {
		youngest := time.Duration(math.MaxInt64)
		for tk := range g.tickets {
			youngest = min(youngest, now.Sub(tk.start))
		}
		est = max(est, youngest)
	}
	return est / time.Duration(limit)
}

// deferSlot returns when a message that found the webhook's slots taken,
// and too many messages waiting for them, should come back: after those
// waiting, at the end of the webhook's line, each place in it per apart.
// The line reaches no further ahead than twice as long as this process
// has watched the receiver (at most maxDefer): a postponement cannot be
// taken back, so an estimate made on little evidence (a receiver that is
// slow to start, a pause of the process) costs little and is soon made
// again on more; and a dead receiver's backlog comes back ever more
// seldom.
func (g *gate) deferSlot(now time.Time, per time.Duration) time.Time {
	horizon := maxDefer
	if !g.firstBegan.IsZero() {
		horizon = min(maxDefer, max(minDefer, 2*time.Since(g.firstBegan)))
	}
	due := now.Add(max(minDefer, time.Duration(len(g.waiters))*per))
	if g.nextSlot.After(due) {
		due = g.nextSlot
	}
	if due.After(now.Add(horizon)) {
		return now.Add(horizon)
	}
	g.nextSlot = due.Add(per)
	return due
}

// reserve takes a token of the webhook's rate for message id. When none is
// free it returns when the message should come back; the token is then
// held for it, so its return is not charged twice.
func (g *gate) reserve(id string, perSec float64, now time.Time) (time.Time, bool) {
	if perSec <= 0 {
		g.limiter, g.reserved = nil, nil
		return time.Time{}, true
	}
	if at, ok := g.reserved[id]; ok {
		if now.Before(at) {
			return at, false
		}
		delete(g.reserved, id)
		return time.Time{}, true
	}
	switch {
	case g.limiter == nil:
		g.limiter = rate.NewLimiter(rate.Limit(perSec), 1)
		g.reserved = map[string]time.Time{}
	case g.perSec != perSec:
		g.limiter.SetLimitAt(now, rate.Limit(perSec))
	}
	g.perSec = perSec
	res := g.limiter.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay <= 0 {
		return time.Time{}, true
	}
	if delay > maxDefer {
		res.CancelAt(now)
		return now.Add(maxDefer), false
	}
	at := now.Add(delay)
	g.reserved[id] = at
	// Tokens held for messages that never came back (taken by another
	// process, or their webhook deleted) are dropped now and then.
	if g.inserts++; g.inserts%256 == 0 {
		for k, t := range g.reserved {
			if now.Sub(t) > 2*maxDefer {
				delete(g.reserved, k)
			}
		}
	}
	return at, false
}

// runAction is a store write settle asks for after a request.
type runAction int

const (
	runNone    runAction = iota
	runPersist           // write FailingSince
	runClear             // clear FailingSince
	runDisable           // disable the webhook
)

// settle returns a ticket after the attempt (its slot passes to the
// webhook's first parked message, which the same worker sends next) and
// feeds what the request did to the breaker and to the webhook's run of
// failures. Only requests that were sent count: a hook that failed before
// sending, or an attempt cut off by a stop, says nothing about the
// receiver.
func (d *Dispatcher) settle(ctx context.Context, w *compiled, tk *ticket, out store.Result) {
	now := d.now()
	sent := out.Attempt != nil && out.Attempt.RequestHeaders != nil
	cut := ctx.Err() != nil && out.Outcome != store.OutcomeDelivered
	h := &d.health
	h.mu.Lock()
	g := tk.g
	done := time.Now()
	if g.inflight >= d.concurrencyFor(w.Webhook) && !g.lastDone.IsZero() {
		// A pause of the whole process may not blow the estimate up: one
		// sample moves it by 60% at most.
		dt := done.Sub(g.lastDone)
		if g.gap > 0 {
			dt = min(dt, 4*g.gap)
		}
		g.gap = ewma(g.gap, dt)
	}
	g.lastDone = done
	delete(g.tickets, tk)
	if cut || !sent {
		if tk.probe {
			g.probing = false
		}
		g.releaseSlot(tk.hand, d.stopping(ctx))
		h.mu.Unlock()
		return
	}
	ok := out.Outcome == store.OutcomeDelivered
	g.observeLatency(out.Attempt.Latency)
	ev := g.breakerResult(ok, tk.probe, now, d.cfg.Breaker)
	var held []store.Result
	if ev != nil && ev.kind == EventBreakerOpened {
		// What waits in memory waits for the probe, in one write.
		why := "circuit breaker open; next probe at " + g.probeAt.UTC().Format(time.RFC3339)
		for _, p := range g.park {
			held = append(held, store.Result{MessageID: p.m.ID, Lease: p.m.Lease, Now: now,
				Outcome: store.OutcomePostpone, NextAttempt: g.probeAt, Error: why})
			h.parkedBytes -= p.bytes
		}
		g.park = nil
		h.wakeAtLocked(g.probeAt)
	}
	g.releaseSlot(tk.hand, d.stopping(ctx))
	act, since := g.run(ok, w.FailingSince, now, d.cfg.DisableAfter)
	h.mu.Unlock()
	if len(held) > 0 {
		d.writeAcks(held)
	}
	d.reportBreaker(w, ev)
	d.act(ctx, w, act, since, now)
}

// succeeded feeds a successful request made outside a delivery (a ping)
// to the webhook's breaker and run of failures.
func (d *Dispatcher) succeeded(ctx context.Context, w *compiled) {
	now := d.now()
	h := &d.health
	h.mu.Lock()
	g := h.gateLocked(w.ID)
	ev := g.breakerResult(true, false, now, d.cfg.Breaker)
	act, since := g.run(true, w.FailingSince, now, d.cfg.DisableAfter)
	h.mu.Unlock()
	d.reportBreaker(w, ev)
	d.act(ctx, w, act, since, now)
}

func (g *gate) observeLatency(l time.Duration) {
	g.lastLatency = l
	g.latency = ewma(g.latency, l)
}

// ewma moves a moving average a fifth of the way to x.
func ewma(avg, x time.Duration) time.Duration {
	if avg == 0 {
		return x
	}
	return avg + (x-avg)/5
}

// breakerEvent is a change of breaker state to report once the lock is
// released.
type breakerEvent struct {
	kind   EventKind
	reason string
	next   time.Time
}

// breakerResult moves the breaker on a request's result.
func (g *gate) breakerResult(ok, probe bool, now time.Time, p BreakerPolicy) *breakerEvent {
	if probe {
		g.probing = false
	}
	switch {
	case ok && g.state != BreakerClosed:
		why := "a request succeeded"
		if probe {
			why = "its probe succeeded"
		}
		g.close()
		return &breakerEvent{kind: EventBreakerClosed, reason: why}
	case ok:
		g.win.add(now, p.Window, false)
	case g.state == BreakerClosed:
		g.win.add(now, p.Window, true)
		reqs, fails := g.win.counts(now, p.Window)
		if fails >= p.MinFailures && float64(fails) >= p.FailureRatio*float64(reqs) {
			g.open(now, p.Cooldown)
			return &breakerEvent{kind: EventBreakerOpened, next: g.probeAt,
				reason: fmt.Sprintf("%d of %d requests failed within %v", fails, reqs, p.Window)}
		}
	case probe:
		g.open(now, min(2*g.cooldown, p.MaxCooldown))
		return &breakerEvent{kind: EventBreakerOpened, next: g.probeAt,
			reason: fmt.Sprintf("its probe failed; next probe in %v", g.cooldown)}
	}
	// Otherwise: a failure of a request sent before the breaker opened.
	return nil
}

func (g *gate) open(now time.Time, cooldown time.Duration) {
	g.state, g.openedAt, g.cooldown = BreakerOpen, now, cooldown
	g.probeAt = now.Add(cooldown)
	g.probing = false
	g.win = window{}
	g.nextSlot = time.Time{}
}

func (g *gate) close() {
	g.state, g.openedAt, g.probeAt, g.cooldown = BreakerClosed, time.Time{}, time.Time{}, 0
	g.probing = false
	g.win = window{}
}

// run tracks the webhook's run of failures: the first failure since the
// last success. stored is the FailingSince of the definition the attempt
// used. It returns the write to make, if any, and the start of the run.
func (g *gate) run(ok bool, stored, now time.Time, disableAfter time.Duration) (runAction, time.Time) {
	if ok {
		g.runStart, g.seen = time.Time{}, time.Time{}
		if !stored.IsZero() && !g.writing {
			g.writing = true
			return runClear, time.Time{}
		}
		return runNone, time.Time{}
	}
	if !g.seen.IsZero() && stored.IsZero() {
		// Cleared elsewhere since: a success in another process, or the
		// webhook was enabled. The run starts again.
		g.runStart = time.Time{}
	}
	g.seen = stored
	if g.runStart.IsZero() {
		g.runStart = now
	}
	since := g.runStart
	if !stored.IsZero() && stored.Before(since) {
		since = stored
	}
	switch {
	case g.writing:
		return runNone, since
	case disableAfter > 0 && now.Sub(since) >= disableAfter:
		g.writing = true
		return runDisable, since
	case stored.IsZero() && now.Sub(since) >= min(persistAfter, max(disableAfter/4, time.Millisecond)):
		g.writing = true
		return runPersist, since
	}
	return runNone, since
}

// act makes the store write a request's result asked for.
func (d *Dispatcher) act(ctx context.Context, w *compiled, act runAction, since, now time.Time) {
	if act == runNone {
		return
	}
	switch act {
	case runDisable:
		d.disableFor(ctx, w, fmt.Sprintf("every request failed for %v, since %s, without a success",
			now.Sub(since).Round(time.Second), since.UTC().Format(time.RFC3339)))
	case runPersist, runClear:
		if err := d.storeFailingSince(ctx, w.ID, since); err != nil {
			d.log.Error("herald: recording a webhook's run of failures failed", "webhook_id", w.ID, "error", err)
		}
	}
	d.health.mu.Lock()
	g := d.health.gateLocked(w.ID)
	g.writing = false
	if act == runPersist {
		g.seen = since
	}
	d.health.mu.Unlock()
}

// disableFor disables a webhook the dispatcher gave up on, and reports it
// (observer event and log) with the reason. Its queued deliveries wait.
func (d *Dispatcher) disableFor(ctx context.Context, w *compiled, reason string) {
	ctx = WithActor(ctx, SystemActor)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if cur, err := d.webhookFor(ctx, w.ID); err == nil && cur.Disabled {
		return // already off: another request or process got here first
	}
	if _, err := d.setDisabled(ctx, w.ID, true, reason); err != nil {
		d.log.Error("herald: disabling a webhook failed", "webhook_id", w.ID, "reason", reason, "error", err)
		return
	}
	d.log.Warn("herald: webhook disabled; its deliveries wait until it is enabled",
		"webhook_id", w.ID, "url", RedactURL(w.URL), "reason", reason)
}

// failingSinceKey is the JSON name of Webhook.FailingSince.
const failingSinceKey = "failing_since"

// storeFailingSince writes the start of the webhook's run of failures
// (zero: clears it) into its stored definition. It patches that one field
// of the stored JSON, so fields this version of herald does not know (and
// sealed secrets) are kept as they are, and keeps an earlier start
// another process wrote. The save is conditional on the version read, so
// an edit made meanwhile is never overwritten: the patch is made again on
// top of it.
func (d *Dispatcher) storeFailingSince(ctx context.Context, id string, since time.Time) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var err error
	for range 8 {
		var row store.Webhook
		if row, err = d.store.Webhook(ctx, id); err != nil {
			return err
		}
		var def map[string]json.RawMessage
		if err := json.Unmarshal(row.Definition, &def); err != nil {
			return fmt.Errorf("stored definition unreadable: %w", err)
		}
		var cur time.Time
		if raw, ok := def[failingSinceKey]; ok {
			_ = json.Unmarshal(raw, &cur)
		}
		switch {
		case since.IsZero() && cur.IsZero():
			return nil
		case !since.IsZero() && !cur.IsZero() && !cur.After(since):
			return nil
		case since.IsZero():
			delete(def, failingSinceKey)
		default:
			def[failingSinceKey], _ = json.Marshal(since.UTC())
		}
		if row.Definition, err = json.Marshal(def); err != nil {
			return err
		}
		row.IfVersion = row.Version
		if _, err = d.store.SaveWebhook(ctx, row, d.now()); err == nil {
			_, err = d.current(ctx, true)
			return err
		}
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return err
}

// reportBreaker tells the observer and the log about a breaker change.
func (d *Dispatcher) reportBreaker(w *compiled, ev *breakerEvent) {
	if ev == nil {
		return
	}
	if ev.kind == EventBreakerOpened {
		d.log.Warn("herald: circuit breaker opened; the webhook's deliveries wait for its probe",
			"webhook_id", w.ID, "url", RedactURL(w.URL), "reason", ev.reason, "next_probe", ev.next)
	} else {
		d.log.Info("herald: circuit breaker closed; the webhook's deliveries flow again",
			"webhook_id", w.ID, "reason", ev.reason)
	}
	d.observe(Event{Kind: ev.kind, WebhookID: w.ID, Tenant: w.Tenant, URL: RedactURL(w.URL),
		Reason: ev.reason, Next: ev.next})
}

// markDisabled keeps DisabledReason and FailingSince in step with the
// toggle: a newly disabled webhook records why; an enabled one starts
// afresh.
func markDisabled(w *Webhook, was bool, reason string) {
	if !w.Disabled {
		w.DisabledReason, w.FailingSince = "", time.Time{}
		return
	}
	if !was || w.DisabledReason == "" {
		w.DisabledReason = reason
	}
}

// carryHealth keeps the dispatcher's health fields across Update, whatever
// the caller passed, and reports whether Update enables the webhook.
func carryHealth(w *Webhook, old Webhook) (reenabled bool) {
	w.FailingSince, w.DisabledReason = old.FailingSince, old.DisabledReason
	switch {
	case w.Disabled && !old.Disabled:
		w.DisabledReason = "disabled by the application"
	case !w.Disabled && old.Disabled:
		w.DisabledReason, w.FailingSince = "", time.Time{}
		return true
	case !w.Disabled:
		w.DisabledReason = ""
	}
	return false
}

// window counts requests and failures over a sliding span of time, in
// breakerSlots buckets.
type window struct {
	slots [breakerSlots]struct {
		n               int64 // the bucket's number since the epoch
		requests, fails int
	}
}

func bucketOf(now time.Time, span time.Duration) int64 {
	return now.UnixNano() / max(int64(span/breakerSlots), 1)
}

func (w *window) add(now time.Time, span time.Duration, failed bool) {
	n := bucketOf(now, span)
	s := &w.slots[((n%breakerSlots)+breakerSlots)%breakerSlots]
	if s.n != n {
		s.n, s.requests, s.fails = n, 0, 0
	}
	s.requests++
	if failed {
		s.fails++
	}
}

func (w *window) counts(now time.Time, span time.Duration) (requests, fails int) {
	n := bucketOf(now, span)
	for _, s := range w.slots {
		if s.n > n-breakerSlots && s.n <= n {
			requests += s.requests
			fails += s.fails
		}
	}
	return requests, fails
}
