package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhr/herald/store"
)

// KeepForever, as an age in Retention, keeps that kind of record forever.
// Any negative age does the same.
const KeepForever time.Duration = -1

// Retention defaults.
const (
	DefaultKeepDelivered = 7 * 24 * time.Hour
	DefaultKeepDead      = 30 * 24 * time.Hour
	DefaultKeepEvents    = 30 * 24 * time.Hour
	DefaultPurgeInterval = time.Hour
)

// Retention says how long finished work is kept. Ages count from the
// moment a delivery finished, or for an event from its Publish. A zero
// field is the default; KeepForever keeps that kind.
//
// Pending deliveries are never purged, whatever their age.
type Retention struct {
	// Delivered is how long delivered and skipped deliveries are kept,
	// with their attempts; 0: 7 days.
	Delivered time.Duration
	// Dead is how long dead and canceled deliveries are kept, with their
	// attempts (they can be replayed until then); 0: 30 days.
	Dead time.Duration
	// Payloads, when set, drops response bodies and event payloads this
	// long after their deliveries finished, while the rows, statuses,
	// status codes and errors stay until Delivered or Dead. A delivery
	// without its payload cannot be replayed (ErrPayloadGone). 0: payloads
	// go with their rows. Whatever it says, the payload of an event no
	// delivery refers to any more is dropped at the next purge.
	Payloads time.Duration
	// Events is the idempotency window: how long after Publish a change id
	// is remembered once its deliveries are gone. Publishing the same id
	// after that creates new deliveries. An event is kept as long as any
	// delivery of it is. 0: 30 days.
	Events time.Duration
	// Interval is how often the workers started by Start purge; 0: 1 hour.
	// The first purge runs when Start is called.
	Interval time.Duration
	// BatchSize bounds the rows one store transaction purges, so claims
	// and acknowledgements are never held off for long; 0: 500.
	BatchSize int
	// Disabled stops the workers from purging. Dispatcher.Purge still
	// purges with the ages above.
	Disabled bool
}

// ErrPayloadGone: the delivery's payload was dropped by retention or
// erased, so it cannot be replayed.
var ErrPayloadGone = store.ErrPayloadGone

// PurgeResult counts what a purge removed.
type PurgeResult = store.PurgeResult

// Erasure selects what Erase erases: Tenant alone, every change of one
// tenant; Table and Key, one record of a table within Tenant ("" when
// single-tenant).
type Erasure = store.Erasure

// ErasureResult counts what an erasure changed.
type ErasureResult = store.ErasureResult

func (r *Retention) check() []error {
	var errs []error
	if r.Interval < 0 {
		errs = append(errs, errors.New("webhook: Config.Retention.Interval must not be negative"))
	}
	if r.BatchSize < 0 {
		errs = append(errs, errors.New("webhook: Config.Retention.BatchSize must not be negative"))
	}
	return errs
}

func (r *Retention) fill() {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&r.Delivered, DefaultKeepDelivered)
	def(&r.Dead, DefaultKeepDead)
	def(&r.Events, DefaultKeepEvents)
	def(&r.Interval, DefaultPurgeInterval)
	if r.BatchSize == 0 {
		r.BatchSize = store.DefaultPurgeBatch
	}
}

// policy turns the filled retention into the store's terms, where a zero
// age keeps.
func (r Retention) policy() store.PurgePolicy {
	age := func(d time.Duration) time.Duration { return max(d, 0) }
	return store.PurgePolicy{Delivered: age(r.Delivered), Dead: age(r.Dead), Payloads: age(r.Payloads),
		Events: age(r.Events), BatchSize: r.BatchSize}
}

// Purge removes finished work older than Config.Retention allows, once,
// now. It fails with an error wrapping errors.ErrUnsupported when the
// store cannot purge (it does not implement store.Retainer).
func (d *Dispatcher) Purge(ctx context.Context) (PurgeResult, error) {
	r, ok := d.store.(store.Retainer)
	if !ok {
		return PurgeResult{}, fmt.Errorf("webhook: %T cannot purge: %w", d.store, errors.ErrUnsupported)
	}
	return r.Purge(ctx, d.cfg.Retention.policy(), d.now())
}

// Erase erases the personal data herald holds for one record, or for one
// tenant: the payload of every selected change and the response body of
// every attempt made for it. Pending deliveries of the selection are
// canceled (status Canceled), so once Erase returns nothing of it is sent
// again, not even by a retry; a request already in flight may complete.
// Delivery rows, statuses, attempt counts, status codes and record keys
// stay, so the delivery log still tells what happened and when. Replaying
// an erased delivery fails with ErrPayloadGone. Changes published after
// Erase are delivered as usual.
//
// It fails with an error wrapping errors.ErrUnsupported when the store
// cannot erase (it does not implement store.Eraser).
func (d *Dispatcher) Erase(ctx context.Context, e Erasure) (ErasureResult, error) {
	if err := e.Validate(); err != nil {
		return ErasureResult{}, fmt.Errorf("webhook: %w", err)
	}
	er, ok := d.store.(store.Eraser)
	if !ok {
		return ErasureResult{}, fmt.Errorf("webhook: %T cannot erase: %w", d.store, errors.ErrUnsupported)
	}
	res, err := er.Erase(ctx, e, d.now())
	if err != nil {
		return res, err
	}
	d.log.Info("herald: erased", "tenant", e.Tenant, "table", e.Table,
		"events", res.Events, "attempts", res.Attempts, "canceled", res.Canceled)
	return res, nil
}

// retentionLoop purges now and then every Retention.Interval until ctx
// ends. Start runs it when the store can purge and retention is enabled.
func (d *Dispatcher) retentionLoop(ctx context.Context) {
	if _, ok := d.store.(store.Retainer); !ok || d.cfg.Retention.Disabled {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := d.Purge(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			d.log.Error("herald: purging finished work failed; retrying at the next interval", "error", err)
		default:
			d.log.Info("herald: purged finished work", "deliveries", res.Deliveries, "attempts", res.Attempts,
				"payloads", res.Payloads, "events", res.Events)
		}
		t.Reset(d.cfg.Retention.Interval)
	}
}

// erased reports whether a claimed message carries a payload that is gone:
// a store that keeps its promises never hands one out, but sending an
// empty record would be worse than canceling it.
func erased(m store.Message) bool {
	for _, e := range m.Events {
		if e.Payload == nil {
			return true
		}
	}
	return false
}
