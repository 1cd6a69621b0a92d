package webhook_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func TestDeliveryLogPages(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	a := register(t, k, rcv, webhook.Webhook{Name: "a"})
	b := register(t, k, rcv, webhook.Webhook{Name: "b"})
	ctx := t.Context()
	for i := range 23 {
		tenant := []string{"acme", "globex"}[i%2]
		_, err := k.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Insert, Key: fmt.Sprintf("E%d", i%4),
			Tenant: tenant, New: map[string]any{"seq": i}})
		require.NoError(t, err)
		k.Clock.Advance(time.Minute)
	}

	q := webhook.LogQuery{WebhookID: a.ID, Tenant: "acme", Limit: 5}
	var got []string
	pages := 0
	for {
		page, err := k.DeliveryLog(ctx, q)
		require.NoError(t, err)
		pages++
		for _, d := range page.Deliveries {
			assert.Equal(t, a.ID, d.WebhookID)
			assert.Equal(t, "acme", d.Tenant)
			got = append(got, d.ID)
		}
		require.NotEmpty(t, page.NextCursor)
		if !page.More {
			break
		}
		require.Len(t, page.Deliveries, 5, "only a last page is short")
		q.Cursor = page.NextCursor
	}
	assert.Len(t, got, 12)
	assert.Equal(t, 3, pages, "no empty page at the end")
	all, err := k.Deliveries(ctx, webhook.DeliveryQuery{WebhookID: a.ID, Tenant: "acme"})
	require.NoError(t, err)
	var want []string
	for _, d := range all {
		want = append(want, d.ID)
	}
	assert.Equal(t, want, got, "every match once, oldest first")

	first, err := k.DeliveryLog(ctx, webhook.LogQuery{WebhookID: b.ID, Key: "E1", Since: webhooktest.Epoch.Add(5 * time.Minute),
		Until: webhooktest.Epoch.Add(18 * time.Minute), Limit: 2})
	require.NoError(t, err)
	require.Len(t, first.Deliveries, 2)
	assert.True(t, first.More)
	for _, d := range first.Deliveries {
		assert.Equal(t, "E1", d.Key)
	}
	exact, err := k.DeliveryLog(ctx, webhook.LogQuery{WebhookID: b.ID, Key: "E1", Since: webhooktest.Epoch.Add(5 * time.Minute),
		Until: webhooktest.Epoch.Add(18 * time.Minute), Limit: 2, Cursor: first.NextCursor})
	require.NoError(t, err)
	assert.Len(t, exact.Deliveries, 2, "E1 at minutes 5, 9, 13 and 17")
	assert.False(t, exact.More)

	def, err := k.DeliveryLog(ctx, webhook.LogQuery{})
	require.NoError(t, err)
	assert.Len(t, def.Deliveries, 46, "the default page is 50")
	assert.False(t, def.More)

	_, err = k.DeliveryLog(ctx, webhook.LogQuery{WebhookID: b.ID, Cursor: first.NextCursor})
	assert.ErrorIs(t, err, webhook.ErrInvalidQuery, "a cursor is bound to its filters")
	for _, c := range []string{"garbage", "MS4xLjAwMDAwMDAw", "%%%"} {
		_, err = k.DeliveryLog(ctx, webhook.LogQuery{Cursor: c})
		assert.ErrorIs(t, err, webhook.ErrInvalidQuery, c)
	}
	_, err = k.DeliveryLog(ctx, webhook.LogQuery{Status: "lost"})
	assert.ErrorIs(t, err, webhook.ErrInvalidQuery)
	_, err = k.DeliveryLog(ctx, webhook.LogQuery{Limit: -1})
	assert.ErrorIs(t, err, webhook.ErrInvalidQuery)
}

