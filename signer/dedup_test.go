package signer_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/signer"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: specTime} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingHandler answers status and counts its calls.
type countingHandler struct {
	calls  atomic.Int32
	status int
}

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.calls.Add(1)
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
}

func delivery(id string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/hooks", nil)
	if id != "" {
		r.Header.Set("webhook-id", id)
	}
	return r
}

type dedupSetup struct {
	clock *fakeClock
	store *signer.MemorySeenStore
}

func newDedupSetup(t *testing.T) dedupSetup {
	t.Helper()
	clock := newFakeClock()
	return dedupSetup{clock: clock, store: signer.NewMemorySeenStore(signer.MemorySeenStoreOptions{Now: clock.Now})}
}

func TestDedupAnswersDuplicateWithoutCallingHandler(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	next := &countingHandler{status: http.StatusNoContent}
	h := signer.Dedup(s.store, time.Hour)(next)

	rec := serve(h, delivery("evt_1"))
	assert.Equal(t, http.StatusNoContent, rec.Code)

	rec = serve(h, delivery("evt_1"))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "already processed\n", rec.Body.String())
	assert.Equal(t, int32(1), next.calls.Load())

	rec = serve(h, delivery("evt_2"))
	assert.Equal(t, http.StatusNoContent, rec.Code, "another id is its own message")
	assert.Equal(t, int32(2), next.calls.Load())
}

func TestDedupHandlerWritingNothingCountsAsProcessed(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	next := &countingHandler{}
	h := signer.Dedup(s.store, time.Hour)(next)
	serve(h, delivery("evt_1"))
	serve(h, delivery("evt_1"))
	assert.Equal(t, int32(1), next.calls.Load())
}

func TestDedupFailedHandlingIsRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusBadRequest, http.StatusFound} {
		s := newDedupSetup(t)
		next := &countingHandler{status: status}
		h := signer.Dedup(s.store, time.Hour)(next)

		assert.Equal(t, status, serve(h, delivery("evt_1")).Code)
		assert.Equal(t, status, serve(h, delivery("evt_1")).Code, "the retry reaches the handler")
		assert.Equal(t, int32(2), next.calls.Load())

		next.status = http.StatusOK
		serve(h, delivery("evt_1"))
		assert.Equal(t, "already processed\n", serve(h, delivery("evt_1")).Body.String())
		assert.Equal(t, int32(3), next.calls.Load())
	}
}

func TestDedupPanickingHandlerIsRetried(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	var calls atomic.Int32
	h := signer.Dedup(s.store, time.Hour)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusOK) // a 2xx already sent does not count
			panic("boom")
		}
		w.WriteHeader(http.StatusOK)
	}))

	assert.Panics(t, func() { serve(h, delivery("evt_1")) })
	assert.Equal(t, http.StatusOK, serve(h, delivery("evt_1")).Code)
	assert.Equal(t, int32(2), calls.Load())
}

func TestDedupConcurrentDuplicateGetsConflict(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	inside, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	h := signer.Dedup(s.store, time.Hour)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		close(inside)
		<-release
		w.WriteHeader(http.StatusOK)
	}))

	first := make(chan int)
	go func() { first <- serve(h, delivery("evt_1")).Code }()
	<-inside

	assert.Equal(t, http.StatusConflict, serve(h, delivery("evt_1")).Code, "not 200: the first may still fail")
	close(release)
	assert.Equal(t, http.StatusOK, <-first)
	assert.Equal(t, "already processed\n", serve(h, delivery("evt_1")).Body.String())
	assert.Equal(t, int32(1), calls.Load())
}

func TestDedupWindowExpires(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	next := &countingHandler{status: http.StatusOK}
	h := signer.Dedup(s.store, time.Hour)(next)

	serve(h, delivery("evt_1"))
	s.clock.Advance(time.Hour - time.Second)
	serve(h, delivery("evt_1"))
	assert.Equal(t, int32(1), next.calls.Load(), "inside the window")

	s.clock.Advance(time.Second)
	serve(h, delivery("evt_1"))
	assert.Equal(t, int32(2), next.calls.Load(), "the window has passed")
}

func TestDedupDefaultWindowIsADay(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	next := &countingHandler{status: http.StatusOK}
	h := signer.Dedup(s.store, 0)(next)

	serve(h, delivery("evt_1"))
	s.clock.Advance(23 * time.Hour)
	serve(h, delivery("evt_1"))
	assert.Equal(t, int32(1), next.calls.Load())
	s.clock.Advance(time.Hour)
	serve(h, delivery("evt_1"))
	assert.Equal(t, int32(2), next.calls.Load())
}

func TestDedupMissingID(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	next := &countingHandler{status: http.StatusOK}
	assert.Equal(t, http.StatusBadRequest, serve(signer.Dedup(s.store, time.Hour)(next), delivery("")).Code)
	assert.Zero(t, next.calls.Load())
}

// scriptedStore is a SeenStore whose Claim fails on demand and which
// records the contexts Finish is called with.
type scriptedStore struct {
	claimErr error
	mu       sync.Mutex
	finished []error // ctx.Err() at each Finish
}

func (s *scriptedStore) Claim(context.Context, string, time.Duration) (signer.Seen, error) {
	return signer.NotSeen, s.claimErr
}

func (s *scriptedStore) Finish(ctx context.Context, _ string, _ bool, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished = append(s.finished, ctx.Err())
	return nil
}

func TestDedupStoreFailureAsksForRetry(t *testing.T) {
	t.Parallel()
	store := &scriptedStore{claimErr: errors.New("redis down")}
	next := &countingHandler{status: http.StatusOK}
	rec := serve(signer.Dedup(store, time.Hour)(next), delivery("evt_1"))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.NotContains(t, rec.Body.String(), "redis")
	assert.Zero(t, next.calls.Load())
}

