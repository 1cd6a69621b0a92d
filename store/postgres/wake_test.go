package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
)

// TestOwnWakeupsWakeOthersOnly: the wake-up a store sends after its own
// enqueue reaches LISTEN as a payload that wakes the subscribers of every
// other store on the schema (another process) but not its own (its caller
// knows it queued work); the schema alone, as a caller's transaction
// notifies, wakes both; another schema's payloads wake neither.
func TestOwnWakeupsWakeOthersOnly(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 4)
	a := postgrestest.NewStore(t, pool)
	b := postgrestest.StoreIn(t, pool, a.Schema())
	ctx := t.Context()
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `LISTEN herald`)
	require.NoError(t, err)

	e, ds := newEvent(1)
	made, err := a.Enqueue(ctx, e, ds)
	require.NoError(t, err)
	require.True(t, made)
	var payload string
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for { // tests running in parallel notify for their own schemas
		n, err := conn.WaitForNotification(wctx)
		require.NoError(t, err, "the enqueue's wake-up was sent")
		if strings.HasPrefix(n.Payload, a.Schema()) {
			payload = n.Payload
			break
		}
	}
	assert.Equal(t, a.WakeTag(), payload)
	assert.False(t, a.Wakes(payload), "a store's own wake-up does not wake its subscribers")
	assert.True(t, b.Wakes(payload), "another store on the schema is woken")
	assert.NotEqual(t, a.WakeTag(), b.WakeTag())

	for _, s := range []interface{ Wakes(string) bool }{a, b} {
		assert.True(t, s.Wakes(a.Schema()), "a caller's transaction notifies with the schema")
		assert.False(t, s.Wakes(a.Schema()+"x"))
		assert.False(t, s.Wakes("other"))
		assert.False(t, s.Wakes(a.Schema()+"\n"), "a tag is never empty")
	}

	// And b's subscription is woken by a's enqueues in earnest.
	sub, err := b.Subscribe(ctx)
	require.NoError(t, err)
	e, ds = newEvent(2)
	_, err = a.EnqueueMany(ctx, []store.EventWithDeliveries{{Event: e, Deliveries: ds}})
	require.NoError(t, err)
	select {
	case <-sub:
	case <-wctx.Done():
		t.Fatal("another store's subscriber was not woken")
	}
}
