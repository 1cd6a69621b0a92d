package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup returns a test dispatcher and a receiver that accepts its
// webhooks' secrets.
func setup(t *testing.T, cfg webhook.Config) (*webhooktest.Kit, *webhooktest.Receiver) {
	t.Helper()
	k := webhooktest.NewDispatcher(t, cfg)
	rcv := webhooktest.NewReceiver(t, k.Clock)
	return k, rcv
}

func register(t *testing.T, k *webhooktest.Kit, rcv *webhooktest.Receiver, w webhook.Webhook) webhook.Webhook {
	t.Helper()
	if w.Name == "" {
		w.Name = "payroll"
	}
	if w.Table == "" {
		w.Table = "employee"
	}
	if w.Ops == nil {
		w.Ops = []webhook.Op{webhook.Insert, webhook.Update, webhook.Delete}
	}
	if w.URL == "" {
		w.URL = rcv.URL + "/hook"
	}
	got, err := k.Register(t.Context(), w)
	require.NoError(t, err)
	rcv.AddSecret(got.Secret)
	return got
}

func update(key string, old, new map[string]any) webhook.Change {
	return webhook.Change{Table: "employee", Op: webhook.Update, Key: key, Old: old, New: new}
}

type envelope struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

type data struct {
	Table   string         `json:"table"`
	Op      string         `json:"op"`
	Key     string         `json:"key"`
	New     map[string]any `json:"new"`
	Old     map[string]any `json:"old"`
	Changed []string       `json:"changed"`
	Tenant  string         `json:"tenant"`
	Context map[string]any `json:"context"`
}

func decode(t *testing.T, body []byte) (envelope, data) {
	t.Helper()
	var e envelope
	require.NoError(t, json.Unmarshal(body, &e))
	var d data
	require.NoError(t, json.Unmarshal(e.Data, &d))
	return e, d
}

func TestDeliversSignedEnvelope(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{Headers: map[string]string{"Authorization": "Bearer t0ken"}})
	at := webhooktest.Epoch.Add(-time.Minute)
	id, err := k.Publish(t.Context(), webhook.Change{Table: "employee", Op: webhook.Update, Key: "E-1001",
		Old: map[string]any{"department": "Ops", "grade": 5}, New: map[string]any{"department": "Sales", "grade": 5},
		Time: at, Tenant: "acme", Context: map[string]any{"actor": "hr-admin"}})
	require.NoError(t, err)
	require.Equal(t, 1, k.Drain(t))

	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.NoError(t, r.VerifyErr, "the signature verifies under the Standard Webhooks rules")
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/hook", r.URL)
	assert.Equal(t, id, r.ID(), "webhook-id is the event id Publish returned")
	assert.Equal(t, fmt.Sprint(webhooktest.Epoch.Unix()), r.Header.Get("Webhook-Timestamp"))
	assert.True(t, strings.HasPrefix(r.Header.Get("Webhook-Signature"), "v1,"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "herald/"+webhook.Version, r.Header.Get("User-Agent"))
	assert.Equal(t, "Bearer t0ken", r.Header.Get("Authorization"))

	e, d := decode(t, r.Body)
	assert.Equal(t, id, e.ID, "the body's id is the webhook-id")
	assert.Equal(t, "employee.updated", e.Type)
	assert.Equal(t, at.Format(time.RFC3339Nano), e.Timestamp)
	assert.Equal(t, "employee", d.Table)
	assert.Equal(t, "UPDATE", d.Op)
	assert.Equal(t, "E-1001", d.Key)
	assert.Equal(t, "Sales", d.New["department"])
	assert.Equal(t, "Ops", d.Old["department"])
	assert.Equal(t, []string{"department"}, d.Changed)
	assert.Equal(t, "acme", d.Tenant)
	assert.Equal(t, "hr-admin", d.Context["actor"])

	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: id})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, webhook.Delivered, ds[0].Status)
	assert.Equal(t, 1, ds[0].Attempts)
	assert.Equal(t, w.ID, ds[0].WebhookID)
	as, err := k.Attempts(t.Context(), ds[0].ID)
	require.NoError(t, err)
	require.Len(t, as, 1)
	assert.Equal(t, 200, as[0].StatusCode)
	assert.Equal(t, "xxxxx", as[0].RequestHeaders["Authorization"], "credentials are masked in the log")
	assert.Equal(t, w.Version, as[0].WebhookVersion)
}

