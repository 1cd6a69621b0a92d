package webhook_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Every log line, observer event, error and delivery log entry of failing
// deliveries is searched for the credentials the webhooks carry.
func TestNoSecretLeaksFromFailingDeliveries(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	var mu sync.Mutex
	var events []webhook.Event
	k, rcv := setup(t, webhook.Config{
		Logger:     slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observer:   webhook.ObserverFunc(func(e webhook.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }),
		SecretKeys: keyring(t, "k1", "k1"),
		Retry:      webhook.RetryPolicy{MaxAttempts: 3},
	})
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer {
		return webhooktest.Answer{Status: http.StatusInternalServerError, Body: "upstream down"}
	})
	ts := newTokenServer(t, 3600)
	// The token endpoint first fails with an answer that echoes the
	// credentials, as some servers do.
	ts.fail = []tokenAnswer{{http.StatusBadRequest,
		`{"error":"invalid_request","error_description":"client herald-payroll with secret cs-9f8e7d6c5b4a refused"}`},
		{http.StatusInternalServerError, "Basic aGVyYWxkLXBheXJvbGw6Y3MtOWY4ZTdkNmM1YjRh cs-9f8e7d6c5b4a"}}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // connection refused: net/http's error would quote the URL

	withCreds := func(base string) string {
		return strings.Replace(base, "http://", "http://svc:userinfo-pass-61@", 1) + "/hook?api_key=query-key-62"
	}
	secrets := []string{"userinfo-pass-61", "query-key-62", "header-token-67", "basic-pass-68", ts.clientSecret, "tok-1", "tok-2", "tok-3",
		base64.StdEncoding.EncodeToString([]byte(ts.clientID + ":" + ts.clientSecret))}
	hooks := []webhook.Webhook{
		{Name: "headers", URL: withCreds(rcv.URL), Headers: map[string]string{"Authorization": "Bearer header-token-67"}},
		{Name: "basic", URL: rcv.URL + "/basic", Auth: &webhook.Auth{Type: webhook.AuthBasic, Username: "svc", Password: "basic-pass-68"}},
		{Name: "oauth", URL: withCreds(rcv.URL), Auth: ts.auth()},
		{Name: "refused", URL: withCreds(gone.URL), Headers: map[string]string{"X-Api-Key": "header-token-67"}},
	}
	var registered []webhook.Webhook
	for _, w := range hooks {
		w = register(t, k, rcv, w)
		registered = append(registered, w)
		secrets = append(secrets, w.Secret, strings.TrimPrefix(w.Secret, "whsec_"))
		r, err := k.RotateSecret(t.Context(), w.ID, 0)
		require.NoError(t, err)
		secrets = append(secrets, r.Secret, strings.TrimPrefix(r.Secret, "whsec_"))
	}

	publishN(t, k, 2, "E")
	k.Settle(t, 20)

	var seen strings.Builder
	seen.WriteString(logs.String())
	mu.Lock()
	for _, e := range events {
		fmt.Fprintf(&seen, "%+v %v\n", e, e)
		if e.Err != nil {
			seen.WriteString(e.Err.Error())
		}
	}
	kinds := map[webhook.EventKind]int{}
	for _, e := range events {
		kinds[e.Kind]++
	}
	mu.Unlock()
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	for _, d := range ds {
		assert.Equal(t, webhook.Dead, d.Status, "every delivery failed for good")
		fmt.Fprintf(&seen, "%+v\n", d)
		as, err := k.Attempts(t.Context(), d.ID)
		require.NoError(t, err)
		for _, a := range as {
			fmt.Fprintf(&seen, "%+v\n", a)
		}
	}
	// Register errors for bad input that carries credentials.
	for _, bad := range []webhook.Webhook{
		{Name: "x", Table: "employee", Ops: []webhook.Op{"UPSERT"}, URL: withCreds("ftp://h")},
		{Name: "x", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: withCreds(rcv.URL),
			Auth: &webhook.Auth{Type: webhook.AuthBasic, Username: "a:b", Password: "basic-pass-68"}},
		{Name: "x", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: withCreds(rcv.URL), Secret: registered[0].Secret + "!"},
	} {
		_, err := k.Register(t.Context(), bad)
		require.Error(t, err)
		seen.WriteString(err.Error())
	}
	// The webhooks themselves, every way they may be shown.
	list, err := k.Webhooks(t.Context())
	require.NoError(t, err)
	for _, w := range list {
		b, err := json.Marshal(w)
		require.NoError(t, err)
		seen.Write(b)
		fmt.Fprintf(&seen, "%v %+v %#v %s\n", w, w, w, w)
		l := slog.New(slog.NewJSONHandler(&seen, nil))
		l.Info("webhook", "webhook", w, "previous", w.PreviousSecrets)
		if w.Auth != nil {
			l.Info("auth", "auth", w.Auth, "value", *w.Auth, "list", []webhook.Auth{*w.Auth})
		}
	}

	out := seen.String()
	for _, s := range secrets {
		if i := strings.Index(out, s); i >= 0 {
			t.Errorf("a secret leaked: ...%s...", out[max(0, i-200):min(len(out), i+len(s)+20)])
		}
	}
	// The search covered real failures.
	assert.Contains(t, out, "status 500")
	assert.Contains(t, out, "status 400 (invalid_request)")
	assert.Contains(t, out, "oauth2 token from")
	assert.Contains(t, out, "connection refused")
	assert.Contains(t, out, "delivery failed for good")
	assert.Contains(t, out, "api_key=xxxxx", "URLs appear, redacted")
	assert.Positive(t, kinds[webhook.EventDead])
	assert.Positive(t, kinds[webhook.EventRetry])
	assert.GreaterOrEqual(t, ts.count(), 3, "the token endpoint failed, then issued tokens")
}
