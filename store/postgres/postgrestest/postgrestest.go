// Package postgrestest gives tests a PostgreSQL database for herald: the
// server named by HERALD_TEST_POSTGRES_URL, a pool to it, and a fresh
// schema per test that is dropped when the test ends.
//
// # Running
//
// Without HERALD_TEST_POSTGRES_URL the tests that need the server skip,
// saying so; with HERALD_TEST_POSTGRES_REQUIRED=1 (as in CI) they fail
// instead, so a missing server never passes silently:
//
//	HERALD_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable go test ./...
package postgrestest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhr/herald/store/postgres"
)

// Environment variables the package reads.
const (
	EnvURL      = "HERALD_TEST_POSTGRES_URL"
	EnvRequired = "HERALD_TEST_POSTGRES_REQUIRED"
)

// URL returns the test server's URL. When none is set it skips t, or
// fails it when EnvRequired is "1".
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv(EnvRequired) == "1" {
			t.Fatalf("%s is not set but %s=1: this run needs PostgreSQL", EnvURL, EnvRequired)
		}
		t.Skipf("PostgreSQL tests skipped: set %s (for example postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", EnvURL)
	}
	return u
}

// Pool returns a pool to the test server with up to maxConns connections
// (0: 16), closed when t ends.
func Pool(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(URL(t))
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	if maxConns == 0 {
		maxConns = 16
	}
	cfg.MaxConns = maxConns
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		t.Fatalf("connecting to %s: %v", EnvURL, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Schema returns a new, random schema name (not yet created) and drops
// that schema, with everything in it, when t ends.
func Schema(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "herald_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping test schema %s: %v", name, err)
		}
	})
	return name
}

// NewStore returns a migrated store in a fresh schema of pool.
func NewStore(t testing.TB, pool *pgxpool.Pool) *postgres.Store {
	t.Helper()
	return StoreIn(t, pool, Schema(t, pool))
}

// StoreIn returns a migrated store in schema, which may already exist (a
// second store on the same schema behaves like another process).
func StoreIn(t testing.TB, pool *pgxpool.Pool, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.New(pool, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrating schema %s: %v", schema, err)
	}
	return s
}

// Exec runs sql on pool with {schema} standing for s's schema, quoted,
// and fails t if it fails: for tests that set up rows or states the
// store's own calls do not make.
func Exec(t testing.TB, pool *pgxpool.Pool, s *postgres.Store, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pool.Exec(ctx, strings.ReplaceAll(sql, "{schema}", pgx.Identifier{s.Schema()}.Sanitize()), args...); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
}
