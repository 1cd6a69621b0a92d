package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhr/herald/store"
)

// SaveWebhook inserts or replaces a definition, or with w.IfVersion saves
// it only if it is new (-1) or stored at that version, failing with
// store.ErrConflict otherwise. Its version comes from a counter row
// updated in the same statement, and a NOTIFY tells other processes to
// reload.
func (s *Store) SaveWebhook(ctx context.Context, w store.Webhook, now time.Time) (store.Webhook, error) {
	if w.ID == "" {
		return store.Webhook{}, errors.New("postgres: webhook without id")
	}
	def := w.Definition
	if len(def) == 0 {
		def = json.RawMessage(`{}`)
	}
	var ok bool
	err := s.pool.QueryRow(ctx, s.q.saveWebhook, w.ID, w.Tenant, w.Disabled, string(def), now, notifyChannel, s.schema, w.IfVersion).
		Scan(&w.Version, &w.CreatedAt, &w.UpdatedAt, &ok)
	switch {
	case errors.Is(err, pgx.ErrNoRows) && w.IfVersion == -1:
		return store.Webhook{}, fmt.Errorf("webhook %q exists: %w", w.ID, store.ErrConflict)
	case errors.Is(err, pgx.ErrNoRows):
		return store.Webhook{}, fmt.Errorf("webhook %q is not at version %d: %w", w.ID, w.IfVersion, store.ErrConflict)
	case err != nil:
		return store.Webhook{}, fmt.Errorf("postgres: save webhook %q: %w", w.ID, err)
	}
	w.IfVersion = 0
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	w.Definition = append(json.RawMessage(nil), def...)
	return w, nil
}

// DeleteWebhook removes a definition and cancels its pending deliveries.
func (s *Store) DeleteWebhook(ctx context.Context, id string, now time.Time) error {
	var deleted, v, canceled, n int64
	if err := s.pool.QueryRow(ctx, s.q.deleteWebhook, id, now, notifyChannel, s.schema).Scan(&deleted, &v, &canceled, &n); err != nil {
		return fmt.Errorf("postgres: delete webhook %q: %w", id, err)
	}
	if deleted == 0 {
		return fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
	}
	return nil
}

func scanWebhook(r pgx.Row) (store.Webhook, error) {
	var w store.Webhook
	var def string
	if err := r.Scan(&w.ID, &w.Tenant, &w.Disabled, &w.Version, &def, &w.CreatedAt, &w.UpdatedAt); err != nil {
		return w, err
	}
	w.Definition = json.RawMessage(def)
	w.CreatedAt, w.UpdatedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC()
	return w, nil
}

// Webhook returns one definition.
func (s *Store) Webhook(ctx context.Context, id string) (store.Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, s.q.webhook, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Webhook{}, fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Webhook{}, fmt.Errorf("postgres: webhook %q: %w", id, err)
	}
	return w, nil
}

// Webhooks returns every definition, ordered by id.
func (s *Store) Webhooks(ctx context.Context) ([]store.Webhook, error) {
	rows, err := s.pool.Query(ctx, s.q.webhooks)
	if err != nil {
		return nil, fmt.Errorf("postgres: webhooks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Webhook, error) { return scanWebhook(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: webhooks: %w", err)
	}
	return out, nil
}

// WebhooksVersion reads the counter every save and delete moves.
func (s *Store) WebhooksVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, s.q.webhooksVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: webhooks version: %w", err)
	}
	return v, nil
}

// Delivery returns one delivery.
func (s *Store) Delivery(ctx context.Context, id string) (store.Delivery, error) {
	var d store.Delivery
	err := s.pool.QueryRow(ctx, s.q.delivery, id).Scan(deliveryDest(&d)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Delivery{}, fmt.Errorf("delivery %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Delivery{}, fmt.Errorf("postgres: delivery %q: %w", id, err)
	}
	fixDelivery(&d)
	return d, nil
}

// Deliveries lists deliveries matching f in order of sequence.
func (s *Store) Deliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error) {
	var since, until *time.Time
	if !f.Since.IsZero() {
		since = &f.Since
	}
	if !f.Until.IsZero() {
		until = &f.Until
	}
	var limit *int
	if f.Limit > 0 {
		limit = &f.Limit
	}
	rows, err := s.pool.Query(ctx, s.q.deliveries, f.After, f.WebhookID, f.EventID, string(f.Status), f.Tenant, f.Key, since, until, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Delivery, error) {
		var d store.Delivery
		err := r.Scan(deliveryDest(&d)...)
		fixDelivery(&d)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: deliveries: %w", err)
	}
	return out, nil
}

// Attempts lists a delivery's attempts, oldest first.
func (s *Store) Attempts(ctx context.Context, deliveryID string) ([]store.Attempt, error) {
	rows, err := s.pool.Query(ctx, s.q.attempts, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("postgres: attempts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Attempt, error) {
		var a store.Attempt
		var latency int64
		var headers []byte
		err := r.Scan(&a.Number, &a.MessageID, &a.At, &a.StatusCode, &latency, &headers, &a.ResponseBody, &a.Error, &a.WebhookVersion)
		if err != nil {
			return a, err
		}
		a.At, a.Latency = a.At.UTC(), time.Duration(latency)
		if len(headers) > 0 {
			err = json.Unmarshal(headers, &a.RequestHeaders)
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: attempts: %w", err)
	}
	if len(out) == 0 {
		if _, err := s.Delivery(ctx, deliveryID); err != nil {
			return nil, err
		}
	}
	return out, nil
}
