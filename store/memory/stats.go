package memory

import (
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

// CountDeliveries counts deliveries by webhook and state. It counts in
// turns of countBatch deliveries and releases the store's lock between
// them, so publishers and workers go on meanwhile: a count of a million
// held them off for 50 ms or more. Each delivery is counted once, in the
// state it is in when its turn comes, as a SQL count that reads without
// a snapshot would.
func (s *Store) CountDeliveries(ctx context.Context) ([]store.DeliveryCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type group struct {
		webhook string
		status  store.Status
	}
	counts := map[group]*store.DeliveryCount{}
	s.purgeMu.Lock() // no purge moves the rows between turns
	defer s.purgeMu.Unlock()
	for i, more := 0, true; more; {
		s.mu.Lock()
		end := min(i+countBatch, len(s.all))
		for _, r := range s.all[i:end] {
			g := group{r.q.id, r.status.String()}
			c := counts[g]
			if c == nil {
				c = &store.DeliveryCount{WebhookID: g.webhook, Status: g.status, Oldest: r.created.Time()}
				counts[g] = c
			}
			c.Count++
			if t := r.created.Time(); t.Before(c.Oldest) {
				c.Oldest = t
			}
		}
		i, more = end, end < len(s.all)
		s.mu.Unlock()
		if more && s.turnHook != nil {
			s.turnHook()
		}
		if err := ctx.Err(); more && err != nil {
			return nil, err
		}
	}
	out := make([]store.DeliveryCount, 0, len(counts))
	for _, c := range counts {
		out = append(out, *c)
	}
	return out, nil
}

// countBatch is how many deliveries one turn of CountDeliveries counts.
const countBatch = 4096

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
		r, ok := s.rows.get(id)
		if !ok || r.status == stPending {
			continue
		}
		if _, ok := s.webhooks[r.q.id]; !ok {
			continue
		}
		if r.ev.Payload == nil {
			continue // purged or erased: nothing to send, as Replay says
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].seq < rows[j].seq })
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
	r.status = stPending
	r.tries = 0
	r.replayed = false
	r.batchID = ""
	r.next = toStamp(now)
	r.updated = r.next
	q := s.queue(r.q.id)
	r.q = q
	ck := chainKey{q.id, r.ev.Tenant, r.ev.Key}
	c := s.chains[ck]
	if c == nil {
		c = &chain{key: ck}
		s.chains[ck] = c
	}
	r.chain = c
	i := sort.Search(len(c.rows), func(i int) bool { return c.rows[i].seq > r.seq })
	c.rows = slices.Insert(c.rows, i, r)
	if i != 0 {
		return // it waits for the earlier ones, like any record of its key
	}
	// r is the new head. The former head waits behind it again, unless it
	// is already leased or fixed in a batch: then it cannot be held back.
	if len(c.rows) > 1 {
		if old := c.rows[1]; old.unit != nil && !old.unit.fixed && old.unit.held == nil && old.unit.queued() {
			old.unit.q.units.remove(old.unit)
			old.unit = nil
		}
	}
	s.push(&unit{q: q, rows: []*row{r}, due: r.next, hidx: -1})
}
