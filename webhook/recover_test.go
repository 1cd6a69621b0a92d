package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
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

// outage publishes n changes for each key while the receiver is down, so
// every delivery dies, and returns the event ids in order of publication.
func outage(t *testing.T, k *webhooktest.Kit, rcv *webhooktest.Receiver, keys []string, n int) []string {
	t.Helper()
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer {
		return webhooktest.Answer{Status: http.StatusServiceUnavailable}
	})
	var ids []string
	for i := range n {
		for _, key := range keys {
			id, err := k.Publish(t.Context(), update(key, nil, map[string]any{"seq": i}))
			require.NoError(t, err)
			ids = append(ids, id)
		}
	}
	k.Settle(t, 100)
	rcv.Respond(nil)
	return ids
}

func TestRecoverDryRunThenInOrder(t *testing.T) {
	t.Parallel()
	// The outages kill every delivery; a breaker would stretch that over
	// hours of probes.
	k, rcv := setup(t, webhook.Config{Workers: 8, Retry: webhook.RetryPolicy{MaxAttempts: 2},
		Breaker: webhook.BreakerPolicy{MinFailures: 1000}})
	w := register(t, k, rcv, webhook.Webhook{})
	other := register(t, k, rcv, webhook.Webhook{Name: "other", Table: "leave"})
	ctx := t.Context()

	// An older failure, before the window to recover.
	early := outage(t, k, rcv, []string{"E0"}, 1)
	k.Clock.Advance(time.Hour)
	since := k.Clock.Now()
	keys := []string{"E1", "E2", "E3"}
	ids := outage(t, k, rcv, keys, 4)
	_, err := k.Publish(ctx, webhook.Change{Table: "leave", Op: webhook.Insert, Key: "L1", New: map[string]any{"a": 1}})
	require.NoError(t, err)
	rcv.Fail(2, http.StatusInternalServerError)
	k.Settle(t, 10)
	before := len(rcv.Requests())

	dead, err := k.Deliveries(ctx, webhook.DeliveryQuery{WebhookID: w.ID, Status: webhook.Dead})
	require.NoError(t, err)
	require.Len(t, dead, len(early)+len(ids))

	dry, err := k.Recover(ctx, webhook.RecoverQuery{WebhookID: w.ID, Since: since, DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, webhook.RecoverResult{Matched: len(ids), InOrder: true}, dry)
	assert.Zero(t, k.Drain(t), "a dry run sends nothing")
	assert.Len(t, rcv.Requests(), before)

	res, err := k.Recover(ctx, webhook.RecoverQuery{WebhookID: w.ID, Since: since})
	require.NoError(t, err)
	assert.Equal(t, webhook.RecoverResult{Matched: len(ids), Replayed: len(ids), InOrder: true}, res)

	// Before any is sent: only the oldest recovered delivery of each key
	// can be handed out.
	ms, err := k.Store.Claim(ctx, store.Claim{Now: k.Clock.Now(), Lease: time.Minute, Limit: 100})
	require.NoError(t, err)
	heads := map[string]bool{}
	for _, m := range ms {
		heads[m.ID] = true
	}
	assert.Equal(t, map[string]bool{ids[0]: true, ids[1]: true, ids[2]: true}, heads, "one per key, the oldest")
	leases := make([]string, len(ms))
	for i, m := range ms {
		leases[i] = m.Lease
	}
	require.NoError(t, k.Store.Release(ctx, leases))

	// Eight workers send them: each key's records arrive oldest first.
	require.NoError(t, k.Start(ctx))
	got := rcv.WaitFor(t, before+len(ids), 10*time.Second)[before:]
	require.NoError(t, k.Shutdown(ctx))
	last := map[string]float64{}
	seen := map[string]bool{}
	for _, r := range got {
		require.NoError(t, r.VerifyErr)
		key, n := keyOf(t, r)
		if prev, ok := last[key]; ok {
			assert.Greater(t, n, prev, "key %s out of order", key)
		}
		last[key] = n
		seen[r.ID()] = true
	}
	for _, id := range ids {
		assert.True(t, seen[id], "recovered %s is sent under its event id", id)
	}
	for _, id := range early {
		assert.False(t, seen[id], "a failure before Since is not recovered")
	}
	ds, err := k.Deliveries(ctx, webhook.DeliveryQuery{WebhookID: w.ID, Status: webhook.Delivered})
	require.NoError(t, err)
	assert.Len(t, ds, len(ids))
	for _, d := range ds {
		assert.Equal(t, 1, d.Attempts, "a fresh attempt count")
	}
	otherDead, err := k.Deliveries(ctx, webhook.DeliveryQuery{WebhookID: other.ID, Status: webhook.Dead})
	require.NoError(t, err)
	assert.Len(t, otherDead, 1, "another webhook's dead letters stay")

	again, err := k.Recover(ctx, webhook.RecoverQuery{WebhookID: w.ID, Since: since})
	require.NoError(t, err)
	assert.Zero(t, again.Matched, "nothing left to recover")
}

// pagingStore records how Recover reads and requeues.
type pagingStore struct {
	*memory.Store
	mu       sync.Mutex
	limits   []int
	requeues []int
}

func (p *pagingStore) Deliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	p.mu.Lock()
	p.limits = append(p.limits, f.Limit)
	p.mu.Unlock()
	return p.Store.Deliveries(ctx, f)
}

