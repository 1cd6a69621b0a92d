package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/heraldhr/herald/store"
)

// Purge forgets finished work as p says, in transactions of at most
// p.BatchSize deliveries (with their attempts) or events each. Between two
// transactions the writer connection is free, so workers claiming and
// acknowledging wait for one batch at most.
//
// No index serves retention (every index would cost each acknowledgement
// an update): Purge reads the deliveries in order of sequence from the
// read pool, holding no lock, up to the first one created after the
// latest cutoff, and deletes or scrubs what it found in batches, checking
// each row again as it does. A delivery created out of order is reached
// by a later purge.
func (s *Store) Purge(ctx context.Context, p store.PurgePolicy, now time.Time) (store.PurgeResult, error) {
	batch := p.BatchSize
	if batch <= 0 {
		batch = store.DefaultPurgeBatch
	}
	var res store.PurgeResult
	c := cutoffs{delivered: cutoff(now, p.Delivered), dead: cutoff(now, p.Dead), payloads: cutoff(now, p.Payloads)}
	if horizon := max(c.delivered, c.dead, c.payloads); horizon > math.MinInt64 {
		if err := s.purgeDeliveries(ctx, c, horizon, batch, &res); err != nil {
			return res, err
		}
	}
	// Payloads no delivery refers to: nothing can send them again.
	err := s.repeat(ctx, batch, func(tx *sql.Tx) (int, error) {
		r, err := s.exec(ctx, tx, `UPDATE herald_events SET payload = NULL WHERE rowid IN (
			SELECT rowid FROM herald_events WHERE live = 0 AND payload IS NOT NULL LIMIT ?)`, batch)
		if err != nil {
			return 0, err
		}
		res.Payloads += affected(r)
		return affected(r), nil
	})
	if err != nil {
		return res, err
	}
	// Event keys past their idempotency window.
	if cut := cutoff(now, p.Events); cut > math.MinInt64 {
		err := s.repeat(ctx, batch, func(tx *sql.Tx) (int, error) {
			r, err := s.exec(ctx, tx, `DELETE FROM herald_events WHERE rowid IN (
				SELECT rowid FROM herald_events WHERE live = 0 AND created_at < ? LIMIT ?)`, cut, batch)
			if err != nil {
				return 0, err
			}
			res.Events += affected(r)
			return affected(r), nil
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// cutoffs are unix nanoseconds before which a finished delivery expired;
// math.MinInt64 keeps.
type cutoffs struct{ delivered, dead, payloads int64 }

func cutoff(now time.Time, age time.Duration) int64 {
	if age <= 0 {
		return math.MinInt64
	}
	return nanos(now.Add(-age))
}

// repeat runs fn in write transactions until it handles fewer than batch
// rows.
func (s *Store) repeat(ctx context.Context, batch int, fn func(tx *sql.Tx) (int, error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int
		if err := s.write(ctx, func(tx *sql.Tx) error {
			var err error
			n, err = fn(tx)
			return err
		}); err != nil {
			return err
		}
		if n < batch {
			return nil
		}
	}
}

func (s *Store) purgeDeliveries(ctx context.Context, c cutoffs, horizon int64, batch int, res *store.PurgeResult) error {
	var after int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := s.r.QueryContext(ctx, `SELECT seq, status, updated_at, scrubbed, created_at FROM herald_deliveries
			WHERE seq > ? ORDER BY seq LIMIT ?`, after, 4*batch)
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		var expired, old []int64
		n, done := 0, false
		for rows.Next() {
			var seq, updated, created int64
			var status string
			var scrubbed bool
			if err := rows.Scan(&seq, &status, &updated, &scrubbed, &created); err != nil {
				rows.Close()
				return fmt.Errorf("sqlite: %w", err)
			}
			n++
			if created >= horizon {
				done = true
				break
			}
			after = seq
			switch store.Status(status) {
			case store.Pending:
			case store.Delivered, store.Skipped:
				if updated < c.delivered {
					expired = append(expired, seq)
				} else if !scrubbed && updated < c.payloads {
					old = append(old, seq)
				}
			default:
				if updated < c.dead {
					expired = append(expired, seq)
				} else if !scrubbed && updated < c.payloads {
					old = append(old, seq)
				}
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		for part := range slices.Chunk(expired, batch) {
			if err := s.write(ctx, func(tx *sql.Tx) error { return s.deleteDeliveries(ctx, tx, part, c, res) }); err != nil {
				return err
			}
		}
		for part := range slices.Chunk(old, batch) {
			if err := s.write(ctx, func(tx *sql.Tx) error { return s.scrub(ctx, tx, part, c, res) }); err != nil {
				return err
			}
		}
		if done || n < 4*batch {
			return nil
		}
	}
}

// deleteDeliveries deletes the given deliveries that are still expired,
// with their attempts, and counts them off their events.
func (s *Store) deleteDeliveries(ctx context.Context, tx *sql.Tx, seqs []int64, c cutoffs, res *store.PurgeResult) error {
	rows, err := s.query(ctx, tx, `DELETE FROM herald_deliveries WHERE seq IN (SELECT value FROM json_each(?1))
			AND ((status IN ('delivered', 'skipped') AND updated_at < ?2) OR (status IN ('dead', 'canceled') AND updated_at < ?3))
		RETURNING seq, tenant, event_id`, jsonArg(seqs), c.delivered, c.dead)
	if err != nil {
		return err
	}
	gone, events, err := scanSeqEvents(rows)
	if err != nil || len(gone) == 0 {
		return err
	}
	r, err := s.exec(ctx, tx, `DELETE FROM herald_attempts WHERE delivery_seq IN (SELECT value FROM json_each(?))`, jsonArg(gone))
	if err != nil {
		return err
	}
	res.Attempts += affected(r)
	res.Deliveries += len(gone)
	var counts [][]any
	for k, n := range events {
		counts = append(counts, []any{k[0], k[1], n})
	}
	_, err = s.exec(ctx, tx, `UPDATE herald_events SET live = live - (j.value ->> 2)
		FROM json_each(?) AS j WHERE herald_events.tenant = j.value ->> 0 AND herald_events.id = j.value ->> 1`, jsonArg(counts))
	return err
}

// scrub drops the attempt bodies of the given deliveries that are still
// finished long enough ago, and the payloads of their events once every
// delivery of the event is scrubbed.
func (s *Store) scrub(ctx context.Context, tx *sql.Tx, seqs []int64, c cutoffs, res *store.PurgeResult) error {
	rows, err := s.query(ctx, tx, `UPDATE herald_deliveries SET scrubbed = 1 WHERE seq IN (SELECT value FROM json_each(?1))
			AND status != 'pending' AND scrubbed = 0 AND updated_at < ?2
		RETURNING seq, tenant, event_id`, jsonArg(seqs), c.payloads)
	if err != nil {
		return err
	}
	done, events, err := scanSeqEvents(rows)
	if err != nil || len(done) == 0 {
		return err
	}
	if _, err := s.exec(ctx, tx, `UPDATE herald_attempts SET response_body = ''
		WHERE delivery_seq IN (SELECT value FROM json_each(?)) AND response_body != ''`, jsonArg(done)); err != nil {
		return err
	}
	var keys [][]any
	for k := range events {
		keys = append(keys, []any{k[0], k[1]})
	}
	r, err := s.exec(ctx, tx, `UPDATE herald_events SET payload = NULL
		WHERE payload IS NOT NULL AND (tenant, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))
		AND NOT EXISTS (SELECT 1 FROM herald_deliveries d
			WHERE d.event_id = herald_events.id AND d.tenant = herald_events.tenant AND d.scrubbed = 0)`, jsonArg(keys))
	if err != nil {
		return err
	}
	res.Payloads += affected(r)
	return nil
}

// Erase erases the payloads and attempt bodies of the selected events and
// cancels their pending deliveries. It cancels first, in one transaction,
// so that from then on nothing of the selection is claimed; then it
// erases in batches; then it checkpoints the write-ahead log, so that the
// erased data is no longer in it (secure_delete already overwrote it in
// the database file).
func (s *Store) Erase(ctx context.Context, e store.Erasure, now time.Time) (store.ErasureResult, error) {
	if err := e.Validate(); err != nil {
		return store.ErasureResult{}, err
	}
	var res store.ErasureResult
	var last int64 // the newest event when the erasure began
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM herald_events`).Scan(&last); err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		n, err := s.cancelErased(ctx, tx, e, now)
		res.Canceled = n
		return err
	})
	if err != nil {
		return res, err
	}
	// The selected events are found from the read pool, in pages by id,
	// holding no lock; each page is erased in a write transaction.
	selectEvents := `SELECT id FROM herald_events WHERE tenant = ?1 AND id > ?4 AND rowid <= ?5 ORDER BY id LIMIT ?6`
	if e.Key != "" {
		selectEvents = `SELECT id FROM herald_events
			WHERE tenant = ?1 AND table_name = ?2 AND record_key = ?3 AND id > ?4 AND rowid <= ?5 ORDER BY id LIMIT ?6`
	}
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rows, err := s.r.QueryContext(ctx, selectEvents, e.Tenant, e.Table, e.Key, after, last, store.DefaultPurgeBatch)
		if err != nil {
			return res, fmt.Errorf("sqlite: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return res, fmt.Errorf("sqlite: %w", err)
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return res, fmt.Errorf("sqlite: %w", err)
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		err = s.write(ctx, func(tx *sql.Tx) error {
			r, err := s.exec(ctx, tx, `UPDATE herald_attempts SET response_body = ''
				WHERE response_body != '' AND delivery_seq IN (SELECT seq FROM herald_deliveries
					WHERE event_id IN (SELECT value FROM json_each(?2)) AND tenant = ?1)`, e.Tenant, jsonArg(ids))
			if err != nil {
				return err
			}
			res.Attempts += affected(r)
			r, err = s.exec(ctx, tx, `UPDATE herald_events SET payload = NULL
				WHERE tenant = ?1 AND id IN (SELECT value FROM json_each(?2)) AND payload IS NOT NULL`, e.Tenant, jsonArg(ids))
			if err != nil {
				return err
			}
			res.Events += affected(r)
			return nil
		})
		if err != nil {
			return res, err
		}
		if len(ids) < store.DefaultPurgeBatch {
			break
		}
	}
	// The log still holds the pages as they were before the erasure: copy
	// it into the file and empty it. A checkpoint that cannot finish (a
	// reader holds an old snapshot past the busy timeout) says so in its
	// row, not as an error.
	var busy, log, done int
	s.ckMu.Lock()
	err = s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done)
	s.ckMu.Unlock()
	switch {
	case err != nil:
		return res, fmt.Errorf("sqlite: checkpoint after erasure: %w", err)
	case busy != 0:
		return res, errors.New("sqlite: checkpoint after erasure: the write-ahead log is still in use; erase again to empty it")
	}
	return res, nil
}

// cancelErased cancels the selected pending deliveries. Pending rows are
// found webhook by webhook through the indexes of pending rows; a batch
// that loses its first row gets a new one, and a chain that loses its head
// (possible when a webhook's table was changed) moves its next row up.
func (s *Store) cancelErased(ctx context.Context, tx *sql.Tx, e store.Erasure, now time.Time) (int, error) {
	rows, err := s.query(ctx, tx, `SELECT id FROM herald_webhooks`)
	if err != nil {
		return 0, err
	}
	var hooks []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: %w", err)
		}
		hooks = append(hooks, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	const set = `UPDATE herald_deliveries AS d SET status = 'canceled', last_error = ?5, updated_at = ?6,
		head = 0, lease = NULL, lease_until = 0
		WHERE d.webhook_id = ?1 AND d.tenant = ?2 AND d.status = 'pending' AND %s
			AND (?4 = '' OR (d.record_key = ?4 AND EXISTS (SELECT 1 FROM herald_events x
				WHERE x.tenant = d.tenant AND x.id = d.event_id AND x.table_name = ?3)))
		RETURNING batch_id, webhook_id, tenant, record_key, replayed`
	var batches, chains [][]any
	seenBatch, seenChain := map[string]bool{}, map[[3]string]bool{}
	canceled := 0
	for _, hook := range hooks {
		for _, which := range []string{"d.replayed = 0", "d.head = 1"} {
			rows, err := s.query(ctx, tx, fmt.Sprintf(set, which), hook, e.Tenant, e.Table, e.Key, store.ErasedReason, nanos(now))
			if err != nil {
				return 0, err
			}
			for rows.Next() {
				var batch, webhook, tenant, key string
				var replayed bool
				if err := rows.Scan(&batch, &webhook, &tenant, &key, &replayed); err != nil {
					rows.Close()
					return 0, fmt.Errorf("sqlite: %w", err)
				}
				canceled++
				if batch != "" && !seenBatch[batch] {
					seenBatch[batch] = true
					batches = append(batches, []any{batch})
				}
				if k := [3]string{webhook, tenant, key}; !replayed && !seenChain[k] {
					seenChain[k] = true
					chains = append(chains, []any{webhook, tenant, key})
				}
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return 0, fmt.Errorf("sqlite: %w", err)
			}
		}
	}
	if len(batches) > 0 {
		if _, err := s.exec(ctx, tx, `UPDATE herald_deliveries SET head = 1 WHERE seq IN (
			SELECT (SELECT min(x.seq) FROM herald_deliveries x WHERE x.batch_id = b.value ->> 0 AND x.status = 'pending')
			FROM json_each(?) AS b)`, jsonArg(batches)); err != nil {
			return 0, err
		}
	}
	if len(chains) > 0 {
		if _, err := s.exec(ctx, tx, promoteHeads, jsonArg(chains)); err != nil {
			return 0, err
		}
	}
	return canceled, nil
}

// scanSeqEvents reads rows of (seq, tenant, event_id) and counts them per
// event.
func scanSeqEvents(rows *sql.Rows) ([]int64, map[[2]string]int, error) {
	defer rows.Close()
	var seqs []int64
	events := map[[2]string]int{}
	for rows.Next() {
		var seq int64
		var tenant, ev string
		if err := rows.Scan(&seq, &tenant, &ev); err != nil {
			return nil, nil, fmt.Errorf("sqlite: %w", err)
		}
		seqs = append(seqs, seq)
		events[[2]string{tenant, ev}]++
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlite: %w", err)
	}
	return seqs, events, nil
}
