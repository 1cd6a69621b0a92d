package webhook_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// tokenServer is a local OAuth2 token endpoint. It issues "tok-1",
// "tok-2" ... with the given lifetime, checks the client's credentials,
// and answers from fail first when it is set.
type tokenServer struct {
	*httptest.Server
	clientID, clientSecret string
	expiresIn              int

	mu    sync.Mutex
	forms []url.Values
	fail  []tokenAnswer
	stall chan struct{} // when set, answers wait for it or the request's end
}

type tokenAnswer struct {
	status int
	body   string
}

func newTokenServer(t *testing.T, expiresIn int) *tokenServer {
	t.Helper()
	ts := &tokenServer{clientID: "herald-payroll", clientSecret: "cs-9f8e7d6c5b4a", expiresIn: expiresIn}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	ts.mu.Lock()
	ts.forms = append(ts.forms, r.PostForm)
	n := len(ts.forms)
	var a *tokenAnswer
	if len(ts.fail) > 0 {
		a = &ts.fail[0]
		ts.fail = ts.fail[1:]
	}
	stall := ts.stall
	ts.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if a != nil {
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || id != ts.clientID || secret != ts.clientSecret || r.PostForm.Get("grant_type") != "client_credentials" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer", "expires_in": ts.expiresIn})
}

func (ts *tokenServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.forms)
}

func (ts *tokenServer) auth() *webhook.Auth {
	return &webhook.Auth{Type: webhook.AuthOAuth2ClientCredentials, TokenURL: ts.URL + "/oauth/token",
		ClientID: ts.clientID, ClientSecret: ts.clientSecret, Scopes: []string{"payroll.write", "employees.read"},
		Params: map[string]string{"audience": "https://payroll.example"}}
}

func publishN(t *testing.T, k *webhooktest.Kit, n int, prefix string) {
	t.Helper()
	for i := range n {
		_, err := k.Publish(t.Context(), update(fmt.Sprintf("%s-%d", prefix, i), map[string]any{"grade": 1}, map[string]any{"grade": 2}))
		require.NoError(t, err)
	}
}

func authHeaders(reqs []webhooktest.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Header.Get("Authorization"))
	}
	return out
}

func TestBasicAndBearerAuthArrive(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	basic := register(t, k, rcv, webhook.Webhook{Name: "basic", URL: rcv.URL + "/basic",
		Auth: &webhook.Auth{Type: webhook.AuthBasic, Username: "herald", Password: "pa55:word"}})
	register(t, k, rcv, webhook.Webhook{Name: "bearer", URL: rcv.URL + "/bearer",
		Auth: &webhook.Auth{Type: webhook.AuthBearer, Token: "bt-0123456789"}})
	publishN(t, k, 1, "E")
	require.Equal(t, 2, k.Drain(t))

	got := map[string]webhooktest.Request{}
	for _, r := range rcv.Requests() {
		require.NoError(t, r.VerifyErr)
		got[r.URL] = r
	}
	hr, _ := http.NewRequest("GET", "/", nil)
	hr.Header = got["/basic"].Header
	user, pass, ok := hr.BasicAuth()
	require.True(t, ok, "Basic credentials arrive")
	assert.Equal(t, "herald", user)
	assert.Equal(t, "pa55:word", pass, "a colon in the password survives")
	assert.Equal(t, "Bearer bt-0123456789", got["/bearer"].Header.Get("Authorization"))

	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: basic.ID})
	require.NoError(t, err)
	as, err := k.Attempts(t.Context(), ds[0].ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.Masked, as[0].RequestHeaders["Authorization"], "the delivery log masks credentials")
}

