package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldhr/herald/store"
)

// Claim files newly published deliveries into their order chains, then
// leases up to c.Limit due messages: chain heads and replays, taking turns
// across webhooks, a batching webhook's heads gathered into batches fixed
// here with a UUIDv7 id. Everything happens in one transaction; rows
// another claimer holds are skipped, never waited for.
func (s *Store) Claim(ctx context.Context, c store.Claim) ([]store.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.Limit <= 0 {
		return nil, nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim: %w", err)
	}
	defer conn.Release()
	out, err := s.claimOn(ctx, conn.Conn(), c)
	if err != nil {
		// End the transaction, or drop the connection if that fails too,
		// so the pool never hands out a connection inside a transaction.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
			_ = conn.Conn().Close(rctx)
		}
		return nil, fmt.Errorf("postgres: claim: %w", err)
	}
	return out, nil
}

// claimOn runs a claim as one transaction on conn, in as few round trips
// as it can: BEGIN, filing and the candidates go together, and so do the
// final UPDATE and COMMIT; fixed and new batches add one each.
func (s *Store) claimOn(ctx context.Context, conn *pgx.Conn, c store.Claim) ([]store.Message, error) {
	scan := s.claimScan
	if scan == 0 {
		scan = c.Limit
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue(s.q.file, s.fileLock, s.fileBatch)
	b.Queue(s.q.candidates, c.Now, c.Limit, scan)
	br := conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, err
	}
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("filing new deliveries: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	cands, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cand, error) {
		var x cand
		err := r.Scan(&x.seq, &x.webhook, &x.maxBatch, &x.batchID)
		return x, err
	})
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return s.claim(ctx, conn, c, cands)
}

// cand is a claimable row the candidates query found and locked.
type cand struct {
	seq      int64
	webhook  string
	maxBatch int
	batchID  *string
}

// unit is a message being assembled by a claim.
type unit struct {
	lease   uuid.UUID
	batchID string  // a new batch's id, to be written; "" otherwise
	seqs    []int64 // the rows, unless fixed
	fixed   string  // a fixed batch's id: its members are found by it
	ok      bool    // every member of the fixed batch is locked
}

func (s *Store) claim(ctx context.Context, tx *pgx.Conn, c store.Claim, cands []cand) ([]store.Message, error) {
	var units []*unit
	var fixed []string
	fixedUnit := map[string]*unit{}
	taken := map[int64]bool{}
	for _, x := range cands {
		if len(units) >= c.Limit {
			break
		}
		switch {
		case x.batchID != nil:
			// A fixed batch (or a replay of a batching webhook): all its
			// members go out again, under the same id.
			if fixedUnit[*x.batchID] != nil {
				continue
			}
			u := &unit{lease: newLease(), fixed: *x.batchID}
			fixedUnit[*x.batchID] = u
			fixed = append(fixed, *x.batchID)
			units = append(units, u)
		case x.maxBatch > 1:
			if taken[x.seq] {
				continue // already gathered into an earlier batch of this claim
			}
			u := &unit{lease: newLease(), batchID: uuid.Must(uuid.NewV7()).String()}
			seqs, err := s.gather(ctx, tx, x.seq, x.webhook, x.maxBatch, c.Now, taken)
			if err != nil {
				return nil, err
			}
			u.seqs = seqs
			units = append(units, u)
		default:
			taken[x.seq] = true
			units = append(units, &unit{lease: newLease(), seqs: []int64{x.seq}})
		}
	}
	if len(fixed) > 0 {
		rows, err := tx.Query(ctx, s.q.fixedBatches, fixed)
		if err != nil {
			return nil, err
		}
		type fb struct {
			id            string
			total, locked int
		}
		fbs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fb, error) {
			var x fb
			err := r.Scan(&x.id, &x.total, &x.locked)
			return x, err
		})
		if err != nil {
			return nil, err
		}
		for _, b := range fbs {
			fixedUnit[b.id].ok = b.total == b.locked
		}
	}

	// One UPDATE leases every unit's rows. Fixed batches are named by
	// batch id; the statement finds their members.
	var seqs []int64
	var leases []uuid.UUID
	var batchIDs []string
	var fixedIDs []string
	var fixedLeases []uuid.UUID
	for _, u := range units {
		if u.fixed != "" {
			if u.ok {
				fixedIDs = append(fixedIDs, u.fixed)
				fixedLeases = append(fixedLeases, u.lease)
			}
			continue
		}
		for _, q := range u.seqs {
			seqs = append(seqs, q)
			leases = append(leases, u.lease)
			batchIDs = append(batchIDs, u.batchID)
		}
	}
	if len(seqs) == 0 && len(fixedIDs) == 0 {
		_, err := tx.Exec(ctx, "COMMIT") // the filing, if any
		return nil, err
	}
	return s.lease(ctx, tx, c, seqs, leases, batchIDs, fixedIDs, fixedLeases)
}

