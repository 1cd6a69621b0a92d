package webhook_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func TestStatsCountsByWebhookAndState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		store store.Store
	}{
		{"Counter", memory.New()},
		{"Paging", plainStore{memory.New()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, rcv := setup(t, webhook.Config{Store: tc.store, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
			payroll := register(t, k, rcv, webhook.Webhook{Name: "payroll"})
			access := register(t, k, rcv, webhook.Webhook{Name: "access", Ops: []webhook.Op{webhook.Delete}})
			idle := register(t, k, rcv, webhook.Webhook{Name: "idle", Table: "leave"})
			ctx := t.Context()

			st, err := k.Stats(ctx)
			require.NoError(t, err)
			assert.Len(t, st.Webhooks, 3, "every webhook has an entry")
			assert.Zero(t, st.Total.Pending())
			assert.Contains(t, st.Webhooks[idle.ID].Deliveries, webhook.Dead, "known states are listed at zero")

			// payroll: 3 delivered, 1 dead; then 2 updates pending.
			rcv.Script(webhooktest.Answer{}, webhooktest.Answer{Status: http.StatusBadRequest})
			for i := range 4 {
				_, err := k.Publish(ctx, update(fmt.Sprintf("E%d", i), nil, map[string]any{"i": i}))
				require.NoError(t, err)
			}
			k.Drain(t)
			k.Clock.Advance(5 * time.Minute)
			for i := range 2 {
				_, err := k.Publish(ctx, update(fmt.Sprintf("P%d", i), nil, map[string]any{"i": i}))
				require.NoError(t, err)
				k.Clock.Advance(time.Minute)
			}
			// access and payroll: one pending delete.
			_, err = k.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Delete, Key: "E9", Old: map[string]any{"a": 1}})
			require.NoError(t, err)

			st, err = k.Stats(ctx)
			require.NoError(t, err)
			assert.True(t, st.Time.Equal(k.Clock.Now()))
			p := st.Webhooks[payroll.ID]
			assert.Equal(t, int64(3), p.Deliveries[webhook.Delivered])
			assert.Equal(t, int64(1), p.Deliveries[webhook.Dead])
			assert.Equal(t, int64(3), p.Pending(), "two updates and the delete")
			assert.True(t, p.OldestPending.Equal(webhooktest.Epoch.Add(5*time.Minute)))
			assert.Equal(t, 2*time.Minute, p.OldestPendingAge)
			a := st.Webhooks[access.ID]
			assert.Equal(t, int64(1), a.Pending())
			assert.Equal(t, time.Duration(0), a.OldestPendingAge)
			assert.Equal(t, int64(4), st.Total.Pending())
			assert.Equal(t, int64(3), st.Total.Deliveries[webhook.Delivered])
			assert.Equal(t, 2*time.Minute, st.Total.OldestPendingAge)
			assert.Zero(t, st.Total.InFlight)

			require.NoError(t, k.Delete(ctx, access.ID))
			st, err = k.Stats(ctx)
			require.NoError(t, err)
			assert.Equal(t, int64(1), st.Webhooks[access.ID].Deliveries[webhook.Canceled],
				"a deleted webhook with deliveries keeps an entry")
		})
	}
}

func TestStatsCountsInFlight(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Stall: true} })
	for i := range 2 {
		_, err := k.Publish(t.Context(), update(fmt.Sprintf("E%d", i), nil, map[string]any{"i": i}))
		require.NoError(t, err)
	}
	require.NoError(t, k.Start(t.Context()))
	waitInFlight(t, rcv, 2)
	st, err := k.Stats(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(2), st.Total.InFlight)
	assert.Equal(t, int64(2), st.Webhooks[w.ID].InFlight)
	assert.Equal(t, int64(2), st.Total.Pending(), "attempts in flight are among the pending")
	rcv.Release()
	require.NoError(t, k.Shutdown(t.Context()))
	st, err = k.Stats(t.Context())
	require.NoError(t, err)
	assert.Zero(t, st.Total.InFlight)
	assert.Zero(t, st.Webhooks[w.ID].InFlight)
	assert.Equal(t, int64(2), st.Total.Deliveries[webhook.Delivered])
}

