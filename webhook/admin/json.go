package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/webhook"
)

// request is one call: the caller, and what its route needs.
type request struct {
	h      *handler
	r      *http.Request
	w      http.ResponseWriter
	caller Caller
	owners map[string]owner // webhook id -> its tenant, read once per request
}

func withRequest(ctx context.Context, req *request) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

func (q *request) ctx() context.Context { return q.r.Context() }

// sees reports whether the caller may see what belongs to tenant.
func (q *request) sees(tenant string) bool { return q.caller.Operator || tenant == q.caller.Tenant }

// writeJSON writes body as the answer; nil writes no body.
func writeJSON(w http.ResponseWriter, status int, body any) {
	if body == nil {
		w.Header().Del("Content-Type")
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decode reads the request's JSON body into v. Unknown fields, trailing
// data and bodies over Options.MaxBodyBytes are refused. An empty body is
// refused unless optional, when v is left as it is.
func (q *request) decode(v any, optional bool) error {
	data, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, q.h.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
				Message: "the request body is larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes"}
		}
		return badRequest("invalid_json", "", "the request body could not be read")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return nil
		}
		return badRequest("invalid_json", "", "the request needs a JSON body")
	}
	if !jsonMediaType(q.r.Header.Get("Content-Type")) {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Message: "send the body as Content-Type: application/json"}
	}
	return decodeJSON(data, v)
}

// jsonMediaType accepts application/json and the application/*+json
// types (application/merge-patch+json for PATCH).
func jsonMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// decodeJSON decodes one JSON value into v strictly and explains what is
// wrong with it, never echoing a value.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid_json", "", "the body holds more than one JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ce *condition.CompileError
	var pe *time.ParseError
	switch {
	case errors.As(err, &se):
		return badRequest("invalid_json", "", "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid_json", "", "the JSON ends early")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest("invalid_json", "", "the body must be a JSON object")
		}
		return badRequest("invalid_json", field, "%s: want %s, got a JSON %s", field, jsonKind(te.Type), te.Value)
	case errors.As(err, &ce):
		// A condition tree decodes itself and reports where it is wrong.
		field := "when." + ce.Part
		if ce.Path != "" {
			field = "when." + ce.Path
		}
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_webhook", Message: ce.Error(),
			Fields: []fieldJSON{{Field: field, Message: ce.Error(), Line: ce.Line, Column: ce.Column}}}
	case errors.As(err, &pe):
		return badRequest("invalid_json", "", "a time is not in RFC 3339 form")
	}
	// What is left is encoding/json's unknown field error, which names the
	// field; its text is all there is to go on.
	return badRequest("invalid_json", "", "%v", err)
}

// jsonKind names the JSON kind a Go type decodes from, for a message.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// params returns the request's query, refusing parameters not in
// allowed and parameters given twice.
func (q *request) params(allowed ...string) (url.Values, error) {
	v := q.r.URL.Query()
	for k, vs := range v {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return nil, badRequest("invalid_query", k, "unknown query parameter %q; known: %s", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, badRequest("invalid_query", k, "query parameter %q is given %d times", k, len(vs))
		}
	}
	return v, nil
}

// Page sizes of every list.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

func limitParam(v url.Values) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, badRequest("invalid_query", "limit", "limit must be a whole number from 1 to %d", maxLimit)
	}
	return n, nil
}

func timeParam(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badRequest("invalid_query", name, "%s must be an RFC 3339 time, such as 2026-03-02T09:00:00Z", name)
	}
	return t.UTC(), nil
}

func boolParam(v url.Values, name string) (*bool, error) {
	switch v.Get(name) {
	case "":
		return nil, nil
	case "true":
		t := true
		return &t, nil
	case "false":
		f := false
		return &f, nil
	}
	return nil, badRequest("invalid_query", name, "%s must be true or false", name)
}

func timeRange(v url.Values) (since, until time.Time, err error) {
	if since, err = timeParam(v, "since"); err != nil {
		return
	}
	if until, err = timeParam(v, "until"); err != nil {
		return
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		err = badRequest("invalid_query", "until", "until must be after since")
	}
	return
}

// list is every list answer: a page and how to get the next.
type list[T any] struct {
	Data []T `json:"data"`
	// HasMore reports that more matched when the page was read.
	HasMore bool `json:"has_more"`
	// NextCursor continues after this page; "" when the page is empty.
	NextCursor string `json:"next_cursor,omitempty"`
}

func newList[T any](data []T, more bool, cursor string) list[T] {
	if data == nil {
		data = []T{}
	}
	return list[T]{Data: data, HasMore: more, NextCursor: cursor}
}