// TestRequestsAreTheirOwn: attempts copy their URL and the webhook's
// headers from one template per definition; requests sent at once each
// carry their own id, timestamp and signature, the URL loses only its
// fragment, herald's user agent wins over the webhook's, and each
// delivery log keeps the headers of its own request.
func TestRequestsAreTheirOwn(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Workers: 4})
	register(t, k, rcv, webhook.Webhook{URL: rcv.URL + "/hook?site=1#part",
		Headers: map[string]string{"user-agent": "theirs", "X-Api-Key": "k3y"}})
	ids := map[string]bool{}
	for i := range 8 {
		id, err := k.Publish(t.Context(), update(fmt.Sprint("E-", i), map[string]any{"grade": i}, map[string]any{"grade": i + 1}))
		require.NoError(t, err)
		ids[id] = true
	}
	require.Equal(t, 8, k.Drain(t))
	reqs := rcv.Requests()
	require.Len(t, reqs, 8)
	seen := map[string]bool{}
	for _, r := range reqs {
		require.NoError(t, r.VerifyErr)
		e, _ := decode(t, r.Body)
		assert.Equal(t, e.ID, r.ID(), "each request carries the id of its own body")
		assert.True(t, ids[r.ID()])
		seen[r.ID()] = true
		assert.Equal(t, "/hook?site=1", r.URL)
		assert.Equal(t, "herald/"+webhook.Version, r.Header.Get("User-Agent"))
		assert.Equal(t, []string{"k3y"}, r.Header.Values("X-Api-Key"))
		assert.Len(t, r.Header.Values("Webhook-Signature"), 1)
	}
	assert.Len(t, seen, 8)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	for _, d := range ds {
		as, err := k.Attempts(t.Context(), d.ID)
		require.NoError(t, err)
		require.Len(t, as, 1)
		assert.Equal(t, d.EventID, as[0].RequestHeaders["Webhook-Id"])
		assert.Equal(t, "xxxxx", as[0].RequestHeaders["X-Api-Key"])
	}
}

func TestEventTypes(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	for _, c := range []webhook.Change{
		{Table: "employee", Op: webhook.Insert, Key: "1", New: map[string]any{"a": 1}},
		{Table: "employee", Op: webhook.Delete, Key: "2", Old: map[string]any{"a": 1}},
	} {
		_, err := k.Publish(t.Context(), c)
		require.NoError(t, err)
	}
	k.Drain(t)
	var types []string
	for _, r := range rcv.Requests() {
		e, _ := decode(t, r.Body)
		types = append(types, e.Type)
	}
	assert.ElementsMatch(t, []string{"employee.inserted", "employee.deleted"}, types)
}

func TestRetriesThenDelivered(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	rcv.Fail(1, http.StatusInternalServerError)
	id, err := k.Publish(t.Context(), update("E1", map[string]any{"a": 1}, map[string]any{"a": 2}))
	require.NoError(t, err)
	// First attempt: 500. Nothing more is due until the clock moves.
	require.Equal(t, 1, k.Drain(t))
	require.Equal(t, 0, k.Drain(t))
	k.Clock.Advance(time.Second)
	require.Equal(t, 1, k.Drain(t))

	reqs := rcv.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, http.StatusInternalServerError, reqs[0].Status)
	assert.Equal(t, http.StatusOK, reqs[1].Status)
	for _, r := range reqs {
		assert.Equal(t, id, r.ID(), "the same webhook-id on every retry")
		require.NoError(t, r.VerifyErr)
	}
	assert.NotEqual(t, reqs[0].Header.Get("Webhook-Timestamp"), reqs[1].Header.Get("Webhook-Timestamp"), "each attempt is signed anew")
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: id})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, webhook.Delivered, ds[0].Status)
	assert.Equal(t, 2, ds[0].Attempts)
	as, err := k.Attempts(t.Context(), ds[0].ID)
	require.NoError(t, err)
	require.Len(t, as, 2)
	assert.Equal(t, 500, as[0].StatusCode)
	assert.Contains(t, as[0].Error, "status 500")
}

