package memory

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/heraldhr/herald/store"
)

func TestStampRoundTrips(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.FixedZone("CET", 3600))
	assert.True(t, toStamp(at).Time().Equal(at))
	assert.Equal(t, time.UTC, toStamp(at).Time().Location())
	assert.True(t, toStamp(time.Time{}).Time().IsZero(), "the zero time stays zero")
	assert.Equal(t, 1677, toStamp(time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)).Time().Year(), "clamped, not wrapped")
	assert.Equal(t, 2262, toStamp(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)).Time().Year())
	assert.True(t, toStamp(at).after(toStamp(at.Add(-time.Nanosecond))))
}

func TestStatusRoundTrips(t *testing.T) {
	t.Parallel()
	for _, s := range []store.Status{store.Pending, store.Delivered, store.Dead, store.Skipped, store.Canceled} {
		st, ok := statusOf(s)
		assert.True(t, ok)
		assert.Equal(t, s, st.String())
	}
	_, ok := statusOf("lost")
	assert.False(t, ok)
}
