package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/heraldhr/herald/store"
)

// deliveryCols are the columns deliveryDest reads, from table alias d.
const deliveryCols = `d.seq, d.id, d.event_id, d.webhook_id, d.tenant, d.record_key, d.max_batch, d.status, d.attempts,
	d.next_attempt, d.last_error, d.last_code, d.batch_id, d.replayed, d.created_at, d.updated_at`

// pendingCols are deliveryCols without the status, for the claim's
// queries, which read pending rows only: the column would cost every row
// a string of its own.
const pendingCols = `d.seq, d.id, d.event_id, d.webhook_id, d.tenant, d.record_key, d.max_batch, d.attempts,
	d.next_attempt, d.last_error, d.last_code, d.batch_id, d.replayed, d.created_at, d.updated_at`

// eventCols are the columns itemDest reads, from table alias e, joined to
// its delivery d: the event's id, tenant and key are the delivery's.
const eventCols = `e.table_name, e.op, e.time, e.payload, e.created_at`

// deliveryDest returns scan destinations for deliveryCols.
func deliveryDest(d *store.Delivery) []any {
	return []any{(*int64Col)(&d.Seq), &d.ID, &d.EventID, &d.WebhookID, &d.Tenant, &d.Key, (*intCol)(&d.MaxBatch),
		(*statusCol)(&d.Status), (*intCol)(&d.Attempts), (*nanoTime)(&d.NextAttempt), &d.LastError, (*intCol)(&d.LastCode),
		&d.BatchID, (*boolCol)(&d.Replayed), (*nanoTime)(&d.CreatedAt), (*nanoTime)(&d.UpdatedAt)}
}

// itemDest returns scan destinations for pendingCols followed by
// eventCols; the event's id, tenant and key are the delivery's, and its
// status pending, set by scanItems.
func itemDest(it *item) []any {
	d, e := &it.d, &it.e
	return []any{(*int64Col)(&d.Seq), &d.ID, &d.EventID, &d.WebhookID, &d.Tenant, &d.Key, (*intCol)(&d.MaxBatch),
		(*intCol)(&d.Attempts), (*nanoTime)(&d.NextAttempt), &d.LastError, (*intCol)(&d.LastCode),
		&d.BatchID, (*boolCol)(&d.Replayed), (*nanoTime)(&d.CreatedAt), (*nanoTime)(&d.UpdatedAt),
		&e.Table, &e.Op, (*nanoTime)(&e.Time), (*payloadCol)(&e.Payload), (*nanoTime)(&e.CreatedAt)}
}

// item is a delivery with its event.
type item struct {
	d store.Delivery
	e store.Event
}

// scanItems reads rows of pendingCols followed by eventCols, pending
// deliveries with their events, up to limit of them (0: all).
func scanItems(rows *sql.Rows, limit int) ([]item, error) {
	return scanItemsInto(rows, limit, nil)
}

// scanItemsInto is scanItems reading into buf when it is large enough.
func scanItemsInto(rows *sql.Rows, limit int, buf []item) ([]item, error) {
	defer rows.Close()
	var out []item
	if limit > 0 {
		// An item is large: growing the slice from nothing copies it
		// over and over.
		if want := min(limit, 128); cap(buf) >= want {
			out = buf[:0]
		} else {
			out = make([]item, 0, want)
		}
	}
	var it item
	dest := itemDest(&it)
	for (limit == 0 || len(out) < limit) && rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		it.d.Status = store.Pending
		it.e.ID, it.e.Tenant, it.e.Key = it.d.EventID, it.d.Tenant, it.d.Key
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return out, nil
}

// Delivery returns one delivery.
func (s *Store) Delivery(ctx context.Context, id string) (store.Delivery, error) {
	ds, err := s.deliveries(ctx, `SELECT `+deliveryCols+` FROM herald_deliveries d WHERE d.id = ?`, id)
	if err != nil {
		return store.Delivery{}, err
	}
	if len(ds) == 0 {
		return store.Delivery{}, fmt.Errorf("delivery %q: %w", id, store.ErrNotFound)
	}
	return ds[0], nil
}

// Deliveries lists deliveries matching f in order of sequence.
func (s *Store) Deliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	var q strings.Builder
	q.WriteString(`SELECT ` + deliveryCols + ` FROM herald_deliveries d WHERE d.seq > ?`)
	args := []any{f.After}
	add := func(cond string, v any) {
		q.WriteString(" AND " + cond)
		args = append(args, v)
	}
	if f.WebhookID != "" {
		add("d.webhook_id = ?", f.WebhookID)
	}
	if f.EventID != "" {
		add("d.event_id = ?", f.EventID)
	}
	if f.Status != "" {
		add("d.status = ?", string(f.Status))
	}
	if f.Tenant != "" {
		add("d.tenant = ?", f.Tenant)
	}
	if f.Key != "" {
		add("d.record_key = ?", f.Key)
	}
	if !f.Since.IsZero() {
		add("d.created_at >= ?", nanos(f.Since))
	}
	if !f.Until.IsZero() {
		add("d.created_at < ?", nanos(f.Until))
	}
	q.WriteString(" ORDER BY d.seq")
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	return s.deliveries(ctx, q.String(), args...)
}

func (s *Store) deliveries(ctx context.Context, q string, args ...any) ([]store.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		var d store.Delivery
		if err := rows.Scan(deliveryDest(&d)...); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return out, nil
}

// Attempts lists a delivery's attempts, oldest first.
func (s *Store) Attempts(ctx context.Context, id string) ([]store.Attempt, error) {
	// One statement reads one snapshot: the delivery and its attempts
	// cannot be purged between two reads.
	rows, err := s.r.QueryContext(ctx, `SELECT a.number, a.message_id, a.at, a.status_code, a.latency, a.request_headers,
			a.response_body, a.error, a.webhook_version
		FROM herald_deliveries d LEFT JOIN herald_attempts a ON a.delivery_seq = d.seq
		WHERE d.id = ? ORDER BY a.id`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	found := false
	out := []store.Attempt{}
	for rows.Next() {
		found = true
		var num, at, latency, code, version sql.NullInt64
		var msg, headers, body, errText sql.NullString
		if err := rows.Scan(&num, &msg, &at, &code, &latency, &headers, &body, &errText, &version); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		if !num.Valid {
			continue // the delivery has no attempt yet
		}
		a := store.Attempt{MessageID: msg.String, Number: int(num.Int64), At: fromNanos(at.Int64), StatusCode: int(code.Int64),
			Latency: time.Duration(latency.Int64), ResponseBody: body.String, Error: errText.String, WebhookVersion: version.Int64}
		if err := json.Unmarshal([]byte(headers.String), &a.RequestHeaders); err != nil {
			return nil, fmt.Errorf("sqlite: attempt %d of delivery %q: headers: %w", a.Number, id, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("delivery %q: %w", id, store.ErrNotFound)
	}
	return out, nil
}
