package webhook

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/store"
)

// tableRoutes index the webhooks of one table for Publish: by op, then by
// tenant, so a change meets only the webhooks that can take it, however
// many other tenants' webhooks the table has. Disabled webhooks and
// webhooks whose definition cannot be used are left out: they get no new
// deliveries.
type tableRoutes struct {
	// conds are the distinct conditions of the table's webhooks. Webhooks
	// whose rules are equal share one slot, so a rule many webhooks use
	// is evaluated once per change.
	conds []*condition.Condition
	ops   [3]opRoutes // by opIndex
}

type opRoutes struct {
	any    []route            // webhooks of every tenant (Tenant == "")
	tenant map[string][]route // webhooks of one tenant
}

type route struct {
	w    *compiled
	slot int // index in tableRoutes.conds
}

func opIndex(op Op) int {
	switch op {
	case Insert:
		return 0
	case Update:
		return 1
	}
	return 2
}

// index builds the routes of every table of defs.
func (defs *definitions) index() {
	defs.routes = make(map[string]*tableRoutes, len(defs.byTable))
	for t, ws := range defs.byTable {
		defs.routes[t] = buildRoutes(ws)
	}
}

// reindex takes prev's routes and rebuilds those of the given tables.
func (defs *definitions) reindex(prev *definitions, tables []string) {
	if prev.routes == nil {
		defs.index()
		return
	}
	defs.routes = maps.Clone(prev.routes)
	for _, t := range tables {
		if ws := defs.byTable[t]; len(ws) > 0 {
			defs.routes[t] = buildRoutes(ws)
		} else {
			delete(defs.routes, t)
		}
	}
}

// buildRoutes indexes one table's webhooks, given in id order.
func buildRoutes(ws []*compiled) *tableRoutes {
	r := &tableRoutes{}
	slots := map[string]int{}
	for _, w := range ws {
		// A webhook this process cannot send still gets its deliveries:
		// they are held until a process that can send them claims them.
		if w.Disabled || w.cond == nil {
			continue
		}
		key, err := json.Marshal(w.When)
		slot, ok := slots[string(key)]
		if !ok || err != nil {
			slot = len(r.conds)
			r.conds = append(r.conds, w.cond)
			if err == nil {
				slots[string(key)] = slot
			}
		}
		var done [3]bool
		for _, op := range w.Ops {
			if !op.Valid() || done[opIndex(op)] {
				continue
			}
			done[opIndex(op)] = true
			o := &r.ops[opIndex(op)]
			if w.Tenant == "" {
				o.any = append(o.any, route{w, slot})
				continue
			}
			if o.tenant == nil {
				o.tenant = map[string][]route{}
			}
			o.tenant[w.Tenant] = append(o.tenant[w.Tenant], route{w, slot})
		}
	}
	return r
}

// candidates returns the routes of table and the webhooks among them that
// take changes of op from tenant: those of every tenant, then the
// tenant's own.
func (defs *definitions) candidates(table string, op Op, tenant string) (t *tableRoutes, all, own []route) {
	t = defs.routes[table]
	if t == nil {
		return nil, nil, nil
	}
	o := &t.ops[opIndex(op)]
	if tenant != "" {
		own = o.tenant[tenant]
	}
	return t, o.any, own
}

// Outcomes of a condition within one Publish.
const (
	condUnknown uint8 = iota
	condTrue
	condFalse
	condFailed
)

