package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/internal/failpoint"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/transform"
)

// Dispatcher turns published changes into signed webhook deliveries. Create
// one with New; it is safe for concurrent use.
type Dispatcher struct {
	cfg    Config
	store  store.Store
	log    *slog.Logger
	clock  Clock
	client *http.Client
	// own is client's transport when herald built client: attempts
	// through it skip http.Client (see roundTrip).
	own *guardedTransport

	defs      atomic.Pointer[definitions]
	loadMu    sync.Mutex
	checkedAt atomic.Int64 // unix nanos (real time) of the last version check

	wake chan struct{}
	ids  idSource // of events and deliveries

	life     lifecycle
	health   health
	hookRuns hookRuns // hook calls still running, those left running included
	tel      telemetry

	tokens tokenCache // OAuth2 access tokens, per webhook and version
}

// definitions is an immutable snapshot of the compiled webhooks.
type definitions struct {
	version int64
	byID    map[string]*compiled
	byTable map[string][]*compiled
	routes  map[string]*tableRoutes // built by index
}

// compiled is a webhook ready to match and send.
type compiled struct {
	Webhook
	cond   *condition.Condition
	keys   *signingKeys
	client *http.Client
	mapper *transform.Mapper
	err    error // why this process cannot use the definition

	redacted string        // RedactURL(URL), for every attempt's observer events
	template *http.Request // what every attempt's request copies; see requestTemplate
}

// New checks cfg, fills its defaults and returns a dispatcher. It does not
// start workers: call Start, or drive deliveries with ProcessDue.
func New(cfg Config) (*Dispatcher, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	d := &Dispatcher{
		cfg:    cfg,
		store:  cfg.Store,
		log:    cfg.Logger,
		clock:  cfg.Clock,
		client: cfg.HTTPClient,
		wake:   make(chan struct{}, 1),
	}
	if cfg.ownClient {
		d.own, _ = cfg.HTTPClient.Transport.(*guardedTransport)
	}
	return d, nil
}

func (d *Dispatcher) now() time.Time { return d.clock.Now().UTC() }

// current returns the compiled definitions, reloading them from the store
// when its version moved; the version is checked at most once per
// PollInterval unless force is set.
func (d *Dispatcher) current(ctx context.Context, force bool) (*definitions, error) {
	defs := d.defs.Load()
	if defs != nil && !force && time.Now().UnixNano()-d.checkedAt.Load() < int64(d.cfg.PollInterval) {
		return defs, nil
	}
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	v, err := d.store.WebhooksVersion(ctx)
	if err != nil {
		if defs != nil {
			return defs, nil // serve the last snapshot while the store is unreachable
		}
		return nil, err
	}
	d.checkedAt.Store(time.Now().UnixNano())
	if defs = d.defs.Load(); defs != nil && defs.version == v {
		return defs, nil
	}
	rows, err := d.store.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	next := &definitions{version: v, byID: make(map[string]*compiled, len(rows)), byTable: map[string][]*compiled{}}
	prev := d.defs.Load()
	for _, r := range rows {
		// Reuse what is compiled already: only changed definitions compile.
		c, ok := (*compiled)(nil), false
		if prev != nil {
			c, ok = prev.byID[r.ID]
		}
		if !ok || c.Version != r.Version {
			c = d.compile(r)
		}
		next.byID[c.ID] = c
		next.byTable[c.Table] = append(next.byTable[c.Table], c)
		if next.version < r.Version {
			next.version = r.Version
		}
	}
	next.index()
	d.defs.Store(next)
	d.tokens.retain(next)
	return next, nil
}

// compile turns a stored definition into a usable one. A definition this
// process cannot use keeps its error, so its deliveries are held rather
// than sent wrong.
func (d *Dispatcher) compile(r store.Webhook) *compiled {
	c := &compiled{}
	var err error
	if c.Webhook, err = d.decodeDefinition(r); err != nil {
		c.err = err
		if !errors.Is(err, ErrSecretKey) {
			c.ID = r.ID
			return c
		}
	}
	c.ID, c.Tenant, c.Disabled, c.Version = r.ID, r.Tenant, r.Disabled, r.Version
	c.CreatedAt, c.UpdatedAt = r.CreatedAt, r.UpdatedAt
	c.redacted = RedactURL(c.URL)
	c.template = requestTemplate(c.Webhook)
	if c.cond, err = condition.Compile(c.When); err != nil && c.err == nil {
		c.err = err
	}
	if c.mapper, err = c.Body.Compile(); err != nil && c.err == nil {
		c.err = fmt.Errorf("body: %w", err)
	}
	if c.keys, err = newSigningKeys(c.Webhook); err != nil && c.err == nil {
		c.err = fmt.Errorf("secret: %w", err)
	}
	if c.client, err = d.clientFor(c.Webhook); err != nil && c.err == nil {
		c.err = err
	}
	if c.err == nil {
		c.err = d.checkHooks(c.Webhook)
	}
	if c.err != nil {
		d.log.Error("herald: webhook definition cannot be used by this process; its deliveries are held",
			"webhook_id", c.ID, "error", c.err)
	}
	return c
}

