package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/admin"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// FuzzListQuery sends arbitrary query strings (filters, times, limits,
// cursors) to the list routes as a tenant: every answer is JSON, never a
// 500, and nothing of another tenant's shows: not its webhook, not its
// deliveries, not its audit records.
func FuzzListQuery(f *testing.F) {
	// The memory store keeps an audit trail, so /audit and the versions
	// answer; only reads are fuzzed, so it does not grow.
	k := webhooktest.NewDispatcher(f, webhook.Config{})
	h, err := admin.New(k.Dispatcher, admin.Options{Resolve: resolve})
	if err != nil {
		f.Fatal(err)
	}
	ctx := f.Context()
	made := map[string]string{}
	for _, c := range []struct{ token, name, key string }{{acme, "acme-payroll", "a-secret-0417"}, {globex, "globex-payroll", "g-secret-0923"}} {
		rec := serve(h, c.token, "POST", "/webhooks", `{"name":"`+c.name+`","table":"employee","ops":["INSERT","UPDATE"],`+
			`"url":"https://example.com/`+c.name+`","headers":{"X-Api-Key":"`+c.key+`"}}`)
		if rec.Code != http.StatusCreated {
			f.Fatalf("setup: %d %s", rec.Code, rec.Body)
		}
		var w struct{ ID string }
		if err := json.Unmarshal(rec.Body.Bytes(), &w); err != nil {
			f.Fatal(err)
		}
		made[c.name] = w.ID
	}
	for i, tenant := range []string{"acme", "globex", "acme"} {
		if _, err := k.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Insert, Key: "E-" + tenant + string(rune('0'+i)),
			Tenant: tenant, New: map[string]any{"name": "Ada"}}); err != nil {
			f.Fatal(err)
		}
	}
	routes := []string{"/webhooks", "/deliveries", "/audit", "/webhooks/" + made["acme-payroll"] + "/deliveries",
		"/webhooks/" + made["acme-payroll"] + "/versions"}
	f.Add(uint8(0), "limit=1")
	f.Add(uint8(1), "status=pending&limit=2")
	f.Add(uint8(1), "webhook_id="+made["globex-payroll"])
	f.Add(uint8(1), "tenant=globex")
	f.Add(uint8(1), "since=2026-03-02T09:00:00Z&until=2020-01-01T00:00:00Z")
	f.Add(uint8(1), "cursor=eyJrIjoiZGVsaXZlcmllcyIsInMiOi0xLCJoIjoiMCJ9")
	f.Add(uint8(1), "limit=-1&limit=99999999999999999999")
	f.Add(uint8(2), "action=update&actor=bob")
	f.Add(uint8(3), "event_id=%00&key=%ZZ")
	f.Add(uint8(4), "cursor=%25")
	f.Fuzz(func(t *testing.T, route uint8, query string) {
		path := routes[int(route)%len(routes)]
		query = requestQuery(query)
		rec := serve(h, acme, "GET", path+"?"+query, "")
		checkAnswer(t, rec, 200, 400, 422)
		body := rec.Body.String()
		for _, other := range []string{made["globex-payroll"], "globex-payroll", "g-secret-0923", "a-secret-0417", "E-globex"} {
			if strings.Contains(body, other) && !strings.Contains(query, other) {
				t.Fatalf("%s?%s shows %q to another tenant, or a secret: %s", path, query, other, body)
			}
		}
		if rec.Code == http.StatusOK && strings.Contains(body, `"tenant":"globex"`) {
			t.Fatalf("%s?%s lists a record of tenant globex to acme: %s", path, query, body)
		}
	})
}

// requestQuery keeps what may stand in a request line's query as it is
// and percent-encodes the rest (spaces, controls, '#', non-ASCII bytes),
// so the handler gets the fuzzer's query, not a client's refusal.
func requestQuery(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c > ' ' && c < 0x7f && c != '#' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
