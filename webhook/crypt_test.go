package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, webhook.KeySize) }

func keyring(t *testing.T, current string, ids ...string) *webhook.Keyring {
	t.Helper()
	keys := map[string][]byte{}
	for _, id := range ids {
		keys[id] = key(id[len(id)-1])
	}
	k, err := webhook.NewKeyring(current, keys)
	require.NoError(t, err)
	return k
}

// secretWebhook carries every kind of secret herald keeps.
func secretWebhook(rcv *webhooktest.Receiver, ts *tokenServer) webhook.Webhook {
	return webhook.Webhook{
		Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL:     strings.Replace(rcv.URL, "http://", "http://svc:userinfo-pass-61@", 1) + "/hook?api_key=query-key-62",
		Headers: map[string]string{"X-Api-Key": "header-key-63"},
		Auth:    ts.auth(),
	}
}

func rawRow(t *testing.T, k *webhooktest.Kit, id string) string {
	t.Helper()
	r, err := k.Store.Webhook(t.Context(), id)
	require.NoError(t, err)
	return string(r.Definition)
}

func TestSecretsAreEncryptedAtRest(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{SecretKeys: keyring(t, "k1", "k1")})
	ts := newTokenServer(t, 3600)
	w := register(t, k, rcv, secretWebhook(rcv, ts))
	r, err := k.RotateSecret(t.Context(), w.ID, 0)
	require.NoError(t, err)
	rcv.AddSecret(r.Secret)

	row := rawRow(t, k, w.ID)
	for _, s := range []string{w.Secret, r.Secret, ts.clientSecret, "userinfo-pass-61", "query-key-62", "header-key-63",
		strings.TrimPrefix(w.Secret, "whsec_"), strings.TrimPrefix(r.Secret, "whsec_")} {
		assert.NotContains(t, row, s, "the stored row holds no plaintext secret")
	}
	assert.Contains(t, row, `"sealed":"enc:v1:k1:`)
	assert.Contains(t, row, `"name":"payroll"`, "the rest of the definition stays readable")
	assert.Contains(t, row, "X-Api-Key", "header names stay readable")
	assert.Contains(t, row, "api_key=xxxxx", "the URL is stored redacted beside the sealed one")

	got, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, r.Secret, got.Secret, "the dispatcher reads its secrets back")
	assert.Equal(t, w.URL, got.URL)
	assert.Equal(t, ts.clientSecret, got.Auth.ClientSecret)
	assert.Equal(t, w.Secret, got.PreviousSecrets[0].Value)

	publishN(t, k, 1, "A")
	k.Drain(t)
	req := last(t, rcv)
	require.NoError(t, req.VerifyErr)
	assert.Equal(t, "header-key-63", req.Header.Get("X-Api-Key"))
	assert.Equal(t, "/hook?api_key=query-key-62", req.URL)
	assert.Equal(t, "Bearer tok-1", req.Header.Get("Authorization"))
}

