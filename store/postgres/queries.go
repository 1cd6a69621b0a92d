package postgres

// queries holds every statement with the schema filled in, built once.
type queries struct {
	enqueue, enqueueMany                            string
	file, candidates, fixedBatches, gather, lease   string
	ack, promote, release, replay, replayState      string
	saveWebhook, deleteWebhook, webhook, webhooks   string
	webhooksVersion, delivery, deliveries, attempts string
}

// deliveryCols are the columns scanDelivery reads, in order.
const deliveryCols = `d.seq, d.id, d.event_id, d.webhook_id, d.tenant, d.key, d.max_batch, d.status,
	d.attempts, d.next_attempt, d.last_error, d.last_code, d.batch_id, d.replayed, d.created_at, d.updated_at`

func buildQueries(sql func(string) string) queries {
	return queries{
		// One statement: the event unless it exists, its deliveries only if
		// the event is new (in the given order, so seq follows it), and a
		// NOTIFY when something was queued.
		enqueue: sql(`
WITH ev AS (
    INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload, created_at, live)
    VALUES ($1, $2, $3, $4, $5, $6, $7::json, $15, cardinality($8::text[]))
    ON CONFLICT (tenant, id) DO NOTHING
    RETURNING tenant, id, key
), ds AS (
    INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, max_batch, next_attempt, created_at, updated_at)
    SELECT u.id, u.webhook_id, ev.tenant, ev.key, ev.id, u.max_batch, u.next_attempt, u.created_at, u.created_at
    FROM ev CROSS JOIN unnest($8::text[], $9::text[], $10::int4[], $11::timestamptz[], $12::timestamptz[])
        WITH ORDINALITY AS u(id, webhook_id, max_batch, next_attempt, created_at, ord)
    ORDER BY u.ord
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM ev),
       (SELECT count(*) FROM (SELECT pg_notify($13, $14) FROM ds LIMIT 1) n)`),

		// The same for many events. An id repeated within the call counts
		// once, at its first place. The places of the events created come
		// back as text, which database/sql drivers scan as well as pgx.
		enqueueMany: sql(`
WITH e AS (
    SELECT e.*, row_number() OVER (PARTITION BY e.tenant, e.id ORDER BY e.ord) = 1 AS first
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[],
                $16::timestamptz[], $17::int4[])
        WITH ORDINALITY AS e(tenant, id, table_name, op, key, time, payload, created_at, live, ord)
), ins AS (
    INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload, created_at, live)
    SELECT tenant, id, table_name, op, key, time, payload::json, created_at, live FROM e WHERE first ORDER BY ord
    ON CONFLICT (tenant, id) DO NOTHING
    RETURNING tenant, id
), made AS (
    SELECT e.ord, e.tenant, e.id, e.key FROM e JOIN ins ON ins.tenant = e.tenant AND ins.id = e.id WHERE e.first
), ds AS (
    INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, max_batch, next_attempt, created_at, updated_at)
    SELECT u.id, u.webhook_id, m.tenant, m.key, m.id, u.max_batch, u.next_attempt, u.created_at, u.created_at
    FROM unnest($8::int8[], $9::text[], $10::text[], $11::int4[], $12::timestamptz[], $13::timestamptz[])
        WITH ORDINALITY AS u(ev, id, webhook_id, max_batch, next_attempt, created_at, ord)
    JOIN made m ON m.ord = u.ev
    ORDER BY u.ord
    RETURNING 1
)
SELECT coalesce((SELECT string_agg(ord::text, ',' ORDER BY ord) FROM made), ''),
       (SELECT count(*) FROM (SELECT pg_notify($14, $15) FROM ds LIMIT 1) n)`),

		// File new deliveries into their chains: see file_new in
		// migrations/0001_init.up.sql.
		file: sql(`SELECT {schema}.file_new($1, $2)`),
		// Claim candidates: the webhooks with heads or replays (a skip scan
		// of the claim index), then each enabled webhook's earliest due,
		// unleased ones, ranked so a claim takes turns across webhooks.
		// The chosen rows are locked; rows another claimer holds are
		// skipped.
		candidates: sql(`
WITH RECURSIVE hooks(webhook_id) AS (
    (SELECT webhook_id FROM {schema}.deliveries WHERE phase IN (1, 3) ORDER BY webhook_id LIMIT 1)
    UNION ALL
    SELECT (SELECT d.webhook_id FROM {schema}.deliveries d
            WHERE d.phase IN (1, 3) AND d.webhook_id > h.webhook_id ORDER BY d.webhook_id LIMIT 1)
    FROM hooks h WHERE h.webhook_id IS NOT NULL
), due AS (
    SELECT c.seq, c.next_attempt, row_number() OVER (PARTITION BY h.webhook_id ORDER BY c.next_attempt, c.seq) AS turn
    FROM hooks h
    LEFT JOIN {schema}.webhooks w ON w.id = h.webhook_id
    CROSS JOIN LATERAL (
        SELECT d.seq, d.next_attempt FROM {schema}.deliveries d
        WHERE d.webhook_id = h.webhook_id AND d.phase IN (1, 3) AND d.next_attempt <= $1
          AND (d.lease_until IS NULL OR d.lease_until <= $1)
        ORDER BY d.next_attempt, d.seq LIMIT $3
    ) c
    WHERE h.webhook_id IS NOT NULL AND NOT coalesce(w.disabled, false)
), pick AS (
    SELECT seq, turn, next_attempt FROM due ORDER BY turn, next_attempt, seq LIMIT $2
)
SELECT d.seq, d.webhook_id, d.max_batch, d.batch_id
FROM {schema}.deliveries d JOIN pick p ON p.seq = d.seq
WHERE d.phase IN (1, 3) AND d.next_attempt <= $1 AND (d.lease_until IS NULL OR d.lease_until <= $1)
ORDER BY p.turn, p.next_attempt, p.seq
FOR NO KEY UPDATE OF d SKIP LOCKED`),

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

		// Gather a new batch: the leader, then further due heads of its
		// webhook not yet in a batch, each followed by the due successors
		// of its chain, up to $4 rows; lock them and say which were
		// locked, so the caller cuts each chain at its first busy row.
		gather: sql(`
WITH heads AS (
    SELECT 0 AS ord, seq, tenant, key FROM {schema}.deliveries WHERE seq = $1
    UNION ALL
    (SELECT row_number() OVER (ORDER BY next_attempt, seq), seq, tenant, key
     FROM {schema}.deliveries
     WHERE webhook_id = $2 AND phase = 1 AND batch_id IS NULL AND next_attempt <= $3
       AND (lease_until IS NULL OR lease_until <= $3) AND seq <> ALL($5::int8[])
     ORDER BY next_attempt, seq LIMIT $4 - 1)
), members AS (
    SELECT h.ord, h.seq AS head, m.seq, m.next_attempt <= $3 AND m.batch_id IS NULL AND m.lease_until IS NULL AS ok
    FROM heads h CROSS JOIN LATERAL (
        SELECT seq, next_attempt, batch_id, lease_until FROM {schema}.deliveries m
        WHERE m.webhook_id = $2 AND m.tenant = h.tenant AND m.key = h.key AND m.phase IN (1, 2) AND m.seq >= h.seq
        ORDER BY m.seq LIMIT $4
    ) m
), prefix AS (
    SELECT ord, head, seq, bool_and(ok OR seq = head) OVER (PARTITION BY ord ORDER BY seq) AS ok FROM members
), cand AS (
    SELECT ord, head, seq FROM (
        SELECT ord, head, seq, row_number() OVER (ORDER BY ord, seq) AS n FROM prefix WHERE ok
    ) x WHERE n <= $4
), l AS (
    SELECT seq FROM {schema}.deliveries
    WHERE seq IN (SELECT seq FROM cand) AND phase IN (1, 2) AND batch_id IS NULL
    FOR NO KEY UPDATE SKIP LOCKED
)
SELECT c.ord, c.head, c.seq, l.seq IS NOT NULL FROM cand c LEFT JOIN l ON l.seq = c.seq ORDER BY c.ord, c.seq`),

		// Lease the chosen rows (fixing new batches) and return them with
		// their events.
		lease: sql(`
UPDATE {schema}.deliveries d
SET lease = u.lease, lease_until = $1, batch_id = coalesce(nullif(u.batch_id, ''), d.batch_id)
FROM (
    SELECT * FROM unnest($2::int8[], $3::uuid[], $4::text[]) AS u(seq, lease, batch_id)
    UNION ALL
    SELECT f.seq, b.lease, '' FROM unnest($5::text[], $6::uuid[]) AS b(id, lease)
    JOIN {schema}.deliveries f ON f.batch_id = b.id AND f.phase IS NOT NULL
) u, {schema}.events e
WHERE d.seq = u.seq AND e.tenant = d.tenant AND e.id = d.event_id
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
    SELECT a.seq, r.* FROM r JOIN {schema}.deliveries a ON a.seq = r.anchor
    UNION ALL
    SELECT m.seq, r.* FROM r JOIN {schema}.deliveries a ON a.seq = r.anchor
    JOIN {schema}.deliveries m ON m.batch_id = a.batch_id AND m.seq <> a.seq AND m.phase IS NOT NULL
), upd AS (
    UPDATE {schema}.deliveries d SET
        attempts     = d.attempts + CASE WHEN r.has_attempt THEN 1 ELSE 0 END,
        last_error   = CASE WHEN r.has_attempt THEN r.err WHEN r.reason <> '' THEN r.reason ELSE d.last_error END,
        last_code    = CASE WHEN r.has_attempt THEN r.code ELSE d.last_code END,
        status       = CASE r.outcome WHEN 1 THEN 'delivered' WHEN 2 THEN 'pending' WHEN 4 THEN 'skipped'
                                      WHEN 5 THEN 'pending' WHEN 6 THEN 'canceled' ELSE 'dead' END,
        phase        = CASE WHEN r.outcome IN (2, 5) THEN d.phase END,
        next_attempt = CASE WHEN r.outcome IN (2, 5) THEN r.next_attempt ELSE d.next_attempt END,
        lease        = NULL,
        lease_until  = NULL,
        updated_at   = r.now
    FROM t r
    WHERE d.seq = r.seq AND d.lease = r.lease AND d.phase IS NOT NULL AND coalesce(d.batch_id, d.event_id) = r.message_id
    RETURNING d.seq, d.attempts, r.lease
), att AS (
    INSERT INTO {schema}.attempts (delivery_seq, number, message_id, at, status_code, latency_ns, request_headers,
                                   response_body, error, webhook_version)
    SELECT u.seq, u.attempts, r.attempt_message_id, r.at, r.code, r.latency, r.headers, r.body, r.err, r.version
    FROM upd u JOIN r ON r.lease = u.lease
    WHERE r.has_attempt
)
SELECT DISTINCT lease FROM upd`),

		// After an ack, move the next waiting delivery of each chain the
		// acked messages finished up to head. It runs as a statement of its
		// own after the ack's, so its snapshot sees what the filer queued
		// behind a tail while the ack waited for that tail's share lock.
		promote: sql(`
WITH l AS (
    SELECT unnest($1::int8[]) AS anchor
), rows AS (
    SELECT a.webhook_id, a.tenant, a.key, a.phase, a.replayed FROM l JOIN {schema}.deliveries a ON a.seq = l.anchor
    UNION ALL
    SELECT m.webhook_id, m.tenant, m.key, m.phase, m.replayed FROM l JOIN {schema}.deliveries a ON a.seq = l.anchor
    JOIN {schema}.deliveries m ON m.batch_id = a.batch_id AND m.seq <> a.seq
), c AS (
    SELECT DISTINCT webhook_id AS w, tenant AS t, key AS k FROM rows WHERE phase IS NULL AND NOT replayed
)
UPDATE {schema}.deliveries d SET phase = 1
FROM (
    SELECT (SELECT w.seq FROM {schema}.deliveries w
            WHERE w.webhook_id = c.w AND w.tenant = c.t AND w.key = c.k AND w.phase = 2
            ORDER BY w.seq LIMIT 1) AS seq
    FROM c
    WHERE NOT EXISTS (SELECT 1 FROM {schema}.deliveries h
                      WHERE h.webhook_id = c.w AND h.tenant = c.t AND h.key = c.k AND h.phase = 1)
) p
WHERE d.seq = p.seq AND d.phase = 2`),

		release: sql(`
WITH l AS (
    SELECT * FROM unnest($1::uuid[], $4::int8[]) AS l(lease, anchor)
), t AS (
    SELECT a.seq, l.lease FROM l JOIN {schema}.deliveries a ON a.seq = l.anchor
    UNION ALL
    SELECT m.seq, l.lease FROM l JOIN {schema}.deliveries a ON a.seq = l.anchor
    JOIN {schema}.deliveries m ON m.batch_id = a.batch_id AND m.seq <> a.seq AND m.phase IS NOT NULL
), r AS (
    UPDATE {schema}.deliveries d SET lease = NULL, lease_until = NULL
    FROM t WHERE d.seq = t.seq AND d.lease = t.lease AND d.phase IS NOT NULL
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
