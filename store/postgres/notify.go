package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Subscribe returns a channel that receives a value (coalesced) after work
// is enqueued, released or replayed, or a definition changes, in any
// process using the store's schema. It listens on a connection of its
// own, opened from the pool's configuration but outside the pool, and
// reconnects with backoff when that connection fails, sending a value
// after each reconnect since signals may have been missed meanwhile. The
// channel is closed once ctx ends and the connection is closed.
//
// Signals are hints: workers keep polling, so a missed one delays work by
// at most a poll interval.
func (s *Store) Subscribe(ctx context.Context) (<-chan struct{}, error) {
	conn, err := s.listen(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan struct{}, 1)
	go s.listenLoop(ctx, conn, ch)
	return ch, nil
}

func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{notifyChannel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn, ch chan struct{}) {
	defer close(ch)
	const minWait, maxWait = 100 * time.Millisecond, 5 * time.Second
	wait := minWait
	for {
		if conn == nil {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var err error
			if conn, err = s.listen(ctx); err != nil {
				s.log.Warn("herald: postgres LISTEN connection failed; polling until it is back", "error", err, "retry_in", wait)
				wait = min(2*wait, maxWait)
				continue
			}
			wait = minWait
			signal(ch)
		}
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			closeConn(conn)
			conn = nil
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("herald: postgres LISTEN connection lost; reconnecting", "error", err)
			continue
		}
		if n.Payload == s.schema {
			signal(ch)
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
