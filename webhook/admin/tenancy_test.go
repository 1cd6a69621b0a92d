package admin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/webhook/webhooktest"
)

// tenants is two tenants, each with a webhook and a delivery, and an
// operator's webhook that serves every tenant.
type tenants struct {
	*env
	acmeHook, globexHook, globalHook hookJSON
	acmeDelivery, globexDelivery     deliveryView
	globalForAcme                    deliveryView // the global webhook's delivery of acme's change
	acmeEvent                        string
}

func twoTenants(t *testing.T) *tenants {
	e := setup(t)
	ts := &tenants{env: e}
	ts.acmeHook = e.create(acme, nil)
	ts.globexHook = e.create(globex, nil)
	ts.globalHook = e.create(ops, map[string]any{"name": "data warehouse"})
	e.rcv.Respond(func(webhooktest.Request) webhooktest.Answer {
		return webhooktest.Answer{Status: 500, Body: "warehouse says no"}
	})
	ts.acmeEvent = e.publish("acme", "E1", 3)
	e.publish("globex", "G1", 3)
	e.k.Settle(t, 10)
	e.rcv.Respond(nil)
	all := e.deliveries(ops, "/deliveries")
	require.Len(t, all, 4)
	for _, d := range all {
		switch {
		case d.WebhookID == ts.acmeHook.ID:
			ts.acmeDelivery = d
		case d.WebhookID == ts.globexHook.ID:
			ts.globexDelivery = d
		case d.WebhookID == ts.globalHook.ID && d.Tenant == "acme":
			ts.globalForAcme = d
		}
	}
	require.NotEmpty(t, ts.acmeDelivery.ID)
	require.NotEmpty(t, ts.globexDelivery.ID)
	require.NotEmpty(t, ts.globalForAcme.ID)
	return ts
}

func TestTenantCannotTouchAnotherTenantsWebhook(t *testing.T) {
	t.Parallel()
	ts := twoTenants(t)
	missing := "0190f000-0000-7000-8000-000000000000"
	for _, foreign := range []string{ts.globexHook.ID, ts.globalHook.ID} {
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/webhooks/%s", ""},
			{"PUT", "/webhooks/%s", `{"name":"mine now","table":"employee","ops":["INSERT"],"url":"https://evil.example/"}`},
			{"PATCH", "/webhooks/%s", `{"url":"https://evil.example/"}`},
			{"DELETE", "/webhooks/%s", ""},
			{"POST", "/webhooks/%s/enable", ""},
			{"POST", "/webhooks/%s/disable", ""},
			{"POST", "/webhooks/%s/rotate-secret", ""},
			{"POST", "/webhooks/%s/explain", `{"change":{"op":"INSERT","new":{}}}`},
			{"GET", "/webhooks/%s/versions", ""},
			{"GET", "/webhooks/%s/deliveries", ""},
			{"POST", "/webhooks/%s/ping", ""},
			{"GET", "/webhooks/%s/health", ""},
			{"POST", "/webhooks/%s/recover", ""},
		} {
			var body any
			if r.body != "" {
				body = r.body
			}
			got := ts.do(acme, r.method, strings.Replace(r.path, "%s", foreign, 1), body)
			assert.Equal(t, http.StatusNotFound, got.Status, "%s %s: %s", r.method, r.path, got.Body)
			gone := ts.do(acme, r.method, strings.Replace(r.path, "%s", missing, 1), body)
			assert.Equal(t, gone.Status, got.Status)
			assert.Equal(t, strings.ReplaceAll(string(gone.Body), missing, foreign), string(got.Body),
				"another tenant's webhook answers exactly as a missing one: %s %s", r.method, r.path)
		}
	}
	// Nothing changed.
	for _, h := range []hookJSON{ts.globexHook, ts.globalHook} {
		w, err := ts.k.Webhook(t.Context(), h.ID)
		require.NoError(t, err)
		assert.Equal(t, h.Version, w.Version)
		assert.False(t, w.Disabled)
	}
	p := list[hookJSON](t, ts.do(acme, "GET", "/webhooks", nil))
	require.Len(t, p.Data, 1, "a tenant lists its own webhooks only")
	assert.Equal(t, ts.acmeHook.ID, p.Data[0].ID)
	assert.Empty(t, list[hookJSON](t, ts.do(acme, "GET", "/webhooks?tenant=globex", nil)).Data, "filters only narrow")
	assert.Empty(t, list[hookJSON](t, ts.do(acme, "GET", "/webhooks?tenant=", nil)).Data)
	assert.Len(t, list[hookJSON](t, ts.do(ops, "GET", "/webhooks", nil)).Data, 3, "an operator sees every webhook")
	assert.Len(t, list[hookJSON](t, ts.do(ops, "GET", "/webhooks?tenant=", nil)).Data, 1, "tenant= lists the global ones")
}