func TestDedupFinishesEvenWhenTheClientLeft(t *testing.T) {
	t.Parallel()
	store := &scriptedStore{}
	ctx, cancel := context.WithCancel(context.Background())
	h := signer.Dedup(store, time.Hour)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		cancel() // the sender hung up while the handler worked
		w.WriteHeader(http.StatusOK)
	}))
	serve(h, delivery("evt_1").WithContext(ctx))
	require.Len(t, store.finished, 1)
	assert.NoError(t, store.finished[0])
}

func TestDedupNeedsAStoreAndAWindow(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { signer.Dedup(nil, time.Hour) })
	assert.Panics(t, func() { signer.Dedup(signer.NewMemorySeenStore(signer.MemorySeenStoreOptions{}), -time.Second) })
}

func TestDedupBehindVerifierIgnoresForgedIDs(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	v := mustVerifier(t, signer.VerifierOptions{Now: s.clock.Now}, specSecret)
	next := &countingHandler{status: http.StatusOK}
	h := v.Middleware(signer.Dedup(s.store, time.Hour)(next))
	body := []byte(`{"id":"evt_1"}`)

	forged := signedRequest(t, body, secretOf(32, 3))
	assert.Equal(t, http.StatusUnauthorized, serve(h, forged).Code)
	assert.Zero(t, s.store.Len(), "a forged id is never recorded")

	assert.Equal(t, http.StatusOK, serve(h, signedRequest(t, body, specSecret)).Code)
	assert.Equal(t, "already processed\n", serve(h, signedRequest(t, body, specSecret)).Body.String())
	assert.Equal(t, int32(1), next.calls.Load())
}

func TestMemorySeenStoreStates(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	ctx := context.Background()
	claim := func(id string) signer.Seen {
		seen, err := s.store.Claim(ctx, id, time.Minute)
		require.NoError(t, err)
		return seen
	}

	assert.Equal(t, signer.NotSeen, claim("a"))
	assert.Equal(t, signer.SeenInProgress, claim("a"))
	require.NoError(t, s.store.Finish(ctx, "a", true, time.Minute))
	assert.Equal(t, signer.SeenProcessed, claim("a"))

	assert.Equal(t, signer.NotSeen, claim("b"))
	require.NoError(t, s.store.Finish(ctx, "b", false, time.Minute))
	assert.Equal(t, signer.NotSeen, claim("b"), "a failed attempt is forgotten")

	s.clock.Advance(time.Minute)
	assert.Equal(t, signer.NotSeen, claim("a"), "processed record expired")
	assert.Equal(t, signer.NotSeen, claim("b"), "in-progress record expired: its holder never finished")
}

func TestMemorySeenStoreFinishWindowStartsAtFinish(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	ctx := context.Background()
	_, err := s.store.Claim(ctx, "a", time.Minute)
	require.NoError(t, err)
	s.clock.Advance(50 * time.Second) // a slow handler
	require.NoError(t, s.store.Finish(ctx, "a", true, time.Minute))
	s.clock.Advance(50 * time.Second)
	seen, err := s.store.Claim(ctx, "a", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, signer.SeenProcessed, seen)
}

func TestMemorySeenStoreIsBounded(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	store := signer.NewMemorySeenStore(signer.MemorySeenStoreOptions{MaxEntries: 3, Now: clock.Now})
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c", "d"} {
		_, err := store.Claim(ctx, id, time.Hour)
		require.NoError(t, err)
		require.NoError(t, store.Finish(ctx, id, true, time.Hour))
	}
	assert.Equal(t, 3, store.Len())

	seen, err := store.Claim(ctx, "a", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, signer.NotSeen, seen, "the oldest id was forgotten")
	seen, err = store.Claim(ctx, "d", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, signer.SeenProcessed, seen)
}

func TestMemorySeenStoreSweepsExpired(t *testing.T) {
	t.Parallel()
	s := newDedupSetup(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		_, err := s.store.Claim(ctx, id, time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.store.Finish(ctx, id, true, time.Minute))
	}
	require.Equal(t, 3, s.store.Len())
	s.clock.Advance(time.Minute)
	_, err := s.store.Claim(ctx, "z", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 1, s.store.Len())
}

func TestMemorySeenStoreRemembersOutcomeAfterEviction(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	store := signer.NewMemorySeenStore(signer.MemorySeenStoreOptions{MaxEntries: 1, Now: clock.Now})
	ctx := context.Background()
	_, err := store.Claim(ctx, "a", time.Hour)
	require.NoError(t, err)
	_, err = store.Claim(ctx, "b", time.Hour) // evicts a's claim
	require.NoError(t, err)
	require.NoError(t, store.Finish(ctx, "a", true, time.Hour))
	seen, err := store.Claim(ctx, "a", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, signer.SeenProcessed, seen)
}

func TestMemorySeenStoreClaimIsAtomic(t *testing.T) {
	t.Parallel()
	store := signer.NewMemorySeenStore(signer.MemorySeenStoreOptions{})
	var winners atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			seen, err := store.Claim(context.Background(), "same", time.Hour)
			if err == nil && seen == signer.NotSeen {
				winners.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), winners.Load())
}

func TestSeenString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "NotSeen", signer.NotSeen.String())
	assert.Equal(t, "SeenInProgress", signer.SeenInProgress.String())
	assert.Equal(t, "SeenProcessed", signer.SeenProcessed.String())
	assert.Equal(t, "Seen(7)", signer.Seen(7).String())
}
