package webhook_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// verifyAt checks a received request with the given keys alone, under the
// Standard Webhooks rules, at the fake clock's time.
func verifyAt(t *testing.T, clock *webhooktest.Clock, r webhooktest.Request, keys ...string) error {
	t.Helper()
	v, err := signer.NewVerifierWithOptions(signer.VerifierOptions{Now: clock.Now}, keys...)
	require.NoError(t, err)
	return v.Verify(r.Header, r.Body)
}

func last(t *testing.T, rcv *webhooktest.Receiver) webhooktest.Request {
	t.Helper()
	reqs := rcv.Requests()
	require.NotEmpty(t, reqs)
	return reqs[len(reqs)-1]
}

func TestRotateSecretSignsWithBothDuringTheGrace(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	old := w.Secret

	r, err := k.RotateSecret(t.Context(), w.ID, time.Hour)
	require.NoError(t, err)
	require.NotEqual(t, old, r.Secret)
	assert.True(t, strings.HasPrefix(r.Secret, "whsec_"), "the new secret is of the same kind")
	require.Len(t, r.PreviousSecrets, 1)
	assert.Equal(t, old, r.PreviousSecrets[0].Value)
	assert.Equal(t, k.Clock.Now().Add(time.Hour), r.PreviousSecrets[0].ExpiresAt)
	assert.Equal(t, k.Clock.Now(), r.PreviousSecrets[0].RotatedAt)

	publishN(t, k, 1, "A")
	k.Drain(t)
	req := last(t, rcv)
	sigs := req.Header.Values("Webhook-Signature")
	require.Len(t, sigs, 1, "one header line")
	assert.Len(t, strings.Fields(sigs[0]), 2, "both signatures travel in it")
	assert.NoError(t, verifyAt(t, k.Clock, req, old), "a receiver still on the old secret accepts")
	assert.NoError(t, verifyAt(t, k.Clock, req, r.Secret), "a receiver already on the new secret accepts")

	// One second before the grace ends the old one still signs; at its
	// end it stops.
	k.Clock.Advance(time.Hour - time.Second)
	publishN(t, k, 1, "B")
	k.Drain(t)
	assert.NoError(t, verifyAt(t, k.Clock, last(t, rcv), old))

	k.Clock.Advance(time.Second)
	publishN(t, k, 1, "C")
	k.Drain(t)
	req = last(t, rcv)
	assert.Len(t, strings.Fields(req.Header.Get("Webhook-Signature")), 1, "after the grace only one signature")
	assert.ErrorIs(t, verifyAt(t, k.Clock, req, old), signer.ErrNoMatchingSignature, "the old secret no longer verifies")
	assert.NoError(t, verifyAt(t, k.Clock, req, r.Secret))

	// The next save prunes the expired secret from the definition.
	got, err := k.SetDisabled(t.Context(), w.ID, false)
	require.NoError(t, err)
	assert.Empty(t, got.PreviousSecrets)
}

func TestRotateSecretGraceDefaultsAndRevocation(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	r1, err := k.RotateSecret(t.Context(), w.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, k.Clock.Now().Add(webhook.DefaultRotationGrace), r1.PreviousSecrets[0].ExpiresAt, "grace 0 is a day")

	r2, err := k.RotateSecret(t.Context(), w.ID, time.Hour)
	require.NoError(t, err)
	require.Len(t, r2.PreviousSecrets, 2, "two rotations in one grace: three secrets sign")
	assert.Equal(t, r1.Secret, r2.PreviousSecrets[0].Value, "newest first")

	r3, err := k.RotateSecret(t.Context(), w.ID, -1)
	require.NoError(t, err)
	assert.Empty(t, r3.PreviousSecrets, "a negative grace revokes every older secret at once")
	publishN(t, k, 1, "A")
	k.Drain(t)
	req := last(t, rcv)
	assert.Len(t, strings.Fields(req.Header.Get("Webhook-Signature")), 1)
	for _, s := range []string{w.Secret, r1.Secret, r2.Secret} {
		assert.ErrorIs(t, verifyAt(t, k.Clock, req, s), signer.ErrNoMatchingSignature)
	}
	assert.NoError(t, verifyAt(t, k.Clock, req, r3.Secret))

	_, err = k.RotateSecret(t.Context(), "missing", time.Hour)
	assert.ErrorIs(t, err, webhook.ErrNotFound)
}

func TestRotateSecretLimit(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	for range webhook.MaxPreviousSecrets {
		_, err := k.RotateSecret(t.Context(), w.ID, time.Hour)
		require.NoError(t, err)
	}
	_, err := k.RotateSecret(t.Context(), w.ID, time.Hour)
	require.ErrorIs(t, err, webhook.ErrInvalidWebhook)
	k.Clock.Advance(time.Hour)
	_, err = k.RotateSecret(t.Context(), w.ID, time.Hour)
	assert.NoError(t, err, "expired secrets free their places")
}

