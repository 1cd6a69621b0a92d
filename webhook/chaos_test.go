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
// with nothing stuck or dead.
func TestChaosMemory(t *testing.T) {
	cfg := webhooktest.ChaosConfig{Seed: 20261127}
	if testing.Short() {
		cfg.Changes, cfg.Keys = 2000, 200
	}
	rep := webhooktest.RunChaos(t, memory.New(), cfg)
	t.Log(rep)
	assert.Positive(t, rep.Expected)
	assert.Equal(t, rep.Expected, rep.Delivered, "every matching change reached every matching webhook")
	assert.Zero(t, rep.Lost, "lost")
	assert.Zero(t, rep.Unexpected, "sent where it should not go")
	assert.Zero(t, rep.OutOfOrder, "out of order")
	assert.Zero(t, rep.Dead, "dead")
	assert.Greater(t, rep.Faults["500"]+rep.Faults["hang"]+rep.Faults["reset"], 0, "the receiver did misbehave")
}
