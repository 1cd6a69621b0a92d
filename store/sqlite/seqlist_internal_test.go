package sqlite

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSeqListIsJSON checks that seqList writes what json.Marshal would.
func TestSeqListIsJSON(t *testing.T) {
	t.Parallel()
	for _, seqs := range [][]int64{nil, {}, {7}, {1, 22, 333}, {-1, 0, math.MaxInt64, math.MinInt64}} {
		want, err := json.Marshal(append([]int64{}, seqs...))
		assert.NoError(t, err)
		assert.Equal(t, string(want), seqList(seqs), "%v", seqs)
	}
}
