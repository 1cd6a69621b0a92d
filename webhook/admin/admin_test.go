package admin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/admin"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Tokens the test resolver knows.
const (
	acme   = "acme-alice" // tenant acme, actor alice
	acme2  = "acme-amir"  // tenant acme, actor amir
	globex = "globex-bob" // tenant globex, actor bob
	ops    = "ops-olga"   // an operator
)

// resolve is the test application's authentication: a bearer token names
// the caller.
func resolve(r *http.Request) (admin.Caller, error) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch tok {
	case acme:
		return admin.Caller{Tenant: "acme", Actor: "alice"}, nil
	case acme2:
		return admin.Caller{Tenant: "acme", Actor: "amir"}, nil
	case globex:
		return admin.Caller{Tenant: "globex", Actor: "bob"}, nil
	case ops:
		return admin.Caller{Actor: "olga", Operator: true}, nil
	case "":
		return admin.Caller{}, admin.ErrUnauthenticated
	case "suspended":
		return admin.Caller{}, admin.ErrForbidden
	case "tenantless":
		return admin.Caller{Actor: "nobody"}, nil
	case "confused":
		return admin.Caller{Tenant: "acme", Operator: true}, nil
	}
	return admin.Caller{}, errors.New("session store down: dsn=postgres://u:pw@db")
}

// env is a dispatcher on the memory store, a receiver, and the admin API
// served over HTTP.
type env struct {
	t   *testing.T
	k   *webhooktest.Kit
	rcv *webhooktest.Receiver
	srv *httptest.Server
}

func setup(t *testing.T, opts ...func(*admin.Options, *webhook.Config)) *env {
	t.Helper()
	o := admin.Options{Resolve: resolve}
	var cfg webhook.Config
	for _, f := range opts {
		f(&o, &cfg)
	}
	k := webhooktest.NewDispatcher(t, cfg)
	rcv := webhooktest.NewReceiver(t, k.Clock)
	h, err := admin.New(k.Dispatcher, o)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, k: k, rcv: rcv, srv: srv}
}

// answer is a response of the API.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (a answer) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(a.Body, &m), "body: %s", a.Body)
	return m
}

// Decode decodes the body into v.
func (a answer) Decode(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(a.Body, v), "body: %s", a.Body)
}

// ErrorCode returns error.code of an error answer.
func (a answer) ErrorCode(t *testing.T) string {
	t.Helper()
	var e errBody
	a.Decode(t, &e)
	return e.Error.Code
}

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Fields  []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
		} `json:"fields"`
	} `json:"error"`
}

// do sends a request as the caller with token; body is a string sent as
// it is, or a value sent as JSON.
func (e *env) do(token, method, path string, body any) answer {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// hookJSON is the webhook JSON the tests read.
type hookJSON struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Description     string            `json:"description"`
	Tenant          string            `json:"tenant"`
	Table           string            `json:"table"`
	Ops             []string          `json:"ops"`
	URL             string            `json:"url"`
	Method          string            `json:"method"`
	Headers         map[string]string `json:"headers"`
	Secret          string            `json:"secret"`
	SignatureScheme string            `json:"signature_scheme"`
	PublicKey       string            `json:"public_key"`
	PreviousSecrets []map[string]any  `json:"previous_secrets"`
	Disabled        bool              `json:"disabled"`
	Version         int64             `json:"version"`
}

// create makes a webhook through the API as token and returns it, its
// secret in clear; the receiver learns the secret.
func (e *env) create(token string, w map[string]any) hookJSON {
	e.t.Helper()
	base := map[string]any{"name": "Payroll sync", "table": "employee", "ops": []string{"INSERT", "UPDATE"},
		"url": e.rcv.URL + "/hook"}
	for k, v := range w {
		base[k] = v
	}
	a := e.do(token, "POST", "/webhooks", base)
	require.Equal(e.t, http.StatusCreated, a.Status, "%s", a.Body)
	var h hookJSON
	a.Decode(e.t, &h)
	e.rcv.AddSecret(h.Secret)
	return h
}

// publish reports a change of employee key in tenant.
func (e *env) publish(tenant, key string, grade int) string {
	e.t.Helper()
	id, err := e.k.Publish(e.t.Context(), webhook.Change{Tenant: tenant, Table: "employee", Op: webhook.Update, Key: key,
		Old: map[string]any{"grade": grade - 1}, New: map[string]any{"grade": grade}})
	require.NoError(e.t, err)
	return id
}

// page is a list answer.
type page[T any] struct {
	Data       []T    `json:"data"`
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor"`
}

func list[T any](t *testing.T, a answer) page[T] {
	t.Helper()
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var p page[T]
	a.Decode(t, &p)
	return p
}

func TestNewChecksOptions(t *testing.T) {
	t.Parallel()
	k := webhooktest.NewDispatcher(t, webhook.Config{})
	_, err := admin.New(nil, admin.Options{Resolve: resolve})
	assert.ErrorContains(t, err, "dispatcher is required")
	_, err = admin.New(k.Dispatcher, admin.Options{})
	assert.ErrorContains(t, err, "Resolve is required")
	_, err = admin.New(k.Dispatcher, admin.Options{Resolve: resolve, MaxBodyBytes: -1})
	assert.ErrorContains(t, err, "MaxBodyBytes")
	_, err = admin.New(k.Dispatcher, admin.Options{Resolve: resolve, TrustedOrigins: []string{"not an origin"}})
	assert.ErrorContains(t, err, "TrustedOrigins")
}
