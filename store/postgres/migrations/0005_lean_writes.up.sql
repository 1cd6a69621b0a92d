-- Fewer writes per delivery.
--
-- More than half of each page of deliveries stays free. A claim's lease
-- sets only columns no index holds, so it can be a HOT update, but only if
-- the new version fits on the row's page, and a claim leases many rows of
-- a page at once, each new version a little longer than the old (the
-- lease's two columns were NULL). With a fifth of the page free, most of a
-- claim of 100 found no room and wrote an entry into every index instead;
-- with 55% free, they all fit. Only pages written from now on get the
-- room; older ones keep theirs.
ALTER TABLE {schema}.deliveries SET (fillfactor = 45);

-- An attempt's row no longer checks, by a foreign key, that its delivery
-- exists. The check locked the delivery's row once more in every ack (a
-- write-ahead log record of its own) for a fact the ack itself
-- establishes: it inserts attempts only for the deliveries it has just
-- updated. Purging deletes a delivery's attempts with it explicitly.
ALTER TABLE {schema}.attempts DROP CONSTRAINT IF EXISTS attempts_delivery_seq_fkey;

-- Deliveries requeued ahead of one in flight (phase 3, not replayed; see
-- requeueSQL), found by record: the line's waiting deliveries move up only
-- once those have finished too. Normally empty.
CREATE INDEX deliveries_requeued ON {schema}.deliveries (webhook_id, tenant, key, seq) WHERE phase = 3 AND NOT replayed;
