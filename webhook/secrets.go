package webhook

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/heraldhr/herald/signer"
)

// Masked stands in for a secret wherever a webhook is shown: String, every
// fmt verb, slog, JSON, the delivery log's request headers. Update reads
// it back as "keep the stored value" (see Dispatcher.Update).
const Masked = "xxxxx"

// Signature schemes, for Webhook.SignatureScheme.
const (
	// SchemeHMAC signs with a shared "whsec_" secret (v1 signatures): the
	// receiver holds the same secret.
	SchemeHMAC = "hmac-sha256"
	// SchemeEd25519 signs with a "whsk_" private key (v1a signatures): the
	// receiver holds only the "whpk_" public key, which cannot sign.
	SchemeEd25519 = "ed25519"
)

// MaxPreviousSecrets bounds the secrets a webhook keeps in their grace
// beside the current one; every live secret adds a signature to each
// request.
const MaxPreviousSecrets = 8

// Secret is an earlier signing secret of a webhook, still signing during
// a rotation's grace.
type Secret struct {
	// Value is the "whsec_" secret or "whsk_" private key.
	Value string `json:"value"`
	// RotatedAt is when it stopped being the current secret.
	RotatedAt time.Time `json:"rotated_at,omitzero"`
	// ExpiresAt is when it stops signing. Required.
	ExpiresAt time.Time `json:"expires_at"`
}

// String describes the secret without its value.
func (s Secret) String() string {
	return fmt.Sprintf("%s secret expiring %s", schemeOf(s.Value), s.ExpiresAt.UTC().Format(time.RFC3339))
}

// Format prints String for every verb, so that no verb prints the value.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalJSON encodes the secret with its value Masked, as Webhook's JSON
// does; unmarshalling reads the value as given.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s.Value != "" {
		s.Value = Masked
	}
	return json.Marshal(storedSecret(s))
}

// LogValue keeps the value out of structured logs.
func (s Secret) LogValue() slog.Value {
	return slog.GroupValue(slog.String("scheme", schemeOf(s.Value)), slog.Time("expires_at", s.ExpiresAt))
}

// Format prints String for every verb, %#v and %+v included: a webhook
// printed in any way shows no secret, header value, credential, URL user
// info or query value.
func (w Webhook) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(w.String())) }

// plainWebhook is Webhook without its methods: its JSON encoding carries
// every field as it is.
type plainWebhook Webhook

// MarshalJSON encodes the webhook as Redacted does: secrets, credentials,
// header values, URL user info and query values are Masked. It is the
// form to hand to an admin UI or an API client. Unmarshalling reads every
// field as given, and Update keeps the stored value of any field that
// comes back Masked, so the JSON can be edited and sent back.
func (w Webhook) MarshalJSON() ([]byte, error) { return json.Marshal(plainWebhook(w.Redacted())) }

// Redacted returns a copy of w with its secrets masked: Secret and
// previous secret values, header values, Auth's password, token and client
// secret, and the user info and query values of URL and Auth.TokenURL.
// PublicKey is kept: it is meant to be handed out.
func (w Webhook) Redacted() Webhook {
	r := w
	r.URL = RedactURL(w.URL)
	if r.Secret != "" {
		r.Secret = Masked
	}
	if w.PreviousSecrets != nil {
		r.PreviousSecrets = make([]Secret, len(w.PreviousSecrets))
		for i, s := range w.PreviousSecrets {
			s.Value = Masked
			r.PreviousSecrets[i] = s
		}
	}
	if w.Headers != nil {
		r.Headers = make(map[string]string, len(w.Headers))
		for k := range w.Headers {
			r.Headers[k] = Masked
		}
	}
	if w.Auth != nil {
		a := *w.Auth
		for _, f := range a.secretFields() {
			if *f != "" {
				*f = Masked
			}
		}
		if a.TokenURL != "" {
			a.TokenURL = RedactURL(a.TokenURL)
		}
		r.Auth = &a
	}
	return r
}

// schemeOf names the signature scheme of a signing secret.
func schemeOf(secret string) string {
	if strings.HasPrefix(strings.TrimSpace(secret), "whsk_") {
		return SchemeEd25519
	}
	return SchemeHMAC
}

// generateSecret makes a new signing secret of the given scheme.
func generateSecret(scheme string) (string, error) {
	if scheme == SchemeEd25519 {
		sk, _, err := signer.GenerateKeyPair()
		return sk, err
	}
	return signer.GenerateSecret()
}

