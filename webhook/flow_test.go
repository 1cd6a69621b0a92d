package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// keyOf returns the record key and the "seq" field of a request's single
// record.
func keyOf(t *testing.T, r webhooktest.Request) (string, float64) {
	t.Helper()
	_, d := decode(t, r.Body)
	seq, _ := d.New["seq"].(float64)
	return d.Key, seq
}

func TestPerKeyOrderAcrossAFailedAttempt(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	// E1's first delivery fails once; E1's later changes must wait for it,
	// E2's must not.
	rcv.Respond(func(r webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: 200} })
	failed := false
	var mu sync.Mutex
	rcv.Respond(func(r webhooktest.Request) webhooktest.Answer {
		mu.Lock()
		defer mu.Unlock()
		key, seq := keyOf(t, r)
		if key == "E1" && seq == 1 && !failed {
			failed = true
			return webhooktest.Answer{Status: http.StatusInternalServerError}
		}
		return webhooktest.Answer{Status: http.StatusOK}
	})
	for i := 1; i <= 3; i++ {
		for _, key := range []string{"E1", "E2"} {
			_, err := k.Publish(t.Context(), update(key, map[string]any{"seq": i - 1}, map[string]any{"seq": i}))
			require.NoError(t, err)
		}
	}
	k.Drain(t)
	var e1, e2 []float64
	for _, r := range rcv.Delivered() {
		key, seq := keyOf(t, r)
		if key == "E1" {
			e1 = append(e1, seq)
		} else {
			e2 = append(e2, seq)
		}
	}
	assert.Empty(t, e1, "nothing of E1 is delivered while its first change waits for its retry")
	assert.Equal(t, []float64{1, 2, 3}, e2, "E2 flows freely, in order")

	k.Settle(t, 10)
	e1 = nil
	for _, r := range rcv.Delivered() {
		if key, seq := keyOf(t, r); key == "E1" {
			e1 = append(e1, seq)
		}
	}
	assert.Equal(t, []float64{1, 2, 3}, e1, "E1 arrives in order after the retry")
}

func TestPerKeyOrderWithWorkers(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Workers: 8})
	register(t, k, rcv, webhook.Webhook{})
	const keys, per = 5, 20
	for i := 1; i <= per; i++ {
		for j := range keys {
			_, err := k.Publish(t.Context(), update(fmt.Sprintf("E%d", j), nil, map[string]any{"seq": i}))
			require.NoError(t, err)
		}
	}
	require.NoError(t, k.Start(t.Context()))
	rcv.WaitFor(t, keys*per, 10*time.Second)
	last := map[string]float64{}
	for _, r := range rcv.Requests() {
		key, seq := keyOf(t, r)
		assert.Greater(t, seq, last[key], "per-key order holds with concurrent workers")
		last[key] = seq
	}
	require.NoError(t, k.Shutdown(t.Context()))
}

func TestBatchesFillAndResendWhole(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Workers: 1})
	register(t, k, rcv, webhook.Webhook{MaxBatch: 3})
	rcv.Fail(1, http.StatusInternalServerError)
	var ids []string
	for i := range 7 {
		id, err := k.Publish(t.Context(), update(fmt.Sprintf("E%d", i), nil, map[string]any{"seq": i}))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	k.Settle(t, 10)
	reqs := rcv.Requests()
	require.Len(t, reqs, 4, "7 records in batches of 3: 3 requests, plus one retry")
	type batch struct {
		ID   string            `json:"id"`
		Type string            `json:"type"`
		Data []json.RawMessage `json:"data"`
	}
	var first, retry batch
	require.NoError(t, json.Unmarshal(reqs[0].Body, &first))
	for _, r := range reqs[1:] {
		var b batch
		require.NoError(t, json.Unmarshal(r.Body, &b))
		assert.Equal(t, b.ID, r.ID(), "webhook-id is the batch id")
		require.NoError(t, r.VerifyErr)
		if b.ID == first.ID {
			retry = b
		}
	}
	assert.Len(t, first.Data, 3, "filled up to MaxBatch")
	assert.Equal(t, "employee.updated", first.Type)
	assert.Equal(t, first.Data, retry.Data, "the retry resends the same records")
	assert.NotContains(t, ids, first.ID, "a batch has its own id")

	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 7)
	batches := map[string]int{}
	for _, d := range ds {
		assert.Equal(t, webhook.Delivered, d.Status)
		assert.NotEmpty(t, d.BatchID, "each member carries its batch id")
		batches[d.BatchID]++
	}
	assert.Len(t, batches, 3)
	assert.Equal(t, 3, batches[first.ID])
	for _, d := range ds {
		if d.BatchID == first.ID {
			assert.Equal(t, 2, d.Attempts, "one failed request fails all its records together")
		}
	}
}

