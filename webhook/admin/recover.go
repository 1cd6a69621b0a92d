package admin

import (
	"net/http"
	"time"

	"github.com/heraldhr/herald/webhook"
)

// recoverRequest is the body of POST /webhooks/{id}/recover; every field
// is optional.
type recoverRequest struct {
	// Status is the state to send again: dead (the default), delivered,
	// skipped or canceled.
	Status string `json:"status"`
	// Since and Until bound when the deliveries were published.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Key narrows to one record's deliveries.
	Key string `json:"key"`
	// Tenant narrows to one tenant's changes; only an operator may set
	// it (a tenant's recovery is of its own changes).
	Tenant string `json:"tenant"`
	// DryRun counts what would be sent and sends nothing.
	DryRun bool `json:"dry_run"`
}

// recoverJSON is what a recovery found and did.
type recoverJSON struct {
	Matched  int  `json:"matched"`
	Replayed int  `json:"replayed"`
	InOrder  bool `json:"in_order"`
	DryRun   bool `json:"dry_run"`
}

// POST /webhooks/{id}/recover: send a webhook's finished deliveries again
// in bulk, oldest first.
func (h *handler) recoverDeliveries(q *request) (int, any, error) {
	w, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	var in recoverRequest
	if err := q.decode(&in, true); err != nil {
		return 0, nil, err
	}
	st := webhook.Status(in.Status)
	if st == webhook.Pending || st != "" && !st.Valid() {
		return 0, nil, badRequest("invalid_request", "status", "status must be dead, delivered, skipped or canceled")
	}
	if !in.Since.IsZero() && !in.Until.IsZero() && !in.Until.After(in.Since) {
		return 0, nil, badRequest("invalid_request", "until", "until must be after since")
	}
	if !q.caller.Operator {
		if in.Tenant != "" && in.Tenant != q.caller.Tenant {
			return 0, nil, badRequest("invalid_request", "tenant", "tenant must be the caller's own, or left out")
		}
		in.Tenant = q.caller.Tenant
	}
	res, err := h.d.Recover(q.ctx(), webhook.RecoverQuery{WebhookID: w.ID, Status: st, Since: in.Since, Until: in.Until,
		Key: in.Key, Tenant: in.Tenant, DryRun: in.DryRun})
	if err != nil {
		return 0, nil, err
	}
	status := http.StatusAccepted
	if in.DryRun {
		status = http.StatusOK
	}
	return status, recoverJSON{Matched: res.Matched, Replayed: res.Replayed, InOrder: res.InOrder, DryRun: in.DryRun}, nil
}
