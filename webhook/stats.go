package webhook

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/heraldhr/herald/store"
)

// WebhookStats describes the deliveries of one webhook, or of all.
type WebhookStats struct {
	// Deliveries counts deliveries by state. Every known state has an
	// entry, zero included, so a gauge fed from it drops to zero rather
	// than vanishing.
	Deliveries map[Status]int64
	// OldestPending is when the oldest pending delivery was published;
	// zero when none is pending.
	OldestPending time.Time
	// OldestPendingAge is how long that delivery has waited (Stats.Time
	// minus OldestPending): the lag of the queue.
	OldestPendingAge time.Duration
	// InFlight is the number of attempts this process is making now. Other
	// processes sharing the store are not counted.
	InFlight int64
}

// Pending is the number of deliveries waiting for an attempt: the depth of
// the queue.
func (s WebhookStats) Pending() int64 { return s.Deliveries[Pending] }

// Stats is a snapshot of the dispatcher's work.
type Stats struct {
	// Time is when the snapshot was taken, by the dispatcher's clock.
	Time time.Time
	// Total sums every webhook.
	Total WebhookStats
	// Webhooks has an entry per webhook: every registered one, and any
	// deleted one that still has deliveries in the store.
	Webhooks map[string]WebhookStats
	// ObserverDropped counts the observer events dropped since New
	// because the observer queue was full.
	ObserverDropped uint64
}

// statsPage is how many deliveries Stats reads per page from a store that
// cannot count.
const statsPage = 1000

// Stats counts deliveries by webhook and state, finds the oldest pending
// one, and reads this process's attempts in flight. With a store that
// implements store.Counter it is one query; otherwise it pages through
// every delivery in the store, which costs time in proportion to the log,
// so call it at a metrics-scrape pace, not per request.
func (d *Dispatcher) Stats(ctx context.Context) (Stats, error) {
	now := d.now()
	st := Stats{Time: now, Total: newWebhookStats(), Webhooks: map[string]WebhookStats{},
		ObserverDropped: d.tel.dropped.Load()}
	defs, err := d.current(ctx, false)
	if err != nil {
		return Stats{}, err
	}
	for id := range defs.byID {
		st.Webhooks[id] = newWebhookStats()
	}
	add := func(c store.DeliveryCount) {
		w, ok := st.Webhooks[c.WebhookID]
		if !ok {
			w = newWebhookStats()
		}
		for _, s := range []*WebhookStats{&w, &st.Total} {
			s.Deliveries[c.Status] += c.Count
			if c.Status == Pending && (s.OldestPending.IsZero() || c.Oldest.Before(s.OldestPending)) {
				s.OldestPending = c.Oldest
			}
		}
		st.Webhooks[c.WebhookID] = w
	}
	if counter, ok := d.store.(store.Counter); ok {
		counts, err := counter.CountDeliveries(ctx)
		if err != nil {
			return Stats{}, err
		}
		for _, c := range counts {
			add(c)
		}
	} else {
		var after int64
		for {
			page, err := d.store.Deliveries(ctx, store.DeliveryFilter{After: after, Limit: statsPage})
			if err != nil {
				return Stats{}, err
			}
			for _, dl := range page {
				add(store.DeliveryCount{WebhookID: dl.WebhookID, Status: dl.Status, Count: 1, Oldest: dl.CreatedAt})
			}
			if len(page) < statsPage {
				break
			}
			after = page[len(page)-1].Seq
		}
	}
	d.tel.inflight.Range(func(k, v any) bool {
		n := v.(*atomic.Int64).Load()
		if w, ok := st.Webhooks[k.(string)]; ok {
			w.InFlight = n
			st.Webhooks[k.(string)] = w
		} else if n > 0 {
			w := newWebhookStats()
			w.InFlight = n
			st.Webhooks[k.(string)] = w
		}
		return true
	})
	st.Total.InFlight = d.tel.inflightTotal.Load()
	for id, w := range st.Webhooks {
		if !w.OldestPending.IsZero() {
			w.OldestPendingAge = max(now.Sub(w.OldestPending), 0)
			st.Webhooks[id] = w
		}
	}
	if !st.Total.OldestPending.IsZero() {
		st.Total.OldestPendingAge = max(now.Sub(st.Total.OldestPending), 0)
	}
	return st, nil
}

func newWebhookStats() WebhookStats {
	return WebhookStats{Deliveries: map[Status]int64{Pending: 0, Delivered: 0, Dead: 0, Skipped: 0, Canceled: 0}}
}

// track counts an attempt in flight for webhookID until untrack is called
// with the counter it returns.
func (d *Dispatcher) track(webhookID string) *atomic.Int64 {
	v, ok := d.tel.inflight.Load(webhookID)
	if !ok {
		v, _ = d.tel.inflight.LoadOrStore(webhookID, new(atomic.Int64))
	}
	n := v.(*atomic.Int64)
	n.Add(1)
	d.tel.inflightTotal.Add(1)
	return n
}

func (d *Dispatcher) untrack(n *atomic.Int64) {
	n.Add(-1)
	d.tel.inflightTotal.Add(-1)
}
