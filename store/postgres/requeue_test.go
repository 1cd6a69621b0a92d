package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

var rq0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// rq is a store with the helpers the requeue tests share.
type rq struct {
	*postgres.Store
	t   *testing.T
	now time.Time
}

func newRQ(t *testing.T, s *postgres.Store, webhooks ...string) *rq {
	t.Helper()
	for _, id := range webhooks {
		_, err := s.SaveWebhook(t.Context(), store.Webhook{ID: id, Definition: json.RawMessage(`{}`)}, rq0)
		require.NoError(t, err)
	}
	return &rq{Store: s, t: t, now: rq0}
}

// publish enqueues one change of key for webhook and returns its delivery.
func (r *rq) publish(webhook, key string, maxBatch int) string {
	r.t.Helper()
	e := store.Event{ID: uuid.Must(uuid.NewV7()).String(), Table: "employee", Op: "UPDATE", Key: key, Time: r.now,
		Payload: json.RawMessage(`{"key":"` + key + `"}`)}
	d := store.Delivery{ID: uuid.Must(uuid.NewV7()).String(), WebhookID: webhook, MaxBatch: maxBatch, NextAttempt: r.now, CreatedAt: r.now}
	_, err := r.Enqueue(r.t.Context(), e, []store.Delivery{d})
	require.NoError(r.t, err)
	return d.ID
}

func (r *rq) claim(limit int) []store.Message {
	r.t.Helper()
	ms, err := r.Claim(r.t.Context(), store.Claim{Now: r.now, Lease: time.Hour, Limit: limit})
	require.NoError(r.t, err)
	return ms
}

func (r *rq) ack(m store.Message, o store.Outcome) {
	r.t.Helper()
	require.NoError(r.t, r.Ack(r.t.Context(), []store.Result{{MessageID: m.ID, Lease: m.Lease, Outcome: o, Now: r.now, NextAttempt: r.now}}))
}

func (r *rq) requeue(ids ...string) int {
	r.t.Helper()
	n, err := r.Requeue(r.t.Context(), ids, r.now)
	require.NoError(r.t, err)
	return n
}

func memberIDs(ms ...store.Message) []string {
	var out []string
	for _, m := range ms {
		for _, d := range m.Deliveries {
			out = append(out, d.ID)
		}
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// A claim that read a record's line before a Requeue committed must not
// act on what it read: here it runs in a transaction whose snapshot was
// taken before the Requeue, the widest such gap. It may fail, or find
// nothing to do; it must not lease the delivery that now waits behind the
// requeued one (E1), nor the head that was moved back behind it (E2).
func TestRequeueFailsClaimsThatReadTheLineBefore(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 0)
	s := newRQ(t, postgrestest.NewStore(t, pool), "wh")
	ctx := t.Context()

	dead1 := s.publish("wh", "E1", 0)
	dead2 := s.publish("wh", "E2", 0)
	for _, m := range s.claim(10) {
		s.ack(m, store.OutcomeDead)
	}
	head := s.publish("wh", "E2", 0) // E2: a head whose attempt failed, due again
	ms := s.claim(10)
	require.Equal(t, []string{head}, memberIDs(ms...))
	s.ack(ms[0], store.OutcomeRetry)
	newer := s.publish("wh", "E1", 0) // E1: a new delivery, nothing in flight
	seqOf := func(id string) int64 {
		d, err := s.Delivery(ctx, id)
		require.NoError(t, err)
		return d.Seq
	}

	// One stale claim per record, each kept off the other record, so that
	// one record's outcome does not hide the other's.
	type stale struct {
		tx      pgx.Tx
		exclude []int64
		want    string
	}
	claims := []stale{{exclude: []int64{seqOf(head)}, want: newer}, {exclude: []int64{seqOf(newer)}, want: head}}
	for i := range claims {
		tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		var n int
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{s.Schema()}.Sanitize()+`.deliveries`).Scan(&n))
		claims[i].tx = tx
	}

	require.Equal(t, 2, s.requeue(dead1, dead2))

	for _, c := range claims {
		leased := map[string]bool{}
		rows, err := c.tx.Query(ctx, s.PickSQL(), s.now, 10, 10, c.exclude, 1000, 10, s.now.Add(time.Hour))
		if err == nil {
			for rows.Next() {
				v, verr := rows.Values()
				require.NoError(t, verr)
				if l, _ := v[3].(string); l != "" {
					leased[v[5].(string)] = true
				}
			}
			rows.Close()
			err = rows.Err()
		}
		var pgErr *pgconn.PgError
		if err != nil {
			require.ErrorAs(t, err, &pgErr)
			assert.Equal(t, "40001", pgErr.Code, "a claim that read the line before may fail to serialize, nothing else")
		}
		assert.False(t, leased[c.want], "a claim that read the line before the requeue leased %s", c.want)
		require.NoError(t, c.tx.Rollback(ctx))
	}

	assert.Equal(t, sorted(dead1, dead2), memberIDs(s.claim(10)...), "the requeued deliveries go first")
}

