package memory

import (
	"context"
	"slices"
	"time"

	"github.com/heraldhr/herald/store"
)

// Purge forgets finished work as p says. The memory store holds its lock
// for one pass over every delivery (microseconds per thousand rows) rather
// than working in batches: it has no transactions to keep short.
func (s *Store) Purge(ctx context.Context, p store.PurgePolicy, now time.Time) (store.PurgeResult, error) {
	if err := ctx.Err(); err != nil {
		return store.PurgeResult{}, err
	}
	delivered, dead, payloads, events := cutoff(now, p.Delivered), cutoff(now, p.Dead), cutoff(now, p.Payloads), cutoff(now, p.Events)
	stampBefore := func(t stamp, cut time.Time) bool { return before(t.Time(), cut) }
	s.mu.Lock()
	defer s.mu.Unlock()
	var res store.PurgeResult
	live := map[*store.Event]int{}    // deliveries left per event
	needed := map[*store.Event]bool{} // a delivery may still send the payload
	kept := s.all[:0]
	for _, r := range s.all {
		var expired bool
		switch r.status {
		case stPending:
			needed[r.ev] = true
		case stDelivered, stSkipped:
			expired = stampBefore(r.updated, delivered)
		default:
			expired = stampBefore(r.updated, dead)
		}
		if expired {
			s.rows.remove(r)
			res.Deliveries++
			res.Attempts += len(r.attempts)
			continue
		}
		kept = append(kept, r)
		live[r.ev]++
		if r.status != stPending {
			if stampBefore(r.updated, payloads) {
				for i := range r.attempts {
					r.attempts[i].ResponseBody = ""
				}
			} else {
				needed[r.ev] = true
			}
		}
	}
	clear(s.all[len(kept):])
	s.all = kept
	for ev := range s.events.values() {
		if ev.Payload != nil && !needed[ev] {
			ev.Payload = nil
			res.Payloads++
		}
		if live[ev] == 0 && before(createdAt(ev), events) {
			s.events.remove(ev)
			res.Events++
		}
	}
	return res, nil
}

// cutoff is the moment before which something of the given age expired;
// zero when age keeps it forever.
func cutoff(now time.Time, age time.Duration) time.Time {
	if age <= 0 {
		return time.Time{}
	}
	return now.Add(-age)
}

// before reports whether t lies before a non-zero cutoff.
func before(t, cut time.Time) bool { return !cut.IsZero() && t.Before(cut) }

func createdAt(e *store.Event) time.Time {
	if e.CreatedAt.IsZero() {
		return e.Time
	}
	return e.CreatedAt
}

// Erase erases the payloads and attempt bodies of the selected events and
// cancels their pending deliveries.
func (s *Store) Erase(ctx context.Context, e store.Erasure, now time.Time) (store.ErasureResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ErasureResult{}, err
	}
	if err := e.Validate(); err != nil {
		return store.ErasureResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var res store.ErasureResult
	touched := map[*chain]struct{}{}
	for _, r := range s.all {
		if !e.Matches(r.ev.Tenant, r.ev.Table, r.ev.Key) {
			continue
		}
		for i := range r.attempts {
			if r.attempts[i].ResponseBody != "" {
				r.attempts[i].ResponseBody = ""
				res.Attempts++
			}
		}
		if r.status == stPending {
			s.cancel(r, now, touched)
			res.Canceled++
		}
	}
	for c := range touched {
		if len(c.rows) == 0 {
			delete(s.chains, c.key)
			continue
		}
		if h := c.rows[0]; h.unit == nil {
			s.push(&unit{q: s.queue(c.key.webhook), rows: []*row{h}, due: h.next, hidx: -1})
		}
	}
	for ev := range s.events.values() {
		if ev.Payload != nil && e.Matches(ev.Tenant, ev.Table, ev.Key) {
			ev.Payload = nil
			res.Events++
		}
	}
	return res, nil
}

// cancel ends a pending row: it leaves its message (a batch goes on
// without it; a message left empty is dropped, and an outcome for its
// lease will not be recorded) and its chain, whose next record the caller
// moves up.
func (s *Store) cancel(r *row, now time.Time, touched map[*chain]struct{}) {
	if u := r.unit; u != nil {
		u.rows = slices.DeleteFunc(u.rows, func(x *row) bool { return x == r })
		switch {
		case len(u.rows) == 0:
			s.dropUnit(u)
			s.refresh(u.q)
		case u.queued():
			u.q.units.fix(u)
			s.refresh(u.q)
		}
		r.unit = nil
	}
	if c := r.chain; c != nil {
		if i := slices.Index(c.rows, r); i >= 0 {
			c.rows = slices.Delete(c.rows, i, i+1)
		}
		r.chain = nil
		touched[c] = struct{}{}
	}
	r.status = stCanceled
	r.lastError = store.ErasedReason
	r.updated = toStamp(now)
}
