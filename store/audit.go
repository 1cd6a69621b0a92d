package store

import (
	"context"
	"encoding/json"
	"time"
)

// AuditRecord is one entry of the audit trail: a change to a webhook
// (created, updated, enabled, disabled, deleted, its secret rotated) or an
// action on its deliveries (a replay, a recovery), with who did it and
// when. The dispatcher writes records; a store only keeps them.
type AuditRecord struct {
	// Seq is assigned by the store when the record is appended: it grows
	// with every record and orders the trail.
	Seq int64
	// ID is the record's own id, assigned by the dispatcher.
	ID   string
	Time time.Time
	// Tenant is the tenant of the webhook the record is about; "" for a
	// webhook that serves every tenant.
	Tenant string
	// Actor is who acted, as the application named them; "" when it did
	// not say.
	Actor string
	// Action names what happened, such as "webhook.updated".
	Action    string
	WebhookID string
	// WebhookVersion is the definition version the action produced or
	// acted on; 0 when none applies.
	WebhookVersion int64
	// DeliveryID is the delivery acted on, for a replay.
	DeliveryID string
	// Definition is the webhook's definition after the change, with its
	// secrets masked, for records that change a definition; nil for the
	// others. Together these records are the webhook's versions.
	Definition json.RawMessage
	// Detail is a JSON object owned by package webhook: the reason, the
	// fields that changed, counts ... It never holds a secret.
	Detail json.RawMessage
}

// AuditFilter selects audit records; zero fields do not filter.
type AuditFilter struct {
	Tenant    string
	WebhookID string
	Action    string
	Actor     string
	Since     time.Time // at or after
	Until     time.Time // before
	// Definitions keeps only the records that carry a Definition: a
	// webhook's versions.
	Definitions bool
	// Newest lists the newest record first; by default the oldest comes
	// first.
	Newest bool
	// After is a cursor: the Seq of the last record of the previous page.
	// The page continues past it in the listing's order (below it when
	// Newest is set); 0 starts at the beginning.
	After int64
	Limit int // 0: no limit
}

// Auditor is implemented by stores that keep an audit trail. A store
// without it still works: the dispatcher then records nothing and
// reports that it keeps no trail.
//
// Records are kept as appended and never changed; deleting a webhook
// keeps its records.
type Auditor interface {
	// AppendAudit stores r and returns it with its Seq.
	AppendAudit(ctx context.Context, r AuditRecord) (AuditRecord, error)
	// AuditRecords lists the records matching f in order of Seq.
	AuditRecords(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
}
