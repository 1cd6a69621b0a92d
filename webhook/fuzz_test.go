package webhook_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// FuzzPublish feeds arbitrary changes to Publish: it never panics, and it
// either refuses the change with ErrInvalidChange or stores it so that the
// receiver gets a well-formed envelope.
func FuzzPublish(f *testing.F) {
	f.Add("employee", "UPDATE", "E-1", `{"department":"Sales"}`, `{"department":"Ops"}`, "acme")
	f.Add("attendance", "INSERT", "A-1", `{"status":"Present","date":"2026-03-02"}`, ``, "")
	f.Add("employee", "DELETE", "E-2", ``, `{"id":"E-2"}`, "")
	f.Add("", "MERGE", "", `null`, `[]`, "\x00")
	f.Add("t", "UPDATE", "k", `{"a":{"b":[1,2,{"c":null}]}}`, `{"a":1e309}`, "")
	f.Fuzz(func(t *testing.T, table, op, key, newJSON, oldJSON, tenant string) {
		k := webhooktest.NewDispatcher(t, webhook.Config{MaxPayloadBytes: 4096})
		rcv := webhooktest.NewReceiver(t, k.Clock)
		w, err := k.Register(t.Context(), webhook.Webhook{Name: "fuzz", Table: "t",
			Ops: []webhook.Op{webhook.Insert, webhook.Update, webhook.Delete}, URL: rcv.URL})
		if err != nil {
			t.Fatal(err)
		}
		rcv.AddSecret(w.Secret)
		var n, o map[string]any
		_ = json.Unmarshal([]byte(newJSON), &n)
		_ = json.Unmarshal([]byte(oldJSON), &o)
		c := webhook.Change{Table: table, Op: webhook.Op(op), Key: key, New: n, Old: o, Tenant: tenant}
		id, err := k.Publish(t.Context(), c)
		if err != nil {
			if !errors.Is(err, webhook.ErrInvalidChange) {
				t.Fatalf("Publish failed without ErrInvalidChange: %v", err)
			}
			return
		}
		if id == "" {
			t.Fatal("accepted change without an id")
		}
		k.Drain(t)
		for _, r := range rcv.Requests() {
			if r.VerifyErr != nil {
				t.Fatalf("signature does not verify: %v", r.VerifyErr)
			}
			var env struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(r.Body, &env); err != nil || env.ID != id {
				t.Fatalf("malformed envelope %q: %v", r.Body, err)
			}
		}
	})
}
