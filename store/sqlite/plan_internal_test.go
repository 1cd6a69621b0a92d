package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClaimQueriesUseTheReadyIndex checks that the claim's queries find
// due heads through herald_deliveries_ready, and that the index holds no
// lease: taking one must not move index entries (migration 4).
func TestClaimQueriesUseTheReadyIndex(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"), Options{})
	require.NoError(t, err)
	defer s.Close()

	rows, err := s.r.QueryContext(ctx, `SELECT name FROM pragma_index_info('herald_deliveries_ready') ORDER BY seqno`)
	require.NoError(t, err)
	var cols []string
	for rows.Next() {
		var c string
		require.NoError(t, rows.Scan(&c))
		cols = append(cols, c)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	assert.Equal(t, []string{"webhook_id", "next_attempt", "seq"}, cols)

	for name, q := range map[string]string{"readyWebhooks": readyWebhooks, "dueHeads": dueHeads} {
		rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, "wh", 0)
		require.NoError(t, err, name)
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail), name)
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Err(), name)
		rows.Close()
		assert.Contains(t, strings.Join(plan, "\n"), "herald_deliveries_ready", name)
	}
}
