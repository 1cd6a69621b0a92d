package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func TestPingGoodReceiver(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{Headers: map[string]string{"Authorization": "Bearer t0ken"}})
	rcv.Script(webhooktest.Answer{Status: http.StatusOK, Body: "pong",
		Header: http.Header{"X-Receiver": {"payroll"}, "Set-Cookie": {"session=abc"}}})

	res, err := k.Ping(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, res.OK())
	assert.NoError(t, res.Err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "pong", res.Body)
	assert.Equal(t, "payroll", res.Header.Get("X-Receiver"))
	assert.Equal(t, "xxxxx", res.Header.Get("Set-Cookie"), "cookies are credentials")
	assert.Positive(t, res.Latency)
	assert.Equal(t, http.MethodPost, res.Method)
	assert.Equal(t, rcv.URL+"/hook", res.URL)
	assert.Equal(t, "xxxxx", res.RequestHeaders["Authorization"], "what was sent is shown masked")
	assert.Equal(t, res.MessageID, res.RequestHeaders["Webhook-Id"])

	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.NoError(t, r.VerifyErr, "signed with the webhook's secret")
	assert.Equal(t, "Bearer t0ken", r.Header.Get("Authorization"), "the webhook's own headers go along")
	var body struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Data      struct {
			WebhookID string `json:"webhook_id"`
			Message   string `json:"message"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &body))
	assert.Equal(t, webhook.PingEventType, body.Type)
	assert.Equal(t, res.MessageID, body.ID)
	assert.Equal(t, res.MessageID, r.ID())
	assert.Equal(t, webhooktest.Epoch.Format(time.RFC3339Nano), body.Timestamp)
	assert.Equal(t, w.ID, body.Data.WebhookID)
	assert.Equal(t, "ping", body.Data.Message)

	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Empty(t, ds, "a ping leaves no delivery behind")
}

func TestPingFailingReceiver(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	rcv.Script(webhooktest.Answer{Status: http.StatusInternalServerError, Body: "boom"})
	res, err := k.Ping(t.Context(), w.ID)
	require.NoError(t, err, "the receiver's failure is in the result")
	assert.False(t, res.OK())
	assert.Equal(t, http.StatusInternalServerError, res.StatusCode)
	assert.Equal(t, "boom", res.Body)
	var de *webhook.DeliveryError
	require.ErrorAs(t, res.Err, &de)
	assert.Equal(t, http.StatusInternalServerError, de.StatusCode)
	assert.Equal(t, rcv.URL+"/hook", de.URL)
}

func TestPingUnreachable(t *testing.T) {
	t.Parallel()
	gone := httptest.NewServer(http.NotFoundHandler())
	addr := gone.URL
	gone.Close()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{URL: addr + "/hook?token=s3cret"})
	res, err := k.Ping(t.Context(), w.ID)
	require.NoError(t, err)
	assert.False(t, res.OK())
	assert.Zero(t, res.StatusCode)
	require.Error(t, res.Err)
	assert.NotContains(t, res.Err.Error(), "s3cret", "the query's secret is masked")
	assert.NotContains(t, res.URL, "s3cret")
	var ue *url.Error
	assert.ErrorAs(t, res.Err, &ue, "the transport error is kept")
}

func TestPingTimesOut(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{AttemptTimeout: 50 * time.Millisecond})
	w := register(t, k, rcv, webhook.Webhook{})
	stallAll(rcv)
	res, err := k.Ping(t.Context(), w.ID)
	require.NoError(t, err)
	assert.False(t, res.OK())
	assert.ErrorIs(t, res.Err, context.DeadlineExceeded)
}

func TestPingRefusesBlockedDestination(t *testing.T) {
	t.Parallel()
	// The name passes Register's checks; it resolves to a private address,
	// which only the transport's connect-time guard sees.
	d, err := webhook.New(webhook.Config{Store: memory.New(), Resolver: fixedResolver{netip.MustParseAddr("10.1.2.3")}})
	require.NoError(t, err)
	w := webhook.Webhook{Name: "intranet", Table: "employee", Ops: []webhook.Op{webhook.Insert}, URL: "http://hr-intranet.example/hook"}
	res, err := d.PingWebhook(t.Context(), w)
	require.NoError(t, err)
	assert.False(t, res.OK())
	assert.ErrorIs(t, res.Err, webhook.ErrBlockedDestination, "the same guarded transport as deliveries")

	w.URL = "http://localhost/hook"
	_, err = d.PingWebhook(t.Context(), w)
	assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, "what Register refuses is refused before any request")
}

type fixedResolver struct{ addr netip.Addr }

func (r fixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{r.addr}, nil
}

func TestPingWebhookUnsaved(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	rcv.AddSecret(secret)
	w := webhook.Webhook{Name: "new one", Table: "employee", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL + "/new", Secret: secret}
	res, err := k.PingWebhook(t.Context(), w)
	require.NoError(t, err)
	assert.True(t, res.OK())
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	assert.NoError(t, reqs[0].VerifyErr)
	assert.NotContains(t, string(reqs[0].Body), "webhook_id", "an unsaved webhook has no id yet")

	w.Secret = ""
	res, err = k.PingWebhook(t.Context(), w)
	require.NoError(t, err)
	assert.True(t, res.OK(), "a secret is generated for the ping")
	require.Len(t, rcv.Requests(), 2)
	assert.NotEmpty(t, rcv.Requests()[1].Header.Get("Webhook-Signature"))

	stored, err := k.Webhooks(t.Context())
	require.NoError(t, err)
	assert.Empty(t, stored, "nothing is stored")

	_, err = k.PingWebhook(t.Context(), webhook.Webhook{Table: "employee", URL: rcv.URL})
	assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, "validated as Register would")
	assert.Len(t, rcv.Requests(), 2, "an invalid webhook is not pinged")
}

func TestPingFormOverGET(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{Method: http.MethodGet,
		Body: transform.Body{Format: transform.Form, Fields: map[string]string{"emp": "key"}}})
	res, err := k.Ping(t.Context(), w.ID)
	require.NoError(t, err)
	require.True(t, res.OK())
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, http.MethodGet, reqs[0].Method)
	assert.NoError(t, reqs[0].VerifyErr, "the query string is signed")
	u, err := url.Parse(reqs[0].URL)
	require.NoError(t, err)
	assert.Equal(t, webhook.PingEventType, u.Query().Get("type"))
	assert.Equal(t, w.ID, u.Query().Get("webhook_id"))
	assert.Equal(t, res.MessageID, u.Query().Get("id"))
}

func TestPingUnknownWebhook(t *testing.T) {
	t.Parallel()
	k, _ := setup(t, webhook.Config{})
	_, err := k.Ping(t.Context(), "nope")
	assert.ErrorIs(t, err, webhook.ErrNotFound)
}

func TestPingSuccessClosesBreaker(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	k, rcv := setup(t, webhook.Config{Workers: 1, Observer: obs, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	w := register(t, k, rcv, webhook.Webhook{})
	status := failing(rcv)
	status.Store(http.StatusServiceUnavailable)
	publishKeys(t, k, 10)
	k.Drain(t)
	require.Len(t, obs.of(webhook.EventBreakerOpened), 1)

	res, err := k.Ping(t.Context(), w.ID)
	require.NoError(t, err)
	require.False(t, res.OK())
	assert.Empty(t, obs.of(webhook.EventBreakerClosed), "a failed ping changes nothing")

	status.Store(0)
	res, err = k.Ping(t.Context(), w.ID)
	require.NoError(t, err)
	require.True(t, res.OK())
	closed := obs.of(webhook.EventBreakerClosed)
	require.Len(t, closed, 1, "the endpoint answers again")
	h, err := k.Health(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.BreakerClosed, h.Breaker)
}

func TestPingNeverLeaksSecrets(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{URL: rcv.URL + "/hook?api_key=k3y",
		Headers: map[string]string{"X-Api-Key": "h3ader"}})
	rcv.Script(webhooktest.Answer{Status: http.StatusUnauthorized})
	res, err := k.Ping(t.Context(), w.ID)
	require.NoError(t, err)
	for _, s := range []string{res.URL, res.Err.Error(), res.RequestHeaders["X-Api-Key"]} {
		assert.NotContains(t, s, "k3y")
		assert.NotContains(t, s, "h3ader")
		assert.NotContains(t, s, w.Secret)
	}
}

func TestDeliveryErrorsMaskTheQuery(t *testing.T) {
	t.Parallel()
	gone := httptest.NewServer(http.NotFoundHandler())
	addr := gone.URL
	gone.Close()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{URL: addr + "/hook?token=s3cret"})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	k.Drain(t)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Contains(t, ds[0].LastError, "connection refused")
	assert.NotContains(t, ds[0].LastError, "s3cret", "net/http puts the whole URL in its errors")
}

// A "Test URL" button: send a signed webhook.ping to a webhook's endpoint
// and show what came back.
func ExampleDispatcher_Ping() {
	ctx := context.Background()
	provisioning := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ping struct {
			Type string `json:"type"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ping)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("got " + ping.Type))
	}))
	defer provisioning.Close()

	d, err := webhook.New(webhook.Config{Store: memory.New(), AllowPrivateNetworks: true})
	if err != nil {
		panic(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "IT provisioning", Table: "employee",
		Ops: []webhook.Op{webhook.Insert, webhook.Delete}, URL: provisioning.URL})
	if err != nil {
		panic(err)
	}
	res, err := d.Ping(ctx, w.ID)
	if err != nil {
		panic(err) // no such webhook
	}
	fmt.Println(res.OK(), res.StatusCode, res.Body)

	provisioning.Close() // the endpoint goes away
	res, _ = d.Ping(ctx, w.ID)
	fmt.Println(res.OK(), res.StatusCode, res.Err != nil)
	// Output:
	// true 200 got webhook.ping
	// false 0 true
}

