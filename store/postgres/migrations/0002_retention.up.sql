-- Retention and erasure (store.Retainer, store.Eraser).

-- A change's payload can be erased, or dropped once no delivery needs it,
-- while its key stays for the idempotency window, counted from when it
-- was recorded (created_at; rows from before this migration count from
-- their time). live counts the deliveries that refer to the event, so the
-- events no delivery needs are found through a small partial index.
ALTER TABLE {schema}.events ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE {schema}.events ADD COLUMN created_at timestamptz;
ALTER TABLE {schema}.events ADD COLUMN live integer NOT NULL DEFAULT 0;
UPDATE {schema}.events e SET live = (SELECT count(*) FROM {schema}.deliveries d WHERE d.tenant = e.tenant AND d.event_id = e.id);
CREATE INDEX events_orphans ON {schema}.events (coalesce(created_at, time)) WHERE live = 0;
CREATE INDEX events_orphan_payloads ON {schema}.events (tenant, id) WHERE live = 0 AND payload IS NOT NULL;

-- scrubbed: the bodies of the delivery's attempts were dropped by
-- retention.
ALTER TABLE {schema}.deliveries ADD COLUMN scrubbed boolean NOT NULL DEFAULT false;
