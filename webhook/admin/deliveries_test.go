package admin_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// deliveryView is the delivery JSON the tests read.
type deliveryView struct {
	ID             string    `json:"id"`
	WebhookID      string    `json:"webhook_id"`
	EventID        string    `json:"event_id"`
	MessageID      string    `json:"message_id"`
	Tenant         string    `json:"tenant"`
	Key            string    `json:"key"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempts"`
	NextAttemptAt  time.Time `json:"next_attempt_at"`
	LastError      string    `json:"last_error"`
	LastStatusCode int       `json:"last_status_code"`
	Replayed       bool      `json:"replayed"`
	CreatedAt      time.Time `json:"created_at"`
}

type attemptView struct {
	Number         int               `json:"number"`
	MessageID      string            `json:"message_id"`
	At             time.Time         `json:"at"`
	StatusCode     int               `json:"status_code"`
	LatencyMS      float64           `json:"latency_ms"`
	RequestHeaders map[string]string `json:"request_headers"`
	ResponseBody   string            `json:"response_body"`
	Error          string            `json:"error"`
	WebhookVersion int64             `json:"webhook_version"`
}

// deliveries reads every page of path (a delivery list) as token, limit
// items a page.
func (e *env) deliveries(token, path string) []deliveryView {
	e.t.Helper()
	u, err := url.Parse(path)
	require.NoError(e.t, err)
	var out []deliveryView
	for range 100 {
		p := list[deliveryView](e.t, e.do(token, "GET", u.String(), nil))
		out = append(out, p.Data...)
		if !p.HasMore {
			return out
		}
		q := u.Query()
		q.Set("cursor", p.NextCursor)
		u.RawQuery = q.Encode()
	}
	e.t.Fatal("paging did not end")
	return nil
}

func ids(ds []deliveryView) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

func TestDeliveryLog(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(acme, map[string]any{"headers": map[string]string{"Authorization": "Bearer t0ken"}})
	// E1's first attempt fails with 500, then it is delivered; E2 dies.
	e.rcv.Script(webhooktest.Answer{Status: 500, Body: "oops"})
	first := e.publish("acme", "E1", 3)
	e.k.Settle(t, 10)
	e.rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: 500} })
	e.k.Clock.Advance(time.Minute)
	second := e.publish("acme", "E2", 4)
	e.k.Settle(t, 10)
	e.rcv.Respond(nil)
	e.k.Clock.Advance(time.Minute)
	for i := range 3 {
		e.publish("acme", "E3", 5+i)
	}
	e.k.Settle(t, 10)

	all := e.deliveries(acme, "/deliveries?limit=2")
	require.Len(t, all, 5, "every delivery, page by page")
	assert.Equal(t, ids(e.deliveries(acme, "/deliveries")), ids(all), "pages add up to the whole")
	d1 := all[0]
	assert.Equal(t, first, d1.EventID)
	assert.Equal(t, first, d1.MessageID)
	assert.Equal(t, h.ID, d1.WebhookID)
	assert.Equal(t, "acme", d1.Tenant)
	assert.Equal(t, "E1", d1.Key)
	assert.Equal(t, "delivered", d1.Status)
	assert.Equal(t, 2, d1.Attempts)
	assert.Equal(t, webhooktest.Epoch, d1.CreatedAt)
	assert.True(t, d1.NextAttemptAt.IsZero(), "only a pending delivery has a next attempt")

	dead := e.deliveries(acme, "/deliveries?status=dead")
	require.Len(t, dead, 1)
	assert.Equal(t, second, dead[0].EventID)
	assert.Equal(t, 500, dead[0].LastStatusCode)
	assert.Len(t, e.deliveries(acme, "/deliveries?key=E3"), 3)
	assert.Len(t, e.deliveries(acme, "/deliveries?event_id="+first), 1)
	assert.Len(t, e.deliveries(acme, "/deliveries?webhook_id="+h.ID), 5)
	assert.Len(t, e.deliveries(acme, "/webhooks/"+h.ID+"/deliveries?key=E3&limit=1"), 3)
	since := url.QueryEscape(webhooktest.Epoch.Add(time.Minute).Format(time.RFC3339))
	until := url.QueryEscape(webhooktest.Epoch.Add(2 * time.Minute).Format(time.RFC3339))
	assert.Equal(t, []string{dead[0].ID}, ids(e.deliveries(acme, "/deliveries?since="+since+"&until="+until)))

	// The attempts of one delivery.
	a := e.do(acme, "GET", "/deliveries/"+d1.ID, nil)
	require.Equal(t, http.StatusOK, a.Status)
	var one deliveryView
	a.Decode(t, &one)
	assert.Equal(t, d1.ID, one.ID)
	as := list[attemptView](t, e.do(acme, "GET", "/deliveries/"+d1.ID+"/attempts", nil)).Data
	require.Len(t, as, 2)
	assert.Equal(t, 1, as[0].Number)
	assert.Equal(t, 500, as[0].StatusCode)
	assert.Equal(t, "oops", as[0].ResponseBody)
	assert.Equal(t, 200, as[1].StatusCode)
	assert.Equal(t, first, as[0].MessageID)
	assert.Equal(t, h.Version, as[0].WebhookVersion)
	assert.Equal(t, webhook.Masked, as[0].RequestHeaders["Authorization"], "credentials in the log are masked")
	assert.NotContains(t, string(e.do(acme, "GET", "/deliveries/"+d1.ID+"/attempts", nil).Body), "t0ken")

	// Bad filters.
	for _, bad := range []string{"?status=lost", "?since=yesterday", "?since=" + until + "&until=" + since,
		"?cursor=garbage", "?webhookid=" + h.ID, "?limit=-1"} {
		a := e.do(acme, "GET", "/deliveries"+bad, nil)
		assert.Equal(t, http.StatusBadRequest, a.Status, bad)
		assert.Equal(t, "invalid_query", a.ErrorCode(t), bad)
	}
	p := list[deliveryView](t, e.do(acme, "GET", "/deliveries?limit=1", nil))
	a = e.do(acme, "GET", "/deliveries?status=dead&limit=1&cursor="+p.NextCursor, nil)
	assert.Equal(t, http.StatusBadRequest, a.Status, "a cursor is bound to its filters")
}

