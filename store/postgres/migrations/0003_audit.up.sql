-- The audit trail: who changed which webhook, replayed or recovered what,
-- and when herald disabled a webhook on its own. Records that change a
-- definition carry it, secrets masked, so they are the webhook's versions.
CREATE TABLE {schema}.audit (
    seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text        NOT NULL UNIQUE,
    time            timestamptz NOT NULL,
    tenant          text        NOT NULL,
    actor           text        NOT NULL,
    action          text        NOT NULL,
    webhook_id      text        NOT NULL,
    webhook_version bigint      NOT NULL,
    delivery_id     text        NOT NULL,
    definition      json,       -- json, not jsonb: kept byte for byte
    detail          json
);
CREATE INDEX audit_webhook ON {schema}.audit (webhook_id, seq);
CREATE INDEX audit_tenant ON {schema}.audit (tenant, seq);
