package memory_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
)

var benchT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// payload1K is a stored payload of 1 KiB.
var payload1K = []byte(`{"table":"employee","op":"UPDATE","key":"E-1","new":{"x":"` + strings.Repeat("x", 1024-52) + `"}}`)

// pendingOne enqueues one event with one delivery, with ids of the size
// the dispatcher makes (UUIDs) and its own record key.
func pendingOne(b *testing.B, s *memory.Store, i int) {
	ctx := context.Background()
	id := uuid.NewString()
	e := store.Event{ID: id, Tenant: "acme", Table: "employee", Op: "UPDATE", Key: "E-" + strconv.Itoa(i), Time: benchT0,
		Payload: slices.Clone(payload1K)} // each event has its own, as the dispatcher makes them
	d := store.Delivery{ID: uuid.NewString(), WebhookID: webhookIDs[i%len(webhookIDs)], NextAttempt: benchT0, CreatedAt: benchT0}
	if _, err := s.Enqueue(ctx, e, []store.Delivery{d}); err != nil {
		b.Fatal(err)
	}
}

var webhookIDs = func() []string {
	ids := make([]string, 10)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return ids
}()

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkClaimBacklog claims and acknowledges one message at a time
// with 1,000 and 1,000,000 deliveries pending (each op enqueues one more,
// so the backlog stays put): a claim costs the same however long the
// queue. claim-ns/op is the Claim call alone; ns/op also holds the
// acknowledgement and the enqueue, whose maps of a million entries miss
// the CPU's caches more often than maps of a thousand. It also reports
// the heap the backlog takes, per pending delivery of a 1 KiB payload.
func BenchmarkClaimBacklog(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			if testing.Short() && n > 1000 {
				b.Skip("a million pending deliveries in -short mode")
			}
			before := heapInUse()
			s := memory.New()
			for _, id := range webhookIDs {
				if _, err := s.SaveWebhook(context.Background(), store.Webhook{ID: id, Definition: []byte(`{}`)}, benchT0); err != nil {
					b.Fatal(err)
				}
			}
			for i := range n {
				pendingOne(b, s, i)
			}
			held := heapInUse() - before
			ctx := context.Background()
			now := benchT0.Add(time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			i := 0
			var claiming time.Duration
			for b.Loop() {
				t := time.Now()
				ms, err := s.Claim(ctx, store.Claim{Now: now, Lease: time.Minute, Limit: 1})
				claiming += time.Since(t)
				if err != nil || len(ms) != 1 {
					b.Fatalf("claim: %v, %d messages", err, len(ms))
				}
				if err := s.Ack(ctx, []store.Result{{MessageID: ms[0].ID, Lease: ms[0].Lease, Outcome: store.OutcomeDelivered, Now: now}}); err != nil {
					b.Fatal(err)
				}
				pendingOne(b, s, n+i)
				i++
			}
			// After the loop: ResetTimer drops metrics reported before it.
			reportCPU(b, cpu)
			b.ReportMetric(float64(claiming.Nanoseconds())/float64(b.N), "claim-ns/op")
			b.ReportMetric(float64(held)/float64(n), "heap-B/pending")
			b.ReportMetric(float64(held)/(1<<20), "heap-MiB")
			runtime.KeepAlive(s)
		})
	}
}