func TestTenantCannotReadOrReplayAnotherTenantsDeliveries(t *testing.T) {
	t.Parallel()
	ts := twoTenants(t)
	for _, foreign := range []deliveryView{ts.globexDelivery, ts.globalForAcme} {
		for _, r := range []struct{ method, path string }{
			{"GET", "/deliveries/%s"},
			{"GET", "/deliveries/%s/attempts"},
			{"POST", "/deliveries/%s/replay"},
		} {
			got := ts.do(acme, r.method, strings.Replace(r.path, "%s", foreign.ID, 1), nil)
			assert.Equal(t, http.StatusNotFound, got.Status, "%s %s", r.method, r.path)
			assert.NotContains(t, string(got.Body), "warehouse")
		}
	}
	assert.Equal(t, http.StatusOK, ts.do(acme, "GET", "/deliveries/"+ts.acmeDelivery.ID, nil).Status)
	d, err := ts.k.Delivery(t.Context(), ts.globexDelivery.ID)
	require.NoError(t, err)
	assert.Equal(t, "dead", string(d.Status), "the foreign replay did nothing")

	// Lists and filters show a tenant only its own.
	assert.Equal(t, []string{ts.acmeDelivery.ID}, ids(ts.deliveries(acme, "/deliveries")),
		"not globex's, and not the operator's webhook's delivery of acme's own change")
	for _, q := range []string{
		"webhook_id=" + ts.globexHook.ID,
		"webhook_id=" + ts.globalHook.ID,
		"tenant=globex",
		"event_id=" + url.QueryEscape(ts.globexDelivery.EventID),
		"key=G1",
	} {
		assert.Empty(t, ts.deliveries(acme, "/deliveries?"+q), q)
	}
	assert.Equal(t, []string{ts.acmeDelivery.ID}, ids(ts.deliveries(acme, "/deliveries?event_id="+ts.acmeEvent)))
	assert.Len(t, ts.deliveries(ops, "/deliveries?event_id="+ts.acmeEvent), 2, "the operator sees both")
	assert.Len(t, ts.deliveries(ops, "/deliveries?tenant=globex"), 2)
	assert.Len(t, ts.deliveries(globex, "/deliveries"), 1)

	// An operator's cursor does not work for a tenant.
	p := list[deliveryView](t, ts.do(ops, "GET", "/deliveries?limit=1", nil))
	assert.Equal(t, http.StatusBadRequest, ts.do(acme, "GET", "/deliveries?limit=1&cursor="+p.NextCursor, nil).Status)
}

func TestTenantPagesSkipWhatItCannotSee(t *testing.T) {
	t.Parallel()
	e := setup(t)
	mine := e.create(acme, nil)
	e.create(ops, map[string]any{"name": "warehouse"}) // gets a delivery of every acme change too
	for i := range 7 {
		e.publish("acme", "E"+string(rune('0'+i)), 3)
	}
	got := e.deliveries(acme, "/deliveries?limit=3")
	require.Len(t, got, 7)
	for _, d := range got {
		assert.Equal(t, mine.ID, d.WebhookID)
	}
	assert.Len(t, e.deliveries(ops, "/deliveries?limit=3"), 14)
}

func TestDeletedWebhookStaysItsTenants(t *testing.T) {
	t.Parallel()
	ts := twoTenants(t)
	require.Equal(t, http.StatusNoContent, ts.do(acme, "DELETE", "/webhooks/"+ts.acmeHook.ID, nil).Status)
	assert.Equal(t, http.StatusOK, ts.do(acme, "GET", "/deliveries/"+ts.acmeDelivery.ID, nil).Status,
		"the deliveries of a deleted webhook stay visible to its tenant")
	assert.Equal(t, http.StatusNotFound, ts.do(globex, "GET", "/deliveries/"+ts.acmeDelivery.ID, nil).Status)
	v := list[versionView](t, ts.do(acme, "GET", "/webhooks/"+ts.acmeHook.ID+"/versions", nil))
	assert.Len(t, v.Data, 1, "and so do its versions")
	assert.Equal(t, http.StatusNotFound, ts.do(globex, "GET", "/webhooks/"+ts.acmeHook.ID+"/versions", nil).Status)
}

func TestTenantCreatesOnlyForItself(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(acme, map[string]any{"tenant": "acme"})
	assert.Equal(t, "acme", h.Tenant)
	h = e.create(acme, nil)
	assert.Equal(t, "acme", h.Tenant, "a tenant's webhook is its own even when it does not say")
	g := e.create(ops, nil)
	assert.Empty(t, g.Tenant, "an operator's webhook without a tenant serves every tenant")
	a := e.do(acme, "PATCH", "/webhooks/"+h.ID, map[string]any{"tenant": ""})
	assert.Equal(t, http.StatusUnprocessableEntity, a.Status, "a tenant cannot make its webhook global")
	a = e.do(acme, "PATCH", "/webhooks/"+h.ID, map[string]any{"tenant": nil})
	require.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, "acme", a.JSON(t)["tenant"], "removing the tenant keeps it, as leaving it out does")
}
