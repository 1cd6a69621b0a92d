package postgres_test

import (
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

// TestClaimPlansWithLargeBacklog loads a backlog like an outage leaves
// behind (a webhook whose heads are all retrying an hour from now, each
// with a line of waiting records behind it, and a pile of just-published
// deliveries), then checks that claiming a quiet webhook's due work reads
// the indexes, not the backlog, and logs the plans (go test -v -run Plans).
func TestClaimPlansWithLargeBacklog(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 4)
	s := postgrestest.NewStore(t, pool)
	ctx := t.Context()
	t0 := webhooktest.Epoch
	chains, perChain, fresh := 5000, 10, 5000
	if testing.Short() {
		chains, fresh = 1000, 1000
	}
	q := func(sql string, args ...any) { t.Helper(); postgrestest.Exec(t, pool, s, sql, args...) }
	for _, id := range []string{"busy", "quiet"} {
		_, err := s.SaveWebhook(ctx, store.Webhook{ID: id, Definition: []byte(`{}`)}, t0)
		require.NoError(t, err)
	}
	// Backlog: heads retrying in an hour, waiting records behind them.
	q(`INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload)
	   SELECT '', 'b' || g, 'employee', 'UPDATE', 'K' || (g % $1::int), $2, $4::json
	   FROM generate_series(0, $1::int * $3::int - 1) g`, chains, t0, perChain, `{"pad":"`+strings.Repeat("x", 1000)+`"}`)
	q(`INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, next_attempt, created_at, updated_at, phase)
	   SELECT 'd' || g, 'busy', '', 'K' || (g % $1::int), 'b' || g,
	          CASE WHEN g < $1::int THEN $2::timestamptz + interval '1 hour' ELSE $2 END, $2, $2,
	          CASE WHEN g < $1::int THEN 1 ELSE 2 END
	   FROM generate_series(0, $1::int * $3::int - 1) g ORDER BY g`, chains, t0, perChain)
	// Just published and not yet filed: more records of the same keys.
	q(`INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload)
	   SELECT '', 'n' || g, 'employee', 'UPDATE', 'K' || (g % $1::int), $2, '{}' FROM generate_series(0, $3::int - 1) g`, chains, t0, fresh)
	q(`INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, next_attempt, created_at, updated_at)
	   SELECT 'n' || g, 'busy', '', 'K' || (g % $1::int), 'n' || g, $2, $2, $2 FROM generate_series(0, $3::int - 1) g ORDER BY g`, chains, t0, fresh)
	// The quiet webhook's due work.
	q(`INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload)
	   SELECT '', 'q' || g, 'employee', 'UPDATE', 'Q' || g, $1, '{}' FROM generate_series(0, 49) g`, t0)
	q(`INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, next_attempt, created_at, updated_at, phase)
	   SELECT 'q' || g, 'quiet', '', 'Q' || g, 'q' || g, $1, $1, $1, 1 FROM generate_series(0, 49) g ORDER BY g`, t0)
	q(`ANALYZE {schema}.deliveries; ANALYZE {schema}.events`)

	explain := func(name, sql string, args ...any) string {
		t.Helper()
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) "+sql, args...)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		plan := strings.Join(lines, "\n")
		t.Logf("%s plan:\n%s", name, plan)
		return plan
	}

	plan := explain("pick", s.PickSQL(), t0, 10, 10, []int64{}, 1000, 10, t0.Add(time.Minute))
	assert.Contains(t, plan, "deliveries_due", "due deliveries are found by the claim index")
	assert.NotContains(t, plan, "Seq Scan on deliveries")
	plan = explain("pick over a wider window", s.PickSQL(), t0, 1000, 1000, []int64{}, 1000, 10, t0.Add(time.Minute))
	assert.NotContains(t, plan, "Seq Scan on deliveries")
	plan = explain("fast pick", s.PickFastSQL(), t0, 10, 10, []int64{}, t0.Add(time.Minute))
	assert.Contains(t, plan, "deliveries_due", "due deliveries are found by the claim index")
	assert.Contains(t, plan, "deliveries_new_by_record", "a line's other new deliveries are looked up by record")
	assert.NotContains(t, plan, "Seq Scan on deliveries")

	plan = explain("promote", s.PromoteSQL(), []int64{1, 2, 3})
	assert.Contains(t, plan, "deliveries_waiting")
	assert.NotContains(t, plan, "Seq Scan on deliveries")

	filed := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, strings.ReplaceAll(`SELECT count(*) FROM {schema}.deliveries WHERE phase = 2 AND id LIKE 'n%'`,
			"{schema}", pgx.Identifier{s.Schema()}.Sanitize())).Scan(&n))
		return n
	}
	for round := range 2 {
		start := time.Now()
		ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
		took := time.Since(start)
		require.NoError(t, err)
		require.Len(t, ms, 10)
		for _, m := range ms {
			assert.Equal(t, "quiet", m.WebhookID, "the busy webhook's heads are not due and its waiting records are not candidates")
		}
		t.Logf("claim %d of 10 behind a backlog of %d waiting and %d new: %v, %d new filed so far", round+1, chains*perChain, fresh, took, filed())
	}
	n, err := s.Deliveries(ctx, store.DeliveryFilter{Status: store.Pending, WebhookID: "busy", Limit: 1})
	require.NoError(t, err)
	require.Len(t, n, 1)
}
