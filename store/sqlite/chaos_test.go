package sqlite_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store/sqlite"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// TestChaos is the reliability proof on SQLite: changes published from 8
// goroutines while the receiver misbehaves for 30% of requests; after the
// faults stop, every matching change has reached every matching webhook,
// once after de-duplication, in per-key order, signed, with nothing stuck
// or dead, every duplicate explained, and no connection to an address the
// guard refuses. It runs 10,000 changes over 1,000 keys (1,000 over 100
// with -short or -race, 320 over 32 with both); HERALD_CHAOS_FULL=1 runs
// the full 20,000 over 2,000.
func TestChaos(t *testing.T) {
	t.Parallel()
	cfg := webhooktest.ChaosConfig{Seed: 20261127, Changes: 10000, Keys: 1000}
	switch {
	case os.Getenv("HERALD_CHAOS_FULL") == "1":
		cfg.Changes, cfg.Keys = 20000, 2000
	case testing.Short() && underRace:
		cfg.Changes, cfg.Keys = 320, 32
	case testing.Short() || underRace:
		cfg.Changes, cfg.Keys = 1000, 100
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "herald.db"), sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	rep := webhooktest.RunChaos(t, st, cfg)
	t.Log(rep)
	assert.Empty(t, rep.Failures())
	assert.Len(t, rep.Traps, 2, "both trap webhooks were set")
	assert.Equal(t, rep.Duplicates, rep.DuplicateCauses[webhooktest.CauseSlowBody]+rep.DuplicateCauses[webhooktest.CauseLate]+
		rep.DuplicateCauses[webhooktest.CauseLease],
		"duplicates come from slow bodies, late answers and leases that ran out only")
}
