package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldhr/herald/webhook"
)

// webhook returns the webhook id if the caller may see it. Another
// tenant's webhook is not found, exactly as a missing one is.
func (q *request) webhook(id string) (webhook.Webhook, error) {
	w, err := q.h.d.Webhook(q.ctx(), id)
	if errors.Is(err, webhook.ErrNotFound) || err == nil && !q.sees(w.Tenant) {
		return webhook.Webhook{}, notFound("webhook", id)
	}
	return w, err
}

// GET /webhooks
func (h *handler) listWebhooks(q *request) (int, any, error) {
	v, err := q.params("tenant", "table", "disabled", "cursor", "limit")
	if err != nil {
		return 0, nil, err
	}
	limit, err := limitParam(v)
	if err != nil {
		return 0, nil, err
	}
	disabled, err := boolParam(v, "disabled")
	if err != nil {
		return 0, nil, err
	}
	parts := []string{q.scopeKey(), paramKey(v, "tenant"), v.Get("table"), v.Get("disabled")}
	cur, err := decodeCursor(v.Get("cursor"), "webhooks", parts...)
	if err != nil {
		return 0, nil, err
	}
	all, err := h.d.Webhooks(q.ctx())
	if err != nil {
		return 0, nil, err
	}
	var page []webhook.Webhook
	more := false
	for _, w := range all { // ordered by id
		switch {
		case w.ID <= cur.ID && cur.ID != "",
			!q.sees(w.Tenant),
			v.Has("tenant") && w.Tenant != v.Get("tenant"),
			v.Get("table") != "" && w.Table != v.Get("table"),
			disabled != nil && w.Disabled != *disabled:
			continue
		}
		if len(page) == limit {
			more = true
			break
		}
		page = append(page, w)
	}
	next := ""
	if len(page) > 0 {
		next = encodeCursor(cursor{Kind: "webhooks", ID: page[len(page)-1].ID}, parts...)
	}
	return http.StatusOK, newList(page, more, next), nil
}

