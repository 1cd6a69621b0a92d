package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/google/uuid"

	"github.com/heraldhr/herald/store"
)

// Several statements take a list as one JSON array parameter and unpack it
// with json_each, so a claim or an acknowledgement of a hundred messages
// costs a handful of statements rather than hundreds.

const insertEvent = `INSERT INTO herald_events (tenant, id, table_name, op, record_key, time, payload, created_at, live)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`

// insertDelivery stores a delivery to a webhook that exists, as the head
// of its chain when no earlier one is pending. The webhook is looked up
// once, for the row's webhook_id: when it no longer exists (deleted
// between matching and storing) that is NULL, the row is skipped (OR
// IGNORE), and insertCanceled stores the delivery canceled, as
// DeleteWebhook would have left it. A row skipped for its id, already
// taken, meets the same refusal there. A VALUES insert that told the two
// cases apart itself would look the webhook up for each column that
// differs (three look-ups), and an INSERT ... SELECT from the webhook
// costs a third more.
const insertDelivery = `INSERT OR IGNORE INTO herald_deliveries (id, event_id, tenant, record_key, webhook_id, max_batch,
		status, last_error, next_attempt, head, created_at, updated_at)
	VALUES (?1, ?2, ?3, ?4, (SELECT id FROM herald_webhooks WHERE id = ?5), ?6, 'pending', '', ?7,
		NOT EXISTS (SELECT 1 FROM herald_deliveries p
			WHERE p.webhook_id = ?5 AND p.tenant = ?3 AND p.record_key = ?4 AND p.status = 'pending' AND p.replayed = 0),
		?8, ?8)`

const insertCanceled = `INSERT INTO herald_deliveries (id, event_id, tenant, record_key, webhook_id, max_batch, status,
		last_error, next_attempt, head, created_at, updated_at)
	VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'canceled', 'webhook deleted', ?7, 0, ?8, ?8)`

// Enqueue stores an event and its deliveries unless the event exists.
func (s *Store) Enqueue(ctx context.Context, e store.Event, ds []store.Delivery) (bool, error) {
	if err := checkEnqueue(e, ds); err != nil {
		return false, err
	}
	var created bool
	err := s.combined(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		created, err = s.enqueue(ctx, tx, nil, e, ds)
		return err
	})
	if err != nil {
		return false, err
	}
	if created && len(ds) > 0 {
		s.notify()
	}
	return created, nil
}

