package webhook

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/transform"
)

// Version is herald's version, sent in the User-Agent header.
const Version = "0.1.0"

// Sentinel errors. Detailed errors wrap them; test with errors.Is.
var (
	// ErrInvalidWebhook: Register or Update was given a webhook that
	// cannot work.
	ErrInvalidWebhook = errors.New("webhook: invalid webhook")
	// ErrInvalidChange: Publish was given a change it cannot store.
	ErrInvalidChange = errors.New("webhook: invalid change")
	// ErrNotFound: no webhook or delivery with that id.
	ErrNotFound = store.ErrNotFound
	// ErrPending: a pending delivery cannot be replayed.
	ErrPending = store.ErrPending
	// ErrConflict: the webhook changed since it was read (Update with a
	// stale Version); read it again and reapply the change.
	ErrConflict = store.ErrConflict
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("webhook: dispatcher already started")
)

// Op is the kind of record change.
type Op string

// The record changes herald knows.
const (
	Insert Op = "INSERT"
	Update Op = "UPDATE"
	Delete Op = "DELETE"
)

// Valid reports whether o is Insert, Update or Delete.
func (o Op) Valid() bool { return o == Insert || o == Update || o == Delete }

// eventType names the event in the envelope: "employee.updated".
func eventType(table, op string) string {
	switch Op(op) {
	case Insert:
		return table + ".inserted"
	case Update:
		return table + ".updated"
	case Delete:
		return table + ".deleted"
	}
	return table + ".changed"
}

// Change is one record change reported by the HR backend.
type Change struct {
	ID      string         // idempotency key; a UUIDv7 is assigned when empty
	Table   string         // e.g. "attendance", "employee"
	Op      Op             // Insert, Update or Delete
	Key     string         // the record's primary key; ordering is per Key
	Old     map[string]any // before the change (Update, Delete)
	New     map[string]any // after the change (Insert, Update)
	Time    time.Time      // when it happened; now when zero
	Tenant  string         // organisation or instance; "" when single-tenant
	Context map[string]any // actor, request id, source system ...
}

