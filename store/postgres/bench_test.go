package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/webhook"
)

// The benchmarks put herald next to hand-written SQL doing the same row
// operations on the same tables and indexes, in the same run:
//
//	HERALD_TEST_POSTGRES_URL=... go test -run '^$' -bench . -benchmem ./store/postgres
//
// Every payload is 1 KiB. "plain" statements insert, claim and complete the
// same rows herald does, without its ordering, idempotency or wake-ups.

var payload = json.RawMessage(`{"table":"employee","op":"UPDATE","key":"E1","new":{"pad":"` + strings.Repeat("x", 1000) + `"}}`)

func benchStore(b *testing.B) (*pgxpool.Pool, *postgres.Store, string) {
	b.Helper()
	pool := postgrestest.Pool(b, 16)
	s := postgrestest.NewStore(b, pool)
	saveBenchWebhook(b, s)
	return pool, s, pgx.Identifier{s.Schema()}.Sanitize()
}

// plainVersion is the last migration whose indexes the plain statements
// were written for (their claim reads deliveries_new in seq order); the
// plain side stays there, so the baseline is the same whatever later
// migrations change for herald.
const plainVersion = 3

// plainStore returns a store whose schema stops at plainVersion. Its
// Enqueue and EnqueueMany load rows; nothing else of it is used.
func plainStore(b *testing.B, pool *pgxpool.Pool) (*postgres.Store, string) {
	b.Helper()
	s, err := postgres.New(pool, postgres.Options{Schema: postgrestest.Schema(b, pool)})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.MigrateTo(context.Background(), plainVersion); err != nil {
		b.Fatal(err)
	}
	saveBenchWebhook(b, s)
	return s, pgx.Identifier{s.Schema()}.Sanitize()
}

