package memory

import (
	"context"
	"slices"
	"time"

	"github.com/heraldhr/herald/store"
)

// Purge forgets finished work as p says. It works in turns of about
// p.BatchSize deliveries (store.DefaultPurgeBatch when 0), each holding
// the store's lock briefly, so publishers and workers go on between them;
// a single pass that held the lock over a million deliveries took close
// to a second.
//
// An event's rows are consecutive in s.all (they are enqueued together
// and only Purge takes rows out), so each turn ends at an event's end and
// settles the events it went through: their payload goes when no row
// that is left may send it, and the event itself, once no row refers to
// it, when it is old enough; one not old enough waits in s.bare, with the
// events stored without deliveries, for a later Purge.
func (s *Store) Purge(ctx context.Context, p store.PurgePolicy, now time.Time) (store.PurgeResult, error) {
	if err := ctx.Err(); err != nil {
		return store.PurgeResult{}, err
	}
	c := purgeCuts{delivered: cutoff(now, p.Delivered), dead: cutoff(now, p.Dead), payloads: cutoff(now, p.Payloads),
		events: cutoff(now, p.Events), batch: p.BatchSize}
	if c.batch <= 0 {
		c.batch = store.DefaultPurgeBatch
	}
	s.purgeMu.Lock()
	defer s.purgeMu.Unlock()
	var res store.PurgeResult
	for _, turn := range []func(int, purgeCuts, *store.PurgeResult) (int, bool){s.purgeRows, s.purgeBare} {
		for i, more := 0, true; more; {
			s.mu.Lock()
			i, more = turn(i, c, &res)
			s.mu.Unlock()
			if more && s.turnHook != nil {
				s.turnHook()
			}
			if err := ctx.Err(); more && err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// purgeCuts are the moments before which finished work expired (zero
// keeps it), and about how many rows, or bare events, a turn looks at.
type purgeCuts struct {
	delivered, dead, payloads, events time.Time
	batch                             int
}

// purgeRows is a turn of Purge over the rows from s.all[i]: it removes
// the expired ones, settles their events, and returns where the next turn
// starts and whether there is one; s.mu is held.
func (s *Store) purgeRows(i int, c purgeCuts, res *store.PurgeResult) (int, bool) {
	end := min(i+c.batch, len(s.all))
	for end < len(s.all) && s.all[end].ev == s.all[end-1].ev {
		end++ // the turn ends at an event's end
	}
	kept := i
	for j := i; j < end; {
		ev := s.all[j].ev
		live, needed := 0, false // rows left, and whether one may still send the payload
		for ; j < end && s.all[j].ev == ev; j++ {
			r := s.all[j]
			var expired bool
			switch r.status {
			case stPending:
				needed = true
			case stDelivered, stSkipped:
				expired = before(r.updated.Time(), c.delivered)
			default:
				expired = before(r.updated.Time(), c.dead)
			}
			if expired {
				s.rows.remove(r)
				res.Deliveries++
				res.Attempts += len(r.attempts)
				continue
			}
			s.all[kept] = r
			kept++
			live++
			if r.status != stPending {
				if before(r.updated.Time(), c.payloads) {
					for k := range r.attempts {
						r.attempts[k].ResponseBody = ""
					}
				} else {
					needed = true
				}
			}
		}
		s.settle(ev, live, needed, c, res)
	}
	if kept < end { // close the gap the removed rows left
		n := copy(s.all[kept:], s.all[end:])
		clear(s.all[kept+n:])
		s.all = s.all[:kept+n]
	}
	return kept, kept < len(s.all)
}

// settle drops ev's payload when no row left may send it, and ev itself,
// with no row left, when it is old enough; else it waits in s.bare.
func (s *Store) settle(ev *store.Event, live int, needed bool, c purgeCuts, res *store.PurgeResult) {
	if ev.Payload != nil && !needed {
		ev.Payload = nil
		res.Payloads++
	}
	if live > 0 {
		return
	}
	if before(createdAt(ev), c.events) {
		s.events.remove(ev)
		res.Events++
		return
	}
	s.bare = append(s.bare, ev)
}

// purgeBare is a turn of Purge over the events no row refers to, from
// s.bare[i]: their payloads go, and so do those old enough. It returns
// where the next turn starts and whether there is one; s.mu is held.
func (s *Store) purgeBare(i int, c purgeCuts, res *store.PurgeResult) (int, bool) {
	end := min(i+c.batch, len(s.bare))
	kept := i
	for _, ev := range s.bare[i:end] {
		if ev.Payload != nil {
			ev.Payload = nil
			res.Payloads++
		}
		if before(createdAt(ev), c.events) {
			s.events.remove(ev)
			res.Events++
			continue
		}
		s.bare[kept] = ev
		kept++
	}
	if kept < end {
		n := copy(s.bare[kept:], s.bare[end:])
		clear(s.bare[kept+n:])
		s.bare = s.bare[:kept+n]
	}
	return kept, kept < len(s.bare)
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
