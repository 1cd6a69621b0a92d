package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/heraldhr/herald/store"
)

// SaveWebhook inserts or replaces a definition.
func (s *Store) SaveWebhook(ctx context.Context, w store.Webhook, now time.Time) (store.Webhook, error) {
	if w.ID == "" {
		return store.Webhook{}, errors.New("sqlite: webhook without id")
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if w.IfVersion != 0 {
			var stored int64
			err := tx.QueryRowContext(ctx, `SELECT version FROM herald_webhooks WHERE id = ?`, w.ID).Scan(&stored)
			exists := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("sqlite: %w", err)
			}
			switch {
			case w.IfVersion == -1 && exists:
				return fmt.Errorf("webhook %q exists: %w", w.ID, store.ErrConflict)
			case w.IfVersion > 0 && (!exists || stored != w.IfVersion):
				return fmt.Errorf("webhook %q is not at version %d: %w", w.ID, w.IfVersion, store.ErrConflict)
			}
		}
		v, err := bumpVersion(ctx, s, tx)
		if err != nil {
			return err
		}
		var created int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO herald_webhooks (id, tenant, disabled, version, definition, created_at, updated_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
			ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant, disabled = excluded.disabled, version = excluded.version,
				definition = excluded.definition, updated_at = excluded.updated_at
			RETURNING created_at`, w.ID, w.Tenant, w.Disabled, v, []byte(w.Definition), nanos(now)).Scan(&created); err != nil {
			return fmt.Errorf("sqlite: saving webhook: %w", err)
		}
		w.Version, w.CreatedAt, w.UpdatedAt = v, fromNanos(created), fromNanos(nanos(now))
		return nil
	})
	if err != nil {
		return store.Webhook{}, err
	}
	s.notify()
	w.Definition = slices.Clone(w.Definition)
	w.IfVersion = 0
	return w, nil
}

func bumpVersion(ctx context.Context, s *Store, tx *sql.Tx) (int64, error) {
	st, err := s.stmt(ctx, tx, `UPDATE herald_meta SET value = value + 1 WHERE name = 'webhooks_version' RETURNING value`)
	if err != nil {
		return 0, err
	}
	var v int64
	if err := st.QueryRowContext(ctx).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	return v, nil
}

// DeleteWebhook removes a definition and cancels its pending deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, id string, now time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM herald_webhooks WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if affected(res) == 0 {
			return fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
		}
		if _, err := bumpVersion(ctx, s, tx); err != nil {
			return err
		}
		// Every pending row is in a chain (replayed = 0) or is a head, so
		// the two indexes of pending rows find them all.
		for _, q := range []string{
			`UPDATE herald_deliveries SET status = 'canceled', last_error = 'webhook deleted', updated_at = ?2,
				head = 0, lease = NULL, lease_until = 0
				WHERE webhook_id = ?1 AND status = 'pending' AND replayed = 0`,
			`UPDATE herald_deliveries SET status = 'canceled', last_error = 'webhook deleted', updated_at = ?2,
				head = 0, lease = NULL, lease_until = 0
				WHERE webhook_id = ?1 AND status = 'pending' AND head = 1`,
		} {
			if _, err := s.exec(ctx, tx, q, id, nanos(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.notify()
	return nil
}

// Webhook returns one definition.
func (s *Store) Webhook(ctx context.Context, id string) (store.Webhook, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+webhookCols+` FROM herald_webhooks WHERE id = ?`, id)
	if err != nil {
		return store.Webhook{}, fmt.Errorf("sqlite: %w", err)
	}
	ws, err := scanWebhooks(rows)
	if err != nil {
		return store.Webhook{}, err
	}
	if len(ws) == 0 {
		return store.Webhook{}, fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
	}
	return ws[0], nil
}

// Webhooks returns every definition ordered by id.
func (s *Store) Webhooks(ctx context.Context) ([]store.Webhook, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+webhookCols+` FROM herald_webhooks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return scanWebhooks(rows)
}

// WebhooksVersion grows with every save and delete.
func (s *Store) WebhooksVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, `SELECT value FROM herald_meta WHERE name = 'webhooks_version'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: %w", err)
	}
	return v, nil
}

const webhookCols = `id, tenant, disabled, version, definition, created_at, updated_at`

func scanWebhooks(rows *sql.Rows) ([]store.Webhook, error) {
	defer rows.Close()
	var out []store.Webhook
	for rows.Next() {
		var w store.Webhook
		var created, updated int64
		var def []byte
		if err := rows.Scan(&w.ID, &w.Tenant, &w.Disabled, &w.Version, &def, &created, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		w.Definition, w.CreatedAt, w.UpdatedAt = def, fromNanos(created), fromNanos(updated)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return out, nil
}
