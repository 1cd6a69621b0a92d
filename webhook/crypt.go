package webhook

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/heraldhr/herald/store"
)

// ErrSecretKey: a stored definition's secrets were encrypted with a key
// this process does not have (Config.SecretKeys lacks its key id, or is
// not set), or do not decrypt. The webhook's deliveries are held until
// the key is configured.
var ErrSecretKey = errors.New("webhook: stored secrets cannot be decrypted")

// KeySize is the size of a Keyring key: AES-256.
const KeySize = 32

// Keyring holds the keys that encrypt webhook secrets at rest with
// AES-256-GCM: one current key that encrypts, and older keys that still
// decrypt what they encrypted. To rotate, add a new key, make it current,
// call Dispatcher.ReencryptSecrets, then drop the old key.
//
// A Keyring never prints, logs or encodes its keys.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyring returns a keyring that encrypts with keys[current] and
// decrypts with any of keys. Each key is KeySize random bytes (keep them
// in a secret manager, not beside the database); key ids are 1 to 32
// letters, digits, '.', '_' or '-', and are stored beside each ciphertext.
func NewKeyring(current string, keys map[string][]byte) (*Keyring, error) {
	k := &Keyring{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, key := range keys {
		if !validKeyID(id) {
			return nil, fmt.Errorf("webhook: keyring: key id %q: want 1 to 32 letters, digits, '.', '_' or '-'", id)
		}
		if len(key) != KeySize {
			return nil, fmt.Errorf("webhook: keyring: key %q is %d bytes, want %d", id, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("webhook: keyring: key %q: %w", id, err)
		}
		if k.aeads[id], err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("webhook: keyring: key %q: %w", id, err)
		}
	}
	if _, ok := k.aeads[current]; !ok {
		return nil, fmt.Errorf("webhook: keyring: current key %q is not among the keys", current)
	}
	return k, nil
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Current returns the id of the key that encrypts.
func (k Keyring) Current() string { return k.current }

// String names the keys, never their bytes.
func (k Keyring) String() string {
	ids := make([]string, 0, len(k.aeads))
	for id := range k.aeads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return fmt.Sprintf("webhook.Keyring{current: %s, keys: %s}", k.current, strings.Join(ids, ","))
}

// Format prints String for every verb.
func (k Keyring) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue keeps the keys out of structured logs.
func (k Keyring) LogValue() slog.Value { return slog.StringValue(k.String()) }

// sealPrefix starts every sealed value: "enc:v1:<key id>:<base64 of nonce
// and ciphertext>".
const sealPrefix = "enc:v1:"

// seal encrypts plaintext under the current key, bound to aad.
func (k *Keyring) seal(plaintext, aad []byte) (string, error) {
	a := k.aeads[k.current]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("webhook: sealing secrets: %w", err)
	}
	out := a.Seal(nonce, nonce, plaintext, aad)
	return sealPrefix + k.current + ":" + base64.StdEncoding.EncodeToString(out), nil
}

// sealedKeyID returns the key id of a sealed value.
func sealedKeyID(sealed string) (string, bool) {
	rest, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ":")
	return id, ok
}

// open decrypts a sealed value. A nil keyring opens nothing.
func (k *Keyring) open(sealed string, aad []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: unknown format", ErrSecretKey)
	}
	id, enc, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, fmt.Errorf("%w: unknown format", ErrSecretKey)
	}
	if k == nil {
		return nil, fmt.Errorf("%w: sealed with key %q, and Config.SecretKeys is not set", ErrSecretKey, id)
	}
	a, ok := k.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w: sealed with key %q, which Config.SecretKeys lacks", ErrSecretKey, id)
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(raw) < a.NonceSize()+a.Overhead() {
		return nil, fmt.Errorf("%w: sealed value with key %q is damaged", ErrSecretKey, id)
	}
	pt, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed value does not decrypt with key %q (wrong key, or moved from another webhook)", ErrSecretKey, id)
	}
	return pt, nil
}

// storedDefinition is how a webhook definition is kept in the store: its
// fields as they are (not Masked, unlike the JSON of Webhook, Auth and
// Secret), with the secrets moved into Sealed when Config.SecretKeys is
// set. Its own PreviousSecrets and Auth shadow the embedded ones, so that
// they encode without masking.
type storedDefinition struct {
	plainWebhook
	PreviousSecrets []storedSecret `json:"previous_secrets,omitempty"`
	Auth            *storedAuth    `json:"auth,omitempty"`
	Sealed          string         `json:"sealed,omitempty"`
}

// storedSecret and storedAuth encode every field as it is.
type (
	storedSecret Secret
	storedAuth   Auth
)

func toStored(w Webhook, sealed string) storedDefinition {
	sd := storedDefinition{plainWebhook: plainWebhook(w), Sealed: sealed}
	for _, p := range w.PreviousSecrets {
		sd.PreviousSecrets = append(sd.PreviousSecrets, storedSecret(p))
	}
	if w.Auth != nil {
		a := storedAuth(*w.Auth)
		sd.Auth = &a
	}
	sd.plainWebhook.PreviousSecrets, sd.plainWebhook.Auth = nil, nil
	return sd
}

func (sd storedDefinition) webhook() Webhook {
	w := Webhook(sd.plainWebhook)
	w.PreviousSecrets = nil
	for _, p := range sd.PreviousSecrets {
		w.PreviousSecrets = append(w.PreviousSecrets, Secret(p))
	}
	w.Auth = nil
	if sd.Auth != nil {
		a := Auth(*sd.Auth)
		w.Auth = &a
	}
	return w
}

