package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/heraldhr/herald/webhook"
)

// owner is the tenant a webhook belongs to, as far as it is known.
type owner struct {
	tenant string
	known  bool
}

// ownerOf tells whose webhook id is, reading each webhook once per
// request. A deleted webhook's tenant comes from its deletion in the
// audit trail; without one it is unknown, and only an operator sees its
// deliveries.
func (q *request) ownerOf(id string) (owner, error) {
	if o, ok := q.owners[id]; ok {
		return o, nil
	}
	var o owner
	w, err := q.h.d.Webhook(q.ctx(), id)
	switch {
	case err == nil:
		o = owner{tenant: w.Tenant, known: true}
	case errors.Is(err, webhook.ErrNotFound):
		page, err := q.h.d.Audit(q.ctx(), webhook.AuditQuery{WebhookID: id, Action: webhook.AuditWebhookDeleted, Limit: 1})
		switch {
		case err == nil && len(page.Records) > 0:
			o = owner{tenant: page.Records[0].Tenant, known: true}
		case err != nil && !errors.Is(err, webhook.ErrNoAudit):
			return owner{}, err
		}
	default:
		return owner{}, err
	}
	if q.owners == nil {
		q.owners = map[string]owner{}
	}
	q.owners[id] = o
	return o, nil
}

// seesDelivery reports whether the caller may see dl: an operator sees
// every delivery; a tenant those of its own webhooks for its own changes.
func (q *request) seesDelivery(dl webhook.Delivery) (bool, error) {
	if q.caller.Operator {
		return true, nil
	}
	if dl.Tenant != q.caller.Tenant {
		return false, nil
	}
	o, err := q.ownerOf(dl.WebhookID)
	return o.known && o.tenant == q.caller.Tenant, err
}

// delivery returns delivery id if the caller may see it; another
// tenant's is not found, exactly as a missing one is.
func (q *request) delivery(id string) (webhook.Delivery, error) {
	dl, err := q.h.d.Delivery(q.ctx(), id)
	if errors.Is(err, webhook.ErrNotFound) {
		return webhook.Delivery{}, notFound("delivery", id)
	}
	if err != nil {
		return webhook.Delivery{}, err
	}
	ok, err := q.seesDelivery(dl)
	if err != nil {
		return webhook.Delivery{}, err
	}
	if !ok {
		return webhook.Delivery{}, notFound("delivery", id)
	}
	return dl, nil
}

// scanBudget bounds how many deliveries one page of a tenant's list reads
// while it skips those of webhooks the tenant does not own; past it the
// page ends early, with a cursor to carry on.
const scanBudget = 5000

// GET /deliveries
func (h *handler) listDeliveries(q *request) (int, any, error) {
	return q.listDeliveries("")
}

// GET /webhooks/{id}/deliveries
func (h *handler) listWebhookDeliveries(q *request) (int, any, error) {
	w, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return q.listDeliveries(w.ID)
}

// listDeliveries answers a page of deliveries, oldest first; webhookID,
// when set, comes from the path and was checked.
func (q *request) listDeliveries(webhookID string) (int, any, error) {
	names := []string{"event_id", "status", "key", "since", "until", "tenant", "cursor", "limit"}
	if webhookID == "" {
		names = append(names, "webhook_id")
	}
	v, err := q.params(names...)
	if err != nil {
		return 0, nil, err
	}
	f, err := deliveryFilter(v)
	if err != nil {
		return 0, nil, err
	}
	limit, err := limitParam(v)
	if err != nil {
		return 0, nil, err
	}
	if webhookID != "" {
		f.WebhookID = webhookID
	}
	parts := []string{q.scopeKey(), f.WebhookID, f.EventID, string(f.Status), f.Key, paramKey(v, "tenant"),
		v.Get("since"), v.Get("until")}
	cur, err := decodeCursor(v.Get("cursor"), "deliveries", parts...)
	if err != nil {
		return 0, nil, err
	}
	f.After = cur.Seq
	page, more, last, err := q.scanDeliveries(f, v.Has("tenant"), limit)
	if err != nil {
		return 0, nil, err
	}
	next := ""
	if last > 0 {
		next = encodeCursor(cursor{Kind: "deliveries", Seq: last}, parts...)
	}
	out := make([]deliveryJSON, len(page))
	for i, dl := range page {
		out[i] = toDelivery(dl)
	}
	return http.StatusOK, newList(out, more, next), nil
}

