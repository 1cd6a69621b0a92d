-- Back to filing. A new delivery under a lease is its record's head;
-- filing marks heads by phase alone.
UPDATE {schema}.deliveries SET phase = 1 WHERE phase = 0 AND lease IS NOT NULL;

-- Filing expects every record with a waiting line to have a head; here
-- a record whose earliest pending delivery is new has none, so its
-- earliest waiting delivery becomes the head (the new ones are then filed
-- behind the line).
UPDATE {schema}.deliveries d SET phase = 1
FROM (
    SELECT min(w.seq) AS seq FROM {schema}.deliveries w
    WHERE w.phase = 2 AND NOT EXISTS (
        SELECT 1 FROM {schema}.deliveries h
        WHERE h.phase = 1 AND h.webhook_id = w.webhook_id AND h.tenant = w.tenant AND h.key = w.key)
    GROUP BY w.webhook_id, w.tenant, w.key
) m
WHERE d.seq = m.seq;

CREATE INDEX deliveries_claim ON {schema}.deliveries (webhook_id, next_attempt, seq) WHERE phase IN (1, 3);
CREATE INDEX deliveries_chain ON {schema}.deliveries (webhook_id, tenant, key, seq) WHERE phase IN (0, 1, 2);
CREATE INDEX deliveries_new ON {schema}.deliveries (seq) WHERE phase = 0;

DROP INDEX {schema}.deliveries_due;
DROP INDEX {schema}.deliveries_new_by_record;
DROP INDEX {schema}.deliveries_head;
DROP INDEX {schema}.deliveries_waiting;

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
