package memory_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
}

// TestTakenDeliveryID: an enqueue that reuses a delivery id, stored or
// within its own list, stores nothing and leaves the stored delivery as
// it was.
func TestTakenDeliveryID(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := memory.New()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ev := func(id string) store.Event {
		return store.Event{ID: id, Table: "employee", Op: "INSERT", Key: "E-" + id, Time: t0, Payload: []byte(`{}`)}
	}
	dl := func(id string) store.Delivery { return store.Delivery{ID: id, WebhookID: "w", NextAttempt: t0} }
	created, err := s.Enqueue(ctx, ev("a"), []store.Delivery{dl("d1")})
	require.NoError(t, err)
	require.True(t, created)

	_, err = s.Enqueue(ctx, ev("b"), []store.Delivery{dl("d2"), dl("d1"), dl("d3")})
	require.ErrorContains(t, err, `"d1"`)
	_, err = s.Enqueue(ctx, ev("c"), []store.Delivery{dl("d4"), dl("d4")})
	require.ErrorContains(t, err, `"d4"`)

	d, err := s.Delivery(ctx, "d1")
	require.NoError(t, err)
	assert.Equal(t, "a", d.EventID, "the stored delivery is untouched")
	for _, id := range []string{"d2", "d3", "d4"} {
		_, err := s.Delivery(ctx, id)
		assert.ErrorIs(t, err, store.ErrNotFound, id)
	}
	all, err := s.Deliveries(ctx, store.DeliveryFilter{})
	require.NoError(t, err)
	assert.Len(t, all, 1)

	created, err = s.Enqueue(ctx, ev("b"), []store.Delivery{dl("d2")})
	require.NoError(t, err)
	assert.True(t, created, "the refused event was not stored")
	ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
	require.NoError(t, err)
	assert.Len(t, ms, 2)
}
