package webhook

import (
	"context"
	"fmt"

	"github.com/heraldhr/herald/store"
)

// PublishMany is Publish for a slice of changes, for imports and bursts:
// every change is validated and matched first (one invalid change fails
// the call before anything is stored, and the error names its index),
// then all are stored together; on a store that supports it (the Postgres
// store does) in one round trip and atomically. It returns the event ids
// in the order of cs. Changes of one record keep their order in cs, and
// a change id that repeats an earlier one, in cs or in the store, creates
// nothing.
//
// On a store without bulk writes the changes are stored one by one, and
// an error may leave the first ones stored; publishing the same slice
// again (with the same change ids) completes it without duplicates.
func (d *Dispatcher) PublishMany(ctx context.Context, cs []Change) ([]string, error) {
	return d.publishMany(ctx, nil, cs)
}

// PublishManyTx is PublishMany inside the caller's database transaction:
// the deliveries exist when, and only when, tx commits.
func (d *Dispatcher) PublishManyTx(ctx context.Context, tx store.Tx, cs []Change) ([]string, error) {
	if _, ok := d.store.(store.TxEnqueuer); !ok {
		return nil, fmt.Errorf("webhook: %T cannot publish inside a transaction", d.store)
	}
	return d.publishMany(ctx, &tx, cs)
}

func (d *Dispatcher) publishMany(ctx context.Context, tx *store.Tx, cs []Change) ([]string, error) {
	if len(cs) == 0 {
		return nil, ctx.Err()
	}
	now := d.now()
	defs, err := d.current(ctx, false)
	if err != nil {
		return nil, err
	}
	es := make([]store.EventWithDeliveries, len(cs))
	ids := make([]string, len(cs))
	queued := false
	for i, c := range cs {
		ev, changed, err := d.event(c, now)
		if err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
		ds := d.match(defs, c, ev.ID, changed, now)
		es[i], ids[i] = store.EventWithDeliveries{Event: ev, Deliveries: ds}, ev.ID
		queued = queued || len(ds) > 0
	}
	if err := d.enqueueMany(ctx, tx, es); err != nil {
		return nil, fmt.Errorf("webhook: storing %d events: %w", len(es), err)
	}
	if queued && tx == nil {
		d.signal()
	}
	return ids, nil
}

// enqueueMany stores es with the store's bulk write when it has one, or
// one event at a time.
func (d *Dispatcher) enqueueMany(ctx context.Context, tx *store.Tx, es []store.EventWithDeliveries) error {
	if tx == nil {
		if b, ok := d.store.(store.BulkEnqueuer); ok {
			_, err := b.EnqueueMany(ctx, es)
			return err
		}
		for _, e := range es {
			if _, err := d.store.Enqueue(ctx, e.Event, e.Deliveries); err != nil {
				return err
			}
		}
		return nil
	}
	if b, ok := d.store.(store.BulkTxEnqueuer); ok {
		_, err := b.EnqueueManyTx(ctx, *tx, es)
		return err
	}
	te := d.store.(store.TxEnqueuer)
	for _, e := range es {
		if _, err := te.EnqueueTx(ctx, *tx, e.Event, e.Deliveries); err != nil {
			return err
		}
	}
	return nil
}
