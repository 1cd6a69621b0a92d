-- Cheaper enqueues, claims and acknowledgements.
--
-- An acknowledgement that finishes a row of an order chain now looks the
-- chain's next row up itself (one seek in herald_deliveries_chain), so
-- enqueues no longer mark the row before them: the trigger cost every
-- enqueue a call into it, and every enqueue behind a waiting row a write
-- to that row's page, far from the table's tail. has_next stays, unused.
--
-- The ready index carries lease_until: a claim passes over the heads in
-- flight (leased, and due since before the claim) without reading their
-- rows. Taking a lease now updates the index; at 64 messages in flight
-- the claims read 64 rows fewer each.

DROP TRIGGER IF EXISTS herald_deliveries_successor;

DROP INDEX herald_deliveries_ready;
CREATE INDEX herald_deliveries_ready ON herald_deliveries (webhook_id, next_attempt, seq, lease_until)
	WHERE status = 'pending' AND head = 1;
