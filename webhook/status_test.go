package webhook_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	abort := http.Header{"Webhook-Delivery": {"abort-message"}}
	cases := []struct {
		status int
		header http.Header
		want   webhook.Verdict
	}{
		{200, nil, webhook.VerdictAccepted},
		{201, nil, webhook.VerdictAccepted},
		{204, nil, webhook.VerdictAccepted},
		{299, nil, webhook.VerdictAccepted},
		{200, abort, webhook.VerdictAccepted}, // a 2xx is a success whatever its headers
		{100, nil, webhook.VerdictRetry},
		{301, nil, webhook.VerdictRetry},
		{302, nil, webhook.VerdictRetry},
		{303, nil, webhook.VerdictRetry},
		{307, nil, webhook.VerdictRetry},
		{308, nil, webhook.VerdictRetry},
		{400, nil, webhook.VerdictRetry},
		{401, nil, webhook.VerdictRetry},
		{404, nil, webhook.VerdictRetry},
		{408, nil, webhook.VerdictRetry},
		{500, nil, webhook.VerdictRetry},
		{501, nil, webhook.VerdictRetry},
		{429, nil, webhook.VerdictBackOff},
		{502, nil, webhook.VerdictBackOff},
		{503, nil, webhook.VerdictBackOff},
		{504, nil, webhook.VerdictBackOff},
		{410, nil, webhook.VerdictGone},
		{400, abort, webhook.VerdictAbort},
		{500, abort, webhook.VerdictAbort},
		{503, abort, webhook.VerdictAbort},
		{410, abort, webhook.VerdictAbort}, // the abort header wins over 410
		{302, abort, webhook.VerdictAbort},
		{422, http.Header{"Webhook-Delivery": {" Abort-Message "}}, webhook.VerdictAbort},
		{422, http.Header{"Webhook-Delivery": {"abort"}}, webhook.VerdictRetry},
		{0, nil, webhook.VerdictRetry},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, webhook.Classify(c.status, c.header), "%d %v", c.status, c.header)
	}
	h := http.Header{}
	h.Set("webhook-delivery", "ABORT-MESSAGE")
	assert.Equal(t, webhook.VerdictAbort, webhook.Classify(409, h), "header name and value are case-insensitive")
}

func TestVerdictString(t *testing.T) {
	t.Parallel()
	for v, want := range map[webhook.Verdict]string{
		webhook.VerdictRetry: "retry", webhook.VerdictAccepted: "accepted", webhook.VerdictBackOff: "back off",
		webhook.VerdictGone: "gone", webhook.VerdictAbort: "abort", webhook.Verdict(99): "unknown verdict",
	} {
		assert.Equal(t, want, v.String())
	}
}

// deliveryAfter publishes one change, drains once and returns its delivery.
func deliveryAfter(t *testing.T, k *webhooktest.Kit, key string) webhook.Delivery {
	t.Helper()
	id, err := k.Publish(t.Context(), update(key, nil, map[string]any{"grade": 3}))
	require.NoError(t, err)
	k.Drain(t)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: id})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	return ds[0]
}

func TestGoneDisablesTheWebhookAndKeepsTheMessage(t *testing.T) {
	t.Parallel()
	// One attempt allowed: a 410 must still not end the message.
	k, rcv := setup(t, webhook.Config{Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	w := register(t, k, rcv, webhook.Webhook{})
	rcv.Script(webhooktest.Answer{Status: http.StatusGone})
	d := deliveryAfter(t, k, "E1")
	assert.Equal(t, webhook.Pending, d.Status, "the message stays pending, even after its last attempt")
	assert.Contains(t, d.LastError, "status 410")
	got, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled, "410 disables the webhook")

	k.Clock.Advance(24 * time.Hour)
	assert.Equal(t, 0, k.Drain(t), "nothing is sent while it is disabled")
	_, err = k.SetDisabled(t.Context(), w.ID, false)
	require.NoError(t, err)
	assert.Equal(t, 1, k.Drain(t))
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Equal(t, webhook.Delivered, ds[0].Status, "delivered once enabled again")
}

func TestRetryAfterIsHonouredWithinItsCap(t *testing.T) {
	t.Parallel()
	const limit = 10 * time.Minute
	cases := []struct {
		name   string
		status int
		value  string
		want   time.Duration // from Epoch
	}{
		{"seconds on 429", 429, "120", 120 * time.Second},
		{"seconds on 502", 502, "30", 30 * time.Second},
		{"seconds on 503", 503, "45", 45 * time.Second},
		{"seconds on 504", 504, "60", time.Minute},
		{"HTTP date", 503, webhooktest.Epoch.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"capped", 429, "86400", limit},
		{"date beyond the cap", 503, webhooktest.Epoch.Add(48 * time.Hour).Format(http.TimeFormat), limit},
		{"a number too large for a duration", 429, "9223372037", limit},
		{"sooner than the schedule", 429, "0", time.Second},
		{"a date in the past", 503, webhooktest.Epoch.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		{"negative", 429, "-5", time.Second},
		{"garbage", 429, "soon", time.Second},
		{"ignored on a 500", 500, "120", time.Second},
		{"ignored on a 400", 400, "120", time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			k, rcv := setup(t, webhook.Config{Retry: webhook.RetryPolicy{MaxRetryAfter: limit}})
			register(t, k, rcv, webhook.Webhook{})
			rcv.Script(webhooktest.Answer{Status: c.status, Header: http.Header{"Retry-After": {c.value}}})
			d := deliveryAfter(t, k, "E1")
			assert.Equal(t, webhook.Pending, d.Status)
			assert.Equal(t, webhooktest.Epoch.Add(c.want), d.NextAttempt)
		})
	}
}

func TestAbortHeaderStopsTheRetriesOfOneMessage(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 409, 422, 500, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			k, rcv := setup(t, webhook.Config{})
			register(t, k, rcv, webhook.Webhook{})
			rcv.Script(webhooktest.Answer{Status: status, Header: http.Header{"Webhook-Delivery": {"abort-message"}}})
			aborted := deliveryAfter(t, k, "E1")
			assert.Equal(t, webhook.Dead, aborted.Status, "no retry")
			assert.Equal(t, 1, aborted.Attempts)
			other := deliveryAfter(t, k, "E2")
			assert.Equal(t, webhook.Delivered, other.Status, "the webhook's other messages still flow")
			k.Settle(t, 5)
			assert.Len(t, rcv.Requests(), 2, "the aborted message was never sent again")
		})
	}
}

func TestRedirectAndErrorStatusesAreRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{301, 302, 303, 307, 308, 400, 401, 403, 404, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			k, rcv := setup(t, webhook.Config{})
			register(t, k, rcv, webhook.Webhook{})
			rcv.Script(webhooktest.Answer{Status: status, Header: http.Header{"Location": {"http://127.0.0.1:1/"}}})
			d := deliveryAfter(t, k, "E1")
			assert.Equal(t, webhook.Pending, d.Status)
			assert.Equal(t, 1, d.Attempts)
			assert.Equal(t, webhooktest.Epoch.Add(time.Second), d.NextAttempt, "on the schedule")
			k.Settle(t, 5)
			assert.Len(t, rcv.Delivered(), 1)
		})
	}
}
