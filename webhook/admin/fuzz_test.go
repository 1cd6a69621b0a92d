package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/admin"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// fuzzHandler is the admin API of a test dispatcher, served in memory.
// Its store keeps no audit trail, which would grow with every run.
func fuzzHandler(f *testing.F) (http.Handler, *webhooktest.Kit) {
	k := webhooktest.NewDispatcher(f, webhook.Config{Store: bareStore{memory.New()}})
	h, err := admin.New(k.Dispatcher, admin.Options{Resolve: resolve})
	if err != nil {
		f.Fatal(err)
	}
	return h, k
}

func serve(h http.Handler, token, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// checkAnswer holds for every answer: JSON, uncached, and never a 500.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, allowed ...int) {
	t.Helper()
	ok := false
	for _, s := range allowed {
		ok = ok || s == rec.Code
	}
	if !ok {
		t.Fatalf("status %d, want one of %v: %s", rec.Code, allowed, rec.Body)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatal("an answer without Cache-Control: no-store")
	}
	if rec.Code == http.StatusNoContent {
		return
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("the answer is not a JSON object: %v: %q", err, rec.Body)
	}
	if rec.Code >= 400 {
		e, _ := m["error"].(map[string]any)
		if e == nil || e["code"] == "" || e["message"] == "" {
			t.Fatalf("an error answer without code and message: %s", rec.Body)
		}
	}
}

// FuzzCreateWebhook sends arbitrary bodies to POST /webhooks as a tenant:
// every answer is a JSON 201, 400, 413 or 422, never a 500, and whatever
// is created belongs to the caller's tenant.
func FuzzCreateWebhook(f *testing.F) {
	h, k := fuzzHandler(f)
	f.Add(`{"name":"n","table":"employee","ops":["INSERT"],"url":"https://example.com/"}`)
	f.Fuzz(func(t *testing.T, body string) {
		rec := serve(h, acme, "POST", "/webhooks", body)
		checkAnswer(t, rec, 201, 400, 413, 422)
		if rec.Code != http.StatusCreated {
			return
		}
		var got struct {
			ID, Tenant, Secret, SignatureScheme string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		w, err := k.Webhook(t.Context(), got.ID)
		if err != nil {
			t.Fatalf("created but not stored: %v", err)
		}
		if w.Tenant != "acme" || got.Tenant != "acme" {
			t.Fatalf("a tenant created a webhook of tenant %q", w.Tenant)
		}
		if w.Client != "" {
			t.Fatalf("a tenant chose the application's client %q", w.Client)
		}
		if rec := serve(h, globex, "GET", "/webhooks/"+got.ID, ""); rec.Code != http.StatusNotFound {
			t.Fatalf("another tenant reads the new webhook: %d", rec.Code)
		}
		rec = serve(h, acme, "GET", "/webhooks/"+got.ID, "")
		checkAnswer(t, rec, 200)
		if w.Secret != "" && strings.Contains(rec.Body.String(), w.Secret) {
			t.Fatal("a read shows the secret")
		}
		if err := k.Delete(t.Context(), got.ID); err != nil { // keep the store small
			t.Fatal(err)
		}
	})
}

// FuzzPatchWebhook sends arbitrary merge patches to a tenant's webhook:
// every answer is JSON, never a 500, and no patch moves the webhook to
// another tenant or reveals its secret.
func FuzzPatchWebhook(f *testing.F) {
	h, k := fuzzHandler(f)
	rec := serve(h, acme, "POST", "/webhooks", `{"name":"n","table":"employee","ops":["INSERT"],"url":"https://example.com/",`+
		`"headers":{"X-Api-Key":"h-secret"}}`)
	if rec.Code != http.StatusCreated {
		f.Fatalf("setup: %d %s", rec.Code, rec.Body)
	}
	var created struct{ ID, Secret string }
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		f.Fatal(err)
	}
	f.Add(`{"name":"renamed"}`)
	f.Fuzz(func(t *testing.T, patch string) {
		rec := serve(h, acme, "PATCH", "/webhooks/"+created.ID, patch)
		checkAnswer(t, rec, 200, 400, 409, 413, 422)
		for _, s := range []string{created.Secret, "h-secret"} {
			if strings.Contains(rec.Body.String(), s) {
				t.Fatalf("a patch answer shows a secret: %s", rec.Body)
			}
		}
		w, err := k.Webhook(t.Context(), created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if w.Tenant != "acme" || w.Client != "" {
			t.Fatalf("a patch moved the webhook to tenant %q, client %q", w.Tenant, w.Client)
		}
	})
}
