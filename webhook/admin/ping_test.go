package admin_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

type pingView struct {
	OK              bool                `json:"ok"`
	MessageID       string              `json:"message_id"`
	Method          string              `json:"method"`
	URL             string              `json:"url"`
	RequestHeaders  map[string]string   `json:"request_headers"`
	StatusCode      int                 `json:"status_code"`
	LatencyMS       float64             `json:"latency_ms"`
	ResponseHeaders map[string][]string `json:"response_headers"`
	ResponseBody    string              `json:"response_body"`
	Error           string              `json:"error"`
}

func TestPing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(acme, map[string]any{"url": e.rcv.URL + "/hook?token=q-secret", "headers": map[string]string{"X-Api-Key": "h-secret"}})
	e.rcv.Script(webhooktest.Answer{Status: 200, Body: "pong", Header: http.Header{"X-Receiver": {"hr-sync"}}})

	a := e.do(acme, "POST", "/webhooks/"+h.ID+"/ping", nil)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var p pingView
	a.Decode(t, &p)
	assert.True(t, p.OK)
	assert.Equal(t, 200, p.StatusCode)
	assert.Equal(t, "pong", p.ResponseBody)
	assert.Equal(t, []string{"hr-sync"}, p.ResponseHeaders["X-Receiver"])
	assert.Equal(t, "POST", p.Method)
	assert.Equal(t, webhook.Masked, p.RequestHeaders["X-Api-Key"])
	assert.NotContains(t, string(a.Body), "q-secret")
	assert.NotContains(t, string(a.Body), "h-secret")
	reqs := e.rcv.Requests()
	require.Len(t, reqs, 1)
	require.NoError(t, reqs[0].VerifyErr, "the ping is signed with the webhook's secret")
	assert.Equal(t, p.MessageID, reqs[0].ID())
	assert.Empty(t, e.deliveries(acme, "/deliveries"), "a ping leaves no delivery")

	// A failing receiver is an answer, not an error of the API.
	e.rcv.Script(webhooktest.Answer{Status: 503, Body: "maintenance"})
	a = e.do(acme, "POST", "/webhooks/"+h.ID+"/ping", nil)
	require.Equal(t, http.StatusOK, a.Status)
	var failed pingView
	a.Decode(t, &failed)
	assert.False(t, failed.OK)
	assert.Equal(t, 503, failed.StatusCode)
	assert.Contains(t, failed.Error, "503")
	assert.NotContains(t, failed.Error, "q-secret")

	other := e.create(globex, nil)
	assert.Equal(t, http.StatusNotFound, e.do(acme, "POST", "/webhooks/"+other.ID+"/ping", nil).Status)
	assert.Len(t, e.rcv.Requests(), 2, "another tenant's webhook was not pinged")
}

func TestPingUnsaved(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.do(acme, "POST", "/webhooks/ping", map[string]any{"name": "draft", "table": "employee", "ops": []string{"INSERT"},
		"url": e.rcv.URL + "/draft"})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var p pingView
	a.Decode(t, &p)
	assert.True(t, p.OK)
	require.Len(t, e.rcv.Requests(), 1)
	assert.Equal(t, "/draft", e.rcv.Requests()[0].URL)
	assert.Empty(t, list[hookJSON](t, e.do(acme, "GET", "/webhooks", nil)).Data, "nothing is stored")

	a = e.do(acme, "POST", "/webhooks/ping", map[string]any{"name": "draft", "table": "employee", "ops": []string{"INSERT"},
		"url": "ftp://example.com"})
	require.Equal(t, http.StatusUnprocessableEntity, a.Status)
	var eb errBody
	a.Decode(t, &eb)
	assert.Equal(t, "url", eb.Error.Fields[0].Field)
	a = e.do(acme, "POST", "/webhooks/ping", map[string]any{"name": "draft", "table": "employee", "ops": []string{"INSERT"},
		"url": e.rcv.URL, "tenant": "globex"})
	assert.Equal(t, http.StatusUnprocessableEntity, a.Status)
	assert.Equal(t, http.StatusNotFound, e.do(acme, "GET", "/webhooks/ping", nil).Status, "GET /webhooks/{id} still owns the path")
	assert.Len(t, e.rcv.Requests(), 1)
}

func TestEndpointHealth(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(acme, nil)
	a := e.do(acme, "GET", "/webhooks/"+h.ID+"/health", nil)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	m := a.JSON(t)
	assert.Equal(t, "closed", m["breaker"])
	assert.Equal(t, false, m["disabled"])

	e.rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: http.StatusGone} })
	e.publish("acme", "E1", 3)
	e.k.Drain(t)
	m = e.do(acme, "GET", "/webhooks/"+h.ID+"/health", nil).JSON(t)
	assert.Equal(t, true, m["disabled"])
	assert.Equal(t, "receiver answered 410 Gone", m["disabled_reason"])
	rs := list[auditView](t, e.do(acme, "GET", "/audit?action=webhook.disabled", nil)).Data
	require.Len(t, rs, 1)
	assert.Equal(t, "herald", rs[0].Actor, "the dispatcher's own disabling is audited")
	assert.Equal(t, "receiver answered 410 Gone", rs[0].Reason)

	other := e.create(globex, nil)
	assert.Equal(t, http.StatusNotFound, e.do(acme, "GET", "/webhooks/"+other.ID+"/health", nil).Status)
}