// A requeued delivery that comes before a delivery in flight goes out
// beside it, on its own; the deliveries behind the one in flight wait for
// both, whichever finishes first. For a batching webhook the requeued one
// is a batch of one under a new id.
func TestRequeueBesideADeliveryInFlight(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 0)
	s := newRQ(t, postgrestest.NewStore(t, pool), "wh", "wb")

	for _, tc := range []struct {
		webhook   string
		maxBatch  int
		heldFirst bool // the one in flight finishes before the requeued one
	}{{"wh", 0, false}, {"wb", 3, false}, {"wh", 0, true}, {"wb", 3, true}} {
		first := s.publish(tc.webhook, "E1", tc.maxBatch)
		ms := s.claim(10)
		require.Len(t, ms, 1)
		buried := ms[0].ID
		s.ack(ms[0], store.OutcomeDead)
		second := s.publish(tc.webhook, "E1", tc.maxBatch)
		held := s.claim(10)
		require.Equal(t, []string{second}, memberIDs(held...))
		third := s.publish(tc.webhook, "E1", tc.maxBatch)
		require.Empty(t, s.claim(10), "%s: the third waits for the second", tc.webhook)

		require.Equal(t, 1, s.requeue(first))
		ms = s.claim(10)
		require.Equal(t, []string{first}, memberIDs(ms...), "%s: the requeued one goes beside the one in flight", tc.webhook)
		assert.Equal(t, 1, ms[0].Attempt)
		if tc.maxBatch > 1 {
			assert.True(t, ms[0].Batch)
			assert.NotEqual(t, buried, ms[0].ID, "a batch of one under a new id")
			assert.NotEqual(t, held[0].ID, ms[0].ID)
		} else {
			assert.Equal(t, ms[0].Deliveries[0].EventID, ms[0].ID, "under its event id")
		}
		d, err := s.Delivery(t.Context(), first)
		require.NoError(t, err)
		assert.False(t, d.Replayed, "requeued, not replayed")
		order := []store.Message{ms[0], held[0]}
		if tc.heldFirst {
			order = []store.Message{held[0], ms[0]}
		}
		s.ack(order[0], store.OutcomeDelivered)
		assert.Empty(t, s.claim(10), "%s (held first: %v): the third waits for both", tc.webhook, tc.heldFirst)
		s.ack(order[1], store.OutcomeDelivered)
		ms = s.claim(10)
		require.Equal(t, []string{third}, memberIDs(ms...), "%s: then the third goes", tc.webhook)
		s.ack(ms[0], store.OutcomeDelivered)
	}
}

// A delivery requeued behind an earlier one that is pending waits for it,
// even when that one is in flight.
func TestRequeueBehindAnEarlierPendingOne(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 0)
	s := newRQ(t, postgrestest.NewStore(t, pool), "wh")
	first := s.publish("wh", "E1", 0)
	second := s.publish("wh", "E1", 0)
	for range 2 {
		ms := s.claim(10)
		require.Len(t, ms, 1)
		s.ack(ms[0], store.OutcomeDead)
	}
	require.Equal(t, 1, s.requeue(first))
	held := s.claim(10)
	require.Equal(t, []string{first}, memberIDs(held...))
	require.Equal(t, 1, s.requeue(second))
	assert.Empty(t, s.claim(10), "the second waits for the first, in flight")
	s.ack(held[0], store.OutcomeDelivered)
	assert.Equal(t, []string{second}, memberIDs(s.claim(10)...))
}

