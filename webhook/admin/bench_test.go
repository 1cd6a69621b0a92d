package admin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/admin"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// BenchmarkListDeliveries measures a page of 50 deliveries for an
// operator, who sees every row, and for a tenant, half of whose rows
// belong to the operator's global webhook and are skipped.
func BenchmarkListDeliveries(b *testing.B) {
	k := webhooktest.NewDispatcher(b, webhook.Config{})
	h, err := admin.New(k.Dispatcher, admin.Options{Resolve: resolve})
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range []webhook.Webhook{{Name: "tenant's", Tenant: "acme"}, {Name: "operator's"}} {
		w.Table, w.Ops, w.URL = "employee", []webhook.Op{webhook.Update}, "https://example.com/hook"
		if _, err := k.Register(b.Context(), w); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 2000 {
		_, err := k.Publish(b.Context(), webhook.Change{Tenant: "acme", Table: "employee", Op: webhook.Update,
			Key: "E" + string(rune('A'+i%26)), Old: map[string]any{"n": i}, New: map[string]any{"n": i + 1}})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct{ name, token string }{{"operator", ops}, {"tenant", acme}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", "/deliveries?limit=50", nil)
				req.Header.Set("Authorization", "Bearer "+c.token)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Body)
				}
			}
		})
	}
}
