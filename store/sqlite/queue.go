package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhr/herald/store"
)

// Several statements take a list as one JSON array parameter and unpack it
// with json_each, so a claim or an acknowledgement of a hundred messages
// costs a handful of statements rather than hundreds.

const insertEvent = `INSERT INTO herald_events (tenant, id, table_name, op, record_key, time, payload, created_at, live)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`

// insertDelivery makes a delivery the head of its chain when no earlier
// one is pending, and cancels it at once when its webhook no longer
// exists (deleted between matching and storing), as DeleteWebhook would
// have.
const insertDelivery = `INSERT INTO herald_deliveries (id, event_id, tenant, record_key, webhook_id, max_batch, status,
		last_error, next_attempt, head, created_at, updated_at)
	SELECT ?1, ?2, ?3, ?4, ?5, ?6,
		CASE WHEN w.id IS NULL THEN 'canceled' ELSE 'pending' END,
		CASE WHEN w.id IS NULL THEN 'webhook deleted' ELSE '' END,
		?7,
		w.id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM herald_deliveries p
			WHERE p.webhook_id = ?5 AND p.tenant = ?3 AND p.record_key = ?4 AND p.status = 'pending' AND p.replayed = 0),
		?8, ?8
	FROM (SELECT 1) LEFT JOIN herald_webhooks w ON w.id = ?5`