func TestSingleRecordBatchIsAList(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{MaxBatch: 10})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"seq": 1}))
	require.NoError(t, err)
	k.Drain(t)
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	var b struct {
		Data []map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(reqs[0].Body, &b), "data is always a list for a batching webhook")
	require.Len(t, b.Data, 1)
	assert.Equal(t, "E1", b.Data[0]["key"])
}

func TestShutdownThenRestartDeliversEverything(t *testing.T) {
	t.Parallel()
	st := memory.New()
	clock := webhooktest.NewClock(webhooktest.Epoch)
	k1 := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Clock: clock, Workers: 2, MaxConcurrency: 2})
	rcv := webhooktest.NewReceiver(t, clock)
	w := register(t, k1, rcv, webhook.Webhook{})
	_ = w
	// The receiver hangs: the first attempts will be cut off by Shutdown.
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Stall: true} })
	var ids []string
	for i := range 5 {
		id, err := k1.Publish(t.Context(), update(fmt.Sprintf("E%d", i), nil, map[string]any{"seq": i}))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NoError(t, k1.Start(t.Context()))
	waitInFlight(t, rcv, 2)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := k1.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Shutdown reports that its deadline won")
	assert.NoError(t, k1.Shutdown(t.Context()), "a second call is a no-op")

	pending, err := k1.Deliveries(t.Context(), webhook.DeliveryQuery{Status: webhook.Pending})
	require.NoError(t, err)
	assert.Len(t, pending, 5, "cut-off attempts are released, not recorded")
	for _, p := range pending {
		assert.Equal(t, 0, p.Attempts)
	}

	rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: 200} })
	rcv.Release()
	k2 := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Clock: clock})
	assert.Equal(t, 5, k2.Drain(t), "a new dispatcher on the same store picks the work up at once, no lease to wait out")
	ds, err := k2.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 5)
	for _, d := range ds {
		assert.Equal(t, webhook.Delivered, d.Status)
	}
	got := map[string]bool{}
	for _, r := range rcv.Delivered() {
		got[r.ID()] = true
	}
	for _, id := range ids {
		assert.True(t, got[id], "event %s delivered", id)
	}
}

// waitInFlight waits until the receiver holds n stalled requests.
func waitInFlight(t *testing.T, rcv *webhooktest.Receiver, n int) {
	t.Helper()
	seen := make(chan struct{}, 64)
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer {
		seen <- struct{}{}
		return webhooktest.Answer{Stall: true}
	})
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for range n {
		select {
		case <-seen:
		case <-timeout.C:
			t.Fatalf("fewer than %d attempts reached the receiver", n)
		}
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	require.NoError(t, k.Start(t.Context()))
	waitInFlight(t, rcv, 1)
	done := make(chan error, 1)
	go func() { done <- k.Shutdown(context.Background()) }()
	rcv.Release()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the attempt finished")
	}
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Equal(t, webhook.Delivered, ds[0].Status, "the in-flight attempt finished and was recorded")
}

func TestHardStopReleases(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	require.NoError(t, k.Start(ctx))
	assert.ErrorIs(t, k.Start(ctx), webhook.ErrStarted)
	waitInFlight(t, rcv, 1)
	cancel()
	require.NoError(t, k.Shutdown(t.Context()))
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Equal(t, webhook.Pending, ds[0].Status)
	assert.Equal(t, 0, ds[0].Attempts)
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{} })
	assert.Equal(t, 1, k.Drain(t), "released at once, no lease to wait out")
}