// A row of the line that someone else holds (here a transaction of the
// test) makes Requeue wait for it, changing nothing meanwhile (not even
// another record's delivery: a call is all or nothing), and then decide on
// what it finds: the head it could not lock before moves back behind the
// requeued delivery.
func TestRequeueWaitsForRowsHeldElsewhere(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 0)
	s := newRQ(t, postgrestest.NewStore(t, pool), "wh")
	ctx := t.Context()
	dead := s.publish("wh", "E1", 0)
	other := s.publish("wh", "E2", 0)
	for _, m := range s.claim(10) {
		s.ack(m, store.OutcomeDead)
	}
	head := s.publish("wh", "E1", 0)
	ms := s.claim(10)
	require.Equal(t, []string{head}, memberIDs(ms...))
	s.ack(ms[0], store.OutcomeRetry) // a head, due again, nobody holds it

	schema := pgx.Identifier{s.Schema()}.Sanitize()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM `+schema+`.deliveries WHERE id = $1 FOR UPDATE`, head)
	require.NoError(t, err)

	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.Requeue(ctx, []string{dead, other}, s.now)
		done <- result{n, err}
	}()
	deadline := time.After(20 * time.Second)
	for waiting := false; !waiting; {
		select {
		case r := <-done:
			t.Fatalf("Requeue returned (%d, %v) while a row of the line was held elsewhere", r.n, r.err)
		case <-deadline:
			t.Fatal("Requeue never waited for the held row")
		default:
		}
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) > 0 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND position($1 in query) > 0 AND position('FOR NO KEY UPDATE) x' in query) > 0`,
			schema).Scan(&waiting))
	}
	d, err := s.Delivery(ctx, other)
	require.NoError(t, err)
	assert.Equal(t, store.Dead, d.Status, "nothing is requeued while the call waits")
	require.NoError(t, tx.Commit(ctx))
	select {
	case r := <-done:
		require.NoError(t, r.err)
		assert.Equal(t, 2, r.n)
	case <-time.After(20 * time.Second):
		t.Fatal("Requeue did not finish once the row was free")
	}
	assert.Equal(t, sorted(dead, other), memberIDs(s.claim(10)...), "the requeued deliveries go first, the former head waits")
}

// A delivery whose payload was erased is not requeued: it would be sent
// without its record.
func TestRequeueSkipsErasedPayloads(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 0)
	s := newRQ(t, postgrestest.NewStore(t, pool), "wh")
	erased := s.publish("wh", "E1", 0)
	kept := s.publish("wh", "E2", 0)
	for _, m := range s.claim(10) {
		s.ack(m, store.OutcomeDead)
	}
	_, err := s.Erase(t.Context(), store.Erasure{Table: "employee", Key: "E1"}, s.now)
	require.NoError(t, err)
	assert.Equal(t, 1, s.requeue(erased, kept), "only the delivery that still has its payload")
	d, err := s.Delivery(t.Context(), erased)
	require.NoError(t, err)
	assert.Equal(t, store.Dead, d.Status)
	assert.Equal(t, []string{kept}, memberIDs(s.claim(10)...))
}

