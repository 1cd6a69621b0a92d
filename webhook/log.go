package webhook

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhr/herald/store"
)

// ErrInvalidQuery: a delivery log, recovery or audit query cannot be run (an
// unknown status, a cursor that is not one of this query's, a missing
// webhook id).
var ErrInvalidQuery = errors.New("webhook: invalid query")

// Page sizes of DeliveryLog.
const (
	DefaultLogLimit = 50
	MaxLogLimit     = 1000
)

// LogQuery selects a page of the delivery log. Zero fields do not filter.
type LogQuery struct {
	WebhookID string
	EventID   string
	Status    Status
	Tenant    string
	Key       string    // the record's key
	Since     time.Time // published at or after
	Until     time.Time // published before
	// Cursor continues from a previous page: pass its NextCursor with the
	// same filters. "" starts at the oldest delivery.
	Cursor string
	// Limit is the page size; 0: DefaultLogLimit; at most MaxLogLimit.
	Limit int
}

// LogPage is one page of the delivery log, oldest delivery first.
type LogPage struct {
	Deliveries []Delivery
	// More reports that further deliveries matched when the page was
	// read: fetch the next page with NextCursor.
	More bool
	// NextCursor continues after this page's last delivery. It is set on
	// every page that has deliveries, the last one included, so a caller
	// that keeps it finds what is published later; "" when the page is
	// empty (keep the cursor that led to it).
	NextCursor string
}

// DeliveryLog returns a page of deliveries matching q, oldest first, and a
// cursor for the next. Deliveries published later join the end of the
// log, so a cursor kept from the last page finds them:
//
//	q := webhook.LogQuery{WebhookID: id, Status: webhook.Dead}
//	for {
//		page, err := d.DeliveryLog(ctx, q)
//		if err != nil {
//			return err
//		}
//		show(page.Deliveries)
//		if !page.More {
//			break
//		}
//		q.Cursor = page.NextCursor
//	}
//
// The attempts of a delivery (time, masked request headers, status,
// latency, response snippet, error, definition version) are in Attempts.
//
// A cursor is opaque and bound to its query's filters: using it with other
// filters fails with ErrInvalidQuery.
func (d *Dispatcher) DeliveryLog(ctx context.Context, q LogQuery) (LogPage, error) {
	if q.Status != "" && !q.Status.Valid() {
		return LogPage{}, fmt.Errorf("%w: unknown delivery status %q", ErrInvalidQuery, q.Status)
	}
	switch {
	case q.Limit < 0:
		return LogPage{}, fmt.Errorf("%w: negative limit", ErrInvalidQuery)
	case q.Limit == 0:
		q.Limit = DefaultLogLimit
	case q.Limit > MaxLogLimit:
		q.Limit = MaxLogLimit
	}
	f := store.DeliveryFilter{WebhookID: q.WebhookID, EventID: q.EventID, Status: q.Status, Tenant: q.Tenant,
		Key: q.Key, Since: q.Since, Until: q.Until, Limit: q.Limit + 1}
	if q.Cursor != "" {
		after, err := decodeCursor(q.Cursor, f)
		if err != nil {
			return LogPage{}, err
		}
		f.After = after
	}
	ds, err := d.store.Deliveries(ctx, f)
	if err != nil {
		return LogPage{}, err
	}
	var page LogPage
	if len(ds) > q.Limit {
		ds, page.More = ds[:q.Limit], true
	}
	if len(ds) > 0 {
		page.NextCursor = encodeCursor(ds[len(ds)-1].Seq, f)
	}
	page.Deliveries = ds
	return page, nil
}

// A cursor is "1.<seq>.<filter hash>" in unpadded URL-safe base64.
func encodeCursor(seq int64, f store.DeliveryFilter) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "1.%d.%08x", seq, filterHash(f)))
}

func decodeCursor(c string, f store.DeliveryFilter) (int64, error) {
	bad := fmt.Errorf("%w: cursor %q is not a cursor of this query", ErrInvalidQuery, c)
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, bad
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != "1" || parts[2] != fmt.Sprintf("%08x", filterHash(f)) {
		return 0, bad
	}
	seq, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || seq < 0 {
		return 0, bad
	}
	return seq, nil
}

// filterHash fingerprints the filters of a query (not its position or
// page size).
func filterHash(f store.DeliveryFilter) uint32 {
	h := fnv.New32a()
	for _, s := range []string{f.WebhookID, f.EventID, string(f.Status), f.Tenant, f.Key,
		timeKey(f.Since), timeKey(f.Until)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum32()
}

func timeKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

// logOutcome logs an attempt: every one at Debug, a scheduled retry at
// Info, and a message that failed for good at Warn.
func (d *Dispatcher) logOutcome(w *compiled, m store.Message, r store.Result) {
	a := r.Attempt
	if a == nil {
		return
	}
	level, msg := slog.LevelDebug, "herald: attempt"
	switch r.Outcome {
	case store.OutcomeRetry:
		level, msg = slog.LevelInfo, "herald: attempt failed; retrying"
	case store.OutcomeDead:
		level, msg = slog.LevelWarn, "herald: delivery failed for good"
	}
	ctx := context.Background()
	if !d.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("webhook_id", w.ID),
		slog.String("message_id", m.ID),
		slog.Int("attempt", m.Attempt),
		slog.Int("records", len(m.Deliveries)),
		slog.Int("status", a.StatusCode),
		slog.Int64("latency_ms", a.Latency.Milliseconds()),
		slog.String("outcome", string(outcomeKind(r.Outcome))),
		slog.String("url", RedactURL(w.URL)),
	}
	if r.Outcome == store.OutcomeRetry {
		attrs = append(attrs, slog.Time("next_attempt", r.NextAttempt))
	}
	if a.Error != "" {
		attrs = append(attrs, slog.String("error", a.Error))
	}
	d.log.LogAttrs(ctx, level, msg, attrs...)
}
