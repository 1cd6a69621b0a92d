package postgres

import "strings"

// pickSQL builds the statement a claim starts with. It finds due
// deliveries, decides for each record they belong to what may happen to
// it, locks the rows that decision read, files the new deliveries that
// must wait, and leases what it can send on its own.
//
// A record's line (webhook, tenant, key) holds its pending deliveries
// that are not replays: heads (phase 1), new ones (0) and waiting ones
// (2). A line with a head sends nothing but the head (one delivery, or one
// batch's members) until the head is finished; its new deliveries are
// filed behind it (they become waiting, up to $5 per line and pick). A
// line without a head sends its earliest new delivery, which the lease
// makes its head. A replay (3) stands alone.
//
// Several claimers run this at once, each with its own snapshot, and none
// waits for another. What keeps two of them from sending two deliveries
// of one line at once is that each locks (FOR NO KEY UPDATE SKIP LOCKED)
// every row its decision read, and only if the row is still the version
// it read (same xmin); if one row fails, it leaves the line alone:
//
//   - a line without a head: every new delivery. Snapshots only grow, so
//     of two claimers the one that saw less saw a subset, earliest
//     included, and the other locks that row too: one of them fails.
//   - a line with a head: the head and the deliveries filed behind it. A
//     claimer that saw no head there read, as new, the row that has since
//     become the head, so its lock on that row fails.
//
// An ack that finishes a head updates it, which waits for these locks,
// and then promotes in a statement of its own: it sees every delivery
// filed behind the head.
//
// Parameters: $1 now, $2 how many lines to examine, $3 how many due
// deliveries to read per webhook, $4 seqs to leave out, $5 how many new
// deliveries one line files behind its head, $6 how many lines to claim.
//
// Without newOnly, $7 is the expiry of the leases given here: a line that
// ends in a single delivery of a webhook that does not batch (or in a
// replay of one) is leased by this statement; the rows it returns with an
// empty lease (batches) are the caller's to lease.
// With newOnly the statement serves batching: nothing is leased, $7 names
// the webhook, and only lines whose next delivery is new or an unbatched
// head are claimed.
//
// Rows, in order of the lines' ranks: without newOnly, the line's rank,
// seq, the number of deliveries filed, the lease ("" for rows left to the
// caller), then the delivery's columns (deliveryCols) and its event's:
// whole for rows leased here, only webhook_id, max_batch and batch_id for
// the others. With newOnly: rank, seq, webhook_id, max_batch, batch_id and
// the count. A row of rank 0 carries the count alone.
// allHooks lists the webhooks that have pending work, one index probe
// each (a loose index scan).
const allHooks = `
WITH RECURSIVE hooks(webhook_id) AS (
    (SELECT webhook_id FROM {schema}.deliveries WHERE phase IN (0, 1, 3) ORDER BY webhook_id LIMIT 1)
    UNION ALL
    SELECT (SELECT d.webhook_id FROM {schema}.deliveries d
            WHERE d.phase IN (0, 1, 3) AND d.webhook_id > h.webhook_id ORDER BY d.webhook_id LIMIT 1)
    FROM hooks h WHERE h.webhook_id IS NOT NULL
)`

// dueCTE reads each enabled webhook's earliest due deliveries ($1 now, $3
// per webhook, leaving out the seqs $4), locking them as it goes.
const dueCTE = `-- Each enabled webhook's earliest due deliveries that nobody holds, in
-- turns, so one webhook's backlog cannot starve another's. They are
-- locked as they are read, so claimers running at once read past each
-- other's rows instead of all reaching for the same ones.
due AS MATERIALIZED (
    SELECT c.seq, c.lver, c.webhook_id, c.tenant, c.key, c.phase, c.next_attempt, c.max_batch, c.batch_id,
           row_number() OVER (PARTITION BY c.webhook_id ORDER BY c.next_attempt, c.seq) AS turn
    FROM hooks h
    LEFT JOIN {schema}.webhooks w ON w.id = h.webhook_id
    CROSS JOIN LATERAL (
        SELECT d.seq, d.xmin AS lver, d.webhook_id, d.tenant, d.key, d.phase, d.next_attempt, d.max_batch, d.batch_id
        FROM {schema}.deliveries d
        WHERE d.webhook_id = h.webhook_id AND <<due_filter>> AND d.next_attempt <= $1
          AND (d.lease_until IS NULL OR d.lease_until <= $1) AND d.seq <> ALL($4::int8[])
        ORDER BY d.next_attempt, d.seq LIMIT $3
        FOR NO KEY UPDATE SKIP LOCKED
    ) c
    WHERE h.webhook_id IS NOT NULL AND NOT coalesce(w.disabled, false)
),
`

