package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhr/herald/store"
)

// RecoverQuery selects the finished deliveries of one webhook to send
// again.
type RecoverQuery struct {
	// WebhookID is required: recovery is per webhook.
	WebhookID string
	// Since and Until bound when the deliveries were published (at or
	// after Since, before Until); zero does not bound.
	Since, Until time.Time
	// Status is the state to recover; "" means Dead. Delivered, Skipped
	// and Canceled may be given too (to resend what a receiver lost);
	// Pending may not.
	Status Status
	// Tenant and Key narrow the selection; "" does not.
	Tenant, Key string
	// DryRun counts what would be sent and sends nothing.
	DryRun bool
}

// RecoverResult is what Recover found and did.
type RecoverResult struct {
	// Matched is the number of deliveries the query selected.
	Matched int
	// Replayed is the number made pending again; fewer than Matched when
	// some changed meanwhile (replayed by someone else, their webhook
	// deleted). Zero for a dry run.
	Replayed int
	// InOrder reports that the store puts them back into their order
	// chains (it implements store.Requeuer), so each record's deliveries go
	// out oldest first, one at a time. False: each is replayed on its own.
	InOrder bool
}

// recoverPage is how many deliveries Recover reads and requeues at once.
const recoverPage = 500

// Recover sends again every finished delivery of a webhook that q selects
// (by default: every Dead one), oldest first. It pages through the
// delivery log rather than loading the selection, requeuing each page as
// it goes, so workers start sending while it runs. Run it with DryRun
// first to see how many it would send.
//
// Order: with a store that implements store.Requeuer (the memory, SQLite
// and Postgres stores do), recovered deliveries rejoin their record's
// order chain at the place their sequence gives them. For each webhook and
// record key they
// are then attempted one at a time, oldest first, after the earlier
// deliveries of that key still pending and before the later ones, so a
// receiver that applies records as they arrive ends with the latest
// state; only a later delivery of the key already in flight, or fixed in a
// batch awaiting its retry, is not held back. (On Postgres, the key's
// deliveries waiting behind such a one may follow it as soon as it
// finishes, before the recovered one has.) Each gets a fresh attempt
// count and is sent under its own message id again. With another store
// Recover falls back to Replay, one delivery at a time, oldest first:
// each then travels outside its order chain, and two replays of one key
// may be attempted at once, so their order at the receiver is not
// guaranteed.
//
// If ctx ends midway, Recover returns what it did so far with ctx's
// error; running it again with the same query carries on, as the
// deliveries already recovered are no longer in the selected state.
func (d *Dispatcher) Recover(ctx context.Context, q RecoverQuery) (RecoverResult, error) {
	if q.WebhookID == "" {
		return RecoverResult{}, fmt.Errorf("%w: recovery needs a webhook id", ErrInvalidQuery)
	}
	if q.Status == "" {
		q.Status = Dead
	}
	if !q.Status.Valid() || q.Status == Pending {
		return RecoverResult{}, fmt.Errorf("%w: cannot recover deliveries in state %q", ErrInvalidQuery, q.Status)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return RecoverResult{}, fmt.Errorf("%w: Until must be after Since", ErrInvalidQuery)
	}
	requeuer, inOrder := d.store.(store.Requeuer)
	res := RecoverResult{InOrder: inOrder}
	defer d.recordRecovery(ctx, q, &res)
	f := store.DeliveryFilter{WebhookID: q.WebhookID, Status: q.Status, Tenant: q.Tenant, Key: q.Key,
		Since: q.Since, Until: q.Until, Limit: recoverPage}
	for {
		page, err := d.store.Deliveries(ctx, f)
		if err != nil {
			return res, err
		}
		res.Matched += len(page)
		if !q.DryRun && len(page) > 0 {
			n, err := d.resend(ctx, requeuer, page)
			res.Replayed += n
			if err != nil {
				return res, err
			}
			d.signal()
		}
		if len(page) < recoverPage {
			break
		}
		// A page's deliveries are pending now, so they leave the selection;
		// the cursor still moves past them, as one may die again at once.
		f.After = page[len(page)-1].Seq
	}
	if !q.DryRun {
		d.log.Info("herald: deliveries recovered", "webhook_id", q.WebhookID, "delivery_status", string(q.Status),
			"matched", res.Matched, "replayed", res.Replayed, "in_order", res.InOrder)
	}
	return res, nil
}

// resend makes one page pending again: in order through the store, or by
// replaying each delivery, oldest first.
func (d *Dispatcher) resend(ctx context.Context, rq store.Requeuer, page []store.Delivery) (int, error) {
	now := d.now()
	if rq != nil {
		ids := make([]string, len(page))
		for i, dl := range page {
			ids[i] = dl.ID
		}
		return rq.Requeue(ctx, ids, now)
	}
	n := 0
	for _, dl := range page {
		err := d.store.Replay(ctx, dl.ID, now)
		switch {
		case err == nil:
			n++
		case errors.Is(err, store.ErrPending), errors.Is(err, store.ErrNotFound):
			// changed since it was listed: someone else sent it again
		default:
			return n, err
		}
	}
	return n, nil
}
