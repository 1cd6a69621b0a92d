package postgres_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// setup returns a pool, a migrated store in a fresh schema, and a
// dispatcher on it with one webhook on table "employee".
func setup(t *testing.T) (*pgxpool.Pool, *postgres.Store, *webhook.Dispatcher) {
	t.Helper()
	pool := postgrestest.Pool(t, 8)
	s := postgrestest.NewStore(t, pool)
	d, err := webhook.New(webhook.Config{Store: s, Clock: webhooktest.NewClock(webhooktest.Epoch), AllowPrivateNetworks: true})
	require.NoError(t, err)
	_, err = d.Register(t.Context(), webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: "http://127.0.0.1:9/hook"})
	require.NoError(t, err)
	return pool, s, d
}

func change(id, key string) webhook.Change {
	return webhook.Change{ID: id, Table: "employee", Op: webhook.Update, Key: key,
		Old: map[string]any{"dept": "A"}, New: map[string]any{"dept": "B"}}
}

func count(t *testing.T, d *webhook.Dispatcher) int {
	t.Helper()
	ds, err := d.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	return len(ds)
}

func TestPublishTxRollbackLeavesNothing(t *testing.T) {
	t.Parallel()
	pool, s, d := setup(t)
	tx, err := pool.Begin(t.Context())
	require.NoError(t, err)
	_, err = d.PublishTx(t.Context(), postgres.Tx(tx), change("c1", "E1"))
	require.NoError(t, err)
	_, err = d.PublishManyTx(t.Context(), postgres.Tx(tx), []webhook.Change{change("c2", "E1"), change("c3", "E2")})
	require.NoError(t, err)
	assert.Equal(t, 0, count(t, d), "nothing is visible before commit")
	require.NoError(t, tx.Rollback(t.Context()))
	assert.Equal(t, 0, count(t, d), "a rollback leaves nothing")
	var events int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{s.Schema()}.Sanitize()+`.events`).Scan(&events))
	assert.Zero(t, events)
}

func TestPublishTxCommitAndRepeat(t *testing.T) {
	t.Parallel()
	pool, s, d := setup(t)
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(ctx, `CREATE TEMP TABLE employee (id text PRIMARY KEY, dept text) ON COMMIT DROP`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO employee VALUES ('E1', 'B')`)
	require.NoError(t, err)
	id, err := d.PublishTx(ctx, postgres.Tx(tx), change("c1", "E1"))
	require.NoError(t, err)
	again, err := d.PublishTx(ctx, postgres.Tx(tx), change("c1", "E1"))
	require.NoError(t, err, "the same change again inside the transaction is no error")
	assert.Equal(t, id, again)
	var dept string
	require.NoError(t, tx.QueryRow(ctx, `SELECT dept FROM employee WHERE id = 'E1'`).Scan(&dept), "and does not abort the transaction")
	require.NoError(t, tx.Commit(ctx))
	assert.Equal(t, 1, count(t, d))
	ms, err := s.Claim(ctx, store.Claim{Now: webhooktest.Epoch, Lease: time.Minute, Limit: 10})
	require.NoError(t, err)
	require.Len(t, ms, 1)
	assert.Equal(t, "c1", ms[0].ID)
}

func TestPublishSQLTx(t *testing.T) {
	t.Parallel()
	pool, _, d := setup(t)
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	ctx := t.Context()
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = d.PublishTx(ctx, postgres.SQLTx(tx), change("c1", "E1"))
	require.NoError(t, err)
	_, err = d.PublishManyTx(ctx, postgres.SQLTx(tx), []webhook.Change{change("c2", "E1"), change("c1", "E1")})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	assert.Equal(t, 0, count(t, d))

	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = d.PublishManyTx(ctx, postgres.SQLTx(tx), []webhook.Change{change("c2", "E1"), change("c3", "E1")})
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	assert.Equal(t, 2, count(t, d))
}

func TestForeignTxRefused(t *testing.T) {
	t.Parallel()
	_, s, d := setup(t)
	_, err := d.PublishTx(t.Context(), store.NewTx("sqlite", struct{}{}), change("c1", "E1"))
	assert.ErrorIs(t, err, store.ErrForeignTx)
	_, err = s.EnqueueTx(t.Context(), store.Tx{}, store.Event{ID: "x", Payload: json.RawMessage(`{}`)}, nil)
	assert.ErrorIs(t, err, store.ErrForeignTx)
	_, err = s.EnqueueTx(t.Context(), store.NewTx("postgres", "not a transaction"), store.Event{ID: "x", Payload: json.RawMessage(`{}`)}, nil)
	assert.ErrorIs(t, err, store.ErrForeignTx)
}

// The wake-up is sent inside the caller's transaction, so listeners hear
// it on commit and never on rollback. A raw listener reads payloads in the
// order their transactions committed; a marker sent from another session
// shows that nothing came before it.
func TestNotifyOnCommitOnly(t *testing.T) {
	t.Parallel()
	pool, s, d := setup(t)
	ctx := t.Context()
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `LISTEN herald`)
	require.NoError(t, err)
	// next returns the next payload for this test: its schema or a marker
	// (tests running in parallel notify for their own schemas).
	next := func() string {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for {
			n, err := conn.WaitForNotification(wctx)
			require.NoError(t, err)
			if n.Payload == s.Schema() || strings.HasPrefix(n.Payload, s.Schema()+"/") {
				return strings.TrimPrefix(n.Payload, s.Schema()+"/")
			}
		}
	}
	marker := func(m string) {
		_, err := pool.Exec(ctx, `SELECT pg_notify('herald', $1)`, s.Schema()+"/"+m)
		require.NoError(t, err)
	}

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = d.PublishTx(ctx, postgres.Tx(tx), change("c1", "E1"))
	require.NoError(t, err)
	marker("before-rollback")
	assert.Equal(t, "before-rollback", next(), "nothing is sent before the transaction ends")
	require.NoError(t, tx.Rollback(ctx))
	marker("after-rollback")
	assert.Equal(t, "after-rollback", next(), "a rollback sends nothing")

	tx, err = pool.Begin(ctx)
	require.NoError(t, err)
	_, err = d.PublishTx(ctx, postgres.Tx(tx), change("c2", "E1"))
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	assert.Equal(t, s.Schema(), next(), "a commit sends the store's schema")
}
