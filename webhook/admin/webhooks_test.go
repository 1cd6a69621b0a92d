package admin_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/webhook"
)

func TestWebhookLifecycle(t *testing.T) {
	t.Parallel()
	e := setup(t)

	// Create: the answer shows the secret once; the tenant is the caller's.
	created := e.create(acme, map[string]any{"description": "to the payroll system",
		"headers": map[string]string{"X-Api-Key": "k-123"}, "when": map[string]any{"expr": "new.grade > 2"}})
	assert.True(t, strings.HasPrefix(created.Secret, "whsec_"), "the create answer shows the secret: %q", created.Secret)
	assert.Equal(t, "acme", created.Tenant)
	assert.Equal(t, "POST", created.Method)
	assert.Equal(t, webhook.Masked, created.Headers["X-Api-Key"], "header values are never shown")
	assert.Positive(t, created.Version)

	// Read: masked from now on.
	a := e.do(acme, "GET", "/webhooks/"+created.ID, nil)
	require.Equal(t, http.StatusOK, a.Status)
	var got hookJSON
	a.Decode(t, &got)
	assert.Equal(t, webhook.Masked, got.Secret, "the secret is shown once")
	assert.Equal(t, created.Version, got.Version)
	doc := a.JSON(t) // what an admin UI edits and sends back
	assert.NotContains(t, string(a.Body), created.Secret)
	assert.NotContains(t, string(a.Body), "k-123")

	// List.
	p := list[hookJSON](t, e.do(acme, "GET", "/webhooks", nil))
	require.Len(t, p.Data, 1)
	assert.Equal(t, created.ID, p.Data[0].ID)
	assert.False(t, p.HasMore)

	// Replace: the masked values read back keep what is stored.
	doc["description"], doc["ops"] = "monthly", []string{"UPDATE"}
	a = e.do(acme, "PUT", "/webhooks/"+created.ID, doc)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var put hookJSON
	a.Decode(t, &put)
	assert.Equal(t, "monthly", put.Description)
	assert.Greater(t, put.Version, got.Version)
	stored, err := e.k.Webhook(t.Context(), created.ID)
	require.NoError(t, err)
	assert.Equal(t, "k-123", stored.Headers["X-Api-Key"], "a masked header value kept the stored one")
	assert.Equal(t, created.Secret, stored.Secret)

	// A stale version is refused: someone else changed it meanwhile.
	a = e.do(acme2, "PUT", "/webhooks/"+created.ID, doc)
	assert.Equal(t, http.StatusConflict, a.Status, "%s", a.Body)
	assert.Equal(t, "version_conflict", a.ErrorCode(t))

	// Patch: a merge patch over what GET shows.
	a = e.do(acme, "PATCH", "/webhooks/"+created.ID, map[string]any{"name": "Payroll (EU)",
		"headers": map[string]any{"X-Region": "eu"}, "description": nil})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var patched hookJSON
	a.Decode(t, &patched)
	assert.Equal(t, "Payroll (EU)", patched.Name)
	assert.Empty(t, patched.Description, "null removes a field")
	assert.Equal(t, []string{"UPDATE"}, patched.Ops, "what the patch leaves out stays")
	stored, err = e.k.Webhook(t.Context(), created.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"X-Api-Key": "k-123", "X-Region": "eu"}, stored.Headers)
	assert.Equal(t, "new.grade > 2", stored.When.Expr)

	// The published toggle.
	a = e.do(acme, "POST", "/webhooks/"+created.ID+"/disable", nil)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.True(t, a.JSON(t)["disabled"].(bool))
	p = list[hookJSON](t, e.do(acme, "GET", "/webhooks?disabled=true", nil))
	assert.Len(t, p.Data, 1)
	a = e.do(acme, "POST", "/webhooks/"+created.ID+"/enable", "")
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.NotContains(t, a.JSON(t), "disabled")
	assert.Empty(t, list[hookJSON](t, e.do(acme, "GET", "/webhooks?disabled=true", nil)).Data)

	// Delete.
	a = e.do(acme, "DELETE", "/webhooks/"+created.ID, nil)
	require.Equal(t, http.StatusNoContent, a.Status, "%s", a.Body)
	assert.Empty(t, a.Body)
	assert.Equal(t, http.StatusNotFound, e.do(acme, "GET", "/webhooks/"+created.ID, nil).Status)
	assert.Equal(t, http.StatusNotFound, e.do(acme, "DELETE", "/webhooks/"+created.ID, nil).Status)
}

