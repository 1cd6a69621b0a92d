package webhook_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
)

// plainStore hides the memory store's bulk enqueue, so PublishMany takes
// its one-by-one path.
type plainStore struct{ store.Store }

func TestPublishMany(t *testing.T) {
	for name, st := range map[string]store.Store{"bulk": memory.New(), "one by one": plainStore{memory.New()}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k, rcv := setup(t, webhook.Config{Store: st})
			register(t, k, rcv, webhook.Webhook{})
			old := update("E1", nil, map[string]any{"n": 0})
			old.ID = "old"
			_, err := k.Publish(t.Context(), old)
			require.NoError(t, err)

			c := func(id, key string, n int) webhook.Change {
				ch := update(key, nil, map[string]any{"n": n})
				ch.ID = id
				return ch
			}
			noMatch := webhook.Change{Table: "attendance", Op: webhook.Insert, Key: "A1", New: map[string]any{"x": 1}}
			ids, err := k.PublishMany(t.Context(), []webhook.Change{c("c1", "E1", 1), noMatch, c("old", "E1", 2), c("", "E1", 3), c("c1", "E1", 4)})
			require.NoError(t, err)
			require.Len(t, ids, 5)
			assert.Equal(t, "c1", ids[0])
			assert.NotEmpty(t, ids[1], "an unmatched change still gets its event id")
			assert.Equal(t, "old", ids[2])
			assert.NotEmpty(t, ids[3], "an empty id is assigned")
			assert.Equal(t, "c1", ids[4])

			ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
			require.NoError(t, err)
			var events []string
			for _, d := range ds {
				events = append(events, d.EventID)
			}
			assert.Equal(t, []string{"old", "c1", ids[3]}, events, "repeated ids create nothing; the rest in order")

			k.Drain(t)
			var ns []float64
			for _, r := range rcv.Delivered() {
				_, d := decode(t, r.Body)
				ns = append(ns, d.New["n"].(float64))
			}
			assert.Equal(t, []float64{0, 1, 3}, ns, "one record's changes arrive in the order given")
		})
	}
}

func TestPublishManyRejectsBadChangeBeforeStoring(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{})
	_, err := k.PublishMany(t.Context(), []webhook.Change{update("E1", nil, map[string]any{"n": 1}), {Table: "employee", Op: webhook.Update}})
	require.ErrorIs(t, err, webhook.ErrInvalidChange)
	assert.Contains(t, err.Error(), "change 1")
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Empty(t, ds, "nothing is stored when one change is invalid")

	ids, err := k.PublishMany(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, ids)
	_, err = k.PublishManyTx(t.Context(), store.NewTx("postgres", struct{}{}), []webhook.Change{update("E1", nil, map[string]any{"n": 1})})
	assert.Error(t, err, "the memory store cannot publish inside a transaction")
}
