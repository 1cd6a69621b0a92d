package postgres_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

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
