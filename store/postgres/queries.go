package postgres

import "strings"

// queries holds every statement with the schema filled in, built once.
type queries struct {
	enqueue, enqueueOne, enqueueMany                         string // for a caller's transaction: NOTIFY on commit
	enqueueQ, enqueueOneQ, enqueueManyQ                      string // for the store's own: no NOTIFY (see Store.wake)
	wake, claimSettings, ackSettings                         string
	pick, pickFast, pickNew, successors, fixedBatches, lease string
	ack, promote, release, replay, replayState               string
	saveWebhook, deleteWebhook, webhook, webhooks            string
	webhooksVersion, delivery, deliveries, attempts          string
}

// deliveryCols are the columns scanDelivery reads, in order.
const deliveryCols = `d.seq, d.id, d.event_id, d.webhook_id, d.tenant, d.key, d.max_batch, d.status,
	d.attempts, d.next_attempt, d.last_error, d.last_code, d.batch_id, d.replayed, d.created_at, d.updated_at`

// quiet drops the in-transaction NOTIFY from an enqueue statement, which
// then reports how many deliveries it made instead.
func quiet(q string, notify string) string {
	i := strings.LastIndex(q, notify)
	if i < 0 {
		panic("postgres: enqueue statement without its NOTIFY")
	}
	return q[:i] + "(SELECT count(*) FROM ds)" + q[i+len(notify):]
}

func buildQueries(sql func(string) string) queries {
	q := buildStatements(sql)
	q.enqueueQ = quiet(q.enqueue, "(SELECT count(*) FROM (SELECT pg_notify($14, $15) FROM ds LIMIT 1) n)")
	q.enqueueOneQ = quiet(q.enqueueOne, "(SELECT count(*) FROM (SELECT pg_notify($14, $15) FROM ds) n)")
	q.enqueueManyQ = quiet(q.enqueueMany, "(SELECT count(*) FROM (SELECT pg_notify($17, $18) FROM ds LIMIT 1) n)")
	return q
}

