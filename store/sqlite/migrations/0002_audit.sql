-- The audit trail: who changed which webhook, replayed or recovered what,
-- and when herald disabled a webhook on its own. Records that change a
-- definition carry it, secrets masked, so they are the webhook's versions.
-- Records are never changed or deleted; AUTOINCREMENT keeps seq growing
-- whatever happens to the file's last row. Times are unix nanoseconds.
CREATE TABLE herald_audit (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	id              TEXT NOT NULL UNIQUE,
	time            INTEGER NOT NULL,
	tenant          TEXT NOT NULL,
	actor           TEXT NOT NULL,
	action          TEXT NOT NULL,
	webhook_id      TEXT NOT NULL,
	webhook_version INTEGER NOT NULL,
	delivery_id     TEXT NOT NULL,
	definition      BLOB, -- kept byte for byte; NULL when the record carries none
	detail          BLOB
);

CREATE INDEX herald_audit_webhook ON herald_audit (webhook_id, seq);
CREATE INDEX herald_audit_tenant ON herald_audit (tenant, seq);
