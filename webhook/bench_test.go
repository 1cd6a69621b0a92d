package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
)

// okTransport answers every request 200 without a network, so benchmarks
// measure herald's own cost.
type okTransport struct{}

func (okTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

func benchDispatcher(b *testing.B) *webhook.Dispatcher {
	b.Helper()
	d, err := webhook.New(webhook.Config{Store: memory.New(), HTTPClient: &http.Client{Transport: okTransport{}}, Workers: 8})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// employee returns a record of n fields, about 1 KB encoded for n = 30.
func employee(n int, dept string) map[string]any {
	m := map[string]any{"department": dept, "status": "Active", "grade": 6}
	for i := len(m); i < n; i++ {
		m[fmt.Sprintf("field_%02d", i)] = strings.Repeat("x", 24)
	}
	return m
}

// registerOn registers total webhooks on table, of which matching pass the
// benchmark's change and the rest are filtered by their condition.
func registerOn(b *testing.B, d *webhook.Dispatcher, table string, total, matching int) {
	b.Helper()
	for i := range total {
		w := webhook.Webhook{Name: fmt.Sprintf("w%d", i), Table: table, Ops: []webhook.Op{webhook.Update},
			URL: "https://receiver.example.com/hook"}
		if i >= matching {
			w.When = condition.Rule{Expr: `new.department == "Finance"`}
		} else {
			w.When = condition.Rule{Expr: `new.department == "Sales" && (old.status != new.status || new.grade > 5)`}
		}
		if _, err := d.Register(context.Background(), w); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublish measures Publish (validation, encoding, matching,
// conditions, enqueue) on the memory store.
func BenchmarkPublish(b *testing.B) {
	for _, tc := range []struct{ total, matching int }{{1, 1}, {100, 10}} {
		b.Run(fmt.Sprintf("webhooks=%d/matching=%d", tc.total, tc.matching), func(b *testing.B) {
			d := benchDispatcher(b)
			registerOn(b, d, "employee", tc.total, tc.matching)
			old, new := employee(30, "Ops"), employee(30, "Sales")
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := webhook.CPUTime()
			for i := 0; b.Loop(); i++ {
				if _, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Update, Key: fmt.Sprint(i % 1000), Old: old, New: new}); err != nil {
					b.Fatal(err)
				}
			}
			webhook.ReportCPU(b, cpu)
		})
	}
}

// BenchmarkPublishManyWebhooks compares Publish with 10 and 10,000
// registered webhooks spread over 100 tables: the cost follows the
// webhooks on the changed table, not all of them.
func BenchmarkPublishManyWebhooks(b *testing.B) {
	for _, total := range []int{10, 10000} {
		b.Run(fmt.Sprintf("registered=%d", total), func(b *testing.B) {
			d := benchDispatcher(b)
			// The changed table always holds 10 webhooks; the rest spread
			// over 99 other tables.
			registerOn(b, d, "table7", 10, 0)
			for i := range total - 10 {
				registerOn(b, d, fmt.Sprintf("other%d", i%99), 1, 0)
			}
			old, new := employee(30, "Ops"), employee(30, "Sales")
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := webhook.CPUTime()
			for i := 0; b.Loop(); i++ {
				if _, err := d.Publish(ctx, webhook.Change{Table: "table7", Op: webhook.Update, Key: fmt.Sprint(i % 1000), Old: old, New: new}); err != nil {
					b.Fatal(err)
				}
			}
			webhook.ReportCPU(b, cpu)
		})
	}
}

// BenchmarkDeliver measures a whole in-process delivery: publish, claim,
// envelope, signature, request through a no-op transport, ack.
func BenchmarkDeliver(b *testing.B) {
	d := benchDispatcher(b)
	registerOn(b, d, "employee", 1, 1)
	old, new := employee(30, "Ops"), employee(30, "Sales")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	const batch = 64
	cpu := webhook.CPUTime()
	for i := 0; b.Loop(); i++ {
		if _, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Update, Key: fmt.Sprint(i), Old: old, New: new}); err != nil {
			b.Fatal(err)
		}
		if i%batch == batch-1 {
			if _, err := d.ProcessDue(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		b.Fatal(err)
	}
	webhook.ReportCPU(b, cpu)
}
