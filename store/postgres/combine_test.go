package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
)

func combineStore(t *testing.T) *postgres.Store {
	t.Helper()
	pool := postgrestest.Pool(t, 8)
	s := postgrestest.NewStore(t, pool)
	_, err := s.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, time.Now())
	require.NoError(t, err)
	return s
}

func combineEvent(id, key string) (store.Event, []store.Delivery) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	return store.Event{ID: id, Table: "employee", Op: "UPDATE", Key: key, Time: now, Payload: json.RawMessage(`{}`)},
		[]store.Delivery{{ID: "d-" + id, WebhookID: "wh", NextAttempt: now, CreatedAt: now}}
}

// TestEnqueueConcurrentCalls enqueues from many goroutines at once, each
// change twice, and checks that every call returned only once its rows
// were stored and that each change was created exactly once.
func TestEnqueueConcurrentCalls(t *testing.T) {
	t.Parallel()
	s := combineStore(t)
	ctx := t.Context()
	const n = 200
	var mu sync.Mutex
	created := map[string]int{}
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("e%d", i%n)
			e, ds := combineEvent(id, "K"+id)
			made, err := s.Enqueue(ctx, e, ds)
			if !assert.NoError(t, err) {
				return
			}
			d, err := s.Delivery(ctx, "d-"+id)
			assert.NoError(t, err, "the delivery exists when Enqueue returns")
			assert.Equal(t, store.Pending, d.Status)
			if made {
				mu.Lock()
				created[id]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Len(t, created, n)
	for id, c := range created {
		assert.Equal(t, 1, c, "change %s created once", id)
	}
	ds, err := s.Deliveries(ctx, store.DeliveryFilter{})
	require.NoError(t, err)
	assert.Len(t, ds, n)
}

// TestEnqueueCombinedFailureStaysWithItsCall runs a combined statement
// one of whose calls the database refuses, and checks that only that call
// fails.
func TestEnqueueCombinedFailureStaysWithItsCall(t *testing.T) {
	t.Parallel()
	s := combineStore(t)
	var es []store.EventWithDeliveries
	for i, key := range []string{"K1", "bad\x00key", "K3"} {
		e, ds := combineEvent(fmt.Sprintf("f%d", i), key)
		es = append(es, store.EventWithDeliveries{Event: e, Deliveries: ds})
	}
	made, errs := s.EnqueueTogether(t.Context(), es)
	assert.NoError(t, errs[0])
	assert.True(t, made[0])
	assert.Error(t, errs[1], "a key PostgreSQL cannot store")
	assert.NoError(t, errs[2])
	assert.True(t, made[2])
}

// TestEnqueueWithdrawnWhenCanceled cancels a call while it waits behind a
// statement in flight: it returns at once, and nothing of it is stored.
func TestEnqueueWithdrawnWhenCanceled(t *testing.T) {
	t.Parallel()
	s := combineStore(t)
	release := s.HoldCombiner()
	defer release()
	ctx, cancel := context.WithCancel(t.Context())
	e, ds := combineEvent("c1", "K1")
	done := make(chan error, 1)
	go func() {
		_, err := s.Enqueue(ctx, e, ds)
		done <- err
	}()
	require.Eventually(t, func() bool { return s.CombinerQueued() == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("a canceled call kept waiting")
	}
	assert.Zero(t, s.CombinerQueued(), "the call is withdrawn")
	_, err := s.Delivery(t.Context(), "d-c1")
	assert.ErrorIs(t, err, store.ErrNotFound)
}