// deliveryJSON is a delivery as the API shows it.
type deliveryJSON struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhook_id"`
	EventID   string `json:"event_id"`
	// MessageID is the webhook-id header it is sent under: its batch id,
	// or its event id.
	MessageID      string    `json:"message_id"`
	Tenant         string    `json:"tenant,omitempty"`
	Key            string    `json:"key"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempts"`
	NextAttemptAt  time.Time `json:"next_attempt_at,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	LastStatusCode int       `json:"last_status_code,omitempty"`
	BatchID        string    `json:"batch_id,omitempty"`
	Replayed       bool      `json:"replayed"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func toDelivery(d webhook.Delivery) deliveryJSON {
	out := deliveryJSON{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, MessageID: d.MessageID(),
		Tenant: d.Tenant, Key: d.Key, Status: string(d.Status), Attempts: d.Attempts, LastError: d.LastError,
		LastStatusCode: d.LastCode, BatchID: d.BatchID, Replayed: d.Replayed,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
	if d.Status == webhook.Pending {
		out.NextAttemptAt = d.NextAttempt.UTC()
	}
	return out
}

// attemptJSON is one request of the delivery log.
type attemptJSON struct {
	Number    int       `json:"number"`
	MessageID string    `json:"message_id"`
	At        time.Time `json:"at"`
	// StatusCode is 0 when no answer arrived.
	StatusCode     int               `json:"status_code"`
	LatencyMS      float64           `json:"latency_ms"`
	RequestHeaders map[string]string `json:"request_headers,omitempty"`
	ResponseBody   string            `json:"response_body,omitempty"`
	Error          string            `json:"error,omitempty"`
	WebhookVersion int64             `json:"webhook_version,omitempty"`
}

func toAttempt(a webhook.Attempt) attemptJSON {
	return attemptJSON{Number: a.Number, MessageID: a.MessageID, At: a.At.UTC(), StatusCode: a.StatusCode,
		LatencyMS: float64(a.Latency.Microseconds()) / 1000, RequestHeaders: a.RequestHeaders,
		ResponseBody: a.ResponseBody, Error: a.Error, WebhookVersion: a.WebhookVersion}
}

// auditJSON is one record of the audit trail.
type auditJSON struct {
	ID         string            `json:"id"`
	Time       time.Time         `json:"time"`
	Tenant     string            `json:"tenant,omitempty"`
	Actor      string            `json:"actor"`
	Action     string            `json:"action"`
	WebhookID  string            `json:"webhook_id,omitempty"`
	Version    int64             `json:"version,omitempty"`
	DeliveryID string            `json:"delivery_id,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	Changed    []string          `json:"changed,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
}

func toAudit(r webhook.AuditRecord) auditJSON {
	return auditJSON{ID: r.ID, Time: r.Time.UTC(), Tenant: r.Tenant, Actor: r.Actor, Action: string(r.Action),
		WebhookID: r.WebhookID, Version: r.Version, DeliveryID: r.DeliveryID, Reason: r.Reason,
		Changed: r.Changed, Detail: r.Detail}
}

// versionJSON is one version of a webhook's definition.
type versionJSON struct {
	Version int64     `json:"version"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason,omitempty"`
	Changed []string  `json:"changed,omitempty"`
	// Webhook is the definition as the change left it, secrets masked.
	Webhook *webhook.Webhook `json:"webhook"`
}

func toVersion(r webhook.AuditRecord) versionJSON {
	return versionJSON{Version: r.Version, Time: r.Time.UTC(), Actor: r.Actor, Action: string(r.Action),
		Reason: r.Reason, Changed: r.Changed, Webhook: r.Definition}
}

// revealed is a webhook's JSON with the signing secret in clear.
type revealed webhook.Webhook

// reveal shows w as its JSON does, but with an HMAC signing secret in
// clear: the answer to creating a webhook and rotating its secret, the
// only answers that show it. An Ed25519 private key is never shown: its
// receiver needs only PublicKey.
func reveal(w webhook.Webhook) revealed {
	r := w.Redacted()
	if w.SignatureScheme != webhook.SchemeEd25519 {
		r.Secret = w.Secret
	}
	return revealed(r)
}

// changeJSON is a sample record change, for a dry run of a condition.
type changeJSON struct {
	Table   string         `json:"table"`
	Op      string         `json:"op"`
	Key     string         `json:"key"`
	Tenant  string         `json:"tenant"`
	Old     map[string]any `json:"old"`
	New     map[string]any `json:"new"`
	Context map[string]any `json:"context"`
}
