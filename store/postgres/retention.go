package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhr/herald/store"
)

var (
	_ store.Eraser   = (*Store)(nil)
	_ store.Retainer = (*Store)(nil)
)

// eventCreatedAt is when the event was recorded: retention counts the
// idempotency window from it.
func eventCreatedAt(e store.Event) time.Time {
	if e.CreatedAt.IsZero() {
		return e.Time
	}
	return e.CreatedAt
}

// Purge forgets finished work as p says, in transactions of at most
// p.BatchSize deliveries or events each, so acknowledgements and claims
// are never held off for long.
//
// No index serves retention (each would cost every acknowledgement an
// update): Purge reads the deliveries in order of sequence, holding no
// lock, up to the first one created after the latest cutoff, and deletes
// or scrubs what it found in batches, each statement checking its rows
// again. A delivery created out of order is reached by a later purge. The
// events no delivery refers to any more are found through a small partial
// index.
func (s *Store) Purge(ctx context.Context, p store.PurgePolicy, now time.Time) (store.PurgeResult, error) {
	batch := p.BatchSize
	if batch <= 0 {
		batch = store.DefaultPurgeBatch
	}
	var res store.PurgeResult
	c := cutoffs{delivered: cutoff(now, p.Delivered), dead: cutoff(now, p.Dead), payloads: cutoff(now, p.Payloads)}
	horizon := c.delivered
	for _, t := range []time.Time{c.dead, c.payloads} {
		if t.After(horizon) {
			horizon = t
		}
	}
	if !horizon.IsZero() {
		if err := s.purgeDeliveries(ctx, c, horizon, batch, &res); err != nil {
			return res, fmt.Errorf("postgres: purge: %w", err)
		}
	}
	for {
		tag, err := s.pool.Exec(ctx, s.sql(`UPDATE {schema}.events SET payload = NULL WHERE (tenant, id) IN (
			SELECT tenant, id FROM {schema}.events WHERE live = 0 AND payload IS NOT NULL LIMIT $1)`), batch)
		if err != nil {
			return res, fmt.Errorf("postgres: purge: %w", err)
		}
		res.Payloads += int(tag.RowsAffected())
		if tag.RowsAffected() < int64(batch) {
			break
		}
	}
	if cut := cutoff(now, p.Events); !cut.IsZero() {
		for {
			tag, err := s.pool.Exec(ctx, s.sql(`DELETE FROM {schema}.events WHERE (tenant, id) IN (
				SELECT tenant, id FROM {schema}.events WHERE live = 0 AND coalesce(created_at, time) < $1 LIMIT $2)
				AND live = 0`), cut, batch)
			if err != nil {
				return res, fmt.Errorf("postgres: purge: %w", err)
			}
			res.Events += int(tag.RowsAffected())
			if tag.RowsAffected() < int64(batch) {
				break
			}
		}
	}
	return res, nil
}

// cutoffs are the moments before which a finished delivery expired; the
// zero time keeps.
type cutoffs struct{ delivered, dead, payloads time.Time }

func cutoff(now time.Time, age time.Duration) time.Time {
	if age <= 0 {
		return time.Time{}
	}
	return now.Add(-age)
}

