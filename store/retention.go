package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrPayloadGone: the delivery's payload was dropped by retention or
// erased, so it cannot be replayed.
var ErrPayloadGone = errors.New("store: payload purged or erased")

// DefaultPurgeBatch is the number of rows one purge transaction touches
// when PurgePolicy.BatchSize is zero.
const DefaultPurgeBatch = 500

// PurgePolicy says what Purge removes. Ages count from the moment a
// delivery finished (its UpdatedAt), or for an event from when it was
// recorded (its CreatedAt, else its Time). A zero or negative age keeps
// that kind forever: the store is the mechanism, and defaults are the
// dispatcher's business.
type PurgePolicy struct {
	// Delivered removes delivered and skipped deliveries, with their
	// attempts, this long after they finished.
	Delivered time.Duration
	// Dead removes dead and canceled deliveries, with their attempts, this
	// long after they finished.
	Dead time.Duration
	// Payloads drops, this long after a delivery finished, the response
	// bodies of its attempts and, once every delivery of its event is
	// finished that long, the event's payload. Rows, statuses, counts,
	// status codes and errors stay. A delivery whose payload is gone cannot
	// be replayed (ErrPayloadGone).
	Payloads time.Duration
	// Events removes an event's record, the key that makes publishing
	// idempotent, this long after it was recorded and once none of its
	// deliveries remain. Publishing the same change id after that creates
	// new deliveries.
	Events time.Duration
	// BatchSize bounds the rows one transaction touches, so a purge never
	// holds the database for long; 0: DefaultPurgeBatch.
	BatchSize int
}

// PurgeResult counts what a purge removed.
type PurgeResult struct {
	Deliveries int // delivery rows deleted
	Attempts   int // attempt rows deleted with them
	Payloads   int // event payloads dropped (their rows stay)
	Events     int // event records deleted
}

// Add returns the sum of r and o.
func (r PurgeResult) Add(o PurgeResult) PurgeResult {
	return PurgeResult{Deliveries: r.Deliveries + o.Deliveries, Attempts: r.Attempts + o.Attempts,
		Payloads: r.Payloads + o.Payloads, Events: r.Events + o.Events}
}

// Retainer is implemented by stores that can forget finished work.
//
// Purge never touches a pending delivery, whatever its age. An event's
// payload stays as long as a delivery may still send it; the payload of an
// event no delivery refers to any more (it matched no webhook, or its
// deliveries were purged) is dropped by every call, since nothing can read
// it again, while its record stays for PurgePolicy.Events to keep publishing
// idempotent. Purge works in transactions of at most BatchSize rows and may
// be stopped through ctx between them; what it did until then stays done.
type Retainer interface {
	Purge(ctx context.Context, p PurgePolicy, now time.Time) (PurgeResult, error)
}

// Erasure selects the stored data of one tenant, or of one record (a
// person's right to erasure): Tenant alone selects every event of that
// tenant; Table and Key select one record of a table within Tenant ("" for
// a single-tenant system).
type Erasure struct {
	Tenant string
	Table  string
	Key    string
}

// Validate reports whether e selects something: a record needs both Table
// and Key, and erasing without a record needs a Tenant.
func (e Erasure) Validate() error {
	switch {
	case (e.Table == "") != (e.Key == ""):
		return fmt.Errorf("store: an erasure of a record needs both Table and Key (got table %q, key %q)", e.Table, e.Key)
	case e.Key == "" && e.Tenant == "":
		return errors.New("store: an erasure needs a Tenant, or a Table and Key")
	}
	return nil
}

// Matches reports whether an event of the given tenant, table and key is
// selected by e.
func (e Erasure) Matches(tenant, table, key string) bool {
	if tenant != e.Tenant {
		return false
	}
	return e.Key == "" || (table == e.Table && key == e.Key)
}

// ErasureResult counts what an erasure changed.
type ErasureResult struct {
	Events   int // event payloads erased
	Attempts int // attempt response bodies erased
	Canceled int // pending deliveries canceled
}

// ErasedReason is the LastError of a delivery canceled by an erasure.
const ErasedReason = "canceled: payload erased"

// Eraser is implemented by stores that can erase personal data.
//
// Erase removes the payload of every selected event and the response body
// of every attempt made for it, and cancels the selected pending
// deliveries (status Canceled, LastError ErasedReason), so nothing of the
// selection is sent again once Erase has returned; a request already in
// flight may still complete, and its outcome is then not recorded (its
// lease is gone). A batch that carried a selected record is sent again
// without it, under the same id. Delivery rows, statuses, attempt counts,
// status codes and event keys stay, so the delivery log still tells what
// happened. Replaying an erased delivery fails with ErrPayloadGone. Only
// what was stored when Erase began is erased: changes published later are
// delivered as usual.
type Eraser interface {
	Erase(ctx context.Context, e Erasure, now time.Time) (ErasureResult, error)
}
