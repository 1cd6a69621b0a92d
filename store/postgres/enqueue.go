package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhr/herald/store"
)

// querier is what an enqueue runs on: the pool, a pgx transaction, or a
// database/sql transaction.
type querier interface {
	queryRow(ctx context.Context, sql string, args ...any) interface{ Scan(...any) error }
}

type pgxQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgxQ struct{ q pgxQuerier }

func (p pgxQ) queryRow(ctx context.Context, sql string, args ...any) interface{ Scan(...any) error } {
	return p.q.QueryRow(ctx, sql, args...)
}

type sqlQ struct{ tx *sql.Tx }

func (p sqlQ) queryRow(ctx context.Context, sql string, args ...any) interface{ Scan(...any) error } {
	return p.tx.QueryRowContext(ctx, sql, args...)
}

// txQuerier unwraps a caller's transaction.
func txQuerier(tx store.Tx) (querier, error) {
	raw, err := tx.Unwrap(owner)
	if err != nil {
		return nil, err
	}
	switch t := raw.(type) {
	case pgx.Tx:
		return pgxQ{t}, nil
	case *sql.Tx:
		return sqlQ{t}, nil
	}
	return nil, fmt.Errorf("%w: %T is neither a pgx.Tx nor a *sql.Tx", store.ErrForeignTx, raw)
}

// EnqueueTx is Enqueue inside the caller's transaction. A repeated event
// is skipped with ON CONFLICT DO NOTHING, so it never aborts tx; the
// wake-up NOTIFY is delivered when tx commits.
func (s *Store) EnqueueTx(ctx context.Context, tx store.Tx, e store.Event, ds []store.Delivery) (bool, error) {
	q, err := txQuerier(tx)
	if err != nil {
		return false, err
	}
	return s.enqueue(ctx, q, e, ds, true)
}

// enqueue runs an enqueue statement. In a caller's transaction (inTx) the
// statement sends the NOTIFY, which is delivered when, and only if, the
// transaction commits; otherwise the statement commits on its own and the
// wake-up is sent afterwards, off the commit path (see wake).
func (s *Store) enqueue(ctx context.Context, q querier, e store.Event, ds []store.Delivery, inTx bool) (bool, error) {
	if err := checkEvent(e, ds); err != nil {
		return false, err
	}
	var made bool
	var queued int64
	var err error
	if len(ds) == 1 {
		d := ds[0]
		args := []any{e.Tenant, e.ID, e.Table, e.Op, e.Key, e.Time, []byte(e.Payload), eventCreatedAt(e),
			d.ID, d.WebhookID, int32(d.MaxBatch), d.NextAttempt, createdAt(d, e)}
		switch {
		case inTx:
			err = q.queryRow(ctx, s.q.enqueueOne, append(args, notifyChannel, s.schema)...).Scan(&made, &queued)
		case s.direct: // on the store's pool (see queryDirect)
			var v0, v1 string
			if v0, v1, err = s.queryDirect(ctx, s.q.enqueueOneQ, args); err == nil {
				made = v0 == "t"
				queued, err = strconv.ParseInt(v1, 10, 64)
			}
		default:
			err = q.queryRow(ctx, s.q.enqueueOneQ, args...).Scan(&made, &queued)
		}
		return s.enqueued(e, made, queued, inTx, err)
	}
	n := len(ds)
	ids, hooks := make([]string, n), make([]string, n)
	batch := make([]int32, n)
	next, created := make([]time.Time, n), make([]time.Time, n)
	for i, d := range ds {
		ids[i], hooks[i], batch[i], next[i], created[i] = d.ID, d.WebhookID, int32(d.MaxBatch), d.NextAttempt, createdAt(d, e)
	}
	args := []any{e.Tenant, e.ID, e.Table, e.Op, e.Key, e.Time, []byte(e.Payload), eventCreatedAt(e), ids, hooks, batch, next, created}
	if inTx {
		err = q.queryRow(ctx, s.q.enqueue, append(args, notifyChannel, s.schema)...).Scan(&made, &queued)
	} else {
		err = q.queryRow(ctx, s.q.enqueueQ, args...).Scan(&made, &queued)
	}
	return s.enqueued(e, made, queued, inTx, err)
}

func (s *Store) enqueued(e store.Event, made bool, queued int64, inTx bool, err error) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("postgres: enqueue event %s: %w", e.ID, err)
	}
	if queued > 0 && !inTx {
		s.wake()
	}
	return made, nil
}

// EnqueueMany stores many events and their deliveries in one statement.
func (s *Store) EnqueueMany(ctx context.Context, es []store.EventWithDeliveries) ([]bool, error) {
	return s.enqueueMany(ctx, pgxQ{s.pool}, es, false)
}

// EnqueueManyTx is EnqueueMany inside the caller's transaction.
func (s *Store) EnqueueManyTx(ctx context.Context, tx store.Tx, es []store.EventWithDeliveries) ([]bool, error) {
	q, err := txQuerier(tx)
	if err != nil {
		return nil, err
	}
	return s.enqueueMany(ctx, q, es, true)
}

