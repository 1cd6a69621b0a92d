package postgres

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// wakeups sends the NOTIFY that the store's own enqueues (outside a
// caller's transaction) owe other processes. Sending it inside the
// enqueue's transaction would make the commit wait for a database-wide
// lock that every notifying transaction holds until its commit is
// flushed, so concurrent publishers would commit one at a time. Instead
// the enqueue commits, then asks for a wake-up; one goroutine sends them
// in a transaction of their own, committed asynchronously, while any are
// owed. Asks that arrive while one is being sent are answered together by
// the next, which starts after they committed: a burst costs a handful of
// notifications, and an idle moment costs one round trip. The goroutine
// ends when nothing is owed; Close waits for it.
//
// These wake-ups are for other processes: the caller of an enqueue
// outside a transaction knows it has queued work (a Dispatcher wakes its
// own workers after Publish returns), so this store's subscribers ignore
// the wake-ups it sends itself. Answered anyway, each one cost a claim
// that found nothing: the work had been claimed already.
type wakeups struct {
	mu      sync.Mutex
	owed    bool
	sending bool
	done    chan struct{} // closed when the sender ends
}

// wake asks for a wake-up after a committed enqueue.
func (s *Store) wake() {
	w := &s.wakeups
	w.mu.Lock()
	defer w.mu.Unlock()
	w.owed = true
	if !w.sending {
		w.sending = true
		w.done = make(chan struct{})
		go s.sendWakeups(w.done)
	}
}

func (s *Store) sendWakeups(done chan struct{}) {
	defer close(done)
	w := &s.wakeups
	for {
		w.mu.Lock()
		if !w.owed {
			w.sending = false
			w.mu.Unlock()
			return
		}
		w.owed = false
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := s.pool.Exec(ctx, s.q.wake, notifyChannel, s.wakeTag); err != nil {
			// Only a hint: dispatchers still poll.
			s.log.Debug("herald: postgres wake-up not sent", "error", err)
		}
		cancel()
	}
}

// waitWakeups waits until no wake-up is being sent.
func (s *Store) waitWakeups() {
	w := &s.wakeups
	w.mu.Lock()
	done, sending := w.done, w.sending
	w.mu.Unlock()
	if sending {
		<-done
	}
}

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
		if s.wakes(n.Payload) {
			signal(ch)
		}
	}
}

// wakes reports whether a notification with payload p wakes this store's
// subscribers: any of its schema's, but the wake-ups it sent itself.
func (s *Store) wakes(p string) bool {
	if p == s.schema {
		return true
	}
	rest, ok := strings.CutPrefix(p, s.schema+"\n")
	return ok && rest != "" && p != s.wakeTag
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
