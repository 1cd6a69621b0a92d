package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhr/herald/internal/failpoint"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/transform"
)

// handle makes one attempt of a claimed message and returns its result.
// ok is false when the attempt was cut off by a stop: the caller then
// releases the lease and records nothing. hd is what the worker pool
// carries through (nil for ProcessDue).
func (d *Dispatcher) handle(ctx context.Context, m store.Message, hd *hand) (r store.Result, ok bool) {
	n := d.track(m.WebhookID)
	defer d.untrack(n)
	now := d.now()
	r = store.Result{MessageID: m.ID, Lease: m.Lease, Now: now}
	w, err := d.webhookFor(ctx, m.WebhookID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.Outcome, r.Error = store.OutcomeCanceled, "webhook deleted"
		d.observe(Event{Kind: EventCanceled, WebhookID: m.WebhookID, MessageID: m.ID, Records: len(m.Deliveries), Reason: r.Error})
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
	case erased(m):
		r.Outcome, r.Error = store.OutcomeCanceled, store.ErasedReason
		return r, true
	}
	tk, held, ok := d.admit(ctx, w, m, hd, now)
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
		Attempt: m.Attempt, Method: w.method(), URL: w.redactedURL()}
	if a := r.Attempt; a != nil {
		e := base
		e.Kind, e.Time, e.StatusCode, e.Latency, e.Outcome = EventAttempt, a.At, a.StatusCode, a.Latency, outcomeKind(r.Outcome)
		if a.Error != "" {
			e.Err = errors.New(a.Error)
		}
		d.observe(e)
	}
	d.logOutcome(w, m, r)
	e := base
	switch r.Outcome {
	case store.OutcomeDelivered:
		e.Kind = EventDelivered
	case store.OutcomeRetry:
		e.Kind, e.Next = EventRetry, r.NextAttempt
	case store.OutcomeDead:
		e.Kind = EventDead
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
	if len(w.Before) > 0 || len(w.After) > 0 || !w.mapper.Passthrough() {
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
	// finish runs the after hooks on the outcome, unless a stop cut the
	// attempt off: handle then drops it, and no hook hears of it. A
	// delivery is recorded even during a stop, so its after hooks get
	// their full HookTimeout to write a sync status.
	finish := func(res store.Result, tr transform.Result) store.Result {
		if len(w.After) == 0 {
			return res
		}
		hctx := ctx
		switch {
		case res.Outcome == store.OutcomeDelivered:
			hctx = context.WithoutCancel(ctx)
		case ctx.Err() != nil:
			return res
		}
		tr.Message, tr.Attempt, tr.Outcome = msg, m.Attempt, outcomeOf(res.Outcome)
		tr.Final = tr.Outcome != transform.Retrying
		d.afterHooks(hctx, w, tr)
		return res
	}
	for _, name := range w.Before {
		h, err := d.cfg.Hooks.LookupBefore(name)
		if err == nil {
			hm := msg // the hook's own reference: msg may be replaced below
			err = d.runHook(ctx, func(ctx context.Context) error { return h.Before(ctx, hm) })
		}
		if err == nil {
			continue
		}
		if errors.Is(err, errHookAbandoned) {
			// The hook may still be changing msg: the after hooks get the
			// message as it was decoded instead.
			d.log.Error("herald: before hook ignored its context and was left running", "webhook_id", w.ID, "message_id", m.ID, "hook", name, "error", err)
			d.observe(Event{Kind: EventHookError, WebhookID: w.ID, Tenant: w.Tenant, MessageID: m.ID, Attempt: m.Attempt, Reason: "before hook " + name, Err: err})
			if fresh, derr := d.message(w, m); derr == nil {
				msg = fresh
			}
		}
		if errors.Is(err, transform.ErrSkip) {
			r.Outcome, r.Error = store.OutcomeSkipped, "skipped by before hook "+name
			return finish(r, transform.Result{})
		}
		return finish(fail(fmt.Errorf("before hook %s: %w", name, err), transform.IsPermanent(err)), transform.Result{Err: err})
	}
	if msg != nil {
		switch n := len(msg.Records); {
		case n == 0:
			r.Outcome, r.Error = store.OutcomeSkipped, "before hooks removed every record"
			return finish(r, transform.Result{})
		case n > 1 && !m.Batch:
			err := fmt.Errorf("before hooks left %d records in a message that carries one (the webhook does not batch)", n)
			return finish(fail(err, true), transform.Result{Err: err})
		}
	}
	// The attempt's timeout starts before its request is built, so that
	// the request is made with its context rather than copied to take it;
	// unless building it may fetch an OAuth2 token, which is bounded on
	// its own and must not eat into the attempt's time.
	var actx context.Context
	cancel := context.CancelFunc(func() {})
	defer func() { cancel() }()
	rctx := ctx
	if w.Auth == nil || w.Auth.Type != AuthOAuth2ClientCredentials {
		actx, cancel = d.attemptContext(ctx)
		rctx = actx
	}
	req, sent, err := d.request(rctx, w, m, msg, now)
	if err != nil {
		var te *TokenError // no token yet: retried like a network error
		return finish(fail(err, !errors.As(err, &te)), transform.Result{Err: err})
	}
	att.RequestHeaders = maskHeaders(req.Header)
	if actx == nil {
		actx, cancel = d.attemptContext(ctx)
		req = req.WithContext(actx)
	}
	start := time.Now()
	resp, err := d.roundTrip(w, req)
	err = redactURLError(err)
	var body []byte
	var header http.Header
	if err == nil {
		body, err = readCapped(resp.Body, d.cfg.MaxResponseBytes)
		resp.Body.Close()
		header = resp.Header
		att.StatusCode = resp.StatusCode
	}
	att.Latency = time.Since(start)
	failpoint.Hit("attempt.answered")
	var creds []string
	if err != nil || len(body) > 0 {
		creds = sentCredentials(req) // a receiver may echo them; the log must not
	}
	err = unechoedError(err, creds, w, msg)
	if w.mapper.Redacts() && msg != nil {
		att.ResponseBody = snippet(w.mapper.RedactResponse(unechoed(body, creds), header.Get("Content-Type"), msg.Records))
	} else {
		att.ResponseBody = snippet(unechoed(body, creds))
	}
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
			// The message waits for the webhook to be enabled again, even
			// when this was its last attempt.
			if res.Outcome == store.OutcomeDead {
				res.Outcome, res.NextAttempt = store.OutcomeRetry, now.Add(d.cfg.Retry.delay(m.Attempt))
			}
		}
		if att.StatusCode == http.StatusUnauthorized {
			d.unauthorized(w, req)
		}
	}
	return finish(res, transform.Result{RequestBody: sent, StatusCode: att.StatusCode, Header: header, Body: body,
		Latency: att.Latency, Err: sendErr})
}