func TestDeadAfterLastAttemptThenReplay(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Retry: webhook.RetryPolicy{MaxAttempts: 3}})
	register(t, k, rcv, webhook.Webhook{})
	rcv.Fail(3, http.StatusServiceUnavailable)
	id, err := k.Publish(t.Context(), update("E1", map[string]any{"a": 1}, map[string]any{"a": 2}))
	require.NoError(t, err)
	assert.Equal(t, 3, k.Settle(t, 10))

	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: id})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	d := ds[0]
	assert.Equal(t, webhook.Dead, d.Status)
	assert.Equal(t, 3, d.Attempts, "MaxAttempts counts every attempt, the first included")
	assert.Contains(t, d.LastError, "status 503")
	assert.Equal(t, 503, d.LastCode)

	require.NoError(t, k.Replay(t.Context(), d.ID))
	assert.Equal(t, 1, k.Drain(t), "a replay is sent at once")
	d, err = k.Delivery(t.Context(), d.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.Delivered, d.Status)
	assert.Equal(t, 1, d.Attempts, "a replay starts a fresh count")
	reqs := rcv.Requests()
	require.Len(t, reqs, 4)
	assert.Equal(t, id, reqs[3].ID())
	assert.ErrorIs(t, k.Replay(t.Context(), "no-such-delivery"), webhook.ErrNotFound)
}

func TestReplayPendingIsAnError(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	id, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 2}))
	require.NoError(t, err)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: id})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.ErrorIs(t, k.Replay(t.Context(), ds[0].ID), webhook.ErrPending)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	rcv.Script(webhooktest.Answer{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"120"}}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 2}))
	require.NoError(t, err)
	require.Equal(t, 1, k.Drain(t))
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, webhooktest.Epoch.Add(120*time.Second), ds[0].NextAttempt, "the receiver's Retry-After beats the 1s backoff")
	k.Clock.Advance(119 * time.Second)
	assert.Equal(t, 0, k.Drain(t))
	k.Clock.Advance(time.Second)
	assert.Equal(t, 1, k.Drain(t))
}

func TestAbortHeaderStopsRetries(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	rcv.Script(webhooktest.Answer{Status: http.StatusBadRequest, Header: http.Header{"Webhook-Delivery": {"abort-message"}}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 2}))
	require.NoError(t, err)
	k.Settle(t, 5)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Equal(t, webhook.Dead, ds[0].Status)
	assert.Equal(t, 1, ds[0].Attempts)
}

func TestGoneDisablesWebhook(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	rcv.Script(webhooktest.Answer{Status: http.StatusGone})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 2}))
	require.NoError(t, err)
	k.Drain(t)
	got, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled, "410 Gone disables the webhook")
	k.Clock.Advance(time.Hour)
	assert.Equal(t, 0, k.Drain(t), "its delivery waits")
	_, err = k.SetDisabled(t.Context(), w.ID, false)
	require.NoError(t, err)
	assert.Equal(t, 1, k.Drain(t))
	assert.Len(t, rcv.Delivered(), 1)
}

func TestIdempotentPublish(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	c := update("E1", nil, map[string]any{"a": 2})
	c.ID = "change-42"
	id1, err := k.Publish(t.Context(), c)
	require.NoError(t, err)
	register(t, k, rcv, webhook.Webhook{Name: "late"})
	id2, err := k.Publish(t.Context(), c)
	require.NoError(t, err)
	assert.Equal(t, "change-42", id1)
	assert.Equal(t, id1, id2)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Len(t, ds, 1, "the second publish created nothing, not even for the webhook registered between")
	k.Drain(t)
	assert.Len(t, rcv.Requests(), 1)
}

func TestPublishReturnsIDWithoutMatch(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{Table: "attendance"})
	id, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 2}))
	require.NoError(t, err)
	assert.NotEmpty(t, id)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Empty(t, ds)
}