// sealedSecrets is what Sealed encrypts: every field that may carry a
// secret. The plaintext part keeps a redacted URL and the header names,
// so a reader of the database still sees where a webhook goes.
type sealedSecrets struct {
	Secret          string            `json:"secret,omitempty"`
	PreviousSecrets []string          `json:"previous_secrets,omitempty"`
	URL             string            `json:"url,omitempty"`
	Headers         map[string]string `json:"headers,omitempty"`
	Password        string            `json:"password,omitempty"`
	Token           string            `json:"token,omitempty"`
	TokenURL        string            `json:"token_url,omitempty"`
	ClientSecret    string            `json:"client_secret,omitempty"`
}

// sealAAD binds a sealed value to its webhook, so that it cannot be copied
// into another webhook's row.
func sealAAD(id string) []byte { return []byte("herald webhook secrets\x00" + id) }

// encodeDefinition is the stored form of w.
func (d *Dispatcher) encodeDefinition(w Webhook) (json.RawMessage, error) {
	k := d.cfg.SecretKeys
	if k == nil {
		return json.Marshal(toStored(w, ""))
	}
	s := sealedSecrets{Secret: w.Secret, URL: w.URL, Headers: w.Headers}
	for _, p := range w.PreviousSecrets {
		s.PreviousSecrets = append(s.PreviousSecrets, p.Value)
	}
	r := w.Redacted()
	if w.Auth != nil {
		s.Password, s.Token, s.ClientSecret, s.TokenURL = w.Auth.Password, w.Auth.Token, w.Auth.ClientSecret, w.Auth.TokenURL
	}
	pt, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	sealed, err := k.seal(pt, sealAAD(w.ID))
	if err != nil {
		return nil, err
	}
	// The plaintext part shows where the webhook goes and what it holds,
	// not the values.
	r.Secret = ""
	for i := range r.PreviousSecrets {
		r.PreviousSecrets[i].Value = ""
	}
	if r.Auth != nil {
		for _, f := range r.Auth.secretFields() {
			*f = ""
		}
	}
	return json.Marshal(toStored(r, sealed))
}

// decodeDefinition reads a stored definition. Definitions stored without
// encryption load whether or not Config.SecretKeys is set. When the
// sealed secrets cannot be opened, the rest of the definition is returned
// with an error wrapping ErrSecretKey.
func (d *Dispatcher) decodeDefinition(r store.Webhook) (Webhook, error) {
	var sd storedDefinition
	if err := json.Unmarshal(r.Definition, &sd); err != nil {
		return Webhook{}, fmt.Errorf("stored definition unreadable: %w", err)
	}
	w := sd.webhook()
	if sd.Sealed == "" {
		w.derive()
		return w, nil
	}
	pt, err := d.cfg.SecretKeys.open(sd.Sealed, sealAAD(r.ID))
	if err != nil {
		return w, err
	}
	var s sealedSecrets
	if err := json.Unmarshal(pt, &s); err != nil {
		return w, fmt.Errorf("%w: sealed secrets unreadable: %v", ErrSecretKey, err)
	}
	if len(s.PreviousSecrets) != len(w.PreviousSecrets) {
		return w, fmt.Errorf("%w: sealed secrets do not fit the definition", ErrSecretKey)
	}
	w.Secret, w.URL, w.Headers = s.Secret, s.URL, s.Headers
	for i := range w.PreviousSecrets {
		w.PreviousSecrets[i].Value = s.PreviousSecrets[i]
	}
	if w.Auth != nil {
		w.Auth.Password, w.Auth.Token, w.Auth.ClientSecret, w.Auth.TokenURL = s.Password, s.Token, s.ClientSecret, s.TokenURL
	}
	w.derive()
	return w, nil
}

// ReencryptSecrets stores again every webhook whose secrets are not sealed
// with the current key of Config.SecretKeys: definitions stored before
// encryption was configured, and those sealed with an older key. Run it
// after a key rotation; when it returns without error, older keys may be
// dropped. It returns how many definitions it rewrote. A definition whose
// secrets cannot be decrypted is left as it is and reported in the error.
func (d *Dispatcher) ReencryptSecrets(ctx context.Context) (int, error) {
	k := d.cfg.SecretKeys
	if k == nil {
		return 0, errors.New("webhook: ReencryptSecrets needs Config.SecretKeys")
	}
	rows, err := d.store.Webhooks(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, r := range rows {
		var sd struct {
			Sealed string `json:"sealed"`
		}
		_ = json.Unmarshal(r.Definition, &sd)
		if id, ok := sealedKeyID(sd.Sealed); ok && id == k.current {
			continue
		}
		w, err := d.decodeDefinition(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("webhook %s: %w", r.ID, err))
			continue
		}
		// Stored as it is, without Register's validation: re-encryption
		// must not fail for, or change, anything but the secrets' form.
		w.ID, w.Tenant, w.Disabled = r.ID, r.Tenant, r.Disabled
		w.Version, w.CreatedAt, w.UpdatedAt = 0, time.Time{}, time.Time{}
		def, err := d.encodeDefinition(w)
		if err == nil {
			_, err = d.store.SaveWebhook(ctx, store.Webhook{ID: r.ID, Tenant: r.Tenant, Disabled: r.Disabled, Definition: def}, d.now())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("webhook %s: %w", r.ID, err))
			continue
		}
		n++
	}
	if n > 0 {
		if _, err := d.current(ctx, true); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}
