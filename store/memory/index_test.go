package memory

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRowIndexClashes: ids whose hashes collide are found, refused when
// taken and removed in any order.
func TestRowIndexClashes(t *testing.T) {
	t.Parallel()
	x := newIndex(rowID)
	x.hash = func(id string) uint64 { return uint64(len(id)) } // every id of a length clashes
	var rows []*row
	for _, id := range []string{"a1", "a2", "a3", "bbb", "c"} {
		r := &row{id: id}
		require.True(t, x.add(r), id)
		rows = append(rows, r)
	}
	assert.False(t, x.add(&row{id: "a2"}), "taken")
	assert.False(t, x.add(&row{id: "a1"}), "taken")
	for _, order := range [][]int{{0, 1, 2}, {1, 0, 2}, {2, 1, 0}} {
		for _, i := range order {
			r, ok := x.get(rows[i].id)
			require.True(t, ok)
			assert.Same(t, rows[i], r)
		}
		for n, i := range order {
			x.remove(rows[i])
			_, ok := x.get(rows[i].id)
			assert.False(t, ok, "%s removed", rows[i].id)
			for _, j := range order[n+1:] {
				r, ok := x.get(rows[j].id)
				assert.True(t, ok && r == rows[j], "%s still there after %s left", rows[j].id, rows[i].id)
			}
		}
		for _, i := range order {
			require.True(t, x.add(rows[i]))
		}
	}
	_, ok := x.get("zz")
	assert.False(t, ok)
	x.remove(&row{id: "a1"}) // another row of a taken id: nothing happens
	r, ok := x.get("a1")
	assert.True(t, ok && r == rows[0])
	var ids []string
	for r := range x.values() {
		ids = append(ids, r.id)
	}
	assert.ElementsMatch(t, []string{"a1", "a2", "a3", "bbb", "c"}, ids)
}
