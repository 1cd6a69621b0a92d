package webhook

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store/memory"
)

func TestNewIDsAreUUIDs(t *testing.T) {
	t.Parallel()
	u := uuid.Must(uuid.NewV7())
	assert.Equal(t, u.String(), string(appendUUID(nil, u)))
	var src idSource
	before := time.Now()
	var all []string
	for _, n := range []int{3, 1, 40, 2} { // 40: more randomness than the stack buffer holds
		ids := src.newIDs(n)
		require.Len(t, ids, 36*n)
		for i := range n {
			all = append(all, ids[36*i:36*i+36])
		}
	}
	after := time.Now()
	for i, id := range all {
		p, err := uuid.Parse(id)
		require.NoError(t, err)
		assert.Equal(t, uuid.Version(7), p.Version())
		assert.Equal(t, uuid.RFC4122, p.Variant())
		assert.Equal(t, p.String(), id)
		sec, nsec := p.Time().UnixTime()
		at := time.Unix(sec, nsec)
		assert.False(t, at.Before(before.Truncate(time.Millisecond)) || at.After(after.Add(time.Millisecond)), "time %v", at)
		if i > 0 {
			assert.Less(t, all[i-1], id, "ids increase")
		}
	}
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