// TestRequeueRandomNeverStalls runs random sequences of publishes, claims,
// outcomes, releases, replays, requeues and clock moves (leases run out)
// on two webhooks, one batching. A claim must never hand out a delivery
// that a live lease holds, and once the work stops failing, everything
// must be delivered.
func TestRequeueRandomNeverStalls(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 0)
	seeds, steps := uint64(4), 250
	if testing.Short() {
		seeds, steps = 2, 150
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			s := newRQ(t, postgrestest.NewStore(t, pool), "wh", "wb")
			ctx := t.Context()
			rng := rand.New(rand.NewPCG(seed, 7))
			type lease struct {
				m     store.Message
				until time.Time
			}
			var held []lease
			var all []string
			claim := func() {
				ms, err := s.Claim(ctx, store.Claim{Now: s.now, Lease: 5 * time.Second, Limit: 1 + rng.IntN(6)})
				require.NoError(t, err)
				live := map[string]bool{}
				for _, h := range held {
					if h.until.After(s.now) {
						for _, id := range memberIDs(h.m) {
							live[id] = true
						}
					}
				}
				for _, m := range ms {
					for _, id := range memberIDs(m) {
						require.False(t, live[id], "delivery %s handed out while its lease runs", id)
					}
					held = append(held, lease{m, s.now.Add(5 * time.Second)})
				}
			}
			finished := func() []string {
				ds, err := s.Deliveries(ctx, store.DeliveryFilter{})
				require.NoError(t, err)
				var out []string
				for _, d := range ds {
					if d.Status != store.Pending {
						out = append(out, d.ID)
					}
				}
				return out
			}
			for range steps {
				switch x := rng.IntN(16); {
				case x < 3:
					hook, batch := "wh", 0
					if rng.IntN(2) == 0 {
						hook, batch = "wb", 3
					}
					all = append(all, s.publish(hook, fmt.Sprintf("E%d", rng.IntN(3)), batch))
				case x < 6:
					claim()
				case x < 9:
					var keep []lease
					for _, h := range held {
						if rng.Float64() < 0.4 {
							keep = append(keep, h)
							continue
						}
						r := store.Result{MessageID: h.m.ID, Lease: h.m.Lease, Now: s.now}
						switch y := rng.Float64(); {
						case y < 0.45:
							r.Outcome = store.OutcomeDelivered
						case y < 0.65:
							r.Outcome, r.NextAttempt = store.OutcomeRetry, s.now.Add(time.Duration(rng.IntN(4))*time.Second)
						case y < 0.85:
							r.Outcome = store.OutcomeDead
						case y < 0.9:
							r.Outcome, r.NextAttempt = store.OutcomePostpone, s.now.Add(time.Second)
						default:
							r.Outcome = store.OutcomeSkipped
						}
						if err := s.Ack(ctx, []store.Result{r}); err != nil {
							require.ErrorIs(t, err, store.ErrLeaseLost)
						}
					}
					held = keep
				case x < 10:
					if len(held) > 0 {
						i := rng.IntN(len(held))
						require.NoError(t, s.Release(ctx, []string{held[i].m.Lease}))
						held = slices.Delete(held, i, i+1)
					}
				case x < 12:
					var ids []string
					for _, id := range finished() {
						if rng.Float64() < 0.5 {
							ids = append(ids, id)
						}
					}
					rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
					assert.LessOrEqual(t, s.requeue(ids...), len(ids))
				case x < 13:
					if ids := finished(); len(ids) > 0 {
						require.NoError(t, s.Replay(ctx, ids[rng.IntN(len(ids))], s.now))
					}
				default:
					s.now = s.now.Add(time.Duration(rng.IntN(4)) * time.Second)
				}
			}
			for range 300 {
				pending, err := s.Deliveries(ctx, store.DeliveryFilter{Status: store.Pending})
				require.NoError(t, err)
				if len(pending) == 0 {
					return
				}
				s.now = s.now.Add(10 * time.Second) // past every lease and retry
				held = nil
				ms, err := s.Claim(ctx, store.Claim{Now: s.now, Lease: 5 * time.Second, Limit: 100})
				require.NoError(t, err)
				for _, m := range ms {
					r := store.Result{MessageID: m.ID, Lease: m.Lease, Now: s.now, Outcome: store.OutcomeDelivered}
					require.NoError(t, s.Ack(ctx, []store.Result{r}))
				}
			}
			t.Fatalf("deliveries still pending after 300 rounds of delivering everything due (of %d)", len(all))
		})
	}
}

