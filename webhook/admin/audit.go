package admin

import (
	"errors"
	"net/http"

	"github.com/heraldhr/herald/webhook"
)

// GET /audit
func (h *handler) listAudit(q *request) (int, any, error) {
	v, err := q.params("tenant", "webhook_id", "action", "actor", "since", "until", "order", "cursor", "limit")
	if err != nil {
		return 0, nil, err
	}
	aq := webhook.AuditQuery{WebhookID: v.Get("webhook_id"), Action: webhook.AuditAction(v.Get("action")),
		Actor: v.Get("actor"), Cursor: v.Get("cursor")}
	if aq.Since, aq.Until, err = timeRange(v); err != nil {
		return 0, nil, err
	}
	switch v.Get("order") {
	case "", "desc":
	case "asc":
		aq.Oldest = true
	default:
		return 0, nil, badRequest("invalid_query", "order", "order must be asc or desc")
	}
	if aq.Limit, err = limitParam(v); err != nil {
		return 0, nil, err
	}
	switch {
	case q.caller.Operator:
		aq.Tenant = v.Get("tenant")
	case v.Has("tenant") && v.Get("tenant") != q.caller.Tenant:
		return http.StatusOK, newList([]auditJSON{}, false, ""), nil // filters only narrow
	default:
		aq.Tenant = q.caller.Tenant
	}
	page, err := h.d.Audit(q.ctx(), aq)
	if err != nil {
		return 0, nil, cursorError(err)
	}
	out := make([]auditJSON, len(page.Records))
	for i, r := range page.Records {
		out[i] = toAudit(r)
	}
	return http.StatusOK, newList(out, page.More, page.NextCursor), nil
}

// GET /webhooks/{id}/versions: newest first. The versions of a deleted
// webhook stay listed for the tenant it belonged to.
func (h *handler) listVersions(q *request) (int, any, error) {
	id := q.r.PathValue("id")
	v, err := q.params("cursor", "limit")
	if err != nil {
		return 0, nil, err
	}
	aq := webhook.AuditQuery{WebhookID: id, Versions: true, Cursor: v.Get("cursor")}
	if aq.Limit, err = limitParam(v); err != nil {
		return 0, nil, err
	}
	if !q.caller.Operator {
		aq.Tenant = q.caller.Tenant
	}
	page, err := h.d.Audit(q.ctx(), aq)
	if errors.Is(err, webhook.ErrNoAudit) {
		if _, err := q.webhook(id); err != nil {
			return 0, nil, err
		}
	}
	if err != nil {
		return 0, nil, cursorError(err)
	}
	if len(page.Records) == 0 && aq.Cursor == "" {
		// No version the caller may see: a webhook it cannot see is not
		// found; one it can see predates the trail.
		if _, err := q.webhook(id); err != nil {
			return 0, nil, err
		}
	}
	out := make([]versionJSON, len(page.Records))
	for i, r := range page.Records {
		out[i] = toVersion(r)
	}
	return http.StatusOK, newList(out, page.More, page.NextCursor), nil
}

// cursorError names the cursor parameter in a query error, which is the
// only way a valid request's audit query can fail.
func cursorError(err error) error {
	if errors.Is(err, webhook.ErrInvalidQuery) {
		return badRequest("invalid_query", "cursor", "cursor is not a cursor of this query (keep the other parameters as they were)")
	}
	return err
}
