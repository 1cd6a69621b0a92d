package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/transform"
)

// handle makes one attempt of a claimed message and returns its result.
// ok is false when the attempt was cut off by a stop: the caller then
// releases the lease and records nothing.
func (d *Dispatcher) handle(ctx context.Context, m store.Message) (r store.Result, ok bool) {
	now := d.now()
	r = store.Result{MessageID: m.ID, Lease: m.Lease, Now: now}
	w, err := d.webhookFor(ctx, m.WebhookID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.Outcome, r.Error = store.OutcomeCanceled, "webhook deleted"
		return r, true
	case err != nil:
		if ctx.Err() != nil {
			return r, false
		}
		r.Outcome, r.NextAttempt, r.Error = store.OutcomePostpone, now.Add(d.cfg.PollInterval), err.Error()
		return r, true
	case w.err != nil:
		d.log.Error("herald: holding a delivery this process cannot send", "webhook_id", w.ID, "message_id", m.ID, "error", w.err)
		r.Outcome, r.NextAttempt, r.Error = store.OutcomePostpone, now.Add(d.cfg.HoldDelay), "held: "+w.err.Error()
		d.observe(Event{Kind: EventHeld, WebhookID: w.ID, Tenant: w.Tenant, MessageID: m.ID, Records: len(m.Deliveries), Reason: r.Error})
		return r, true
	case w.Disabled:
		r.Outcome, r.NextAttempt = store.OutcomePostpone, now.Add(d.cfg.PollInterval)
		return r, true
	}
	tk, held, ok := d.admit(ctx, w, m, now)
	if tk == nil {
		return held, ok
	}
	out := d.attempt(ctx, w, m, tk.start)
	d.settle(ctx, w, tk, out)
	if ctx.Err() != nil && out.Outcome != store.OutcomeDelivered {
		return r, false
	}
	d.report(w, m, out)
	return out, true
}

// report tells the observer and the log what became of an attempt.
func (d *Dispatcher) report(w *compiled, m store.Message, r store.Result) {
	base := Event{WebhookID: w.ID, Tenant: w.Tenant, MessageID: m.ID, Records: len(m.Deliveries),
		Attempt: m.Attempt, Method: w.method(), URL: RedactURL(w.URL)}
	if a := r.Attempt; a != nil {
		e := base
		e.Kind, e.StatusCode, e.Latency = EventAttempt, a.StatusCode, a.Latency
		if a.Error != "" {
			e.Err = errors.New(a.Error)
		}
		d.observe(e)
	}
	e := base
	switch r.Outcome {
	case store.OutcomeDelivered:
		e.Kind = EventDelivered
	case store.OutcomeRetry:
		e.Kind, e.Next = EventRetry, r.NextAttempt
	case store.OutcomeDead:
		e.Kind = EventDead
		var why string
		if r.Attempt != nil {
			why = r.Attempt.Error
		}
		d.log.Warn("herald: delivery failed for good", "webhook_id", w.ID, "message_id", m.ID, "attempt", m.Attempt, "error", why)
	case store.OutcomeSkipped:
		e.Kind, e.Reason = EventSkipped, r.Error
	default:
		return
	}
	if r.Attempt != nil && r.Attempt.Error != "" {
		e.Err = errors.New(r.Attempt.Error)
	}
	d.observe(e)
}

// webhookFor returns the compiled definition of id, reloading once when
// this process has not seen it yet.
func (d *Dispatcher) webhookFor(ctx context.Context, id string) (*compiled, error) {
	defs, err := d.current(ctx, false)
	if err != nil {
		return nil, err
	}
	if w, ok := defs.byID[id]; ok {
		return w, nil
	}
	if defs, err = d.current(ctx, true); err != nil {
		return nil, err
	}
	if w, ok := defs.byID[id]; ok {
		return w, nil
	}
	return nil, fmt.Errorf("webhook %q: %w", id, store.ErrNotFound)
}