// attemptContext returns the context an attempt's request is sent in:
// ctx bounded by AttemptTimeout.
func (d *Dispatcher) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	actx, cancel := context.WithTimeout(ctx, d.cfg.AttemptTimeout)
	return sendTrace(actx), cancel
}

// verdict is what an answer means for the delivery.
type verdict struct {
	ok               bool
	permanent        bool // do not retry
	honourRetryAfter bool
	gone             bool // 410: disable the webhook
}

// verdictFor turns an attempt's outcome into what the dispatcher does;
// Classify decides what an answer means.
func verdictFor(code int, h http.Header, err error) verdict {
	if err != nil {
		return verdict{}
	}
	switch Classify(code, h) {
	case VerdictAccepted:
		return verdict{ok: true}
	case VerdictAbort:
		return verdict{permanent: true}
	case VerdictGone:
		return verdict{gone: true}
	case VerdictBackOff:
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

// runHook runs one hook call under HookTimeout in a goroutine of its own,
// turning a panic into an error that carries its stack. A hook that does
// not return by the timeout (it ignores its context) is left running and
// the attempt goes on without it: an attempt always ends. The call stays
// counted in d.hookRuns until it returns, so the workers' end, and so
// Shutdown, waits for it (within Shutdown's context and grace).
func (d *Dispatcher) runHook(ctx context.Context, f func(context.Context) error) error {
	hctx, cancel := context.WithTimeout(ctx, d.cfg.HookTimeout)
	defer cancel()
	done := make(chan error, 1)
	d.hookRuns.add()
	go func() {
		defer d.hookRuns.done()
		returned := false
		defer func() {
			if returned {
				return
			}
			if p := recover(); p != nil {
				done <- fmt.Errorf("panicked: %v\n%s", p, debug.Stack())
				return
			}
			done <- errors.New("ended its goroutine without returning (runtime.Goexit)")
		}()
		err := f(hctx)
		returned = true
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-hctx.Done():
	}
	select {
	case err := <-done:
		return err
	default:
	}
	cause := context.DeadlineExceeded
	if err := ctx.Err(); err != nil {
		cause = err
	}
	return &abandonedError{timeout: d.cfg.HookTimeout, cause: cause}
}

// afterHooks runs the after hooks on a copy of tr of its own. The copy
// is taken here, not in attempt, so that attempts of webhooks without
// after hooks do not move their result to the heap.
//
//go:noinline
func (d *Dispatcher) afterHooks(ctx context.Context, w *compiled, tr transform.Result) {
	d.after(ctx, w, &tr)
}

// after runs the webhook's after hooks in turn. Their errors, panics and
// timeouts are logged and observed, and never change the outcome.
func (d *Dispatcher) after(ctx context.Context, w *compiled, res *transform.Result) {
	for i, name := range w.After {
		h, err := d.cfg.Hooks.LookupAfter(name)
		if err == nil {
			hr := res // the hook's own reference: res may be replaced below
			err = d.runHook(ctx, func(ctx context.Context) error { return h.After(ctx, hr) })
		}
		if err == nil {
			continue
		}
		var id string
		if res.Message != nil {
			id = res.Message.ID
		}
		d.log.Warn("herald: after hook failed; the outcome stands", "webhook_id", w.ID, "message_id", id, "hook", name, "error", err)
		d.observe(Event{Kind: EventHookError, WebhookID: w.ID, Tenant: w.Tenant, MessageID: id, Attempt: res.Attempt,
			Reason: "after hook " + name, Err: err})
		if errors.Is(err, errHookAbandoned) && i < len(w.After)-1 {
			// The hook may still read or write res: the next ones get a copy.
			res = res.Clone()
		}
	}
}

// message decodes a claimed message into the form hooks and mappings see.
func (d *Dispatcher) message(w *compiled, m store.Message) (*transform.Message, error) {
	msg := &transform.Message{ID: m.ID, WebhookID: w.ID, WebhookName: w.Name, Attempt: m.Attempt,
		Batch: m.Batch, Records: make([]transform.Record, len(m.Events)), Header: http.Header{}}
	for i, e := range m.Events {
		p, err := decodePayload(e.Payload)
		if err != nil {
			return nil, fmt.Errorf("stored event %s unreadable: %w", e.ID, err)
		}
		msg.Records[i] = transform.Record{EventID: e.ID, Table: p.Table, Op: p.Op, Key: p.Key, Tenant: p.Tenant,
			Time: e.Time, Old: p.Old, New: p.New, Changed: p.Changed, Context: p.Context}
	}
	return msg, nil
}

// request builds the signed HTTP request of an attempt and returns it with
// the bytes signed: the body, or for GET the whole raw query string (the
// URL's own query, then the mapped fields), as receivers verify it.
func (d *Dispatcher) request(ctx context.Context, w *compiled, m store.Message, msg *transform.Message, now time.Time) (*http.Request, []byte, error) {
	body, ctype, query, err := d.body(w, m, msg)
	if err != nil {
		return nil, nil, err
	}
	var req *http.Request
	own := false // the values of the stamped headers are this request's own
	if w.template != nil && msg == nil && query == "" {
		// Nothing of the attempt changes the URL or the webhook's headers:
		// copy them from the template rather than parse and set them.
		req, own = w.template.Clone(ctx), true
		setBody(req, body)
	} else {
		u, err := url.Parse(w.URL)
		if err != nil {
			return nil, nil, fmt.Errorf("building request to %s: %v", RedactURL(w.URL), err)
		}
		u.Fragment, u.RawFragment = "", ""
		if query != "" {
			if u.RawQuery != "" {
				u.RawQuery += "&"
			}
			u.RawQuery += query
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		if req, err = http.NewRequestWithContext(ctx, w.method(), u.String(), rd); err != nil {
			return nil, nil, fmt.Errorf("building request to %s: %v", RedactURL(w.URL), err)
		}
		for k, v := range w.Headers {
			req.Header.Set(k, v)
		}
	}
	h := req.Header
	if msg != nil {
		for k, vs := range msg.Header {
			for _, v := range vs {
				if err := transform.CheckHeader(k, v); err != nil {
					return nil, nil, fmt.Errorf("a before hook set a header herald refuses: %w", err)
				}
			}
			h[http.CanonicalHeaderKey(k)] = vs
		}
	}
	// Receiver auth configured on the webhook wins over a hook's header.
	if err := d.authorize(ctx, w, h); err != nil {
		return nil, nil, err
	}
	signed := body
	if w.method() == "GET" {
		signed = []byte(req.URL.RawQuery)
	}
	d.stamp(h, w, m.ID, now, signed, ctype, own)
	return req, signed, nil
}

// stampedHeaders are the headers stamp sets.
var stampedHeaders = [...]string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Content-Type", "User-Agent"}

// requestTemplate returns the request that attempts copy when nothing but
// the body and the stamped headers changes: the URL without its fragment,
// the webhook's headers, and a value of its own for each stamped header,
// to be overwritten. It is nil when the URL and method make no request;
// attempts then build theirs and report why.
func requestTemplate(w Webhook) *http.Request {
	u, err := url.Parse(w.URL)
	if err != nil {
		return nil
	}
	u.Fragment, u.RawFragment = "", ""
	req, err := http.NewRequestWithContext(context.Background(), w.method(), u.String(), nil)
	if err != nil {
		return nil
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	for _, k := range stampedHeaders {
		req.Header[k] = []string{""}
	}
	return req
}

// setBody gives req the body b as http.NewRequest does a bytes.Reader: a
// known length, a way to read it again, and NoBody when it is empty.
func setBody(req *http.Request, b []byte) {
	if b == nil {
		return
	}
	req.ContentLength = int64(len(b))
	if len(b) == 0 {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// stamp sets the headers herald owns on every request, pings included:
// the Standard Webhooks id, timestamp and signature, the content type and
// the user agent. With own set, h holds a value slice of its own for each
// of them (a template's copy), and the values are written in place.
func (d *Dispatcher) stamp(h http.Header, w *compiled, id string, now time.Time, signed []byte, ctype string, own bool) {
	set := h.Set
	if own {
		set = func(k, v string) { h[k][0] = v }
		if ctype == "" {
			delete(h, "Content-Type")
		}
	}
	set("Webhook-Id", id)
	set("Webhook-Timestamp", strconv.FormatInt(now.Unix(), 10))
	set("Webhook-Signature", w.keys.at(now).Sign(id, now, signed))
	if ctype != "" {
		set("Content-Type", ctype)
	}
	set("User-Agent", "herald/"+Version)
}

// body encodes the request body: the default envelope straight from the
// stored payloads when nothing could have changed the records, else the
// records as the hooks left them, shaped and encoded in the webhook's
// format (encodeBody). For GET the mapping becomes the query string.
func (d *Dispatcher) body(w *compiled, m store.Message, msg *transform.Message) (body []byte, ctype, query string, err error) {
	if msg == nil {
		return envelopeFromStored(m), "application/json", "", nil
	}
	return encodeBody(w, msg)
}

func readCapped(r io.Reader, limit int64) ([]byte, error) {
	if r == http.NoBody { // 204 and the like: nothing to read, nothing to allocate
		return nil, nil
	}
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
	for k, vs := range h {
		switch k {
		case "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Content-Type", "User-Agent":
			if len(vs) > 0 {
				out[k] = vs[0]
			} else {
				out[k] = ""
			}
		default:
			out[k] = "xxxxx"
		}
	}
	return out
}