// TestRequeueWhileClaiming requeues dead and delivered deliveries in
// pages while workers claim, and an acknowledging loop records their
// outcomes (retrying and postponing some) as a dispatcher does, on two
// webhooks, one batching. No delivery may be handed out twice at once, no
// call may fail (a deadlock would fail one), and everything ends
// delivered.
func TestRequeueWhileClaiming(t *testing.T) {
	t.Parallel()
	keys, workers := 16, 4
	if testing.Short() {
		keys = 8
	}
	pool := postgrestest.Pool(t, 20)
	s := newRQ(t, postgrestest.NewStore(t, pool), "wh", "wb")
	ctx := t.Context()
	for range 3 {
		for k := range keys {
			s.publish("wh", fmt.Sprintf("E%d", k), 0)
			s.publish("wb", fmt.Sprintf("E%d", k), 4)
		}
	}
	for {
		ms := s.claim(100)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			s.ack(m, store.OutcomeDead)
		}
	}
	dead, err := s.Deliveries(ctx, store.DeliveryFilter{Status: store.Dead})
	require.NoError(t, err)
	require.Len(t, dead, 6*keys)
	for range 2 {
		for k := range keys {
			s.publish("wh", fmt.Sprintf("E%d", k), 0)
			s.publish("wb", fmt.Sprintf("E%d", k), 4)
		}
	}

	var (
		mu       sync.Mutex
		inFlight = map[string]bool{}
		problems []string
		done     = make(chan struct{})
		claimed  = make(chan store.Message, 64)
		claimers sync.WaitGroup
		others   sync.WaitGroup
	)
	report := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	deadline := time.Now().Add(time.Minute)
	for range workers {
		claimers.Go(func() {
			for time.Now().Before(deadline) {
				ms, err := s.Claim(ctx, store.Claim{Now: rq0, Lease: time.Hour, Limit: 8})
				if err != nil {
					report("claim: %v", err)
					return
				}
				if len(ms) == 0 {
					select {
					case <-done:
						pending, err := s.Deliveries(ctx, store.DeliveryFilter{Status: store.Pending, Limit: 1})
						if err != nil {
							report("listing: %v", err)
							return
						}
						if len(pending) == 0 {
							return
						}
					default:
					}
					continue
				}
				mu.Lock()
				for _, id := range memberIDs(ms...) {
					if inFlight[id] {
						problems = append(problems, fmt.Sprintf("delivery %s handed out twice at once", id))
					}
					inFlight[id] = true
				}
				mu.Unlock()
				for _, m := range ms {
					claimed <- m
				}
			}
			report("the workers did not finish in time")
		})
	}
	others.Go(func() {
		rng := rand.New(rand.NewPCG(3, 3))
		for m := range claimed {
			ms := []store.Message{m}
			for more := true; more; {
				select {
				case m, ok := <-claimed:
					if ok {
						ms = append(ms, m)
					} else {
						more = false
					}
				default:
					more = false
				}
			}
			rs := make([]store.Result, len(ms))
			for i, m := range ms {
				rs[i] = store.Result{MessageID: m.ID, Lease: m.Lease, Now: rq0, NextAttempt: rq0, Outcome: store.OutcomeDelivered}
				switch rng.IntN(10) {
				case 0:
					rs[i].Outcome = store.OutcomeRetry
				case 1:
					rs[i].Outcome = store.OutcomePostpone
				}
			}
			mu.Lock()
			for _, id := range memberIDs(ms...) {
				delete(inFlight, id)
			}
			mu.Unlock()
			if err := s.Ack(ctx, rs); err != nil {
				report("ack: %v", err)
			}
		}
	})
	others.Go(func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(9, 9))
		ids := make([]string, len(dead))
		for i, d := range dead {
			ids[i] = d.ID
		}
		rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		for part := range slices.Chunk(ids, 7) {
			if _, err := s.Requeue(ctx, part, rq0); err != nil {
				report("requeue: %v", err)
				return
			}
		}
		for range 3 {
			delivered, err := s.Deliveries(ctx, store.DeliveryFilter{Status: store.Delivered})
			if err != nil {
				report("listing: %v", err)
				return
			}
			var some []string
			for _, d := range delivered {
				if rng.IntN(4) == 0 {
					some = append(some, d.ID)
				}
			}
			if _, err := s.Requeue(ctx, some, rq0); err != nil {
				report("requeue: %v", err)
				return
			}
		}
	})
	claimers.Wait()
	close(claimed)
	others.Wait()
	if len(problems) > 0 {
		t.Log(linesOf(t, pool, s.Schema()))
	}
	require.Empty(t, problems)
	counts, err := s.CountDeliveries(ctx)
	require.NoError(t, err)
	for _, c := range counts {
		assert.Equal(t, store.Delivered, c.Status, "%s: %d %s", c.WebhookID, c.Count, c.Status)
	}
}

// linesOf describes the pending deliveries of a schema, line by line, for
// a failure's report.
func linesOf(t *testing.T, pool *pgxpool.Pool, schema string) string {
	rows, err := pool.Query(context.Background(), `SELECT webhook_id, tenant, key, seq, phase, lease IS NOT NULL, coalesce(batch_id, ''),
		replayed, attempts FROM `+pgx.Identifier{schema}.Sanitize()+`.deliveries WHERE phase IS NOT NULL ORDER BY webhook_id, tenant, key, seq`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	b.WriteString("pending deliveries (webhook tenant key seq phase leased batch replayed attempts):\n")
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return err.Error()
		}
		fmt.Fprintln(&b, v...)
	}
	return b.String()
}

