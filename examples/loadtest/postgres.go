package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
)

// postgresURLEnv names the server the postgres scenario runs against, the
// same variable the tests read.
const postgresURLEnv = "HERALD_TEST_POSTGRES_URL"

func init() { stores["postgres"] = openPostgres }

// openPostgres migrates a fresh schema, dropped again when the scenario
// ends, on the server HERALD_TEST_POSTGRES_URL names; without it the
// scenario is skipped.
func openPostgres(ctx context.Context) (store.Store, func(), error) {
	url := os.Getenv(postgresURLEnv)
	if url == "" {
		return nil, nil, fmt.Errorf("%w: set %s", errSkipStore, postgresURLEnv)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, nil, err
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "herald_loadtest_" + hex.EncodeToString(b)
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = pool.Exec(dctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		pool.Close()
	}
	s, err := postgres.New(pool, postgres.Options{Schema: schema})
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		drop()
		return nil, nil, err
	}
	return s, drop, nil
}
