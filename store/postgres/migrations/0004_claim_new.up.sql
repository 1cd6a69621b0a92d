-- Claims take a record's next delivery straight from the newly published
-- ones: there is no separate filing step, so a delivery is written once to
-- lease it and once to finish it, and any number of claimers work at once
-- without a shared lock. phase keeps its values:
--   0 new      published; a new delivery under a lease is its record's
--              head, in flight for the first time (leasing it changes no
--              indexed column, so the update can be HOT)
--   1 head     its record's next delivery, held back or in flight again
--              (retried, postponed, released, a batch's member) or moved
--              up after the one before it finished
--   2 waiting  behind its record's head
--   3 replayed outside every chain
-- A record with a head sends nothing else until the head is finished; a
-- record without one sends its earliest new delivery. Every state that
-- filing left is a valid state here: it leased heads only, and marked
-- them by phase.
--
-- Every dispatcher of the schema must run a version of herald that knows
-- this migration: one that still files deliveries would not see the heads
-- made here. file_new is dropped so that such a process fails loudly.

-- Claims: new deliveries, heads and replays by webhook, due first.
-- Waiting deliveries stay out of it.
CREATE INDEX deliveries_due ON {schema}.deliveries (webhook_id, next_attempt, seq) WHERE phase IN (0, 1, 3);
-- A record's new deliveries, heads and waiting line, each in order.
CREATE INDEX deliveries_new_by_record ON {schema}.deliveries (webhook_id, tenant, key, seq) WHERE phase = 0;
CREATE INDEX deliveries_head ON {schema}.deliveries (webhook_id, tenant, key, seq) WHERE phase = 1;
CREATE INDEX deliveries_waiting ON {schema}.deliveries (webhook_id, tenant, key, seq) WHERE phase = 2;

DROP INDEX {schema}.deliveries_claim;
DROP INDEX {schema}.deliveries_chain;
DROP INDEX {schema}.deliveries_new;
DROP FUNCTION {schema}.file_new(bigint, integer);