func TestStartDeliversWithoutPolling(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{PollInterval: time.Hour})
	register(t, k, rcv, webhook.Webhook{})
	require.NoError(t, k.Start(t.Context()))
	for i := range 3 {
		_, err := k.Publish(t.Context(), update(fmt.Sprintf("E%d", i), nil, map[string]any{"a": i}))
		require.NoError(t, err)
		rcv.WaitFor(t, i+1, 10*time.Second)
	}
	require.NoError(t, k.Shutdown(t.Context()))
}

// TestStartClaimsTheBacklogWithoutPolling: work that was due before
// Start, more of it than there are workers, goes out without waiting for
// a poll: what is due at Start is claimed at once, and a worker that
// finds the last claim was full claims again when it is free.
func TestStartClaimsTheBacklogWithoutPolling(t *testing.T) {
	t.Parallel()
	st := memory.New()
	clock := webhooktest.NewClock(webhooktest.Epoch)
	rcv := webhooktest.NewReceiver(t, clock)
	// Another process published the backlog: no wake-up of this one is
	// pending.
	other := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Clock: clock})
	register(t, other, rcv, webhook.Webhook{})
	for i := range 7 {
		_, err := other.Publish(t.Context(), update(fmt.Sprintf("E%d", i), nil, map[string]any{"a": i}))
		require.NoError(t, err)
	}
	k := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Clock: clock, Workers: 2, PollInterval: time.Hour})
	require.NoError(t, k.Start(t.Context()))
	rcv.WaitFor(t, 7, 10*time.Second)
	require.NoError(t, k.Shutdown(t.Context()))
}

func TestHeldWhenHookMissing(t *testing.T) {
	t.Parallel()
	st := memory.New()
	clock := webhooktest.NewClock(webhooktest.Epoch)
	rcv := webhooktest.NewReceiver(t, clock)
	// A process that knows the hook registers the webhook ...
	withHook := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Clock: clock, Hooks: hooksWith(t, "enrich")})
	register(t, withHook, rcv, webhook.Webhook{Before: []string{"enrich"}})
	// ... a process that lacks it must hold the deliveries, not send them raw.
	without := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Clock: clock})
	_, err := without.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	assert.Equal(t, 1, without.Drain(t))
	assert.Empty(t, rcv.Requests())
	ds, err := without.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Equal(t, webhook.Pending, ds[0].Status)
	assert.Equal(t, 0, ds[0].Attempts)
	assert.Contains(t, ds[0].LastError, "enrich")
	clock.Advance(time.Hour)
	assert.Equal(t, 1, withHook.Drain(t))
	assert.Len(t, rcv.Delivered(), 1)
}

func hooksWith(t *testing.T, names ...string) *transform.Registry {
	t.Helper()
	r := transform.NewRegistry()
	for _, n := range names {
		require.NoError(t, r.RegisterBefore(n, transform.BeforeFunc(func(context.Context, *transform.Message) error { return nil })))
	}
	return r
}

// noAckNotes hides the store's notice of acks: the dispatcher must then
// wake itself after each.
type noAckNotes struct{ *memory.Store }

func (noAckNotes) NotifiesAcks() bool { return false }

// TestNextRecordWithoutPolling: when a record's delivery ends, the next
// one of its key goes out at once, not at the next poll, whether the
// store reports the acks that free it or the dispatcher has to look.
func TestNextRecordWithoutPolling(t *testing.T) {
	t.Parallel()
	for name, st := range map[string]store.Store{"store notifies acks": memory.New(), "store does not": noAckNotes{memory.New()}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k, rcv := setup(t, webhook.Config{Store: st, PollInterval: time.Hour})
			register(t, k, rcv, webhook.Webhook{})
			require.NoError(t, k.Start(t.Context()))
			var ids []string
			for i := range 4 {
				id, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": i}))
				require.NoError(t, err)
				ids = append(ids, id)
			}
			rcv.WaitFor(t, 4, 10*time.Second)
			var got []string
			for _, r := range rcv.Requests() {
				got = append(got, r.ID())
			}
			assert.Equal(t, ids, got, "in order")
			require.NoError(t, k.Shutdown(t.Context()))
		})
	}
}