// match returns a delivery for each webhook the change matches. Each
// distinct condition runs at most once.
func (d *Dispatcher) match(defs *definitions, c Change, eventID string, changed []string, now time.Time) []store.Delivery {
	t, all, own := defs.candidates(c.Table, c.Op, c.Tenant)
	if t == nil {
		return nil
	}
	var buf [32]uint8
	seen := buf[:0]
	if len(t.conds) <= len(buf) {
		seen = buf[:len(t.conds)]
	} else {
		seen = make([]uint8, len(t.conds))
	}
	errs := map[int]error(nil)
	in := condition.Input{Table: c.Table, Op: string(c.Op), Key: c.Key, Tenant: c.Tenant,
		Old: c.Old, New: c.New, Context: c.Context, Changed: changed}
	var buf2 [16]*compiled
	hits := buf2[:0]
	for _, list := range [2][]route{all, own} {
		for _, r := range list {
			w := r.w
			if seen[r.slot] == condUnknown {
				ok, err := t.conds[r.slot].Match(in)
				switch {
				case err != nil:
					seen[r.slot] = condFailed
					if errs == nil {
						errs = map[int]error{}
					}
					errs[r.slot] = err
				case ok:
					seen[r.slot] = condTrue
				default:
					seen[r.slot] = condFalse
				}
			}
			switch seen[r.slot] {
			case condFailed:
				err := errs[r.slot]
				d.log.Warn("herald: condition failed; the change does not match",
					"webhook_id", w.ID, "event_id", eventID, "error", err)
				d.observe(Event{Kind: EventConditionError, WebhookID: w.ID, Tenant: c.Tenant, EventID: eventID, Err: err})
				continue
			case condFalse:
				continue
			}
			hits = append(hits, w)
		}
	}
	if len(hits) == 0 {
		return nil
	}
	ds := make([]store.Delivery, len(hits)) // a Delivery is large: sized exactly
	ids := d.ids.newIDs(len(hits))
	for i, w := range hits {
		ds[i] = store.Delivery{
			ID:          ids[36*i : 36*i+36],
			WebhookID:   w.ID,
			MaxBatch:    w.MaxBatch,
			NextAttempt: now,
			CreatedAt:   now,
		}
	}
	return ds
}

// redactedURL is RedactURL(c.URL), worked out once per definition.
func (c *compiled) redactedURL() string {
	if c.redacted == "" {
		return RedactURL(c.URL)
	}
	return c.redacted
}

// idSource makes the UUIDv7 ids (RFC 9562) of events and deliveries: a
// millisecond timestamp, then 12 bits of sub-millisecond time that keep
// the ids of one dispatcher in increasing order (the RFC's method 3),
// then 62 random bits. A batch of ids costs one lock, one clock reading
// and one read of randomness, where an id at a time cost each of them.
type idSource struct {
	mu   sync.Mutex
	last int64 // timestamp and sequence of the last id made
}

// newIDs makes n ids in one allocation: the i-th is ids[36*i : 36*i+36].
func (s *idSource) newIDs(n int) string {
	var stack [8 * 16]byte
	rnd := stack[:]
	if 8*n > len(rnd) {
		rnd = make([]byte, 8*n)
	}
	rnd = rnd[:8*n]
	rand.Read(rnd) // never fails
	t := time.Now().UnixNano()
	ms := t / 1e6
	v := ms<<12 | (t-ms*1e6)>>8 // a millisecond is 3906 steps of 256 ns
	s.mu.Lock()
	v = max(v, s.last+1)
	s.last = v + int64(n) - 1
	s.mu.Unlock()
	var sb strings.Builder
	sb.Grow(36 * n)
	var buf [36]byte
	for i := range n {
		x := v + int64(i)
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[:8], uint64(x>>12)<<16|uint64(x&0xfff))
		u[6] |= 0x70 // version 7, above the sequence's top 4 bits
		copy(u[8:], rnd[8*i:8*i+8])
		u[8] = u[8]&0x3f | 0x80 // the RFC 9562 variant
		sb.Write(appendUUID(buf[:0], u))
	}
	return sb.String()
}

// appendUUID appends u in its canonical text form, as u.String() writes it.
func appendUUID(b []byte, u uuid.UUID) []byte {
	const digits = "0123456789abcdef"
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, digits[x>>4], digits[x&0x0f])
	}
	return b
}
