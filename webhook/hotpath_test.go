package webhook

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store/memory"
)

func TestNewIDsAreUUIDs(t *testing.T) {
	t.Parallel()
	u := uuid.Must(uuid.NewV7())
	assert.Equal(t, u.String(), string(appendUUID(nil, u)))
	ids := newIDs(3)
	require.Len(t, ids, 3*36)
	seen := map[string]bool{}
	for i := range 3 {
		id := ids[36*i : 36*i+36]
		p, err := uuid.Parse(id)
		require.NoError(t, err)
		assert.Equal(t, uuid.Version(7), p.Version())
		assert.Equal(t, p.String(), id)
		seen[id] = true
	}
	assert.Len(t, seen, 3)
}

// TestIdleConnectionsFollowWorkers: the default transport keeps an idle
// connection for every worker, so 128 workers sending to one receiver do
// not redial.
func TestIdleConnectionsFollowWorkers(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{8, 128} {
		d, err := New(Config{Store: memory.New(), Workers: workers})
		require.NoError(t, err)
		tr := d.client.Transport.(*guardedTransport).direct
		assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, workers)
		assert.GreaterOrEqual(t, tr.MaxIdleConns, workers)
	}
}
