package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldhr/herald/store"
)

var _ store.Requeuer = (*Store)(nil)

// requeueLockSQL takes a transaction-scoped advisory lock on the record
// line of each delivery named in $1, in one order, so that two Requeue
// calls on one line take turns and the second sees what the first did.
// $2 seeds the hash with the schema, so stores in other schemas never
// wait for each other.
const requeueLockSQL = `
SELECT count(*) FROM (
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT hashtextextended(d.webhook_id || chr(1) || d.tenant || chr(1) || d.key, $2) AS k
        FROM {schema}.deliveries d WHERE d.id = ANY($1::text[])
    ) x ORDER BY k
) l`

// requeueSQL makes the finished deliveries named in $1 pending again at
// $3, in their record lines. $2 holds a fresh batch id for each id of $1;
// $4 and $5 are the channel and payload of the NOTIFY sent when something
// was requeued.
//
// It locks what its decision reads without waiting (SKIP LOCKED): the
// deliveries to requeue (finished, their webhook still there, their
// payload neither purged nor erased) and every pending delivery of their
// lines, at their latest versions. Should any of these rows be held by
// someone else (a claim or an ack at work on it), it changes nothing and
// returns the seqs of those rows, for the caller to wait for them, holding
// nothing, and try again. So it never waits for a lock while it holds one,
// and cannot deadlock with acks, which lock their rows in no particular
// order; acks and claims that reach the rows it locked wait for it, and
// then see what it did.
//
// For each line, the earliest requeued delivery becomes:
//
//   - waiting (2), when a pending delivery of the line comes before it: it
//     moves up in its turn, after the ones before it finish;
//   - new (0), when it comes first and no delivery of the line is leased
//     or in a fixed batch: a claim then takes it as the line's earliest new
//     delivery. The line's heads wait behind it again (1 becomes 2), and
//     the line's other new deliveries are rewritten as they are, so that a
//     claim that read the line before this commit fails to lock them and
//     leaves the line alone;
//   - replayed (3) but not marked so, when it comes first and a later
//     delivery of the line is leased or in a fixed batch: that one cannot
//     be held back, and a line sends nothing but its head, so this one goes
//     out on its own, at once. For a batching webhook it is a batch of one
//     under a fresh id, so that no batch gathered around it reaches past
//     the head. When it finishes, the ack moves the line's next waiting
//     delivery up, as for a head.
//
// The other requeued deliveries of the line wait (2) behind it.
const requeueSQL = `
WITH cand AS MATERIALIZED (
    SELECT d.seq, d.id FROM {schema}.deliveries d
    WHERE d.id = ANY($1::text[]) AND d.phase IS NULL
      AND EXISTS (SELECT 1 FROM {schema}.webhooks w WHERE w.id = d.webhook_id)
      AND EXISTS (SELECT 1 FROM {schema}.events e WHERE e.tenant = d.tenant AND e.id = d.event_id AND e.payload IS NOT NULL)
), t AS MATERIALIZED (
    SELECT d.seq, d.id, d.webhook_id, d.tenant, d.key, d.max_batch, array_position($1::text[], d.id) AS pos
    FROM {schema}.deliveries d
    WHERE d.seq = ANY(ARRAY(SELECT seq FROM cand)) AND d.phase IS NULL
    ORDER BY d.seq
    FOR NO KEY UPDATE SKIP LOCKED
), snap AS MATERIALIZED (
    SELECT l.webhook_id, l.tenant, l.key, x.seq
    FROM (SELECT DISTINCT webhook_id, tenant, key FROM t) l CROSS JOIN LATERAL (
        SELECT x.seq FROM {schema}.deliveries x
        WHERE x.webhook_id = l.webhook_id AND x.tenant = l.tenant AND x.key = l.key AND x.phase = 0
        UNION ALL
        SELECT x.seq FROM {schema}.deliveries x
        WHERE x.webhook_id = l.webhook_id AND x.tenant = l.tenant AND x.key = l.key AND x.phase = 1
        UNION ALL
        SELECT x.seq FROM {schema}.deliveries x
        WHERE x.webhook_id = l.webhook_id AND x.tenant = l.tenant AND x.key = l.key AND x.phase = 2
    ) x
), got AS MATERIALIZED (
    SELECT d.seq, d.webhook_id, d.tenant, d.key, d.phase, d.lease IS NOT NULL AS leased, d.batch_id IS NOT NULL AS batched
    FROM {schema}.deliveries d
    WHERE d.seq = ANY(ARRAY(SELECT seq FROM snap))
    ORDER BY d.seq
    FOR NO KEY UPDATE SKIP LOCKED
), busy AS MATERIALIZED (
    SELECT s.seq FROM snap s WHERE s.seq NOT IN (SELECT seq FROM got)
), stop AS MATERIALIZED (
    -- Anything held by someone else: then nothing is changed, and the
    -- caller tries again once it is free.
    SELECT EXISTS (SELECT 1 FROM busy) OR EXISTS (SELECT 1 FROM cand WHERE seq NOT IN (SELECT seq FROM t)) AS stop
), lined AS MATERIALIZED (
    -- Every row of the lines, with what its line's decision needs.
    SELECT r.*,
        min(r.seq) FILTER (WHERE r.target) OVER w AS first,
        coalesce(min(r.seq) FILTER (WHERE NOT r.target AND r.phase >= 0) OVER w < min(r.seq) FILTER (WHERE r.target) OVER w,
                 false) AS behind,
        coalesce(bool_or(r.leased OR (r.phase = 1 AND r.batched)) FILTER (WHERE NOT r.target) OVER w, false) AS held
    FROM (
        SELECT seq, id, webhook_id, tenant, key, true AS target, NULL::smallint AS phase, false AS leased, false AS batched,
               max_batch, pos FROM t
        UNION ALL
        SELECT seq, NULL, webhook_id, tenant, key, false, phase, leased, batched, 0, NULL FROM got WHERE phase IS NOT NULL
    ) r
    WINDOW w AS (PARTITION BY r.webhook_id, r.tenant, r.key)
), plan AS MATERIALIZED (
    -- The requeued rows' new phases, and the line's rows a requeued one
    -- now leads: its heads move back (2); its new ones are rewritten as
    -- they are.
    SELECT seq, target, phase AS was, CASE
        WHEN NOT target OR seq <> first OR behind THEN 2
        WHEN held THEN 3
        ELSE 0 END AS phase,
        CASE WHEN target AND seq = first AND NOT behind AND held AND max_batch > 1 THEN ($2::text[])[pos] END AS batch_id
    FROM lined
    WHERE NOT (SELECT stop FROM stop) AND (target OR (phase IN (0, 1) AND NOT behind AND NOT held))
), req AS (
    UPDATE {schema}.deliveries d SET status = 'pending', phase = p.phase, attempts = 0, replayed = false,
        next_attempt = $3, updated_at = $3, scrubbed = false, lease = NULL, lease_until = NULL, batch_id = p.batch_id
    FROM plan p WHERE p.target AND d.seq = p.seq
    RETURNING d.seq
), moved AS (
    UPDATE {schema}.deliveries d SET phase = CASE WHEN p.was = 1 THEN 2 ELSE p.was END
    FROM plan p WHERE NOT p.target AND d.seq = p.seq
    RETURNING 1
)
SELECT (SELECT count(*) FROM req),
       ARRAY(SELECT seq FROM busy UNION SELECT seq FROM cand WHERE seq NOT IN (SELECT seq FROM t)),
       (SELECT count(*) FROM moved),
       (SELECT count(*) FROM (SELECT pg_notify($4, $5) FROM req LIMIT 1) n)`