// Register validates a new webhook, compiles its condition, generates a
// secret and an id when they are empty, and stores it. The secret it
// generates is of w.SignatureScheme: a "whsec_" secret by default, an
// Ed25519 key pair for SchemeEd25519 (the returned PublicKey verifies).
func (d *Dispatcher) Register(ctx context.Context, w Webhook) (Webhook, error) {
	if w.ID == "" {
		w.ID = uuid.Must(uuid.NewV7()).String()
	} else if _, err := d.store.Webhook(ctx, w.ID); err == nil {
		return Webhook{}, invalid([]error{inField("id", fmt.Errorf("id %q is taken (use Update)", w.ID))})
	} else if !errors.Is(err, store.ErrNotFound) {
		return Webhook{}, err
	}
	if w.Secret == "" {
		s, err := generateSecret(w.SignatureScheme)
		if err != nil {
			return Webhook{}, err
		}
		w.Secret = s
	}
	w.FailingSince, w.DisabledReason = time.Time{}, ""
	out, err := d.save(ctx, w, -1)
	if errors.Is(err, store.ErrConflict) {
		return Webhook{}, invalid([]error{inField("id", fmt.Errorf("id %q is taken (use Update)", w.ID))})
	}
	if err == nil {
		d.recordChange(ctx, out, audited{action: AuditWebhookCreated})
	}
	return out, err
}

// Update replaces a webhook's definition; validation is that of Register.
// An empty Secret keeps the current one. Pending deliveries use the new
// definition from their next attempt.
//
// A field that comes back Masked (as Webhook's JSON shows it) keeps its
// stored value: the secret, a header value, an Auth secret, the URL or
// token URL. A Masked credential is kept only while it goes where it went:
// after a change of the URL's origin (or of the token URL) it must be
// given again. A new Secret set here replaces the old one at once; use
// RotateSecret to let both sign for a while. PreviousSecrets are stored as
// given; left nil (or Masked) they are kept while Secret is kept and
// dropped when it changes.
//
// With w.Version set (as read from Webhook or Webhooks), Update saves only
// if nobody changed the webhook since: otherwise it fails with ErrConflict
// and changes nothing. A zero Version saves unconditionally.
func (d *Dispatcher) Update(ctx context.Context, w Webhook) (Webhook, error) {
	var err error
	for range 8 {
		var old, out Webhook
		if old, err = d.Webhook(ctx, w.ID); err != nil {
			return Webhook{}, err
		}
		if w.Version != 0 && w.Version != old.Version {
			return Webhook{}, fmt.Errorf("webhook %s is at version %d, not %d: %w", w.ID, old.Version, w.Version, ErrConflict)
		}
		next := w
		if err = keepStored(&next, old); err != nil {
			return Webhook{}, err
		}
		reenabled := carryHealth(&next, old)
		// Saved at the version read, so the kept values are the latest;
		// an unconditional update reads again when another writer won.
		out, err = d.save(ctx, next, old.Version)
		if err == nil {
			d.recordChange(ctx, out, audited{action: AuditWebhookUpdated, old: &old})
		}
		if err == nil && reenabled {
			d.health.reset(out.ID)
		}
		if !errors.Is(err, store.ErrConflict) || w.Version != 0 {
			return out, err
		}
	}
	return Webhook{}, err
}

// modify reads a webhook, applies change and saves it at the version read,
// starting again when another writer got there first.
func (d *Dispatcher) modify(ctx context.Context, id string, change func(*Webhook) error) (before, after Webhook, err error) {
	for range 8 {
		if before, err = d.Webhook(ctx, id); err != nil {
			return before, Webhook{}, err
		}
		w := before
		if err := change(&w); err != nil {
			return before, Webhook{}, err
		}
		after, err = d.save(ctx, w, before.Version)
		if !errors.Is(err, store.ErrConflict) {
			return before, after, err
		}
	}
	return before, Webhook{}, err
}

