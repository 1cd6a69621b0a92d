package postgres_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/heraldhr/herald/internal/chaoscrash"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// TestChaosCrash runs the chaos workload through dispatcher processes on
// one Postgres schema, killed with SIGKILL at seeded moments while the
// receiver misbehaves (see internal/chaoscrash): after the last restart
// nothing is lost or out of order, and every duplicate was in flight at a
// kill or cut short by the sender's timeout. It runs 5,000 changes
// through 12 kills (1,000 through 4 with -short); HERALD_CHAOS_FULL=1
// runs 20,000 through 20.
func TestChaosCrash(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 2)
	cfg := chaoscrash.Config{Open: openCrashStore, Addr: postgrestest.Schema(t, pool) + " " + postgrestest.URL(t), Kills: 12,
		Chaos: webhooktest.ChaosConfig{Seed: 20261127, Changes: 5000, Keys: 500}}
	switch {
	case os.Getenv("HERALD_CHAOS_FULL") == "1":
		cfg.Chaos.Changes, cfg.Chaos.Keys, cfg.Kills, cfg.Budget = 20000, 2000, 20, 15*time.Minute
	case testing.Short():
		cfg.Chaos.Changes, cfg.Chaos.Keys, cfg.Kills = 1000, 100, 4
	}
	rep := chaoscrash.Run(t, cfg)
	t.Log(rep)
	assert.Empty(t, rep.Failures())
}