func pickSQL(newOnly bool) string {
	hooks := allHooks
	dueFilter, claimable := "d.phase IN (0, 1, 3)", "true"
	if newOnly {
		hooks = `
WITH hooks(webhook_id) AS (SELECT $7::text)`
		dueFilter = "(d.phase = 0 OR (d.phase = 1 AND d.batch_id IS NULL))"
		claimable = "f.batch_id IS NULL AND f.phase <> 3"
	}
	q := hooks + `,
<<due>>-- One delivery per line (a replay is a line of its own), best first.
pick AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY turn, next_attempt, seq) AS ord, seq, webhook_id, tenant, key, phase
    FROM (SELECT DISTINCT ON (webhook_id, tenant, key, CASE WHEN phase = 3 THEN seq END) *
          FROM due ORDER BY webhook_id, tenant, key, CASE WHEN phase = 3 THEN seq END, turn, seq) x
    ORDER BY turn, next_attempt, seq LIMIT $2
),
-- What each line's decision reads: its heads, its new deliveries (up to
-- $5 + 1 here), or the replay itself. A head is a delivery of phase 1, or
-- a new one under a lease (a claim leases a lone delivery without
-- changing its phase, so the update touches no index). Heads of phase 1
-- are looked for only when the snapshot holds any (one probe of a small
-- index): while every record's deliveries succeed, none does.
front0 AS MATERIALIZED (
    SELECT p.ord, f.seq, f.xmin AS ver, f.phase, f.lease IS NOT NULL AS leased, f.webhook_id, f.max_batch, f.batch_id,
           f.next_attempt <= $1 AND (f.lease_until IS NULL OR f.lease_until <= $1) AS ready
    FROM pick p CROSS JOIN LATERAL (
        SELECT x.seq, x.xmin, x.phase, x.lease, x.webhook_id, x.max_batch, x.batch_id, x.next_attempt, x.lease_until
        FROM {schema}.deliveries x WHERE p.phase = 3 AND x.seq = p.seq AND x.phase = 3
        UNION ALL
        SELECT x.seq, x.xmin, x.phase, x.lease, x.webhook_id, x.max_batch, x.batch_id, x.next_attempt, x.lease_until
        FROM {schema}.deliveries x
        WHERE p.phase <> 3 AND x.webhook_id = p.webhook_id AND x.tenant = p.tenant AND x.key = p.key AND x.phase = 1
          AND (SELECT true FROM {schema}.deliveries WHERE phase = 1 ORDER BY webhook_id, tenant, key, seq LIMIT 1)
        UNION ALL
        (SELECT x.seq, x.xmin, x.phase, x.lease, x.webhook_id, x.max_batch, x.batch_id, x.next_attempt, x.lease_until
         FROM {schema}.deliveries x
         WHERE p.phase <> 3 AND x.webhook_id = p.webhook_id AND x.tenant = p.tenant AND x.key = p.key AND x.phase = 0
         ORDER BY x.seq LIMIT $5 + 1)
    ) f
),
line0 AS MATERIALIZED (
    SELECT ord, bool_or(phase = 1 OR (phase = 0 AND leased)) AS headed,
           count(*) FILTER (WHERE phase = 0) > $5 AS more, max(seq) FILTER (WHERE phase = 0) AS last
    FROM front0 GROUP BY ord
),
-- A line with no head in sight reads the rest of its new deliveries: it
-- must lock them all, and its head may be among them (rarely: a record
-- changed that often with nothing sent yet, or changes committed out of
-- order).
front1 AS (
    SELECT * FROM front0
    UNION ALL
    SELECT l.ord, x.seq, x.xmin, x.phase, x.lease IS NOT NULL, x.webhook_id, x.max_batch, x.batch_id,
           x.next_attempt <= $1 AND (x.lease_until IS NULL OR x.lease_until <= $1)
    FROM line0 l JOIN pick p USING (ord) CROSS JOIN LATERAL (
        SELECT x.seq, x.xmin, x.phase, x.lease, x.webhook_id, x.max_batch, x.batch_id, x.next_attempt, x.lease_until
        FROM {schema}.deliveries x
        WHERE x.webhook_id = p.webhook_id AND x.tenant = p.tenant AND x.key = p.key AND x.phase = 0 AND x.seq > l.last
        ORDER BY x.seq
    ) x
    WHERE NOT l.headed AND l.more
),
front AS (
    SELECT f.*, f.phase = 1 OR (f.phase = 0 AND f.leased) AS head,
           count(*) FILTER (WHERE f.phase = 0 AND NOT f.leased) OVER (PARTITION BY f.ord ORDER BY f.seq) AS n
    FROM front1 f
),
line AS MATERIALIZED (
    SELECT ord, count(*) FILTER (WHERE head) AS heads,
           count(*) FILTER (WHERE head AND batch_id IS NULL) AS loose,
           coalesce(min(batch_id) FILTER (WHERE head) = max(batch_id) FILTER (WHERE head), false) AS one_batch,
           min(seq) FILTER (WHERE phase = 0) AS first
    FROM front GROUP BY ord
),
-- c: claim it; w: file it behind the head; h: hold it while the others
-- are claimed or filed.
role0 AS (
    SELECT f.ord, f.seq, f.ver, f.webhook_id, f.max_batch, f.batch_id, CASE
        WHEN f.phase = 3 THEN CASE WHEN f.ready AND <<claimable>> THEN 'c' END
        WHEN f.head THEN
            CASE WHEN f.ready AND <<claimable>> AND (l.heads = 1 OR (l.loose = 0 AND l.one_batch)) THEN 'c' ELSE 'h' END
        WHEN l.heads > 0 THEN CASE WHEN f.n <= $5 THEN 'w' END
        WHEN f.seq = l.first AND f.ready AND <<claimable>> THEN 'c'
        ELSE 'h' END AS role
    FROM front f JOIN line l USING (ord)
),
-- At most $6 lines claimed; lines with nothing to do are left alone.
act AS (
    SELECT ord, claims AND row_number() OVER (PARTITION BY claims ORDER BY ord) <= $6 AS claims
    FROM (SELECT ord, coalesce(bool_or(role = 'c'), false) AS claims, coalesce(bool_or(role = 'w'), false) AS files
          FROM role0 GROUP BY ord) x
    WHERE claims OR files
),
role AS MATERIALIZED (
    SELECT r.ord, r.seq, r.ver, r.webhook_id, r.max_batch, r.batch_id,
           CASE WHEN r.role = 'c' AND NOT a.claims THEN 'h' ELSE r.role END AS role
    FROM role0 r JOIN act a USING (ord)
    WHERE r.role IS NOT NULL
),
-- The rows the due scan locked are held already, if the version it
-- locked is the one read (else it was updated since, and the line fails).
held AS MATERIALIZED (
    SELECT r.seq FROM role r JOIN due l ON l.seq = r.seq AND l.lver = r.ver
    UNION ALL
    SELECT h.seq FROM role r CROSS JOIN LATERAL (
        SELECT d.seq FROM {schema}.deliveries d WHERE d.seq = r.seq AND d.xmin = r.ver
        FOR NO KEY UPDATE SKIP LOCKED
    ) h
    WHERE NOT EXISTS (SELECT 1 FROM due l WHERE l.seq = r.seq)
),
-- The rows of lines whose every row locked.
done AS MATERIALIZED (
    SELECT r.* FROM (
        SELECT r.*, bool_and(h.seq IS NOT NULL) OVER (PARTITION BY r.ord) AS ok
        FROM role r LEFT JOIN held h ON h.seq = r.seq
    ) r WHERE r.ok
),
filed AS (
    UPDATE {schema}.deliveries d SET phase = 2
    WHERE d.seq = ANY(ARRAY(SELECT seq FROM done WHERE role = 'w'))
    RETURNING 1
)<<lease_cte>>
<<out>>
ORDER BY 1, 2`
	out := `
SELECT r.ord, r.seq, r.webhook_id, r.max_batch, r.batch_id, (SELECT count(*) FROM filed)
FROM done r WHERE r.role = 'c'
UNION ALL
SELECT 0, 0, '', 0, NULL, (SELECT count(*) FROM filed)`
	var lease string
	if !newOnly {
		lease = `,
leased AS (
    UPDATE {schema}.deliveries d
    SET lease = gen_random_uuid(), lease_until = $7
    FROM done r
    WHERE r.role = 'c' AND r.batch_id IS NULL AND r.max_batch <= 1 AND d.seq = r.seq
      AND d.seq = ANY(ARRAY(SELECT seq FROM done WHERE role = 'c'))
    RETURNING r.ord, d.lease::text AS lease, ` + deliveryCols + `
)`
		// The same shape for all three kinds of row, without NULLs but
		// for batch_id: leased rows whole; rows left to the caller with
		// what it needs (their lease empty); and the count.
		out = `
` + leasedRows("(SELECT count(*) FROM filed)") + `
UNION ALL
SELECT r.ord, r.seq, (SELECT count(*) FROM filed), '', r.seq, '', '', r.webhook_id, '', '', r.max_batch, '', 0,
       'epoch'::timestamptz, '', 0, r.batch_id, false, 'epoch'::timestamptz, 'epoch'::timestamptz, '', '', 'epoch'::timestamptz, ''
FROM done r WHERE r.role = 'c' AND NOT (r.batch_id IS NULL AND r.max_batch <= 1)
UNION ALL
` + countRow("(SELECT count(*) FROM filed)")
	}
	return strings.NewReplacer(
		"<<due>>", strings.ReplaceAll(dueCTE, "<<due_filter>>", dueFilter),
		"<<due_filter>>", dueFilter,
		"<<claimable>>", claimable,
		"<<lease_cte>>", lease,
		"<<out>>", out,
	).Replace(q)
}