// Enqueue stores an event and its deliveries unless the event exists.
func (s *Store) Enqueue(ctx context.Context, e store.Event, ds []store.Delivery) (bool, error) {
	if err := checkEnqueue(e, ds); err != nil {
		return false, err
	}
	var created bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		created, err = s.enqueue(ctx, tx, true, e, ds)
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

// EnqueueTx stores an event and its deliveries inside the caller's
// transaction, made with Tx on a *sql.DB of the store's file. On an error
// the transaction holds none of the event's rows; roll it back anyway if
// the change must not happen without its webhooks.
func (s *Store) EnqueueTx(ctx context.Context, t store.Tx, e store.Event, ds []store.Delivery) (bool, error) {
	v, err := t.Unwrap(owner)
	if err != nil {
		return false, err
	}
	tx, ok := v.(*sql.Tx)
	if !ok || tx == nil {
		return false, fmt.Errorf("%w: not a *sql.Tx", store.ErrForeignTx)
	}
	var file string
	if err := tx.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	if file != s.file {
		return false, fmt.Errorf("%w: the transaction is on %s, the store on %s", store.ErrForeignTx, file, s.file)
	}
	if err := checkEnqueue(e, ds); err != nil {
		return false, err
	}
	return s.enqueue(ctx, tx, false, e, ds)
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

// enqueue writes the rows in tx: with prepared statements when tx is the
// store's own, else with plain ones (a caller's transaction is on another
// *sql.DB).
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, own bool, e store.Event, ds []store.Delivery) (bool, error) {
	run := func(q string, args ...any) (sql.Result, error) {
		if own {
			return s.exec(ctx, tx, q, args...)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		return res, nil
	}
	created := e.CreatedAt
	if created.IsZero() {
		created = e.Time
	}
	payload := []byte(e.Payload)
	if payload == nil {
		payload = []byte("null")
	}
	res, err := run(insertEvent, e.Tenant, e.ID, e.Table, e.Op, e.Key, nanos(e.Time), payload, nanos(created), len(ds))
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
		if _, err := run(insertDelivery, d.ID, e.ID, e.Tenant, e.Key, d.WebhookID, d.MaxBatch, nanos(d.NextAttempt), nanos(at)); err != nil {
			if !own {
				// SQLite undid the failed statement only: take back the
				// event's other rows, so the caller's transaction holds
				// none of them.
				undo := context.WithoutCancel(ctx)
				_, err2 := tx.ExecContext(undo, `DELETE FROM herald_deliveries WHERE event_id = ? AND tenant = ?`, e.ID, e.Tenant)
				_, err3 := tx.ExecContext(undo, `DELETE FROM herald_events WHERE tenant = ? AND id = ?`, e.Tenant, e.ID)
				err = errors.Join(err, err2, err3)
			}
			return false, err
		}
	}
	return true, nil
}

const readyWebhooks = `SELECT w.id FROM herald_webhooks w
	JOIN herald_deliveries d ON d.seq = (SELECT x.seq FROM herald_deliveries x
		WHERE x.webhook_id = w.id AND x.status = 'pending' AND x.head = 1 AND x.next_attempt <= ?1 AND x.lease_until <= ?1
		ORDER BY x.next_attempt, x.seq LIMIT 1)
	WHERE w.disabled = 0
	ORDER BY d.next_attempt, d.seq LIMIT ?2`

const dueHeads = `SELECT ` + deliveryCols + `, ` + eventCols + `
	FROM herald_deliveries d JOIN herald_events e ON e.tenant = d.tenant AND e.id = d.event_id
	WHERE d.webhook_id = ?1 AND d.status = 'pending' AND d.head = 1 AND d.next_attempt <= ?2 AND d.lease_until <= ?2
	ORDER BY d.next_attempt, d.seq LIMIT ?3`

const batchMembers = `SELECT ` + deliveryCols + `, ` + eventCols + `
	FROM herald_deliveries d JOIN herald_events e ON e.tenant = d.tenant AND e.id = d.event_id
	WHERE d.batch_id = ? AND d.status = 'pending' ORDER BY d.seq`

const successors = `SELECT ` + deliveryCols + `, ` + eventCols + `
	FROM herald_deliveries d JOIN herald_events e ON e.tenant = d.tenant AND e.id = d.event_id
	WHERE d.webhook_id = ?1 AND d.tenant = ?2 AND d.record_key = ?3 AND d.status = 'pending' AND d.replayed = 0 AND d.seq > ?4
	ORDER BY d.seq LIMIT ?5`

// setLeases takes [[seq, lease, batch_id, head], ...].
const setLeases = `UPDATE herald_deliveries SET lease = j.value ->> 1, lease_until = ?2, batch_id = j.value ->> 2, head = j.value ->> 3
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
	err := s.write(ctx, func(tx *sql.Tx) error {
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
	rows, err := s.query(ctx, tx, readyWebhooks, now, c.Limit)
	if err != nil {
		return nil, err
	}
	var hooks []string
	for rows.Next() {
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
	for i, id := range hooks {
		rows, err := s.query(ctx, tx, dueHeads, id, now, c.Limit)
		if err != nil {
			return nil, err
		}
		if queues[i], err = scanItems(rows); err != nil {
			return nil, err
		}
	}
	var out []store.Message
	var leases [][]any
	taken := map[int64]bool{}
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
			lease := uuid.NewString()
			for j, m := range members {
				taken[m.d.Seq] = true
				leases = append(leases, []any{m.d.Seq, lease, m.d.BatchID, j == 0})
			}
			out = append(out, message(members, lease))
			took = true
		}
		if !took {
			break
		}
	}
	if len(leases) > 0 {
		if _, err := s.exec(ctx, tx, setLeases, jsonArg(leases), nanos(c.Now.Add(c.Lease))); err != nil {
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
		return scanItems(rows)
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
		rows, err := s.query(ctx, tx, dueHeads, head.d.WebhookID, nanos(now), limit+len(taken))
		if err != nil {
			return nil, err
		}
		heads, err := scanItems(rows)
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
	rows, err := s.query(ctx, tx, successors, last.WebhookID, last.Tenant, last.Key, last.Seq, limit-len(members))
	if err != nil {
		return nil, err
	}
	next, err := scanItems(rows)
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

func jsonArg(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sqlite: encoding a statement's list: %v", err)) // only plain values are encoded
	}
	return string(b)
}

const leasedRows = `SELECT seq, lease, batch_id, event_id, attempts, last_error, last_code, next_attempt,
		webhook_id, tenant, record_key, replayed
	FROM herald_deliveries WHERE lease IN (SELECT value FROM json_each(?)) AND status = 'pending' ORDER BY seq`

// applyOutcomes takes [[seq, status, attempts, last_error, last_code,
// next_attempt, updated_at], ...]; a finished row stops being a head.
const applyOutcomes = `UPDATE herald_deliveries SET status = j.value ->> 1, attempts = j.value ->> 2,
		last_error = j.value ->> 3, last_code = j.value ->> 4, next_attempt = j.value ->> 5, updated_at = j.value ->> 6,
		head = CASE WHEN j.value ->> 1 = 'pending' THEN head ELSE 0 END, lease = NULL, lease_until = 0
	FROM json_each(?) AS j WHERE herald_deliveries.seq = j.value ->> 0`

// insertAttempts takes [[delivery_seq, number, message_id, at,
// status_code, latency, {headers}, response_body, error, version], ...].
const insertAttempts = `INSERT INTO herald_attempts (delivery_seq, number, message_id, at, status_code, latency,
		request_headers, response_body, error, webhook_version)
	SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value -> 6, value ->> 7,
		value ->> 8, value ->> 9
	FROM json_each(?)`

// promoteHeads takes [[webhook_id, tenant, record_key], ...] and makes the
// first pending row of each chain its head, unless it already stands in a
// message.
const promoteHeads = `UPDATE herald_deliveries SET head = 1
	WHERE seq IN (SELECT (SELECT x.seq FROM herald_deliveries x
			WHERE x.webhook_id = c.value ->> 0 AND x.tenant = c.value ->> 1 AND x.record_key = c.value ->> 2
				AND x.status = 'pending' AND x.replayed = 0
			ORDER BY x.seq LIMIT 1)
		FROM json_each(?) AS c)
	AND head = 0 AND batch_id = ''`

type leasedRow struct {
	seq                int64
	lease, batch, ev   string
	attempts, lastCode int
	lastError          string
	next               int64
	webhook, tenant    string
	key                string
	replayed           bool
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

// Ack records outcomes, all in one transaction.
func (s *Store) Ack(ctx context.Context, rs []store.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}
	var lost []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		lost = nil
		leases := make([]string, len(rs))
		for i, r := range rs {
			leases[i] = r.Lease
		}
		byLease, err := s.leased(ctx, tx, leases)
		if err != nil {
			return err
		}
		var updates, attempts, chains [][]any
		seen := map[[3]string]bool{}
		for _, r := range rs {
			ms := byLease[r.Lease]
			if len(ms) == 0 || ms[0].messageID() != r.MessageID {
				lost = append(lost, r.MessageID)
				continue
			}
			delete(byLease, r.Lease) // a second result for the lease finds it gone
			status := statusOf(r.Outcome)
			for _, m := range ms {
				n, lastErr, lastCode, next := m.attempts, m.lastError, m.lastCode, m.next
				if a := r.Attempt; a != nil {
					n++
					attempts = append(attempts, []any{m.seq, n, a.MessageID, nanos(a.At), a.StatusCode, int64(a.Latency),
						a.RequestHeaders, a.ResponseBody, a.Error, a.WebhookVersion})
					lastErr, lastCode = a.Error, a.StatusCode
				} else if r.Error != "" {
					lastErr = r.Error
				}
				if status == store.Pending {
					next = nanos(r.NextAttempt)
				}
				updates = append(updates, []any{m.seq, string(status), n, lastErr, lastCode, next, nanos(r.Now)})
				if k := [3]string{m.webhook, m.tenant, m.key}; status != store.Pending && !m.replayed && !seen[k] {
					seen[k] = true
					chains = append(chains, []any{m.webhook, m.tenant, m.key})
				}
			}
		}
		for _, step := range []struct {
			q    string
			rows [][]any
		}{{applyOutcomes, updates}, {insertAttempts, attempts}, {promoteHeads, chains}} {
			if len(step.rows) == 0 {
				continue
			}
			if _, err := s.exec(ctx, tx, step.q, jsonArg(step.rows)); err != nil {
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

// leased returns the pending rows held under each of the leases.
func (s *Store) leased(ctx context.Context, tx *sql.Tx, leases []string) (map[string][]leasedRow, error) {
	rows, err := s.query(ctx, tx, leasedRows, jsonArg(leases))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]leasedRow{}
	for rows.Next() {
		var r leasedRow
		if err := rows.Scan(&r.seq, &r.lease, &r.batch, &r.ev, &r.attempts, &r.lastError, &r.lastCode, &r.next,
			&r.webhook, &r.tenant, &r.key, &r.replayed); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		out[r.lease] = append(out[r.lease], r)
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE herald_deliveries SET lease = NULL, lease_until = 0
			WHERE lease IN (SELECT value FROM json_each(?)) AND status = 'pending'`, jsonArg(leases))
		return err
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