// save validates and stores w; ifVersion is the store's condition
// (store.Webhook.IfVersion).
func (d *Dispatcher) save(ctx context.Context, w Webhook, ifVersion int64) (Webhook, error) {
	w.Method = w.method()
	w.PreviousSecrets = livePrevious(w.PreviousSecrets, d.now())
	if err := d.validate(&w); err != nil {
		return Webhook{}, err
	}
	w.derive()
	w.Version, w.CreatedAt, w.UpdatedAt = 0, time.Time{}, time.Time{}
	def, err := d.encodeDefinition(w)
	if err != nil {
		return Webhook{}, fmt.Errorf("%w: %v", ErrInvalidWebhook, err)
	}
	row, err := d.store.SaveWebhook(ctx, store.Webhook{ID: w.ID, Tenant: w.Tenant, Disabled: w.Disabled, Definition: def, IfVersion: ifVersion}, d.now())
	if err != nil {
		return Webhook{}, err
	}
	w.Version, w.CreatedAt, w.UpdatedAt = row.Version, row.CreatedAt, row.UpdatedAt
	if err := d.afterSave(ctx, row); err != nil {
		return Webhook{}, err
	}
	return w, nil
}

// Delete removes a webhook; its pending deliveries end as Canceled.
func (d *Dispatcher) Delete(ctx context.Context, id string) error {
	rec := d.deletionRecord(ctx, id)
	if err := d.store.DeleteWebhook(ctx, id, d.now()); err != nil {
		return err
	}
	d.record(ctx, rec)
	return d.afterDelete(ctx, id)
}

// Webhook returns one webhook, secret included.
func (d *Dispatcher) Webhook(ctx context.Context, id string) (Webhook, error) {
	r, err := d.store.Webhook(ctx, id)
	if err != nil {
		return Webhook{}, err
	}
	c := d.compile(r)
	if c.err != nil && (c.Name == "" || errors.Is(c.err, ErrSecretKey)) {
		return Webhook{}, c.err
	}
	return c.Webhook, nil
}

// Webhooks lists every webhook, ordered by id.
func (d *Dispatcher) Webhooks(ctx context.Context) ([]Webhook, error) {
	defs, err := d.current(ctx, true)
	if err != nil {
		return nil, err
	}
	rows, err := d.store.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Webhook, 0, len(rows))
	for _, r := range rows {
		if c, ok := defs.byID[r.ID]; ok && c.Version == r.Version {
			out = append(out, c.Webhook)
			continue
		}
		out = append(out, d.compile(r).Webhook)
	}
	return out, nil
}

// SetDisabled flips the "Published" toggle. Disabling keeps queued
// deliveries waiting; enabling lets them flow, in order.
func (d *Dispatcher) SetDisabled(ctx context.Context, id string, disabled bool) (Webhook, error) {
	return d.setDisabled(ctx, id, disabled, "set by the application")
}

// Enable turns a webhook on: it gets new deliveries again and its queued
// ones flow, in order. It also gives the endpoint a fresh start: it clears
// FailingSince and DisabledReason and closes the webhook's circuit breaker
// in this process (other processes close theirs at their next probe).
func (d *Dispatcher) Enable(ctx context.Context, id string) (Webhook, error) {
	return d.setDisabled(ctx, id, false, "enabled by the application")
}

// Disable turns a webhook off: it gets no new deliveries and its queued
// ones wait until it is enabled. DisabledReason records that the
// application did it.
func (d *Dispatcher) Disable(ctx context.Context, id string) (Webhook, error) {
	return d.setDisabled(ctx, id, true, "disabled by the application")
}

// setDisabled flips the toggle and reports why.
func (d *Dispatcher) setDisabled(ctx context.Context, id string, disabled bool, reason string) (Webhook, error) {
	before, w, err := d.modify(ctx, id, func(w *Webhook) error {
		was := w.Disabled
		w.Disabled = disabled
		markDisabled(w, was, reason)
		return nil
	})
	if err != nil {
		return Webhook{}, err
	}
	d.recordChange(ctx, w, audited{action: toggled(disabled), reason: reason})
	if !disabled {
		d.health.reset(w.ID)
	}
	if before.Disabled != disabled {
		kind := EventWebhookDisabled
		if !disabled {
			kind = EventWebhookEnabled
			d.signal()
		}
		d.observe(Event{Kind: kind, WebhookID: w.ID, Tenant: w.Tenant, Reason: reason})
	}
	return w, nil
}

// Deliveries lists deliveries matching q, oldest first.
func (d *Dispatcher) Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error) {
	if q.Status != "" && !q.Status.Valid() {
		return nil, fmt.Errorf("webhook: unknown delivery status %q", q.Status)
	}
	return d.store.Deliveries(ctx, q)
}

// Delivery returns one delivery.
func (d *Dispatcher) Delivery(ctx context.Context, id string) (Delivery, error) {
	return d.store.Delivery(ctx, id)
}

// Attempts returns the delivery log of one delivery, oldest first.
func (d *Dispatcher) Attempts(ctx context.Context, deliveryID string) ([]Attempt, error) {
	return d.store.Attempts(ctx, deliveryID)
}