// Webhook is a webhook definition: data an admin edits and a store keeps.
type Webhook struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Tenant limits the webhook to one tenant's changes; "" receives every
	// tenant's.
	Tenant string `json:"tenant,omitempty"`
	Table  string `json:"table"`
	Ops    []Op   `json:"ops"`
	// When decides, at Publish, whether a change of a listed op is sent.
	// The zero value always matches.
	When condition.Rule `json:"when,omitzero"`
	URL  string         `json:"url"`
	// Method is POST when empty; PUT, PATCH and GET are allowed.
	Method string `json:"method,omitempty"`
	// Headers are static headers sent with every request (tokens, API
	// keys). Their values never appear in logs or String output.
	Headers map[string]string `json:"headers,omitempty"`
	// Body shapes the request body; the zero value is the JSON envelope.
	Body transform.Body `json:"body,omitzero"`
	// Before and After name hooks registered in Config.Hooks, run in order.
	Before []string `json:"before,omitempty"`
	After  []string `json:"after,omitempty"`
	// MaxBatch is the number of records one request may carry; 0 or 1 is
	// one record per request, as a single object.
	MaxBatch int `json:"max_batch,omitempty"`
	// Secret signs requests: a "whsec_" secret, or a "whsk_" Ed25519
	// private key; Register generates one when empty.
	Secret string `json:"secret,omitempty"`
	// SignatureScheme picks the kind of secret Register generates when
	// Secret is empty: SchemeHMAC ("hmac-sha256", the default, v1
	// signatures) or SchemeEd25519 ("ed25519", v1a signatures verified
	// with PublicKey). It is set from Secret on every webhook returned.
	SignatureScheme string `json:"signature_scheme,omitempty"`
	// PublicKey ("whpk_...") verifies the signatures of an Ed25519
	// webhook; hand it to the receiver. Derived from Secret; empty for
	// HMAC secrets.
	PublicKey string `json:"public_key,omitempty"`
	// PreviousSecrets are earlier secrets that keep signing, beside
	// Secret, until their ExpiresAt: a rotation's grace (RotateSecret).
	PreviousSecrets []Secret `json:"previous_secrets,omitempty"`
	// Auth authenticates herald to the receiver (Basic, bearer token or
	// OAuth2 client credentials); nil: only Headers.
	Auth *Auth `json:"auth,omitempty"`
	// Client names the TLS setup in Config.ClientTLS, or the *http.Client
	// in Config.Clients, that sends this webhook's requests (and its
	// OAuth2 token requests): a TLS certificate for receivers that want
	// mutual TLS. Empty: the dispatcher's client.
	Client string `json:"client,omitempty"`
	// Disabled is the "Published" toggle, inverted: a disabled webhook
	// gets no new deliveries and its queued ones wait.
	Disabled bool `json:"disabled,omitempty"`
	// MaxConcurrency caps this webhook's requests in flight in one
	// process; 0: Config.MaxConcurrency.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// RateLimit caps this webhook's requests per second from one process,
	// spaced evenly (0.5 is one every two seconds); 0: no cap.
	RateLimit float64 `json:"rate_limit,omitempty"`
	// FailingSince is when the webhook's current run of failed requests
	// began, once it has lasted a minute; zero while requests succeed.
	// The dispatcher keeps it (Register and Update ignore what is passed)
	// and disables the webhook when it is Config.DisableAfter old.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// DisabledReason says why the webhook was disabled: by the
	// application, a 410 Gone answer, or sustained failure. Kept by the
	// dispatcher; cleared when the webhook is enabled.
	DisabledReason string `json:"disabled_reason,omitempty"`

	// Version grows with every stored change of the definition; set by
	// the store.
	Version   int64     `json:"version,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// String describes the webhook without its secret or header values.
func (w Webhook) String() string {
	return fmt.Sprintf("webhook %s %q (%s %v -> %s %s)", w.ID, w.Name, w.Table, w.Ops, w.method(), RedactURL(w.URL))
}

// LogValue keeps secrets out of structured logs.
func (w Webhook) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", w.ID),
		slog.String("name", w.Name),
		slog.String("table", w.Table),
		slog.String("url", RedactURL(w.URL)),
	)
}

// GoString keeps secrets out of %#v.
func (w Webhook) GoString() string { return w.String() }

func (w Webhook) method() string {
	if w.Method == "" {
		return "POST"
	}
	return strings.ToUpper(w.Method)
}

// RedactURL returns u without user info and with query values masked, for
// logs and errors.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	p.User = nil
	if p.RawQuery != "" {
		q := p.Query()
		for k := range q {
			q[k] = []string{"xxxxx"}
		}
		p.RawQuery = q.Encode()
	}
	p.Fragment = ""
	return p.String()
}

// Status is the state of a delivery.
type Status = store.Status

// Delivery states.
const (
	Pending   = store.Pending
	Delivered = store.Delivered
	Dead      = store.Dead
	Skipped   = store.Skipped
	Canceled  = store.Canceled
)

// Delivery is one event on its way to one webhook: its status, attempt
// count, last error, batch id and times.
type Delivery = store.Delivery

// Attempt is one request made for a delivery, as the delivery log keeps it.
type Attempt = store.Attempt

// DeliveryQuery selects deliveries; zero fields do not filter. Results run
// from oldest to newest; pass the Seq of the last one as After for the
// next page.
type DeliveryQuery = store.DeliveryFilter

// DeliveryError describes a failed attempt. It unwraps to the transport
// error, if any.
type DeliveryError struct {
	StatusCode int    // 0 when no answer arrived
	Attempt    int    // the attempt's number
	URL        string // redacted
	Err        error  // the transport error, or nil for an unwelcome status
}

// Error describes the attempt, with the URL redacted.
func (e *DeliveryError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("attempt %d to %s: %v", e.Attempt, e.URL, e.Err)
	}
	return fmt.Sprintf("attempt %d to %s: status %d", e.Attempt, e.URL, e.StatusCode)
}

// Unwrap returns the transport error, or nil for an unwelcome status.
func (e *DeliveryError) Unwrap() error { return e.Err }
