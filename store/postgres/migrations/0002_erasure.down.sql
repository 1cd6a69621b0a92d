-- An erased payload cannot come back; a JSON null stands in for it.
UPDATE {schema}.events SET payload = 'null' WHERE payload IS NULL;
ALTER TABLE {schema}.events ALTER COLUMN payload SET NOT NULL;