// derive sets the fields that follow from Secret: SignatureScheme and
// PublicKey.
func (w *Webhook) derive() {
	if w.Secret == "" {
		return // unreadable here: keep what was stored
	}
	w.SignatureScheme = schemeOf(w.Secret)
	w.PublicKey = ""
	if pk, err := signer.PublicKey(w.Secret); err == nil {
		w.PublicKey = pk
	}
}

// livePrevious drops the previous secrets that expired by now. One
// without an expiry stays, for validation to refuse.
func livePrevious(ss []Secret, now time.Time) []Secret {
	var out []Secret
	for _, s := range ss {
		if s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt) {
			out = append(out, s)
		}
	}
	return out
}

// validateCredentials checks the secrets, the receiver authentication
// and the client of w; messages name fields, never values.
func (d *Dispatcher) validateCredentials(w *Webhook) []error {
	var errs []error
	bad := func(field, format string, a ...any) { errs = append(errs, inField(field, fmt.Errorf(format, a...))) }
	switch {
	case w.Secret == Masked:
		bad("secret", "secret holds the mask %q, not a secret", Masked)
	case signer.ValidateSecret(w.Secret) != nil:
		bad("secret", "secret is malformed (expected whsec_ or whsk_ followed by base64)")
	}
	switch w.SignatureScheme {
	case "", SchemeHMAC, SchemeEd25519:
		if w.SignatureScheme != "" && w.Secret != Masked && w.SignatureScheme != schemeOf(w.Secret) {
			bad("signature_scheme", "signature_scheme %s does not match the secret, which is %s (switch schemes with RotateSecretTo)",
				w.SignatureScheme, schemeOf(w.Secret))
		}
	default:
		bad("signature_scheme", "signature_scheme %q is not %s or %s", w.SignatureScheme, SchemeHMAC, SchemeEd25519)
	}
	if len(w.PreviousSecrets) > MaxPreviousSecrets {
		bad("previous_secrets", "previous_secrets: %d secrets in their grace, at most %d", len(w.PreviousSecrets), MaxPreviousSecrets)
	}
	for i, s := range w.PreviousSecrets {
		switch {
		case s.Value == Masked:
			bad(fmt.Sprintf("previous_secrets[%d]", i), "previous_secrets[%d] holds the mask %q, not a secret", i, Masked)
		case signer.ValidateSecret(s.Value) != nil:
			bad(fmt.Sprintf("previous_secrets[%d]", i), "previous_secrets[%d] is malformed (expected whsec_ or whsk_ followed by base64)", i)
		}
		if s.ExpiresAt.IsZero() {
			bad(fmt.Sprintf("previous_secrets[%d].expires_at", i), "previous_secrets[%d]: expires_at is required", i)
		}
	}
	for k, v := range w.Headers {
		if v == Masked {
			bad("headers", "headers: %s holds the mask %q, not a value", k, Masked)
		}
	}
	errs = append(errs, d.validateAuth(w)...)
	if _, err := d.clientFor(*w); err != nil {
		errs = append(errs, inField("client", err))
	}
	return errs
}