// EnqueueMany stores many events and their deliveries in one
// transaction, in order; created[i] reports whether es[i] was new.
func (s *Store) EnqueueMany(ctx context.Context, es []store.EventWithDeliveries) ([]bool, error) {
	for _, e := range es {
		if err := checkEnqueue(e.Event, e.Deliveries); err != nil {
			return nil, err
		}
	}
	created := make([]bool, len(es))
	queued := false
	err := s.combined(ctx, func(ctx context.Context, tx *sql.Tx) error {
		queued = false
		for i, e := range es {
			var err error
			if created[i], err = s.enqueue(ctx, tx, nil, e.Event, e.Deliveries); err != nil {
				return err
			}
			queued = queued || (created[i] && len(e.Deliveries) > 0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if queued {
		s.notify()
	}
	return created, nil
}

// EnqueueManyTx is EnqueueMany inside the caller's transaction, as
// EnqueueTx. A savepoint makes it all or nothing within the transaction.
func (s *Store) EnqueueManyTx(ctx context.Context, t store.Tx, es []store.EventWithDeliveries) ([]bool, error) {
	v, err := t.Unwrap(owner)
	if err != nil {
		return nil, err
	}
	tx, ok := v.(*sql.Tx)
	if !ok || tx == nil {
		return nil, fmt.Errorf("%w: not a *sql.Tx", store.ErrForeignTx)
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT herald_enqueue_many`); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	created := make([]bool, len(es))
	for i, e := range es {
		var err error
		if created[i], err = s.EnqueueTx(ctx, t, e.Event, e.Deliveries); err != nil {
			undo := context.WithoutCancel(ctx) // the caller's transaction outlives this call
			_, err2 := tx.ExecContext(undo, `ROLLBACK TO herald_enqueue_many`)
			_, err3 := tx.ExecContext(undo, `RELEASE herald_enqueue_many`)
			return nil, errors.Join(err, err2, err3)
		}
	}
	if _, err := tx.ExecContext(ctx, `RELEASE herald_enqueue_many`); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return created, nil
}

// EnqueueTx stores an event and its deliveries inside the caller's
// transaction: one begun with BeginTx (the fast path: its statements are
// prepared once), or one of another *sql.DB on the store's file (its first
// call checks the file and prepares the statements for that transaction).
// On an error the transaction holds none of the event's rows; roll it back
// anyway if the change must not happen without its webhooks.
func (s *Store) EnqueueTx(ctx context.Context, t store.Tx, e store.Event, ds []store.Delivery) (bool, error) {
	v, err := t.Unwrap(owner)
	if err != nil {
		return false, err
	}
	tx, ok := v.(*sql.Tx)
	if !ok || tx == nil {
		return false, fmt.Errorf("%w: not a *sql.Tx", store.ErrForeignTx)
	}
	if err := checkEnqueue(e, ds); err != nil {
		return false, err
	}
	key := weak.Make(tx)
	if _, own := s.own.Load(key); own {
		s.ownMu.Lock()
		var stmts *foreignTx // nil: bind each use (s.exec)
		if s.ownTx == tx {
			stmts = s.ownStmts
		}
		s.ownMu.Unlock()
		created, err := s.enqueue(ctx, tx, stmts, e, ds)
		if created {
			s.ownEnqueued.Store(true) // the commit wakes subscribers
		}
		return created, err
	}
	if _, ok := s.foreign.Load(key); !ok {
		var file string
		if err := tx.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
			return false, fmt.Errorf("sqlite: %w", err)
		}
		if file != s.file {
			return false, fmt.Errorf("%w: the transaction is on %s, the store on %s", store.ErrForeignTx, file, s.file)
		}
		if _, loaded := s.foreign.LoadOrStore(key, struct{}{}); !loaded {
			runtime.AddCleanup(tx, func(k weak.Pointer[sql.Tx]) { s.foreign.Delete(k) }, key)
		}
	}
	s.foreignMu.Lock()
	if s.foreignTx != tx {
		s.foreignTx, s.foreignStmts = tx, &foreignTx{stmts: map[string]*sql.Stmt{}}
	}
	f := s.foreignStmts
	s.foreignMu.Unlock()
	created, err := s.enqueue(ctx, tx, f, e, ds)
	if created {
		s.foreignEnqueued.Store(true) // the commit wakes subscribers (OpenDB's)
	}
	return created, err
}

// foreignTx holds the statements prepared for a transaction of another
// *sql.DB given to EnqueueTx (database/sql closes them when the
// transaction ends), so that a hundred publishes in one transaction parse
// each statement once, not a hundred times. For a transaction of BeginTx
// (own), it holds the store's statements bound to the transaction.
type foreignTx struct {
	own   bool
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// exec runs q in tx, preparing it for tx (or binding the store's
// statement to it) the first time.
func (f *foreignTx) exec(ctx context.Context, s *Store, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	f.mu.Lock()
	st, ok := f.stmts[q]
	if !ok {
		var err error
		if f.own {
			st, err = s.stmt(ctx, tx, q)
		} else if st, err = tx.PrepareContext(ctx, q); err != nil {
			err = fmt.Errorf("sqlite: preparing: %w", err)
		}
		if err != nil {
			f.mu.Unlock()
			return nil, err
		}
		f.stmts[q] = st
	}
	f.mu.Unlock()
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return res, nil
}

func checkEnqueue(e store.Event, ds []store.Delivery) error {
	if e.ID == "" {
		return errors.New("sqlite: event without id")
	}
	for _, d := range ds {
		if d.ID == "" || d.WebhookID == "" {
			return errors.New("sqlite: delivery without id or webhook id")
		}
	}
	return nil
}

// enqueue writes the rows in tx: with the store's prepared statements
// when tx is on the store's writer connection (foreign is nil, or holds
// them bound to a transaction of BeginTx), else with those prepared for
// a transaction of another *sql.DB.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, foreign *foreignTx, e store.Event, ds []store.Delivery) (bool, error) {
	run := func(q string, args ...any) (sql.Result, error) {
		if foreign == nil {
			return s.exec(ctx, tx, q, args...)
		}
		return foreign.exec(ctx, s, tx, q, args...)
	}
	created := e.CreatedAt
	if created.IsZero() {
		created = e.Time
	}
	payload := []byte(e.Payload)
	if payload == nil {
		payload = []byte("null")
	}
	// The event's id, tenant and key go to every statement: each is put in
	// an interface once, not once per statement.
	id, tenant, key := any(e.ID), any(e.Tenant), any(e.Key)
	res, err := run(insertEvent, tenant, id, e.Table, e.Op, key, nanos(e.Time), payload, nanos(created), len(ds))
	if err != nil {
		return false, err
	}
	if affected(res) == 0 {
		return false, nil
	}
	for _, d := range ds {
		at := d.CreatedAt
		if at.IsZero() {
			at = e.Time
		}
		res, err := run(insertDelivery, d.ID, id, tenant, key, d.WebhookID, d.MaxBatch, nanos(d.NextAttempt), nanos(at))
		if err == nil && affected(res) == 0 {
			_, err = run(insertCanceled, d.ID, id, tenant, key, d.WebhookID, d.MaxBatch, nanos(d.NextAttempt), nanos(at))
		}
		if err != nil {
			if foreign != nil && !foreign.own {
				// SQLite undid the failed statement only: take back the
				// event's other rows, so the caller's transaction holds
				// none of them.
				undo := context.WithoutCancel(ctx) // the caller's transaction outlives this call
				_, err2 := tx.ExecContext(undo, `DELETE FROM herald_deliveries WHERE event_id = ? AND tenant = ?`, e.ID, e.Tenant)
				_, err3 := tx.ExecContext(undo, `DELETE FROM herald_events WHERE tenant = ? AND id = ?`, e.Tenant, e.ID)
				err = errors.Join(err, err2, err3)
			}
			return false, err
		}
	}
	return true, nil
}

// The claim's queries have no LIMIT: SQLite (3.54) plans with the value
// bound to a LIMIT and prepares the statement again, parsing included,
// whenever that value changes, and a claim's limit is the number of free
// workers, which changes all the time. The rows come in index order, and
// reading stops at the limit.

const readyWebhooks = `SELECT w.id FROM herald_webhooks w
	JOIN herald_deliveries d ON d.seq = (SELECT x.seq FROM herald_deliveries x
		WHERE x.webhook_id = w.id AND x.status = 'pending' AND x.head = 1 AND x.next_attempt <= ?1 AND x.lease_until <= ?1
		ORDER BY x.next_attempt, x.seq LIMIT 1)
	WHERE w.disabled = 0
	ORDER BY d.next_attempt, d.seq`

const dueHeads = `SELECT ` + pendingCols + `, ` + eventCols + `
	FROM herald_deliveries d JOIN herald_events e ON e.tenant = d.tenant AND e.id = d.event_id
	WHERE d.webhook_id = ?1 AND d.status = 'pending' AND d.head = 1 AND d.next_attempt <= ?2 AND d.lease_until <= ?2
	ORDER BY d.next_attempt, d.seq`

const batchMembers = `SELECT ` + pendingCols + `, ` + eventCols + `
	FROM herald_deliveries d JOIN herald_events e ON e.tenant = d.tenant AND e.id = d.event_id
	WHERE d.batch_id = ? AND d.status = 'pending' ORDER BY d.seq`

const successors = `SELECT ` + pendingCols + `, ` + eventCols + `
	FROM herald_deliveries d JOIN herald_events e ON e.tenant = d.tenant AND e.id = d.event_id
	WHERE d.webhook_id = ?1 AND d.tenant = ?2 AND d.record_key = ?3 AND d.status = 'pending' AND d.replayed = 0 AND d.seq > ?4
	ORDER BY d.seq`

// setLeases leases the rows in ?3 under the claim id ?1.
const setLeases = `UPDATE herald_deliveries SET lease = ?1, lease_until = ?2 WHERE seq IN (SELECT value FROM json_each(?3))`

// fixBatches takes [[seq, batch_id, head], ...] for the rows of batches
// gathered by this claim.
const fixBatches = `UPDATE herald_deliveries SET batch_id = j.value ->> 1, head = j.value ->> 2
	FROM json_each(?1) AS j WHERE herald_deliveries.seq = j.value ->> 0`

// Claim leases up to c.Limit due messages, taking turns across webhooks:
// one message per webhook per round, webhooks in order of their earliest
// due message.
func (s *Store) Claim(ctx context.Context, c store.Claim) ([]store.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.Limit <= 0 {
		return nil, nil
	}
	var out []store.Message
	err := s.combined(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		out, err = s.claim(ctx, tx, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) claim(ctx context.Context, tx *sql.Tx, c store.Claim) ([]store.Message, error) {
	now := nanos(c.Now)
	rows, err := s.query(ctx, tx, readyWebhooks, now)
	if err != nil {
		return nil, err
	}
	var hooks []string
	for len(hooks) < c.Limit && rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		hooks = append(hooks, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	queues := make([][]item, len(hooks))
	heads := 0
	for i, id := range hooks {
		rows, err := s.query(ctx, tx, dueHeads, id, now)
		if err != nil {
			return nil, err
		}
		var buf []item
		if i == 0 {
			// The first webhook's heads go to the store's buffer, which
			// the claim empties before it returns.
			buf = s.claimBuf
		}
		if queues[i], err = scanItemsInto(rows, c.Limit, buf); err != nil {
			return nil, err
		}
		heads += len(queues[i])
	}
	if len(queues) > 0 {
		first := queues[0]
		if cap(first) > cap(s.claimBuf) {
			s.claimBuf = first[:0]
		}
		// Messages copy what they take: drop the references the buffer
		// keeps to payloads and strings.
		defer clear(first)
	}
	// Every message starts at a head in the queues.
	out := make([]store.Message, 0, min(c.Limit, heads))
	leased := make([]int64, 0, min(c.Limit, heads))
	var batches [][]any
	taken := map[int64]bool{}
	claim := uuid.NewString()
	for len(out) < c.Limit {
		took := false
		for i := range queues {
			if len(out) >= c.Limit || len(queues[i]) == 0 {
				continue
			}
			head := queues[i][0]
			queues[i] = queues[i][1:]
			members, err := s.unit(ctx, tx, head, &queues[i], taken, c.Now)
			if err != nil {
				return nil, err
			}
			lease := strconv.FormatInt(members[0].d.Seq, 10) + "." + claim
			fresh := head.d.BatchID == "" && members[0].d.BatchID != ""
			for j, m := range members {
				taken[m.d.Seq] = true
				leased = append(leased, m.d.Seq)
				if fresh {
					batches = append(batches, []any{m.d.Seq, m.d.BatchID, j == 0})
				}
			}
			out = append(out, message(members, lease))
			took = true
		}
		if !took {
			break
		}
	}
	if len(leased) > 0 {
		if _, err := s.exec(ctx, tx, setLeases, claim, nanos(c.Now.Add(c.Lease)), seqList(leased)); err != nil {
			return nil, err
		}
	}
	if len(batches) > 0 {
		if _, err := s.exec(ctx, tx, fixBatches, jsonArg(batches)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unit returns the members of the message whose head row is head: the row
// alone, a fixed batch, or a new batch gathered for a batching webhook.
func (s *Store) unit(ctx context.Context, tx *sql.Tx, head item, rest *[]item, taken map[int64]bool, now time.Time) ([]item, error) {
	switch {
	case head.d.BatchID != "":
		rows, err := s.query(ctx, tx, batchMembers, head.d.BatchID)
		if err != nil {
			return nil, err
		}
		return scanItems(rows, 0)
	case head.d.MaxBatch > 1 && !head.d.Replayed:
		return s.gather(ctx, tx, head, rest, taken, now)
	}
	return []item{head}, nil
}

// gather grows head into a batch of up to MaxBatch due records: the chain
// successors of each member, then further due heads of the webhook (and
// their successors). The batch id is fixed here, for every retry.
func (s *Store) gather(ctx context.Context, tx *sql.Tx, head item, rest *[]item, taken map[int64]bool, now time.Time) ([]item, error) {
	limit := head.d.MaxBatch
	taken[head.d.Seq] = true
	members, err := s.follow(ctx, tx, []item{head}, limit, taken, now)
	if err != nil {
		return nil, err
	}
	if len(members) < limit {
		rows, err := s.query(ctx, tx, dueHeads, head.d.WebhookID, nanos(now))
		if err != nil {
			return nil, err
		}
		heads, err := scanItems(rows, limit+len(taken))
		if err != nil {
			return nil, err
		}
		for _, h := range heads {
			if len(members) >= limit {
				break
			}
			if taken[h.d.Seq] || h.d.BatchID != "" || h.d.Replayed {
				continue
			}
			taken[h.d.Seq] = true
			if members, err = s.follow(ctx, tx, append(members, h), limit, taken, now); err != nil {
				return nil, err
			}
		}
	}
	*rest = slices.DeleteFunc(*rest, func(it item) bool { return taken[it.d.Seq] })
	slices.SortFunc(members, func(a, b item) int { return int(a.d.Seq - b.d.Seq) })
	id := uuid.Must(uuid.NewV7()).String()
	for i := range members {
		members[i].d.BatchID = id
	}
	return members, nil
}

// follow appends, after the last member, the due successors in its chain.
func (s *Store) follow(ctx context.Context, tx *sql.Tx, members []item, limit int, taken map[int64]bool, now time.Time) ([]item, error) {
	last := members[len(members)-1].d
	if last.Replayed || len(members) >= limit {
		return members, nil
	}
	rows, err := s.query(ctx, tx, successors, last.WebhookID, last.Tenant, last.Key, last.Seq)
	if err != nil {
		return nil, err
	}
	next, err := scanItems(rows, limit-len(members))
	if err != nil {
		return nil, err
	}
	for _, n := range next {
		if n.d.BatchID != "" || n.d.NextAttempt.After(now) {
			break
		}
		taken[n.d.Seq] = true
		members = append(members, n)
	}
	return members, nil
}

func message(members []item, lease string) store.Message {
	first := members[0].d
	m := store.Message{
		ID:         first.MessageID(),
		WebhookID:  first.WebhookID,
		Batch:      first.MaxBatch > 1,
		Lease:      lease,
		Attempt:    first.Attempts + 1,
		Deliveries: make([]store.Delivery, len(members)),
		Events:     make([]store.Event, len(members)),
	}
	for i, it := range members {
		m.Deliveries[i], m.Events[i] = it.d, it.e
	}
	return m
}

// seqList is jsonArg for a list of seqs, the argument of most hot-path
// statements, written without reflection.
func seqList(seqs []int64) string {
	b := make([]byte, 0, 2+8*len(seqs))
	b = append(b, '[')
	for i, n := range seqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return string(append(b, ']'))
}

// headersArg is jsonArg for an attempt's request headers, byte for byte,
// without reflection: names in order, and values of plain characters
// written as they are. Headers with characters json.Marshal would escape
// go to it.
func headersArg(h map[string]string) string {
	if h == nil {
		return "null"
	}
	var few [16]string // most requests carry fewer headers
	names := few[:0]
	size := 2
	for k, v := range h {
		if !plainJSON(k) || !plainJSON(v) {
			return jsonArg(h)
		}
		names = append(names, k)
		size += len(k) + len(v) + 6
	}
	slices.Sort(names)
	var b strings.Builder
	b.Grow(size)
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(k)
		b.WriteString(`":"`)
		b.WriteString(h[k])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// plainJSON reports whether json.Marshal writes s between its quotes as
// it is: printable ASCII other than the quote, the backslash and the
// characters it escapes for HTML.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

func jsonArg(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sqlite: encoding a statement's list: %v", err)) // only plain values are encoded
	}
	return string(b)
}

// A lease token is "<seq>.<claim id>": seq is the message's first row
// when it was claimed, which leads to the message's rows without an index
// on lease, and the rows hold the claim id (one per Claim call). The
// token names one message; the claim id alone tells whether the rows are
// still held by that claim.
type token struct {
	raw   string
	seq   int64
	claim string
}

func parseLease(lease string) (token, bool) {
	num, claim, ok := strings.Cut(lease, ".")
	seq, err := strconv.ParseInt(num, 10, 64)
	return token{raw: lease, seq: seq, claim: claim}, ok && err == nil && claim != ""
}

// leasedCols are the columns leasedRows reads, from table alias d.
// waiting tells whether another row of the row's chain waits, so that an
// acknowledgement moves a chain's next row up only where there is one:
// finding out here costs a seek in the chain index, moving up every chain
// a statement more. The row waiting may come before this one: a requeued
// delivery waits for a later one that was in flight when it was requeued.
const leasedCols = `d.seq, coalesce(d.lease, ''), d.batch_id, d.event_id, d.status = 'pending', d.attempts, d.replayed,
	d.replayed = 0 AND EXISTS (SELECT 1 FROM herald_deliveries x
		WHERE x.webhook_id = d.webhook_id AND x.tenant = d.tenant AND x.record_key = d.record_key
			AND x.status = 'pending' AND x.replayed = 0 AND x.seq <> d.seq)`

// leaseHeads reads the rows the lease tokens name; leaseBatches the
// pending rows of the batches among them.
const (
	leaseHeads   = `SELECT ` + leasedCols + ` FROM herald_deliveries d WHERE d.seq IN (SELECT value FROM json_each(?))`
	leaseBatches = `SELECT ` + leasedCols + ` FROM herald_deliveries d
		WHERE d.batch_id IN (SELECT value FROM json_each(?)) AND d.status = 'pending' ORDER BY d.seq`
)

// applyOutcome records one kind of outcome for the rows in ?1: most
// acknowledgements in a call are alike (delivered, at the same moment), so
// they share one statement. A finished row stops being a head.
const applyOutcome = `UPDATE herald_deliveries SET status = ?2, attempts = attempts + ?3,
		last_error = CASE WHEN ?4 THEN ?5 ELSE last_error END,
		last_code = CASE WHEN ?3 THEN ?6 ELSE last_code END,
		next_attempt = CASE WHEN ?2 = 'pending' THEN ?7 ELSE next_attempt END,
		head = CASE WHEN ?2 = 'pending' THEN head ELSE 0 END,
		updated_at = ?8, lease = NULL, lease_until = 0
	WHERE seq IN (SELECT value FROM json_each(?1))`

// insertAttempts returns the statement that inserts n attempts, ten
// parameters each: attempts differ row by row, and plain parameters cost
// less than unpacking a JSON list.
func insertAttempts(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO herald_attempts (delivery_seq, number, message_id, at, status_code, latency,
		request_headers, response_body, error, webhook_version) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	return b.String()
}

// attemptsPerStatement keeps an insert's parameters far below SQLite's
// limit.
const attemptsPerStatement = 100

// promoteHeads takes the seqs of rows that just finished and makes the
// first pending row of each one's chain its head, unless it already
// stands in a message.
const promoteHeads = `UPDATE herald_deliveries SET head = 1
	WHERE seq IN (SELECT (SELECT x.seq FROM herald_deliveries x
			WHERE x.webhook_id = f.webhook_id AND x.tenant = f.tenant AND x.record_key = f.record_key
				AND x.status = 'pending' AND x.replayed = 0
			ORDER BY x.seq LIMIT 1)
		FROM herald_deliveries f WHERE f.seq IN (SELECT value FROM json_each(?)))
	AND head = 0 AND batch_id = ''`

type leasedRow struct {
	seq          int64
	lease, batch string
	ev           string
	pending      bool
	attempts     int
	replayed     bool
	waiting      bool // a later row of its chain waits
}

func (r leasedRow) messageID() string {
	if r.batch != "" {
		return r.batch
	}
	return r.ev
}

// statusOf is the status a row takes for an outcome.
func statusOf(o store.Outcome) store.Status {
	switch o {
	case store.OutcomeDelivered:
		return store.Delivered
	case store.OutcomeRetry, store.OutcomePostpone:
		return store.Pending
	case store.OutcomeSkipped:
		return store.Skipped
	case store.OutcomeCanceled:
		return store.Canceled
	}
	return store.Dead
}

// change is what applyOutcome sets; results that set the same share a
// statement.
type change struct {
	status   store.Status
	attempt  int // 1 when an attempt is counted
	setError bool
	lastErr  string
	code     int
	next     int64
	now      int64
}

// Ack records outcomes, all in one transaction.
func (s *Store) Ack(ctx context.Context, rs []store.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}
	var lost []string
	err := s.combined(ctx, func(ctx context.Context, tx *sql.Tx) error {
		lost = nil
		leases := make([]string, len(rs))
		for i, r := range rs {
			leases[i] = r.Lease
		}
		byLease, err := s.leased(ctx, tx, leases)
		if err != nil {
			return err
		}
		groups := map[change][]int64{}
		var order []change
		attempts := make([]any, 0, 10*len(rs)) // ten values per attempt
		var finished []int64                   // rows whose chain has a row waiting behind
		for _, r := range rs {
			ms := byLease[r.Lease]
			if len(ms) == 0 || ms[0].messageID() != r.MessageID {
				lost = append(lost, r.MessageID)
				continue
			}
			delete(byLease, r.Lease) // a second result for the lease finds it gone
			c := change{status: statusOf(r.Outcome), now: nanos(r.Now)}
			if c.status == store.Pending {
				c.next = nanos(r.NextAttempt)
			}
			var headers string
			if a := r.Attempt; a != nil {
				c.attempt, c.setError, c.lastErr, c.code = 1, true, a.Error, a.StatusCode
				headers = headersArg(a.RequestHeaders)
			} else if r.Error != "" {
				c.setError, c.lastErr = true, r.Error
			}
			if _, ok := groups[c]; !ok {
				order = append(order, c)
			}
			for _, m := range ms {
				groups[c] = append(groups[c], m.seq)
				if a := r.Attempt; a != nil {
					attempts = append(attempts, m.seq, m.attempts+1, a.MessageID, nanos(a.At), a.StatusCode,
						int64(a.Latency), headers, a.ResponseBody, a.Error, a.WebhookVersion)
				}
				if c.status != store.Pending && m.waiting {
					finished = append(finished, m.seq)
				}
			}
		}
		for _, c := range order {
			if _, err := s.exec(ctx, tx, applyOutcome, seqList(groups[c]), string(c.status), c.attempt, c.setError,
				c.lastErr, c.code, c.next, c.now); err != nil {
				return err
			}
		}
		for part := range slices.Chunk(attempts, 10*attemptsPerStatement) {
			if _, err := s.exec(ctx, tx, insertAttempts(len(part)/10), part...); err != nil {
				return err
			}
		}
		// A finished row of a chain lets the next one up.
		if len(finished) > 0 {
			if _, err := s.exec(ctx, tx, promoteHeads, seqList(finished)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return fmt.Errorf("messages %v: %w", lost, store.ErrLeaseLost)
	}
	return nil
}

// leased returns, by lease token, the pending rows each message still
// holds under its lease.
func (s *Store) leased(ctx context.Context, tx *sql.Tx, leases []string) (map[string][]leasedRow, error) {
	bySeq := map[int64][]token{}
	var seqs []int64
	for _, l := range leases {
		if t, ok := parseLease(l); ok {
			bySeq[t.seq] = append(bySeq[t.seq], t)
			seqs = append(seqs, t.seq)
		}
	}
	out := map[string][]leasedRow{}
	if len(seqs) == 0 {
		return out, nil
	}
	heads, err := s.leasedRows(ctx, tx, leaseHeads, seqList(seqs))
	if err != nil {
		return nil, err
	}
	byBatch := map[string][]token{}
	var batches []string
	for _, r := range heads {
		for _, t := range bySeq[r.seq] {
			switch {
			case r.batch != "":
				if len(byBatch[r.batch]) == 0 {
					batches = append(batches, r.batch)
				}
				byBatch[r.batch] = append(byBatch[r.batch], t)
			case r.pending && r.lease == t.claim:
				out[t.raw] = append(out[t.raw], r)
			}
		}
	}
	if len(batches) > 0 {
		members, err := s.leasedRows(ctx, tx, leaseBatches, jsonArg(batches))
		if err != nil {
			return nil, err
		}
		for _, r := range members {
			for _, t := range byBatch[r.batch] {
				if r.lease == t.claim {
					out[t.raw] = append(out[t.raw], r)
				}
			}
		}
	}
	return out, nil
}

func (s *Store) leasedRows(ctx context.Context, tx *sql.Tx, q string, arg string) ([]leasedRow, error) {
	rows, err := s.query(ctx, tx, q, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []leasedRow
	for rows.Next() {
		var r leasedRow
		if err := rows.Scan((*int64Col)(&r.seq), &r.lease, &r.batch, &r.ev, (*boolCol)(&r.pending), (*intCol)(&r.attempts),
			(*boolCol)(&r.replayed), (*boolCol)(&r.waiting)); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return out, nil
}

// Release returns leased messages to the queue at once, unattempted.
func (s *Store) Release(ctx context.Context, leases []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(leases) == 0 {
		return nil
	}
	err := s.combined(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, l := range leases {
			t, ok := parseLease(l)
			if !ok {
				continue
			}
			// The message's rows: the one the token names, or its batch.
			if _, err := s.exec(ctx, tx, `UPDATE herald_deliveries SET lease = NULL, lease_until = 0
				WHERE status = 'pending' AND lease = ?2
					AND (seq = ?1 OR batch_id = (SELECT batch_id FROM herald_deliveries WHERE seq = ?1 AND batch_id != ''))`,
				t.seq, t.claim); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.notify()
	return nil
}

// Replay makes a finished delivery pending again, outside its chain. A
// delivery whose webhook was deleted cannot be replayed (ErrNotFound):
// there is nowhere to send it.
func (s *Store) Replay(ctx context.Context, id string, now time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		st, err := s.stmt(ctx, tx, `SELECT d.status, e.payload IS NULL, w.id IS NOT NULL
			FROM herald_deliveries d JOIN herald_events e ON e.tenant = d.tenant AND e.id = d.event_id
			LEFT JOIN herald_webhooks w ON w.id = d.webhook_id WHERE d.id = ?`)
		if err != nil {
			return err
		}
		var status string
		var erased, hooked bool
		switch err := st.QueryRowContext(ctx, id).Scan(&status, &erased, &hooked); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("delivery %q: %w", id, store.ErrNotFound)
		case err != nil:
			return fmt.Errorf("sqlite: %w", err)
		case store.Status(status) == store.Pending:
			return fmt.Errorf("delivery %q: %w", id, store.ErrPending)
		case erased:
			return fmt.Errorf("delivery %q: %w", id, store.ErrPayloadGone)
		case !hooked:
			return fmt.Errorf("delivery %q: its webhook was deleted: %w", id, store.ErrNotFound)
		}
		_, err = s.exec(ctx, tx, `UPDATE herald_deliveries SET status = 'pending', attempts = 0, replayed = 1, head = 1,
				next_attempt = ?2, updated_at = ?2, lease = NULL, lease_until = 0, scrubbed = 0,
				batch_id = CASE WHEN max_batch > 1 THEN id ELSE '' END
			WHERE id = ?1`, id, nanos(now))
		return err
	})
	if err != nil {
		return err
	}
	s.notify()
	return nil
}
