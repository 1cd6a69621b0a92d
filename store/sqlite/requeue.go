package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/heraldhr/herald/store"
)

var _ store.Requeuer = (*Store)(nil)

// requeueTargets reads the deliveries of ?1 (a JSON array of ids) that
// Requeue may take: finished, their webhook still there, their payload
// neither purged nor erased.
const requeueTargets = `SELECT d.seq, d.webhook_id, d.tenant, d.record_key, d.max_batch
	FROM herald_deliveries d
	JOIN herald_webhooks w ON w.id = d.webhook_id
	JOIN herald_events e ON e.tenant = d.tenant AND e.id = d.event_id
	WHERE d.id IN (SELECT value FROM json_each(?1)) AND d.status != 'pending' AND e.payload IS NOT NULL
	ORDER BY d.seq`

// requeueChain reads a record's chain: its pending rows that are not
// replays, in order.
const requeueChain = `SELECT seq, head, lease_until, batch_id, max_batch FROM herald_deliveries
	WHERE webhook_id = ?1 AND tenant = ?2 AND record_key = ?3 AND status = 'pending' AND replayed = 0
	ORDER BY seq`

// requeueRows makes the rows of ?1 ([[seq, head], ...]) pending again.
const requeueRows = `UPDATE herald_deliveries SET status = 'pending', attempts = 0, replayed = 0,
		head = j.value ->> 1, next_attempt = ?2, updated_at = ?2, lease = NULL, lease_until = 0, scrubbed = 0,
		batch_id = '', has_next = 0
	FROM json_each(?1) AS j WHERE herald_deliveries.seq = j.value ->> 0`

// requeueDemote takes back the head of the rows in ?1: the former head of
// a chain that a requeued delivery now leads.
const requeueDemote = `UPDATE herald_deliveries SET head = 0 WHERE seq IN (SELECT value FROM json_each(?1))`

// requeueLinked marks every row of the chains in ?1 ([[webhook_id,
// tenant, record_key], ...]) as having another row of its chain pending,
// so that whichever finishes moves the chain's first row up (an
// acknowledgement promotes only for rows so marked, and promoting a chain
// whose first row is a head already changes nothing).
const requeueLinked = `UPDATE herald_deliveries SET has_next = 1
	WHERE seq IN (SELECT x.seq FROM json_each(?1) AS c JOIN herald_deliveries x
		ON x.webhook_id = c.value ->> 0 AND x.tenant = c.value ->> 1 AND x.record_key = c.value ->> 2
		WHERE x.status = 'pending' AND x.replayed = 0)
	AND has_next = 0`

// Requeue makes finished deliveries pending again inside their order
// chains, in one transaction (see store.Requeuer).
//
// A chain is its pending rows in order of seq; the rows marked head are
// the ones a claim may take. A requeued delivery that comes before every
// pending row of its record becomes a head, and the former head waits
// behind it again, unless it is leased or belongs to a fixed batch: such a
// head is not held back, and the chain then has two heads until one of
// them finishes. Every other requeued delivery waits for its turn.
// Deliveries whose payload was purged or erased are skipped, as Replay
// refuses them.
func (s *Store) Requeue(ctx context.Context, ids []string, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = requeue(ctx, tx, ids, now)
		return err
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.notify()
	}
	return n, nil
}

// chainKey names a record's chain.
type chainKey struct{ webhook, tenant, key string }

// link is a row of a chain as Requeue sees it.
type link struct {
	seq      int64
	head     bool
	leased   bool // its lease runs
	batched  bool // a member of a fixed batch
	batching bool // of a webhook that batches
	target   bool // requeued by this call
}

// held reports whether a head cannot be held back: it is in flight, or
// its batch is fixed.
func (l link) held() bool { return l.leased || l.batched }

