package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
)

// testConcurrentOrder runs claimers concurrently (on a database, each on
// its own connection) over many records with several changes each, some
// batched, some retried, and checks that no record ever has two messages
// in flight and that every record's deliveries are delivered once, in the
// order they were published.
func testConcurrentOrder(t *testing.T, s store.Store) {
	hook(t, s, "single", false)
	hook(t, s, "batch", false)
	const keys, perKey, claimers = 12, 4, 6
	want := map[string][]string{} // chain -> delivery ids in publish order
	var wantMu sync.Mutex
	publishKey := func(k int) {
		key := fmt.Sprintf("E%d", k)
		single := publish(t, s, "", key, t0, 0, "single")
		batch := publish(t, s, "", key, t0, 3, "batch")
		wantMu.Lock()
		want["single/"+key] = append(want["single/"+key], single...)
		want["batch/"+key] = append(want["batch/"+key], batch...)
		wantMu.Unlock()
	}
	for k := range keys {
		publishKey(k)
	}
	// The other rounds are published while the claimers run, by two
	// publishers that own half of the keys each, so every key's order is
	// the order of its publisher's calls.
	var pubs sync.WaitGroup
	for p := range 2 {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for range perKey - 1 {
				for k := p; k < keys; k += 2 {
					publishKey(k)
				}
			}
		}()
	}
	total := 2 * keys * perKey

	var mu sync.Mutex
	inFlight := map[string]string{} // chain -> message id
	got := map[string][]string{}
	delivered, attempts := 0, 0
	var violations []string
	deadline := time.Now().Add(30 * time.Second)

	var wg sync.WaitGroup
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				done := delivered == total || len(violations) > 0
				mu.Unlock()
				if done || time.Now().After(deadline) {
					return
				}
				ms, err := s.Claim(context.Background(), store.Claim{Now: t0, Lease: time.Hour, Limit: 4})
				if err != nil {
					mu.Lock()
					violations = append(violations, "claim: "+err.Error())
					mu.Unlock()
					return
				}
				// Every message of the claim is in flight from here until
				// just before its outcome is recorded.
				chainsOf := func(m store.Message) map[string]bool {
					cs := map[string]bool{}
					for _, d := range m.Deliveries {
						cs[d.WebhookID+"/"+d.Key] = true
					}
					return cs
				}
				mu.Lock()
				for _, m := range ms {
					for c := range chainsOf(m) {
						if other, busy := inFlight[c]; busy {
							violations = append(violations, fmt.Sprintf("record %s handed out in message %s while message %s was in flight", c, m.ID, other))
						}
						inFlight[c] = m.ID
					}
				}
				mu.Unlock()
				runtime.Gosched()
				for _, m := range ms {
					mu.Lock()
					attempts++
					retry := attempts%5 == 0 && m.Attempt == 1
					if !retry {
						for _, d := range m.Deliveries {
							got[d.WebhookID+"/"+d.Key] = append(got[d.WebhookID+"/"+d.Key], d.ID)
						}
						delivered += len(m.Deliveries)
					}
					for c := range chainsOf(m) {
						delete(inFlight, c)
					}
					mu.Unlock()
					o := store.OutcomeDelivered
					if retry {
						o = store.OutcomeRetry
					}
					r := store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: o, Now: t0, NextAttempt: t0,
						Attempt: &store.Attempt{MessageID: m.ID, At: t0, StatusCode: 200}}
					if err := s.Ack(context.Background(), []store.Result{r}); err != nil {
						mu.Lock()
						violations = append(violations, "ack: "+err.Error())
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	pubs.Wait()
	for _, v := range violations {
		t.Error(v)
	}
	require.Equal(t, total, delivered, "every delivery delivered within the deadline")
	for c, ids := range want {
		assert.Equal(t, ids, got[c], "record %s delivered once each, in publish order", c)
	}
}