// requeueWaitSQL waits until nobody holds the row $1, and holds it only
// for the moment of the statement.
const requeueWaitSQL = `SELECT count(*) FROM (SELECT 1 FROM {schema}.deliveries WHERE seq = $1 FOR NO KEY UPDATE) x`

// Requeue makes finished deliveries pending again inside their record
// lines (see store.Requeuer), in one transaction sent in one round trip.
//
// The transaction changes nothing if a row it must read is held by a claim
// or an ack at that moment (see requeueSQL); Requeue then waits until
// those rows are free, holding nothing, and runs it again. Deliveries
// whose payload was purged or erased are skipped, as Replay refuses them.
//
// A requeued delivery that must go out beside a later delivery already in
// flight (or fixed in a batch awaiting its retry) travels on its own, as a
// replay does, though not marked as one; the line's deliveries waiting
// behind the one in flight move up when that one finishes, even if this
// one has not finished yet.
func (s *Store) Requeue(ctx context.Context, ids []string, now time.Time) (int, error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, busy, err := s.requeueOnce(ctx, ids, now)
		if err != nil {
			return 0, fmt.Errorf("postgres: requeue: %w", err)
		}
		if len(busy) == 0 {
			return n, nil
		}
		for _, seq := range busy {
			var x int64
			if err := s.pool.QueryRow(ctx, s.sql(requeueWaitSQL), seq).Scan(&x); err != nil {
				return 0, fmt.Errorf("postgres: requeue: %w", err)
			}
		}
	}
}

// requeueOnce runs the transaction once: it returns how many deliveries it
// requeued, or the rows it found held by others (then it changed nothing).
func (s *Store) requeueOnce(ctx context.Context, ids []string, now time.Time) (int, []int64, error) {
	batchIDs := make([]string, len(ids))
	for i := range batchIDs {
		batchIDs[i] = uuid.Must(uuid.NewV7()).String()
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue(`SELECT set_config('enable_seqscan', 'off', true)`)
	b.Queue(s.sql(requeueLockSQL), ids, lockKey("requeue", s.schema))
	b.Queue(s.sql(requeueSQL), ids, batchIDs, now, notifyChannel, s.schema)
	b.Queue("COMMIT")
	var (
		n, moved, notified int64
		busy               []int64
	)
	br := s.pool.SendBatch(ctx, b)
	err := func() error {
		for range 3 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if err := br.QueryRow().Scan(&n, &busy, &moved, &notified); err != nil {
			return err
		}
		tag, err := br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("the requeue's transaction ended with %s", tag)
		}
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, nil, err
	}
	return int(n), busy, nil
}
