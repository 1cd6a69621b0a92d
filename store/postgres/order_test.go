package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
)

// TestOrderWithTransactionsCommittingOutOfOrder publishes from
// transactions held open for a while, so deliveries commit out of the
// order of their sequence numbers, while claimers run at once, retry,
// postpone and release. Records whose publishers lock the record's row
// first (as the package documentation advises) must be delivered in
// commit order; records published by two unlocked transactions at once
// have no order to keep, but like every record must never have two
// messages in flight, and every delivery must be delivered exactly once,
// none left behind.
func TestOrderWithTransactionsCommittingOutOfOrder(t *testing.T) {
	t.Parallel()
	lockedKeys, unlockedKeys, rounds, claimers := 12, 6, 8, 6
	if testing.Short() {
		lockedKeys, unlockedKeys, rounds = 6, 3, 5
	}
	pool := postgrestest.Pool(t, 40)
	s := postgrestest.NewStore(t, pool)
	ctx := t.Context()
	schema := pgx.Identifier{s.Schema()}.Sanitize()
	for _, id := range []string{"single", "batch"} {
		_, err := s.SaveWebhook(ctx, store.Webhook{ID: id, Definition: json.RawMessage(`{}`)}, time.Now())
		require.NoError(t, err)
	}
	_, err := pool.Exec(ctx, `CREATE TABLE `+schema+`.records (key text PRIMARY KEY, n integer NOT NULL DEFAULT 0)`)
	require.NoError(t, err)
	for k := range lockedKeys {
		_, err := pool.Exec(ctx, `INSERT INTO `+schema+`.records (key) VALUES ($1)`, fmt.Sprintf("L%d", k))
		require.NoError(t, err)
	}

	// publish enqueues, in its own transaction held open a random while,
	// one change of key for both webhooks (the second batching up to 3).
	// With locked, the transaction first takes the record's row, as an
	// application updating the record would, and the change carries the
	// record's new version.
	publish := func(key string, locked bool) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			n := 0
			if locked {
				if err := tx.QueryRow(ctx, `UPDATE `+schema+`.records SET n = n + 1 WHERE key = $1 RETURNING n`, key).Scan(&n); err != nil {
					return err
				}
			}
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			now := time.Now()
			id := uuid.NewString()
			e := store.Event{ID: id, Table: "record", Op: "UPDATE", Key: key, Time: now, Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
			ds := []store.Delivery{
				{ID: "s-" + id, WebhookID: "single", NextAttempt: now, CreatedAt: now},
				{ID: "b-" + id, WebhookID: "batch", MaxBatch: 3, NextAttempt: now, CreatedAt: now},
			}
			if _, err := s.EnqueueTx(ctx, postgres.Tx(tx), e, ds); err != nil {
				return err
			}
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			return nil
		})
	}
	total := 2 * rounds * (lockedKeys + 2*unlockedKeys)

	var mu sync.Mutex
	inFlight := map[string]string{} // webhook/key -> message id
	delivered := map[string]int{}   // delivery id -> times
	versions := map[string][]int{}  // webhook/key -> n of each delivery, in order, for locked keys
	var violations []string
	count := 0

	var pubs sync.WaitGroup
	pubErr := make(chan error, lockedKeys+2*unlockedKeys)
	for k := range lockedKeys {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for range rounds {
				if err := publish(fmt.Sprintf("L%d", k), true); err != nil {
					pubErr <- err
					return
				}
			}
		}()
	}
	for k := range 2 * unlockedKeys {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for range rounds {
				if err := publish(fmt.Sprintf("U%d", k/2), false); err != nil {
					pubErr <- err
					return
				}
			}
		}()
	}

	deadline := time.Now().Add(90 * time.Second)
	var wg sync.WaitGroup
	for range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				finished := count == total || len(violations) > 0
				mu.Unlock()
				if finished || time.Now().After(deadline) {
					return
				}
				now := time.Now()
				ms, err := s.Claim(context.Background(), store.Claim{Now: now, Lease: time.Hour, Limit: 4})
				if err != nil {
					mu.Lock()
					violations = append(violations, "claim: "+err.Error())
					mu.Unlock()
					return
				}
				mu.Lock()
				for _, m := range ms {
					for _, d := range m.Deliveries {
						c := d.WebhookID + "/" + d.Key
						if other, busy := inFlight[c]; busy && other != m.ID {
							violations = append(violations, fmt.Sprintf("record %s handed out in %s while %s was in flight", c, m.ID, other))
						}
						inFlight[c] = m.ID
					}
				}
				mu.Unlock()
				for _, m := range ms {
					outcome := store.OutcomeDelivered
					switch r := rand.IntN(20); {
					case r < 2:
						outcome = store.OutcomeRetry
					case r < 3:
						outcome = store.OutcomePostpone
					}
					release := rand.IntN(20) == 0
					mu.Lock()
					for _, d := range m.Deliveries {
						delete(inFlight, d.WebhookID+"/"+d.Key)
					}
					if outcome == store.OutcomeDelivered && !release {
						for i, d := range m.Deliveries {
							delivered[d.ID]++
							count++
							var p struct{ N int }
							_ = json.Unmarshal(m.Events[i].Payload, &p)
							if p.N > 0 {
								c := d.WebhookID + "/" + d.Key
								versions[c] = append(versions[c], p.N)
							}
						}
					}
					mu.Unlock()
					var err error
					if release {
						err = s.Release(context.Background(), []string{m.Lease})
					} else {
						r := store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: outcome, Now: now, NextAttempt: now}
						if outcome != store.OutcomePostpone {
							r.Attempt = &store.Attempt{MessageID: m.ID, At: now, StatusCode: 200}
						}
						err = s.Ack(context.Background(), []store.Result{r})
					}
					if err != nil {
						mu.Lock()
						violations = append(violations, "ack: "+err.Error())
						mu.Unlock()
					}
				}
				if len(ms) == 0 {
					time.Sleep(time.Millisecond) // nothing due yet: publishers still at work
				}
			}
		}()
	}
	pubs.Wait()
	close(pubErr)
	for err := range pubErr {
		require.NoError(t, err)
	}
	wg.Wait()

	for _, v := range violations {
		t.Error(v)
	}
	require.Equal(t, total, count, "every delivery delivered within the deadline")
	for id, n := range delivered {
		assert.Equal(t, 1, n, "delivery %s delivered once", id)
	}
	for c, ns := range versions {
		want := make([]int, rounds)
		for i := range want {
			want[i] = i + 1
		}
		assert.Equal(t, want, ns, "record %s delivered in the order its publishers committed", c)
	}
	pending, err := s.Deliveries(ctx, store.DeliveryFilter{Status: store.Pending})
	require.NoError(t, err)
	assert.Empty(t, pending, "nothing left behind")
}
