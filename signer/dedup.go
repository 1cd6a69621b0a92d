package signer

import (
	"container/list"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// DefaultDedupWindow is the window Dedup uses when given zero. It spans
// herald's default retry schedule (about a day), so a retry of a message
// whose 2xx answer was lost is still recognised.
const DefaultDedupWindow = 24 * time.Hour

// Seen is what a SeenStore knows about a message id when it is claimed.
type Seen int

const (
	// NotSeen: the id is new (or its record expired). The store has
	// recorded it as in progress; the caller processes the message and
	// then calls Finish.
	NotSeen Seen = iota
	// SeenInProgress: another delivery of the id is being processed and
	// has not finished.
	SeenInProgress
	// SeenProcessed: the id was processed successfully within the window.
	SeenProcessed
)

// String returns the constant's name.
func (s Seen) String() string {
	switch s {
	case NotSeen:
		return "NotSeen"
	case SeenInProgress:
		return "SeenInProgress"
	case SeenProcessed:
		return "SeenProcessed"
	}
	return fmt.Sprintf("Seen(%d)", int(s))
}

// SeenStore remembers the webhook-ids a receiver has handled, for Dedup.
// MemorySeenStore keeps them in memory; a receiver running several
// processes implements it over its shared database or cache (a Redis SET
// NX with expiry, an INSERT ... ON CONFLICT DO NOTHING).
//
// Implementations must be safe for concurrent use, and Claim must be
// atomic: two concurrent Claims of one new id must not both see NotSeen.
type SeenStore interface {
	// Claim reports what the store knows of id and, when it is NotSeen,
	// records it as in progress in the same step. An in-progress record
	// should expire after window too, so that a claimant that died
	// without calling Finish does not block the id for ever.
	Claim(ctx context.Context, id string, window time.Duration) (Seen, error)

	// Finish ends a claim. With processed true, id is remembered as
	// processed until window from now; with false, the record is dropped,
	// so that the sender's next attempt is processed afresh.
	Finish(ctx context.Context, id string, processed bool, window time.Duration) error
}

// Dedup returns middleware that processes each webhook-id at most once
// within window (zero means DefaultDedupWindow), as far as store remembers.
//
// A request whose id was processed is answered 200 OK without calling the
// handler. A request whose id is being processed by a concurrent request
// is answered 409 Conflict, so the sender retries later rather than being
// told it succeeded before the outcome is known. Otherwise the handler
// runs, and the id is marked processed only if it answered 2xx (or wrote
// nothing, which net/http sends as 200). After a non-2xx answer or a panic
// the id is released: the sender will retry, and that retry must reach
// the handler rather than be acknowledged as a duplicate.
//
// A request without webhook-id is answered 400. If the store fails to
// claim, the request is answered 503 Service Unavailable, so the sender
// retries instead of the message being processed twice or dropped.
//
// Use Dedup inside Verifier.Middleware, so that only authentic ids are
// recorded:
//
//	h := v.Middleware(signer.Dedup(store, 0)(handler))
//
// Otherwise a forger could claim an id before the genuine message arrives.
// Dedup panics if store is nil or window is negative.
func Dedup(store SeenStore, window time.Duration) func(http.Handler) http.Handler {
	if store == nil {
		panic("signer: Dedup with a nil SeenStore")
	}
	if window < 0 {
		panic("signer: Dedup with a negative window")
	}
	if window == 0 {
		window = DefaultDedupWindow
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := firstValue(r.Header, "Webhook-Id", HeaderID)
			if id == "" {
				http.Error(w, http.StatusText(http.StatusBadRequest), http.StatusBadRequest)
				return
			}
			seen, err := store.Claim(r.Context(), id, window)
			if err != nil {
				http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
				return
			}
			switch seen {
			case NotSeen:
			case SeenInProgress:
				http.Error(w, "delivery in progress", http.StatusConflict)
				return
			default:
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte("already processed\n"))
				return
			}

			rec := &statusRecorder{ResponseWriter: w}
			processed := false
			defer func() {
				// Runs on panic too, leaving processed false. The request's
				// context may be cancelled by now (the client went away);
				// the claim must still be settled.
				ctx := context.WithoutCancel(r.Context())
				_ = store.Finish(ctx, id, processed, window)
			}()
			next.ServeHTTP(rec, r)
			processed = rec.status == 0 || (rec.status >= 200 && rec.status < 300)
		})
	}
}