func TestRotateSecretToCallerSecretAndAcrossSchemes(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	_, err := k.RotateSecretTo(t.Context(), w.ID, "whsec_short", time.Hour)
	require.ErrorIs(t, err, webhook.ErrInvalidWebhook)
	assert.NotContains(t, err.Error(), "whsec_short")
	_, err = k.RotateSecretTo(t.Context(), w.ID, w.Secret, time.Hour)
	require.ErrorIs(t, err, webhook.ErrInvalidWebhook, "the current secret is no new secret")

	sk, pk, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	r, err := k.RotateSecretTo(t.Context(), w.ID, sk, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, webhook.SchemeEd25519, r.SignatureScheme)
	assert.Equal(t, pk, r.PublicKey)

	publishN(t, k, 1, "A")
	k.Drain(t)
	req := last(t, rcv)
	entries := strings.Fields(req.Header.Get("Webhook-Signature"))
	require.Len(t, entries, 2)
	assert.True(t, strings.HasPrefix(entries[0], "v1a,"), "the new Ed25519 signature first")
	assert.True(t, strings.HasPrefix(entries[1], "v1,"), "the old HMAC one beside it")
	assert.NoError(t, verifyAt(t, k.Clock, req, w.Secret))
	assert.NoError(t, verifyAt(t, k.Clock, req, pk))
}

func TestUpdateWithANewSecretEndsTheRotation(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	r, err := k.RotateSecret(t.Context(), w.ID, time.Hour)
	require.NoError(t, err)

	r.Description = "kept"
	r.Secret = ""
	u, err := k.Update(t.Context(), r)
	require.NoError(t, err)
	assert.Len(t, u.PreviousSecrets, 1, "an Update that keeps the secret keeps its rotation")

	fresh, err := signer.GenerateSecret()
	require.NoError(t, err)
	u.Secret = fresh
	u, err = k.Update(t.Context(), u)
	require.NoError(t, err)
	assert.Equal(t, fresh, u.Secret)
	assert.Equal(t, r.PreviousSecrets, u.PreviousSecrets, "previous secrets given to Update are stored as given")

	fresh, err = signer.GenerateSecret()
	require.NoError(t, err)
	u.Secret = fresh
	u.PreviousSecrets = nil
	u, err = k.Update(t.Context(), u)
	require.NoError(t, err)
	assert.Empty(t, u.PreviousSecrets, "a secret set by hand, without previous ones, replaces the old at once")
}

func TestEd25519WebhookEndToEnd(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w, err := k.Register(t.Context(), webhook.Webhook{Name: "idp", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: rcv.URL + "/hook", SignatureScheme: webhook.SchemeEd25519})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(w.Secret, "whsk_"), "Register generated a private key")
	assert.True(t, strings.HasPrefix(w.PublicKey, "whpk_"), "and exposes its public key")
	assert.Equal(t, webhook.SchemeEd25519, w.SignatureScheme)
	rcv.AddSecret(w.PublicKey)

	got, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, w.PublicKey, got.PublicKey, "the public key is there on every read")

	id, err := k.Publish(t.Context(), update("E-1", map[string]any{"status": "active"}, map[string]any{"status": "terminated"}))
	require.NoError(t, err)
	k.Drain(t)
	req := last(t, rcv)
	require.NoError(t, req.VerifyErr, "the receiver verifies with the public key alone")

	// Verify with crypto/ed25519 directly, as a receiver in another
	// language would.
	sig := req.Header.Get("Webhook-Signature")
	require.True(t, strings.HasPrefix(sig, "v1a,"))
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "v1a,"))
	require.NoError(t, err)
	pub, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(w.PublicKey, "whpk_"))
	require.NoError(t, err)
	msg := []byte(id + "." + req.Header.Get("Webhook-Timestamp") + "." + string(req.Body))
	assert.True(t, ed25519.Verify(pub, msg, raw))
	assert.False(t, ed25519.Verify(pub, append(msg, ' '), raw), "a changed body does not verify")

	// The verifier rejects the same request outside the tolerance, either
	// way.
	for _, skew := range []time.Duration{6 * time.Minute, -6 * time.Minute} {
		clock := webhooktest.NewClock(k.Clock.Now().Add(skew))
		assert.ErrorIs(t, verifyAt(t, clock, req, w.PublicKey), signer.ErrTimestamp)
	}
	ts, _ := strconv.ParseInt(req.Header.Get("Webhook-Timestamp"), 10, 64)
	assert.Equal(t, k.Clock.Now().Unix(), ts)

	// The private key is not a verification key.
	_, err = signer.NewVerifier(w.Secret)
	assert.ErrorIs(t, err, signer.ErrInvalidSecret)
}

