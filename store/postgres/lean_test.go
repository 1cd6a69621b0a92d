package postgres_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
)

// TestLeaseKeepsRowsOnTheirPages claims a busy page's worth of new
// deliveries at once and checks that each leased row's new version stayed
// on its page: the lease is a HOT update, which writes no index entry. A
// page with too little room left moves the new version to another page
// and indexes it anew; before migration 5 about half of such a claim did.
func TestLeaseKeepsRowsOnTheirPages(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 4)
	s := postgrestest.NewStore(t, pool)
	ctx := t.Context()
	const n = 100
	var es []store.EventWithDeliveries
	for i := range n {
		e, ds := newEvent(i)
		es = append(es, store.EventWithDeliveries{Event: e, Deliveries: ds})
	}
	_, err := s.EnqueueMany(ctx, es)
	require.NoError(t, err)

	pages := func() map[int64]string {
		rows, err := pool.Query(ctx, `SELECT seq, (ctid::text::point)[0]::text FROM `+
			pgx.Identifier{s.Schema(), "deliveries"}.Sanitize())
		require.NoError(t, err)
		out := map[int64]string{}
		for rows.Next() {
			var seq int64
			var page string
			require.NoError(t, rows.Scan(&seq, &page))
			out[seq] = page
		}
		require.NoError(t, rows.Err())
		return out
	}
	before := pages()
	require.Len(t, before, n)
	assert.Greater(t, len(distinct(before)), 1, "the deliveries fill more than one page")

	ms, err := s.Claim(ctx, store.Claim{Now: time.Now(), Lease: time.Minute, Limit: n})
	require.NoError(t, err)
	require.Len(t, ms, n, "every delivery is its record's first: all are claimed")
	after := pages()
	moved := 0
	for seq, p := range before {
		if after[seq] != p {
			moved++
		}
	}
	assert.Zero(t, moved, "leased rows that left their page (and were indexed again)")
}

func distinct(m map[int64]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}

// TestPurgeDeletesAttemptsWithTheirDeliveries checks that purging a
// finished delivery deletes its attempts too, now that no foreign key
// cascades the delete, and counts them.
func TestPurgeDeletesAttemptsWithTheirDeliveries(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 4)
	s := postgrestest.NewStore(t, pool)
	ctx := t.Context()
	var es []store.EventWithDeliveries
	for i := range 2 {
		e, ds := newEvent(i)
		es = append(es, store.EventWithDeliveries{Event: e, Deliveries: ds})
	}
	_, err := s.EnqueueMany(ctx, es)
	require.NoError(t, err)
	now := time.Now() // after the deliveries' first due time

	// Both deliveries finish, one after a failed attempt.
	ms, err := s.Claim(ctx, store.Claim{Now: now, Lease: time.Minute, Limit: 2})
	require.NoError(t, err)
	require.Len(t, ms, 2)
	attempt := func(m store.Message, code int) *store.Attempt {
		return &store.Attempt{MessageID: m.ID, At: now, StatusCode: code, Latency: time.Millisecond, WebhookVersion: 1}
	}
	require.NoError(t, s.Ack(ctx, []store.Result{
		{MessageID: ms[0].ID, Lease: ms[0].Lease, Outcome: store.OutcomeRetry, Now: now, NextAttempt: now, Attempt: attempt(ms[0], 500)},
		{MessageID: ms[1].ID, Lease: ms[1].Lease, Outcome: store.OutcomeDelivered, Now: now, Attempt: attempt(ms[1], 200)},
	}))
	again, err := s.Claim(ctx, store.Claim{Now: now, Lease: time.Minute, Limit: 2})
	require.NoError(t, err)
	require.Len(t, again, 1)
	require.Equal(t, ms[0].ID, again[0].ID, "the retried delivery is due again")
	require.NoError(t, s.Ack(ctx, []store.Result{{MessageID: again[0].ID, Lease: again[0].Lease, Outcome: store.OutcomeDelivered,
		Now: now, Attempt: attempt(again[0], 200)}}))

	attempts := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{s.Schema(), "attempts"}.Sanitize()).Scan(&n))
		return n
	}
	require.Equal(t, 3, attempts())

	res, err := s.Purge(ctx, store.PurgePolicy{Delivered: time.Nanosecond, Dead: time.Nanosecond}, now.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 2, res.Deliveries)
	assert.Equal(t, 3, res.Attempts)
	assert.Zero(t, attempts(), "no attempt outlives its delivery")
}
