package webhook_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/store/sqlite"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

const day = 24 * time.Hour

// eachStore runs fn once per store that implements retention and erasure.
func eachStore(t *testing.T, fn func(t *testing.T, s store.Store)) {
	for name, open := range map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return memory.New() },
		"sqlite": func(t *testing.T) store.Store {
			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "herald.db"), sqlite.Options{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		"postgres": func(t *testing.T) store.Store { // skipped unless HERALD_TEST_POSTGRES_URL is set
			return postgrestest.NewStore(t, postgrestest.Pool(t, 4))
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
}

func TestPurgeForgetsOldDeliveriesButRemembersChangeIDs(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		k, rcv := setup(t, webhook.Config{Store: s})
		register(t, k, rcv, webhook.Webhook{})
		c := update("E1", nil, map[string]any{"grade": 5})
		c.ID = "change-1"
		_, err := k.Publish(t.Context(), c)
		require.NoError(t, err)
		require.Equal(t, 1, k.Drain(t))

		k.Clock.Advance(webhook.DefaultKeepDelivered - time.Second)
		r, err := k.Purge(t.Context())
		require.NoError(t, err)
		assert.Zero(t, r.Deliveries, "kept for 7 days by default")

		k.Clock.Advance(2 * time.Second)
		r, err = k.Purge(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, r.Deliveries)
		ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: "change-1"})
		require.NoError(t, err)
		assert.Empty(t, ds)
		_, err = k.Publish(t.Context(), c)
		require.NoError(t, err)
		assert.Zero(t, k.Drain(t), "the change id is remembered after its deliveries are gone")

		k.Clock.Set(webhooktest.Epoch.Add(webhook.DefaultKeepEvents + time.Second))
		r, err = k.Purge(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, r.Events)
		_, err = k.Publish(t.Context(), c)
		require.NoError(t, err)
		assert.Equal(t, 1, k.Drain(t), "past the idempotency window the same id is a new change")
		assert.Len(t, rcv.Delivered(), 2)
	})
}

func TestRetentionAgesAndKeepForever(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		k, rcv := setup(t, webhook.Config{Store: s, Retry: webhook.RetryPolicy{MaxAttempts: 1},
			Retention: webhook.Retention{Delivered: webhook.KeepForever, Dead: 2 * day, Disabled: true}})
		register(t, k, rcv, webhook.Webhook{})
		rcv.Fail(1, http.StatusInternalServerError)
		for _, key := range []string{"E1", "E2"} {
			_, err := k.Publish(t.Context(), update(key, nil, map[string]any{"grade": 5}))
			require.NoError(t, err)
		}
		require.Equal(t, 2, k.Drain(t))
		dead, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{Status: webhook.Dead})
		require.NoError(t, err)
		require.Len(t, dead, 1)

		k.Clock.Advance(400 * day)
		r, err := k.Purge(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, r.Deliveries, "the dead one goes after its 2 days; the delivered one is kept forever")
		left, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
		require.NoError(t, err)
		require.Len(t, left, 1)
		assert.Equal(t, webhook.Delivered, left[0].Status)
	})
}

// logWatch is a slog handler that hands the records with a given message
// to a channel.
type logWatch struct {
	msg string
	ch  chan slog.Record
}

func (h logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h logWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- r:
		default:
		}
	}
	return nil
}
func (h logWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logWatch) WithGroup(string) slog.Handler      { return h }

