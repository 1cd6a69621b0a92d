-- herald's first schema. Times are unix nanoseconds (0: none).

CREATE TABLE herald_meta (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO herald_meta (name, value) VALUES ('webhooks_version', 0);

CREATE TABLE herald_webhooks (
	id         TEXT PRIMARY KEY,
	tenant     TEXT NOT NULL,
	disabled   INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	definition BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per published change; (tenant, id) makes publishing idempotent.
-- live counts the deliveries that refer to the event; payload is NULL once
-- retention dropped it or an erasure erased it.
CREATE TABLE herald_events (
	tenant     TEXT NOT NULL,
	id         TEXT NOT NULL,
	table_name TEXT NOT NULL,
	op         TEXT NOT NULL,
	record_key TEXT NOT NULL,
	time       INTEGER NOT NULL,
	payload    BLOB,
	created_at INTEGER NOT NULL,
	live       INTEGER NOT NULL,
	PRIMARY KEY (tenant, id)
);

CREATE INDEX herald_events_orphans ON herald_events (created_at) WHERE live = 0;
CREATE INDEX herald_events_orphan_payloads ON herald_events (created_at) WHERE live = 0 AND payload IS NOT NULL;

-- One row per (event, webhook). seq is the store's sequence: it orders a
-- record's chain and pages the delivery log, and AUTOINCREMENT keeps it
-- from ever being reused after a purge.
--
-- head marks the row that stands for a claimable message: the first
-- pending row of an order chain (webhook, tenant, record_key), a replayed
-- row, or the first row of a fixed batch (whose members share batch_id).
-- A row is leased while lease_until lies ahead; an expired lease stays in
-- lease until the row is claimed again, so a late outcome from a holder
-- nobody replaced is still recorded. lease holds the id of the claim; a
-- lease token, one per message, is "<seq of its first row>.<claim id>", so
-- an outcome finds its rows by primary key (and batch_id) without an index
-- on lease. scrubbed: its attempts'
-- bodies were dropped by retention.
--
-- Every index here is paid for by each enqueue, claim or acknowledgement;
-- the ones that only retention and erasure would use are left out, and
-- those scan from the read pool instead, holding no lock.
CREATE TABLE herald_deliveries (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT NOT NULL UNIQUE,
	event_id     TEXT NOT NULL,
	tenant       TEXT NOT NULL,
	record_key   TEXT NOT NULL,
	webhook_id   TEXT NOT NULL,
	max_batch    INTEGER NOT NULL,
	status       TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	last_code    INTEGER NOT NULL DEFAULT 0,
	batch_id     TEXT NOT NULL DEFAULT '',
	replayed     INTEGER NOT NULL DEFAULT 0,
	head         INTEGER NOT NULL DEFAULT 0,
	lease        TEXT,
	lease_until  INTEGER NOT NULL DEFAULT 0,
	scrubbed     INTEGER NOT NULL DEFAULT 0,
	has_next     INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);

CREATE INDEX herald_deliveries_ready ON herald_deliveries (webhook_id, next_attempt, seq) WHERE status = 'pending' AND head = 1;
CREATE INDEX herald_deliveries_chain ON herald_deliveries (webhook_id, tenant, record_key, seq) WHERE status = 'pending' AND replayed = 0;
-- has_next tells an acknowledgement that a later row of the chain waits
-- to become its head, so chains without one cost no look-up.
CREATE TRIGGER herald_deliveries_successor AFTER INSERT ON herald_deliveries
WHEN NEW.head = 0 AND NEW.status = 'pending'
BEGIN
	UPDATE herald_deliveries SET has_next = 1 WHERE seq = (SELECT max(x.seq) FROM herald_deliveries x
		WHERE x.webhook_id = NEW.webhook_id AND x.tenant = NEW.tenant AND x.record_key = NEW.record_key
			AND x.status = 'pending' AND x.replayed = 0 AND x.seq < NEW.seq);
END;

CREATE INDEX herald_deliveries_batch ON herald_deliveries (batch_id) WHERE status = 'pending' AND batch_id != '';
CREATE INDEX herald_deliveries_event ON herald_deliveries (event_id, tenant);

-- A replayed delivery counts its attempts afresh, so number may repeat;
-- id keeps the log in order.
CREATE TABLE herald_attempts (
	id              INTEGER PRIMARY KEY,
	delivery_seq    INTEGER NOT NULL,
	number          INTEGER NOT NULL,
	message_id      TEXT NOT NULL,
	at              INTEGER NOT NULL,
	status_code     INTEGER NOT NULL,
	latency         INTEGER NOT NULL,
	request_headers TEXT NOT NULL,
	response_body   TEXT NOT NULL,
	error           TEXT NOT NULL,
	webhook_version INTEGER NOT NULL
);

CREATE INDEX herald_attempts_delivery ON herald_attempts (delivery_seq, id);
