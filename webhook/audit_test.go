package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// trail returns the whole audit trail, oldest first.
func trail(t *testing.T, k *webhooktest.Kit, q webhook.AuditQuery) []webhook.AuditRecord {
	t.Helper()
	q.Oldest, q.Limit = true, webhook.MaxAuditLimit
	page, err := k.Audit(t.Context(), q)
	require.NoError(t, err)
	require.False(t, page.More)
	return page.Records
}

func actions(rs []webhook.AuditRecord) []webhook.AuditAction {
	var out []webhook.AuditAction
	for _, r := range rs {
		out = append(out, r.Action)
	}
	return out
}

func TestAuditRecordsEveryChange(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	as := func(actor string) context.Context { return webhook.WithActor(t.Context(), actor) }

	w, err := k.Register(as("alice"), webhook.Webhook{Name: "Payroll", Tenant: "acme", Table: "employee",
		Ops: []webhook.Op{webhook.Update}, URL: rcv.URL + "/hook?token=q-secret", Headers: map[string]string{"X-Api-Key": "h-secret"}})
	require.NoError(t, err)
	rcv.AddSecret(w.Secret)
	firstSecret := w.Secret

	w.Description, w.Headers = "monthly run", map[string]string{"X-Api-Key": "h-secret-2"}
	w, err = k.Update(as("bob"), w)
	require.NoError(t, err)
	w, err = k.SetDisabled(as("carol"), w.ID, true)
	require.NoError(t, err)
	w.Disabled = false
	w, err = k.Update(as("carol"), w) // only the toggle: recorded as enabling
	require.NoError(t, err)
	w, err = k.RotateSecret(as("dave"), w.ID, time.Hour)
	require.NoError(t, err)
	rcv.AddSecret(w.Secret)

	_, err = k.Publish(t.Context(), webhook.Change{Tenant: "acme", Table: "employee", Op: webhook.Update, Key: "E1",
		Old: map[string]any{"grade": 1}, New: map[string]any{"grade": 2}})
	require.NoError(t, err)
	k.Settle(t, 5)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	require.NoError(t, k.Replay(as("erin"), ds[0].ID))
	k.Settle(t, 5)
	require.NoError(t, k.Delete(as("frank"), w.ID))

	rs := trail(t, k, webhook.AuditQuery{})
	require.Equal(t, []webhook.AuditAction{webhook.AuditWebhookCreated, webhook.AuditWebhookUpdated, webhook.AuditWebhookDisabled,
		webhook.AuditWebhookEnabled, webhook.AuditSecretRotated, webhook.AuditDeliveryReplayed, webhook.AuditWebhookDeleted}, actions(rs))
	var actors []string
	for _, r := range rs {
		actors = append(actors, r.Actor)
		assert.Equal(t, "acme", r.Tenant, "%s belongs to the webhook's tenant", r.Action)
		assert.Equal(t, w.ID, r.WebhookID)
		assert.Equal(t, webhooktest.Epoch, r.Time, "recorded at the dispatcher's clock")
		assert.NotEmpty(t, r.ID)
	}
	assert.Equal(t, []string{"alice", "bob", "carol", "carol", "dave", "erin", "frank"}, actors)

	assert.Equal(t, []string{"description", "headers"}, rs[1].Changed, "an update names the fields it changed, a header value included")
	assert.Equal(t, "set by the application", rs[2].Reason)
	assert.Contains(t, rs[3].Changed, "disabled")
	assert.Equal(t, "1h0m0s", rs[4].Detail["grace"])
	assert.Equal(t, ds[0].ID, rs[5].DeliveryID)
	assert.Equal(t, "delivered", rs[5].Detail["previous_status"])
	assert.Equal(t, ds[0].EventID, rs[5].Detail["event_id"])
	assert.Nil(t, rs[5].Definition, "a replay changes no definition")
	assert.Nil(t, rs[6].Definition)
	assert.Equal(t, w.Version, rs[6].Version, "a deletion names the last version")

	// Every definition change carries the definition, masked.
	for _, r := range rs[:5] {
		require.NotNil(t, r.Definition, r.Action)
		assert.Equal(t, r.Version, r.Definition.Version)
		assert.Equal(t, webhook.Masked, r.Definition.Secret)
		assert.Equal(t, webhook.Masked, r.Definition.Headers["X-Api-Key"])
	}
	assert.Equal(t, "monthly run", rs[1].Definition.Description)
	assert.True(t, rs[2].Definition.Disabled)
	assert.Len(t, rs[4].Definition.PreviousSecrets, 1)

	raw, err := json.Marshal(rs)
	require.NoError(t, err)
	for _, secret := range []string{firstSecret, w.Secret, "h-secret", "q-secret"} {
		assert.NotContains(t, string(raw), secret, "the trail holds no secret")
	}
	stored, err := k.Store.(store.Auditor).AuditRecords(t.Context(), store.AuditFilter{})
	require.NoError(t, err)
	raw, err = json.Marshal(stored)
	require.NoError(t, err)
	for _, secret := range []string{firstSecret, w.Secret, "h-secret", "q-secret"} {
		assert.NotContains(t, string(raw), secret, "the stored trail holds no secret")
	}
}

