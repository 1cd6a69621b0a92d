package postgres_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// TestFastPickLeavesLinesItCannotDecide runs the statement a claim tries
// first on records of every shape: it leases a record's only new delivery
// and a replay, and leaves to the full claim (counting them) the due
// deliveries of records with several new ones, with a head, or of a
// webhook that batches. A claim then sends exactly what the full claim
// alone would: one delivery per record, the earliest.
func TestFastPickLeavesLinesItCannotDecide(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 4)
	s := postgrestest.NewStore(t, pool)
	ctx := t.Context()
	t0 := webhooktest.Epoch
	q := func(sql string, args ...any) { t.Helper(); postgrestest.Exec(t, pool, s, sql, args...) }
	// id, key, phase, max_batch, leased until (zero: not leased)
	rows := []struct {
		id, key     string
		phase, max  int
		leasedUntil time.Time
	}{
		{"a1", "A", 0, 0, time.Time{}},          // alone: leased here
		{"b1", "B", 0, 0, time.Time{}},          // two new ones: undecided
		{"b2", "B", 0, 0, time.Time{}},          //
		{"c1", "C", 1, 0, time.Time{}},          // a head due again: undecided
		{"c2", "C", 0, 0, time.Time{}},          // new behind it: undecided
		{"d1", "D", 3, 0, time.Time{}},          // a replay: leased here
		{"e1", "E", 0, 5, time.Time{}},          // a batching webhook's: undecided
		{"f0", "F", 0, 0, t0.Add(time.Hour)},    // a head under lease: not due
		{"f1", "F", 0, 0, time.Time{}},          // new behind it: undecided
		{"g1", "G", 0, 0, t0.Add(-time.Second)}, // its lease ran out, alone: leased here
	}
	for _, r := range rows {
		q(`INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload) VALUES ('', $1, 'employee', 'UPDATE', $2, $3, '{}')`,
			r.id, r.key, t0)
		var until any
		if !r.leasedUntil.IsZero() {
			until = r.leasedUntil
		}
		q(`INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, max_batch, next_attempt, created_at, updated_at,
		                                   phase, replayed, lease, lease_until)
		   VALUES ($1, 'wh', '', $2, $1, $3, $4, $4, $4, $5::smallint, $5::smallint = 3, CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE gen_random_uuid() END, $6)`,
			r.id, r.key, r.max, t0, r.phase, until)
	}

	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	got, err := pgx.CollectRows(must(tx.Query(ctx, s.PickFastSQL(), t0, 100, 100, []int64{}, t0.Add(time.Minute))),
		func(r pgx.CollectableRow) ([2]any, error) {
			vals, err := r.Values()
			if err != nil {
				return [2]any{}, err
			}
			return [2]any{vals[5], vals[2]}, nil // delivery id, undecided
		})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	var leased []string
	for _, g := range got {
		assert.EqualValues(t, 6, g[1], "due deliveries left to the full claim: b1 b2 c1 c2 e1 f1")
		if id := g[0].(string); id != "" {
			leased = append(leased, id)
		}
	}
	slices.Sort(leased)
	assert.Equal(t, []string{"a1", "d1", "g1"}, leased)

	// Through Claim, both statements together: one per record, earliest
	// first, the batching webhook's as a batch of one.
	ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 100})
	require.NoError(t, err)
	var sent []string
	for _, m := range ms {
		for _, d := range m.Deliveries {
			sent = append(sent, d.ID)
		}
	}
	slices.Sort(sent)
	assert.Equal(t, []string{"a1", "b1", "c1", "d1", "e1", "g1"}, sent)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestFastPickSkipsHeadLookupsWithoutHeads checks that while no record
// has a head (every delivery so far succeeded), the small claim statement
// looks for heads once, not once per due delivery.
func TestFastPickSkipsHeadLookupsWithoutHeads(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 2)
	s := postgrestest.NewStore(t, pool)
	ctx := t.Context()
	t0 := webhooktest.Epoch
	for _, sql := range []string{
		`INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload)
		 SELECT '', 'e' || g, 'employee', 'UPDATE', 'K' || g, $1, '{}' FROM generate_series(1, 20) g`,
		`INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, next_attempt, created_at, updated_at)
		 SELECT 'd' || g, 'wh', '', 'K' || g, 'e' || g, $1, $1, $1 FROM generate_series(1, 20) g`,
	} {
		postgrestest.Exec(t, pool, s, sql, t0)
	}
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	lines, err := pgx.CollectRows(must(tx.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF) "+s.PickFastSQL(), t0, 100, 100, []int64{}, t0.Add(time.Minute))),
		pgx.RowTo[string])
	require.NoError(t, err)
	plan := strings.Join(lines, "\n")
	var probes []string
	for _, l := range lines {
		if strings.Contains(l, "deliveries_head") {
			probes = append(probes, strings.TrimSpace(l))
		}
	}
	require.Len(t, probes, 2, plan)
	assert.Contains(t, probes[0]+probes[1], "loops=1)", "the one look for any head\n%s", plan)
	assert.Contains(t, probes[0]+probes[1], "never executed", "the lookups by record\n%s", plan)
}