func TestMatching(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	all := register(t, k, rcv, webhook.Webhook{Name: "all tenants"})
	acme := register(t, k, rcv, webhook.Webhook{Name: "acme only", Tenant: "acme"})
	inserts := register(t, k, rcv, webhook.Webhook{Name: "inserts", Ops: []webhook.Op{webhook.Insert}})
	dept := register(t, k, rcv, webhook.Webhook{Name: "department", Ops: []webhook.Op{webhook.Update},
		When: condition.Rule{Match: condition.AnySelected, Fields: []string{"department"}}})
	sales := register(t, k, rcv, webhook.Webhook{Name: "to sales", Ops: []webhook.Op{webhook.Update},
		When: condition.Rule{Expr: `new.department == "Sales"`}})
	off := register(t, k, rcv, webhook.Webhook{Name: "off", Disabled: true})

	matched := func(c webhook.Change) []string {
		t.Helper()
		id, err := k.Publish(t.Context(), c)
		require.NoError(t, err)
		ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: id})
		require.NoError(t, err)
		var out []string
		for _, d := range ds {
			out = append(out, d.WebhookID)
		}
		return out
	}
	c := update("E1", map[string]any{"department": "Ops"}, map[string]any{"department": "Sales"})
	c.Tenant = "acme"
	assert.ElementsMatch(t, []string{all.ID, acme.ID, dept.ID, sales.ID}, matched(c))
	c = update("E1", map[string]any{"department": "Ops", "grade": 1}, map[string]any{"department": "Ops", "grade": 2})
	c.Tenant = "globex"
	assert.ElementsMatch(t, []string{all.ID}, matched(c))
	assert.ElementsMatch(t, []string{all.ID, inserts.ID}, matched(webhook.Change{Table: "employee", Op: webhook.Insert, Key: "E2", New: map[string]any{"x": 1}}))
	_ = off
}

func TestRegisterRejectsBadWebhooks(t *testing.T) {
	t.Parallel()
	hooks := transform.NewRegistry()
	require.NoError(t, hooks.RegisterBefore("known", transform.BeforeFunc(func(context.Context, *transform.Message) error { return nil })))
	k, rcv := setup(t, webhook.Config{Hooks: hooks})
	good := func() webhook.Webhook {
		return webhook.Webhook{Name: "n", Table: "employee", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL}
	}
	cases := map[string]func(w *webhook.Webhook){
		"missing name":        func(w *webhook.Webhook) { w.Name = " " },
		"missing table":       func(w *webhook.Webhook) { w.Table = "" },
		"no ops":              func(w *webhook.Webhook) { w.Ops = nil },
		"unknown op":          func(w *webhook.Webhook) { w.Ops = []webhook.Op{"UPSERT"} },
		"relative url":        func(w *webhook.Webhook) { w.URL = "/hooks" },
		"file url":            func(w *webhook.Webhook) { w.URL = "file:///etc/passwd" },
		"gopher url":          func(w *webhook.Webhook) { w.URL = "gopher://example.com/" },
		"host-less url":       func(w *webhook.Webhook) { w.URL = "https:///path" },
		"empty url":           func(w *webhook.Webhook) { w.URL = "" },
		"unknown method":      func(w *webhook.Webhook) { w.Method = "DELETE" },
		"header name":         func(w *webhook.Webhook) { w.Headers = map[string]string{"Bad Name": "x"} },
		"header crlf":         func(w *webhook.Webhook) { w.Headers = map[string]string{"X-Token": "a\r\nX-Evil: 1"} },
		"reserved header":     func(w *webhook.Webhook) { w.Headers = map[string]string{"webhook-id": "x"} },
		"reserved host":       func(w *webhook.Webhook) { w.Headers = map[string]string{"Host": "example.com"} },
		"reserved ctype":      func(w *webhook.Webhook) { w.Headers = map[string]string{"Content-Type": "text/plain"} },
		"unknown before hook": func(w *webhook.Webhook) { w.Before = []string{"nobody"} },
		"unknown after hook":  func(w *webhook.Webhook) { w.After = []string{"known"} },
		"bad expression":      func(w *webhook.Webhook) { w.When = condition.Rule{Expr: "new.grade >"} },
		"malformed secret":    func(w *webhook.Webhook) { w.Secret = "whsec_not base64!!" },
		"negative batch":      func(w *webhook.Webhook) { w.MaxBatch = -1 },
		"form batch": func(w *webhook.Webhook) {
			w.MaxBatch = 5
			w.Body = transform.Body{Format: transform.Form, Fields: map[string]string{"a": "key"}}
		},
		"get batch": func(w *webhook.Webhook) {
			w.MaxBatch = 5
			w.Method = "GET"
			w.Body = transform.Body{Format: transform.Form, Fields: map[string]string{"a": "key"}}
		},
		"get without fields":   func(w *webhook.Webhook) { w.Method = "GET" },
		"unknown body format":  func(w *webhook.Webhook) { w.Body = transform.Body{Format: "xml"} },
		"select without match": func(w *webhook.Webhook) { w.When = condition.Rule{Match: condition.AllSelected} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			w := good()
			mutate(&w)
			_, err := k.Register(t.Context(), w)
			require.Error(t, err)
			assert.ErrorIs(t, err, webhook.ErrInvalidWebhook)
			if w.Secret != "" {
				assert.NotContains(t, err.Error(), w.Secret, "a secret is never echoed")
			}
		})
	}
	w, err := k.Register(t.Context(), good())
	require.NoError(t, err, "the good webhook registers")
	assert.True(t, strings.HasPrefix(w.Secret, "whsec_"), "a secret is generated")
	assert.NotEmpty(t, w.ID)
	assert.Equal(t, "POST", w.Method)
	_, err = k.Register(t.Context(), w)
	assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, "an id that is taken")
}