// keepStored fills in what an Update leaves to the stored definition: an
// empty or Masked Secret keeps the current one (and its rotation), and a
// Masked header value, Auth secret, URL or token URL keeps the stored one.
// A Masked credential is kept only while it still goes where it went: when
// the URL's origin (or the token URL) changed, it must be given again, so
// an edit cannot send a stored credential somewhere new without knowing
// it.
func keepStored(in *Webhook, old Webhook) error {
	var errs []error
	if in.URL != old.URL && in.URL == RedactURL(old.URL) {
		in.URL = old.URL
	}
	sameOrigin := origin(in.URL) == origin(old.URL)
	if in.Secret == "" || in.Secret == Masked || in.Secret == old.Secret {
		in.Secret = old.Secret
		if in.PreviousSecrets == nil || anyMasked(in.PreviousSecrets) {
			in.PreviousSecrets = old.PreviousSecrets
		}
	} else if in.PreviousSecrets == nil || anyMasked(in.PreviousSecrets) {
		// A new secret set by hand replaces the old at once; rotate with
		// RotateSecretTo to keep the old one signing for a while.
		in.PreviousSecrets = nil
	}
	if len(in.Headers) > 0 {
		hs := make(map[string]string, len(in.Headers))
		for k, v := range in.Headers {
			if v == Masked {
				ov, ok := headerValue(old.Headers, k)
				switch {
				case !ok:
					errs = append(errs, inField("headers", fmt.Errorf("headers: %s holds the mask %q but no value is stored", k, Masked)))
				case !sameOrigin:
					errs = append(errs, inField("headers", fmt.Errorf("headers: the url moved to another origin; give %s again", k)))
				default:
					v = ov
				}
			}
			hs[k] = v
		}
		in.Headers = hs
	}
	if in.Auth != nil {
		a := *in.Auth
		var oa Auth
		if old.Auth != nil && old.Auth.Type == a.Type {
			oa = *old.Auth
		}
		if a.TokenURL != "" && a.TokenURL != oa.TokenURL && a.TokenURL == RedactURL(oa.TokenURL) {
			a.TokenURL = oa.TokenURL
		}
		// A client secret goes to the token URL; a password or token to
		// the webhook's URL.
		goesSame := sameOrigin
		if a.Type == AuthOAuth2ClientCredentials {
			goesSame = a.TokenURL == oa.TokenURL
		}
		stored := oa.secretFields()
		for name, f := range a.secretFields() {
			if *f != Masked {
				continue
			}
			switch {
			case *stored[name] == "":
				errs = append(errs, inField("auth", fmt.Errorf("auth: %s holds the mask %q but no value is stored", name, Masked)))
			case !goesSame:
				errs = append(errs, inField("auth", fmt.Errorf("auth: the credentials would go to another address; give %s again", name)))
			default:
				*f = *stored[name]
			}
		}
		in.Auth = &a
	}
	return invalid(errs)
}

func anyMasked(ss []Secret) bool {
	for _, s := range ss {
		if s.Value == Masked {
			return true
		}
	}
	return false
}

// headerValue looks a header up by its canonical name.
func headerValue(h map[string]string, name string) (string, bool) {
	want := http.CanonicalHeaderKey(name)
	for k, v := range h {
		if http.CanonicalHeaderKey(k) == want {
			return v, true
		}
	}
	return "", false
}

// origin is the scheme and host of a URL: where its credentials go.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// signingKeys are a webhook's live signing secrets. The set shrinks as
// previous secrets expire, read from Config.Clock at each attempt; the
// Signer for the current set is cached until it changes.
type signingKeys struct {
	current  string
	previous []Secret
	only     *signer.Signer // the current secret alone
	cache    atomic.Pointer[liveSigner]
}

type liveSigner struct {
	live uint64 // bit i: previous[i] signs
	s    *signer.Signer
}

// maxStoredPrevious bounds the previous secrets a stored definition may
// hold (Register allows MaxPreviousSecrets): one bit each in liveSigner.
const maxStoredPrevious = 64

func newSigningKeys(w Webhook) (*signingKeys, error) {
	if len(w.PreviousSecrets) > maxStoredPrevious {
		return nil, fmt.Errorf("%d previous secrets, at most %d", len(w.PreviousSecrets), maxStoredPrevious)
	}
	keys := []string{w.Secret}
	for _, s := range w.PreviousSecrets {
		keys = append(keys, s.Value)
	}
	all, err := signer.New(keys...) // every key must be usable, expired or not
	if err != nil {
		return nil, err
	}
	only, err := signer.New(w.Secret)
	if err != nil {
		return nil, err
	}
	k := &signingKeys{current: w.Secret, previous: w.PreviousSecrets, only: only}
	mask := uint64(1)<<len(w.PreviousSecrets) - 1
	k.cache.Store(&liveSigner{live: mask, s: all})
	return k, nil
}

// at returns the Signer of the secrets live at now: the current one, then
// the previous ones whose grace has not ended, in stored order.
func (k *signingKeys) at(now time.Time) *signer.Signer {
	var live uint64
	for i, s := range k.previous {
		if now.Before(s.ExpiresAt) {
			live |= 1 << i
		}
	}
	if c := k.cache.Load(); c != nil && c.live == live {
		return c.s
	}
	keys := []string{k.current}
	for i, s := range k.previous {
		if live&(1<<i) != 0 {
			keys = append(keys, s.Value)
		}
	}
	s, err := signer.New(keys...)
	if err != nil {
		s = k.only // unreachable: newSigningKeys parsed every key
	}
	k.cache.Store(&liveSigner{live: live, s: s})
	return s
}
