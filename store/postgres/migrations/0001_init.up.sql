-- herald's tables. {schema} is replaced by the quoted schema name the
-- store was given, so herald can live in the application's own database.

-- One row: the webhook definitions' version. A counter row, not a
-- sequence, so a reader never sees the version move before the change
-- that moved it has committed.
CREATE TABLE {schema}.meta (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    webhooks_version bigint  NOT NULL DEFAULT 0
);
INSERT INTO {schema}.meta DEFAULT VALUES;

CREATE TABLE {schema}.webhooks (
    id         text        PRIMARY KEY,
    tenant     text        NOT NULL DEFAULT '',
    disabled   boolean     NOT NULL DEFAULT false,
    version    bigint      NOT NULL,
    definition jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One row per published change; the key makes Publish idempotent.
CREATE TABLE {schema}.events (
    tenant     text        NOT NULL,
    id         text        NOT NULL,
    table_name text        NOT NULL,
    op         text        NOT NULL,
    key        text        NOT NULL,
    time       timestamptz NOT NULL,
    payload    json        NOT NULL, -- json, not jsonb: kept byte for byte
    PRIMARY KEY (tenant, id)
);

-- One row per (event, webhook). phase says where a pending delivery
-- stands in its record's order chain (webhook_id, tenant, key):
--   0 new      inserted by Publish; not yet filed into its chain
--   1 head     the one delivery of its chain that may be claimed
--   2 waiting  behind the head of its chain
--   3 replayed outside every chain; claimable on its own
-- and is NULL once the delivery is no longer pending.
CREATE TABLE {schema}.deliveries (
    seq          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text        NOT NULL UNIQUE,
    webhook_id   text        NOT NULL,
    tenant       text        NOT NULL,
    key          text        NOT NULL,
    event_id     text        NOT NULL,
    max_batch    integer     NOT NULL DEFAULT 0,
    status       text        NOT NULL DEFAULT 'pending',
    phase        smallint    DEFAULT 0,
    attempts     integer     NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL,
    last_error   text        NOT NULL DEFAULT '',
    last_code    integer     NOT NULL DEFAULT 0,
    batch_id     text,
    replayed     boolean     NOT NULL DEFAULT false,
    lease        uuid,
    lease_until  timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CONSTRAINT deliveries_phase_pending CHECK ((status = 'pending') = (phase IS NOT NULL)),
    CONSTRAINT deliveries_phase_known CHECK (phase BETWEEN 0 AND 3)
) WITH (fillfactor = 80); -- room on each page for HOT updates (leasing a row)

-- Claims: heads and replays by webhook, due first. Waiting deliveries
-- are not in it, so a long backlog behind a failing record costs nothing.
CREATE INDEX deliveries_claim ON {schema}.deliveries (webhook_id, next_attempt, seq) WHERE phase IN (1, 3);
-- Order chains: the pending, in-chain deliveries of one record.
CREATE INDEX deliveries_chain ON {schema}.deliveries (webhook_id, tenant, key, seq) WHERE phase IN (0, 1, 2);
-- New deliveries waiting to be filed into their chains.
CREATE INDEX deliveries_new ON {schema}.deliveries (seq) WHERE phase = 0;
-- Members of batches. (Leases are found through the row a lease token
-- names, so lease and lease_until are in no index and leasing a row can be
-- a HOT update.)
CREATE INDEX deliveries_batch ON {schema}.deliveries (batch_id) WHERE batch_id IS NOT NULL;
-- The delivery log: by webhook and by event.
CREATE INDEX deliveries_webhook ON {schema}.deliveries (webhook_id, seq);
CREATE INDEX deliveries_event ON {schema}.deliveries (event_id);

-- One row per request made. A replay starts the count again, so number
-- alone does not identify an attempt.
CREATE TABLE {schema}.attempts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_seq    bigint      NOT NULL REFERENCES {schema}.deliveries (seq) ON DELETE CASCADE,
    number          integer     NOT NULL,
    message_id      text        NOT NULL,
    at              timestamptz NOT NULL,
    status_code     integer     NOT NULL,
    latency_ns      bigint      NOT NULL,
    request_headers jsonb,
    response_body   text        NOT NULL,
    error           text        NOT NULL,
    webhook_version bigint      NOT NULL
);
CREATE INDEX attempts_delivery ON {schema}.attempts (delivery_seq, id);

-- file_new files new deliveries into their order chains; every claim calls
-- it first. Only one caller at a time does the work: the advisory lock is
-- taken first, and because the function is VOLATILE the filing statement
-- then runs with a fresh snapshot that sees everything the previous filer
-- committed. A chain with a filed tail gets its new deliveries queued
-- behind the tail, which is share-locked so that whoever finishes the tail
-- sees them (the ack's promotion runs after its update, with a snapshot of
-- its own). A chain with nothing filed gets its first new delivery as head
-- and the rest behind it. A chain whose tail is busy waits for the next
-- claim. Nothing here waits for a lock.
CREATE FUNCTION {schema}.file_new(lock_key bigint, max_rows integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n_filed bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(lock_key) THEN
        RETURN 0;
    END IF;
    -- file:begin
WITH news AS (
    SELECT seq, webhook_id, tenant, key FROM {schema}.deliveries
    WHERE phase = 0 ORDER BY seq LIMIT max_rows
    FOR NO KEY UPDATE SKIP LOCKED
), chains AS (
    SELECT webhook_id, tenant, key, min(seq) AS first FROM news GROUP BY webhook_id, tenant, key
), tails AS (
    SELECT c.webhook_id, c.tenant, c.key, c.first, t.seq AS tail
    FROM chains c LEFT JOIN LATERAL (
        SELECT t.seq FROM {schema}.deliveries t
        WHERE t.webhook_id = c.webhook_id AND t.tenant = c.tenant AND t.key = c.key AND t.phase IN (1, 2)
        ORDER BY t.seq DESC LIMIT 1
    ) t ON true
), held AS (
    SELECT seq FROM {schema}.deliveries
    WHERE seq IN (SELECT tail FROM tails WHERE tail IS NOT NULL) AND phase IN (1, 2)
    FOR SHARE SKIP LOCKED
), filed AS (
    SELECT n.seq, CASE WHEN t.tail IS NULL AND n.seq = t.first THEN 1 ELSE 2 END AS phase
    FROM news n JOIN tails t USING (webhook_id, tenant, key)
    WHERE t.tail IS NULL OR t.tail IN (SELECT seq FROM held)
)
UPDATE {schema}.deliveries d SET phase = filed.phase
FROM filed WHERE d.seq = filed.seq;
    -- file:end
    GET DIAGNOSTICS n_filed = ROW_COUNT;
    RETURN n_filed;
END
$fn$;
