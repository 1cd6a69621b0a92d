package webhook_test

import (
	"fmt"
	"testing"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// BenchmarkUpdateAudit measures what the audit trail adds to an update:
// the changed fields, the masked definition and one append.
func BenchmarkUpdateAudit(b *testing.B) {
	for _, c := range []struct {
		name string
		s    func() store.Store
	}{
		{"trail", func() store.Store { return memory.New() }},
		{"no-trail", func() store.Store { return bareStore{memory.New()} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			k := webhooktest.NewDispatcher(b, webhook.Config{Store: c.s()})
			ctx := webhook.WithActor(b.Context(), "alice")
			w, err := k.Register(ctx, webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
				URL: "https://payroll.example.com/hook", Headers: map[string]string{"X-Api-Key": "k"}})
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				i++
				w.Description = fmt.Sprint(i)
				if w, err = k.Update(ctx, w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