// attempt runs the hooks, sends the request and decides the outcome.
func (d *Dispatcher) attempt(ctx context.Context, w *compiled, m store.Message, now time.Time) store.Result {
	r := store.Result{MessageID: m.ID, Lease: m.Lease, Now: now}
	att := &store.Attempt{MessageID: m.ID, At: now, WebhookVersion: w.Version}
	var msg *transform.Message
	if len(w.Before) > 0 || len(w.After) > 0 || w.Body.Format != transform.Envelope {
		var err error
		if msg, err = d.message(w, m); err != nil {
			att.Error = err.Error()
			r.Outcome, r.Attempt = store.OutcomeDead, att
			return r
		}
	}
	fail := func(err error, permanent bool) store.Result {
		att.Error = err.Error()
		r.Attempt = att
		if permanent || m.Attempt >= d.cfg.Retry.MaxAttempts {
			r.Outcome = store.OutcomeDead
		} else {
			r.Outcome = store.OutcomeRetry
			r.NextAttempt = now.Add(d.cfg.Retry.delay(m.Attempt))
		}
		return r
	}
	for _, name := range w.Before {
		h, err := d.cfg.Hooks.LookupBefore(name)
		if err == nil {
			err = d.runHook(ctx, "before hook "+name, func(ctx context.Context) error { return h.Before(ctx, msg) })
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, transform.ErrSkip):
			r.Outcome, r.Error = store.OutcomeSkipped, "skipped by before hook "+name
			d.after(ctx, w, msg, &transform.Result{Message: msg, Attempt: m.Attempt, Final: true})
			return r
		default:
			res := fail(fmt.Errorf("before hook %s: %w", name, err), transform.IsPermanent(err))
			d.after(ctx, w, msg, &transform.Result{Message: msg, Attempt: m.Attempt, Err: err, Final: res.Outcome == store.OutcomeDead})
			return res
		}
	}
	if msg != nil && len(msg.Records) == 0 {
		r.Outcome, r.Error = store.OutcomeSkipped, "before hooks removed every record"
		d.after(ctx, w, msg, &transform.Result{Message: msg, Attempt: m.Attempt, Final: true})
		return r
	}
	req, err := d.request(ctx, w, m, msg, now)
	if err != nil {
		res := fail(err, true)
		d.after(ctx, w, msg, &transform.Result{Message: msg, Attempt: m.Attempt, Err: err, Final: true})
		return res
	}
	att.RequestHeaders = maskHeaders(req.Header)
	actx, cancel := context.WithTimeout(ctx, d.cfg.AttemptTimeout)
	defer cancel()
	start := time.Now()
	resp, err := d.client.Do(req.WithContext(actx))
	var body []byte
	var header http.Header
	if err == nil {
		body, err = readCapped(resp.Body, d.cfg.MaxResponseBytes)
		resp.Body.Close()
		header = resp.Header
		att.StatusCode = resp.StatusCode
	}
	att.Latency = time.Since(start)
	att.ResponseBody = snippet(body)
	v := verdictFor(att.StatusCode, header, err)
	var res store.Result
	var sendErr error
	switch {
	case v.ok:
		r.Outcome, r.Attempt = store.OutcomeDelivered, att
		res = r
	default:
		sendErr = &DeliveryError{StatusCode: att.StatusCode, Attempt: m.Attempt, URL: RedactURL(w.URL), Err: redactTransportError(err)}
		res = fail(sendErr, v.permanent)
		if v.honourRetryAfter && res.Outcome == store.OutcomeRetry {
			if wait := retryAfter(header, now, d.cfg.Retry.MaxRetryAfter); wait > 0 {
				res.NextAttempt = now.Add(max(wait, d.cfg.Retry.delay(m.Attempt)))
			}
		}
		if v.gone {
			d.disableGone(ctx, w)
		}
	}
	d.after(ctx, w, msg, &transform.Result{Message: msg, StatusCode: att.StatusCode, Header: header, Body: body,
		Latency: att.Latency, Attempt: m.Attempt, Err: sendErr, Final: res.Outcome != store.OutcomeRetry})
	return res
}

// verdict is what an answer means for the delivery.
type verdict struct {
	ok               bool
	permanent        bool // do not retry
	honourRetryAfter bool
	gone             bool // 410: disable the webhook
}

// verdictFor classifies an attempt's answer: the one place that decides
// what a status code means.
func verdictFor(code int, h http.Header, err error) verdict {
	switch {
	case err != nil:
		return verdict{}
	case code >= 200 && code < 300:
		return verdict{ok: true}
	case strings.EqualFold(h.Get("Webhook-Delivery"), "abort-message"):
		return verdict{permanent: true}
	case code == http.StatusGone:
		return verdict{gone: true}
	case code == http.StatusTooManyRequests, code == http.StatusBadGateway,
		code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		return verdict{honourRetryAfter: true}
	}
	return verdict{}
}

// disableGone disables a webhook whose receiver answered 410 Gone. The
// message stays pending, so nothing is lost if the webhook is enabled
// again.
func (d *Dispatcher) disableGone(ctx context.Context, w *compiled) {
	d.disableFor(ctx, w, "receiver answered 410 Gone")
}

// runHook runs one hook under HookTimeout, turning a panic into an error
// that carries its stack.
func (d *Dispatcher) runHook(ctx context.Context, name string, f func(context.Context) error) (err error) {
	hctx, cancel := context.WithTimeout(ctx, d.cfg.HookTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s panicked: %v\n%s", name, p, debug.Stack())
		}
	}()
	return f(hctx)
}

