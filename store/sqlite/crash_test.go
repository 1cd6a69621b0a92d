package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/heraldhr/herald/internal/crashtest"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/sqlite"
)

// TestCrashLosesNothing kills dispatcher processes sharing one SQLite file
// at seeded moments and checks that every change is delivered, with
// duplicates only from requests in flight at the kills (see crashtest).
func TestCrashLosesNothing(t *testing.T) {
	crashtest.Run(t, crashtest.Config{
		Addr: filepath.Join(t.TempDir(), "herald.db"),
		Open: func(ctx context.Context, path string) (store.Store, error) {
			return sqlite.Open(ctx, path, sqlite.Options{})
		},
	})
}