func TestWorkersPurgePeriodically(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		purged := make(chan slog.Record, 16)
		k, rcv := setup(t, webhook.Config{Store: s, Retention: webhook.Retention{Interval: 10 * time.Millisecond},
			Logger: slog.New(logWatch{msg: "herald: purged finished work", ch: purged})})
		register(t, k, rcv, webhook.Webhook{})
		_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"grade": 5}))
		require.NoError(t, err)
		require.Equal(t, 1, k.Drain(t))
		k.Clock.Advance(8 * day)

		require.NoError(t, k.Start(t.Context()))
		deliveries := func(r slog.Record) (n int64) {
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "deliveries" {
					n = a.Value.Int64()
				}
				return true
			})
			return n
		}
		for _, want := range []int64{1, 0} { // the purge at Start, then one an interval later
			select {
			case r := <-purged:
				assert.Equal(t, want, deliveries(r))
			case <-time.After(5 * time.Second):
				t.Fatal("the workers did not purge")
			}
		}
		require.NoError(t, k.Shutdown(t.Context()))
	})
}

func TestEraseCancelsPendingAndErasesPayloads(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, s store.Store) {
		k, rcv := setup(t, webhook.Config{Store: s})
		register(t, k, rcv, webhook.Webhook{})
		rcv.Respond(func(r webhooktest.Request) webhooktest.Answer {
			if key, _ := keyOf(t, r); key == "E1" {
				return webhooktest.Answer{Status: http.StatusServiceUnavailable, Body: "no E1 today"}
			}
			return webhooktest.Answer{Status: http.StatusOK}
		})
		_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"salary": 5100}))
		require.NoError(t, err)
		_, err = k.Publish(t.Context(), update("E1", nil, map[string]any{"salary": 5200}))
		require.NoError(t, err)
		_, err = k.Publish(t.Context(), update("E2", nil, map[string]any{"salary": 4000}))
		require.NoError(t, err)
		require.Equal(t, 2, k.Drain(t), "E1's first change fails and holds its second back; E2 goes")

		r, err := k.Erase(t.Context(), webhook.Erasure{Table: "employee", Key: "E1"})
		require.NoError(t, err)
		assert.Equal(t, webhook.ErasureResult{Events: 2, Attempts: 1, Canceled: 2}, r)

		before := len(rcv.Requests())
		k.Settle(t, 5)
		assert.Len(t, rcv.Requests(), before, "nothing of the erased record leaves after Erase, not even a retry")
		ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{Key: "E1"})
		require.NoError(t, err)
		require.Len(t, ds, 2)
		for _, d := range ds {
			assert.Equal(t, webhook.Canceled, d.Status)
			assert.ErrorIs(t, k.Replay(t.Context(), d.ID), webhook.ErrPayloadGone)
		}
		as, err := k.Attempts(t.Context(), ds[0].ID)
		require.NoError(t, err)
		require.Len(t, as, 1)
		assert.Empty(t, as[0].ResponseBody)
		assert.Equal(t, http.StatusServiceUnavailable, as[0].StatusCode, "the log keeps what happened")

		_, err = k.Publish(t.Context(), update("E1", nil, map[string]any{"salary": 5300}))
		require.NoError(t, err)
		rcv.Respond(nil)
		assert.Equal(t, 1, k.Drain(t), "a change published after the erasure is delivered")

		_, err = k.Erase(t.Context(), webhook.Erasure{})
		assert.Error(t, err, "an erasure must select something")
	})
}

func TestPurgeAndEraseNeedTheCapability(t *testing.T) {
	t.Parallel()
	k := webhooktest.NewDispatcher(t, webhook.Config{Store: bareStore{memory.New()}})
	_, err := k.Purge(t.Context())
	assert.True(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
	_, err = k.Erase(t.Context(), webhook.Erasure{Tenant: "acme"})
	assert.True(t, errors.Is(err, errors.ErrUnsupported), "%v", err)
	require.NoError(t, k.Start(t.Context()), "workers start without retention")
	require.NoError(t, k.Shutdown(t.Context()))
}

func TestRetentionConfigIsChecked(t *testing.T) {
	t.Parallel()
	for _, r := range []webhook.Retention{{Interval: -time.Second}, {BatchSize: -1}} {
		_, err := webhook.New(webhook.Config{Store: memory.New(), Retention: r})
		assert.Error(t, err, "%+v", r)
	}
}
