package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhr/herald/store"
)

var _ store.Counter = (*Store)(nil)

// CountDeliveries counts deliveries by webhook and state in one query, for
// the dispatcher's Stats.
func (s *Store) CountDeliveries(ctx context.Context) ([]store.DeliveryCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT webhook_id, status, count(*), min(created_at)
FROM `+s.schemaIdent+`.deliveries GROUP BY webhook_id, status`)
	if err != nil {
		return nil, fmt.Errorf("postgres: counting deliveries: %w", err)
	}
	defer rows.Close()
	var out []store.DeliveryCount
	for rows.Next() {
		var c store.DeliveryCount
		var st string
		var oldest time.Time
		if err := rows.Scan(&c.WebhookID, &st, &c.Count, &oldest); err != nil {
			return nil, fmt.Errorf("postgres: counting deliveries: %w", err)
		}
		c.Status, c.Oldest = store.Status(st), oldest.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: counting deliveries: %w", err)
	}
	return out, nil
}
