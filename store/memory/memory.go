package memory

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhr/herald/store"
)

var (
	_ store.Store        = (*Store)(nil)
	_ store.Notifier     = (*Store)(nil)
	_ store.AckNotifier  = (*Store)(nil)
	_ store.BulkEnqueuer = (*Store)(nil)
	_ store.Retainer     = (*Store)(nil)
	_ store.Eraser       = (*Store)(nil)
)

// Store is an in-memory store, safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	seq      int64
	version  int64
	webhooks map[string]store.Webhook
	events   index[eventKey, *store.Event]
	rows     index[string, *row] // every delivery, by id
	all      []*row              // every delivery in order of sequence; an event's rows are consecutive
	bare     []*store.Event      // the events no row refers to (see Purge)
	chains   map[chainKey]*chain
	queues   map[string]*queue // by webhook id
	ready    queueHeap         // queues with a claimable message
	leased   map[string]*unit  // by lease token
	leases   leaseHeap         // leased units by expiry
	tokens   uint64            // lease tokens handed out
	subs     map[chan struct{}]struct{}
	audit    auditLog

	purgeMu  sync.Mutex // one Purge or count at a time: each keeps its place in all and bare between turns
	turnHook func()     // tests: called between the turns of a Purge or a count, the lock released
}

type eventKey struct{ tenant, id string }

type chainKey struct{ webhook, tenant, key string }

type chain struct {
	key  chainKey
	rows []*row // pending rows in order of sequence; rows[0] is the head
}

// unit is a claimable message: a chain head, a replayed delivery, or a
// fixed batch. Every pending head has one, so it is kept small; what only
// a leased message needs lives in its hold.
type unit struct {
	q     *queue
	rows  []*row
	due   stamp
	hidx  int   // where it waits in q.units, -1 when not queued (see unitQueue)
	held  *hold // nil when not leased
	fixed bool  // members are fixed (a batch, or a replay)
}

// hold is the lease on a claimed unit.
type hold struct {
	token string
	until stamp
	idx   int // index in Store.leases
	u     *unit
}

type queue struct {
	id       string
	disabled bool
	units    unitQueue
	ridx     int // index in Store.ready, -1 when absent
}

// New returns an empty store.
func New() *Store {
	return &Store{
		webhooks: map[string]store.Webhook{},
		events:   newIndex(eventKeyOf),
		rows:     newIndex(rowID),
		chains:   map[chainKey]*chain{},
		queues:   map[string]*queue{},
		leased:   map[string]*unit{},
		subs:     map[chan struct{}]struct{}{},
	}
}

// Close does nothing; the store lives as long as it is referenced.
func (s *Store) Close() error { return nil }

// SaveWebhook inserts or replaces a definition.
func (s *Store) SaveWebhook(ctx context.Context, w store.Webhook, now time.Time) (store.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return store.Webhook{}, err
	}
	if w.ID == "" {
		return store.Webhook{}, fmt.Errorf("memory: webhook without id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.webhooks[w.ID]
	switch {
	case w.IfVersion == -1 && exists:
		return store.Webhook{}, fmt.Errorf("webhook %q exists: %w", w.ID, store.ErrConflict)
	case w.IfVersion > 0 && (!exists || old.Version != w.IfVersion):
		return store.Webhook{}, fmt.Errorf("webhook %q is not at version %d: %w", w.ID, w.IfVersion, store.ErrConflict)
	}
	w.IfVersion = 0
	if exists {
		w.CreatedAt = old.CreatedAt
	} else {
		w.CreatedAt = now
	}
	w.UpdatedAt = now
	s.version++
	w.Version = s.version
	w.Definition = slices.Clone(w.Definition)
	s.webhooks[w.ID] = w
	q := s.queue(w.ID)
	q.disabled = w.Disabled
	s.refresh(q)
	s.notify()
	return w, nil
}

// DeleteWebhook removes a definition and cancels its pending deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, id string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.webhooks[id]; !ok {
		return fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
	}
	delete(s.webhooks, id)
	s.version++
	if q, ok := s.queues[id]; ok {
		// A rare admin action: a pass over every delivery rather than an
		// index of each webhook's pending ones kept on every enqueue.
		for _, r := range s.all {
			if r.q != q || r.status != stPending {
				continue
			}
			if u := r.unit; u != nil {
				s.dropUnit(u)
			}
			r.status = stCanceled
			r.lastError = "webhook deleted"
			r.updated = toStamp(now)
			r.unit = nil
			if c := r.chain; c != nil {
				delete(s.chains, c.key)
				r.chain = nil
			}
		}
		if q.ridx >= 0 {
			heap.Remove(&s.ready, q.ridx)
		}
		delete(s.queues, id)
	}
	s.notify()
	return nil
}