func buildStatements(sql func(string) string) queries {
	return queries{
		// A wake-up for other processes after the store's own enqueues, in
		// a transaction of its own. Every transaction that notifies holds a
		// database-wide lock from just before its commit until the commit
		// is done; committing this one asynchronously keeps that short (a
		// lost hint only delays work until the next poll).
		wake: `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)`,

		// Settings for the transaction of a claim, and of an ack.
		//
		// Every statement of theirs is written to be answered through
		// indexes. With sequential scans off, their plans are: a plan
		// cached while the tables were nearly empty (a fresh install, a
		// test) would otherwise keep scanning whole tables, once per row
		// in a nested loop, as they grow, until autovacuum next analyzes
		// them. Set for the transaction only, this never reaches the
		// application's own statements on the same connections.
		//
		// A claim also commits without waiting for its WAL to reach the
		// disk. A crash that loses it loses leases and filings only: the
		// deliveries are claimed again (at least once, as after an expired
		// lease), and any later commit that does wait (an ack, an enqueue)
		// flushes the WAL past this one first.
		claimSettings: `SELECT set_config('enable_seqscan', 'off', true), set_config('synchronous_commit', 'off', true)`,
		ackSettings:   `SELECT set_config('enable_seqscan', 'off', true)`,

		// One statement: the event unless it exists (live counts its
		// deliveries, for retention), its deliveries only if the event is
		// new (in the given order, so seq follows it), and a NOTIFY when
		// something was queued.
		enqueue: sql(`
WITH ev AS (
    INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload, created_at, live)
    VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, cardinality($9::text[]))
    ON CONFLICT (tenant, id) DO NOTHING
    RETURNING tenant, id, key
), ds AS (
    INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, max_batch, next_attempt, created_at, updated_at)
    SELECT u.id, u.webhook_id, ev.tenant, ev.key, ev.id, u.max_batch, u.next_attempt, u.created_at, u.created_at
    FROM ev CROSS JOIN unnest($9::text[], $10::text[], $11::int4[], $12::timestamptz[], $13::timestamptz[])
        WITH ORDINALITY AS u(id, webhook_id, max_batch, next_attempt, created_at, ord)
    ORDER BY u.ord
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM ev),
       (SELECT count(*) FROM (SELECT pg_notify($14, $15) FROM ds LIMIT 1) n)`),

		// The same for an event with one delivery, the usual case: plain
		// parameters instead of arrays.
		enqueueOne: sql(`
WITH ev AS (
    INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload, created_at, live)
    VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, 1)
    ON CONFLICT (tenant, id) DO NOTHING
    RETURNING 1
), ds AS (
    INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, max_batch, next_attempt, created_at, updated_at)
    SELECT $9, $10, $1, $5, $2, $11, $12, $13, $13 FROM ev
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM ev),
       (SELECT count(*) FROM (SELECT pg_notify($14, $15) FROM ds) n)`),

		// The same for many events, each (tenant, id) once (the caller
		// drops repeats). The places of the events created come back as
		// text, which database/sql drivers scan as well as pgx. The
		// payloads come as one bytea ($16), each ending where $7 says: an
		// array of them cost the client about a third of its time,
		// encoding each element into a buffer that pgx grows from a few
		// hundred bytes for every statement. Each is still cast to json
		// on its own, so a malformed one fails the statement.
		enqueueMany: sql(`
WITH ins AS (
    INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload, created_at, live)
    SELECT tenant, id, table_name, op, key, time,
           convert_from(substring($16::bytea FROM start + 1 FOR stop - start), 'UTF8')::json, created_at, live
    FROM (SELECT e.*, coalesce(lag(e.stop) OVER (ORDER BY e.ord), 0) AS start
          FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::int4[],
                      $8::timestamptz[], $9::int4[]) WITH ORDINALITY
              AS e(tenant, id, table_name, op, key, time, stop, created_at, live, ord)) e
    ON CONFLICT (tenant, id) DO NOTHING
    RETURNING tenant, id, key
), made AS MATERIALIZED (
    SELECT k.ord, ins.tenant, ins.id, ins.key
    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(tenant, id, ord)
    JOIN ins ON ins.tenant = k.tenant AND ins.id = k.id
), ds AS (
    INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, max_batch, next_attempt, created_at, updated_at)
    SELECT u.id, u.webhook_id, m.tenant, m.key, m.id, u.max_batch, u.next_attempt, u.created_at, u.created_at
    FROM unnest($10::int8[], $11::text[], $12::text[], $13::int4[], $14::timestamptz[], $15::timestamptz[])
        WITH ORDINALITY AS u(ev, id, webhook_id, max_batch, next_attempt, created_at, ord)
    JOIN made m ON m.ord = u.ev
    ORDER BY u.ord
    RETURNING 1
)
SELECT coalesce((SELECT string_agg(ord::text, ',') FROM made), ''),
       (SELECT count(*) FROM (SELECT pg_notify($17, $18) FROM ds LIMIT 1) n)`),

		// Claim candidates: see pickSQL.
		pick:     sql(pickSQL(false)),
		pickFast: sql(fastPickSQL()),
		pickNew:  sql(pickSQL(true)),

		// Lock every pending member of fixed batches, reporting how many
		// each batch has, so a batch partly held elsewhere is left alone.
		fixedBatches: sql(`
WITH m AS (
    SELECT seq, batch_id FROM {schema}.deliveries WHERE batch_id = ANY($1) AND phase IS NOT NULL
), l AS (
    SELECT seq FROM {schema}.deliveries WHERE seq IN (SELECT seq FROM m) AND phase IS NOT NULL
    FOR NO KEY UPDATE SKIP LOCKED
)
SELECT m.batch_id, count(*), count(l.seq) FROM m LEFT JOIN l ON l.seq = m.seq GROUP BY m.batch_id`),

		// The deliveries after each of the heads $1 (in order) in its
		// record's line, new or waiting, in order, up to $3 each; those that
		// may join a batch (due, in none, not leased) are locked if they are
		// as this statement sees them, and say so, so the caller cuts each
		// line at its first row that did not lock.
		successors: sql(`
WITH h AS (
    SELECT array_position($1::int8[], d.seq) AS ord, d.seq, d.webhook_id, d.tenant, d.key
    FROM {schema}.deliveries d WHERE d.seq = ANY($1::int8[])
), m AS MATERIALIZED (
    SELECT h.ord, h.seq AS head, m.seq, m.ver, m.next_attempt <= $2 AND m.batch_id IS NULL AND m.lease IS NULL AS ok
    FROM h CROSS JOIN LATERAL (
        SELECT * FROM (
            (SELECT x.seq, x.xmin AS ver, x.next_attempt, x.batch_id, x.lease FROM {schema}.deliveries x
             WHERE x.webhook_id = h.webhook_id AND x.tenant = h.tenant AND x.key = h.key AND x.phase = 0 AND x.seq > h.seq
             ORDER BY x.seq LIMIT $3)
            UNION ALL
            (SELECT x.seq, x.xmin, x.next_attempt, x.batch_id, x.lease FROM {schema}.deliveries x
             WHERE x.webhook_id = h.webhook_id AND x.tenant = h.tenant AND x.key = h.key AND x.phase = 2 AND x.seq > h.seq
             ORDER BY x.seq LIMIT $3)
        ) x ORDER BY x.seq LIMIT $3
    ) m
), l AS MATERIALIZED (
    SELECT l.seq FROM m CROSS JOIN LATERAL (
        SELECT d.seq FROM {schema}.deliveries d WHERE d.seq = m.seq AND m.ok AND d.xmin = m.ver AND d.phase IN (0, 2)
        FOR NO KEY UPDATE SKIP LOCKED
    ) l
)
SELECT m.ord, m.head, m.seq, l.seq IS NOT NULL FROM m LEFT JOIN l ON l.seq = m.seq ORDER BY m.ord, m.seq`),

		// Lease the chosen rows (fixing new batches) and return them with
		// their events.
		lease: sql(`
UPDATE {schema}.deliveries d
SET lease = u.lease, lease_until = $1, batch_id = coalesce(nullif(u.batch_id, ''), d.batch_id),
    phase = CASE WHEN d.phase = 3 THEN 3 ELSE 1 END
FROM (
    SELECT * FROM unnest($2::int8[], $3::uuid[], $4::text[]) AS u(seq, lease, batch_id)
    UNION ALL
    SELECT f.seq, b.lease, '' FROM unnest($5::text[], $6::uuid[]) AS b(id, lease)
    JOIN {schema}.deliveries f ON f.batch_id = b.id AND f.phase IS NOT NULL
) u, {schema}.events e
WHERE d.seq = u.seq AND e.tenant = d.tenant AND e.id = d.event_id
  AND (d.seq = ANY($2::int8[]) OR d.batch_id = ANY($5::text[]))
RETURNING u.lease::text, ` + deliveryCols + `, e.table_name, e.op, e.time, e.payload::text`),

		// Record outcomes. Only rows still held under the given lease (and
		// still pending) change; the others' leases were lost.
		ack: sql(`
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::int4[], $4::timestamptz[], $5::timestamptz[], $6::text[],
                         $7::bool[], $8::int4[], $9::int8[], $10::jsonb[], $11::text[], $12::text[], $13::int8[],
                         $14::timestamptz[], $15::text[], $16::int8[])
        AS r(lease, message_id, outcome, now, next_attempt, reason, has_attempt, code, latency, headers, body,
             err, version, at, attempt_message_id, anchor)
), t AS (
    -- The rows a lease covers: its anchor (named in the lease token) and,
    -- for a batch, the anchor's batch mates. No index on lease is needed,
    -- which keeps leasing a row a HOT update.
    SELECT r.anchor AS seq, r.* FROM r
    UNION ALL
    SELECT m.seq, r.* FROM r JOIN {schema}.deliveries a ON a.seq = r.anchor AND a.batch_id IS NOT NULL
    JOIN {schema}.deliveries m ON m.batch_id = a.batch_id AND m.seq <> a.seq AND m.phase IS NOT NULL
    WHERE a.seq = ANY($16::int8[])
), upd AS (
    UPDATE {schema}.deliveries d SET
        attempts     = d.attempts + CASE WHEN r.has_attempt THEN 1 ELSE 0 END,
        last_error   = CASE WHEN r.has_attempt THEN r.err WHEN r.reason <> '' THEN r.reason ELSE d.last_error END,
        last_code    = CASE WHEN r.has_attempt THEN r.code ELSE d.last_code END,
        status       = CASE r.outcome WHEN 1 THEN 'delivered' WHEN 2 THEN 'pending' WHEN 4 THEN 'skipped'
                                      WHEN 5 THEN 'pending' WHEN 6 THEN 'canceled' ELSE 'dead' END,
        phase        = CASE WHEN r.outcome IN (2, 5) THEN CASE WHEN d.phase = 3 THEN 3 ELSE 1 END END,
        next_attempt = CASE WHEN r.outcome IN (2, 5) THEN r.next_attempt ELSE d.next_attempt END,
        lease        = NULL,
        lease_until  = NULL,
        updated_at   = r.now
    FROM t r
    WHERE d.seq = r.seq AND d.lease = r.lease AND d.phase IS NOT NULL AND coalesce(d.batch_id, d.event_id) = r.message_id
      AND d.seq = ANY(ARRAY(SELECT seq FROM t))
    RETURNING d.seq, d.attempts, r.lease
), att AS (
    INSERT INTO {schema}.attempts (delivery_seq, number, message_id, at, status_code, latency_ns, request_headers,
                                   response_body, error, webhook_version)
    SELECT u.seq, u.attempts, r.attempt_message_id, r.at, r.code, r.latency, r.headers, r.body, r.err, r.version
    FROM upd u JOIN r ON r.lease = u.lease
    WHERE r.has_attempt
)
SELECT DISTINCT lease FROM upd`),

		// After an ack, give each record whose head the acked messages
		// finished its next head: the earliest waiting delivery, unless the
		// record has a head still (a new delivery under a lease), a new
		// one came before it (that one is then claimed as the head), or a
		// delivery requeued before it is still out (see requeueSQL: it
		// travels beside the head, and its ack promotes). It
		// runs as a statement of its own after the ack's, so its snapshot
		// sees what a claim queued behind the head while the ack waited for
		// the head's share lock. When nothing waits anywhere (the usual
		// case: records seldom change twice while one delivery is out), a
		// single probe of an empty index answers it; a snapshot that sees no
		// waiting delivery at all would find none record by record either.
		promote: sql(`
WITH a AS MATERIALIZED (
    SELECT seq, webhook_id, tenant, key, phase, replayed, batch_id FROM {schema}.deliveries WHERE seq = ANY($1::int8[])
      AND (SELECT true FROM {schema}.deliveries WHERE phase = 2 ORDER BY webhook_id, tenant, key, seq LIMIT 1)
), rows AS (
    SELECT webhook_id, tenant, key, phase, replayed FROM a
    UNION ALL
    SELECT m.webhook_id, m.tenant, m.key, m.phase, m.replayed
    FROM a JOIN {schema}.deliveries m ON m.batch_id = a.batch_id AND m.seq <> a.seq
    WHERE a.batch_id IS NOT NULL
), c AS (
    SELECT DISTINCT webhook_id AS w, tenant AS t, key AS k FROM rows WHERE phase IS NULL AND NOT replayed
)
UPDATE {schema}.deliveries d SET phase = 1
WHERE d.phase = 2 AND d.seq = ANY(ARRAY(
    SELECT n.seq FROM c CROSS JOIN LATERAL (
        SELECT x.seq FROM {schema}.deliveries x
        WHERE x.webhook_id = c.w AND x.tenant = c.t AND x.key = c.k AND x.phase = 2
        ORDER BY x.seq LIMIT 1
    ) n
    WHERE NOT EXISTS (SELECT 1 FROM {schema}.deliveries h
                      WHERE h.webhook_id = c.w AND h.tenant = c.t AND h.key = c.k AND h.phase = 1)
      AND NOT EXISTS (SELECT 1 FROM {schema}.deliveries f
                      WHERE f.webhook_id = c.w AND f.tenant = c.t AND f.key = c.k AND f.phase = 0
                        AND (f.seq < n.seq OR f.lease IS NOT NULL))
      AND NOT EXISTS (SELECT 1 FROM {schema}.deliveries r
                      WHERE r.webhook_id = c.w AND r.tenant = c.t AND r.key = c.k AND r.phase = 3
                        AND NOT r.replayed AND r.seq < n.seq)))`),

		release: sql(`
WITH l AS (
    SELECT * FROM unnest($1::uuid[], $4::int8[]) AS l(lease, anchor)
), t AS (
    SELECT l.anchor AS seq, l.lease FROM l
    UNION ALL
    SELECT m.seq, l.lease FROM l JOIN {schema}.deliveries a ON a.seq = l.anchor AND a.batch_id IS NOT NULL
    JOIN {schema}.deliveries m ON m.batch_id = a.batch_id AND m.seq <> a.seq AND m.phase IS NOT NULL
    WHERE a.seq = ANY($4::int8[])
), r AS (
    UPDATE {schema}.deliveries d SET lease = NULL, lease_until = NULL, phase = CASE WHEN d.phase = 0 THEN 1 ELSE d.phase END
    FROM t WHERE d.seq = t.seq AND d.lease = t.lease AND d.phase IS NOT NULL AND d.seq = ANY(ARRAY(SELECT seq FROM t))
    RETURNING 1
)
SELECT (SELECT count(*) FROM (SELECT pg_notify($2, $3) FROM r LIMIT 1) n)`),

		replay: sql(`
UPDATE {schema}.deliveries
SET status = 'pending', phase = 3, attempts = 0, replayed = true, next_attempt = $2, updated_at = $2, scrubbed = false,
    lease = NULL, lease_until = NULL, batch_id = CASE WHEN max_batch > 1 THEN id END
WHERE id = $1 AND phase IS NULL
  AND EXISTS (SELECT 1 FROM {schema}.events e
              WHERE e.tenant = deliveries.tenant AND e.id = deliveries.event_id AND e.payload IS NOT NULL)
RETURNING pg_notify($3, $4) IS NULL`),

		replayState: sql(`SELECT d.phase IS NOT NULL, e.payload IS NULL FROM {schema}.deliveries d
LEFT JOIN {schema}.events e ON e.tenant = d.tenant AND e.id = d.event_id WHERE d.id = $1`),

		// Save a definition: unconditionally ($8 = 0), only if new ($8 =
		// -1), or only if stored at version $8. The meta row is locked
		// first and moved only when something was saved, so versions stay
		// in commit order and a refused save moves nothing.
		saveWebhook: sql(`
WITH m AS (
    SELECT webhooks_version + 1 AS next FROM {schema}.meta FOR UPDATE
), s AS (
    INSERT INTO {schema}.webhooks AS w (id, tenant, disabled, definition, version, created_at, updated_at)
    SELECT $1, $2, $3, $4::jsonb, m.next, $5, $5 FROM m WHERE $8::int8 <= 0
    ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, disabled = excluded.disabled,
        definition = excluded.definition, version = excluded.version, updated_at = excluded.updated_at
    WHERE $8::int8 = 0
    RETURNING w.version, w.created_at, w.updated_at
), u AS (
    UPDATE {schema}.webhooks w SET tenant = $2, disabled = $3, definition = $4::jsonb, version = m.next, updated_at = $5
    FROM m WHERE w.id = $1 AND $8::int8 > 0 AND w.version = $8::int8
    RETURNING w.version, w.created_at, w.updated_at
), r AS (
    SELECT * FROM s UNION ALL SELECT * FROM u
), v AS (
    UPDATE {schema}.meta SET webhooks_version = (SELECT next FROM m) WHERE EXISTS (SELECT 1 FROM r) RETURNING 1
)
SELECT r.version, r.created_at, r.updated_at, pg_notify($6, $7) IS NULL FROM r`),

		// Delete a definition, move the version and cancel its pending
		// deliveries, leased ones included: their outcomes then find no
		// lease to record under.
		deleteWebhook: sql(`
WITH del AS (
    DELETE FROM {schema}.webhooks WHERE id = $1 RETURNING id
), v AS (
    UPDATE {schema}.meta SET webhooks_version = webhooks_version + 1 WHERE EXISTS (SELECT 1 FROM del) RETURNING 1
), c AS (
    UPDATE {schema}.deliveries SET status = 'canceled', phase = NULL, last_error = 'webhook deleted',
        updated_at = $2, lease = NULL, lease_until = NULL
    WHERE webhook_id = $1 AND phase IS NOT NULL AND EXISTS (SELECT 1 FROM del)
    RETURNING 1
)
SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM v), (SELECT count(*) FROM c),
       (SELECT count(*) FROM (SELECT pg_notify($3, $4) FROM del) n)`),

		webhook:         sql(`SELECT id, tenant, disabled, version, definition::text, created_at, updated_at FROM {schema}.webhooks WHERE id = $1`),
		webhooks:        sql(`SELECT id, tenant, disabled, version, definition::text, created_at, updated_at FROM {schema}.webhooks ORDER BY id`),
		webhooksVersion: sql(`SELECT webhooks_version FROM {schema}.meta`),
		delivery:        sql(`SELECT ` + deliveryCols + ` FROM {schema}.deliveries d WHERE d.id = $1`),
		deliveries: sql(`
SELECT ` + deliveryCols + ` FROM {schema}.deliveries d
WHERE d.seq > $1
  AND ($2 = '' OR d.webhook_id = $2)
  AND ($3 = '' OR d.event_id = $3)
  AND ($4 = '' OR d.status = $4)
  AND ($5 = '' OR d.tenant = $5)
  AND ($6 = '' OR d.key = $6)
  AND ($7::timestamptz IS NULL OR d.created_at >= $7)
  AND ($8::timestamptz IS NULL OR d.created_at < $8)
ORDER BY d.seq
LIMIT $9`),
		attempts: sql(`
SELECT a.number, a.message_id, a.at, a.status_code, a.latency_ns, a.request_headers, a.response_body, a.error, a.webhook_version
FROM {schema}.deliveries d JOIN {schema}.attempts a ON a.delivery_seq = d.seq
WHERE d.id = $1 ORDER BY a.id`),
	}
}