func TestDeliveryLogCursorFollowsNewDeliveries(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	ctx := t.Context()
	_, err := k.Publish(ctx, update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	page, err := k.DeliveryLog(ctx, webhook.LogQuery{})
	require.NoError(t, err)
	require.Len(t, page.Deliveries, 1)
	assert.False(t, page.More)
	require.NotEmpty(t, page.NextCursor, "the last page has a cursor too")

	tail, err := k.DeliveryLog(ctx, webhook.LogQuery{Cursor: page.NextCursor})
	require.NoError(t, err)
	assert.Empty(t, tail.Deliveries)
	assert.Empty(t, tail.NextCursor, "an empty page has none: keep the previous one")

	id, err := k.Publish(ctx, update("E1", nil, map[string]any{"a": 2}))
	require.NoError(t, err)
	tail, err = k.DeliveryLog(ctx, webhook.LogQuery{Cursor: page.NextCursor})
	require.NoError(t, err)
	require.Len(t, tail.Deliveries, 1, "a kept cursor finds what was published since")
	assert.Equal(t, id, tail.Deliveries[0].EventID)
}

func TestAttemptLogIsComplete(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{URL: rcv.URL + "/hook?api_key=key-in-query",
		Headers: map[string]string{"Authorization": "Bearer payroll-token", "X-Tenant": "acme"}})
	rcv.Script(webhooktest.Answer{Status: http.StatusBadGateway, Body: "upstream down"})
	id, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	k.Drain(t)
	w.URL = rcv.URL + "/v2"
	w2, err := k.Update(t.Context(), w)
	require.NoError(t, err)
	k.Settle(t, 5)

	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: id})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	as, err := k.Attempts(t.Context(), ds[0].ID)
	require.NoError(t, err)
	require.Len(t, as, 2)
	first, second := as[0], as[1]
	assert.Equal(t, id, first.MessageID)
	assert.Equal(t, 1, first.Number)
	assert.True(t, first.At.Equal(webhooktest.Epoch))
	assert.Equal(t, http.StatusBadGateway, first.StatusCode)
	assert.Positive(t, first.Latency)
	assert.Equal(t, "upstream down", first.ResponseBody)
	assert.Contains(t, first.Error, "status 502")
	assert.NotContains(t, first.Error, "key-in-query")
	assert.Equal(t, w.Version, first.WebhookVersion, "the definition version the attempt used")
	assert.Equal(t, "xxxxx", first.RequestHeaders["Authorization"], "credentials masked")
	assert.Equal(t, "xxxxx", first.RequestHeaders["X-Tenant"])
	assert.Equal(t, id, first.RequestHeaders["Webhook-Id"])
	assert.NotEmpty(t, first.RequestHeaders["Webhook-Signature"])
	assert.Equal(t, "application/json", first.RequestHeaders["Content-Type"])

	assert.Equal(t, 2, second.Number)
	assert.Equal(t, http.StatusOK, second.StatusCode)
	assert.Empty(t, second.Error)
	assert.Equal(t, w2.Version, second.WebhookVersion, "an edit shows in the next attempt's version")
	assert.Greater(t, second.WebhookVersion, first.WebhookVersion)
	assert.True(t, second.At.After(first.At))
}

// logBuffer is a concurrency-safe buffer for a JSON slog handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		out = append(out, m)
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLogsUseStableKeysAndNoSecrets(t *testing.T) {
	t.Parallel()
	buf := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k, rcv := setup(t, webhook.Config{Logger: logger, Retry: webhook.RetryPolicy{MaxAttempts: 2}})
	w := register(t, k, rcv, webhook.Webhook{URL: rcv.URL + "/hook?token=query-secret",
		Headers: map[string]string{"Authorization": "Bearer header-secret"}})
	rcv.Fail(2, http.StatusServiceUnavailable)
	id, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	k.Settle(t, 5)

	var attempts []map[string]any
	for _, l := range buf.lines(t) {
		if l["message_id"] == id {
			attempts = append(attempts, l)
		}
	}
	require.Len(t, attempts, 2)
	retry, dead := attempts[0], attempts[1]
	assert.Equal(t, "INFO", retry["level"])
	assert.Equal(t, "retry", retry["outcome"])
	assert.Contains(t, retry, "next_attempt")
	assert.Equal(t, "WARN", dead["level"])
	assert.Equal(t, "dead", dead["outcome"])
	for _, l := range attempts {
		assert.Equal(t, w.ID, l["webhook_id"])
		assert.Equal(t, float64(503), l["status"])
		assert.Contains(t, l, "latency_ms")
		assert.Contains(t, l, "attempt")
		assert.Contains(t, l["error"], "status 503")
		assert.True(t, strings.HasPrefix(l["url"].(string), rcv.URL+"/hook?"))
	}
	assert.Equal(t, float64(1), retry["attempt"])
	assert.Equal(t, float64(2), dead["attempt"])

	// A delivered attempt logs at Debug only.
	_, err = k.Publish(t.Context(), update("E2", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	k.Drain(t)
	lines := buf.lines(t)
	last := lines[len(lines)-1]
	assert.Equal(t, "DEBUG", last["level"])
	assert.Equal(t, "delivered", last["outcome"])
	assert.Equal(t, float64(200), last["status"])

	out := buf.String()
	for _, secret := range []string{"query-secret", "header-secret", w.Secret} {
		assert.NotContains(t, out, secret)
	}
}