func TestOAuth2TokenIsCachedAndRefreshedOnTheClock(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	ts := newTokenServer(t, 120)
	register(t, k, rcv, webhook.Webhook{Auth: ts.auth()})

	// Four messages attempted at once (ProcessDue runs them concurrently)
	// share one token request.
	publishN(t, k, 4, "A")
	require.Equal(t, 4, k.Drain(t))
	assert.Equal(t, 1, ts.count(), "one token for several deliveries")
	assert.Equal(t, []string{"Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer tok-1"}, authHeaders(rcv.Requests()))

	ts.mu.Lock()
	form := ts.forms[0]
	ts.mu.Unlock()
	assert.Equal(t, "client_credentials", form.Get("grant_type"))
	assert.Equal(t, "payroll.write employees.read", form.Get("scope"))
	assert.Equal(t, "https://payroll.example", form.Get("audience"))
	assert.Empty(t, form.Get("client_secret"), "the secret travels as Basic auth by default, not in the body")

	// The token lives 120s; herald replaces it 10s early, by its clock.
	k.Clock.Advance(109 * time.Second)
	publishN(t, k, 1, "B")
	k.Drain(t)
	assert.Equal(t, 1, ts.count(), "still valid at 109s")

	k.Clock.Advance(time.Second)
	publishN(t, k, 1, "C")
	k.Drain(t)
	assert.Equal(t, 2, ts.count(), "refreshed at 110s")
	reqs := rcv.Requests()
	assert.Equal(t, "Bearer tok-2", reqs[len(reqs)-1].Header.Get("Authorization"))
}

func TestOAuth2TokenFollowsTheDefinitionVersion(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	ts := newTokenServer(t, 3600)
	w := register(t, k, rcv, webhook.Webhook{Auth: ts.auth()})
	register(t, k, rcv, webhook.Webhook{Name: "other", Table: "leave"})

	publishN(t, k, 1, "A")
	k.Drain(t)
	require.Equal(t, 1, ts.count())

	// Editing another webhook keeps this one's token.
	other, err := k.Webhooks(t.Context())
	require.NoError(t, err)
	for _, o := range other {
		if o.Name == "other" {
			o.Description = "edited"
			_, err := k.Update(t.Context(), o)
			require.NoError(t, err)
		}
	}
	publishN(t, k, 1, "B")
	k.Drain(t)
	assert.Equal(t, 1, ts.count(), "an edit of another webhook keeps the token")

	// Editing this one's credentials drops it.
	a := ts.auth()
	a.Scopes = []string{"payroll.write"}
	w.Auth = a
	_, err = k.Update(t.Context(), w)
	require.NoError(t, err)
	publishN(t, k, 1, "C")
	k.Drain(t)
	assert.Equal(t, 2, ts.count(), "an edit of the credentials fetches a new token")
	ts.mu.Lock()
	assert.Equal(t, "payroll.write", ts.forms[1].Get("scope"))
	ts.mu.Unlock()
}

func TestOAuth2TokenEndpointFailureIsARetriedAttempt(t *testing.T) {
	t.Parallel()
	var events []webhook.Event
	var mu sync.Mutex
	k, rcv := setup(t, webhook.Config{Observer: webhook.ObserverFunc(func(e webhook.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	})})
	ts := newTokenServer(t, 3600)
	ts.fail = []tokenAnswer{{http.StatusUnauthorized,
		`{"error":"invalid_client","error_description":"client cs-9f8e7d6c5b4a unknown"}`}}
	w := register(t, k, rcv, webhook.Webhook{Auth: ts.auth()})
	publishN(t, k, 1, "A")

	require.Equal(t, 1, k.Drain(t))
	assert.Equal(t, 1, ts.count())
	assert.Empty(t, rcv.Requests(), "nothing is sent without a token")
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
	require.NoError(t, err)
	for _, d := range ds {
		assert.Equal(t, webhook.Pending, d.Status, "a token failure is retried")
		assert.Equal(t, 1, d.Attempts)
		assert.Contains(t, d.LastError, "status 401 (invalid_client)")
		assert.NotContains(t, d.LastError, ts.clientSecret)
	}
	mu.Lock()
	var sawRetry bool
	for _, e := range events {
		if e.Kind == webhook.EventAttempt {
			require.Error(t, e.Err)
			assert.NotContains(t, e.Err.Error(), ts.clientSecret)
		}
		sawRetry = sawRetry || e.Kind == webhook.EventRetry
	}
	mu.Unlock()
	assert.True(t, sawRetry)

	k.Settle(t, 5)
	assert.Len(t, rcv.Delivered(), 1, "delivered once the token endpoint answers")
	assert.Equal(t, 2, ts.count())
}