func (p *pagingStore) Requeue(ctx context.Context, ids []string, now time.Time) (int, error) {
	p.mu.Lock()
	p.requeues = append(p.requeues, len(ids))
	p.mu.Unlock()
	return p.Store.Requeue(ctx, ids, now)
}

func TestRecoverPagesThroughTheLog(t *testing.T) {
	t.Parallel()
	ps := &pagingStore{Store: memory.New()}
	k, rcv := setup(t, webhook.Config{Store: ps})
	w := register(t, k, rcv, webhook.Webhook{})
	ctx := t.Context()
	const n = 1234
	for i := range n {
		_, err := k.Publish(ctx, update(fmt.Sprintf("E%d", i%10), nil, map[string]any{"n": i}))
		require.NoError(t, err)
	}
	// Bury everything straight in the store: the receiver is not the
	// point here.
	for {
		ms, err := ps.Claim(ctx, store.Claim{Now: k.Clock.Now(), Lease: time.Minute, Limit: 100})
		require.NoError(t, err)
		if len(ms) == 0 {
			break
		}
		rs := make([]store.Result, len(ms))
		for i, m := range ms {
			rs[i] = store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDead, Now: k.Clock.Now(),
				Attempt: &store.Attempt{MessageID: m.ID, At: k.Clock.Now(), Error: "down"}}
		}
		require.NoError(t, ps.Ack(ctx, rs))
	}
	ps.mu.Lock()
	ps.limits = nil
	ps.mu.Unlock()

	res, err := k.Recover(ctx, webhook.RecoverQuery{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Equal(t, n, res.Matched)
	assert.Equal(t, n, res.Replayed)
	ps.mu.Lock()
	assert.Equal(t, []int{500, 500, 500}, ps.limits, "read in pages, never all at once")
	assert.Equal(t, []int{500, 500, 234}, ps.requeues, "requeued page by page")
	ps.mu.Unlock()
	st, err := k.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(n), st.Total.Pending())
	k.Settle(t, 5)
	assert.Len(t, rcv.Delivered(), n)
}