func TestStatsUnderLoad(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Workers: 8})
	hooks := []webhook.Webhook{
		register(t, k, rcv, webhook.Webhook{Name: "payroll"}),
		register(t, k, rcv, webhook.Webhook{Name: "access"}),
	}
	var seenMu sync.Mutex
	seen := map[string]bool{}
	rcv.Respond(func(r webhooktest.Request) webhooktest.Answer {
		// The first attempt of about one message in four fails, so retries
		// are part of the load.
		seenMu.Lock()
		defer seenMu.Unlock()
		id := r.ID()
		if !seen[id] && strings.ContainsAny(id[len(id)-1:], "0123") {
			seen[id] = true
			return webhooktest.Answer{Status: http.StatusServiceUnavailable}
		}
		return webhooktest.Answer{}
	})
	require.NoError(t, k.Start(t.Context()))
	const publishers, each = 4, 50
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var snapshots []webhook.Stats
	var snapErr error
	snapDone := make(chan struct{})
	go func() {
		defer close(snapDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			st, err := k.Stats(t.Context())
			if err != nil {
				snapErr = err
				return
			}
			snapshots = append(snapshots, st)
		}
	}()
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := k.Publish(t.Context(), update(fmt.Sprintf("E%d-%d", p, i%7), nil, map[string]any{"p": p, "i": i}))
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	const total = publishers * each * 2
	// Retries are due a second later on the fake clock; move it until
	// everything is delivered.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := k.Stats(t.Context())
		require.NoError(t, err)
		if st.Total.Deliveries[webhook.Delivered] == total {
			break
		}
		require.True(t, time.Now().Before(deadline), "delivered %d of %d", st.Total.Deliveries[webhook.Delivered], total)
		k.Clock.Advance(time.Second)
		time.Sleep(2 * time.Millisecond) // let due retries be claimed; bounded by the deadline
	}
	close(stop)
	<-snapDone
	require.NoError(t, k.Shutdown(t.Context()))
	require.NoError(t, snapErr)
	require.NotEmpty(t, snapshots)

	for _, st := range snapshots {
		var sum int64
		for _, n := range st.Total.Deliveries {
			sum += n
		}
		assert.LessOrEqual(t, sum, int64(total))
		var perWebhook int64
		for _, w := range st.Webhooks {
			for _, n := range w.Deliveries {
				perWebhook += n
			}
		}
		assert.Equal(t, sum, perWebhook, "webhooks add up to the total")
		assert.LessOrEqual(t, st.Total.InFlight, int64(8), "never more in flight than workers")
	}
	st, err := k.Stats(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(total), st.Total.Deliveries[webhook.Delivered])
	assert.Zero(t, st.Total.Pending())
	assert.Zero(t, st.Total.InFlight)
	assert.True(t, st.Total.OldestPending.IsZero())
	for _, w := range hooks {
		assert.Equal(t, int64(total/2), st.Webhooks[w.ID].Deliveries[webhook.Delivered])
	}
	assert.GreaterOrEqual(t, len(rcv.Requests()), total)
}

// BenchmarkStats measures Stats over 10,000 deliveries of 10 webhooks,
// counted by the store and by paging through the log.
func BenchmarkStats(b *testing.B) {
	for _, mode := range []string{"Counter", "Paging"} {
		b.Run(mode, func(b *testing.B) {
			mem := memory.New()
			var st store.Store = mem
			if mode == "Paging" {
				st = plainStore{mem}
			}
			k := webhooktest.NewDispatcher(b, webhook.Config{Store: st})
			for i := range 10 {
				_, err := k.Register(b.Context(), webhook.Webhook{Name: fmt.Sprintf("w%d", i), Table: fmt.Sprintf("t%d", i),
					Ops: []webhook.Op{webhook.Insert}, URL: "http://127.0.0.1:9/hook"})
				require.NoError(b, err)
			}
			for i := range 10000 {
				_, err := k.Publish(b.Context(), webhook.Change{Table: fmt.Sprintf("t%d", i%10), Op: webhook.Insert,
					Key: fmt.Sprint(i), New: map[string]any{"i": i}})
				require.NoError(b, err)
			}
			for b.Loop() {
				s, err := k.Stats(b.Context())
				require.NoError(b, err)
				require.Equal(b, int64(10000), s.Total.Pending())
			}
		})
	}
}
