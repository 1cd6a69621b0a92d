package webhook_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// TestChaosMemory is the reliability proof on the memory store: changes
// published from 8 goroutines while the receiver misbehaves for 30% of
// requests; after the faults stop, every matching change has arrived at
// every matching webhook, once after de-duplication, in per-key order,
// signed, with nothing stuck or dead, every duplicate explained, and no
// connection to the addresses the guard refuses. It runs 20,000 changes
// over 2,000 keys (5,000 over 500 with -race, 2,000 over 200 with
// -short): under the race detector the full run takes most of its
// three minutes on a quiet machine, and more beside other packages'
// tests.
func TestChaosMemory(t *testing.T) {
	cfg := webhooktest.ChaosConfig{Seed: 20261127}
	switch {
	case testing.Short():
		cfg.Changes, cfg.Keys = 2000, 200
	case underRace:
		cfg.Changes, cfg.Keys = 5000, 500
	}
	rep := webhooktest.RunChaos(t, memory.New(), cfg)
	t.Log(rep)
	assert.Empty(t, rep.Failures())
	assert.Len(t, rep.Traps, 2, "both traps were set")
	for _, f := range []string{"500", "503", "429", "slow-body", "hang", "reset", "bad-status"} {
		assert.Positive(t, rep.Faults[f], "the receiver answered %s", f)
	}
}
