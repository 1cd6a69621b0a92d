package transform

import (
	"bytes"
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

// Record is one changed record in an outgoing message. Its maps hold what
// encoding/json decodes from the published change: strings, bools, nil,
// nested map[string]any and []any, and numbers as float64, except numbers
// float64 cannot hold exactly (integer ids beyond 2^53), which are
// json.Number so that no digit changes on the way out.
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

// Clone returns a copy of the record whose maps and slices are copied all
// the way down (through nested map[string]any and []any values).
func (r Record) Clone() Record {
	r.Old = cloneMap(r.Old)
	r.New = cloneMap(r.New)
	r.Context = cloneMap(r.Context)
	if r.Changed != nil {
		r.Changed = append([]string(nil), r.Changed...)
	}
	return r
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = cloneValue(v)
	}
	return c
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneMap(x)
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneValue(e)
		}
		return c
	}
	return v
}

// Message is what a before hook sees and may change: the records about to
// be sent (one, or a batch), and headers to add to the request.
//
// A hook may change records in place, replace them, drop some from a batch
// (they are left out of the body and share the message's outcome) or add
// some. A message that is not a batch must keep exactly one record; a hook
// that removes every record skips the message.
type Message struct {
	ID          string // the webhook-id the request is sent under
	WebhookID   string
	WebhookName string
	Attempt     int  // 1 for the first attempt
	Batch       bool // the webhook batches: the body carries a list
	Records     []Record
	// Header holds headers the hooks add; SetHeader refuses reserved names
	// at once. A reserved name written into the map directly fails the
	// message for good when the request is built. A hook's header replaces
	// a static header of the webhook with the same name; the Authorization
	// that a webhook's own receiver auth sets replaces a hook's.
	Header http.Header
}

// Clone returns a deep copy of the message.
func (m *Message) Clone() *Message {
	if m == nil {
		return nil
	}
	c := *m
	c.Header = m.Header.Clone()
	if m.Records != nil {
		c.Records = make([]Record, len(m.Records))
		for i, r := range m.Records {
			c.Records[i] = r.Clone()
		}
	}
	return &c
}

// Outcome is what became of a message, as an after hook sees it.
type Outcome string

// Outcomes an after hook can see.
const (
	// Delivered: the receiver answered 2xx.
	Delivered Outcome = "delivered"
	// Retrying: the attempt failed and another one is scheduled.
	Retrying Outcome = "retrying"
	// Dead: the attempt failed and none follows (attempts exhausted, a
	// permanent error, or an answer that stops retries).
	Dead Outcome = "dead"
	// Skipped: a before hook skipped the message on purpose (ErrSkip) or
	// removed every record; nothing was sent.
	Skipped Outcome = "skipped"
)

// Result is what an after hook sees once an attempt has ended. The
// webhook's after hooks see it in turn: treat it as read-only.
type Result struct {
	// Message is the message as the before hooks left it, before body
	// shaping: redacted fields are still in it (after hooks are the
	// application's own code).
	Message *Message
	// RequestBody is what was sent: the body, or for GET the query string.
	// Nil when nothing was sent (a before hook failed or skipped).
	RequestBody []byte
	StatusCode  int // 0 when no answer arrived
	Header      http.Header
	Body        []byte // the start of the response body, capped
	Latency     time.Duration
	Attempt     int   // 1 for the first attempt
	Err         error // why the attempt failed; nil on success or skip
	Outcome     Outcome
	// Final is true when no further attempt will follow: the message was
	// delivered, skipped, or is dead (Outcome is not Retrying).
	Final bool
}

// Clone returns a deep copy of the result.
func (r *Result) Clone() *Result {
	if r == nil {
		return nil
	}
	c := *r
	c.Message = r.Message.Clone()
	c.Header = r.Header.Clone()
	c.Body = bytes.Clone(r.Body)
	c.RequestBody = bytes.Clone(r.RequestBody)
	return &c
}

// Before runs before a message is encoded and sent. It returns nil to go
// on, ErrSkip to skip the message on purpose, Permanent(err) to fail it
// for good, or any other error to fail the attempt and retry later.
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
	if f, ok := h.(BeforeFunc); name == "" || h == nil || ok && f == nil {
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
	if f, ok := h.(AfterFunc); name == "" || h == nil || ok && f == nil {
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