func TestOAuth2TokenEndpointTimeout(t *testing.T) {
	t.Parallel()
	// An after hook sees the attempt's error as a *TokenError.
	hooks := transform.NewRegistry()
	var seen error
	require.NoError(t, hooks.RegisterAfter("audit", transform.AfterFunc(func(_ context.Context, r *transform.Result) error {
		seen = r.Err
		return nil
	})))
	k, rcv := setup(t, webhook.Config{AttemptTimeout: 100 * time.Millisecond, LeaseDuration: time.Minute, Hooks: hooks})
	ts := newTokenServer(t, 3600)
	ts.stall = make(chan struct{})
	w := register(t, k, rcv, webhook.Webhook{Auth: ts.auth(), After: []string{"audit"}})
	publishN(t, k, 1, "A")
	k.Drain(t)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Equal(t, webhook.Pending, ds[0].Status)
	assert.Contains(t, ds[0].LastError, "oauth2 token from")
	var te *webhook.TokenError
	require.ErrorAs(t, seen, &te)
	// The attempt's deadline or the transport's header timeout, whichever
	// fires first: either way a timeout.
	var ne net.Error
	timedOut := errors.Is(seen, context.DeadlineExceeded) || (errors.As(seen, &ne) && ne.Timeout())
	assert.True(t, timedOut, "a timeout, got %v", seen)
	assert.Equal(t, ts.URL+"/oauth/token", te.TokenURL)
	close(ts.stall)
}

func TestOAuth2TokenRefusedByReceiverIsReplaced(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	ts := newTokenServer(t, 3600)
	register(t, k, rcv, webhook.Webhook{Auth: ts.auth()})
	rcv.Script(webhooktest.Answer{Status: http.StatusUnauthorized})
	publishN(t, k, 1, "A")
	k.Settle(t, 5)
	assert.Equal(t, []string{"Bearer tok-1", "Bearer tok-2"}, authHeaders(rcv.Requests()),
		"a 401 drops the cached token; the retry fetches a new one")
}

