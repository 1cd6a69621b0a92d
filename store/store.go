package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Stores wrap them with detail; callers use errors.Is.
var (
	// ErrNotFound: no webhook or delivery with that id.
	ErrNotFound = errors.New("store: not found")
	// ErrLeaseLost: the lease of a claimed message expired and the message
	// may have been claimed again; the outcome was not recorded.
	ErrLeaseLost = errors.New("store: lease lost")
	// ErrPending: the delivery is still pending, so it cannot be replayed.
	ErrPending = errors.New("store: delivery is pending")
	// ErrConflict: a conditional save found another version stored.
	ErrConflict = errors.New("store: definition changed concurrently")
	// ErrForeignTx: the transaction was made by another store.
	ErrForeignTx = errors.New("store: transaction belongs to another store")
)

// Status is the state of a delivery.
type Status string

// Delivery states. Pending is the only state in which a store hands a
// delivery out; every other state is final until a replay.
const (
	Pending   Status = "pending"   // waiting for its first or next attempt
	Delivered Status = "delivered" // a receiver answered 2xx
	Dead      Status = "dead"      // attempts exhausted or failed for good; replayable
	Skipped   Status = "skipped"   // a before hook chose not to send it; replayable
	Canceled  Status = "canceled"  // its webhook was deleted
)

// Valid reports whether s is one of the known states.
func (s Status) Valid() bool {
	switch s {
	case Pending, Delivered, Dead, Skipped, Canceled:
		return true
	}
	return false
}

// Webhook is a webhook definition as the store keeps it. The definition
// itself is opaque JSON owned by package webhook; the store only reads the
// fields it needs to route work.
type Webhook struct {
	ID       string
	Tenant   string
	Disabled bool // a disabled webhook's deliveries are not claimed
	// Version is assigned by the store: it grows with every save.
	Version    int64
	Definition json.RawMessage
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// IfVersion makes a save conditional: when > 0, SaveWebhook saves only
	// if the stored definition has this version; when -1, only if none is
	// stored. Otherwise it fails with ErrConflict. 0 saves unconditionally.
	// It is an input only; a store never returns it set.
	IfVersion int64
}

// Event is one published change. Payload is the encoded data object of the
// default envelope (table, op, key, new, old, changed, tenant, context), so
// it is encoded once however many webhooks receive it. A Payload handed to
// a store is not changed afterwards by its giver, and one a store hands out
// is not changed by its taker, so an in-memory store may keep it without a
// copy.
type Event struct {
	ID     string
	Tenant string
	Table  string
	Op     string
	Key    string
	Time   time.Time
	// Payload is nil once retention dropped it or an erasure erased it.
	Payload json.RawMessage
	// CreatedAt is when the event was recorded (the dispatcher's clock at
	// Publish); retention counts an event's age from it. Zero: Time.
	CreatedAt time.Time
}

