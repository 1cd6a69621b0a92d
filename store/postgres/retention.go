package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhr/herald/store"
)

var _ store.Eraser = (*Store)(nil)

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