// gather assembles a new batch around leader (already locked) and returns
// its member seqs, marking them taken.
func (s *Store) gather(ctx context.Context, tx *pgx.Conn, leader int64, webhook string, max int, now time.Time, taken map[int64]bool) ([]int64, error) {
	exclude := []int64{leader}
	for q := range taken {
		exclude = append(exclude, q)
	}
	rows, err := tx.Query(ctx, s.q.gather, leader, webhook, now, max, exclude)
	if err != nil {
		return nil, err
	}
	var out []int64
	cut := map[int64]bool{} // chains (by head) cut at a busy row
	for rows.Next() {
		var ord, head, seq int64
		var locked bool
		if err := rows.Scan(&ord, &head, &seq, &locked); err != nil {
			rows.Close()
			return nil, err
		}
		if cut[head] || taken[seq] {
			continue
		}
		if !locked && seq != leader {
			cut[head] = true
			continue
		}
		out = append(out, seq)
		taken[seq] = true
	}
	rows.Close()
	return out, rows.Err()
}

func (s *Store) lease(ctx context.Context, tx *pgx.Conn, c store.Claim, seqs []int64, leases []uuid.UUID, batchIDs []string,
	fixedIDs []string, fixedLeases []uuid.UUID) ([]store.Message, error) {
	b := &pgx.Batch{}
	b.Queue(s.q.lease, c.Now.Add(c.Lease), seqs, leases, batchIDs, fixedIDs, fixedLeases)
	b.Queue("COMMIT")
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	type member struct {
		d store.Delivery
		e store.Event
	}
	byLease := map[string][]member{}
	var order []string
	for rows.Next() {
		var l string
		var m member
		var payload string
		dst := append([]any{&l}, deliveryDest(&m.d)...)
		dst = append(dst, &m.e.Table, &m.e.Op, &m.e.Time, &payload)
		if err := rows.Scan(dst...); err != nil {
			rows.Close()
			return nil, err
		}
		fixDelivery(&m.d)
		m.e.ID, m.e.Tenant, m.e.Key, m.e.Time, m.e.Payload = m.d.EventID, m.d.Tenant, m.d.Key, m.e.Time.UTC(), json.RawMessage(payload)
		if byLease[l] == nil {
			order = append(order, l)
		}
		byLease[l] = append(byLease[l], m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if tag, err := br.Exec(); err != nil {
		return nil, err
	} else if tag.String() != "COMMIT" {
		return nil, fmt.Errorf("the claim's transaction ended with %s", tag)
	}
	out := make([]store.Message, 0, len(order))
	for _, l := range order {
		ms := byLease[l]
		slices.SortFunc(ms, func(a, b member) int { return cmp.Compare(a.d.Seq, b.d.Seq) })
		first := ms[0].d
		m := store.Message{
			ID:         first.MessageID(),
			WebhookID:  first.WebhookID,
			Batch:      first.MaxBatch > 1,
			Lease:      leaseToken(l, first.Seq),
			Attempt:    first.Attempts + 1,
			Deliveries: make([]store.Delivery, len(ms)),
			Events:     make([]store.Event, len(ms)),
		}
		for i, x := range ms {
			m.Deliveries[i], m.Events[i] = x.d, x.e
		}
		out = append(out, m)
	}
	return out, nil
}

func newLease() uuid.UUID { return uuid.New() }

// deliveryDest returns scan destinations for deliveryCols.
func deliveryDest(d *store.Delivery) []any {
	return []any{&d.Seq, &d.ID, &d.EventID, &d.WebhookID, &d.Tenant, &d.Key, &d.MaxBatch, &d.Status,
		&d.Attempts, &d.NextAttempt, &d.LastError, &d.LastCode, (*nullString)(&d.BatchID), &d.Replayed, &d.CreatedAt, &d.UpdatedAt}
}

// fixDelivery puts a scanned delivery's times in UTC.
func fixDelivery(d *store.Delivery) {
	d.NextAttempt, d.CreatedAt, d.UpdatedAt = d.NextAttempt.UTC(), d.CreatedAt.UTC(), d.UpdatedAt.UTC()
}

// nullString scans a nullable text column into a string ("" for NULL).
type nullString string

func (n *nullString) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*n = ""
	case string:
		*n = nullString(x)
	case []byte:
		*n = nullString(x)
	default:
		return fmt.Errorf("postgres: cannot scan %T into a string", v)
	}
	return nil
}
