package webhook_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
)

// A receiver that wants OAuth2 client credentials: herald fetches a token
// once, caches it until shortly before it expires, and sends it with every
// request.
func ExampleAuth_oauth2() {
	ctx := context.Background()
	var mu sync.Mutex
	tokenRequests := 0
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokenRequests++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"eyJ-payroll","token_type":"bearer","expires_in":3600}`)
	}))
	defer idp.Close()
	got := make(chan string, 3)
	payroll := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
	}))
	defer payroll.Close()

	d, err := webhook.New(webhook.Config{Store: memory.New(), AllowPrivateNetworks: true})
	if err != nil {
		panic(err)
	}
	_, err = d.Register(ctx, webhook.Webhook{
		Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: payroll.URL,
		Auth: &webhook.Auth{
			Type:         webhook.AuthOAuth2ClientCredentials,
			TokenURL:     idp.URL + "/oauth/token", // https in production
			ClientID:     "herald",
			ClientSecret: "client-secret-from-the-idp",
			Scopes:       []string{"payroll.write"},
		},
	})
	if err != nil {
		panic(err)
	}
	for _, key := range []string{"E-1", "E-2", "E-3"} {
		if _, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Update, Key: key,
			Old: map[string]any{"grade": 1}, New: map[string]any{"grade": 2}}); err != nil {
			panic(err)
		}
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		panic(err)
	}
	fmt.Println(<-got, <-got, <-got)
	mu.Lock()
	fmt.Println("token requests:", tokenRequests)
	mu.Unlock()
	// Output:
	// Bearer eyJ-payroll Bearer eyJ-payroll Bearer eyJ-payroll
	// token requests: 1
}

// Rotating a secret: for the grace period every request carries two
// signatures, so the receiver can move to the new secret whenever it
// likes.
func ExampleDispatcher_RotateSecret() {
	ctx := context.Background()
	type received struct {
		header http.Header
		body   []byte
	}
	got := make(chan received, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- received{r.Header, body}
	}))
	defer receiver.Close()

	d, err := webhook.New(webhook.Config{Store: memory.New(), AllowPrivateNetworks: true})
	if err != nil {
		panic(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "idp", Table: "employee",
		Ops: []webhook.Op{webhook.Delete}, URL: receiver.URL})
	if err != nil {
		panic(err)
	}
	oldSecret := w.Secret

	w, err = d.RotateSecret(ctx, w.ID, 48*time.Hour)
	if err != nil {
		panic(err)
	}
	fmt.Println("old secret signs until:", w.PreviousSecrets[0].ExpiresAt.Sub(w.PreviousSecrets[0].RotatedAt))

	if _, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Delete, Key: "E-1001",
		Old: map[string]any{"status": "terminated"}}); err != nil {
		panic(err)
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		panic(err)
	}
	r := <-got
	fmt.Println("signatures:", len(strings.Fields(r.header.Get("Webhook-Signature"))))
	fmt.Println("old secret verifies:", signer.Verify(oldSecret, r.header, r.body) == nil)
	fmt.Println("new secret verifies:", signer.Verify(w.Secret, r.header, r.body) == nil)
	// Output:
	// old secret signs until: 48h0m0s
	// signatures: 2
	// old secret verifies: true
	// new secret verifies: true
}

// Ed25519 signatures: the receiver holds only the public key, which cannot
// sign.
func ExampleWebhook_ed25519() {
	ctx := context.Background()
	d, err := webhook.New(webhook.Config{Store: memory.New()})
	if err != nil {
		panic(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "identity", Table: "employee",
		Ops: []webhook.Op{webhook.Delete}, URL: "https://idp.example/hooks/herald",
		SignatureScheme: webhook.SchemeEd25519})
	if err != nil {
		panic(err)
	}
	fmt.Println(w.SignatureScheme, w.Secret[:5], w.PublicKey[:5])
	// Output: ed25519 whsk_ whpk_
}

// A webhook shown anywhere (fmt, slog, JSON) keeps its secrets to itself.
func ExampleWebhook_MarshalJSON() {
	w := webhook.Webhook{
		ID: "payroll", Name: "Payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL:     "https://payroll.example/hooks?api_key=k-12345",
		Headers: map[string]string{"X-Tenant-Key": "t-12345"},
		Secret:  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		Auth:    &webhook.Auth{Type: webhook.AuthBasic, Username: "herald", Password: "p-12345"},
	}
	b, _ := json.Marshal(w)
	fmt.Println(string(b))
	fmt.Println(w)
	// Output:
	// {"id":"payroll","name":"Payroll","table":"employee","ops":["UPDATE"],"url":"https://payroll.example/hooks?api_key=xxxxx","headers":{"X-Tenant-Key":"xxxxx"},"secret":"xxxxx","auth":{"type":"basic","username":"herald","password":"xxxxx"}}
	// webhook payroll "Payroll" (employee [UPDATE] -> POST https://payroll.example/hooks?api_key=xxxxx)
}

// Encrypting secrets at rest: the store keeps them sealed with a key the
// database never sees.
func ExampleNewKeyring() {
	ctx := context.Background()
	// In production the key comes from a secret manager, for example as
	// base64 in an environment variable.
	raw := make([]byte, webhook.KeySize)
	if _, err := rand.Read(raw); err != nil {
		panic(err)
	}
	fromEnv := base64.StdEncoding.EncodeToString(raw)
	key, err := base64.StdEncoding.DecodeString(fromEnv)
	if err != nil {
		panic(err)
	}
	keys, err := webhook.NewKeyring("2026-03", map[string][]byte{"2026-03": key})
	if err != nil {
		panic(err)
	}
	st := memory.New()
	d, err := webhook.New(webhook.Config{Store: st, SecretKeys: keys})
	if err != nil {
		panic(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "payroll", Table: "employee",
		Ops: []webhook.Op{webhook.Update}, URL: "https://payroll.example/hooks"})
	if err != nil {
		panic(err)
	}
	row, err := st.Webhook(ctx, w.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("secret in the row:", strings.Contains(string(row.Definition), w.Secret))
	fmt.Println("sealed with:", strings.Contains(string(row.Definition), `"sealed":"enc:v1:2026-03:`))
	fmt.Println(keys)
	// Output:
	// secret in the row: false
	// sealed with: true
	// webhook.Keyring{current: 2026-03, keys: 2026-03}
}

// A receiver behind a private CA, or one that wants a client certificate:
// name a TLS setup, and herald builds a client for it with the same
// destination guard, timeouts and caps as its default one.
func ExampleConfig_clientTLS() {
	ctx := context.Background()
	got := make(chan string, 1)
	payroll := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path
	}))
	defer payroll.Close()
	roots := x509.NewCertPool()
	roots.AddCert(payroll.Certificate())

	d, err := webhook.New(webhook.Config{Store: memory.New(),
		AllowPrivateNetworks: true, // the receiver is on loopback here
		ClientTLS: map[string]*tls.Config{
			"payroll": {RootCAs: roots}, // and Certificates for mutual TLS
		}})
	if err != nil {
		panic(err)
	}
	_, err = d.Register(ctx, webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: payroll.URL + "/hooks/herald", Client: "payroll"})
	if err != nil {
		panic(err)
	}
	if _, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Update, Key: "E-1",
		Old: map[string]any{"grade": 1}, New: map[string]any{"grade": 2}}); err != nil {
		panic(err)
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output: /hooks/herald
}
