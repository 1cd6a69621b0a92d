package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// AuthType names how herald authenticates to a receiver.
type AuthType string

// The kinds of receiver authentication.
const (
	// AuthBasic sends "Authorization: Basic" with Username and Password.
	AuthBasic AuthType = "basic"
	// AuthBearer sends "Authorization: Bearer" with Token.
	AuthBearer AuthType = "bearer"
	// AuthOAuth2ClientCredentials fetches an access token from TokenURL
	// with ClientID and ClientSecret (RFC 6749 section 4.4), caches it
	// until it expires, and sends it as "Authorization: Bearer".
	AuthOAuth2ClientCredentials AuthType = "oauth2_client_credentials"
)

// OAuth2 client authentication styles at the token endpoint.
const (
	// AuthStyleHeader sends the client id and secret as HTTP Basic
	// authentication, which RFC 6749 requires every server to accept.
	AuthStyleHeader = "header"
	// AuthStyleParams sends them as client_id and client_secret form
	// parameters, for servers that want them in the body.
	AuthStyleParams = "params"
)

// Auth is how herald authenticates to one receiver: data in the webhook
// definition, validated by Register. Only the fields of its Type may be
// set. Its secret fields (Password, Token, ClientSecret) are printed,
// logged and JSON-encoded within a Webhook as Masked, and are encrypted at
// rest when Config.SecretKeys is set.
type Auth struct {
	Type AuthType `json:"type"`

	// Basic.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`

	// Bearer.
	Token string `json:"token,omitempty"`

	// OAuth2 client credentials. The token request goes through the
	// webhook's HTTP client (its Client, or the dispatcher's guarded
	// one), bounded by Config.AttemptTimeout.
	TokenURL     string   `json:"token_url,omitempty"`
	ClientID     string   `json:"client_id,omitempty"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	// Params are extra token request parameters, such as "audience" or
	// "resource".
	Params map[string]string `json:"params,omitempty"`
	// AuthStyle is AuthStyleHeader (the default) or AuthStyleParams.
	AuthStyle string `json:"auth_style,omitempty"`
}

// String describes the authentication without its secrets.
func (a Auth) String() string {
	switch a.Type {
	case AuthBasic:
		return fmt.Sprintf("basic auth as %q", a.Username)
	case AuthBearer:
		return "bearer token"
	case AuthOAuth2ClientCredentials:
		return fmt.Sprintf("oauth2 client credentials for %q at %s", a.ClientID, RedactURL(a.TokenURL))
	}
	return fmt.Sprintf("auth %q", string(a.Type))
}

// Format prints String for every verb, %#v and %+v included, so that no
// verb prints a password, token or client secret.
func (a Auth) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(a.String())) }

// MarshalJSON encodes the authentication with its secrets and the user
// info and query values of TokenURL Masked, as Webhook's JSON does;
// unmarshalling reads every field as given.
func (a Auth) MarshalJSON() ([]byte, error) {
	for _, f := range a.secretFields() {
		if *f != "" {
			*f = Masked
		}
	}
	if a.TokenURL != "" {
		a.TokenURL = RedactURL(a.TokenURL)
	}
	return json.Marshal(storedAuth(a))
}

// LogValue keeps secrets out of structured logs.
func (a Auth) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("type", string(a.Type))}
	switch a.Type {
	case AuthBasic:
		attrs = append(attrs, slog.String("username", a.Username))
	case AuthOAuth2ClientCredentials:
		attrs = append(attrs, slog.String("client_id", a.ClientID), slog.String("token_url", RedactURL(a.TokenURL)))
	}
	return slog.GroupValue(attrs...)
}

// secretFields returns pointers to the fields of a that hold secrets, by
// JSON name.
func (a *Auth) secretFields() map[string]*string {
	return map[string]*string{"password": &a.Password, "token": &a.Token, "client_secret": &a.ClientSecret}
}

// validateAuth checks w.Auth; its messages name fields, never values.
func (d *Dispatcher) validateAuth(w *Webhook) []error {
	a := w.Auth
	if a == nil {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, inField("auth", fmt.Errorf("auth: "+format, args...)))
	}
	for name, v := range a.secretFields() {
		if *v == Masked {
			bad("%s holds the mask %q, not a value", name, Masked)
		}
	}
	for k := range w.Headers {
		if http.CanonicalHeaderKey(k) == "Authorization" {
			bad("set either auth or an Authorization header, not both")
		}
	}
	noCtl := func(name, v string) {
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			bad("%s holds a control character", name)
		}
	}
	only := func(fields map[string]bool) {
		set := map[string]bool{
			"username": a.Username != "", "password": a.Password != "", "token": a.Token != "",
			"token_url": a.TokenURL != "", "client_id": a.ClientID != "", "client_secret": a.ClientSecret != "",
			"scopes": len(a.Scopes) > 0, "params": len(a.Params) > 0, "auth_style": a.AuthStyle != "",
		}
		for _, name := range []string{"username", "password", "token", "token_url", "client_id", "client_secret", "scopes", "params", "auth_style"} {
			if set[name] && !fields[name] {
				bad("%s does not apply to type %s", name, a.Type)
			}
		}
	}
	switch a.Type {
	case AuthBasic:
		only(map[string]bool{"username": true, "password": true})
		if a.Username == "" {
			bad("basic needs a username")
		}
		if strings.Contains(a.Username, ":") {
			bad("a basic username cannot contain a colon")
		}
		noCtl("username", a.Username)
		noCtl("password", a.Password)
	case AuthBearer:
		only(map[string]bool{"token": true})
		if a.Token == "" {
			bad("bearer needs a token")
		}
		if strings.ContainsAny(a.Token, " \t") {
			bad("token holds white space")
		}
		noCtl("token", a.Token)
	case AuthOAuth2ClientCredentials:
		only(map[string]bool{"token_url": true, "client_id": true, "client_secret": true, "scopes": true, "params": true, "auth_style": true})
		if err := d.checkURL(a.TokenURL); err != nil {
			bad("token_url: %v", err)
		} else if u, _ := url.Parse(a.TokenURL); u.Scheme != "https" && !d.cfg.AllowPrivateNetworks {
			bad("token_url must be https: the client secret travels to it")
		}
		if a.ClientID == "" {
			bad("oauth2_client_credentials needs a client_id")
		}
		if a.ClientSecret == "" {
			bad("oauth2_client_credentials needs a client_secret")
		}
		noCtl("client_id", a.ClientID)
		noCtl("client_secret", a.ClientSecret)
		for _, s := range a.Scopes {
			if s == "" || strings.ContainsAny(s, " \t\r\n") {
				bad("scopes: each scope is one non-empty word")
				break
			}
		}
		for k := range a.Params {
			switch k {
			case "grant_type", "scope", "client_id", "client_secret":
				bad("params: %q is set by herald", k)
			case "":
				bad("params: empty name")
			}
		}
		switch a.AuthStyle {
		case "", AuthStyleHeader, AuthStyleParams:
		default:
			bad("auth_style %q is not %s or %s", a.AuthStyle, AuthStyleHeader, AuthStyleParams)
		}
	default:
		bad("type %q is not %s, %s or %s", a.Type, AuthBasic, AuthBearer, AuthOAuth2ClientCredentials)
	}
	return errs
}

// clientErrors checks Config.Clients and Config.ClientTLS.
func (c *Config) clientErrors() []error {
	var errs []error
	for name, cl := range c.Clients {
		if name == "" {
			errs = append(errs, errors.New("webhook: Config.Clients has an empty name"))
		}
		if cl == nil {
			errs = append(errs, fmt.Errorf("webhook: Config.Clients[%q] is nil", name))
		}
	}
	for name, tc := range c.ClientTLS {
		if name == "" {
			errs = append(errs, errors.New("webhook: Config.ClientTLS has an empty name"))
		}
		if tc == nil {
			errs = append(errs, fmt.Errorf("webhook: Config.ClientTLS[%q] is nil", name))
		}
		if _, ok := c.Clients[name]; ok && name != "" {
			errs = append(errs, fmt.Errorf("webhook: %q is in both Config.Clients and Config.ClientTLS", name))
		}
	}
	return errs
}

// clientFor returns the HTTP client a webhook's requests go through.
func (d *Dispatcher) clientFor(w Webhook) (*http.Client, error) {
	if w.Client == "" {
		return d.client, nil
	}
	if c, ok := d.cfg.Clients[w.Client]; ok {
		return c, nil
	}
	if c, ok := d.cfg.tlsClients[w.Client]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("client %q is not in Config.Clients or Config.ClientTLS of this process", w.Client)
}

// authorize sets the Authorization header of an attempt's request. Only
// an OAuth2 webhook can fail here, when no token can be had; the error is
// a *TokenError and the attempt is retried.
func (d *Dispatcher) authorize(ctx context.Context, w *compiled, h http.Header) error {
	a := w.Auth
	if a == nil {
		return nil
	}
	switch a.Type {
	case AuthBasic:
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	case AuthBearer:
		h.Set("Authorization", "Bearer "+a.Token)
	case AuthOAuth2ClientCredentials:
		v, err := d.tokens.entry(w.ID, w.Version).get(ctx, func(ctx context.Context) (string, time.Time, error) {
			return d.fetchToken(ctx, w)
		}, d.now)
		if err != nil {
			return err
		}
		h.Set("Authorization", v)
	}
	return nil
}

// unauthorized drops the cached OAuth2 token that a receiver refused with
// 401, so the next attempt fetches a fresh one.
func (d *Dispatcher) unauthorized(w *compiled, req *http.Request) {
	if w.Auth != nil && w.Auth.Type == AuthOAuth2ClientCredentials {
		d.tokens.entry(w.ID, w.Version).forget(req.Header.Get("Authorization"))
	}
}

// tokenRefreshMargin is how long before its expiry a cached token is
// replaced, so that it does not expire on its way to the receiver.
const tokenRefreshMargin = 10 * time.Second

// fetchToken asks the token endpoint for a token and returns the
// Authorization header value and when to stop using it (zero: until a
// receiver refuses it).
//
// The oauth2 package measures expiry with the system clock; herald reads
// expires_in from the response itself and measures it with Config.Clock,
// so a fake clock drives token expiry in tests.
func (d *Dispatcher) fetchToken(ctx context.Context, w *compiled) (string, time.Time, error) {
	a := w.Auth
	conf := clientcredentials.Config{
		ClientID:     a.ClientID,
		ClientSecret: a.ClientSecret,
		TokenURL:     a.TokenURL,
		Scopes:       a.Scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	if a.AuthStyle == AuthStyleParams {
		conf.AuthStyle = oauth2.AuthStyleInParams
	}
	if len(a.Params) > 0 {
		conf.EndpointParams = url.Values{}
		for k, v := range a.Params {
			conf.EndpointParams.Set(k, v)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.AttemptTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, w.client)
	start := d.now()
	realStart := time.Now()
	tok, err := conf.Token(ctx)
	if err != nil {
		return "", time.Time{}, newTokenError(a, err)
	}
	var expiry time.Time
	if secs, ok := expiresIn(tok.Extra("expires_in")); ok {
		life := time.Duration(secs) * time.Second
		expiry = start.Add(life - min(tokenRefreshMargin, life/2))
	} else if !tok.Expiry.IsZero() {
		life := tok.Expiry.Sub(realStart)
		expiry = start.Add(life - min(tokenRefreshMargin, life/2))
	}
	return tok.Type() + " " + tok.AccessToken, expiry, nil
}

// expiresIn reads the expires_in of a token response: a JSON number, or a
// string as some servers send it.
func expiresIn(v any) (int64, bool) {
	var n int64
	switch x := v.(type) {
	case float64:
		n = int64(x)
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0, false
		}
		n = i
	case string:
		i, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, false
		}
		n = i
	default:
		return 0, false
	}
	return n, n > 0
}

// TokenError reports that no OAuth2 access token could be had for an
// attempt. The attempt fails and is retried on the webhook's schedule.
// Its message names the token endpoint (redacted), the status and the
// RFC 6749 error code, never the credentials or the body of the answer.
type TokenError struct {
	TokenURL   string // redacted
	StatusCode int    // the token endpoint's answer; 0 when none arrived
	Code       string // RFC 6749 "error", e.g. "invalid_client"
	Err        error  // the network or timeout error, if any
}

// Error describes the failed token request without the server's answer.
func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "oauth2 token from %s", e.TokenURL)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": status %d", e.StatusCode)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the network or timeout error, if any.
func (e *TokenError) Unwrap() error { return e.Err }

// newTokenError turns what the oauth2 package returned into a TokenError
// that carries nothing the token endpoint sent back but its status and
// error code (a server may echo the request, credentials included), and
// no URL but the redacted token URL.
func newTokenError(a *Auth, err error) *TokenError {
	te := &TokenError{TokenURL: RedactURL(a.TokenURL)}
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			te.StatusCode = re.Response.StatusCode
		}
		if validErrorCode(re.ErrorCode) {
			te.Code = re.ErrorCode
		}
	case errors.As(err, &ue):
		te.Err = ue.Err // the network or timeout error, without the URL
	default:
		// A timeout, or the oauth2 package's own complaint about the
		// answer (no access_token, unparseable JSON): none quotes what
		// was sent back.
		te.Err = err
	}
	if te.Err != nil && strings.Contains(te.Err.Error(), a.ClientSecret) {
		te.Err = errors.New(scrub(te.Err.Error(), a.ClientSecret)) // belt and braces
	}
	return te
}

// validErrorCode accepts RFC 6749 error codes: printable ASCII without
// quotes or backslashes, and short.
func validErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// scrub replaces every occurrence of the given secrets in s with Masked.
func scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, Masked)
		}
	}
	return s
}

// redactURLError masks the URL that net/http puts in its errors: it keeps
// the query string, which may carry an API key.
func redactURLError(err error) error {
	if err == nil {
		return nil // before ue, which escapes: no allocation on success
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
}

// tokenCache holds the OAuth2 tokens of the webhooks, one per definition
// version: an edit of the credentials (any edit) starts afresh, and an
// edit of another webhook changes nothing.
type tokenCache struct {
	mu      sync.Mutex
	entries map[tokenKey]*tokenEntry
}

type tokenKey struct {
	id      string
	version int64
}

func (c *tokenCache) entry(id string, version int64) *tokenEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := tokenKey{id, version}
	if e, ok := c.entries[k]; ok {
		return e
	}
	if c.entries == nil {
		c.entries = map[tokenKey]*tokenEntry{}
	}
	e := &tokenEntry{lock: make(chan struct{}, 1)}
	c.entries[k] = e
	return e
}

// retain drops the tokens of definitions that are gone or were edited.
func (c *tokenCache) retain(defs *definitions) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		if w, ok := defs.byID[k.id]; !ok || w.Version != k.version {
			delete(c.entries, k)
		}
	}
}

// tokenEntry is one webhook's token. One fetch runs at a time; attempts
// that waited for a fetch share its outcome, so a failing token endpoint
// is asked once, not once per queued message.
type tokenEntry struct {
	lock chan struct{} // holds a value while a fetch runs

	mu      sync.Mutex
	header  string    // "Bearer <token>"; "" when none is cached
	expiry  time.Time // by Config.Clock; zero: until refused
	fetches int       // fetches finished, to tell waiters one happened
	lastErr error     // the outcome of the last fetch
}

func (e *tokenEntry) cached(now time.Time) (string, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.header != "" && (e.expiry.IsZero() || now.Before(e.expiry)) {
		return e.header, e.fetches
	}
	return "", e.fetches
}

// get returns a valid cached token, or fetches one.
func (e *tokenEntry) get(ctx context.Context, fetch func(context.Context) (string, time.Time, error), now func() time.Time) (string, error) {
	h, seen := e.cached(now())
	if h != "" {
		return h, nil
	}
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-e.lock }()
	e.mu.Lock()
	if e.fetches != seen && e.lastErr != nil {
		err := e.lastErr
		e.mu.Unlock()
		return "", err
	}
	e.mu.Unlock()
	if h, _ := e.cached(now()); h != "" {
		return h, nil
	}
	h, expiry, err := fetch(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fetches++
	e.lastErr = err
	if err != nil {
		return "", err
	}
	e.header, e.expiry = h, expiry
	return h, nil
}

// forget drops the cached token if it is still the one a receiver
// refused.
func (e *tokenEntry) forget(header string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if header != "" && e.header == header {
		e.header, e.expiry = "", time.Time{}
	}
}
