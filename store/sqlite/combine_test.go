package sqlite_test

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
	"github.com/heraldhr/herald/store/sqlite"
)

// hold takes the store's writer connection with a transaction of the
// caller's and returns a function that lets it go: calls made meanwhile
// queue behind it.
func hold(t *testing.T, s *sqlite.Store) func() {
	t.Helper()
	tx, err := s.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	once := sync.Once{}
	release := func() { once.Do(func() { require.NoError(t, tx.Commit()) }) }
	t.Cleanup(release)
	return release
}

// queued waits, within a bound, until a transaction of calls is in
// flight and n calls wait for the next.
func queued(t *testing.T, s *sqlite.Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		q, running := s.Queued()
		return running && q == n
	}, 10*time.Second, time.Millisecond, "%d calls queued", n)
}

type enqueueResult struct {
	created bool
	err     error
}

// TestCombinedEnqueuesGetTheirOwnAnswers queues enqueues behind a busy
// writer so that they share one transaction: new changes, a change
// already stored, the same change twice in the transaction, and one the
// database refuses. Each call gets the answer it would have had alone,
// and the refused one leaves nothing behind.
func TestCombinedEnqueuesGetTheirOwnAnswers(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := t.Context()
	_, err := s.SaveWebhook(ctx, store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	old := delivery("wh")
	created, err := s.Enqueue(ctx, event("stored", "E0"), []store.Delivery{old})
	require.NoError(t, err)
	require.True(t, created)

	release := hold(t, s)
	results := make([]enqueueResult, 7)
	var wg sync.WaitGroup
	call := func(i int, e store.Event, ds []store.Delivery) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].created, results[i].err = s.Enqueue(ctx, e, ds)
		}()
	}
	// The first call runs alone once the writer is free; it waits in the
	// writer's queue, the others in the store's.
	call(0, event("first", "E1"), []store.Delivery{delivery("wh")})
	queued(t, s, 0)
	call(1, event("new-a", "E2"), []store.Delivery{delivery("wh")})
	queued(t, s, 1)
	call(2, event("stored", "E0"), []store.Delivery{delivery("wh")})
	queued(t, s, 2)
	call(3, event("twice", "E3"), []store.Delivery{delivery("wh")})
	queued(t, s, 3)
	call(4, event("twice", "E3"), []store.Delivery{delivery("wh")})
	queued(t, s, 4)
	refused := delivery("wh")
	refused.ID = old.ID // the delivery id is taken: the database refuses the insert
	call(5, event("refused", "E4"), []store.Delivery{delivery("wh"), refused})
	queued(t, s, 5)
	call(6, event("new-b", "E2"), []store.Delivery{delivery("wh")})
	queued(t, s, 6)
	before := s.SharedTransactions()
	release()
	wg.Wait()

	assert.Equal(t, int64(1), s.SharedTransactions()-before, "the queued calls shared one transaction")
	for i, want := range []bool{true, true, false, true, false} {
		assert.NoError(t, results[i].err, "call %d", i)
		assert.Equal(t, want, results[i].created, "call %d", i)
	}
	assert.Error(t, results[5].err, "the refused call fails")
	assert.NoError(t, results[6].err, "the call after the refused one is stored")
	assert.True(t, results[6].created)

	ds, err := s.Deliveries(ctx, store.DeliveryFilter{})
	require.NoError(t, err)
	var events []string
	for _, d := range ds {
		events = append(events, d.EventID)
	}
	assert.Equal(t, []string{"stored", "first", "new-a", "twice", "new-b"}, events,
		"one delivery per new change, in the order of the calls, none of the refused one")
	// The refused change left no event behind: publishing it again stores it.
	created, err = s.Enqueue(ctx, event("refused", "E4"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	assert.True(t, created)
	// Order per record holds across the shared transaction: new-a heads
	// E2's chain, new-b waits behind it.
	ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
	require.NoError(t, err)
	var claimed []string
	for _, m := range ms {
		claimed = append(claimed, m.Deliveries[0].EventID)
	}
	assert.ElementsMatch(t, []string{"stored", "first", "new-a", "twice", "refused"}, claimed)
}

// TestCombinedCallLeavesWhenItsContextEnds cancels a call that waits for
// a shared transaction: it returns at once with the context's error, and
// its change is not stored.
func TestCombinedCallLeavesWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := t.Context()
	_, err := s.SaveWebhook(ctx, store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)

	release := hold(t, s)
	first := make(chan error, 1)
	go func() {
		_, err := s.Enqueue(ctx, event("first", "E1"), []store.Delivery{delivery("wh")})
		first <- err
	}()
	queued(t, s, 0)
	cctx, cancel := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() {
		_, err := s.Enqueue(cctx, event("left", "E2"), []store.Delivery{delivery("wh")})
		left <- err
	}()
	queued(t, s, 1)
	cancel()
	select {
	case err := <-left:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled call did not return")
	}
	q, _ := s.Queued()
	assert.Equal(t, 0, q)
	release()
	require.NoError(t, <-first)
	created, err := s.Enqueue(ctx, event("left", "E2"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	assert.True(t, created, "the cancelled call stored nothing")
}

// TestCombinedWritesUnderLoad publishes, claims and acknowledges from
// many goroutines at once, each change twice, and checks that every change
// was created once and delivered once, in order per record.
func TestCombinedWritesUnderLoad(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := t.Context()
	_, err := s.SaveWebhook(ctx, store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	const publishers, each, keys = 16, 25, 5
	var mu sync.Mutex
	created := map[string]int{}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("c-%d-%d", p, i)
				for range 2 {
					made, err := s.Enqueue(ctx, event(id, fmt.Sprintf("K%d", (p+i)%keys)), []store.Delivery{delivery("wh")})
					if !assert.NoError(t, err) {
						return
					}
					if made {
						mu.Lock()
						created[id]++
						mu.Unlock()
					}
				}
			}
		}()
	}
	delivered := map[string]int{}
	last := map[string]int64{} // record key -> seq of its last delivered change
	claimers := make(chan struct{})
	var cwg sync.WaitGroup
	for range 2 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Hour, Limit: 8})
				if !assert.NoError(t, err) {
					return
				}
				if len(ms) == 0 {
					select {
					case <-claimers:
						return
					default:
						continue
					}
				}
				rs := make([]store.Result, len(ms))
				mu.Lock()
				for i, m := range ms {
					d := m.Deliveries[0]
					delivered[d.EventID]++
					assert.Greater(t, d.Seq, last[d.Key], "order of record %s", d.Key)
					last[d.Key] = d.Seq
					rs[i] = store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDelivered, Now: t0}
				}
				mu.Unlock()
				if !assert.NoError(t, s.Ack(ctx, rs)) {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(claimers)
	cwg.Wait()
	// Whatever the claimers left after the publishers finished.
	for {
		ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Hour, Limit: 100})
		require.NoError(t, err)
		if len(ms) == 0 {
			break
		}
		rs := make([]store.Result, len(ms))
		for i, m := range ms {
			d := m.Deliveries[0]
			delivered[d.EventID]++
			assert.Greater(t, d.Seq, last[d.Key], "order of record %s", d.Key)
			last[d.Key] = d.Seq
			rs[i] = store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDelivered, Now: t0}
		}
		require.NoError(t, s.Ack(ctx, rs))
	}
	assert.Len(t, created, publishers*each)
	assert.Len(t, delivered, publishers*each)
	for id, n := range created {
		assert.Equal(t, 1, n, "change %s created once", id)
		assert.Equal(t, 1, delivered[id], "change %s delivered once", id)
	}
}