func TestRegisterRefusesPrivateAddressesByDefault(t *testing.T) {
	t.Parallel()
	d, err := webhook.New(webhook.Config{Store: memory.New()})
	require.NoError(t, err)
	for _, u := range []string{"http://127.0.0.1/x", "http://[::1]/x", "http://10.0.0.1/x", "http://169.254.169.254/latest", "https://example.com:8443/x"} {
		_, err := d.Register(t.Context(), webhook.Webhook{Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: u})
		assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, u)
		assert.ErrorIs(t, err, webhook.ErrBlockedDestination, u)
	}
	_, err = d.Register(t.Context(), webhook.Webhook{Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: "https://hooks.example.com/x"})
	assert.NoError(t, err)
}

func TestPublishRejectsBadChanges(t *testing.T) {
	t.Parallel()
	k := webhooktest.NewDispatcher(t, webhook.Config{MaxPayloadBytes: 1024})
	cases := map[string]webhook.Change{
		"no table":         {Op: webhook.Insert, Key: "1", New: map[string]any{}},
		"unknown op":       {Table: "t", Op: "MERGE", Key: "1", New: map[string]any{}},
		"no key":           {Table: "t", Op: webhook.Insert, New: map[string]any{}},
		"insert no new":    {Table: "t", Op: webhook.Insert, Key: "1"},
		"update no new":    {Table: "t", Op: webhook.Update, Key: "1", Old: map[string]any{}},
		"delete no old":    {Table: "t", Op: webhook.Delete, Key: "1", New: map[string]any{}},
		"not json":         {Table: "t", Op: webhook.Insert, Key: "1", New: map[string]any{"f": func() {}}},
		"too large":        {Table: "t", Op: webhook.Insert, Key: "1", New: map[string]any{"blob": strings.Repeat("x", 2048)}},
		"channel in ctx":   {Table: "t", Op: webhook.Insert, Key: "1", New: map[string]any{}, Context: map[string]any{"c": make(chan int)}},
		"whitespace table": {Table: "  ", Op: webhook.Insert, Key: "1", New: map[string]any{}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := k.Publish(t.Context(), c)
			assert.ErrorIs(t, err, webhook.ErrInvalidChange)
		})
	}
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Empty(t, ds)
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	_, err := webhook.New(webhook.Config{})
	assert.ErrorContains(t, err, "Store is required")
	_, err = webhook.New(webhook.Config{Store: memory.New(), Workers: -1})
	assert.ErrorContains(t, err, "Workers must not be negative")
	_, err = webhook.New(webhook.Config{Store: memory.New(), LeaseDuration: time.Second})
	assert.ErrorContains(t, err, "LeaseDuration")
}

