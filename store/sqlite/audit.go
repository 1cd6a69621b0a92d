package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/heraldhr/herald/store"
)

var _ store.Auditor = (*Store)(nil)

// AppendAudit stores r and returns it with its Seq.
func (s *Store) AppendAudit(ctx context.Context, r store.AuditRecord) (store.AuditRecord, error) {
	if r.ID == "" || r.Action == "" {
		return store.AuditRecord{}, fmt.Errorf("sqlite: audit record without id or action")
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO herald_audit
			(id, time, tenant, actor, action, webhook_id, webhook_version, delivery_id, definition, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
			r.ID, nanos(r.Time), r.Tenant, r.Actor, r.Action, r.WebhookID, r.WebhookVersion, r.DeliveryID,
			blobOrNull(r.Definition), blobOrNull(r.Detail)).Scan(&r.Seq)
	})
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("sqlite: appending audit record: %w", err)
	}
	return r, nil
}

// AuditRecords lists the records matching f in order of Seq (newest first
// with f.Newest). It reads from the read pool, so listing never waits for
// a claim.
func (s *Store) AuditRecords(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.Tenant != "" {
		add("tenant = ?", f.Tenant)
	}
	if f.WebhookID != "" {
		add("webhook_id = ?", f.WebhookID)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Definitions {
		where = append(where, "definition IS NOT NULL")
	}
	if !f.Since.IsZero() {
		add("time >= ?", nanos(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", nanos(f.Until))
	}
	order := "ASC"
	if f.Newest {
		order = "DESC"
		if f.After > 0 {
			add("seq < ?", f.After)
		}
	} else if f.After > 0 {
		add("seq > ?", f.After)
	}
	q := `SELECT seq, id, time, tenant, actor, action, webhook_id, webhook_version, delivery_id, definition, detail
		FROM herald_audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq " + order
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing audit records: %w", err)
	}
	defer rows.Close()
	var out []store.AuditRecord
	for rows.Next() {
		var r store.AuditRecord
		var at int64
		var def, detail []byte
		if err := rows.Scan(&r.Seq, &r.ID, &at, &r.Tenant, &r.Actor, &r.Action, &r.WebhookID, &r.WebhookVersion,
			&r.DeliveryID, &def, &detail); err != nil {
			return nil, fmt.Errorf("sqlite: listing audit records: %w", err)
		}
		r.Time = fromNanos(at)
		if def != nil {
			r.Definition = json.RawMessage(def)
		}
		if detail != nil {
			r.Detail = json.RawMessage(detail)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing audit records: %w", err)
	}
	return out, nil
}

// blobOrNull passes empty JSON as SQL NULL.
func blobOrNull(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return []byte(b)
}
