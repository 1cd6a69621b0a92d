package store

import (
	"context"
	"time"
)

// DeliveryCount is the number of one webhook's deliveries in one state.
type DeliveryCount struct {
	WebhookID string
	Status    Status
	Count     int64
	// Oldest is the creation time of the oldest of these deliveries.
	Oldest time.Time
}

// Counter is implemented by stores that can count deliveries without
// listing them (in SQL: one GROUP BY). The dispatcher's Stats uses it when
// present and pages through Deliveries otherwise.
type Counter interface {
	// CountDeliveries returns one row per webhook and state that has at
	// least one delivery, in no particular order. Deliveries of deleted
	// webhooks are counted too.
	CountDeliveries(ctx context.Context) ([]DeliveryCount, error)
}

// Requeuer is implemented by stores that can send finished deliveries
// again inside their record's order chain, which Replay does not.
//
// Requeue makes each listed delivery that is finished (not pending) and
// whose webhook still exists pending again: due at now, with a fresh
// attempt count, not marked Replayed, and back in its order chain at the
// place its sequence gives it. So, for one order key, requeued deliveries
// are handed out one at a time in order of sequence, after the earlier
// pending ones of that key and before the later ones; a batching webhook
// may gather them into batches in that order. A later delivery of the key
// that is already leased, or fixed in a batch awaiting its retry, is not
// held back. Deliveries that are pending, gone, of a deleted webhook, or
// whose payload was purged or erased (Replay refuses those) are skipped. Requeue returns how many it requeued; it is atomic per
// call, so a crash leaves each delivery either requeued or not.
type Requeuer interface {
	Requeue(ctx context.Context, deliveryIDs []string, now time.Time) (requeued int, err error)
}