// Recover on a Postgres store puts dead deliveries back in order: each
// record's changes arrive oldest first, the recovered ones before a change
// published after the outage.
func TestRecoverInOrder(t *testing.T) {
	t.Parallel()
	pool := postgrestest.Pool(t, 0)
	st := postgrestest.NewStore(t, pool)
	ctx := t.Context()
	k := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Workers: 8, Retry: webhook.RetryPolicy{MaxAttempts: 2},
		Breaker: webhook.BreakerPolicy{MinFailures: 1000}})
	rcv := webhooktest.NewReceiver(t, k.Clock)
	w, err := k.Register(ctx, webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: rcv.URL + "/hook"})
	require.NoError(t, err)
	rcv.AddSecret(w.Secret)

	keys := []string{"E1", "E2", "E3"}
	publish := func(seq int) {
		for _, key := range keys {
			_, err := k.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Update, Key: key,
				New: map[string]any{"seq": seq}})
			require.NoError(t, err)
		}
	}
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: 503} })
	for i := range 4 {
		publish(i)
	}
	k.Settle(t, 100)
	rcv.Respond(nil)
	before := len(rcv.Requests())
	publish(4) // after the outage, not sent yet

	res, err := k.Recover(ctx, webhook.RecoverQuery{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Equal(t, webhook.RecoverResult{Matched: 12, Replayed: 12, InOrder: true}, res)
	require.NoError(t, k.Start(ctx))
	got := rcv.WaitFor(t, before+15, 10*time.Second)[before:]
	require.NoError(t, k.Shutdown(ctx))
	seqs := map[string][]float64{}
	for _, r := range got {
		require.NoError(t, r.VerifyErr)
		var env struct {
			Data struct {
				Key string         `json:"key"`
				New map[string]any `json:"new"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &env))
		seq, _ := env.Data.New["seq"].(float64)
		seqs[env.Data.Key] = append(seqs[env.Data.Key], seq)
	}
	for _, key := range keys {
		assert.Equal(t, []float64{0, 1, 2, 3, 4}, seqs[key], "key %s", key)
	}
}

// BenchmarkRequeuePage pairs the two ways Recover can resend a page of 500
// dead deliveries (one per record, behind a backlog of 20,000 pending ones
// on 2,000 other records): Requeue, in order, and Replay one by one,
// which Recover used before. Each iteration times both on the same rows,
// so they see the same load; it reports microseconds per delivery for
// each and requeue-pct-of-replay, the time of one as a percentage of the
// other.
//
//	HERALD_TEST_POSTGRES_URL=... go test -run '^$' -bench RequeuePage -benchtime 10x ./store/postgres
func BenchmarkRequeuePage(b *testing.B) {
	pool := postgrestest.Pool(b, 0)
	s := postgrestest.NewStore(b, pool)
	ctx := context.Background()
	_, err := s.SaveWebhook(ctx, store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, rq0)
	if err != nil {
		b.Fatal(err)
	}
	enqueue := func(n int, key func(i int) string) []string {
		var es []store.EventWithDeliveries
		var ids []string
		for i := range n {
			id := uuid.Must(uuid.NewV7()).String()
			ids = append(ids, id)
			es = append(es, store.EventWithDeliveries{
				Event: store.Event{ID: uuid.Must(uuid.NewV7()).String(), Table: "employee", Op: "UPDATE", Key: key(i), Time: rq0,
					Payload: json.RawMessage(`{"a":1}`)},
				Deliveries: []store.Delivery{{ID: id, WebhookID: "wh", NextAttempt: rq0.Add(time.Hour), CreatedAt: rq0}}})
		}
		for part := range slices.Chunk(es, 1000) {
			if _, err := s.EnqueueMany(ctx, part); err != nil {
				b.Fatal(err)
			}
		}
		return ids
	}
	page := enqueue(500, func(i int) string { return fmt.Sprintf("D%d", i) })
	enqueue(20000, func(i int) string { return fmt.Sprintf("B%d", i%2000) })
	schema := pgx.Identifier{s.Schema()}.Sanitize()
	bury := func() {
		if _, err := pool.Exec(ctx, `UPDATE `+schema+`.deliveries SET status = 'dead', phase = NULL, lease = NULL, lease_until = NULL,
			replayed = false, batch_id = NULL WHERE id = ANY($1)`, page); err != nil {
			b.Fatal(err)
		}
	}
	var requeue, replay time.Duration
	b.ResetTimer()
	for i := range b.N {
		for j := range 2 {
			bury()
			start := time.Now()
			if (i+j)%2 == 0 {
				n, err := s.Requeue(ctx, page, rq0)
				if err != nil || n != len(page) {
					b.Fatalf("requeued %d of %d: %v", n, len(page), err)
				}
				requeue += time.Since(start)
				continue
			}
			for _, id := range page {
				if err := s.Replay(ctx, id, rq0); err != nil {
					b.Fatal(err)
				}
			}
			replay += time.Since(start)
		}
	}
	per := float64(b.N * len(page))
	b.ReportMetric(float64(requeue.Microseconds())/per, "requeue-us")
	b.ReportMetric(float64(replay.Microseconds())/per, "replay-us")
	b.ReportMetric(100*float64(requeue)/float64(replay), "requeue-pct-of-replay")
}