func TestPlaintextDefinitionsLoadUnderAKeyringAndGetSealed(t *testing.T) {
	t.Parallel()
	plain, rcv := setup(t, webhook.Config{})
	w := register(t, plain, rcv, webhook.Webhook{Headers: map[string]string{"X-Api-Key": "header-key-64"}})
	require.Contains(t, rawRow(t, plain, w.ID), w.Secret, "without a keyring secrets are stored as they are")

	sealed := webhooktest.NewDispatcher(t, webhook.Config{Store: plain.Store, Clock: plain.Clock, SecretKeys: keyring(t, "k1", "k1")})
	publishN(t, sealed, 1, "A")
	sealed.Drain(t)
	require.NoError(t, last(t, rcv).VerifyErr, "a definition stored before encryption was configured still works")

	n, err := sealed.ReencryptSecrets(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	row := rawRow(t, sealed, w.ID)
	assert.NotContains(t, row, w.Secret)
	assert.NotContains(t, row, "header-key-64")
	n, err = sealed.ReencryptSecrets(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 0, n, "nothing left to re-encrypt")

	_, err = plain.ReencryptSecrets(t.Context())
	assert.Error(t, err, "re-encryption needs a keyring")
}

func TestKeyRotationReencrypts(t *testing.T) {
	t.Parallel()
	k1, rcv := setup(t, webhook.Config{SecretKeys: keyring(t, "k1", "k1")})
	w := register(t, k1, rcv, webhook.Webhook{})

	both := webhooktest.NewDispatcher(t, webhook.Config{Store: k1.Store, Clock: k1.Clock, SecretKeys: keyring(t, "k2", "k1", "k2")})
	n, err := both.ReencryptSecrets(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Contains(t, rawRow(t, both, w.ID), `"sealed":"enc:v1:k2:`)

	onlyNew := webhooktest.NewDispatcher(t, webhook.Config{Store: k1.Store, Clock: k1.Clock, SecretKeys: keyring(t, "k2", "k2")})
	publishN(t, onlyNew, 1, "A")
	onlyNew.Drain(t)
	require.NoError(t, last(t, rcv).VerifyErr, "after re-encryption the old key can go")
}

func TestUnknownKeyHoldsDeliveriesAndKeepsTheSecrets(t *testing.T) {
	t.Parallel()
	k1, rcv := setup(t, webhook.Config{SecretKeys: keyring(t, "k1", "k1")})
	w := register(t, k1, rcv, webhook.Webhook{})
	before := rawRow(t, k1, w.ID)

	var held []webhook.Event
	k2 := webhooktest.NewDispatcher(t, webhook.Config{Store: k1.Store, Clock: k1.Clock, SecretKeys: keyring(t, "k2", "k2"),
		Observer: webhook.ObserverFunc(func(e webhook.Event) {
			if e.Kind == webhook.EventHeld {
				held = append(held, e)
			}
		})})
	publishN(t, k2, 1, "A")
	k2.Drain(t)
	assert.Empty(t, rcv.Requests(), "nothing is sent unsigned or wrongly signed")
	require.Len(t, held, 1)
	assert.Contains(t, held[0].Reason, `key "k1"`)
	ds, err := k2.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Equal(t, webhook.Pending, ds[0].Status)
	assert.Equal(t, 0, ds[0].Attempts)

	_, err = k2.Webhook(t.Context(), w.ID)
	assert.ErrorIs(t, err, webhook.ErrSecretKey)
	_, err = k2.SetDisabled(t.Context(), w.ID, true)
	assert.ErrorIs(t, err, webhook.ErrSecretKey, "a definition it cannot read is not saved back without its secrets")
	_, err = k2.RotateSecret(t.Context(), w.ID, 0)
	assert.ErrorIs(t, err, webhook.ErrSecretKey)
	list, err := k2.Webhooks(t.Context())
	require.NoError(t, err)
	require.Len(t, list, 1, "it is still listed")
	assert.Equal(t, before, rawRow(t, k2, w.ID), "the stored row is untouched")

	noKeys := webhooktest.NewDispatcher(t, webhook.Config{Store: k1.Store, Clock: k1.Clock})
	_, err = noKeys.Webhook(t.Context(), w.ID)
	assert.ErrorIs(t, err, webhook.ErrSecretKey, "nor can a process without a keyring")

	k1.Clock.Advance(time.Minute) // the default HoldDelay
	k1.Drain(t)
	assert.Len(t, rcv.Delivered(), 1, "the process with the key delivers it")
}

func TestSealedSecretsAreBoundToTheirWebhook(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{SecretKeys: keyring(t, "k1", "k1")})
	a := register(t, k, rcv, webhook.Webhook{Name: "a"})
	b := register(t, k, rcv, webhook.Webhook{Name: "b"})
	ra, err := k.Store.Webhook(t.Context(), a.ID)
	require.NoError(t, err)
	rb, err := k.Store.Webhook(t.Context(), b.ID)
	require.NoError(t, err)
	var da, db map[string]any
	require.NoError(t, json.Unmarshal(ra.Definition, &da))
	require.NoError(t, json.Unmarshal(rb.Definition, &db))
	db["sealed"] = da["sealed"] // someone with write access to the table copies a's secrets into b
	rb.Definition, err = json.Marshal(db)
	require.NoError(t, err)
	_, err = k.Store.SaveWebhook(t.Context(), store.Webhook{ID: rb.ID, Definition: rb.Definition}, k.Clock.Now())
	require.NoError(t, err)
	_, err = k.Webhook(t.Context(), b.ID)
	assert.ErrorIs(t, err, webhook.ErrSecretKey)
}

func TestNewKeyringValidates(t *testing.T) {
	t.Parallel()
	_, err := webhook.NewKeyring("k1", map[string][]byte{"k1": key(1)[:16]})
	assert.ErrorContains(t, err, "want 32")
	_, err = webhook.NewKeyring("k2", map[string][]byte{"k1": key(1)})
	assert.ErrorContains(t, err, "current key")
	_, err = webhook.NewKeyring("a:b", map[string][]byte{"a:b": key(1)})
	assert.ErrorContains(t, err, "key id")
	k, err := webhook.NewKeyring("k1", map[string][]byte{"k1": key('S'), "k0": key('T')})
	require.NoError(t, err)
	assert.Equal(t, "k1", k.Current())
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out := fmt.Sprintf(f, k) + fmt.Sprintf(f, webhook.Config{SecretKeys: k})
		assert.NotContains(t, out, "SSSS", f)
		assert.NotContains(t, out, "53535353", f, "not even in hex")
	}
	assert.Equal(t, "webhook.Keyring{current: k1, keys: k0,k1}", k.String())
}