// Webhook returns one definition.
func (s *Store) Webhook(ctx context.Context, id string) (store.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return store.Webhook{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.webhooks[id]
	if !ok {
		return store.Webhook{}, fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
	}
	w.Definition = slices.Clone(w.Definition)
	return w, nil
}

// Webhooks returns every definition ordered by id.
func (s *Store) Webhooks(ctx context.Context) ([]store.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Webhook, 0, len(s.webhooks))
	for _, w := range s.webhooks {
		w.Definition = slices.Clone(w.Definition)
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// WebhooksVersion grows with every save and delete.
func (s *Store) WebhooksVersion(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, nil
}

// Enqueue stores an event and its deliveries unless the event exists.
func (s *Store) Enqueue(ctx context.Context, e store.Event, ds []store.Delivery) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if e.ID == "" {
		return false, fmt.Errorf("memory: event without id")
	}
	for _, d := range ds {
		if d.ID == "" || d.WebhookID == "" {
			return false, fmt.Errorf("memory: delivery without id or webhook id")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.events.get(eventKey{e.Tenant, e.ID}); ok {
		return false, nil
	}
	rows := make([]row, len(ds))
	if err := s.index(rows, ds); err != nil {
		return false, err
	}
	s.enqueue(e, ds, rows)
	return true, nil
}

// index enters the rows of ds in s.rows, or none of them when an id is
// taken or repeated; s.mu is held.
func (s *Store) index(rows []row, ds []store.Delivery) error {
	for i := range ds {
		rows[i].id = ds[i].ID
		if !s.rows.add(&rows[i]) {
			for j := range i {
				s.rows.remove(&rows[j])
			}
			return fmt.Errorf("memory: delivery %q exists", ds[i].ID)
		}
	}
	return nil
}

// EnqueueMany stores each event and its deliveries unless the event
// exists (or came earlier in es), all or nothing.
func (s *Store) EnqueueMany(ctx context.Context, es []store.EventWithDeliveries) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, x := range es {
		if x.Event.ID == "" {
			return nil, fmt.Errorf("memory: event without id")
		}
		for _, d := range x.Deliveries {
			if d.ID == "" || d.WebhookID == "" {
				return nil, fmt.Errorf("memory: delivery without id or webhook id")
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	created := make([]bool, len(es))
	seen := map[eventKey]bool{}
	ids := map[string]bool{}
	for i, x := range es {
		k := eventKey{x.Event.Tenant, x.Event.ID}
		if _, ok := s.events.get(k); ok || seen[k] {
			continue
		}
		seen[k], created[i] = true, true
		for _, d := range x.Deliveries {
			if _, ok := s.rows.get(d.ID); ok || ids[d.ID] {
				return nil, fmt.Errorf("memory: delivery %q exists", d.ID)
			}
			ids[d.ID] = true
		}
	}
	for i, x := range es {
		if created[i] {
			rows := make([]row, len(x.Deliveries))
			if err := s.index(rows, x.Deliveries); err != nil {
				return nil, err // checked above: cannot happen
			}
			s.enqueue(x.Event, x.Deliveries, rows)
		}
	}
	return created, nil
}

// enqueue stores a new event and its deliveries, whose rows index has
// entered; s.mu is held. The rows of one event, and the chains and units
// it starts, are allocated together: a handful of allocations per event
// rather than five per delivery.
func (s *Store) enqueue(e store.Event, ds []store.Delivery, rows []row) {
	ev := e // its Payload is not changed by the caller (see store.Event)
	s.events.add(&ev)
	if len(ds) == 0 {
		s.bare = append(s.bare, &ev)
		return
	}
	ones := make([]*row, 2*len(ds)) // one-row backings for new chains and units
	var chains []chain
	var units []unit
	for i, d := range ds {
		s.seq++
		created := d.CreatedAt
		if created.IsZero() {
			created = e.Time
		}
		q := s.queue(d.WebhookID)
		r := &rows[i]
		*r = row{id: d.ID, seq: s.seq, ev: &ev, q: q, next: toStamp(d.NextAttempt), created: toStamp(created),
			maxBatch: int32(min(max(d.MaxBatch, 0), math.MaxInt32))}
		r.updated = r.created
		s.all = append(s.all, r)
		ck := chainKey{d.WebhookID, e.Tenant, e.Key}
		c := s.chains[ck]
		if c == nil {
			if len(chains) == 0 {
				chains = make([]chain, len(ds)-i)
			}
			c, chains = &chains[0], chains[1:]
			// Capacity 1: a second record appends into a backing of its
			// own, never into a neighbour's.
			*c = chain{key: ck, rows: ones[2*i : 2*i : 2*i+1]}
			s.chains[ck] = c
		}
		r.chain = c
		c.rows = append(c.rows, r)
		if len(c.rows) == 1 {
			if len(units) == 0 {
				units = make([]unit, len(ds)-i)
			}
			var u *unit
			u, units = &units[0], units[1:]
			ones[2*i+1] = r
			*u = unit{q: q, rows: ones[2*i+1 : 2*i+2 : 2*i+2], due: r.next, hidx: -1}
			s.pushNew(u)
		}
	}
	if len(ds) > 0 {
		s.notify()
	}
}

// Claim leases up to c.Limit due messages.
func (s *Store) Claim(ctx context.Context, c store.Claim) ([]store.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.Limit <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := toStamp(c.Now)
	s.expire(now)
	var out []store.Message
	// Take turns: one message per webhook per round, so one webhook's
	// backlog cannot fill a claim while another's work is due.
	for len(out) < c.Limit {
		var round []*queue
		for len(out) < c.Limit && len(s.ready) > 0 {
			q := s.ready[0]
			u := q.units.min()
			if u.due.after(now) {
				break
			}
			heap.Pop(&s.ready)
			q.units.popMin()
			if max := int(u.rows[0].maxBatch); max > 1 && !u.fixed {
				s.gather(u, max, now)
			}
			u.held = &hold{token: s.newToken(), until: toStamp(c.Now.Add(c.Lease)), u: u}
			heap.Push(&s.leases, u.held)
			s.leased[u.held.token] = u
			out = append(out, u.message())
			round = append(round, q)
		}
		for _, q := range round {
			s.refresh(q)
		}
		if len(round) == 0 {
			break
		}
	}
	return out, nil
}

// newToken returns a lease token no lease of this store had before; s.mu
// is held. A count does: the store is the only one to hand them out and
// check them, and nothing of it outlives the process.
func (s *Store) newToken() string {
	s.tokens++
	var b [32]byte
	return string(strconv.AppendUint(append(b[:0], "lease-"...), s.tokens, 36))
}

// gather grows the head u of a batching webhook into a fixed batch of up to
// max due records: the chain successors of each member, then further due
// heads of the same webhook.
func (s *Store) gather(u *unit, max int, now stamp) {
	q := u.q
	u.rows = s.follow(u.rows, max, now)
	for len(u.rows) < max && q.units.len() > 0 {
		next := q.units.min()
		if next.fixed || next.due.after(now) {
			break
		}
		q.units.popMin()
		u.rows = s.follow(append(u.rows, next.rows...), max, now)
	}
	sort.Slice(u.rows, func(i, j int) bool { return u.rows[i].seq < u.rows[j].seq })
	id := uuid.Must(uuid.NewV7()).String()
	for _, r := range u.rows {
		r.unit = u
		r.batchID = id
	}
	u.fixed = true
}

// follow appends, after the last row, the due successors in its chain.
func (s *Store) follow(rows []*row, max int, now stamp) []*row {
	last := rows[len(rows)-1]
	c := last.chain
	if c == nil {
		return rows
	}
	i := slices.Index(c.rows, last)
	for i++; i < len(c.rows) && len(rows) < max; i++ {
		r := c.rows[i]
		if r.unit != nil || r.next.after(now) {
			break
		}
		rows = append(rows, r)
	}
	return rows
}

// Ack records outcomes.
func (s *Store) Ack(ctx context.Context, rs []store.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var lost []string
	freed := false
	for _, r := range rs {
		u := s.leased[r.Lease]
		if u == nil || u.rows[0].messageID() != r.MessageID {
			lost = append(lost, r.MessageID)
			continue
		}
		s.unlease(u)
		freed = s.apply(u, r) || freed
	}
	if freed {
		s.notify()
	}
	if len(lost) > 0 {
		return fmt.Errorf("messages %v: %w", lost, store.ErrLeaseLost)
	}
	return nil
}

// apply records r for u and reports whether the next record of a key
// moved up to be claimed.
func (s *Store) apply(u *unit, r store.Result) bool {
	now := toStamp(r.Now)
	for _, row := range u.rows {
		row.updated = now
		if r.Attempt != nil {
			row.tries++
			a := *r.Attempt
			a.Number = int(row.tries)
			row.attempts = append(row.attempts, a)
			row.lastError = a.Error
			row.lastCode = int32(a.StatusCode)
		} else if r.Error != "" {
			row.lastError = r.Error
		}
	}
	switch r.Outcome {
	case store.OutcomeRetry, store.OutcomePostpone:
		u.due = toStamp(r.NextAttempt)
		for _, row := range u.rows {
			row.next = u.due
		}
		s.push(u)
		return false
	case store.OutcomeDelivered:
		return s.finish(u, stDelivered)
	case store.OutcomeSkipped:
		return s.finish(u, stSkipped)
	case store.OutcomeCanceled:
		return s.finish(u, stCanceled)
	default:
		return s.finish(u, stDead)
	}
}

// finish ends every row of u and lets the next record of each chain move
// up; it reports whether one did.
func (s *Store) finish(u *unit, st status) (moved bool) {
	var one [1]*chain
	touched := one[:0] // a batch may hold several records of one chain
	for _, r := range u.rows {
		r.status = st
		r.unit = nil
		if c := r.chain; c != nil {
			if i := slices.Index(c.rows, r); i >= 0 {
				c.rows = slices.Delete(c.rows, i, i+1)
			}
			r.chain = nil
			if !slices.Contains(touched, c) {
				touched = append(touched, c)
			}
		}
	}
	for _, c := range touched {
		if len(c.rows) == 0 {
			delete(s.chains, c.key)
			continue
		}
		if h := c.rows[0]; h.unit == nil {
			s.push(&unit{q: u.q, rows: []*row{h}, due: h.next, hidx: -1})
			moved = true
		}
	}
	return moved
}

// Release returns leased messages to the queue, unattempted.
func (s *Store) Release(ctx context.Context, leases []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range leases {
		if u := s.leased[l]; u != nil {
			s.unlease(u)
			s.push(u)
		}
	}
	s.notify()
	return nil
}

// Delivery returns one delivery.
func (s *Store) Delivery(ctx context.Context, id string) (store.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return store.Delivery{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows.get(id)
	if !ok {
		return store.Delivery{}, fmt.Errorf("delivery %q: %w", id, store.ErrNotFound)
	}
	return r.delivery(), nil
}

// Deliveries lists deliveries matching f in order of sequence.
func (s *Store) Deliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := sort.Search(len(s.all), func(i int) bool { return s.all[i].seq > f.After })
	st, known := statusOf(f.Status)
	if f.Status != "" && !known {
		return nil, nil
	}
	var since, until stamp
	if !f.Since.IsZero() {
		since = toStamp(f.Since)
	}
	if !f.Until.IsZero() {
		until = toStamp(f.Until)
	}
	var out []store.Delivery
	for _, r := range s.all[start:] {
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
		switch {
		case f.WebhookID != "" && r.q.id != f.WebhookID,
			f.EventID != "" && r.ev.ID != f.EventID,
			f.Status != "" && r.status != st,
			f.Tenant != "" && r.ev.Tenant != f.Tenant,
			f.Key != "" && r.ev.Key != f.Key,
			!f.Since.IsZero() && r.created < since,
			!f.Until.IsZero() && r.created >= until:
			continue
		}
		out = append(out, r.delivery())
	}
	return out, nil
}

// Attempts lists a delivery's attempts, oldest first.
func (s *Store) Attempts(ctx context.Context, id string) ([]store.Attempt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows.get(id)
	if !ok {
		return nil, fmt.Errorf("delivery %q: %w", id, store.ErrNotFound)
	}
	return slices.Clone(r.attempts), nil
}

// Replay makes a finished delivery pending again, outside its chain.
func (s *Store) Replay(ctx context.Context, id string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows.get(id)
	if !ok {
		return fmt.Errorf("delivery %q: %w", id, store.ErrNotFound)
	}
	if r.status == stPending {
		return fmt.Errorf("delivery %q: %w", id, store.ErrPending)
	}
	if r.ev.Payload == nil {
		return fmt.Errorf("delivery %q: %w", id, store.ErrPayloadGone)
	}
	r.status = stPending
	r.tries = 0
	r.replayed = true
	r.next = toStamp(now)
	r.updated = r.next
	r.batchID = ""
	if r.maxBatch > 1 {
		r.batchID = r.id
	}
	q := s.queue(r.q.id)
	r.q = q // the webhook may have been deleted and saved again
	u := &unit{q: q, rows: []*row{r}, due: r.next, fixed: true, hidx: -1}
	r.unit = u
	s.push(u)
	s.notify()
	return nil
}

// Subscribe returns a channel that receives a value after work is enqueued,
// released or replayed, an ack lets the next record of a key move up, or
// definitions change.
func (s *Store) Subscribe(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
		close(ch)
	}()
	return ch, nil
}

// NotifiesAcks reports that an Ack that lets the next record of a key move
// up notifies subscribers.
func (s *Store) NotifiesAcks() bool { return true }

func (s *Store) notify() {
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Store) queue(id string) *queue {
	q := s.queues[id]
	if q == nil {
		q = &queue{id: id, ridx: -1}
		if w, ok := s.webhooks[id]; ok {
			q.disabled = w.Disabled
		}
		s.queues[id] = q
	}
	return q
}

// push queues u, which comes back (a retry, a released or expired
// lease, a replay, a chain's next head), as claimable in its webhook's
// queue.
func (s *Store) push(u *unit) {
	for _, r := range u.rows {
		r.unit = u
	}
	u.q.units.pushAside(u)
	s.refresh(u.q)
}

// pushNew queues the unit of a delivery just enqueued.
func (s *Store) pushNew(u *unit) {
	for _, r := range u.rows {
		r.unit = u
	}
	u.q.units.push(u)
	s.refresh(u.q)
}

// refresh puts q in the ready heap at the place of its earliest unit, or
// takes it out when it has none or is disabled.
func (s *Store) refresh(q *queue) {
	want := !q.disabled && q.units.len() > 0
	switch {
	case want && q.ridx >= 0:
		heap.Fix(&s.ready, q.ridx)
	case want:
		heap.Push(&s.ready, q)
	case q.ridx >= 0:
		heap.Remove(&s.ready, q.ridx)
	}
}

func (s *Store) unlease(u *unit) {
	if h := u.held; h != nil {
		delete(s.leased, h.token)
		heap.Remove(&s.leases, h.idx)
		u.held = nil
	}
}

// dropUnit takes u out of every queue, heap and map.
func (s *Store) dropUnit(u *unit) {
	s.unlease(u)
	if u.queued() {
		u.q.units.remove(u)
	}
}

// expire returns messages whose lease ran out to their queues.
func (s *Store) expire(now stamp) {
	for len(s.leases) > 0 && !s.leases[0].until.after(now) {
		u := s.leases[0].u
		s.unlease(u)
		s.push(u)
	}
}

func (u *unit) message() store.Message {
	m := store.Message{
		ID:         u.rows[0].messageID(),
		WebhookID:  u.q.id,
		Batch:      u.rows[0].maxBatch > 1,
		Lease:      u.held.token,
		Attempt:    int(u.rows[0].tries) + 1,
		Deliveries: make([]store.Delivery, len(u.rows)),
		Events:     make([]store.Event, len(u.rows)),
	}
	for i, r := range u.rows {
		m.Deliveries[i] = r.delivery()
		m.Events[i] = *r.ev
	}
	return m
}

type unitHeap []*unit

func (h unitHeap) Len() int           { return len(h) }
func (h unitHeap) Less(i, j int) bool { return earlier(h[i], h[j]) }

// earlier orders units by due time, then by sequence.
func earlier(a, b *unit) bool {
	if a.due != b.due {
		return a.due < b.due
	}
	return a.rows[0].seq < b.rows[0].seq
}
func (h unitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}
func (h *unitHeap) Push(x any) {
	u := x.(*unit)
	u.hidx = len(*h)
	*h = append(*h, u)
}
func (h *unitHeap) Pop() any {
	old := *h
	u := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	u.hidx = -1
	return u
}

type leaseHeap []*hold

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *leaseHeap) Push(x any) {
	l := x.(*hold)
	l.idx = len(*h)
	*h = append(*h, l)
}
func (h *leaseHeap) Pop() any {
	old := *h
	l := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	l.idx = -1
	return l
}

type queueHeap []*queue

func (h queueHeap) Len() int           { return len(h) }
func (h queueHeap) Less(i, j int) bool { return earlier(h[i].units.min(), h[j].units.min()) }
func (h queueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].ridx = i
	h[j].ridx = j
}
func (h *queueHeap) Push(x any) {
	q := x.(*queue)
	q.ridx = len(*h)
	*h = append(*h, q)
}
func (h *queueHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	q.ridx = -1
	return q
}
