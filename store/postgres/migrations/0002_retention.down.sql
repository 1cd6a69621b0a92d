ALTER TABLE {schema}.deliveries DROP COLUMN scrubbed;
DROP INDEX {schema}.events_orphan_payloads;
DROP INDEX {schema}.events_orphans;
ALTER TABLE {schema}.events DROP COLUMN live;
ALTER TABLE {schema}.events DROP COLUMN created_at;
-- An erased payload cannot come back; a JSON null stands in for it.
UPDATE {schema}.events SET payload = 'null' WHERE payload IS NULL;
ALTER TABLE {schema}.events ALTER COLUMN payload SET NOT NULL;
