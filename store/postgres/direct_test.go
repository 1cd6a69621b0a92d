package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
)

// manyEvents returns n changes whose payloads differ in content and size,
// each with one delivery to webhook "wh".
func manyEvents(prefix string, n int) []store.EventWithDeliveries {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	out := make([]store.EventWithDeliveries, n)
	for i := range out {
		id := fmt.Sprintf("%s-%d", prefix, i)
		p := fmt.Sprintf(`{"id":%q,"pad":%q}`, id, strings.Repeat("x", (i*397)%3000))
		out[i] = store.EventWithDeliveries{
			Event:      store.Event{ID: id, Table: "employee", Op: "UPDATE", Key: id, Time: now, Payload: json.RawMessage(p)},
			Deliveries: []store.Delivery{{ID: "d-" + id, WebhookID: "wh", NextAttempt: now, CreatedAt: now}},
		}
	}
	return out
}

// claimPayloads claims everything due and returns each event's payload.
func claimPayloads(t *testing.T, s *postgres.Store) map[string]string {
	t.Helper()
	got := map[string]string{}
	for {
		ms, err := s.Claim(t.Context(), store.Claim{Now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), Lease: time.Minute, Limit: 500})
		require.NoError(t, err)
		if len(ms) == 0 {
			return got
		}
		for _, m := range ms {
			for _, e := range m.Events {
				got[e.ID] = string(e.Payload)
			}
		}
	}
}

// TestEnqueueManyKeepsEveryPayload runs many bulk enqueues at once, whose
// statements reuse parameter and payload buffers, and checks that every
// change is stored with its own payload.
func TestEnqueueManyKeepsEveryPayload(t *testing.T) {
	t.Parallel()
	s := combineStore(t)
	var wg sync.WaitGroup
	want := map[string]string{}
	var mu sync.Mutex
	for g := range 8 {
		es := manyEvents(fmt.Sprint("g", g), 40+g*7)
		for _, e := range es {
			want[e.Event.ID] = string(e.Event.Payload)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for part := 0; part < len(es); part += 9 + g {
				made, err := s.EnqueueMany(t.Context(), es[part:min(part+9+g, len(es))])
				mu.Lock()
				assert.NoError(t, err)
				for _, m := range made {
					assert.True(t, m)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, want, claimPayloads(t, s))
}

// queryLog records the statements a pool's connections start.
type queryLog struct {
	mu  sync.Mutex
	sql []string
}

func (l *queryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sql = append(l.sql, d.SQL)
	return ctx
}

func (l *queryLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestEnqueueManyTracedWhenThePoolTraces checks that the bulk enqueue goes
// through pgx's query methods, which a tracer watches, when the pool has
// one: only untraced pools get the statement run directly.
func TestEnqueueManyTracedWhenThePoolTraces(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(postgrestest.URL(t))
	require.NoError(t, err)
	log := &queryLog{}
	cfg.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := postgrestest.NewStore(t, pool)
	_, err = s.EnqueueMany(t.Context(), manyEvents("traced", 3))
	require.NoError(t, err)
	log.mu.Lock()
	defer log.mu.Unlock()
	traced := false
	for _, q := range log.sql {
		traced = traced || strings.Contains(q, "INSERT INTO "+pgx.Identifier{s.Schema()}.Sanitize()+".events")
	}
	assert.True(t, traced, "the bulk enqueue was not seen by the pool's tracer")
}

// TestEnqueueManyAfterStatementsDropped drops the connection's prepared
// statements behind the store's back; the next bulk enqueue prepares its
// statement again.
func TestEnqueueManyAfterStatementsDropped(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 1)
	s := postgrestest.NewStore(t, pool)
	_, err := s.EnqueueMany(t.Context(), manyEvents("before", 3))
	require.NoError(t, err)
	_, err = pool.Exec(t.Context(), "DEALLOCATE ALL")
	require.NoError(t, err)
	made, err := s.EnqueueMany(t.Context(), manyEvents("after", 3))
	require.NoError(t, err)
	assert.Equal(t, []bool{true, true, true}, made)
}
