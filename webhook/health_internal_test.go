package webhook

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/heraldhr/herald/store"
)

// TestReleaseSlotTakesParkedInOrder: each slot released goes to the
// first parked message, in the order they were parked, while more are
// parked behind them; the place a taken message held keeps nothing alive.
func TestReleaseSlotTakesParkedInOrder(t *testing.T) {
	t.Parallel()
	g := &gate{inflight: 1}
	park := func(id string) { g.park = append(g.park, parked{m: store.Message{ID: id}}) }
	park("a")
	park("b")
	var got []string
	for i, next := range []string{"c", "d", "", ""} {
		backing := g.park[:cap(g.park)] // the array from the first parked on
		h := &hand{}
		g.releaseSlot(h, false)
		if !assert.NotNil(t, h.next, "release %d", i) {
			return
		}
		got = append(got, h.next.m.ID)
		for _, p := range backing {
			assert.NotEqual(t, h.next.m.ID, p.m.ID, "the park's array still holds %s", h.next.m.ID)
		}
		if next != "" {
			park(next)
		}
	}
	assert.Equal(t, []string{"a", "b", "c", "d"}, got)
	assert.Empty(t, g.park)
	h := &hand{}
	g.releaseSlot(h, false)
	assert.Nil(t, h.next)
	assert.Equal(t, 0, g.inflight, "with none parked the slot goes back")
}