// testOrderAcrossBatches checks that a batch carrying the first records of
// a key holds the rest of that key back, across a retry, and that the next
// batch is a new message.
func testOrderAcrossBatches(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	var k []string
	for range 5 {
		k = append(k, publish(t, s, "", "K", t0, 2, "wh")...)
	}
	other := publish(t, s, "", "L", t0, 2, "wh")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 2)
	var first store.Message
	for _, m := range ms {
		if m.Deliveries[0].Key == "K" {
			first = m
		} else {
			assert.Equal(t, other, deliveryIDs(m))
			ack(t, s, m, store.OutcomeDelivered, t0, time.Time{})
		}
	}
	require.Equal(t, k[:2], deliveryIDs(first), "a batch takes a key's first records, in order")
	ack(t, s, first, store.OutcomeRetry, t0, t0.Add(time.Minute))
	assert.Empty(t, claim(t, s, t0.Add(30*time.Second), 10), "a retrying batch holds the rest of its key back")
	ms = claim(t, s, t0.Add(time.Minute), 10)
	require.Len(t, ms, 1)
	assert.Equal(t, first.ID, ms[0].ID)
	assert.Equal(t, k[:2], deliveryIDs(ms[0]))
	assert.Equal(t, 2, ms[0].Attempt)
	ack(t, s, ms[0], store.OutcomeDelivered, t0.Add(time.Minute), time.Time{})
	ms = claim(t, s, t0.Add(time.Minute), 10)
	require.Len(t, ms, 1, "the next records come as one message")
	assert.Equal(t, k[2:4], deliveryIDs(ms[0]))
	assert.NotEqual(t, first.ID, ms[0].ID, "a new batch has a new id")
	assert.Equal(t, 1, ms[0].Attempt)
	ack(t, s, ms[0], store.OutcomeDead, t0.Add(time.Minute), time.Time{})
	ms = claim(t, s, t0.Add(time.Minute), 10)
	require.Len(t, ms, 1)
	assert.Equal(t, k[4:], deliveryIDs(ms[0]), "a dead batch frees its key too")
}

// testBatchLeaseExpires checks lease expiry on a batch with the suite's
// clock: the batch comes back whole, under its id, spending no attempt,
// and the old holder's outcome is refused.
func testBatchLeaseExpires(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	a := publish(t, s, "", "A", t0, 5, "wh")
	b := publish(t, s, "", "B", t0, 5, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	require.Equal(t, []string{a[0], b[0]}, deliveryIDs(ms[0]))
	assert.Empty(t, claim(t, s, t0.Add(lease-time.Second), 10))
	again := claim(t, s, t0.Add(lease), 10)
	require.Len(t, again, 1, "a lease that ran out makes the batch claimable")
	assert.Equal(t, ms[0].ID, again[0].ID)
	assert.Equal(t, deliveryIDs(ms[0]), deliveryIDs(again[0]))
	assert.Equal(t, 1, again[0].Attempt)
	err := s.Ack(ctx(t), []store.Result{{MessageID: ms[0].ID, Lease: ms[0].Lease, Outcome: store.OutcomeDelivered, Now: t0.Add(lease),
		Attempt: &store.Attempt{StatusCode: 200}}})
	assert.ErrorIs(t, err, store.ErrLeaseLost)
	ack(t, s, again[0], store.OutcomeDelivered, t0.Add(lease), time.Time{})
	for _, id := range append(a, b...) {
		d := get(t, s, id)
		assert.Equal(t, store.Delivered, d.Status)
		assert.Equal(t, 1, d.Attempts)
	}
}

// testEnqueueMany checks bulk enqueue, for stores that have it.
func testEnqueueMany(t *testing.T, s store.Store) {
	b, ok := s.(store.BulkEnqueuer)
	if !ok {
		t.Skip("the store has no bulk enqueue")
	}
	hook(t, s, "wh", false)
	existing := store.Event{ID: "old", Table: "employee", Op: "UPDATE", Key: "E1", Time: t0, Payload: json.RawMessage(`{"n":0}`)}
	created, err := s.Enqueue(ctx(t), existing, nil)
	require.NoError(t, err)
	require.True(t, created)
	ev := func(id, key string, n int) store.EventWithDeliveries {
		return store.EventWithDeliveries{
			Event:      store.Event{ID: id, Table: "employee", Op: "UPDATE", Key: key, Time: t0, Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))},
			Deliveries: []store.Delivery{{ID: newID(), WebhookID: "wh", NextAttempt: t0, CreatedAt: t0}},
		}
	}
	es := []store.EventWithDeliveries{ev("c1", "E1", 1), ev("old", "E1", 2), ev("c2", "E1", 3), ev("c1", "E1", 4), ev("c3", "E2", 5)}
	got, err := b.EnqueueMany(ctx(t), es)
	require.NoError(t, err)
	assert.Equal(t, []bool{true, false, true, false, true}, got, "existing ids and repeats within the call create nothing")
	all, err := s.Deliveries(ctx(t), store.DeliveryFilter{})
	require.NoError(t, err)
	var ids []string
	for _, d := range all {
		ids = append(ids, d.ID)
	}
	assert.Equal(t, []string{es[0].Deliveries[0].ID, es[2].Deliveries[0].ID, es[4].Deliveries[0].ID}, ids, "in the order given")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 2, "E1's second change waits behind its first")
	for _, m := range ms {
		if m.Deliveries[0].Key == "E1" {
			assert.JSONEq(t, `{"n":1}`, string(m.Events[0].Payload))
		}
	}
	got, err = b.EnqueueMany(ctx(t), nil)
	require.NoError(t, err)
	assert.Empty(t, got)
}

