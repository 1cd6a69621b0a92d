package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/transform"
)

// EventHookError: a hook went wrong in a way the delivery's outcome does
// not show: an after hook failed, panicked or timed out (Reason names the
// hook, Err says what happened), or a hook that ignored its context was
// left running.
const EventHookError EventKind = "hook_error"

// errHookAbandoned marks a hook call the attempt stopped waiting for.
var errHookAbandoned = errors.New("hook left running")

// abandonedError is a hook call that did not return in time: the attempt
// went on without it, and the call runs on in its goroutine until it
// returns (Shutdown waits for it).
type abandonedError struct {
	timeout time.Duration
	cause   error // context.DeadlineExceeded for HookTimeout, else why the attempt stopped
}

func (e *abandonedError) Error() string {
	if errors.Is(e.cause, context.DeadlineExceeded) {
		return fmt.Sprintf("did not return within HookTimeout (%v); it was left running", e.timeout)
	}
	return fmt.Sprintf("still running when the attempt was stopped (%v); it was left running", e.cause)
}

func (e *abandonedError) Unwrap() []error { return []error{errHookAbandoned, e.cause} }

// hookRuns counts hook calls still running, so that the workers' end (and
// so Shutdown) waits for a hook that outlived its attempt. Unlike a
// WaitGroup it may count up again at any time.
type hookRuns struct {
	mu   sync.Mutex
	n    int
	idle chan struct{}
}

func (h *hookRuns) add() {
	h.mu.Lock()
	if h.n == 0 {
		h.idle = make(chan struct{})
	}
	h.n++
	h.mu.Unlock()
}

func (h *hookRuns) done() {
	h.mu.Lock()
	h.n--
	if h.n == 0 {
		close(h.idle)
	}
	h.mu.Unlock()
}

// wait returns a channel closed once no hook call is running.
func (h *hookRuns) wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	return h.idle
}

// outcomeOf names a store outcome for after hooks.
func outcomeOf(o store.Outcome) transform.Outcome {
	switch o {
	case store.OutcomeDelivered:
		return transform.Delivered
	case store.OutcomeRetry:
		return transform.Retrying
	case store.OutcomeSkipped:
		return transform.Skipped
	}
	return transform.Dead
}

// decodePayload decodes a stored payload for hooks and mappings. Numbers
// become float64 when float64 holds them exactly, as encoding/json would
// give them; the others (integer ids beyond 2^53, say) stay json.Number,
// so a message that goes through a hook or a mapping never changes a
// digit of them.
func decodePayload(raw []byte) (payload, error) {
	var p payload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return p, err
	}
	for _, m := range []map[string]any{p.New, p.Old, p.Context} {
		for k, v := range m {
			m[k] = exactNumbers(v)
		}
	}
	return p, nil
}

func exactNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(x.String(), 64)
		if err == nil && strconv.FormatFloat(f, 'f', -1, 64) == x.String() {
			return f
		}
		if err == nil && strings.ContainsAny(x.String(), "eE") {
			return f // an exponent form, as encoding/json writes large floats
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = exactNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = exactNumbers(e)
		}
	}
	return v
}

// encodeBody shapes the records of msg (selection, redaction, masks,
// value maps) and encodes them in the webhook's format. For GET the
// encoded form goes in query instead of body.
func encodeBody(w *compiled, msg *transform.Message) (body []byte, ctype, query string, err error) {
	mp := w.mapper
	recs := make([]transform.Record, len(msg.Records))
	for i, r := range msg.Records {
		recs[i] = mp.Shape(r)
	}
	mapAll := func() ([]map[string]any, error) {
		out := make([]map[string]any, len(recs))
		for i, r := range recs {
			var err error
			if out[i], err = mp.Map(r); err != nil {
				return nil, fmt.Errorf("body mapping: %w", err)
			}
		}
		return out, nil
	}
	switch mp.Format() {
	case transform.Envelope:
		shaped := *msg
		shaped.Records = recs
		b, err := envelopeFromRecords(&shaped)
		return b, "application/json", "", err
	case transform.CloudEvents:
		var objs []map[string]any
		if mp.HasFields() {
			if objs, err = mapAll(); err != nil {
				return nil, "", "", err
			}
		}
		return cloudEvents(mp.Source(), msg.Batch, recs, objs)
	case transform.Form:
		objs, err := mapAll()
		if err != nil {
			return nil, "", "", err
		}
		vals := transform.FormValues(objs[0]).Encode()
		if w.method() == "GET" {
			return nil, "", vals, nil
		}
		return []byte(vals), "application/x-www-form-urlencoded", "", nil
	default:
		objs, err := mapAll()
		if err != nil {
			return nil, "", "", err
		}
		var v any = objs[0]
		if msg.Batch {
			v = objs
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, "", "", fmt.Errorf("body mapping: %w", err)
		}
		return b, "application/json", "", nil
	}
}

// cloudEvent is a CloudEvents 1.0 event in the structured JSON format.
type cloudEvent struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject,omitempty"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	Data            any    `json:"data"`
}

// cloudEvents encodes one event per record: a single event, or for a batch
// a JSON list of them. objs, when not nil, are the mapped data objects.
func cloudEvents(source string, batch bool, recs []transform.Record, objs []map[string]any) ([]byte, string, string, error) {
	evs := make([]cloudEvent, len(recs))
	for i, r := range recs {
		ev := cloudEvent{SpecVersion: "1.0", ID: r.EventID, Source: source, Type: eventType(r.Table, r.Op),
			Subject: r.Key, Time: r.Time.UTC().Format(time.RFC3339Nano), DataContentType: "application/json"}
		if ev.Source == "" {
			ev.Source = defaultSource(r.Tenant, r.Table)
		}
		if objs != nil {
			ev.Data = objs[i]
		} else {
			ev.Data = payload{EventID: r.EventID, Table: r.Table, Op: r.Op, Key: r.Key, New: r.New, Old: r.Old,
				Changed: r.Changed, Tenant: r.Tenant, Context: r.Context}
		}
		evs[i] = ev
	}
	var v any = evs[0]
	ctype := "application/cloudevents+json"
	if batch {
		v, ctype = evs, "application/cloudevents-batch+json"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, "", "", fmt.Errorf("cloudevents body: %w", err)
	}
	return b, ctype, "", nil
}

// defaultSource is the CloudEvents source when none is configured:
// herald://<tenant, or "default">/<table>, each part percent-encoded
// except for unreserved characters.
func defaultSource(tenant, table string) string {
	if tenant == "" {
		tenant = "default"
	}
	return "herald://" + uriEscape(tenant) + "/" + uriEscape(table)
}

func uriEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
