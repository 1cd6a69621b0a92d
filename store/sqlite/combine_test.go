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

// combinedEnqueues runs the enqueues in calls while the writer is busy,
// so that all but the first queue and share the next transaction, and
// returns each call's answer.
func combinedEnqueues(t *testing.T, s *sqlite.Store, calls []store.EventWithDeliveries) []enqueueResult {
	t.Helper()
	release := hold(t, s)
	results := make([]enqueueResult, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].created, results[i].err = s.Enqueue(t.Context(), c.Event, c.Deliveries)
		}()
		// The first call runs alone once the writer is free; it waits in
		// the writer's queue, the others in the store's, in order.
		queued(t, s, i)
	}
	release()
	wg.Wait()
	return results
}

func change(id, key string, ds ...store.Delivery) store.EventWithDeliveries {
	if len(ds) == 0 {
		ds = []store.Delivery{delivery("wh")}
	}
	return store.EventWithDeliveries{Event: event(id, key), Deliveries: ds}
}

// storedEvents lists the event of every stored delivery, in order of
// sequence.
func storedEvents(t *testing.T, s *sqlite.Store) []string {
	t.Helper()
	ds, err := s.Deliveries(t.Context(), store.DeliveryFilter{})
	require.NoError(t, err)
	var events []string
	for _, d := range ds {
		events = append(events, d.EventID)
	}
	return events
}

func combineSetup(t *testing.T) (*sqlite.Store, store.Delivery) {
	t.Helper()
	s, _ := open(t)
	_, err := s.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	old := delivery("wh")
	created, err := s.Enqueue(t.Context(), event("stored", "E0"), []store.Delivery{old})
	require.NoError(t, err)
	require.True(t, created)
	return s, old
}

// TestCombinedEnqueuesGetTheirOwnAnswers queues enqueues behind a busy
// writer so that they share one transaction: new changes, a change
// already stored and the same change twice in the transaction. Each call
// gets the answer it would have had alone.
func TestCombinedEnqueuesGetTheirOwnAnswers(t *testing.T) {
	t.Parallel()
	s, _ := combineSetup(t)
	shared, undone := s.SharedTransactions()
	results := combinedEnqueues(t, s, []store.EventWithDeliveries{
		change("first", "E1"), change("new-a", "E2"), change("stored", "E0"), change("twice", "E3"),
		change("twice", "E3"), change("new-b", "E2"),
	})
	shared2, undone2 := s.SharedTransactions()
	assert.Equal(t, int64(1), shared2-shared, "the queued calls shared one transaction")
	assert.Equal(t, undone, undone2, "which committed")
	for i, want := range []bool{true, true, false, true, false, true} {
		assert.NoError(t, results[i].err, "call %d", i)
		assert.Equal(t, want, results[i].created, "call %d", i)
	}
	assert.Equal(t, []string{"stored", "first", "new-a", "twice", "new-b"}, storedEvents(t, s),
		"one delivery per new change, in the order of the calls")
	// Order per record holds across the shared transaction: new-a heads
	// E2's chain, new-b waits behind it.
	ms, err := s.Claim(t.Context(), store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
	require.NoError(t, err)
	var claimed []string
	for _, m := range ms {
		claimed = append(claimed, m.Deliveries[0].EventID)
	}
	assert.ElementsMatch(t, []string{"stored", "first", "new-a", "twice"}, claimed)
}

// TestCombinedCallRefusedAlone queues, between new changes, one whose
// rows the database refuses. The refused call fails and leaves nothing
// behind; the others are stored, in order, as if they had run alone.
func TestCombinedCallRefusedAlone(t *testing.T) {
	t.Parallel()
	s, old := combineSetup(t)
	refused := delivery("wh")
	refused.ID = old.ID // the delivery id is taken: the database refuses the insert
	shared, undone := s.SharedTransactions()
	results := combinedEnqueues(t, s, []store.EventWithDeliveries{
		change("first", "E1"), change("new-a", "E2"), change("refused", "E4", delivery("wh"), refused),
		change("new-a", "E2"), change("new-b", "E2"),
	})
	shared2, undone2 := s.SharedTransactions()
	assert.Equal(t, int64(1), shared2-shared, "the queued calls shared one transaction")
	assert.Equal(t, int64(1), undone2-undone, "which was rolled back, its calls run alone")
	assert.NoError(t, results[0].err)
	assert.True(t, results[0].created)
	assert.NoError(t, results[1].err)
	assert.True(t, results[1].created)
	assert.Error(t, results[2].err, "the refused call fails")
	assert.NoError(t, results[3].err)
	assert.False(t, results[3].created, "a duplicate of a call before it")
	assert.NoError(t, results[4].err)
	assert.True(t, results[4].created)
	assert.Equal(t, []string{"stored", "first", "new-a", "new-b"}, storedEvents(t, s))
	// The refused change left no event behind: publishing it again stores it.
	created, err := s.Enqueue(t.Context(), event("refused", "E4"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	assert.True(t, created)
}

// TestCombinedCallLeavesWhenItsContextEnds cancels a call that waits for
// a shared transaction: it returns at once with the context's error, and
// its change is not stored.
func TestCombinedCallLeavesWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	s, _ := openWithWebhook(t)
	ctx := t.Context()

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

// TestStartedCallRunsToItsEnd cancels the context of a call whose
// transaction has begun and waits for the writer connection: the call
// runs to its end and its change is stored.
func TestStartedCallRunsToItsEnd(t *testing.T) {
	t.Parallel()
	s, _ := openWithWebhook(t)
	ctx := t.Context()

	release := hold(t, s)
	waits := s.WriterWaits()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan enqueueResult, 1)
	go func() {
		created, err := s.Enqueue(cctx, event("started", "E1"), []store.Delivery{delivery("wh")})
		done <- enqueueResult{created, err}
	}()
	require.Eventually(t, func() bool { return s.WriterWaits() > waits }, 10*time.Second, time.Millisecond,
		"the call waits for the writer connection")
	cancel()
	release()
	select {
	case r := <-done:
		require.NoError(t, r.err)
		assert.True(t, r.created)
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not return")
	}
	created, err := s.Enqueue(ctx, event("started", "E1"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	assert.False(t, created, "the change was stored")
}

// TestCombinedWritesUnderLoad publishes, claims and acknowledges from
// many goroutines at once, each change twice, and checks that every change
// was created once and delivered once, in order per record.
func TestCombinedWritesUnderLoad(t *testing.T) {
	t.Parallel()
	s, _ := openWithWebhook(t)
	ctx := t.Context()
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
