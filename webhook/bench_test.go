package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// BenchmarkStarted measures deliveries through the worker pool that Start
// runs, with c publishers each publishing a change and waiting until the
// observer reports it delivered (as examples/loadtest does against a real
// receiver), Workers = c: Publish, the hand-over to a worker, the attempt
// through a transport that answers at once, the ack and the report.
func BenchmarkStarted(b *testing.B) {
	for _, c := range []int{1, 64} {
		b.Run("c="+strconv.Itoa(c), func(b *testing.B) {
			done := make([]chan struct{}, c)
			for g := range done {
				done[g] = make(chan struct{}, 1)
			}
			d, err := webhook.New(webhook.Config{Store: memory.New(), HTTPClient: &http.Client{Transport: okTransport{}}, Workers: c,
				Observer: webhook.ObserverFunc(func(e webhook.Event) {
					if e.Kind != webhook.EventDelivered {
						return
					}
					gs, _, _ := strings.Cut(e.MessageID, "-")
					if g, err := strconv.Atoi(gs); err == nil && g < len(done) {
						done[g] <- struct{}{}
					}
				})})
			if err != nil {
				b.Fatal(err)
			}
			registerOn(b, d, "employee", 1, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := d.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer func() {
				sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer scancel()
				_ = d.Shutdown(sctx)
			}()
			old, new := employee(30, "Ops"), employee(30, "Sales")
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			cpu := webhook.CPUTime()
			for g := range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					timeout := time.NewTimer(time.Hour)
					defer timeout.Stop()
					for i := 0; left.Add(-1) >= 0; i++ {
						id := strconv.Itoa(g) + "-" + strconv.Itoa(i)
						if _, err := d.Publish(ctx, webhook.Change{ID: id, Table: "employee", Op: webhook.Update, Key: id, Old: old, New: new}); err != nil {
							b.Error(err)
							return
						}
						timeout.Reset(30 * time.Second)
						select {
						case <-done[g]:
						case <-timeout.C:
							b.Errorf("change %s not delivered within 30s", id)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			webhook.ReportCPU(b, cpu)
		})
	}
}
