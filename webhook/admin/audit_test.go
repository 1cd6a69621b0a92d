package admin_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/admin"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

type auditView struct {
	ID         string            `json:"id"`
	Time       time.Time         `json:"time"`
	Tenant     string            `json:"tenant"`
	Actor      string            `json:"actor"`
	Action     string            `json:"action"`
	WebhookID  string            `json:"webhook_id"`
	Version    int64             `json:"version"`
	DeliveryID string            `json:"delivery_id"`
	Reason     string            `json:"reason"`
	Changed    []string          `json:"changed"`
	Detail     map[string]string `json:"detail"`
}

type versionView struct {
	Version int64     `json:"version"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Changed []string  `json:"changed"`
	Webhook hookJSON  `json:"webhook"`
}

func actionsOf(rs []auditView) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Action+" by "+r.Actor)
	}
	return out
}

func TestAuditTrailThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(acme, map[string]any{"headers": map[string]string{"X-Api-Key": "k-1"}})
	require.Equal(t, http.StatusOK, e.do(acme2, "PATCH", "/webhooks/"+h.ID, map[string]any{"url": e.rcv.URL + "/v2",
		"headers": map[string]string{"X-Api-Key": "k-2"}}).Status)
	require.Equal(t, http.StatusOK, e.do(acme, "POST", "/webhooks/"+h.ID+"/disable", nil).Status)
	require.Equal(t, http.StatusOK, e.do(acme, "POST", "/webhooks/"+h.ID+"/enable", nil).Status)
	require.Equal(t, http.StatusOK, e.do(acme2, "POST", "/webhooks/"+h.ID+"/rotate-secret", nil).Status)
	e.rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: 500} })
	e.publish("acme", "E1", 3)
	e.k.Settle(t, 10)
	dead := e.deliveries(acme, "/deliveries")
	require.Len(t, dead, 1)
	require.Equal(t, http.StatusAccepted, e.do(acme, "POST", "/deliveries/"+dead[0].ID+"/replay", nil).Status)
	e.create(globex, nil)
	other := e.create(acme, nil)
	require.Equal(t, http.StatusNoContent, e.do(acme2, "DELETE", "/webhooks/"+other.ID, nil).Status)

	p := list[auditView](t, e.do(acme, "GET", "/audit", nil))
	assert.Equal(t, []string{
		"webhook.deleted by amir", "webhook.created by alice", "delivery.replayed by alice", "webhook.secret_rotated by amir",
		"webhook.enabled by alice", "webhook.disabled by alice", "webhook.updated by amir", "webhook.created by alice",
	}, actionsOf(p.Data), "newest first; globex's records are not acme's")
	updated := p.Data[6]
	assert.Equal(t, []string{"headers", "url"}, updated.Changed)
	assert.Equal(t, dead[0].ID, p.Data[2].DeliveryID)
	assert.Equal(t, "dead", p.Data[2].Detail["previous_status"])
	assert.Equal(t, "24h0m0s", p.Data[3].Detail["grace"])
	for _, r := range p.Data {
		assert.Equal(t, "acme", r.Tenant)
		assert.NotEmpty(t, r.ID)
	}

	asc := list[auditView](t, e.do(acme, "GET", "/audit?order=asc&limit=3", nil))
	assert.Equal(t, []string{"webhook.created by alice", "webhook.updated by amir", "webhook.disabled by alice"}, actionsOf(asc.Data))
	assert.True(t, asc.HasMore)
	next := list[auditView](t, e.do(acme, "GET", "/audit?order=asc&limit=3&cursor="+asc.NextCursor, nil))
	assert.Equal(t, "webhook.enabled by alice", actionsOf(next.Data)[0])
	assert.Equal(t, http.StatusBadRequest, e.do(acme, "GET", "/audit?limit=3&cursor="+asc.NextCursor, nil).Status,
		"a cursor is bound to its order")

	assert.Equal(t, []string{"webhook.updated by amir", "webhook.secret_rotated by amir", "webhook.deleted by amir"},
		actionsOf(list[auditView](t, e.do(acme, "GET", "/audit?actor=amir&order=asc", nil)).Data))
	assert.Len(t, list[auditView](t, e.do(acme, "GET", "/audit?webhook_id="+other.ID, nil)).Data, 2)
	assert.Len(t, list[auditView](t, e.do(acme, "GET", "/audit?action=webhook.created", nil)).Data, 2)
	assert.Empty(t, list[auditView](t, e.do(acme, "GET", "/audit?tenant=globex", nil)).Data, "filters only narrow")
	assert.Len(t, list[auditView](t, e.do(globex, "GET", "/audit", nil)).Data, 1)
	assert.Len(t, list[auditView](t, e.do(ops, "GET", "/audit", nil)).Data, 9, "an operator sees every record")
	assert.Len(t, list[auditView](t, e.do(ops, "GET", "/audit?tenant=globex", nil)).Data, 1)
	for _, bad := range []string{"?order=sideways", "?since=noon", "?limit=5000", "?cursor=x", "?who=me"} {
		assert.Equal(t, http.StatusBadRequest, e.do(acme, "GET", "/audit"+bad, nil).Status, bad)
	}

	// Versions: each definition change, newest first, secrets masked.
	v := list[versionView](t, e.do(acme, "GET", "/webhooks/"+h.ID+"/versions", nil))
	require.Len(t, v.Data, 5)
	assert.Equal(t, "webhook.secret_rotated", v.Data[0].Action)
	assert.Equal(t, "webhook.created", v.Data[4].Action)
	assert.Equal(t, e.rcv.URL+"/v2", v.Data[3].Webhook.URL)
	assert.Equal(t, e.rcv.URL+"/hook", v.Data[4].Webhook.URL)
	assert.Equal(t, v.Data[3].Version, v.Data[3].Webhook.Version)
	assert.Greater(t, v.Data[0].Version, v.Data[1].Version)
	body := string(e.do(acme, "GET", "/webhooks/"+h.ID+"/versions", nil).Body)
	for _, secret := range []string{"k-1", "k-2", h.Secret} {
		assert.NotContains(t, body, secret)
	}
	page := list[versionView](t, e.do(acme, "GET", "/webhooks/"+h.ID+"/versions?limit=2", nil))
	assert.True(t, page.HasMore)
	rest := list[versionView](t, e.do(acme, "GET", "/webhooks/"+h.ID+"/versions?limit=10&cursor="+page.NextCursor, nil))
	assert.Len(t, rest.Data, 3)
}

func TestAuditNeedsAStoreThatKeepsIt(t *testing.T) {
	t.Parallel()
	e := setup(t, func(_ *admin.Options, cfg *webhook.Config) { cfg.Store = bareStore{memory.New()} })
	h := e.create(acme, nil)
	a := e.do(acme, "GET", "/audit", nil)
	assert.Equal(t, http.StatusNotImplemented, a.Status)
	assert.Equal(t, "not_implemented", a.ErrorCode(t))
	assert.Equal(t, http.StatusNotImplemented, e.do(acme, "GET", "/webhooks/"+h.ID+"/versions", nil).Status)
	assert.Equal(t, http.StatusNotFound, e.do(globex, "GET", "/webhooks/"+h.ID+"/versions", nil).Status,
		"another tenant's webhook is not found, trail or not")
	assert.Equal(t, http.StatusOK, e.do(acme, "GET", "/webhooks/"+h.ID, nil).Status, "the rest works")
}

// bareStore hides the memory store's optional capabilities.
type bareStore struct{ store.Store }
