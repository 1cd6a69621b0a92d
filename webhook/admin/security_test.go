package admin_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/admin"
)

func TestEveryAnswerIsJSONAndUncached(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(acme, nil)
	for _, r := range []struct {
		token, method, path string
		status              int
	}{
		{acme, "GET", "/webhooks", 200},
		{acme, "GET", "/webhooks/" + h.ID, 200},
		{acme, "GET", "/webhooks/nope", 404},
		{acme, "GET", "/nowhere", 404},
		{acme, "POST", "/webhooks/" + h.ID, 405},
		{acme, "PUT", "/deliveries", 405},
		{"", "GET", "/webhooks", 401},
		{"", "GET", "/nowhere", 401},
		{"suspended", "GET", "/webhooks", 403},
		{"tenantless", "GET", "/webhooks", 403},
		{"confused", "GET", "/webhooks", 500},
		{"unknown", "GET", "/webhooks", 500},
	} {
		a := e.do(r.token, r.method, r.path, nil)
		assert.Equal(t, r.status, a.Status, "%s %s as %q: %s", r.method, r.path, r.token, a.Body)
		assert.Equal(t, "application/json; charset=utf-8", a.Header.Get("Content-Type"), r.path)
		assert.Equal(t, "no-store", a.Header.Get("Cache-Control"), r.path)
		assert.Equal(t, "nosniff", a.Header.Get("X-Content-Type-Options"), r.path)
		m := a.JSON(t)
		if r.status >= 400 {
			assert.Contains(t, m, "error", r.path)
		}
		assert.NotContains(t, string(a.Body), "pw@db", "a resolver's error is never shown")
	}
	a := e.do(acme, "POST", "/webhooks/"+h.ID, nil)
	assert.Equal(t, "GET, HEAD, PUT, PATCH, DELETE", a.Header.Get("Allow"))
	assert.Equal(t, "method_not_allowed", a.ErrorCode(t))
}

func TestCrossOriginWritesAreRefused(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *admin.Options, _ *webhook.Config) { o.TrustedOrigins = []string{"https://admin.example.com"} })
	h := e.create(acme, nil)
	send := func(method, origin, site string) int {
		req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+"/webhooks/"+h.ID+"/disable", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+acme)
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Site", site)
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusForbidden, send("POST", "https://evil.example", "cross-site"),
		"a page elsewhere cannot ride the admin's session")
	w, err := e.k.Webhook(t.Context(), h.ID)
	require.NoError(t, err)
	assert.False(t, w.Disabled)
	assert.Equal(t, http.StatusOK, send("POST", "https://admin.example.com", "same-site"), "a trusted origin may")
	assert.Equal(t, http.StatusOK, send("POST", "", "same-origin"))
}

func TestApplicationPolicy(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *admin.Options, _ *webhook.Config) {
		o.Check = func(r *http.Request, c admin.Caller, w webhook.Webhook) error {
			switch {
			case w.Name == "panic":
				panic("policy bug")
			case strings.Contains(w.URL, "/forbidden"):
				return errors.New("tenant " + c.Tenant + " may not send there")
			case w.Name == "reserved":
				return &webhook.ValidationError{Problems: []webhook.FieldProblem{{Field: "name", Message: "name is reserved"}}}
			}
			return nil
		}
	})
	base := map[string]any{"name": "n", "table": "employee", "ops": []string{"INSERT"}, "url": e.rcv.URL + "/forbidden"}
	a := e.do(acme, "POST", "/webhooks", base)
	assert.Equal(t, http.StatusForbidden, a.Status)
	assert.Contains(t, string(a.Body), "tenant acme may not send there")

	base["url"], base["name"] = e.rcv.URL, "reserved"
	a = e.do(acme, "POST", "/webhooks", base)
	assert.Equal(t, http.StatusUnprocessableEntity, a.Status)
	var eb errBody
	a.Decode(t, &eb)
	require.Len(t, eb.Error.Fields, 1)
	assert.Equal(t, "name", eb.Error.Fields[0].Field)

	base["name"] = "panic"
	a = e.do(acme, "POST", "/webhooks", base)
	assert.Equal(t, http.StatusInternalServerError, a.Status, "a panicking hook fails its request, not the process")
	assert.Equal(t, "internal", a.ErrorCode(t))
	assert.NotContains(t, string(a.Body), "policy bug")

	base["name"] = "fine"
	assert.Equal(t, http.StatusCreated, e.do(acme, "POST", "/webhooks", base).Status, "and the next request works")
}

func TestSecretsNeverLeaveExceptOnce(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	e := setup(t, func(o *admin.Options, _ *webhook.Config) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	h := e.create(acme, map[string]any{
		"url":     e.rcv.URL + "/hook?api_key=q-secret",
		"headers": map[string]string{"X-Api-Key": "h-secret"},
		"auth":    map[string]any{"type": "bearer", "token": "t-secret"},
	})
	e.publish("acme", "E1", 3)
	e.k.Settle(t, 10)
	ds := e.deliveries(acme, "/deliveries")
	require.Len(t, ds, 1)
	secrets := []string{h.Secret, "q-secret", "h-secret", "t-secret"}
	var bodies []string
	for _, path := range []string{"/webhooks", "/webhooks/" + h.ID, "/webhooks/" + h.ID + "/versions", "/audit",
		"/deliveries", "/deliveries/" + ds[0].ID, "/deliveries/" + ds[0].ID + "/attempts"} {
		a := e.do(acme, "GET", path, nil)
		require.Equal(t, http.StatusOK, a.Status, path)
		bodies = append(bodies, string(a.Body))
	}
	// An invalid update echoes nothing either.
	a := e.do(acme, "PATCH", "/webhooks/"+h.ID, map[string]any{"url": "https://other.example/", "headers": map[string]string{"X-Api-Key": "xxxxx"}})
	assert.Equal(t, http.StatusUnprocessableEntity, a.Status, "a kept credential cannot move to another origin")
	bodies = append(bodies, string(a.Body), logs.String())
	for _, b := range bodies {
		for _, s := range secrets {
			assert.NotContains(t, b, s)
		}
	}
}
