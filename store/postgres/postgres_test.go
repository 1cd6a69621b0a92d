package postgres_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/heraldhr/herald/internal/chaoscrash"
	"github.com/heraldhr/herald/internal/crashtest"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/store/storetest"
)

func TestMain(m *testing.M) {
	crashtest.Child(openCrashStore) // returns at once unless this is a crash test's child
	chaoscrash.Child(openCrashStore)
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	pool := postgrestest.Pool(t, 0)
	storetest.Run(t, func(t *testing.T) store.Store { return postgrestest.NewStore(t, pool) },
		storetest.Shared(func(t *testing.T, s store.Store) store.Store {
			return postgrestest.StoreIn(t, pool, s.(*postgres.Store).Schema())
		}))
}