func TestAuditQueries(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	as := func(actor string) context.Context { return webhook.WithActor(t.Context(), actor) }
	a := register(t, k, rcv, webhook.Webhook{Tenant: "acme"})
	b := register(t, k, rcv, webhook.Webhook{Tenant: "globex"})
	for i := range 3 {
		a.Description = string(rune('a' + i))
		var err error
		a, err = k.Update(as("alice"), a)
		require.NoError(t, err)
	}
	_, err := k.SetDisabled(as("bob"), b.ID, true)
	require.NoError(t, err)

	assert.Len(t, trail(t, k, webhook.AuditQuery{Tenant: "acme"}), 4)
	assert.Len(t, trail(t, k, webhook.AuditQuery{WebhookID: b.ID}), 2)
	assert.Len(t, trail(t, k, webhook.AuditQuery{Actor: "alice"}), 3)
	assert.Equal(t, []webhook.AuditAction{webhook.AuditWebhookDisabled}, actions(trail(t, k, webhook.AuditQuery{Action: webhook.AuditWebhookDisabled})))

	// A webhook's versions, newest first, page by page.
	q := webhook.AuditQuery{WebhookID: a.ID, Versions: true, Limit: 3}
	page, err := k.Audit(t.Context(), q)
	require.NoError(t, err)
	require.Len(t, page.Records, 3)
	assert.True(t, page.More)
	assert.Equal(t, a.Version, page.Records[0].Version, "newest first")
	assert.Equal(t, "c", page.Records[0].Definition.Description)
	q.Cursor = page.NextCursor
	page, err = k.Audit(t.Context(), q)
	require.NoError(t, err)
	require.Len(t, page.Records, 1)
	assert.False(t, page.More)
	assert.Equal(t, webhook.AuditWebhookCreated, page.Records[0].Action)

	q.WebhookID = b.ID
	_, err = k.Audit(t.Context(), q)
	assert.ErrorIs(t, err, webhook.ErrInvalidQuery, "a cursor is bound to its query's filters")
	_, err = k.Audit(t.Context(), webhook.AuditQuery{Cursor: "not-a-cursor"})
	assert.ErrorIs(t, err, webhook.ErrInvalidQuery)
	_, err = k.Audit(t.Context(), webhook.AuditQuery{Limit: -1})
	assert.ErrorIs(t, err, webhook.ErrInvalidQuery)
	_, err = k.Audit(t.Context(), webhook.AuditQuery{Since: webhooktest.Epoch, Until: webhooktest.Epoch})
	assert.ErrorIs(t, err, webhook.ErrInvalidQuery)
}

func TestAuditRecordsDisablingByTheDispatcher(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	rcv.Fail(1, http.StatusGone)
	_, err := k.Publish(t.Context(), update("E1", map[string]any{"a": 1}, map[string]any{"a": 2}))
	require.NoError(t, err)
	k.Drain(t)

	rs := trail(t, k, webhook.AuditQuery{WebhookID: w.ID, Action: webhook.AuditWebhookDisabled})
	require.Len(t, rs, 1)
	assert.Equal(t, webhook.SystemActor, rs[0].Actor)
	assert.Equal(t, "receiver answered 410 Gone", rs[0].Reason)
	assert.True(t, rs[0].Definition.Disabled)
}

// bareStore is a store without the optional capabilities.
type bareStore struct{ store.Store }

// failingAudit is a store whose audit trail cannot be written.
type failingAudit struct{ *memory.Store }

func (failingAudit) AppendAudit(context.Context, store.AuditRecord) (store.AuditRecord, error) {
	return store.AuditRecord{}, errors.New("disk full")
}

func TestAuditIsOptional(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Store: bareStore{memory.New()}})
	w := register(t, k, rcv, webhook.Webhook{})
	_, err := k.RotateSecret(t.Context(), w.ID, 0)
	require.NoError(t, err, "a store without an audit trail still works")
	require.NoError(t, k.Delete(t.Context(), w.ID))
	_, err = k.Audit(t.Context(), webhook.AuditQuery{})
	assert.ErrorIs(t, err, webhook.ErrNoAudit)
}

func TestAuditFailureLeavesTheChange(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	k, rcv := setup(t, webhook.Config{Store: failingAudit{memory.New()},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	w := register(t, k, rcv, webhook.Webhook{Headers: map[string]string{"X-Api-Key": "h-secret"}})
	got, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err, "the change stands")
	assert.Equal(t, w.Version, got.Version)
	assert.Contains(t, logs.String(), "recording an audit record failed")
	assert.Contains(t, logs.String(), "disk full")
	assert.NotContains(t, logs.String(), "h-secret")
}

func TestAuditRecordsRecoveries(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{Tenant: "acme"})
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: 500} })
	_, err := k.Publish(t.Context(), webhook.Change{Tenant: "acme", Table: "employee", Op: webhook.Update, Key: "E1",
		Old: map[string]any{"a": 1}, New: map[string]any{"a": 2}})
	require.NoError(t, err)
	k.Settle(t, 10)
	rcv.Respond(nil)
	ctx := webhook.WithActor(t.Context(), "ops@example.com")
	_, err = k.Recover(ctx, webhook.RecoverQuery{WebhookID: w.ID, DryRun: true})
	require.NoError(t, err)
	assert.Empty(t, trail(t, k, webhook.AuditQuery{Action: webhook.AuditDeliveriesRecovered}), "a dry run changes nothing")
	res, err := k.Recover(ctx, webhook.RecoverQuery{WebhookID: w.ID, Key: "E1", Since: webhooktest.Epoch})
	require.NoError(t, err)
	require.Equal(t, 1, res.Replayed)
	_, err = k.Recover(ctx, webhook.RecoverQuery{WebhookID: w.ID})
	require.NoError(t, err)

	rs := trail(t, k, webhook.AuditQuery{Action: webhook.AuditDeliveriesRecovered})
	require.Len(t, rs, 1, "a recovery that found nothing is not recorded")
	assert.Equal(t, "ops@example.com", rs[0].Actor)
	assert.Equal(t, "acme", rs[0].Tenant)
	assert.Equal(t, map[string]string{"status": "dead", "matched": "1", "replayed": "1", "in_order": "true",
		"key": "E1", "since": "2026-03-02T09:00:00Z"}, rs[0].Detail)
}