// Replay sends a finished (delivered, dead, skipped or canceled) delivery
// again, at once and with a fresh attempt count. It leaves the record's
// order chain: it neither waits for nor holds back other deliveries of its
// key, and travels alone: under its event id, or for a batching webhook
// under its own delivery id. Replaying a pending delivery fails with
// ErrPending.
func (d *Dispatcher) Replay(ctx context.Context, deliveryID string) error {
	before := d.replaySubject(ctx, deliveryID)
	if err := d.store.Replay(ctx, deliveryID, d.now()); err != nil {
		return err
	}
	d.recordReplay(ctx, deliveryID, before)
	d.signal()
	return nil
}

// signal wakes an idle claimer.
func (d *Dispatcher) signal() { nudge(d.wake) }

// payload is the data object of the default envelope, encoded once per
// event.
type payload struct {
	EventID string         `json:"event_id"`
	Table   string         `json:"table"`
	Op      string         `json:"op"`
	Key     string         `json:"key"`
	New     map[string]any `json:"new,omitempty"`
	Old     map[string]any `json:"old,omitempty"`
	Changed []string       `json:"changed,omitempty"`
	Tenant  string         `json:"tenant,omitempty"`
	Context map[string]any `json:"context,omitempty"`
}

// Publish records a change and creates one delivery for each webhook it
// matches, before it returns. It returns the event id, matched or not; the
// same change id again creates nothing and returns the same id.
func (d *Dispatcher) Publish(ctx context.Context, c Change) (string, error) {
	return d.publish(ctx, nil, c)
}

// PublishTx is Publish inside the caller's database transaction: the
// deliveries exist when, and only when, tx commits. tx comes from the
// store (postgres.Tx, sqlite.Tx ...); a store refuses another store's.
func (d *Dispatcher) PublishTx(ctx context.Context, tx store.Tx, c Change) (string, error) {
	if _, ok := d.store.(store.TxEnqueuer); !ok {
		return "", fmt.Errorf("webhook: %T cannot publish inside a transaction", d.store)
	}
	return d.publish(ctx, &tx, c)
}

func (d *Dispatcher) publish(ctx context.Context, tx *store.Tx, c Change) (string, error) {
	now := d.now()
	ev, changed, err := d.event(c, now)
	if err != nil {
		return "", err
	}
	defs, err := d.current(ctx, false)
	if err != nil {
		return "", err
	}
	ds := d.match(defs, c, ev.ID, changed, now)
	failpoint.Hit("publish.before-enqueue")
	if tx != nil {
		_, err = d.store.(store.TxEnqueuer).EnqueueTx(ctx, *tx, ev, ds)
	} else {
		_, err = d.store.Enqueue(ctx, ev, ds)
	}
	failpoint.Hit("publish.after-enqueue")
	if err != nil {
		return "", fmt.Errorf("webhook: storing event %s: %w", ev.ID, err)
	}
	if len(ds) > 0 && tx == nil {
		d.signal()
	}
	return ev.ID, nil
}

// event validates c and encodes it as a stored event.
func (d *Dispatcher) event(c Change, now time.Time) (store.Event, []string, error) {
	bad := func(format string, a ...any) (store.Event, []string, error) {
		return store.Event{}, nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidChange}, a...)...)
	}
	switch {
	case strings.TrimSpace(c.Table) == "":
		return bad("table is empty")
	case !c.Op.Valid():
		return bad("op %q is not INSERT, UPDATE or DELETE", c.Op)
	case c.Key == "":
		return bad("key is empty (the record's primary key orders its deliveries)")
	case (c.Op == Insert || c.Op == Update) && c.New == nil:
		return bad("%s needs New", c.Op)
	case c.Op == Delete && c.Old == nil:
		return bad("DELETE needs Old")
	}
	if c.ID == "" {
		c.ID = d.ids.newIDs(1)
	}
	if c.Time.IsZero() {
		c.Time = now
	}
	var changed []string
	if c.Op == Update {
		changed = condition.Changed(c.Old, c.New)
		if changed == nil {
			changed = []string{}
		}
	}
	p, err := marshalPayload(&payload{EventID: c.ID, Table: c.Table, Op: string(c.Op), Key: c.Key, New: c.New, Old: c.Old,
		Changed: changed, Tenant: c.Tenant, Context: c.Context})
	if err != nil {
		return bad("not encodable as JSON: %v", err)
	}
	if len(p) > d.cfg.MaxPayloadBytes {
		return bad("encoded size %d bytes exceeds MaxPayloadBytes %d", len(p), d.cfg.MaxPayloadBytes)
	}
	return store.Event{ID: c.ID, Tenant: c.Tenant, Table: c.Table, Op: string(c.Op), Key: c.Key,
		Time: c.Time.UTC(), Payload: p, CreatedAt: now}, changed, nil
}
