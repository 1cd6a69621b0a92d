package webhook

import (
	"time"
)

// EventKind names what an observer is told about.
type EventKind string

// Kinds of observer events. More may be added; an observer ignores kinds
// it does not know.
const (
	// EventAttempt: an attempt ended (any outcome); StatusCode, Latency
	// and Err describe it.
	EventAttempt EventKind = "attempt"
	// EventDelivered: a message was delivered.
	EventDelivered EventKind = "delivered"
	// EventRetry: an attempt failed and another is scheduled (Next).
	EventRetry EventKind = "retry"
	// EventDead: a message failed for good.
	EventDead EventKind = "dead"
	// EventSkipped: a before hook skipped a message on purpose.
	EventSkipped EventKind = "skipped"
	// EventHeld: this process cannot send a message yet (a hook it lacks,
	// a definition it cannot read); it waits without spending an attempt.
	EventHeld EventKind = "held"
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
}

// Observer is told about attempts, outcomes and webhook state changes, for
// metrics and traces. Observe must be quick and must not block; a panic in
// it is recovered and logged.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f.
func (f ObserverFunc) Observe(e Event) { f(e) }

// observe tells the configured observer, if any.
func (d *Dispatcher) observe(e Event) {
	o := d.cfg.Observer
	if o == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = d.now()
	}
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("herald: observer panicked", "kind", string(e.Kind), "panic", p)
		}
	}()
	o.Observe(e)
}
