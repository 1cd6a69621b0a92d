-- The ready index leaves lease_until out again (migration 3 put it in).
--
-- With lease_until in the index, every claim moved the index entry of
-- each row it leased, and every outcome that kept a row pending moved it
-- back: a claim of a hundred rows rewrote a hundred index entries and
-- committed one more page. Without it, a claim reads the rows of the
-- heads in flight to pass over them, which costs less: at most one row
-- per message in flight, from pages the claims keep in the cache. A claim
-- and acknowledgement of a hundred rows takes about a tenth fewer
-- instructions, and end to end at 64 messages in flight the CPU per
-- delivery is no higher.

DROP INDEX herald_deliveries_ready;
CREATE INDEX herald_deliveries_ready ON herald_deliveries (webhook_id, next_attempt, seq)
	WHERE status = 'pending' AND head = 1;