func (s *Store) purgeDeliveries(ctx context.Context, c cutoffs, horizon time.Time, batch int, res *store.PurgeResult) error {
	var after int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := s.pool.Query(ctx, s.sql(`SELECT seq, status, updated_at, scrubbed, created_at FROM {schema}.deliveries
			WHERE seq > $1 ORDER BY seq LIMIT $2`), after, 4*batch)
		if err != nil {
			return err
		}
		var expired, old []int64
		n, done := 0, false
		for rows.Next() {
			var seq int64
			var status string
			var updated, created time.Time
			var scrubbed bool
			if err := rows.Scan(&seq, &status, &updated, &scrubbed, &created); err != nil {
				rows.Close()
				return err
			}
			n++
			if !created.Before(horizon) {
				done = true
				break
			}
			after = seq
			var cut time.Time
			switch store.Status(status) {
			case store.Pending:
				continue
			case store.Delivered, store.Skipped:
				cut = c.delivered
			default:
				cut = c.dead
			}
			switch {
			case updated.Before(cut):
				expired = append(expired, seq)
			case !scrubbed && updated.Before(c.payloads):
				old = append(old, seq)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for part := range slices.Chunk(expired, batch) {
			var d, a int
			if err := s.pool.QueryRow(ctx, s.sql(`
WITH d AS (
    DELETE FROM {schema}.deliveries WHERE seq = ANY($1::int8[]) AND phase IS NULL
        AND ((status IN ('delivered', 'skipped') AND updated_at < $2) OR (status IN ('dead', 'canceled') AND updated_at < $3))
    RETURNING seq, tenant, event_id
), a AS (
    DELETE FROM {schema}.attempts WHERE delivery_seq IN (SELECT seq FROM d) RETURNING 1
), ev AS (
    UPDATE {schema}.events e SET live = e.live - c.n
    FROM (SELECT tenant, event_id, count(*) AS n FROM d GROUP BY tenant, event_id) c
    WHERE e.tenant = c.tenant AND e.id = c.event_id
)
SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM a)`), part, c.delivered, c.dead).Scan(&d, &a); err != nil {
				return err
			}
			res.Deliveries += d
			res.Attempts += a
		}
		for part := range slices.Chunk(old, batch) {
			var dropped int
			if err := s.pool.QueryRow(ctx, s.sql(`
WITH u AS (
    UPDATE {schema}.deliveries SET scrubbed = true
    WHERE seq = ANY($1::int8[]) AND phase IS NULL AND NOT scrubbed AND updated_at < $2
    RETURNING seq, tenant, event_id
), a AS (
    UPDATE {schema}.attempts SET response_body = '' WHERE delivery_seq IN (SELECT seq FROM u) AND response_body <> ''
), ev AS (
    UPDATE {schema}.events e SET payload = NULL
    WHERE (e.tenant, e.id) IN (SELECT tenant, event_id FROM u) AND e.payload IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM {schema}.deliveries d
                      WHERE d.event_id = e.id AND d.tenant = e.tenant AND NOT d.scrubbed AND d.seq NOT IN (SELECT seq FROM u))
    RETURNING 1
)
SELECT count(*) FROM ev`), part, c.payloads).Scan(&dropped); err != nil {
				return err
			}
			res.Payloads += dropped
		}
		if done || n < 4*batch {
			return nil
		}
	}
}

// Data-modifying statements in a WITH run to completion whether or not
// the main query reads them.

// The selection of an erasure: every event of tenant $1, or the events of
// record ($2, $3) within it.
const erasedEvents = `e.tenant = $1 AND ($2 = '' OR (e.table_name = $2 AND e.key = $3))`

// Erase erases the payloads and attempt bodies of the selected events and
// cancels their pending deliveries, in one transaction: once it commits,
// no claim can hand out anything of the selection. It locks the selected
// deliveries while it runs, so claims and acknowledgements of them wait
// for it; other records' work goes on.
func (s *Store) Erase(ctx context.Context, e store.Erasure, now time.Time) (store.ErasureResult, error) {
	if err := e.Validate(); err != nil {
		return store.ErasureResult{}, err
	}
	var res store.ErasureResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		res = store.ErasureResult{}
		rows, err := tx.Query(ctx, s.sql(`
UPDATE {schema}.deliveries d SET status = 'canceled', phase = NULL, last_error = $4, updated_at = $5,
    lease = NULL, lease_until = NULL
FROM {schema}.events e
WHERE `+erasedEvents+` AND d.tenant = e.tenant AND d.event_id = e.id AND d.phase IS NOT NULL
RETURNING d.seq`), e.Tenant, e.Table, e.Key, store.ErasedReason, now)
		if err != nil {
			return err
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		res.Canceled = len(seqs)
		if len(seqs) > 0 {
			// A chain that lost its head to the erasure moves its next
			// delivery up (possible when a webhook's table was changed, so
			// one chain holds records of two tables), as after an ack.
			if _, err := tx.Exec(ctx, s.q.promote, seqs); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, s.sql(`
UPDATE {schema}.attempts a SET response_body = ''
FROM {schema}.deliveries d, {schema}.events e
WHERE a.delivery_seq = d.seq AND d.tenant = e.tenant AND d.event_id = e.id AND `+erasedEvents+`
  AND a.response_body <> ''`), e.Tenant, e.Table, e.Key)
		if err != nil {
			return err
		}
		res.Attempts = int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, s.sql(`UPDATE {schema}.events e SET payload = NULL WHERE `+erasedEvents+` AND payload IS NOT NULL`),
			e.Tenant, e.Table, e.Key)
		if err != nil {
			return err
		}
		res.Events = int(tag.RowsAffected())
		return nil
	})
	if err != nil {
		return store.ErasureResult{}, fmt.Errorf("postgres: erase: %w", err)
	}
	return res, nil
}
