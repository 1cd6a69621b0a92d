-- Erasure: a change's payload can be erased (store.Eraser), leaving its
-- key and its deliveries' log.
ALTER TABLE {schema}.events ALTER COLUMN payload DROP NOT NULL;