// after runs the webhook's after hooks; their errors are logged only.
func (d *Dispatcher) after(ctx context.Context, w *compiled, msg *transform.Message, res *transform.Result) {
	for _, name := range w.After {
		h, err := d.cfg.Hooks.LookupAfter(name)
		if err == nil {
			err = d.runHook(ctx, "after hook "+name, func(ctx context.Context) error { return h.After(ctx, res) })
		}
		if err != nil {
			d.log.Warn("herald: after hook failed", "webhook_id", w.ID, "message_id", res.Message.ID, "hook", name, "error", err)
		}
	}
}

// message decodes a claimed message into the form hooks and mappings see.
func (d *Dispatcher) message(w *compiled, m store.Message) (*transform.Message, error) {
	msg := &transform.Message{ID: m.ID, WebhookID: w.ID, WebhookName: w.Name, Attempt: m.Attempt,
		Batch: m.Batch, Records: make([]transform.Record, len(m.Events)), Header: http.Header{}}
	for i, e := range m.Events {
		var p payload
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			return nil, fmt.Errorf("stored event %s unreadable: %w", e.ID, err)
		}
		msg.Records[i] = transform.Record{EventID: e.ID, Table: p.Table, Op: p.Op, Key: p.Key, Tenant: p.Tenant,
			Time: e.Time, Old: p.Old, New: p.New, Changed: p.Changed, Context: p.Context}
	}
	return msg, nil
}

// request builds the signed HTTP request of an attempt.
func (d *Dispatcher) request(ctx context.Context, w *compiled, m store.Message, msg *transform.Message, now time.Time) (*http.Request, error) {
	body, ctype, query, err := d.body(w, m, msg)
	if err != nil {
		return nil, err
	}
	target := w.URL
	if query != "" {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + query
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, w.method(), target, rd)
	if err != nil {
		return nil, fmt.Errorf("building request to %s: %v", RedactURL(w.URL), err)
	}
	h := req.Header
	for k, v := range w.Headers {
		h.Set(k, v)
	}
	if msg != nil {
		for k, vs := range msg.Header {
			for _, v := range vs {
				if err := transform.CheckHeader(k, v); err != nil {
					return nil, fmt.Errorf("a before hook set a header herald refuses: %w", err)
				}
			}
			h[k] = vs
		}
	}
	signed := body
	if w.method() == "GET" {
		signed = []byte(query)
	}
	d.stamp(h, w, m.ID, now, signed, ctype)
	return req, nil
}

// stamp sets the headers herald owns on every request, pings included:
// the Standard Webhooks id, timestamp and signature, the content type and
// the user agent.
func (d *Dispatcher) stamp(h http.Header, w *compiled, id string, now time.Time, signed []byte, ctype string) {
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("Webhook-Signature", w.signer.Sign(id, now, signed))
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	h.Set("User-Agent", "herald/"+Version)
}

// body encodes the request body: the default envelope (from the stored
// payloads when no hook could have changed the records), or the webhook's
// mapping. For GET the mapping becomes the query string.
func (d *Dispatcher) body(w *compiled, m store.Message, msg *transform.Message) (body []byte, ctype, query string, err error) {
	if w.Body.Format == transform.Envelope {
		if msg == nil {
			return envelopeFromStored(m), "application/json", "", nil
		}
		b, err := envelopeFromRecords(msg)
		return b, "application/json", "", err
	}
	mapped := make([]map[string]any, len(msg.Records))
	for i, rec := range msg.Records {
		if mapped[i], err = w.mapper.Map(rec); err != nil {
			return nil, "", "", fmt.Errorf("body mapping: %w", err)
		}
	}
	switch w.Body.Format {
	case transform.Form:
		vals := transform.FormValues(mapped[0])
		if w.method() == "GET" {
			return nil, "", vals.Encode(), nil
		}
		return []byte(vals.Encode()), "application/x-www-form-urlencoded", "", nil
	default:
		var v any = mapped[0]
		if m.Batch {
			v = mapped
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, "", "", fmt.Errorf("body mapping: %w", err)
		}
		return b, "application/json", "", nil
	}
}

func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return b, fmt.Errorf("reading the answer: %w", err)
	}
	return b, nil
}

// snippet keeps the start of a response body for the delivery log.
func snippet(b []byte) string {
	if len(b) > snippetBytes {
		b = b[:snippetBytes]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// maskHeaders copies request headers for the delivery log, masking every
// value but those herald sets itself.
func maskHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k := range h {
		switch k {
		case "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Content-Type", "User-Agent":
			out[k] = h.Get(k)
		default:
			out[k] = "xxxxx"
		}
	}
	return out
}