func (s *Store) enqueueMany(ctx context.Context, q querier, es []store.EventWithDeliveries, inTx bool) ([]bool, error) {
	if len(es) == 0 {
		return nil, ctx.Err()
	}
	// An event repeated within the call counts once, at its first place:
	// only first places are sent, and place[j] is the call's index of the
	// j-th event sent.
	type eventKey struct{ tenant, id string }
	var first map[eventKey]bool
	place := make([]int, 0, len(es))
	size := 0
	for _, x := range es {
		size += len(x.Event.Payload)
	}
	if size > math.MaxInt32 {
		return nil, fmt.Errorf("postgres: enqueue %d events: more than 2 GiB of payloads in one call", len(es))
	}
	// The payloads, one after the other, in a buffer kept for the next
	// call: the statement has sent them when it returns.
	var blob []byte
	if size <= maxPooledBuf {
		bp := s.blobs.get()
		defer func() { *bp = blob[:0]; s.blobs.put(bp) }()
		blob = slices.Grow(*bp, size)
	} else {
		blob = make([]byte, 0, size)
	}
	var (
		tenants, ids, tables, ops, keys = make([]textElem, 0, len(es)), make([]textElem, 0, len(es)), make([]textElem, 0, len(es)), make([]textElem, 0, len(es)), make([]textElem, 0, len(es))
		ends                            = make([]int32Elem, 0, len(es)) // where each payload ends in blob
		times, recorded                 = make([]timeElem, 0, len(es)), make([]timeElem, 0, len(es))
		live                            = make([]int32Elem, 0, len(es))
		dEvent                          []int64Elem
		dIDs, dHooks                    []textElem
		dBatch                          []int32Elem
		dNext, dCreated                 []timeElem
	)
	for i, x := range es {
		e := x.Event
		if err := checkEvent(e, x.Deliveries); err != nil {
			return nil, err
		}
		if i > 0 {
			if first == nil {
				first = make(map[eventKey]bool, len(es))
				first[eventKey{es[0].Event.Tenant, es[0].Event.ID}] = true
			}
			k := eventKey{e.Tenant, e.ID}
			if first[k] {
				continue
			}
			first[k] = true
		}
		place = append(place, i)
		tenants, ids, tables, ops, keys = append(tenants, textElem(e.Tenant)), append(ids, textElem(e.ID)), append(tables, textElem(e.Table)), append(ops, textElem(e.Op)), append(keys, textElem(e.Key))
		blob = append(blob, e.Payload...)
		times, ends = append(times, timeElem(e.Time)), append(ends, int32Elem(len(blob)))
		recorded, live = append(recorded, timeElem(eventCreatedAt(e))), append(live, int32Elem(len(x.Deliveries)))
		for _, d := range x.Deliveries {
			dEvent = append(dEvent, int64Elem(len(place)))
			dIDs = append(dIDs, textElem(d.ID))
			dHooks = append(dHooks, textElem(d.WebhookID))
			dBatch = append(dBatch, int32Elem(d.MaxBatch))
			dNext = append(dNext, timeElem(d.NextAttempt))
			dCreated = append(dCreated, timeElem(createdAt(d, e)))
		}
	}
	var made string
	var queued int64
	args := []any{textArray(tenants), textArray(ids), textArray(tables), textArray(ops), textArray(keys), timeArray(times),
		int32Array(ends), timeArray(recorded), int32Array(live), int64Array(dEvent), textArray(dIDs), textArray(dHooks),
		int32Array(dBatch), timeArray(dNext), timeArray(dCreated), blob}
	var err error
	switch {
	case inTx:
		err = q.queryRow(ctx, s.q.enqueueMany, append(args, notifyChannel, s.schema)...).Scan(&made, &queued)
	case s.direct: // on the store's pool (see queryDirect)
		var n string
		if made, n, err = s.queryDirect(ctx, s.q.enqueueManyQ, args); err == nil {
			queued, err = strconv.ParseInt(n, 10, 64)
		}
	default:
		err = q.queryRow(ctx, s.q.enqueueManyQ, args...).Scan(&made, &queued)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: enqueue %d events: %w", len(es), err)
	}
	if queued > 0 && !inTx {
		s.wake()
	}
	out := make([]bool, len(es))
	for f := range strings.SplitSeq(made, ",") {
		if f == "" {
			continue
		}
		ord, err := strconv.Atoi(f)
		if err != nil || ord < 1 || ord > len(place) {
			return nil, fmt.Errorf("postgres: enqueue: unexpected event place %q", f)
		}
		out[place[ord-1]] = true
	}
	return out, nil
}

func checkEvent(e store.Event, ds []store.Delivery) error {
	if e.ID == "" {
		return fmt.Errorf("postgres: event without id")
	}
	if len(e.Payload) == 0 {
		return fmt.Errorf("postgres: event %s without payload", e.ID)
	}
	for _, d := range ds {
		if d.ID == "" || d.WebhookID == "" {
			return fmt.Errorf("postgres: event %s: delivery without id or webhook id", e.ID)
		}
	}
	return nil
}

func createdAt(d store.Delivery, e store.Event) time.Time {
	if d.CreatedAt.IsZero() {
		return e.Time
	}
	return d.CreatedAt
}