func TestRegisterSchemeAndSecretMustAgree(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	sk, pk, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	base := webhook.Webhook{Name: "n", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: rcv.URL}

	w := base
	w.Secret = sk
	got, err := k.Register(t.Context(), w)
	require.NoError(t, err, "a whsk_ secret makes an Ed25519 webhook")
	assert.Equal(t, webhook.SchemeEd25519, got.SignatureScheme)
	assert.Equal(t, pk, got.PublicKey)

	for name, mutate := range map[string]func(*webhook.Webhook){
		"mismatch":   func(w *webhook.Webhook) { w.Secret, w.SignatureScheme = sk, webhook.SchemeHMAC },
		"unknown":    func(w *webhook.Webhook) { w.SignatureScheme = "rsa" },
		"public key": func(w *webhook.Webhook) { w.Secret = pk },
		"masked":     func(w *webhook.Webhook) { w.Secret = webhook.Masked },
		"no expiry":  func(w *webhook.Webhook) { w.PreviousSecrets = []webhook.Secret{{Value: sk}} },
		"bad previous": func(w *webhook.Webhook) {
			w.PreviousSecrets = []webhook.Secret{{Value: "whsec_x", ExpiresAt: webhooktest.Epoch.Add(time.Hour)}}
		},
		"masked header": func(w *webhook.Webhook) { w.Headers = map[string]string{"X-Key": webhook.Masked} },
	} {
		w := base
		mutate(&w)
		_, err := k.Register(t.Context(), w)
		require.ErrorIs(t, err, webhook.ErrInvalidWebhook, name)
		assert.NotContains(t, err.Error(), sk, name)
	}
}

func TestWebhookStoredBeforeRotationExistedStillSigns(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	secret, err := signer.GenerateSecret()
	require.NoError(t, err)
	// A definition as earlier versions stored it: only "secret".
	def, err := json.Marshal(map[string]any{"id": "legacy", "name": "legacy", "table": "employee",
		"ops": []string{"UPDATE"}, "url": rcv.URL + "/legacy", "method": "POST", "secret": secret})
	require.NoError(t, err)
	_, err = k.Store.SaveWebhook(t.Context(), store.Webhook{ID: "legacy", Definition: def}, k.Clock.Now())
	require.NoError(t, err)
	rcv.AddSecret(secret)

	w, err := k.Webhook(t.Context(), "legacy")
	require.NoError(t, err)
	assert.Equal(t, webhook.SchemeHMAC, w.SignatureScheme)
	assert.Empty(t, w.PreviousSecrets)
	publishN(t, k, 1, "A")
	k.Drain(t)
	require.NoError(t, last(t, rcv).VerifyErr)

	r, err := k.RotateSecret(t.Context(), "legacy", time.Hour)
	require.NoError(t, err)
	publishN(t, k, 1, "B")
	k.Drain(t)
	assert.NoError(t, verifyAt(t, k.Clock, last(t, rcv), secret))
	assert.NoError(t, verifyAt(t, k.Clock, last(t, rcv), r.Secret))
}

// A receiver that de-duplicates by webhook-id drops a replayed message and
// passes a new one.
func TestReceiverDedupDropsAReplay(t *testing.T) {
	t.Parallel()
	k := webhooktest.NewDispatcher(t, webhook.Config{})
	var mu sync.Mutex
	var handled []string
	var secret string
	var verifier *signer.Verifier
	seen := signer.NewMemorySeenStore(signer.MemorySeenStoreOptions{Now: k.Clock.Now})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		v := verifier
		mu.Unlock()
		v.Middleware(signer.Dedup(seen, 0)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			var env struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal(body, &env)
			mu.Lock()
			handled = append(handled, env.ID)
			mu.Unlock()
		}))).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	w, err := k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: srv.URL})
	require.NoError(t, err)
	secret = w.Secret
	mu.Lock()
	verifier, err = signer.NewVerifierWithOptions(signer.VerifierOptions{Now: k.Clock.Now}, secret)
	mu.Unlock()
	require.NoError(t, err)

	first, err := k.Publish(t.Context(), update("E-1", map[string]any{"grade": 1}, map[string]any{"grade": 2}))
	require.NoError(t, err)
	k.Drain(t)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: first})
	require.NoError(t, err)
	require.Equal(t, webhook.Delivered, ds[0].Status)

	require.NoError(t, k.Replay(t.Context(), ds[0].ID))
	k.Drain(t)
	ds, err = k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: first})
	require.NoError(t, err)
	assert.Equal(t, webhook.Delivered, ds[0].Status, "the receiver acknowledged the replay")
	as, err := k.Attempts(t.Context(), ds[0].ID)
	require.NoError(t, err)
	assert.Contains(t, as[len(as)-1].ResponseBody, "already processed", "without handling it again")

	second, err := k.Publish(t.Context(), update("E-1", map[string]any{"grade": 2}, map[string]any{"grade": 3}))
	require.NoError(t, err)
	k.Drain(t)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{first, second}, handled, "the replay was dropped, the new message passed")
}
