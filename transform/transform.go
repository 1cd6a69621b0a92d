package transform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// ErrSkip, returned by a before hook, skips the delivery on purpose: it is
// recorded as skipped and not retried.
var ErrSkip = errors.New("transform: skip delivery")

// ErrUnknownHook reports a hook name nobody registered.
var ErrUnknownHook = errors.New("transform: unknown hook")

// ErrDuplicateHook reports a second registration under one name.
var ErrDuplicateHook = errors.New("transform: hook name already registered")

// permanent marks an error that must not be retried.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent wraps err so that the delivery fails for good instead of being
// retried. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was made by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}

// Record is one changed record in an outgoing message.
type Record struct {
	EventID string
	Table   string
	Op      string // INSERT, UPDATE or DELETE
	Key     string
	Tenant  string
	Time    time.Time
	Old     map[string]any
	New     map[string]any
	Changed []string
	Context map[string]any
}

// Message is what a before hook sees and may change: the records about to
// be sent (one, or a batch), and headers to add to the request.
type Message struct {
	ID          string // the webhook-id the request is sent under
	WebhookID   string
	WebhookName string
	Attempt     int // 1 for the first attempt
	Batch       bool
	Records     []Record
	// Header holds headers the hooks add. Reserved names (webhook-*, Host,
	// Content-Type, Content-Length, hop-by-hop headers) are refused when the
	// request is built.
	Header http.Header
}

// Result is what an after hook sees once an attempt has ended.
type Result struct {
	Message    *Message
	StatusCode int // 0 when no answer arrived
	Header     http.Header
	Body       []byte // the start of the response body, capped
	Latency    time.Duration
	Attempt    int
	Err        error // why the attempt failed; nil on success
	// Final is true when no further attempt will follow: the delivery
	// succeeded, was skipped, or is dead.
	Final bool
}

// Before runs before a message is encoded and sent.
type Before interface {
	Before(ctx context.Context, m *Message) error
}

// BeforeFunc adapts a function to Before.
type BeforeFunc func(ctx context.Context, m *Message) error

// Before calls f.
func (f BeforeFunc) Before(ctx context.Context, m *Message) error { return f(ctx, m) }

// After runs after every attempt. Its error is reported and never changes
// the delivery's outcome.
type After interface {
	After(ctx context.Context, r *Result) error
}

// AfterFunc adapts a function to After.
type AfterFunc func(ctx context.Context, r *Result) error

// After calls f.
func (f AfterFunc) After(ctx context.Context, r *Result) error { return f(ctx, r) }

// Registry holds hooks by name. It is safe for concurrent use; hooks are
// usually registered once at start-up.
type Registry struct {
	mu     sync.RWMutex
	before map[string]Before
	after  map[string]After
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{before: map[string]Before{}, after: map[string]After{}}
}

// RegisterBefore adds a before hook under name.
func (r *Registry) RegisterBefore(name string, h Before) error {
	if name == "" || h == nil {
		return fmt.Errorf("transform: a hook needs a name and a function")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.before[name]; ok {
		return fmt.Errorf("before hook %q: %w", name, ErrDuplicateHook)
	}
	r.before[name] = h
	return nil
}

// RegisterAfter adds an after hook under name.
func (r *Registry) RegisterAfter(name string, h After) error {
	if name == "" || h == nil {
		return fmt.Errorf("transform: a hook needs a name and a function")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.after[name]; ok {
		return fmt.Errorf("after hook %q: %w", name, ErrDuplicateHook)
	}
	r.after[name] = h
	return nil
}

// LookupBefore returns the before hook registered under name.
func (r *Registry) LookupBefore(name string) (Before, error) {
	if r != nil {
		r.mu.RLock()
		h, ok := r.before[name]
		r.mu.RUnlock()
		if ok {
			return h, nil
		}
	}
	return nil, fmt.Errorf("before hook %q: %w", name, ErrUnknownHook)
}

// LookupAfter returns the after hook registered under name.
func (r *Registry) LookupAfter(name string) (After, error) {
	if r != nil {
		r.mu.RLock()
		h, ok := r.after[name]
		r.mu.RUnlock()
		if ok {
			return h, nil
		}
	}
	return nil, fmt.Errorf("after hook %q: %w", name, ErrUnknownHook)
}