func TestUpdateTakesEffectOnNextAttempt(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	rcv.Fail(1, http.StatusInternalServerError)
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 2}))
	require.NoError(t, err)
	k.Drain(t)
	w.URL = rcv.URL + "/v2"
	w.Headers = map[string]string{"X-Version": "2"}
	w.Secret = ""
	w2, err := k.Update(t.Context(), w)
	require.NoError(t, err)
	assert.Equal(t, w.ID, w2.ID)
	assert.NotEmpty(t, w2.Secret, "an empty secret keeps the current one")
	assert.Greater(t, w2.Version, w.Version)
	k.Settle(t, 5)
	reqs := rcv.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "/v2", reqs[1].URL)
	assert.Equal(t, "2", reqs[1].Header.Get("X-Version"))
}

func TestDeleteCancelsPending(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 2}))
	require.NoError(t, err)
	require.NoError(t, k.Delete(t.Context(), w.ID))
	assert.Equal(t, 0, k.Drain(t))
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, webhook.Canceled, ds[0].Status)
	_, err = k.Webhook(t.Context(), w.ID)
	assert.ErrorIs(t, err, webhook.ErrNotFound)
	assert.ErrorIs(t, k.Delete(t.Context(), w.ID), webhook.ErrNotFound)
}

func TestWebhookStringHidesSecrets(t *testing.T) {
	t.Parallel()
	w := webhook.Webhook{ID: "1", Name: "payroll", URL: "https://user:pass@payroll.example.com/in?token=abc",
		Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Headers: map[string]string{"Authorization": "Bearer sekrit"}}
	for _, s := range []string{w.String(), fmt.Sprintf("%v", w), fmt.Sprintf("%+v", w), fmt.Sprintf("%#v", w)} {
		assert.NotContains(t, s, "MfKQ9r8")
		assert.NotContains(t, s, "sekrit")
		assert.NotContains(t, s, "pass")
		assert.NotContains(t, s, "abc")
	}
}

func TestWebhooksList(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	a := register(t, k, rcv, webhook.Webhook{Name: "a"})
	b := register(t, k, rcv, webhook.Webhook{Name: "b"})
	ws, err := k.Webhooks(t.Context())
	require.NoError(t, err)
	require.Len(t, ws, 2)
	assert.ElementsMatch(t, []string{a.ID, b.ID}, []string{ws[0].ID, ws[1].ID})
}

func TestUpdateWithStaleVersionConflicts(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	first := w
	first.Description = "first editor"
	saved, err := k.Update(t.Context(), first)
	require.NoError(t, err)
	second := w // read before the first editor saved
	second.Description = "second editor"
	_, err = k.Update(t.Context(), second)
	assert.ErrorIs(t, err, webhook.ErrConflict, "a stale edit does not overwrite a newer one")
	got, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, "first editor", got.Description)
	assert.Equal(t, saved.Version, got.Version)
	second.Version = 0
	_, err = k.Update(t.Context(), second)
	assert.NoError(t, err, "a zero Version saves unconditionally")
}

func TestRegisterRefusesMoreHooksThanTheLeaseHolds(t *testing.T) {
	t.Parallel()
	names := []string{"a", "b", "c", "d", "e"}
	k, rcv := setup(t, webhook.Config{Hooks: hooksWith(t, names...), AttemptTimeout: time.Second,
		HookTimeout: time.Second, LeaseDuration: 4500 * time.Millisecond})
	_, err := k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL, Before: names[:3]})
	assert.NoError(t, err, "1s + 3 × 1s fits a 4.5s lease")
	_, err = k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL, Before: names})
	assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, "1s + 5 × 1s does not")
	assert.ErrorContains(t, err, "LeaseDuration")
}