func TestReplay(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.create(acme, nil)
	e.rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: 500} })
	event := e.publish("acme", "E1", 3)
	e.k.Settle(t, 10)
	dead := e.deliveries(acme, "/deliveries?status=dead")
	require.Len(t, dead, 1)
	before := len(e.rcv.Requests())

	e.rcv.Respond(nil)
	a := e.do(acme, "POST", "/deliveries/"+dead[0].ID+"/replay", nil)
	require.Equal(t, http.StatusAccepted, a.Status, "%s", a.Body)
	var d deliveryView
	a.Decode(t, &d)
	assert.Equal(t, "pending", d.Status)
	assert.True(t, d.Replayed)
	assert.Equal(t, 0, d.Attempts, "a replay starts a fresh count")
	assert.False(t, d.NextAttemptAt.IsZero())

	a = e.do(acme, "POST", "/deliveries/"+dead[0].ID+"/replay", nil)
	assert.Equal(t, http.StatusConflict, a.Status, "a pending delivery cannot be replayed")
	assert.Equal(t, "delivery_pending", a.ErrorCode(t))

	e.k.Settle(t, 3)
	reqs := e.rcv.Requests()
	require.Len(t, reqs, before+1)
	last := reqs[len(reqs)-1]
	require.NoError(t, last.VerifyErr, "the replay is signed")
	assert.Equal(t, event, last.ID(), "under its event id")
	assert.Equal(t, "delivered", e.deliveries(acme, "/deliveries")[0].Status)
}

func TestRecoverInBulk(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(acme, nil)
	other := e.create(globex, nil)
	e.rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: 500} })
	for i := range 3 {
		e.publish("acme", "E1", 3+i)
	}
	e.publish("acme", "E2", 3)
	e.k.Settle(t, 100)
	require.Len(t, e.deliveries(acme, "/deliveries?status=dead"), 4)
	e.rcv.Respond(nil)
	sent := len(e.rcv.Requests())

	a := e.do(acme, "POST", "/webhooks/"+h.ID+"/recover", map[string]any{"key": "E1", "dry_run": true})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.Equal(t, map[string]any{"matched": 3.0, "replayed": 0.0, "in_order": true, "dry_run": true}, a.JSON(t))
	assert.Len(t, e.deliveries(acme, "/deliveries?status=dead"), 4, "a dry run sends nothing")

	a = e.do(acme, "POST", "/webhooks/"+h.ID+"/recover", nil)
	require.Equal(t, http.StatusAccepted, a.Status, "%s", a.Body)
	assert.Equal(t, 4.0, a.JSON(t)["replayed"])
	e.k.Settle(t, 10)
	reqs := e.rcv.Requests()[sent:]
	require.Len(t, reqs, 4)
	for _, r := range reqs {
		require.NoError(t, r.VerifyErr)
	}
	assert.Empty(t, e.deliveries(acme, "/deliveries?status=dead"))

	rec := list[auditView](t, e.do(acme, "GET", "/audit?action=deliveries.recovered", nil)).Data
	require.Len(t, rec, 1, "a dry run is not recorded")
	assert.Equal(t, "alice", rec[0].Actor)
	assert.Equal(t, "4", rec[0].Detail["replayed"])
	assert.Equal(t, "dead", rec[0].Detail["status"])
	assert.Equal(t, "acme", rec[0].Detail["tenant"])

	assert.Equal(t, http.StatusNotFound, e.do(acme, "POST", "/webhooks/"+other.ID+"/recover", nil).Status,
		"a tenant cannot recover another's deliveries")
	for _, bad := range []map[string]any{{"status": "pending"}, {"status": "lost"}, {"tenant": "globex"},
		{"since": "2026-03-02T10:00:00Z", "until": "2026-03-02T09:00:00Z"}, {"limit": 3}} {
		assert.Equal(t, http.StatusBadRequest, e.do(acme, "POST", "/webhooks/"+h.ID+"/recover", bad).Status, "%v", bad)
	}
}
