package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/heraldhr/herald/internal/chaoscrash"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/sqlite"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func openChaos(ctx context.Context, path string) (store.Store, error) {
	return sqlite.Open(ctx, path, sqlite.Options{})
}

// TestChaosCrash runs the chaos workload through dispatcher processes on
// one SQLite file, killed with SIGKILL at seeded moments while the
// receiver misbehaves (see internal/chaoscrash): after the last restart
// nothing is lost or out of order, and every duplicate was in flight at a
// kill or cut short by the sender's timeout. It runs 5,000 changes
// through 12 kills (1,000 through 4 with -short or -race, 320 through 3
// with both); HERALD_CHAOS_FULL=1 runs 20,000 through 20.
func TestChaosCrash(t *testing.T) {
	cfg := chaoscrash.Config{Open: openChaos, Addr: filepath.Join(t.TempDir(), "herald.db"), Kills: 12,
		Chaos: webhooktest.ChaosConfig{Seed: 20261127, Changes: 5000, Keys: 500}}
	switch {
	case os.Getenv("HERALD_CHAOS_FULL") == "1":
		cfg.Chaos.Changes, cfg.Chaos.Keys, cfg.Kills, cfg.Budget = 20000, 2000, 20, 15*time.Minute
	case testing.Short() && underRace:
		cfg.Chaos.Changes, cfg.Chaos.Keys, cfg.Kills = 320, 32, 3
	case testing.Short() || underRace:
		cfg.Chaos.Changes, cfg.Chaos.Keys, cfg.Kills = 1000, 100, 4
	}
	rep := chaoscrash.Run(t, cfg)
	t.Log(rep)
	assert.Empty(t, rep.Failures())
}