// scanDeliveries reads up to limit deliveries matching f that the caller
// sees, and returns them with whether more may follow and the sequence
// to continue after (0: nothing was read).
func (q *request) scanDeliveries(f webhook.DeliveryQuery, tenantGiven bool, limit int) (page []webhook.Delivery, more bool, last int64, err error) {
	if !q.caller.Operator {
		if tenantGiven && f.Tenant != q.caller.Tenant {
			return nil, false, 0, nil // filters only narrow what the caller sees
		}
		f.Tenant = q.caller.Tenant
		if f.WebhookID != "" {
			o, err := q.ownerOf(f.WebhookID)
			if err != nil {
				return nil, false, 0, err
			}
			if !o.known || o.tenant != q.caller.Tenant {
				return nil, false, 0, nil
			}
		}
	} else if !tenantGiven {
		f.Tenant = ""
	}
	f.Limit = limit + 1
	if !q.caller.Operator {
		// Some rows may be skipped: read in larger steps.
		f.Limit = max(f.Limit, 200)
	}
	scanned := 0
	for {
		ds, err := q.h.d.Deliveries(q.ctx(), f)
		if err != nil {
			return nil, false, 0, err
		}
		for _, dl := range ds {
			ok, err := q.seesDelivery(dl)
			if err != nil {
				return nil, false, 0, err
			}
			if !ok {
				last = dl.Seq
				continue
			}
			if len(page) == limit {
				return page, true, last, nil
			}
			page = append(page, dl)
			last = dl.Seq
		}
		scanned += len(ds)
		if len(ds) < f.Limit {
			return page, false, last, nil
		}
		if scanned >= scanBudget {
			return page, true, last, nil
		}
		f.After = ds[len(ds)-1].Seq
	}
}

// deliveryFilter reads the filters of a delivery list.
func deliveryFilter(v url.Values) (webhook.DeliveryQuery, error) {
	f := webhook.DeliveryQuery{WebhookID: v.Get("webhook_id"), EventID: v.Get("event_id"), Key: v.Get("key"),
		Tenant: v.Get("tenant"), Status: webhook.Status(v.Get("status"))}
	if f.Status != "" && !f.Status.Valid() {
		return f, badRequest("invalid_query", "status", "status must be one of pending, delivered, dead, skipped, canceled")
	}
	var err error
	f.Since, f.Until, err = timeRange(v)
	return f, err
}

// GET /deliveries/{id}
func (h *handler) getDelivery(q *request) (int, any, error) {
	dl, err := q.delivery(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toDelivery(dl), nil
}

// GET /deliveries/{id}/attempts
func (h *handler) listAttempts(q *request) (int, any, error) {
	dl, err := q.delivery(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	as, err := h.d.Attempts(q.ctx(), dl.ID)
	if err != nil {
		return 0, nil, err
	}
	out := make([]attemptJSON, len(as))
	for i, a := range as {
		out[i] = toAttempt(a)
	}
	return http.StatusOK, newList(out, false, ""), nil
}

// POST /deliveries/{id}/replay
func (h *handler) replayDelivery(q *request) (int, any, error) {
	dl, err := q.delivery(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if err := q.decode(&struct{}{}, true); err != nil {
		return 0, nil, err
	}
	if err := h.d.Replay(q.ctx(), dl.ID); err != nil {
		return 0, nil, err
	}
	if dl, err = h.d.Delivery(q.ctx(), dl.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, toDelivery(dl), nil
}

// scopeKey names what the caller sees, for binding cursors to it.
func (q *request) scopeKey() string {
	if q.caller.Operator {
		return "operator"
	}
	return "tenant:" + q.caller.Tenant
}

// paramKey tells a parameter given empty from one left out.
func paramKey(v url.Values, name string) string {
	if !v.Has(name) {
		return ""
	}
	return "=" + strconv.Quote(v.Get(name))
}