func TestOAuth2ParamsAuthStyle(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	var form url.Values
	var hadBasic bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = r.PostForm
		_, _, hadBasic = r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"p-tok","token_type":"Bearer","expires_in":"60"}`)
	}))
	t.Cleanup(ts.Close)
	register(t, k, rcv, webhook.Webhook{Auth: &webhook.Auth{Type: webhook.AuthOAuth2ClientCredentials,
		TokenURL: ts.URL, ClientID: "cid", ClientSecret: "csecret-1", AuthStyle: webhook.AuthStyleParams}})
	publishN(t, k, 1, "A")
	k.Drain(t)
	assert.False(t, hadBasic)
	assert.Equal(t, "cid", form.Get("client_id"))
	assert.Equal(t, "csecret-1", form.Get("client_secret"))
	assert.Equal(t, []string{"Bearer p-tok"}, authHeaders(rcv.Requests()), "expires_in as a string is read too")
}

func TestRegisterRejectsBadAuth(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	const secret = "do-not-echo-this"
	d, err := webhook.New(webhook.Config{Store: k.Store})
	require.NoError(t, err)
	cases := map[string]webhook.Auth{
		"unknown type":         {Type: "digest", Password: secret},
		"basic without user":   {Type: webhook.AuthBasic, Password: secret},
		"basic colon user":     {Type: webhook.AuthBasic, Username: "a:b", Password: secret},
		"basic crlf password":  {Type: webhook.AuthBasic, Username: "a", Password: secret + "\r\nX: y"},
		"basic with token":     {Type: webhook.AuthBasic, Username: "a", Password: secret, Token: secret},
		"bearer empty":         {Type: webhook.AuthBearer},
		"bearer with space":    {Type: webhook.AuthBearer, Token: secret + " x"},
		"bearer masked":        {Type: webhook.AuthBearer, Token: webhook.Masked},
		"oauth no url":         {Type: webhook.AuthOAuth2ClientCredentials, ClientID: "c", ClientSecret: secret},
		"oauth bad url":        {Type: webhook.AuthOAuth2ClientCredentials, TokenURL: "ftp://idp/token", ClientID: "c", ClientSecret: secret},
		"oauth no client":      {Type: webhook.AuthOAuth2ClientCredentials, TokenURL: rcv.URL, ClientSecret: secret},
		"oauth no secret":      {Type: webhook.AuthOAuth2ClientCredentials, TokenURL: rcv.URL, ClientID: "c"},
		"oauth reserved param": {Type: webhook.AuthOAuth2ClientCredentials, TokenURL: rcv.URL, ClientID: "c", ClientSecret: secret, Params: map[string]string{"client_secret": secret}},
		"oauth bad scope":      {Type: webhook.AuthOAuth2ClientCredentials, TokenURL: rcv.URL, ClientID: "c", ClientSecret: secret, Scopes: []string{"a b"}},
		"oauth bad style":      {Type: webhook.AuthOAuth2ClientCredentials, TokenURL: rcv.URL, ClientID: "c", ClientSecret: secret, AuthStyle: "cookie"},
		"oauth with password":  {Type: webhook.AuthOAuth2ClientCredentials, TokenURL: rcv.URL, ClientID: "c", ClientSecret: secret, Password: secret},
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "employee", Ops: []webhook.Op{webhook.Insert},
				URL: rcv.URL + "/?key=" + secret, Auth: &a})
			require.ErrorIs(t, err, webhook.ErrInvalidWebhook)
			assert.NotContains(t, err.Error(), secret, "no secret is echoed")
			assert.Contains(t, err.Error(), "auth")
		})
	}
	_, err = k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "employee", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL,
		Headers: map[string]string{"authorization": "Bearer x"}, Auth: &webhook.Auth{Type: webhook.AuthBearer, Token: "y"}})
	assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, "auth and an Authorization header conflict")

	// Without AllowPrivateNetworks a token URL must be https.
	_, err = d.Register(t.Context(), webhook.Webhook{Name: "n", Table: "employee", Ops: []webhook.Op{webhook.Insert}, URL: "https://payroll.example/hook",
		Auth: &webhook.Auth{Type: webhook.AuthOAuth2ClientCredentials, TokenURL: "http://idp.example/token", ClientID: "c", ClientSecret: secret}})
	require.ErrorIs(t, err, webhook.ErrInvalidWebhook)
	assert.Contains(t, err.Error(), "https")
}

// selfSigned makes a certificate for tests: a CA-less, self-signed leaf
// that the other side trusts directly.
func selfSigned(t *testing.T, cn string, server bool) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// mtlsReceiver starts a TLS server that wants a client certificate, and
// returns it, the certificate it takes, a pool that trusts the server,
// and the common names of the certificates it was sent so far.
func mtlsReceiver(t *testing.T) (srv *httptest.Server, cert tls.Certificate, trust *x509.CertPool, peers func() []string) {
	cert, clientPool := selfSigned(t, "herald-payroll", false)
	var mu sync.Mutex
	var names []string
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		names = append(names, r.TLS.PeerCertificates[0].Subject.CommonName)
		mu.Unlock()
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // a refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	trust = x509.NewCertPool()
	trust.AddCert(srv.Certificate())
	return srv, cert, trust, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(names)
	}
}

func TestMutualTLSThroughANamedClient(t *testing.T) {
	t.Parallel()
	srv, clientCert, serverPool, peers := mtlsReceiver(t)
	mtls := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{clientCert}, RootCAs: serverPool}}}
	t.Cleanup(mtls.CloseIdleConnections)
	k := webhooktest.NewDispatcher(t, webhook.Config{Clients: map[string]*http.Client{"payroll-mtls": mtls}})

	_, err := k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: srv.URL, Client: "nope"})
	require.ErrorIs(t, err, webhook.ErrInvalidWebhook, "an unknown client name is refused at Register")

	with, err := k.Register(t.Context(), webhook.Webhook{Name: "mtls", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: srv.URL + "/a", Client: "payroll-mtls"})
	require.NoError(t, err)
	without, err := k.Register(t.Context(), webhook.Webhook{Name: "plain", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: srv.URL + "/b"})
	require.NoError(t, err)
	publishN(t, k, 1, "E")
	k.Drain(t)

	assert.Equal(t, []string{"herald-payroll"}, peers(), "the named client presents its certificate")
	got, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: with.ID})
	require.NoError(t, err)
	assert.Equal(t, webhook.Delivered, got[0].Status)
	got, err = k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: without.ID})
	require.NoError(t, err)
	assert.Equal(t, webhook.Pending, got[0].Status, "the default client has no certificate (nor trusts the server)")
	assert.Contains(t, got[0].LastError, "certificate")
}

func TestMutualTLSThroughClientTLS(t *testing.T) {
	t.Parallel()
	srv, clientCert, serverPool, peers := mtlsReceiver(t)
	setup := &tls.Config{Certificates: []tls.Certificate{clientCert}, RootCAs: serverPool}
	k := webhooktest.NewDispatcher(t, webhook.Config{ClientTLS: map[string]*tls.Config{"payroll-mtls": setup}})
	w, err := k.Register(t.Context(), webhook.Webhook{Name: "mtls", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: srv.URL, Client: "payroll-mtls"})
	require.NoError(t, err)
	publishN(t, k, 1, "E")
	k.Drain(t)

	assert.Equal(t, []string{"herald-payroll"}, peers(), "the client built for the setup presents its certificate")
	got, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Equal(t, webhook.Delivered, got[0].Status)
	assert.Zero(t, setup.MinVersion, "the setup given is not changed")
}

func TestClientTLSKeepsTheGuard(t *testing.T) {
	t.Parallel()
	// The name passes Register's checks and resolves to a private address,
	// which only a guarded transport refuses; a client of Config.Clients
	// would dial it.
	d, err := webhook.New(webhook.Config{Store: memory.New(), Resolver: fixedResolver{netip.MustParseAddr("10.1.2.3")},
		ClientTLS: map[string]*tls.Config{"payroll-mtls": {}}})
	require.NoError(t, err)
	res, err := d.PingWebhook(t.Context(), webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: "https://payroll.example/hook", Client: "payroll-mtls"})
	require.NoError(t, err)
	assert.False(t, res.OK())
	assert.ErrorIs(t, res.Err, webhook.ErrBlockedDestination)
}

func TestDefinitionNamingAMissingClientIsHeld(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Clients: map[string]*http.Client{"special": {}}})
	w := register(t, k, rcv, webhook.Webhook{Client: "special"})
	// Another process without that client shares the store.
	var held []webhook.Event
	other := webhooktest.NewDispatcher(t, webhook.Config{Store: k.Store, Clock: k.Clock,
		Observer: webhook.ObserverFunc(func(e webhook.Event) {
			if e.Kind == webhook.EventHeld {
				held = append(held, e)
			}
		})})
	publishN(t, k, 1, "E")
	other.Drain(t)
	require.Len(t, held, 1)
	assert.Contains(t, held[0].Reason, `client "special"`)
	ds, err := other.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Equal(t, 0, ds[0].Attempts, "holding spends no attempt")
	assert.Empty(t, rcv.Requests())
}

func TestNewRejectsBadClients(t *testing.T) {
	t.Parallel()
	for want, cfg := range map[string]webhook.Config{
		`Config.Clients["x"] is nil`:                         {Clients: map[string]*http.Client{"x": nil}},
		`Config.ClientTLS["x"] is nil`:                       {ClientTLS: map[string]*tls.Config{"x": nil}},
		`Config.ClientTLS has an empty name`:                 {ClientTLS: map[string]*tls.Config{"": {}}},
		`"x" is in both Config.Clients and Config.ClientTLS`: {Clients: map[string]*http.Client{"x": {}}, ClientTLS: map[string]*tls.Config{"x": {}}},
	} {
		cfg.Store = memory.New()
		_, err := webhook.New(cfg)
		assert.ErrorContains(t, err, want)
	}
}

func TestAuthPrintsNoSecrets(t *testing.T) {
	t.Parallel()
	a := webhook.Auth{Type: webhook.AuthOAuth2ClientCredentials, TokenURL: "https://idp.example/token?key=k-123456",
		ClientID: "cid", ClientSecret: "cs-123456", Password: "pw-123456", Token: "tk-123456"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out := fmt.Sprintf(f, a) + fmt.Sprintf(f, &a)
		for _, s := range []string{"k-123456", "cs-123456", "pw-123456", "tk-123456"} {
			assert.NotContains(t, out, s, f)
		}
	}
	assert.Equal(t, `oauth2 client credentials for "cid" at https://idp.example/token?key=xxxxx`, a.String())
	b := base64.StdEncoding.EncodeToString([]byte("cs-123456"))
	assert.NotContains(t, fmt.Sprint(a), b)
}

func TestTokenErrorUnwrapsTimeouts(t *testing.T) {
	t.Parallel()
	te := &webhook.TokenError{TokenURL: "https://idp.example/token", Err: context.DeadlineExceeded}
	assert.True(t, errors.Is(te, context.DeadlineExceeded))
	assert.Equal(t, "oauth2 token from https://idp.example/token: context deadline exceeded", te.Error())
	te = &webhook.TokenError{TokenURL: "https://idp.example/token", StatusCode: 400, Code: "invalid_scope"}
	assert.Equal(t, "oauth2 token from https://idp.example/token: status 400 (invalid_scope)", te.Error())
}
