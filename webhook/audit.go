package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhr/herald/store"
)

// SystemActor is the actor of what the dispatcher does on its own, such
// as disabling a webhook whose receiver answered 410 Gone.
const SystemActor = "herald"

// ErrNoAudit: the store keeps no audit trail (it does not implement
// store.Auditor), so there is nothing to list.
var ErrNoAudit = errors.New("webhook: the store keeps no audit trail")

type actorKey struct{}

// WithActor returns a copy of ctx that names who acts, for the audit
// trail: pass it to Register, Update, Delete, SetDisabled, RotateSecret
// and Replay. The actor is recorded as given (a user id or an email, as
// the application knows its users); without it the record's actor is "".
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor WithActor put in ctx, or "".
func ActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// AuditAction names what an audit record records.
type AuditAction string

// Audit actions. More may be added.
const (
	AuditWebhookCreated  AuditAction = "webhook.created"
	AuditWebhookUpdated  AuditAction = "webhook.updated"
	AuditWebhookEnabled  AuditAction = "webhook.enabled"
	AuditWebhookDisabled AuditAction = "webhook.disabled"
	AuditWebhookDeleted  AuditAction = "webhook.deleted"
	// AuditSecretRotated: RotateSecret or RotateSecretTo gave the webhook
	// a new signing secret.
	AuditSecretRotated AuditAction = "webhook.secret_rotated"
	// AuditDeliveryReplayed: Replay sent a finished delivery again.
	AuditDeliveryReplayed AuditAction = "delivery.replayed"
	// AuditDeliveriesRecovered: a webhook's finished deliveries were
	// sent again in bulk.
	AuditDeliveriesRecovered AuditAction = "deliveries.recovered"
)

// AuditRecord is one entry of the audit trail.
type AuditRecord struct {
	ID   string
	Time time.Time
	// Tenant is the tenant of the webhook the record is about; "" for a
	// webhook that serves every tenant.
	Tenant string
	// Actor is who acted (see WithActor): SystemActor for what the
	// dispatcher did on its own, "" when the caller did not say.
	Actor  string
	Action AuditAction
	// WebhookID is the webhook the record is about.
	WebhookID string
	// Version is the definition version the action produced (or, for a
	// deletion, the last one); 0 for deliveries.
	Version int64
	// DeliveryID is the delivery replayed.
	DeliveryID string
	// Reason says why, when there is more to say than the action: why a
	// webhook was disabled, for one.
	Reason string
	// Changed lists the top-level fields of the definition an update
	// changed, by their JSON names: names only, never values.
	Changed []string
	// Detail holds what else the action is about: a rotation's grace, a
	// recovery's query and counts, a replayed delivery's earlier status.
	Detail map[string]string
	// Definition is the webhook as the change left it, with its secrets
	// masked as Webhook's JSON masks them; nil for records that change no
	// definition. These records are the webhook's versions.
	Definition *Webhook
}

// AuditQuery selects audit records; zero fields do not filter.
type AuditQuery struct {
	Tenant    string
	WebhookID string
	Action    AuditAction
	Actor     string
	Since     time.Time // at or after
	Until     time.Time // before
	// Versions keeps only the records that carry a Definition: with
	// WebhookID, the webhook's versions.
	Versions bool
	// Oldest lists the oldest record first; by default the newest comes
	// first.
	Oldest bool
	// Cursor continues from a previous page: pass its NextCursor with the
	// same filters. "" starts at the beginning.
	Cursor string
	// Limit is the page size; 0: DefaultAuditLimit; at most MaxAuditLimit.
	Limit int
}

// Page sizes of Audit.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = 1000
)

// AuditPage is one page of the audit trail.
type AuditPage struct {
	Records []AuditRecord
	// More reports that further records matched when the page was read.
	More bool
	// NextCursor continues after this page's last record; "" when the
	// page is empty.
	NextCursor string
}

// Audit returns a page of the audit trail, newest record first unless
// q.Oldest. Every change of a webhook made through the dispatcher
// (Register, Update, SetDisabled, RotateSecret, Delete, and disabling by
// the dispatcher itself), every Replay and every recovery is recorded,
// with the actor WithActor put in the context. It fails with ErrNoAudit
// when the store keeps no trail.
//
// A record is written after the change it records succeeded; if writing
// it fails, the change stands and the failure is logged.
func (d *Dispatcher) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	a, ok := d.store.(store.Auditor)
	if !ok {
		return AuditPage{}, ErrNoAudit
	}
	switch {
	case q.Limit < 0:
		return AuditPage{}, fmt.Errorf("%w: negative limit", ErrInvalidQuery)
	case q.Limit == 0:
		q.Limit = DefaultAuditLimit
	case q.Limit > MaxAuditLimit:
		q.Limit = MaxAuditLimit
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return AuditPage{}, fmt.Errorf("%w: until must be after since", ErrInvalidQuery)
	}
	f := store.AuditFilter{Tenant: q.Tenant, WebhookID: q.WebhookID, Action: string(q.Action), Actor: q.Actor,
		Since: q.Since, Until: q.Until, Definitions: q.Versions, Newest: !q.Oldest, Limit: q.Limit + 1}
	if q.Cursor != "" {
		after, err := decodeAuditCursor(q.Cursor, f)
		if err != nil {
			return AuditPage{}, err
		}
		f.After = after
	}
	rs, err := a.AuditRecords(ctx, f)
	if err != nil {
		return AuditPage{}, err
	}
	var page AuditPage
	if len(rs) > q.Limit {
		rs, page.More = rs[:q.Limit], true
	}
	if len(rs) > 0 {
		page.NextCursor = encodeAuditCursor(rs[len(rs)-1].Seq, f)
	}
	page.Records = make([]AuditRecord, len(rs))
	for i, r := range rs {
		page.Records[i] = d.auditRecord(r)
	}
	return page, nil
}