func requeue(ctx context.Context, tx *sql.Tx, ids []string, now time.Time) (int, error) {
	rows, err := tx.QueryContext(ctx, requeueTargets, jsonList(ids))
	if err != nil {
		return 0, fmt.Errorf("sqlite: requeue: %w", err)
	}
	targets := map[chainKey][]link{}
	var keys []chainKey
	for rows.Next() {
		var k chainKey
		var l link
		var maxBatch int
		if err := rows.Scan(&l.seq, &k.webhook, &k.tenant, &k.key, &maxBatch); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: requeue: %w", err)
		}
		l.target, l.batching = true, maxBatch > 1
		if targets[k] == nil {
			keys = append(keys, k)
		}
		targets[k] = append(targets[k], l)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("sqlite: requeue: %w", err)
	}
	var set, demoted []any
	var linked [][]any
	n := 0
	for _, k := range keys {
		chain, err := readChain(ctx, tx, k, now)
		if err != nil {
			return 0, err
		}
		chain, demote := rejoin(chain, targets[k])
		for _, l := range chain {
			if l.target {
				set = append(set, []any{l.seq, l.head})
				n++
			}
		}
		for _, q := range demote {
			demoted = append(demoted, q)
		}
		if len(chain) > 1 {
			linked = append(linked, []any{k.webhook, k.tenant, k.key})
		}
	}
	if len(set) == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, requeueRows, jsonList(set), nanos(now)); err != nil {
		return 0, fmt.Errorf("sqlite: requeue: %w", err)
	}
	if len(demoted) > 0 {
		if _, err := tx.ExecContext(ctx, requeueDemote, jsonList(demoted)); err != nil {
			return 0, fmt.Errorf("sqlite: requeue: %w", err)
		}
	}
	if len(linked) > 0 {
		if _, err := tx.ExecContext(ctx, requeueLinked, jsonList(linked)); err != nil {
			return 0, fmt.Errorf("sqlite: requeue: %w", err)
		}
	}
	return n, nil
}

func readChain(ctx context.Context, tx *sql.Tx, k chainKey, now time.Time) ([]link, error) {
	rows, err := tx.QueryContext(ctx, requeueChain, k.webhook, k.tenant, k.key)
	if err != nil {
		return nil, fmt.Errorf("sqlite: requeue: %w", err)
	}
	defer rows.Close()
	var out []link
	for rows.Next() {
		var l link
		var until int64
		var batch string
		var maxBatch int
		if err := rows.Scan(&l.seq, &l.head, &until, &batch, &maxBatch); err != nil {
			return nil, fmt.Errorf("sqlite: requeue: %w", err)
		}
		l.leased, l.batched, l.batching = until > nanos(now), batch != "", maxBatch > 1
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: requeue: %w", err)
	}
	return out, nil
}

// rejoin puts the requeued rows (in order of seq) into chain at the places
// their seqs give them and decides which rows are heads. It returns the
// chain and the seqs of former heads that wait again.
func rejoin(chain, requeued []link) ([]link, []int64) {
	var demote []int64
	for _, r := range requeued {
		i, _ := slices.BinarySearchFunc(chain, r.seq, func(l link, seq int64) int {
			switch {
			case l.seq < seq:
				return -1
			case l.seq > seq:
				return 1
			}
			return 0
		})
		chain = slices.Insert(chain, i, r)
		if i != 0 {
			continue // it waits for the earlier ones, like any row of its record
		}
		chain[0].head = true
		// The former head waits behind it again, unless it cannot be held
		// back.
		if len(chain) > 1 && chain[1].head && !chain[1].held() && !chain[1].target {
			chain[1].head = false
			demote = append(demote, chain[1].seq)
		}
	}
	// A batch gathered around a head takes the rows behind it that are due
	// and in no batch: it would take a leased lone head among them. Should
	// a batching row stand before such a head (a chain whose webhook
	// stopped batching while some of its rows were finished), the
	// requeued first row waits behind it instead of becoming a head.
	if len(chain) > 0 && chain[0].target && chain[0].head {
		for i, l := range chain {
			if l.head && l.leased && !l.batched && !l.target {
				if slices.ContainsFunc(chain[:i], func(p link) bool { return p.batching }) {
					chain[0].head = false
				}
				break
			}
		}
	}
	return chain, demote
}

// jsonList encodes a statement's list parameter.
func jsonList(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sqlite: encoding a statement's list: %v", err)) // only plain values are encoded
	}
	return string(b)
}