func TestRecoverFallsBackToReplay(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Store: plainStore{memory.New()}, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	w := register(t, k, rcv, webhook.Webhook{})
	ids := outage(t, k, rcv, []string{"E1", "E2"}, 3)
	res, err := k.Recover(t.Context(), webhook.RecoverQuery{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Equal(t, webhook.RecoverResult{Matched: len(ids), Replayed: len(ids)}, res, "not in order without a Requeuer")
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
	require.NoError(t, err)
	for _, d := range ds {
		assert.True(t, d.Replayed)
		assert.Equal(t, webhook.Pending, d.Status)
	}
	before := len(rcv.Requests())
	k.Drain(t)
	assert.Len(t, rcv.Requests(), before+len(ids))
}

func TestRecoverOtherStates(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	id, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	k.Drain(t)
	dry, err := k.Recover(t.Context(), webhook.RecoverQuery{WebhookID: w.ID, DryRun: true})
	require.NoError(t, err)
	assert.Zero(t, dry.Matched, "Dead by default")
	res, err := k.Recover(t.Context(), webhook.RecoverQuery{WebhookID: w.ID, Status: webhook.Delivered, Key: "E1"})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Replayed, "resending what a receiver lost")
	k.Drain(t)
	got := rcv.Delivered()
	require.Len(t, got, 2)
	assert.Equal(t, id, got[1].ID(), "the same message id, so the receiver can de-duplicate")
	var env envelope
	require.NoError(t, json.Unmarshal(got[1].Body, &env))
	assert.Equal(t, id, env.ID)
}

func TestRecoverRejectsBadQueries(t *testing.T) {
	t.Parallel()
	k, _ := setup(t, webhook.Config{})
	ctx := t.Context()
	for name, q := range map[string]webhook.RecoverQuery{
		"no webhook":     {},
		"pending":        {WebhookID: "w", Status: webhook.Pending},
		"unknown state":  {WebhookID: "w", Status: "lost"},
		"empty interval": {WebhookID: "w", Since: webhooktest.Epoch, Until: webhooktest.Epoch},
	} {
		_, err := k.Recover(ctx, q)
		assert.ErrorIs(t, err, webhook.ErrInvalidQuery, name)
	}
}

// BenchmarkRecover measures recovering 10,000 dead deliveries (100 keys
// of 100), in order through the store's Requeuer and by the Replay
// fallback. Each round builds its own store, so run it with a fixed count:
// go test -run '^$' -bench Recover -benchtime 20x ./webhook
func BenchmarkRecover(b *testing.B) {
	for _, mode := range []string{"Requeue", "Replay"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				mem := memory.New()
				var st store.Store = mem
				if mode == "Replay" {
					st = plainStore{mem}
				}
				k := webhooktest.NewDispatcher(b, webhook.Config{Store: st})
				w, err := k.Register(context.Background(), webhook.Webhook{Name: "payroll", Table: "employee",
					Ops: []webhook.Op{webhook.Update}, URL: "http://127.0.0.1:9/hook"})
				require.NoError(b, err)
				buryAll(b, k, mem, 10000)
				runtime.GC() // leave the setup's garbage out of the measure
				b.StartTimer()
				res, err := k.Recover(context.Background(), webhook.RecoverQuery{WebhookID: w.ID})
				require.NoError(b, err)
				require.Equal(b, 10000, res.Replayed)
			}
		})
	}
}

// buryAll publishes n changes over 100 keys and marks every delivery dead
// straight in the store.
func buryAll(b *testing.B, k *webhooktest.Kit, mem *memory.Store, n int) {
	ctx := context.Background()
	for i := range n {
		_, err := k.Publish(ctx, update(fmt.Sprintf("E%d", i%100), nil, map[string]any{"seq": i}))
		require.NoError(b, err)
	}
	for {
		ms, err := mem.Claim(ctx, store.Claim{Now: k.Clock.Now(), Lease: time.Minute, Limit: 1000})
		require.NoError(b, err)
		if len(ms) == 0 {
			return
		}
		rs := make([]store.Result, len(ms))
		for i, m := range ms {
			rs[i] = store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDead, Now: k.Clock.Now(),
				Attempt: &store.Attempt{MessageID: m.ID, At: k.Clock.Now(), Error: "down"}}
		}
		require.NoError(b, mem.Ack(ctx, rs))
	}
}