// POST /webhooks
func (h *handler) createWebhook(q *request) (int, any, error) {
	var in webhook.Webhook
	if err := q.decode(&in, false); err != nil {
		return 0, nil, err
	}
	if err := q.ownNew(&in); err != nil {
		return 0, nil, err
	}
	if err := q.check(in); err != nil {
		return 0, nil, err
	}
	out, err := h.d.Register(q.ctx(), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, reveal(out), nil
}

// ownNew makes a new webhook the caller's: a tenant's belongs to it,
// gets an id from the server and cannot name an application client.
func (q *request) ownNew(in *webhook.Webhook) error {
	if q.caller.Operator {
		return nil
	}
	switch {
	case in.ID != "":
		return invalidWebhook("id", "id is assigned by the server")
	case in.Tenant != "" && in.Tenant != q.caller.Tenant:
		return invalidWebhook("tenant", "tenant must be the caller's own, or left out")
	case in.Client != "":
		return invalidWebhook("client", "client names an HTTP client of the application; only an operator may choose one")
	}
	in.Tenant = q.caller.Tenant
	return nil
}

// GET /webhooks/{id}
func (h *handler) getWebhook(q *request) (int, any, error) {
	w, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, w, nil
}

// PUT /webhooks/{id}
func (h *handler) putWebhook(q *request) (int, any, error) {
	cur, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	var raw json.RawMessage
	if err := q.decode(&raw, false); err != nil {
		return 0, nil, err
	}
	return q.update(cur, raw)
}

// PATCH /webhooks/{id}: a JSON merge patch (RFC 7396) over the webhook as
// GET shows it.
func (h *handler) patchWebhook(q *request) (int, any, error) {
	cur, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	var patch any
	if err := q.decode(&patch, false); err != nil {
		return 0, nil, err
	}
	if _, ok := patch.(map[string]any); !ok {
		return 0, nil, badRequest("invalid_json", "", "a merge patch must be a JSON object")
	}
	base, err := json.Marshal(cur) // masked: what GET shows
	if err != nil {
		return 0, nil, err
	}
	var doc any
	if err := decodeJSON(base, &doc); err != nil {
		return 0, nil, err
	}
	merged, err := json.Marshal(mergePatch(doc, patch))
	if err != nil {
		return 0, nil, err
	}
	return q.update(cur, merged)
}

// mergePatch applies an RFC 7396 merge patch.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

// update replaces cur with the webhook in body, as Dispatcher.Update
// does: masked values keep what is stored, and a version in the body
// makes the update conditional. Left out of the body, tenant and client
// keep their values: neither moves by omission.
func (q *request) update(cur webhook.Webhook, body []byte) (int, any, error) {
	var in webhook.Webhook
	if err := decodeJSON(body, &in); err != nil {
		return 0, nil, err
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(body, &present); err != nil {
		return 0, nil, badRequest("invalid_json", "", "the body must be a JSON object")
	}
	if in.ID != "" && in.ID != cur.ID {
		return 0, nil, invalidWebhook("id", "id differs from the one in the path")
	}
	in.ID = cur.ID
	if _, ok := present["tenant"]; !ok {
		in.Tenant = cur.Tenant
	}
	if _, ok := present["client"]; !ok {
		in.Client = cur.Client
	}
	if !q.caller.Operator {
		switch {
		case in.Tenant != q.caller.Tenant:
			return 0, nil, invalidWebhook("tenant", "tenant must be the caller's own, or left out")
		case in.Client != cur.Client:
			return 0, nil, invalidWebhook("client", "client names an HTTP client of the application; only an operator may change it")
		}
	}
	if err := q.check(in); err != nil {
		return 0, nil, err
	}
	out, err := q.h.d.Update(q.ctx(), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// check applies the application's policy, Options.Check.
func (q *request) check(w webhook.Webhook) error {
	if q.h.opts.Check == nil {
		return nil
	}
	err := q.h.opts.Check(q.r, q.caller, w)
	var ve *webhook.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ve):
		return err
	}
	return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: err.Error()}
}

// DELETE /webhooks/{id}
func (h *handler) deleteWebhook(q *request) (int, any, error) {
	w, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if err := h.d.Delete(q.ctx(), w.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// POST /webhooks/{id}/enable
func (h *handler) enableWebhook(q *request) (int, any, error) { return q.setDisabled(false) }

// POST /webhooks/{id}/disable
func (h *handler) disableWebhook(q *request) (int, any, error) { return q.setDisabled(true) }

func (q *request) setDisabled(disabled bool) (int, any, error) {
	w, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if err := q.decode(&struct{}{}, true); err != nil {
		return 0, nil, err
	}
	toggle := q.h.d.Enable
	if disabled {
		toggle = q.h.d.Disable
	}
	out, err := toggle(q.ctx(), w.ID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, out, nil
}

// rotateRequest is the body of POST /webhooks/{id}/rotate-secret; every
// field is optional.
type rotateRequest struct {
	// GraceSeconds is how long the old secret keeps signing beside the
	// new one; 0: a day.
	GraceSeconds int64 `json:"grace_seconds"`
	// RevokePrevious stops the old secret (and any earlier one still in
	// its grace) at once: for a secret that leaked.
	RevokePrevious bool `json:"revoke_previous"`
	// Secret is the new secret ("whsec_..." or an Ed25519 "whsk_..." key);
	// empty: one is generated, of the current kind.
	Secret string `json:"secret"`
}

// maxGrace bounds a rotation's grace.
const maxGrace = 365 * 24 * time.Hour

// POST /webhooks/{id}/rotate-secret
func (h *handler) rotateSecret(q *request) (int, any, error) {
	w, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	var in rotateRequest
	if err := q.decode(&in, true); err != nil {
		return 0, nil, err
	}
	if in.GraceSeconds < 0 || in.GraceSeconds > int64(maxGrace/time.Second) {
		return 0, nil, badRequest("invalid_request", "grace_seconds",
			"grace_seconds must be from 0 (a day) to %s; set revoke_previous to stop the old secret at once",
			strconv.FormatInt(int64(maxGrace/time.Second), 10))
	}
	grace := time.Duration(in.GraceSeconds) * time.Second
	if in.RevokePrevious {
		grace = -1
	}
	var out webhook.Webhook
	if in.Secret != "" {
		out, err = h.d.RotateSecretTo(q.ctx(), w.ID, in.Secret, grace)
	} else {
		out, err = h.d.RotateSecret(q.ctx(), w.ID, grace)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, reveal(out), nil
}
