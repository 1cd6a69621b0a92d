package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/heraldhr/herald/store"
)

var _ store.Auditor = (*Store)(nil)

// AppendAudit stores r and returns it with its Seq.
func (s *Store) AppendAudit(ctx context.Context, r store.AuditRecord) (store.AuditRecord, error) {
	if r.ID == "" || r.Action == "" {
		return store.AuditRecord{}, fmt.Errorf("postgres: audit record without id or action")
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO `+s.schemaIdent+`.audit
    (id, time, tenant, actor, action, webhook_id, webhook_version, delivery_id, definition, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::json, $10::text::json) RETURNING seq`,
		r.ID, r.Time, r.Tenant, r.Actor, r.Action, r.WebhookID, r.WebhookVersion, r.DeliveryID,
		nullJSON(r.Definition), nullJSON(r.Detail)).Scan(&r.Seq)
	if err != nil {
		return store.AuditRecord{}, fmt.Errorf("postgres: appending audit record: %w", err)
	}
	return r, nil
}

// AuditRecords lists the records matching f in order of Seq (newest first
// with f.Newest).
func (s *Store) AuditRecords(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Tenant != "" {
		where = append(where, "tenant = "+arg(f.Tenant))
	}
	if f.WebhookID != "" {
		where = append(where, "webhook_id = "+arg(f.WebhookID))
	}
	if f.Action != "" {
		where = append(where, "action = "+arg(f.Action))
	}
	if f.Actor != "" {
		where = append(where, "actor = "+arg(f.Actor))
	}
	if f.Definitions {
		where = append(where, "definition IS NOT NULL")
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "time < "+arg(f.Until))
	}
	order := "ASC"
	if f.Newest {
		order = "DESC"
		if f.After > 0 {
			where = append(where, "seq < "+arg(f.After))
		}
	} else if f.After > 0 {
		where = append(where, "seq > "+arg(f.After))
	}
	q := `SELECT seq, id, time, tenant, actor, action, webhook_id, webhook_version, delivery_id,
    definition::text, detail::text FROM ` + s.schemaIdent + `.audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq " + order
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing audit records: %w", err)
	}
	defer rows.Close()
	var out []store.AuditRecord
	for rows.Next() {
		var r store.AuditRecord
		var def, detail *string
		if err := rows.Scan(&r.Seq, &r.ID, &r.Time, &r.Tenant, &r.Actor, &r.Action, &r.WebhookID,
			&r.WebhookVersion, &r.DeliveryID, &def, &detail); err != nil {
			return nil, fmt.Errorf("postgres: listing audit records: %w", err)
		}
		r.Time = r.Time.UTC()
		if def != nil {
			r.Definition = json.RawMessage(*def)
		}
		if detail != nil {
			r.Detail = json.RawMessage(*detail)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// nullJSON passes empty JSON as SQL NULL.
func nullJSON(b json.RawMessage) *string {
	if len(b) == 0 {
		return nil
	}
	v := string(b)
	return &v
}
