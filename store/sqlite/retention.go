package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhr/herald/store"
)

// Purge forgets finished work as p says, in transactions of at most
// p.BatchSize deliveries (with their attempts) or events each. Between two
// transactions the writer connection is free, so workers claiming and
// acknowledging wait for one batch at most.
func (s *Store) Purge(ctx context.Context, p store.PurgePolicy, now time.Time) (store.PurgeResult, error) {
	batch := p.BatchSize
	if batch <= 0 {
		batch = store.DefaultPurgeBatch
	}
	var res store.PurgeResult
	step := func(fn func(tx *sql.Tx) (int, error)) error {
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
	groups := []struct {
		statuses []store.Status
		age      time.Duration
	}{
		{[]store.Status{store.Delivered, store.Skipped}, p.Delivered},
		{[]store.Status{store.Dead, store.Canceled}, p.Dead},
	}
	// Expired deliveries and their attempts.
	for _, g := range groups {
		if g.age <= 0 {
			continue
		}
		for _, st := range g.statuses {
			cut := nanos(now.Add(-g.age))
			err := step(func(tx *sql.Tx) (int, error) {
				return s.purgeDeliveries(ctx, tx, st, cut, batch, &res)
			})
			if err != nil {
				return res, err
			}
		}
	}
	// Bodies and payloads of deliveries finished long enough ago.
	if p.Payloads > 0 {
		cut := nanos(now.Add(-p.Payloads))
		for _, st := range []store.Status{store.Delivered, store.Skipped, store.Dead, store.Canceled} {
			err := step(func(tx *sql.Tx) (int, error) {
				return s.scrub(ctx, tx, st, cut, batch, &res)
			})
			if err != nil {
				return res, err
			}
		}
	}
	// Payloads no delivery refers to: nothing can send them again.
	err := step(func(tx *sql.Tx) (int, error) {
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
	if p.Events > 0 {
		cut := nanos(now.Add(-p.Events))
		err := step(func(tx *sql.Tx) (int, error) {
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

// purgeDeliveries deletes up to batch deliveries of status st finished
// before cut, with their attempts, and counts them off their events.
func (s *Store) purgeDeliveries(ctx context.Context, tx *sql.Tx, st store.Status, cut int64, batch int, res *store.PurgeResult) (int, error) {
	rows, err := s.query(ctx, tx, `SELECT seq, tenant, event_id FROM herald_deliveries
		WHERE status = ? AND scrubbed IN (0, 1) AND updated_at < ? LIMIT ?`, string(st), cut, batch)
	if err != nil {
		return 0, err
	}
	seqs, events, err := scanSeqEvents(rows)
	if err != nil || len(seqs) == 0 {
		return 0, err
	}
	r, err := s.exec(ctx, tx, `DELETE FROM herald_attempts WHERE delivery_seq IN (SELECT value FROM json_each(?))`, jsonArg(seqs))
	if err != nil {
		return 0, err
	}
	res.Attempts += affected(r)
	if _, err := s.exec(ctx, tx, `DELETE FROM herald_deliveries WHERE seq IN (SELECT value FROM json_each(?))`, jsonArg(seqs)); err != nil {
		return 0, err
	}
	res.Deliveries += len(seqs)
	var counts [][]any
	for k, n := range events {
		counts = append(counts, []any{k[0], k[1], n})
	}
	if _, err := s.exec(ctx, tx, `UPDATE herald_events SET live = live - (j.value ->> 2)
		FROM json_each(?) AS j WHERE herald_events.tenant = j.value ->> 0 AND herald_events.id = j.value ->> 1`, jsonArg(counts)); err != nil {
		return 0, err
	}
	return len(seqs), nil
}

// scrub drops the attempt bodies of up to batch deliveries of status st
// finished before cut, and the payloads of their events once every
// delivery of the event is scrubbed.
func (s *Store) scrub(ctx context.Context, tx *sql.Tx, st store.Status, cut int64, batch int, res *store.PurgeResult) (int, error) {
	rows, err := s.query(ctx, tx, `SELECT seq, tenant, event_id FROM herald_deliveries
		WHERE status = ? AND scrubbed = 0 AND updated_at < ? LIMIT ?`, string(st), cut, batch)
	if err != nil {
		return 0, err
	}
	seqs, events, err := scanSeqEvents(rows)
	if err != nil || len(seqs) == 0 {
		return 0, err
	}
	if _, err := s.exec(ctx, tx, `UPDATE herald_attempts SET response_body = ''
		WHERE delivery_seq IN (SELECT value FROM json_each(?)) AND response_body != ''`, jsonArg(seqs)); err != nil {
		return 0, err
	}
	if _, err := s.exec(ctx, tx, `UPDATE herald_deliveries SET scrubbed = 1 WHERE seq IN (SELECT value FROM json_each(?))`, jsonArg(seqs)); err != nil {
		return 0, err
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
		return 0, err
	}
	res.Payloads += affected(r)
	return len(seqs), nil
}

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
		var n int
		err := s.write(ctx, func(tx *sql.Tx) error {
			rows, err := s.query(ctx, tx, selectEvents, e.Tenant, e.Table, e.Key, after, last, store.DefaultPurgeBatch)
			if err != nil {
				return err
			}
			var ids []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return fmt.Errorf("sqlite: %w", err)
				}
				ids = append(ids, id)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
			if n = len(ids); n == 0 {
				return nil
			}
			after = ids[n-1]
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
		if n < store.DefaultPurgeBatch {
			break
		}
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return res, fmt.Errorf("sqlite: checkpoint after erasure: %w", err)
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
