-- An acknowledgement that finishes a row of an order chain now looks the
-- chain's next row up itself (one seek in herald_deliveries_chain), so
-- enqueues no longer mark the row before them: the trigger cost every
-- enqueue a call into it, and every enqueue behind a waiting row a write
-- to that row's page, far from the table's tail. has_next stays, unused.

DROP TRIGGER IF EXISTS herald_deliveries_successor;