func TestCreateChoosesTheSignatureScheme(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.do(acme, "POST", "/webhooks", map[string]any{"name": "n", "table": "employee", "ops": []string{"INSERT"},
		"url": e.rcv.URL, "signature_scheme": "ed25519"})
	require.Equal(t, http.StatusCreated, a.Status, "%s", a.Body)
	var h hookJSON
	a.Decode(t, &h)
	assert.Equal(t, webhook.Masked, h.Secret, "an Ed25519 private key is never shown")
	assert.True(t, strings.HasPrefix(h.PublicKey, "whpk_"), "the receiver gets the public key")
}

func TestValidationErrorsNameTheField(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a := e.do(acme, "POST", "/webhooks", map[string]any{"name": "", "table": "employee", "ops": []string{"UPSERT"},
		"url": "ftp://example.com/x", "headers": map[string]string{"X-Token": "s3cr3t\r\nInjected: 1"},
		"when": map[string]any{"expr": "new.grade >"}})
	require.Equal(t, http.StatusUnprocessableEntity, a.Status, "%s", a.Body)
	var eb errBody
	a.Decode(t, &eb)
	assert.Equal(t, "invalid_webhook", eb.Error.Code)
	fields := map[string]int{}
	for i, f := range eb.Error.Fields {
		fields[f.Field] = i
		assert.NotEmpty(t, f.Message)
	}
	for _, f := range []string{"name", "ops", "url", "headers", "when.expr"} {
		assert.Contains(t, fields, f)
	}
	expr := eb.Error.Fields[fields["when.expr"]]
	assert.Equal(t, 1, expr.Line, "an expression error has its position")
	assert.Positive(t, expr.Column)
	assert.NotContains(t, string(a.Body), "s3cr3t", "a value is never echoed")

	for _, c := range []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"unknown field", `{"name":"n","tabel":"employee"}`, 400, "invalid_json", ""},
		{"wrong type", `{"name":"n","max_batch":"ten"}`, 400, "invalid_json", "max_batch"},
		{"nested wrong type", `{"name":"n","auth":{"type":"bearer","token":7}}`, 400, "invalid_json", "auth.token"},
		{"malformed", `{"name":`, 400, "invalid_json", ""},
		{"trailing data", `{"name":"n"} {"name":"m"}`, 400, "invalid_json", ""},
		{"not an object", `["n"]`, 400, "invalid_json", ""},
		{"empty", ``, 400, "invalid_json", ""},
		{"bad tree", `{"name":"n","when":{"tree":{"all":[{"field":"grade","op":"greater","value":1}]}}}`, 422, "invalid_webhook", "when.tree.all[0].op"},
		{"bad mapping", `{"name":"n","body":{"format":"json","fields":{"g":"new.grade +"}}}`, 422, "invalid_webhook", "body.fields.g"},
		{"id chosen by a tenant", `{"id":"payroll","name":"n"}`, 422, "invalid_webhook", "id"},
		{"another tenant", `{"tenant":"globex","name":"n"}`, 422, "invalid_webhook", "tenant"},
		{"an application client", `{"client":"mtls","name":"n"}`, 422, "invalid_webhook", "client"},
	} {
		a := e.do(acme, "POST", "/webhooks", c.body)
		assert.Equal(t, c.status, a.Status, "%s: %s", c.name, a.Body)
		var eb errBody
		a.Decode(t, &eb)
		assert.Equal(t, c.code, eb.Error.Code, c.name)
		if c.field != "" {
			var fields []string
			for _, f := range eb.Error.Fields {
				fields = append(fields, f.Field)
			}
			assert.Contains(t, fields, c.field, c.name)
		}
	}
	a = e.do(acme, "POST", "/webhooks", `{"name":"n","tabel":"employee"}`)
	assert.Contains(t, a.JSON(t)["error"].(map[string]any)["message"], `unknown field "tabel"`)

	// Wrong media type and an oversized body.
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+"/webhooks", strings.NewReader(`{"name":"n"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+acme)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	a = e.do(acme, "POST", "/webhooks", big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, a.Status)
	assert.Equal(t, "body_too_large", a.ErrorCode(t))

	assert.Empty(t, list[hookJSON](t, e.do(acme, "GET", "/webhooks", nil)).Data, "nothing was created")
}

func TestUpdateKeepsTenantAndClient(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(ops, map[string]any{"tenant": "acme"})
	body := map[string]any{"name": "renamed", "table": "employee", "ops": []string{"UPDATE"}, "url": e.rcv.URL}

	a := e.do(ops, "PUT", "/webhooks/"+h.ID, body)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.Equal(t, "acme", a.JSON(t)["tenant"], "left out, the tenant stays: a webhook never turns global by omission")

	body["tenant"] = "globex"
	a = e.do(acme, "PUT", "/webhooks/"+h.ID, body)
	assert.Equal(t, http.StatusUnprocessableEntity, a.Status, "a tenant cannot give its webhook away")
	a = e.do(ops, "PUT", "/webhooks/"+h.ID, body)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	assert.Equal(t, "globex", a.JSON(t)["tenant"], "an operator moves a webhook by naming the tenant")
	assert.Equal(t, http.StatusNotFound, e.do(acme, "GET", "/webhooks/"+h.ID, nil).Status)

	body["id"] = "something-else"
	a = e.do(ops, "PUT", "/webhooks/"+h.ID, body)
	assert.Equal(t, http.StatusUnprocessableEntity, a.Status)
}

func TestListWebhooksPages(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var want []string
	for i := range 5 {
		want = append(want, e.create(acme, map[string]any{"name": fmt.Sprintf("hook %d", i)}).ID)
		e.create(globex, nil)
	}
	e.create(acme, map[string]any{"table": "attendance"})
	var got []string
	path := "/webhooks?table=employee&limit=2"
	for range 10 {
		p := list[hookJSON](t, e.do(acme, "GET", path, nil))
		for _, h := range p.Data {
			assert.Equal(t, "acme", h.Tenant)
			got = append(got, h.ID)
		}
		if !p.HasMore {
			break
		}
		assert.Len(t, p.Data, 2)
		path = "/webhooks?table=employee&limit=2&cursor=" + p.NextCursor
	}
	assert.Equal(t, want, got, "every page in id order, none twice")

	p := list[hookJSON](t, e.do(acme, "GET", "/webhooks?limit=2", nil))
	a := e.do(acme, "GET", "/webhooks?table=employee&limit=2&cursor="+p.NextCursor, nil)
	assert.Equal(t, http.StatusBadRequest, a.Status, "a cursor is bound to its query")
	a = e.do(globex, "GET", "/webhooks?limit=2&cursor="+p.NextCursor, nil)
	assert.Equal(t, http.StatusBadRequest, a.Status, "and to its caller")
	assert.Len(t, list[hookJSON](t, e.do(ops, "GET", "/webhooks?tenant=globex", nil)).Data, 5)
	assert.Len(t, list[hookJSON](t, e.do(ops, "GET", "/webhooks", nil)).Data, 11)
	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x", "?disabled=maybe", "?tabel=employee", "?table=a&table=b"} {
		a := e.do(acme, "GET", "/webhooks"+bad, nil)
		assert.Equal(t, http.StatusBadRequest, a.Status, bad)
		assert.Equal(t, "invalid_query", a.ErrorCode(t), bad)
	}
}

func TestRotateSecret(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(acme, nil)
	a := e.do(acme, "POST", "/webhooks/"+h.ID+"/rotate-secret", map[string]any{"grace_seconds": 3600})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var r hookJSON
	a.Decode(t, &r)
	require.True(t, strings.HasPrefix(r.Secret, "whsec_"), "the rotate answer shows the new secret")
	assert.NotEqual(t, h.Secret, r.Secret)
	require.Len(t, r.PreviousSecrets, 1)
	assert.Equal(t, webhook.Masked, r.PreviousSecrets[0]["value"], "the old secret is not shown again")
	assert.NotContains(t, string(a.Body), h.Secret)

	// Both secrets sign during the grace: a receiver that switched
	// verifies, and so does one that did not.
	e.rcv.AddSecret(r.Secret)
	e.publish("acme", "E1", 3)
	e.k.Settle(t, 3)
	reqs := e.rcv.Requests()
	require.Len(t, reqs, 1)
	require.NoError(t, reqs[0].VerifyErr)
	assert.Len(t, strings.Fields(reqs[0].Header.Get("Webhook-Signature")), 2)

	a = e.do(acme, "POST", "/webhooks/"+h.ID+"/rotate-secret", map[string]any{"revoke_previous": true})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	var revoked hookJSON
	a.Decode(t, &revoked)
	assert.Empty(t, revoked.PreviousSecrets, "revoking stops every earlier secret at once")

	for _, body := range []any{map[string]any{"grace_seconds": -5}, map[string]any{"grace_seconds": int64(400 * 24 * 3600)},
		map[string]any{"secret": "whsec_not-base64!"}, map[string]any{"graceSeconds": 5}} {
		a = e.do(acme, "POST", "/webhooks/"+h.ID+"/rotate-secret", body)
		assert.Contains(t, []int{400, 422}, a.Status, "%v: %s", body, a.Body)
		assert.NotContains(t, string(a.Body), "not-base64!")
	}
	e.k.Clock.Advance(2 * time.Hour)
}