// The JSON of a webhook masks its secrets; Update reads the mask back as
// "keep", but not for a credential whose destination changed.
func TestWebhookJSONMasksAndRoundTripsThroughUpdate(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	ts := newTokenServer(t, 3600)
	w := register(t, k, rcv, secretWebhook(rcv, ts))

	b, err := json.Marshal(w)
	require.NoError(t, err)
	for _, s := range []string{w.Secret, ts.clientSecret, "userinfo-pass-61", "query-key-62", "header-key-63"} {
		assert.NotContains(t, string(b), s)
	}
	assert.Contains(t, string(b), `"secret":"xxxxx"`)
	assert.Contains(t, string(b), `"X-Api-Key":"xxxxx"`)

	// An admin UI edits the description and sends the JSON back.
	var edited webhook.Webhook
	require.NoError(t, json.Unmarshal(b, &edited))
	edited.Description = "edited in the admin UI"
	u, err := k.Update(t.Context(), edited)
	require.NoError(t, err)
	assert.Equal(t, w.Secret, u.Secret)
	assert.Equal(t, w.URL, u.URL, "the URL with its credentials is kept")
	assert.Equal(t, "header-key-63", u.Headers["X-Api-Key"])
	assert.Equal(t, ts.clientSecret, u.Auth.ClientSecret)
	assert.Equal(t, w.Auth.TokenURL, u.Auth.TokenURL)
	publishN(t, k, 1, "A")
	k.Drain(t)
	require.NoError(t, last(t, rcv).VerifyErr)
	assert.Equal(t, "header-key-63", last(t, rcv).Header.Get("X-Api-Key"))

	// Pointing the URL elsewhere keeps the signing secret but not the
	// header credential: it would go to the new address.
	moved := edited
	moved.Version = u.Version // edited as read after the first update
	moved.URL = "http://other.example/hook"
	_, err = k.Update(t.Context(), moved)
	require.ErrorIs(t, err, webhook.ErrInvalidWebhook)
	assert.Contains(t, err.Error(), "give X-Api-Key again")
	moved.Headers = map[string]string{"X-Api-Key": "new-key"}
	_, err = k.Update(t.Context(), moved)
	require.NoError(t, err, "with the header given again the move is fine")

	// A masked client secret with another token URL is refused too.
	again, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	var redacted webhook.Webhook
	require.NoError(t, json.Unmarshal(must(json.Marshal(again)), &redacted))
	redacted.Auth.TokenURL = "https://evil.example/token"
	_, err = k.Update(t.Context(), redacted)
	require.ErrorIs(t, err, webhook.ErrInvalidWebhook)
	assert.Contains(t, err.Error(), "give client_secret again")
}

func TestWebhookPrintsNoSecrets(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{SecretKeys: keyring(t, "k1", "k1"), Clients: map[string]*http.Client{"c": {}}})
	ts := newTokenServer(t, 3600)
	w := register(t, k, rcv, secretWebhook(rcv, ts))
	w, err := k.RotateSecret(t.Context(), w.ID, 0)
	require.NoError(t, err)
	cfg := webhook.Config{SecretKeys: keyring(t, "k1", "k1")}
	secrets := []string{w.Secret, w.PreviousSecrets[0].Value, ts.clientSecret, "userinfo-pass-61", "query-key-62", "header-key-63"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{w, &w, []webhook.Webhook{w}, map[string]webhook.Webhook{"w": w}, struct{ W webhook.Webhook }{w},
			w.PreviousSecrets, *w.Auth, w.Auth, cfg} {
			out := fmt.Sprintf(f, v)
			for _, s := range secrets {
				assert.NotContains(t, out, s, "%s of %T", f, v)
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