// Delivery is one event on its way to one webhook.
type Delivery struct {
	ID        string
	Seq       int64 // assigned by the store at enqueue; orders a record's chain
	EventID   string
	WebhookID string
	Tenant    string
	Key       string
	// MaxBatch is the number of records one request may carry (<= 1: one,
	// sent as a single object). It is fixed at enqueue.
	MaxBatch int
	Status   Status
	Attempts int
	// NextAttempt is when a pending delivery is due.
	NextAttempt time.Time
	LastError   string
	LastCode    int // HTTP status of the last attempt, 0 when none answered
	// BatchID is the message id of the batch the delivery travels in, set
	// when it is first claimed by a batching webhook.
	BatchID string
	// Replayed deliveries stand outside their record's order chain.
	Replayed  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// MessageID is the id a delivery is sent under: its batch id when it
// travels in a batch, else its event id.
func (d Delivery) MessageID() string {
	if d.BatchID != "" {
		return d.BatchID
	}
	return d.EventID
}

// Message is the unit a worker sends: one delivery, or a batch of
// deliveries of one webhook, held under one lease.
type Message struct {
	ID        string // the webhook-id on the wire
	WebhookID string
	Batch     bool // the webhook batches: the body carries a list
	Lease     string
	// Attempt is the number of the attempt about to be made (1 for the
	// first).
	Attempt    int
	Deliveries []Delivery // in order of sequence
	Events     []Event    // Events[i] belongs to Deliveries[i]
}

// Claim asks for due messages.
type Claim struct {
	Now   time.Time
	Lease time.Duration // how long the claimer holds the messages
	Limit int           // messages, not deliveries
}

// Outcome is what became of one claimed message.
type Outcome int

// Outcomes of an attempt.
const (
	// OutcomeDelivered: done. Counts the attempt.
	OutcomeDelivered Outcome = iota + 1
	// OutcomeRetry: failed, try again at Result.NextAttempt. Counts the
	// attempt.
	OutcomeRetry
	// OutcomeDead: failed for good. Counts the attempt.
	OutcomeDead
	// OutcomeSkipped: not sent on purpose. Counts no attempt.
	OutcomeSkipped
	// OutcomePostpone: not attempted; due again at Result.NextAttempt with
	// the attempt count unchanged (a missing hook, an open breaker).
	OutcomePostpone
	// OutcomeCanceled: the webhook is gone.
	OutcomeCanceled
)

// Result records the outcome of one claimed message.
type Result struct {
	MessageID   string
	Lease       string
	Outcome     Outcome
	NextAttempt time.Time // for OutcomeRetry and OutcomePostpone
	// Attempt describes the request made, if one was (nil for skips,
	// postponements and cancellations). Its error becomes LastError.
	Attempt *Attempt
	// Error explains an outcome without an attempt (a postponement's or a
	// cancellation's reason, a hook that failed before sending).
	Error string
	Now   time.Time
}

// Attempt is one HTTP request made for a message, kept in the delivery log
// of each of its deliveries.
type Attempt struct {
	MessageID      string
	Number         int // 1 for the first attempt of a delivery
	At             time.Time
	StatusCode     int // 0 when no answer arrived
	Latency        time.Duration
	RequestHeaders map[string]string // credentials already masked
	ResponseBody   string            // capped
	Error          string
	// WebhookVersion is the definition version the attempt used.
	WebhookVersion int64
}

// DeliveryFilter selects deliveries; zero fields do not filter.
type DeliveryFilter struct {
	WebhookID string
	EventID   string
	Status    Status
	Tenant    string
	Key       string
	Since     time.Time // created at or after
	Until     time.Time // created before
	// After is a cursor: the Seq of the last delivery of the previous page.
	// Pages run from the oldest delivery to the newest.
	After int64
	Limit int // 0: no limit
}

// Store keeps herald's state. Every method is safe for concurrent use.
type Store interface {
	// SaveWebhook inserts or replaces a definition by id and returns it
	// with its new version and times. A conditional save (w.IfVersion)
	// that finds another version fails with ErrConflict.
	SaveWebhook(ctx context.Context, w Webhook, now time.Time) (Webhook, error)
	// DeleteWebhook removes a definition and cancels its pending
	// deliveries. ErrNotFound if there is none.
	DeleteWebhook(ctx context.Context, id string, now time.Time) error
	// Webhook returns one definition or ErrNotFound.
	Webhook(ctx context.Context, id string) (Webhook, error)
	// Webhooks returns every definition, ordered by id.
	Webhooks(ctx context.Context) ([]Webhook, error)
	// WebhooksVersion grows whenever a definition is saved or deleted, so
	// a process can tell cheaply when to reload.
	WebhooksVersion(ctx context.Context) (int64, error)

	// Enqueue stores an event and its deliveries atomically, unless an
	// event with the same (tenant, id) exists: then it stores nothing and
	// reports created == false.
	Enqueue(ctx context.Context, e Event, ds []Delivery) (created bool, err error)
	// Claim leases up to c.Limit due messages.
	Claim(ctx context.Context, c Claim) ([]Message, error)
	// Ack records outcomes. A result whose lease was lost is not recorded;
	// the returned error then wraps ErrLeaseLost, after every other result
	// was recorded.
	Ack(ctx context.Context, rs []Result) error
	// Release returns leased messages to the queue at once, unattempted.
	Release(ctx context.Context, leases []string) error

	// Delivery returns one delivery or ErrNotFound.
	Delivery(ctx context.Context, id string) (Delivery, error)
	// Deliveries lists deliveries matching f in order of sequence.
	Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	// Attempts lists a delivery's attempts, oldest first.
	Attempts(ctx context.Context, deliveryID string) ([]Attempt, error)
	// Replay makes a finished delivery pending again, due now, with a fresh
	// attempt count and outside its order chain. ErrPending if it is
	// still pending; ErrNotFound if there is none; ErrPayloadGone if
	// retention or an erasure removed its payload.
	Replay(ctx context.Context, deliveryID string, now time.Time) error

	// Close releases the store's resources.
	Close() error
}

// Tx is a caller's database transaction wrapped by the store that can use
// it. Only stores make Tx values (see NewTx); a store refuses another's.
type Tx struct {
	owner string
	tx    any
}

// NewTx wraps a store-specific transaction. Stores call it from their own
// constructor functions (for example postgres.Tx).
func NewTx(owner string, tx any) Tx { return Tx{owner: owner, tx: tx} }

// Unwrap returns the transaction if it was made for owner, or an error
// wrapping ErrForeignTx.
func (t Tx) Unwrap(owner string) (any, error) {
	if t.tx == nil {
		return nil, fmt.Errorf("%w: empty transaction", ErrForeignTx)
	}
	if t.owner != owner {
		return nil, fmt.Errorf("%w: a %s transaction given to the %s store", ErrForeignTx, t.owner, owner)
	}
	return t.tx, nil
}

// TxEnqueuer is implemented by stores that can enqueue inside a caller's
// transaction: the deliveries become visible when, and only when, it
// commits.
type TxEnqueuer interface {
	EnqueueTx(ctx context.Context, tx Tx, e Event, ds []Delivery) (created bool, err error)
}

// EventWithDeliveries is one event and its deliveries, an element of a
// bulk enqueue.
type EventWithDeliveries struct {
	Event      Event
	Deliveries []Delivery
}

// BulkEnqueuer is implemented by stores that can enqueue many events in
// one call (one round trip on a database), for imports and bursts.
// EnqueueMany is Enqueue of every element, in order and atomically:
// created[i] reports whether es[i] was new. An event whose (tenant, id)
// exists, or appears earlier in es, creates nothing.
type BulkEnqueuer interface {
	EnqueueMany(ctx context.Context, es []EventWithDeliveries) (created []bool, err error)
}

// BulkTxEnqueuer is EnqueueMany inside a caller's transaction, for stores
// that are also TxEnqueuers.
type BulkTxEnqueuer interface {
	EnqueueManyTx(ctx context.Context, tx Tx, es []EventWithDeliveries) (created []bool, err error)
}

// Notifier is implemented by stores that can tell a process when work was
// enqueued or definitions changed elsewhere. The channel receives a value
// (coalesced) after such a change; it is closed when ctx ends.
type Notifier interface {
	Subscribe(ctx context.Context) (<-chan struct{}, error)
}
