package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

var errDatabaseAway = errors.New("database away")

// awayStore is the memory store with a switch that makes Claim and Ack
// fail, as a store does while its database is unreachable. It counts the
// claims, and tells of every Ack call.
type awayStore struct {
	*memory.Store
	away   atomic.Bool
	claims atomic.Int64
	acks   chan struct{}
}

func (s *awayStore) Claim(ctx context.Context, c store.Claim) ([]store.Message, error) {
	s.claims.Add(1)
	if s.away.Load() {
		return nil, errDatabaseAway
	}
	return s.Store.Claim(ctx, c)
}

func (s *awayStore) Ack(ctx context.Context, rs []store.Result) error {
	defer func() {
		select {
		case s.acks <- struct{}{}:
		default:
		}
	}()
	if s.away.Load() {
		return errDatabaseAway
	}
	return s.Store.Ack(ctx, rs)
}

// While the database is away, attempts that finish cannot record their
// outcomes. Each failed write must not wake the claimer: it is backing
// off, and waking it for nothing turns the backoff into a loop paced by
// the attempts finishing.
func TestFailedAcksDoNotWakeTheClaimer(t *testing.T) {
	t.Parallel()
	const n = 16
	arrived, gate, ended := make(chan struct{}, n), make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-gate:
		case <-ended:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(ended) }) // before the dispatcher's shutdown waits for its attempts
	st := &awayStore{Store: memory.New(), acks: make(chan struct{}, n)}
	k := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Workers: n, MaxConcurrency: n, PollInterval: time.Hour})
	_, err := k.Register(t.Context(), webhook.Webhook{Name: "sync", Table: "employee", Ops: []webhook.Op{webhook.Insert}, URL: srv.URL})
	require.NoError(t, err)
	for i := range n {
		_, err := k.Publish(t.Context(), webhook.Change{Table: "employee", Op: webhook.Insert, Key: fmt.Sprint(i), New: map[string]any{"i": i}})
		require.NoError(t, err)
	}
	require.NoError(t, k.Start(t.Context()))
	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s within 10s", what)
		}
	}
	for range n {
		wait(arrived, "request")
	}

	st.away.Store(true)
	before := st.claims.Load()
	for range n { // the attempts finish one by one; each outcome fails to be recorded
		gate <- struct{}{}
		wait(st.acks, "ack")
	}
	claims := st.claims.Load() - before
	// The first finished attempt frees a worker, so the claimer tries once
	// and fails; then it backs off (200ms, 400ms ...), which the few
	// milliseconds of this loop hardly reach.
	assert.LessOrEqual(t, claims, int64(3), "%d failed outcome writes woke the claimer %d times", n, claims)
	assert.Positive(t, claims)
}