// testSharedDefinitions checks that a definition changed through one
// instance moves the version another instance reads.
func testSharedDefinitions(t *testing.T, a, b store.Store) {
	v0, err := b.WebhooksVersion(ctx(t))
	require.NoError(t, err)
	w := hook(t, a, "wh", false)
	v1, err := b.WebhooksVersion(ctx(t))
	require.NoError(t, err)
	assert.Greater(t, v1, v0, "a save through one instance moves the version the other reads")
	assert.Equal(t, w.Version, v1)
	got, err := b.Webhook(ctx(t), "wh")
	require.NoError(t, err)
	assert.JSONEq(t, string(w.Definition), string(got.Definition))

	w2, err := b.SaveWebhook(ctx(t), store.Webhook{ID: "wh", Disabled: true, Definition: json.RawMessage(`{"name":"edited"}`)}, t0.Add(time.Minute))
	require.NoError(t, err)
	v2, err := a.WebhooksVersion(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, w2.Version, v2)
	got, err = a.Webhook(ctx(t), "wh")
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	assert.JSONEq(t, `{"name":"edited"}`, string(got.Definition))

	require.NoError(t, b.DeleteWebhook(ctx(t), "wh", t0))
	v3, err := a.WebhooksVersion(ctx(t))
	require.NoError(t, err)
	assert.Greater(t, v3, v2)
	_, err = a.Webhook(ctx(t), "wh")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// testSharedQueue checks two instances claiming one queue at once: each
// message goes to one of them, and either can record its outcome.
func testSharedQueue(t *testing.T, a, b store.Store) {
	hook(t, a, "wh", false)
	const n = 60
	for i := range n {
		publish(t, a, "", fmt.Sprintf("E%d", i), t0, 0, "wh")
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, s := range []store.Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other := []store.Store{b, a}[i%2]
			for {
				ms, err := s.Claim(context.Background(), store.Claim{Now: t0, Lease: lease, Limit: 5})
				if err != nil {
					errs <- err
					return
				}
				if len(ms) == 0 {
					return
				}
				var rs []store.Result
				mu.Lock()
				for _, m := range ms {
					seen[m.Deliveries[0].ID]++
					rs = append(rs, store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDelivered, Now: t0,
						Attempt: &store.Attempt{StatusCode: 200}})
				}
				mu.Unlock()
				if err := other.Ack(context.Background(), rs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, seen, n)
	for id, c := range seen {
		assert.Equal(t, 1, c, "delivery %s claimed once", id)
	}
	done, err := b.Deliveries(ctx(t), store.DeliveryFilter{Status: store.Delivered})
	require.NoError(t, err)
	assert.Len(t, done, n)
}

// testNotifications checks a Notifier, for stores that are one: work
// enqueued through another instance wakes the subscriber, and the channel
// closes when its context ends.
func testNotifications(t *testing.T, a, b store.Store) {
	n, ok := a.(store.Notifier)
	if !ok {
		t.Skip("the store sends no notifications")
	}
	hook(t, a, "wh", false)
	sub, cancel := context.WithCancel(ctx(t))
	ch, err := n.Subscribe(sub)
	require.NoError(t, err)
	drain := func() {
		for {
			select {
			case <-ch:
			default:
				return
			}
		}
	}
	drain()
	publish(t, b, "", "E1", t0, 0, "wh")
	select {
	case _, open := <-ch:
		assert.True(t, open)
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s of an enqueue")
	}
	cancel()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-timeout:
			t.Fatal("the channel was not closed within 10s of its context ending")
		}
	}
}
