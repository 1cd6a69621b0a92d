package memory

import (
	"container/heap"
	"context"
	"slices"
	"sort"
	"time"

	"github.com/heraldhr/herald/store"
)

var (
	_ store.Counter  = (*Store)(nil)
	_ store.Requeuer = (*Store)(nil)
)

// CountDeliveries counts deliveries by webhook and state.
func (s *Store) CountDeliveries(ctx context.Context) ([]store.DeliveryCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type group struct {
		webhook string
		status  store.Status
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[group]*store.DeliveryCount{}
	for _, r := range s.all {
		g := group{r.d.WebhookID, r.d.Status}
		c := counts[g]
		if c == nil {
			c = &store.DeliveryCount{WebhookID: g.webhook, Status: g.status, Oldest: r.d.CreatedAt}
			counts[g] = c
		}
		c.Count++
		if r.d.CreatedAt.Before(c.Oldest) {
			c.Oldest = r.d.CreatedAt
		}
	}
	out := make([]store.DeliveryCount, 0, len(counts))
	for _, c := range counts {
		out = append(out, *c)
	}
	return out, nil
}

// Requeue makes finished deliveries pending again inside their order
// chains, in order of sequence.
func (s *Store) Requeue(ctx context.Context, ids []string, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := make([]*row, 0, len(ids))
	for _, id := range ids {
		r, ok := s.rows[id]
		if !ok || r.d.Status == store.Pending {
			continue
		}
		if _, ok := s.webhooks[r.d.WebhookID]; !ok {
			continue
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].d.Seq < rows[j].d.Seq })
	rows = slices.Compact(rows)
	for _, r := range rows {
		s.rejoin(r, now)
	}
	if len(rows) > 0 {
		s.notify()
	}
	return len(rows), nil
}

// rejoin makes the finished row r pending again at its place in its chain.
func (s *Store) rejoin(r *row, now time.Time) {
	d := &r.d
	d.Status = store.Pending
	d.Attempts = 0
	d.Replayed = false
	d.BatchID = ""
	d.NextAttempt = now
	d.UpdatedAt = now
	q := s.queue(d.WebhookID)
	q.pending[r] = struct{}{}
	ck := chainKey{d.WebhookID, d.Tenant, d.Key}
	c := s.chains[ck]
	if c == nil {
		c = &chain{key: ck}
		s.chains[ck] = c
	}
	r.chain = c
	i := sort.Search(len(c.rows), func(i int) bool { return c.rows[i].d.Seq > d.Seq })
	c.rows = slices.Insert(c.rows, i, r)
	if i != 0 {
		return // it waits for the earlier ones, like any record of its key
	}
	// r is the new head. The former head waits behind it again, unless it
	// is already leased or fixed in a batch: then it cannot be held back.
	if len(c.rows) > 1 {
		if old := c.rows[1]; old.unit != nil && !old.unit.fixed && old.unit.lease == "" && old.unit.hidx >= 0 {
			heap.Remove(&old.unit.q.units, old.unit.hidx)
			old.unit = nil
		}
	}
	s.push(&unit{q: q, rows: []*row{r}, due: now, hidx: -1, lidx: -1})
}