// fastPickSQL builds the statement a claim tries first, for the usual
// case: due deliveries each alone in its record's line. It reads and
// locks what pickSQL's due scan does, and leases every due delivery that
// is either a replay or the line's only new delivery with no head in the
// line (no phase 1 row, no other new one, leased or not), of a webhook
// that does not batch. For such a line pickSQL would decide the same,
// having read and locked the same single row; this statement only skips
// the machinery that lines with heads, waiting deliveries or batches
// need. Due deliveries it cannot decide are left alone, and counted: the
// caller then runs pickSQL for them.
//
// Parameters: $1 now, $2 how many to lease, $3 how many due deliveries to
// read per webhook, $4 seqs to leave out, $5 the leases' expiry. Rows are
// pickSQL's (without newOnly): the leased deliveries, and a row of rank 0;
// the third column of every row is the number of due deliveries left to
// pickSQL.
func fastPickSQL() string {
	return allHooks + `,
` + strings.ReplaceAll(dueCTE, "<<due_filter>>", "d.phase IN (0, 1, 3)") + `-- Which due deliveries this statement can decide: a line's other new
-- deliveries or a head would need pickSQL's reading of the line. (Each
-- lookup is a subquery with a LIMIT, so that it stays one index probe
-- per row: as NOT EXISTS, it may become a hash of every head there is.)
-- Heads are looked for record by record only when the snapshot holds any
-- (one probe of a small index, as in pickSQL): while deliveries succeed,
-- there are none, and the probe per row is saved.
decided AS MATERIALIZED (
    SELECT u.seq, u.turn, u.next_attempt,
           u.max_batch <= 1 AND u.batch_id IS NULL AND (u.phase = 3 OR (u.phase = 0
             AND (SELECT 1 FROM {schema}.deliveries x
                  WHERE x.webhook_id = u.webhook_id AND x.tenant = u.tenant AND x.key = u.key
                    AND x.phase = 0 AND x.seq <> u.seq LIMIT 1) IS NULL
             AND ((SELECT true FROM {schema}.deliveries WHERE phase = 1 ORDER BY webhook_id, tenant, key, seq LIMIT 1) IS NULL
                  OR (SELECT 1 FROM {schema}.deliveries x
                      WHERE x.webhook_id = u.webhook_id AND x.tenant = u.tenant AND x.key = u.key
                        AND x.phase = 1 LIMIT 1) IS NULL))) AS alone
    FROM due u
),
take AS MATERIALIZED (
    SELECT row_number() OVER (ORDER BY turn, next_attempt, seq) AS ord, seq
    FROM decided WHERE alone
    ORDER BY turn, next_attempt, seq LIMIT $2
),
undecided AS (
    SELECT count(*) AS n FROM decided WHERE NOT alone
),
leased AS (
    UPDATE {schema}.deliveries d
    SET lease = gen_random_uuid(), lease_until = $5
    FROM take t
    WHERE d.seq = t.seq AND d.seq = ANY(ARRAY(SELECT seq FROM take))
    RETURNING t.ord, d.lease::text AS lease, ` + deliveryCols + `
)
` + leasedRows("(SELECT n FROM undecided)") + `
UNION ALL
` + countRow("(SELECT n FROM undecided)") + `
ORDER BY 1, 2`
}

// leasedRows selects the rows of the CTE leased with their events, in the
// shape picked.read scans: rank, seq, count (the third column of every
// row), the lease, deliveryCols and the event's columns.
func leasedRows(count string) string {
	return `SELECT l.ord, l.seq, ` + count + `, l.lease, l.seq, l.id, l.event_id, l.webhook_id, l.tenant, l.key,
       l.max_batch, l.status, l.attempts, l.next_attempt, l.last_error, l.last_code, l.batch_id, l.replayed,
       l.created_at, l.updated_at, e.table_name, e.op, e.time, e.payload::text
FROM leased l CROSS JOIN LATERAL (
    SELECT e.table_name, e.op, e.time, e.payload FROM {schema}.events e WHERE e.tenant = l.tenant AND e.id = l.event_id
) e`
}

// countRow is the row of rank 0, in the same shape, that carries count
// even when nothing was leased.
func countRow(count string) string {
	return `SELECT 0, 0, ` + count + `, '', 0, '', '', '', '', '', 0, '', 0, 'epoch'::timestamptz, '', 0, NULL, false,
       'epoch'::timestamptz, 'epoch'::timestamptz, '', '', 'epoch'::timestamptz, ''`
}