func saveBenchWebhook(b *testing.B, s *postgres.Store) {
	b.Helper()
	if _, err := s.SaveWebhook(context.Background(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, time.Now()); err != nil {
		b.Fatal(err)
	}
}

// plainBench returns a pool and a plain schema (see plainStore).
func plainBench(b *testing.B) (*pgxpool.Pool, *postgres.Store, string) {
	b.Helper()
	pool := postgrestest.Pool(b, 16)
	s, schema := plainStore(b, pool)
	return pool, s, schema
}

func newEvent(i int) (store.Event, []store.Delivery) {
	now := time.Now()
	id := uuid.Must(uuid.NewV7()).String()
	e := store.Event{ID: id, Table: "employee", Op: "UPDATE", Key: fmt.Sprintf("E%d", i), Time: now, Payload: payload}
	return e, []store.Delivery{{ID: uuid.Must(uuid.NewV7()).String(), WebhookID: "wh", NextAttempt: now, CreatedAt: now}}
}

// plainInsert writes one event and one delivery in one statement.
const plainInsert = `
WITH e AS (INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload) VALUES ('', $1, 'employee', 'UPDATE', $2, $3, $4::json))
INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, next_attempt, created_at, updated_at)
VALUES ($5, 'wh', '', $2, $1, $3, $3, $3)`

// plainInsertMany writes many events and deliveries in one statement.
const plainInsertMany = `
WITH e AS (INSERT INTO {schema}.events (tenant, id, table_name, op, key, time, payload)
           SELECT '', id, 'employee', 'UPDATE', key, $3, p::json FROM unnest($1::text[], $2::text[], $5::text[]) AS u(id, key, p))
INSERT INTO {schema}.deliveries (id, webhook_id, tenant, key, event_id, next_attempt, created_at, updated_at)
SELECT d, 'wh', '', key, id, $3, $3, $3 FROM unnest($1::text[], $2::text[], $4::text[]) AS u(id, key, d)`

func BenchmarkEnqueue(b *testing.B) {
	ctx := context.Background()
	b.Run("plain-single", func(b *testing.B) {
		pool, _, schema := plainBench(b)
		q := strings.ReplaceAll(plainInsert, "{schema}", schema)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e, ds := newEvent(i)
			if _, err := pool.Exec(ctx, q, e.ID, e.Key, e.Time, string(e.Payload), ds[0].ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("herald-single", func(b *testing.B) {
		_, s, _ := benchStore(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e, ds := newEvent(i)
			if _, err := s.Enqueue(ctx, e, ds); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain-in-tx", func(b *testing.B) {
		pool, _, schema := plainBench(b)
		q := strings.ReplaceAll(plainInsert, "{schema}", schema)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e, ds := newEvent(i)
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, q, e.ID, e.Key, e.Time, string(e.Payload), ds[0].ID)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("herald-in-tx", func(b *testing.B) {
		pool, s, _ := benchStore(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			e, ds := newEvent(i)
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				_, err := s.EnqueueTx(ctx, postgres.Tx(tx), e, ds)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dispatcher-PublishTx", func(b *testing.B) {
		pool, s, _ := benchStore(b)
		d, err := webhook.New(webhook.Config{Store: s, AllowPrivateNetworks: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Register(ctx, webhook.Webhook{Name: "b", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: "http://127.0.0.1:9/"}); err != nil {
			b.Fatal(err)
		}
		pad := strings.Repeat("x", 900)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				_, err := d.PublishTx(ctx, postgres.Tx(tx), webhook.Change{Table: "employee", Op: webhook.Update, Key: fmt.Sprintf("E%d", i),
					Old: map[string]any{"pad": ""}, New: map[string]any{"pad": pad}})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	const burst = 100
	b.Run(fmt.Sprintf("plain-batched-%d", burst), func(b *testing.B) {
		pool, _, schema := plainBench(b)
		q := strings.ReplaceAll(plainInsertMany, "{schema}", schema)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ids, keys, dids, ps := make([]string, burst), make([]string, burst), make([]string, burst), make([]string, burst)
			for j := range burst {
				e, ds := newEvent(i*burst + j)
				ids[j], keys[j], dids[j], ps[j] = e.ID, e.Key, ds[0].ID, string(e.Payload)
			}
			if _, err := pool.Exec(ctx, q, ids, keys, time.Now(), dids, ps); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/event")
	})
	b.Run(fmt.Sprintf("herald-EnqueueMany-%d", burst), func(b *testing.B) {
		_, s, _ := benchStore(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			es := make([]store.EventWithDeliveries, burst)
			for j := range burst {
				e, ds := newEvent(i*burst + j)
				es[j] = store.EventWithDeliveries{Event: e, Deliveries: ds}
			}
			if _, err := s.EnqueueMany(ctx, es); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/event")
	})
}

// load publishes n deliveries of distinct records, outside the timer.
func load(b *testing.B, s *postgres.Store, n int) { loadFrom(b, s, 0, n) }

// loadFrom enqueues n deliveries of the records first, first+1, ...
func loadFrom(b *testing.B, s *postgres.Store, first, n int) {
	b.Helper()
	ctx := context.Background()
	for i := first; i < first+n; i += 1000 {
		var es []store.EventWithDeliveries
		for j := i; j < min(first+n, i+1000); j++ {
			e, ds := newEvent(j)
			es = append(es, store.EventWithDeliveries{Event: e, Deliveries: ds})
		}
		if _, err := s.EnqueueMany(ctx, es); err != nil {
			b.Fatal(err)
		}
	}
}

// plainClaim leases up to 100 new deliveries with SKIP LOCKED and returns
// them with their events; plainAck completes them and logs an attempt each.
const (
	plainClaim = `
UPDATE {schema}.deliveries d SET lease = $1, lease_until = $2
FROM (SELECT seq FROM {schema}.deliveries WHERE phase = 0 AND lease IS NULL AND next_attempt <= $3
      ORDER BY seq LIMIT 100 FOR NO KEY UPDATE SKIP LOCKED) c,
     {schema}.events e
WHERE d.seq = c.seq AND e.tenant = d.tenant AND e.id = d.event_id
RETURNING d.seq, d.id, d.event_id, e.payload::text`
	plainAck = `
WITH u AS (
    UPDATE {schema}.deliveries d SET status = 'delivered', phase = NULL, attempts = attempts + 1, lease = NULL, lease_until = NULL,
        last_code = 200, updated_at = $2
    FROM unnest($1::int8[]) AS x(seq) WHERE d.seq = x.seq AND d.lease IS NOT NULL
    RETURNING d.seq, d.attempts, d.event_id)
INSERT INTO {schema}.attempts (delivery_seq, number, message_id, at, status_code, latency_ns, response_body, error, webhook_version)
SELECT seq, attempts, event_id, $2, 200, 1000000, '', '', 1 FROM u`
)

// BenchmarkClaimComplete measures claiming and completing deliveries by
// workers goroutines at once, 100 at a time; ns/op is per delivery.
func BenchmarkClaimComplete(b *testing.B) {
	const workers = 4
	ctx := context.Background()
	drain := func(b *testing.B, step func() (int, error)) {
		if err := drainWith(workers, b.N, step); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("plain", func(b *testing.B) {
		pool, s, schema := plainBench(b)
		load(b, s, b.N)
		claimQ, ackQ := strings.ReplaceAll(plainClaim, "{schema}", schema), strings.ReplaceAll(plainAck, "{schema}", schema)
		b.ReportAllocs()
		b.ResetTimer()
		drain(b, func() (int, error) {
			now := time.Now()
			rows, err := pool.Query(ctx, claimQ, uuid.New(), now.Add(time.Minute), now)
			if err != nil {
				return 0, err
			}
			var seqs []int64
			for rows.Next() {
				var seq int64
				var id, ev, p string
				if err := rows.Scan(&seq, &id, &ev, &p); err != nil {
					return 0, err
				}
				seqs = append(seqs, seq)
			}
			if err := rows.Err(); err != nil || len(seqs) == 0 {
				return 0, err
			}
			_, err = pool.Exec(ctx, ackQ, seqs, now)
			return len(seqs), err
		})
	})
	b.Run("herald", func(b *testing.B) {
		_, s, _ := benchStore(b)
		load(b, s, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		drain(b, func() (int, error) {
			now := time.Now()
			ms, err := s.Claim(ctx, store.Claim{Now: now, Lease: time.Minute, Limit: 100})
			if err != nil || len(ms) == 0 {
				return 0, err
			}
			rs := make([]store.Result, len(ms))
			for i, m := range ms {
				rs[i] = store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDelivered, Now: now,
					Attempt: &store.Attempt{MessageID: m.ID, At: now, StatusCode: 200, Latency: time.Millisecond, WebhookVersion: 1}}
			}
			return len(ms), s.Ack(ctx, rs)
		})
	})
}

// drainWith runs workers goroutines calling step until n deliveries are
// done. A worker that finds nothing keeps asking (another may hold the
// rows, or be filing them), as a dispatcher woken by its acks would.
func drainWith(workers, n int, step func() (int, error)) error {
	var wg sync.WaitGroup
	var done atomic.Int64
	errs := make(chan error, workers)
	deadline := time.Now().Add(5 * time.Minute)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Load() < int64(n) {
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("%d of %d deliveries done after 5 minutes", done.Load(), n)
					return
				}
				k, err := step()
				if err != nil {
					errs <- err
					return
				}
				if k == 0 {
					runtime.Gosched()
				}
				done.Add(int64(k))
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// BenchmarkWakeToFirstAttempt measures, for an idle dispatcher, the time
// from a committed enqueue made elsewhere (another store instance, so only
// NOTIFY can wake it; its poll is an hour) to the receiver seeing the
// request. It reports the median and the 90th percentile.
func BenchmarkWakeToFirstAttempt(b *testing.B) {
	pool, s, _ := benchStore(b)
	ctx := b.Context()
	arrived := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- time.Now()
	}))
	defer srv.Close()
	d, err := webhook.New(webhook.Config{Store: s, AllowPrivateNetworks: true, PollInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "wake", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Shutdown(sctx)
	}()
	other := postgrestest.StoreIn(b, pool, s.Schema())
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		e, ds := newEvent(i)
		ds[0].WebhookID = w.ID
		start := time.Now()
		if _, err := other.Enqueue(ctx, e, ds); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-arrived:
			took = append(took, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatal("no request within 10s: the NOTIFY did not wake the worker")
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(took[len(took)*9/10].Microseconds())/1000, "ms-p90")
}
