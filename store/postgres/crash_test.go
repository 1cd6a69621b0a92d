package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhr/herald/internal/crashtest"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
)

// ownedStore is a Store that closes the pool it was opened with.
type ownedStore struct {
	*postgres.Store
	pool *pgxpool.Pool
}

func (s ownedStore) Close() error {
	s.pool.Close()
	return nil
}

// openCrashStore opens the store at "<schema> <database URL>", migrated.
func openCrashStore(ctx context.Context, addr string) (store.Store, error) {
	schema, url, ok := strings.Cut(addr, " ")
	if !ok {
		return nil, fmt.Errorf("crash store address %q is not \"<schema> <url>\"", addr)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	s, err := postgres.New(pool, postgres.Options{Schema: schema})
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return ownedStore{Store: s, pool: pool}, nil
}

// TestCrashLosesNothing kills dispatcher processes sharing one Postgres
// schema at seeded moments and checks that every change is delivered,
// with duplicates only from requests in flight at the kills (see
// internal/crashtest).
func TestCrashLosesNothing(t *testing.T) {
	pool := postgrestest.Pool(t, 2)
	crashtest.Run(t, crashtest.Config{
		Addr: postgrestest.Schema(t, pool) + " " + postgrestest.URL(t),
		Open: openCrashStore,
	})
}
