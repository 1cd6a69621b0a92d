DROP INDEX {schema}.deliveries_requeued;
DELETE FROM {schema}.attempts a
WHERE NOT EXISTS (SELECT 1 FROM {schema}.deliveries d WHERE d.seq = a.delivery_seq);
ALTER TABLE {schema}.attempts ADD CONSTRAINT attempts_delivery_seq_fkey
    FOREIGN KEY (delivery_seq) REFERENCES {schema}.deliveries (seq) ON DELETE CASCADE;
ALTER TABLE {schema}.deliveries SET (fillfactor = 80);