// statusRecorder notes the status a handler answers with.
type statusRecorder struct {
	http.ResponseWriter
	status int // the first final (non-1xx) status; 0 while none is written
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets handlers that stream keep doing so through Dedup.
func (s *statusRecorder) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// DefaultMaxSeen is MemorySeenStore's default capacity.
const DefaultMaxSeen = 100_000

// MemorySeenStoreOptions configures a MemorySeenStore; zero fields take
// their defaults.
type MemorySeenStoreOptions struct {
	// MaxEntries bounds the ids kept. When full, the least recently
	// touched id is forgotten first, expired or not; a forgotten id that
	// comes again is processed again. Zero means DefaultMaxSeen.
	MaxEntries int

	// Now is the clock that expires records. Nil means time.Now.
	Now func() time.Time
}

// MemorySeenStore is a SeenStore in memory: bounded, with expiring
// records, safe for concurrent use. It fits a receiver that runs as one
// process; what it holds is lost on restart.
type MemorySeenStore struct {
	now func() time.Time
	max int

	mu    sync.Mutex
	ids   map[string]*list.Element // of *seenRecord
	order *list.List               // least recently touched first
}

type seenRecord struct {
	id        string
	expires   time.Time
	processed bool
}

var _ SeenStore = (*MemorySeenStore)(nil)

// NewMemorySeenStore returns an empty MemorySeenStore.
func NewMemorySeenStore(opts MemorySeenStoreOptions) *MemorySeenStore {
	m := &MemorySeenStore{
		now:   opts.Now,
		max:   opts.MaxEntries,
		ids:   make(map[string]*list.Element),
		order: list.New(),
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.max <= 0 {
		m.max = DefaultMaxSeen
	}
	return m
}

// Claim implements SeenStore.
func (m *MemorySeenStore) Claim(_ context.Context, id string, window time.Duration) (Seen, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	if e, ok := m.ids[id]; ok {
		rec := e.Value.(*seenRecord)
		if now.Before(rec.expires) {
			if rec.processed {
				return SeenProcessed, nil
			}
			return SeenInProgress, nil
		}
		m.remove(e)
	}
	m.insert(&seenRecord{id: id, expires: now.Add(window)})
	return NotSeen, nil
}

// Finish implements SeenStore.
func (m *MemorySeenStore) Finish(_ context.Context, id string, processed bool, window time.Duration) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.ids[id]
	if !processed {
		if ok && !e.Value.(*seenRecord).processed {
			m.remove(e)
		}
		return nil
	}
	if ok {
		rec := e.Value.(*seenRecord)
		rec.processed = true
		rec.expires = now.Add(window)
		m.order.MoveToBack(e)
		return nil
	}
	// Evicted while in progress: remember the outcome all the same.
	m.insert(&seenRecord{id: id, expires: now.Add(window), processed: true})
	return nil
}

// Len reports how many ids are held, counting expired ones not yet swept.
func (m *MemorySeenStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

// sweep drops expired records from the least recently touched end. With
// one window for every id that end expires first; with mixed windows a
// record may outlive its expiry until it reaches the front, and Claim
// checks expiry itself.
func (m *MemorySeenStore) sweep(now time.Time) {
	for e := m.order.Front(); e != nil; e = m.order.Front() {
		if now.Before(e.Value.(*seenRecord).expires) {
			return
		}
		m.remove(e)
	}
}

func (m *MemorySeenStore) insert(rec *seenRecord) {
	m.ids[rec.id] = m.order.PushBack(rec)
	for m.order.Len() > m.max {
		m.remove(m.order.Front())
	}
}

func (m *MemorySeenStore) remove(e *list.Element) {
	delete(m.ids, e.Value.(*seenRecord).id)
	m.order.Remove(e)
}