func TestPingCarriesReceiverAuth(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	ts := newTokenServer(t, 3600)

	bearer := register(t, k, rcv, webhook.Webhook{Auth: &webhook.Auth{Type: webhook.AuthBearer, Token: "b3arer"}})
	res, err := k.Ping(t.Context(), bearer.ID)
	require.NoError(t, err)
	require.True(t, res.OK())
	assert.Equal(t, "xxxxx", res.RequestHeaders["Authorization"])

	// A stored OAuth2 webhook shares its token with its deliveries.
	stored := register(t, k, rcv, webhook.Webhook{Name: "oauth", Auth: ts.auth()})
	for range 2 {
		res, err = k.Ping(t.Context(), stored.ID)
		require.NoError(t, err)
		require.True(t, res.OK())
	}
	assert.Equal(t, 1, ts.count(), "the cached token serves the second ping")

	// Unsaved webhooks have no identity to cache a token under: each ping
	// fetches its own, so one form's token never reaches another's receiver.
	draft := webhook.Webhook{Name: "draft", Table: "employee", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL + "/draft", Auth: ts.auth()}
	for range 2 {
		res, err = k.PingWebhook(t.Context(), draft)
		require.NoError(t, err)
		require.True(t, res.OK())
	}
	assert.Equal(t, 3, ts.count())
	assert.Equal(t, []string{"Bearer b3arer", "Bearer tok-1", "Bearer tok-1", "Bearer tok-2", "Bearer tok-3"}, authHeaders(rcv.Requests()))
}