// auditDetail is the JSON of store.AuditRecord.Detail.
type auditDetail struct {
	Reason  string            `json:"reason,omitempty"`
	Changed []string          `json:"changed,omitempty"`
	Detail  map[string]string `json:"detail,omitempty"`
}

// auditRecord reads a stored record.
func (d *Dispatcher) auditRecord(r store.AuditRecord) AuditRecord {
	out := AuditRecord{ID: r.ID, Time: r.Time.UTC(), Tenant: r.Tenant, Actor: r.Actor, Action: AuditAction(r.Action),
		WebhookID: r.WebhookID, Version: r.WebhookVersion, DeliveryID: r.DeliveryID}
	if len(r.Detail) > 0 {
		var det auditDetail
		if err := json.Unmarshal(r.Detail, &det); err != nil {
			d.log.Warn("herald: an audit record's detail is unreadable", "audit_id", r.ID, "error", err)
		}
		out.Reason, out.Changed, out.Detail = det.Reason, det.Changed, det.Detail
	}
	if len(r.Definition) > 0 {
		var w Webhook
		if err := json.Unmarshal(r.Definition, &w); err != nil {
			d.log.Warn("herald: an audit record's definition is unreadable", "audit_id", r.ID, "error", err)
		} else {
			out.Definition = &w
		}
	}
	return out
}

// audited says what a save records.
type audited struct {
	action AuditAction
	old    *Webhook // the definition before an update, to name what changed
	reason string
	detail map[string]string
}

// recordChange records the change that left a webhook as out.
func (d *Dispatcher) recordChange(ctx context.Context, out Webhook, how audited) {
	rec := AuditRecord{Action: how.action, Tenant: out.Tenant, WebhookID: out.ID, Version: out.Version,
		Reason: how.reason, Detail: how.detail, Definition: &out}
	if how.old != nil {
		rec.Changed = changedFields(*how.old, out)
		if how.action == AuditWebhookUpdated && onlyToggled(rec.Changed) {
			rec.Action = toggled(out.Disabled)
		}
	}
	d.record(ctx, rec)
}

// toggled is the action of setting the "Published" toggle.
func toggled(disabled bool) AuditAction {
	if disabled {
		return AuditWebhookDisabled
	}
	return AuditWebhookEnabled
}

// deletionRecord prepares the record of deleting a webhook, read before it goes.
func (d *Dispatcher) deletionRecord(ctx context.Context, id string) AuditRecord {
	rec := AuditRecord{Action: AuditWebhookDeleted, WebhookID: id}
	if _, ok := d.store.(store.Auditor); !ok {
		return rec
	}
	if r, err := d.store.Webhook(ctx, id); err == nil {
		rec.Tenant, rec.Version = r.Tenant, r.Version
	}
	return rec
}

// replaySubject reads a delivery before it is replayed, for the audit
// trail; the zero Delivery when the store keeps no trail or the read
// fails.
func (d *Dispatcher) replaySubject(ctx context.Context, id string) Delivery {
	if _, ok := d.store.(store.Auditor); !ok {
		return Delivery{}
	}
	dl, _ := d.store.Delivery(ctx, id)
	return dl
}

// recordReplay records the replay of delivery id; dl is the delivery as it
// was before.
func (d *Dispatcher) recordReplay(ctx context.Context, id string, dl Delivery) {
	rec := AuditRecord{Action: AuditDeliveryReplayed, WebhookID: dl.WebhookID, DeliveryID: id}
	if dl.ID != "" {
		rec.Detail = map[string]string{"event_id": dl.EventID, "previous_status": string(dl.Status)}
	}
	// The record belongs to the webhook's tenant; a deleted webhook's is
	// unknown, so the record is the operator's.
	if r, err := d.store.Webhook(ctx, dl.WebhookID); err == nil {
		rec.Tenant = r.Tenant
	}
	d.record(ctx, rec)
}

