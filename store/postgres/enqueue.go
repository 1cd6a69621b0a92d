package postgres

import (
	"context"
	"database/sql"
	"fmt"
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

// Enqueue stores an event and its deliveries in one statement, unless the
// event exists.
func (s *Store) Enqueue(ctx context.Context, e store.Event, ds []store.Delivery) (bool, error) {
	return s.enqueue(ctx, pgxQ{s.pool}, e, ds)
}

// EnqueueTx is Enqueue inside the caller's transaction. A repeated event
// is skipped with ON CONFLICT DO NOTHING, so it never aborts tx; the
// wake-up NOTIFY is delivered when tx commits.
func (s *Store) EnqueueTx(ctx context.Context, tx store.Tx, e store.Event, ds []store.Delivery) (bool, error) {
	q, err := txQuerier(tx)
	if err != nil {
		return false, err
	}
	return s.enqueue(ctx, q, e, ds)
}

func (s *Store) enqueue(ctx context.Context, q querier, e store.Event, ds []store.Delivery) (bool, error) {
	if err := checkEvent(e, ds); err != nil {
		return false, err
	}
	n := len(ds)
	ids, hooks := make([]string, n), make([]string, n)
	batch := make([]int32, n)
	next, created := make([]time.Time, n), make([]time.Time, n)
	for i, d := range ds {
		ids[i], hooks[i], batch[i], next[i], created[i] = d.ID, d.WebhookID, int32(d.MaxBatch), d.NextAttempt, createdAt(d, e)
	}
	var made bool
	var notified int64
	err := q.queryRow(ctx, s.q.enqueue, e.Tenant, e.ID, e.Table, e.Op, e.Key, e.Time, string(e.Payload),
		ids, hooks, batch, next, created, notifyChannel, s.schema, eventCreatedAt(e)).Scan(&made, &notified)
	if err != nil {
		return false, fmt.Errorf("postgres: enqueue event %s: %w", e.ID, err)
	}
	return made, nil
}

// EnqueueMany stores many events and their deliveries in one statement.
func (s *Store) EnqueueMany(ctx context.Context, es []store.EventWithDeliveries) ([]bool, error) {
	return s.enqueueMany(ctx, pgxQ{s.pool}, es)
}

// EnqueueManyTx is EnqueueMany inside the caller's transaction.
func (s *Store) EnqueueManyTx(ctx context.Context, tx store.Tx, es []store.EventWithDeliveries) ([]bool, error) {
	q, err := txQuerier(tx)
	if err != nil {
		return nil, err
	}
	return s.enqueueMany(ctx, q, es)
}

func (s *Store) enqueueMany(ctx context.Context, q querier, es []store.EventWithDeliveries) ([]bool, error) {
	if len(es) == 0 {
		return nil, ctx.Err()
	}
	var (
		tenants, ids, tables, ops, keys, payloads = make([]string, len(es)), make([]string, len(es)), make([]string, len(es)), make([]string, len(es)), make([]string, len(es)), make([]string, len(es))
		times, recorded                           = make([]time.Time, len(es)), make([]time.Time, len(es))
		live                                      = make([]int32, len(es))
		dEvent                                    []int64
		dIDs, dHooks                              []string
		dBatch                                    []int32
		dNext, dCreated                           []time.Time
	)
	for i, x := range es {
		e := x.Event
		if err := checkEvent(e, x.Deliveries); err != nil {
			return nil, err
		}
		tenants[i], ids[i], tables[i], ops[i], keys[i], times[i], payloads[i] = e.Tenant, e.ID, e.Table, e.Op, e.Key, e.Time, string(e.Payload)
		recorded[i], live[i] = eventCreatedAt(e), int32(len(x.Deliveries))
		for _, d := range x.Deliveries {
			dEvent = append(dEvent, int64(i+1))
			dIDs = append(dIDs, d.ID)
			dHooks = append(dHooks, d.WebhookID)
			dBatch = append(dBatch, int32(d.MaxBatch))
			dNext = append(dNext, d.NextAttempt)
			dCreated = append(dCreated, createdAt(d, e))
		}
	}
	var made string
	var notified int64
	err := q.queryRow(ctx, s.q.enqueueMany, tenants, ids, tables, ops, keys, times, payloads,
		dEvent, dIDs, dHooks, dBatch, dNext, dCreated, notifyChannel, s.schema, recorded, live).Scan(&made, &notified)
	if err != nil {
		return nil, fmt.Errorf("postgres: enqueue %d events: %w", len(es), err)
	}
	out := make([]bool, len(es))
	for f := range strings.SplitSeq(made, ",") {
		if f == "" {
			continue
		}
		ord, err := strconv.Atoi(f)
		if err != nil || ord < 1 || ord > len(es) {
			return nil, fmt.Errorf("postgres: enqueue: unexpected event place %q", f)
		}
		out[ord-1] = true
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
