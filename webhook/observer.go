package webhook

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhr/herald/store"
)

// EventKind names what an observer is told about.
type EventKind string

// Kinds of observer events. More may be added; an observer ignores kinds
// it does not know.
const (
	// EventAttempt: an attempt ended (any outcome). Time is when it began;
	// StatusCode, Latency, Err and Outcome describe it.
	EventAttempt EventKind = "attempt"
	// EventDelivered: a message was delivered.
	EventDelivered EventKind = "delivered"
	// EventRetry: an attempt failed and another is scheduled (Next).
	EventRetry EventKind = "retry"
	// EventDead: a message failed for good; its deliveries are Dead.
	EventDead EventKind = "dead"
	// EventSkipped: a before hook skipped a message on purpose.
	EventSkipped EventKind = "skipped"
	// EventHeld: this process cannot send a message yet (a hook it lacks,
	// a definition it cannot read); it waits without spending an attempt.
	EventHeld EventKind = "held"
	// EventCanceled: a message was dropped because its webhook was
	// deleted.
	EventCanceled EventKind = "canceled"
	// EventConditionError: a condition failed at run time; the change did
	// not match that webhook.
	EventConditionError EventKind = "condition_error"
	// EventWebhookDisabled and EventWebhookEnabled: a webhook was turned
	// off (by an admin, a 410 Gone answer or sustained failure) or on.
	EventWebhookDisabled EventKind = "webhook_disabled"
	EventWebhookEnabled  EventKind = "webhook_enabled"
	// EventBreakerOpened: a webhook's circuit breaker opened (or opened
	// again after a failed probe); its deliveries wait, spending no
	// attempt, until the probe at Next. Reason says why.
	EventBreakerOpened EventKind = "breaker_opened"
	// EventBreakerClosed: a request to a webhook whose breaker was open
	// succeeded (its probe, a replay or a ping), or the webhook was
	// enabled; its deliveries flow again.
	EventBreakerClosed EventKind = "breaker_closed"
)

// Event is one thing an Observer is told. Fields that do not apply to a
// kind are zero. Nothing in it carries a secret: URLs are redacted and
// errors come from herald's own redacted messages.
type Event struct {
	Kind       EventKind
	Time       time.Time
	WebhookID  string
	Tenant     string
	MessageID  string // the webhook-id of the message
	EventID    string // the change, for condition errors
	Records    int    // records in the message
	Attempt    int    // the attempt's number
	StatusCode int
	Latency    time.Duration
	Method     string
	URL        string // redacted
	Err        error
	Reason     string    // why a webhook was disabled, a message held ...
	Next       time.Time // when the next attempt is due, for EventRetry
	// Outcome is, for EventAttempt, what became of the message:
	// EventDelivered, EventRetry or EventDead (the event that follows).
	Outcome EventKind
}

// Observer is told about attempts, outcomes and webhook state changes, for
// metrics and traces.
//
// Once the dispatcher is started, events pass through a bounded queue
// (Config.ObserverQueue) drained by one goroutine that Start launches and
// Shutdown stops after the last event was handed over, so a slow observer
// never holds up a worker: when the queue is full, events are dropped and
// counted (Stats.ObserverDropped). Without Start (ProcessDue), and after
// Shutdown, Observe is called synchronously by the goroutine that made the
// event, which keeps tests deterministic. Either way Observe may be called
// from several goroutines over its life and must be safe for concurrent
// use; it should be quick. A panic in it is recovered and logged.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f.
func (f ObserverFunc) Observe(e Event) { f(e) }

// defaultObserverQueue is the observer queue's capacity when
// Config.ObserverQueue is 0.
const defaultObserverQueue = 4096

// telemetry is what the dispatcher counts for its observer and Stats.
type telemetry struct {
	mu      sync.RWMutex
	queue   chan Event    // nil unless the observer goroutine runs
	done    chan struct{} // closed when that goroutine has ended
	dropped atomic.Uint64

	inflight      sync.Map // webhook id -> *atomic.Int64
	inflightTotal atomic.Int64
}

// observe tells the configured observer, if any: through the queue while
// the dispatcher runs, else at once.
func (d *Dispatcher) observe(e Event) {
	if d.cfg.Observer == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = d.now()
	}
	t := &d.tel
	t.mu.RLock()
	if t.queue != nil {
		select {
		case t.queue <- e:
		default:
			// Log at 1, 2, 4, 8 ... drops: visible, never a flood.
			if n := t.dropped.Add(1); n&(n-1) == 0 {
				d.log.Warn("herald: observer queue full; events dropped", "kind", string(e.Kind), "dropped", n)
			}
		}
		t.mu.RUnlock()
		return
	}
	t.mu.RUnlock()
	d.tell(e)
}

// tell calls the observer, surviving its panics.
func (d *Dispatcher) tell(e Event) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("herald: observer panicked", "kind", string(e.Kind), "panic", p)
		}
	}()
	d.cfg.Observer.Observe(e)
}

// startObserver launches the goroutine that drains the observer queue.
func (d *Dispatcher) startObserver() {
	if d.cfg.Observer == nil {
		return
	}
	t := &d.tel
	t.mu.Lock()
	defer t.mu.Unlock()
	q, done := make(chan Event, d.cfg.ObserverQueue), make(chan struct{})
	t.queue, t.done = q, done
	go func() {
		defer close(done)
		for e := range q {
			d.tell(e)
		}
	}()
}

// stopObserver hands the queued events over and ends the goroutine; events
// made after it are told synchronously.
func (d *Dispatcher) stopObserver() {
	t := &d.tel
	t.mu.Lock()
	q, done := t.queue, t.done
	t.queue = nil
	t.mu.Unlock()
	if q == nil {
		return
	}
	close(q)
	<-done
}

// outcomeKind names an attempt's outcome as the event that reports it.
func outcomeKind(o store.Outcome) EventKind {
	switch o {
	case store.OutcomeDelivered:
		return EventDelivered
	case store.OutcomeRetry:
		return EventRetry
	case store.OutcomeDead:
		return EventDead
	}
	return ""
}