// recordRecovery records what a recovery did, if it sent anything again:
// partly done (its context ended midway) counts too.
func (d *Dispatcher) recordRecovery(ctx context.Context, q RecoverQuery, res *RecoverResult) {
	if q.DryRun || res.Replayed == 0 {
		return
	}
	det := map[string]string{"status": string(q.Status), "matched": strconv.Itoa(res.Matched),
		"replayed": strconv.Itoa(res.Replayed), "in_order": strconv.FormatBool(res.InOrder)}
	for k, v := range map[string]string{"tenant": q.Tenant, "key": q.Key,
		"since": auditTime(q.Since), "until": auditTime(q.Until)} {
		if v != "" {
			det[k] = v
		}
	}
	rec := AuditRecord{Action: AuditDeliveriesRecovered, WebhookID: q.WebhookID, Detail: det}
	if r, err := d.store.Webhook(context.WithoutCancel(ctx), q.WebhookID); err == nil {
		rec.Tenant = r.Tenant
	}
	d.record(ctx, rec)
}

func auditTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// rotationDetail describes a rotation's grace for the audit trail.
func rotationDetail(grace time.Duration) map[string]string {
	if grace < 0 {
		return map[string]string{"grace": "0s", "previous_secrets": "revoked"}
	}
	return map[string]string{"grace": grace.String()}
}

// auditTimeout bounds the write of one audit record.
const auditTimeout = 10 * time.Second

// record appends r to the store's audit trail, if it keeps one. The
// change it records has happened, so a failure is logged, not returned;
// the write outlives the caller's context, for the same reason.
func (d *Dispatcher) record(ctx context.Context, r AuditRecord) {
	a, ok := d.store.(store.Auditor)
	if !ok {
		return
	}
	actor := ActorFrom(ctx)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	rec := store.AuditRecord{ID: uuid.Must(uuid.NewV7()).String(), Time: d.now(), Tenant: r.Tenant, Actor: actor,
		Action: string(r.Action), WebhookID: r.WebhookID, WebhookVersion: r.Version, DeliveryID: r.DeliveryID}
	var err error
	if r.Definition != nil {
		// Webhook's JSON masks its secrets.
		if rec.Definition, err = json.Marshal(*r.Definition); err != nil {
			d.log.Error("herald: encoding a definition for the audit trail failed", "webhook_id", r.WebhookID, "error", err)
			rec.Definition = nil
		}
	}
	if r.Reason != "" || len(r.Changed) > 0 || len(r.Detail) > 0 {
		rec.Detail, _ = json.Marshal(auditDetail{Reason: r.Reason, Changed: r.Changed, Detail: r.Detail})
	}
	if _, err := a.AppendAudit(ctx, rec); err != nil {
		d.log.Error("herald: recording an audit record failed; the change it records stands",
			"action", rec.Action, "webhook_id", rec.WebhookID, "delivery_id", rec.DeliveryID, "error", err)
	}
}

// changedFields names the top-level JSON fields that differ between two
// definitions, compared with their secrets in clear (so a new header
// value counts) but returned as names only.
func changedFields(old, cur Webhook) []string {
	a, errA := plainFields(old)
	b, errB := plainFields(cur)
	if errA != nil || errB != nil {
		return nil
	}
	var out []string
	for k, v := range b {
		if !bytes.Equal(a[k], v) {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	out = slices.DeleteFunc(out, func(k string) bool {
		return k == "version" || k == "created_at" || k == "updated_at"
	})
	slices.Sort(out)
	return out
}

func plainFields(w Webhook) (map[string]json.RawMessage, error) {
	raw, err := json.Marshal(plainWebhook(w))
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	err = json.Unmarshal(raw, &m)
	return m, err
}

// onlyToggled reports whether an update changed the "Published" toggle
// and nothing else of substance.
func onlyToggled(changed []string) bool {
	if !slices.Contains(changed, "disabled") {
		return false
	}
	for _, k := range changed {
		switch k {
		case "disabled", "disabled_reason", "failing_since":
		default:
			return false
		}
	}
	return true
}

// An audit cursor is "a1.<seq>.<filter hash>" in unpadded URL-safe
// base64.
func encodeAuditCursor(seq int64, f store.AuditFilter) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "a1.%d.%08x", seq, auditFilterHash(f)))
}

func decodeAuditCursor(c string, f store.AuditFilter) (int64, error) {
	bad := fmt.Errorf("%w: cursor %q is not a cursor of this query", ErrInvalidQuery, c)
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, bad
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != "a1" || parts[2] != fmt.Sprintf("%08x", auditFilterHash(f)) {
		return 0, bad
	}
	seq, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || seq <= 0 {
		return 0, bad
	}
	return seq, nil
}

// auditFilterHash fingerprints a filter's selection and order (not its
// position or page size).
func auditFilterHash(f store.AuditFilter) uint32 {
	h := fnv.New32a()
	for _, s := range []string{f.Tenant, f.WebhookID, f.Action, f.Actor, auditTimeKey(f.Since), auditTimeKey(f.Until),
		strconv.FormatBool(f.Definitions), strconv.FormatBool(f.Newest)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum32()
}

func auditTimeKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}
