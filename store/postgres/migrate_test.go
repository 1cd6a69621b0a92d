package postgres_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
)

func TestMigrateUpDownInAnAwkwardSchema(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 8)
	schema := postgrestest.Schema(t, pool) + ` "Prod"; drop`
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	s, err := postgres.New(pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	ctx := t.Context()

	applied, err := s.Applied(ctx)
	require.NoError(t, err)
	assert.Empty(t, applied, "nothing applied before the first Migrate")

	// Several processes starting at once all migrate; they take turns.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Migrate(ctx) }()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	applied, err = s.Applied(ctx)
	require.NoError(t, err)
	known := postgres.Migrations()
	require.Len(t, applied, len(known))
	assert.Equal(t, known[len(known)-1].Version, applied[len(applied)-1].Version)
	assert.Equal(t, "init", applied[0].Name)

	created, err := s.Enqueue(ctx, store.Event{ID: "e1", Table: "employee", Op: "INSERT", Key: "E1", Time: time.Now(), Payload: json.RawMessage(`{"a":1}`)}, nil)
	require.NoError(t, err)
	assert.True(t, created, "the store works in a schema whose name needs quoting")

	require.NoError(t, s.MigrateTo(ctx, 0))
	applied, err = s.Applied(ctx)
	require.NoError(t, err)
	assert.Empty(t, applied)
	var tables int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, schema).Scan(&tables))
	assert.Equal(t, 1, tables, "only the migration record is left")

	require.NoError(t, s.Migrate(ctx), "down then up again")
	_, err = s.WebhooksVersion(ctx)
	require.NoError(t, err)
	assert.Error(t, s.MigrateTo(ctx, len(known)+1))
}

func TestNewValidates(t *testing.T) {
	_, err := postgres.New(nil, postgres.Options{})
	assert.Error(t, err)
}

// TestMigrateDownKeepsRecordsInOrder brings a schema with work in flight
// back to migration 3, before claims took records' next deliveries
// straight from the new ones: its claims mark heads by phase alone and
// expect every record with a waiting line to have a head. It checks the
// states the way down leaves.
func TestMigrateDownKeepsRecordsInOrder(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 4)
	s := postgrestest.NewStore(t, pool)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	_, err := s.SaveWebhook(ctx, store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	var ids []string
	publish := func(key string) {
		id := uuid.NewString()
		ids = append(ids, id)
		created, err := s.Enqueue(ctx, store.Event{ID: id, Table: "employee", Op: "UPDATE", Key: key, Time: t0, Payload: json.RawMessage(`{}`)},
			[]store.Delivery{{ID: id, WebhookID: "wh", NextAttempt: t0, CreatedAt: t0}})
		require.NoError(t, err)
		require.True(t, created)
	}
	publish("A") // 0: leased below, so in flight while still new
	publish("A") // 1: new behind it
	ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 1})
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, ids[0], ms[0].Deliveries[0].ID)
	publish("B") // 2: new, then made to wait with no head (see below)
	publish("B") // 3: new
	q := func(sql string, args ...any) { t.Helper(); postgrestest.Exec(t, pool, s, sql, args...) }
	// A record whose earliest pending delivery is new while later ones
	// wait: what promotion leaves when a late commit comes before the line.
	q(`UPDATE {schema}.deliveries SET phase = 2 WHERE id = $1`, ids[3])

	require.NoError(t, s.MigrateTo(ctx, 3))
	phase := func(id string) *int {
		var p *int
		require.NoError(t, pool.QueryRow(ctx, strings.ReplaceAll(`SELECT phase FROM {schema}.deliveries WHERE id = $1`,
			"{schema}", pgx.Identifier{s.Schema()}.Sanitize()), id).Scan(&p))
		return p
	}
	assert.Equal(t, 1, *phase(ids[0]), "the delivery in flight is its record's head")
	assert.Equal(t, 0, *phase(ids[1]), "the new one behind it is filed later")
	assert.Equal(t, 0, *phase(ids[2]))
	assert.Equal(t, 1, *phase(ids[3]), "a waiting line gets a head")

	require.NoError(t, s.Migrate(ctx), "and up again")
	ms, err = s.Claim(ctx, store.Claim{Now: t0.Add(time.Hour), Lease: time.Minute, Limit: 10})
	require.NoError(t, err)
	got := map[string]bool{}
	for _, m := range ms {
		got[m.Deliveries[0].ID] = true
	}
	assert.Equal(t, map[string]bool{ids[0]: true, ids[3]: true}, got, "each record sends its head, the expired lease's again")
}
