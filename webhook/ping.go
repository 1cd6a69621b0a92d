package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/heraldhr/herald/transform"
)

// PingEventType is the type of the event Ping sends.
const PingEventType = "webhook.ping"

// PingResult is what a test request to a webhook's endpoint did.
type PingResult struct {
	// MessageID is the webhook-id the ping was sent under, and its body's
	// id: a fresh UUIDv7.
	MessageID string
	Method    string
	URL       string // redacted
	// RequestHeaders are the headers sent; values other than herald's
	// own are masked.
	RequestHeaders map[string]string
	// StatusCode is the answer's status; 0 when none arrived.
	StatusCode int
	Latency    time.Duration
	// Header holds the answer's headers, Set-Cookie values masked.
	Header http.Header
	// Body is the start of the answer's body, 4 KiB at most.
	Body string
	// Err is nil for a 2xx answer. Otherwise it is a *DeliveryError with
	// the status, or with the transport error (URL redacted) when no
	// answer arrived: errors.Is(err, ErrBlockedDestination) and
	// errors.Is(err, context.DeadlineExceeded) work through it.
	Err error
}

// OK reports whether the receiver answered 2xx.
func (r PingResult) OK() bool { return r.Err == nil && r.StatusCode >= 200 && r.StatusCode < 300 }

// Ping sends a webhook.ping event to a stored webhook's endpoint, at once,
// and returns what happened: the "Test URL" button of an admin UI. The
// request goes through the same transport (and its address guard), with
// the webhook's method, static headers and signing secret, under
// Config.AttemptTimeout, whether the webhook is enabled or not. Hooks do
// not run: a ping carries no record. Its JSON body is
//
//	{"id": "<webhook-id>", "type": "webhook.ping", "timestamp": "...",
//	 "data": {"webhook_id": "<id>", "message": "ping"}}
//
// or, for a webhook whose body is a form (GET included), the fields type,
// id, webhook_id and message as form values.
//
// A ping creates no delivery and no attempt in the delivery log. A
// successful one counts as a success of the endpoint: it closes the
// webhook's circuit breaker in this process and ends its run of failures;
// a failed one counts for nothing. The error is for a ping that could not
// be made (no such webhook: ErrNotFound); what the receiver did, failure
// included, is in the result.
func (d *Dispatcher) Ping(ctx context.Context, id string) (PingResult, error) {
	defs, err := d.current(ctx, true)
	if err != nil {
		return PingResult{}, err
	}
	w, ok := defs.byID[id]
	if !ok {
		return PingResult{}, fmt.Errorf("webhook %q: %w", id, ErrNotFound)
	}
	if w.keys == nil || w.client == nil {
		return PingResult{}, fmt.Errorf("webhook %s cannot be used by this process: %w", id, w.err)
	}
	res := d.ping(ctx, w, true)
	if res.OK() {
		d.succeeded(ctx, w)
	}
	return res, nil
}

// PingWebhook is Ping for a webhook that is not stored yet, for the "Test"
// button of a create form: w is validated as Register would (errors wrap
// ErrInvalidWebhook) and a secret generated when it has none, but nothing
// is stored and nothing else changes.
func (d *Dispatcher) PingWebhook(ctx context.Context, w Webhook) (PingResult, error) {
	if w.Secret == "" {
		s, err := generateSecret(w.SignatureScheme)
		if err != nil {
			return PingResult{}, err
		}
		w.Secret = s
	}
	w.Method = w.method()
	w.PreviousSecrets = livePrevious(w.PreviousSecrets, d.now())
	if err := d.validate(&w); err != nil {
		return PingResult{}, err
	}
	w.derive()
	c := &compiled{Webhook: w}
	var err error
	if c.keys, err = newSigningKeys(w); err != nil {
		return PingResult{}, fmt.Errorf("%w: secret: %v", ErrInvalidWebhook, err)
	}
	if c.client, err = d.clientFor(w); err != nil {
		return PingResult{}, fmt.Errorf("%w: %v", ErrInvalidWebhook, err)
	}
	return d.ping(ctx, c, false), nil
}

// pingData is the data object of a ping.
type pingData struct {
	WebhookID string `json:"webhook_id,omitempty"`
	Message   string `json:"message"`
}

// ping makes the request of Ping and PingWebhook; stored says which.
func (d *Dispatcher) ping(ctx context.Context, w *compiled, stored bool) PingResult {
	now := d.now()
	id := uuid.Must(uuid.NewV7()).String()
	res := PingResult{MessageID: id, Method: w.method(), URL: RedactURL(w.URL)}
	fail := func(err error) PingResult {
		res.Err = &DeliveryError{StatusCode: res.StatusCode, Attempt: 1, URL: res.URL, Err: err}
		return res
	}

	var body []byte
	var ctype, query string
	if w.Body.Format == transform.Form {
		vals := url.Values{"type": {PingEventType}, "id": {id}, "message": {"ping"}}
		if w.ID != "" {
			vals.Set("webhook_id", w.ID)
		}
		if w.method() == http.MethodGet {
			query = vals.Encode()
		} else {
			body, ctype = []byte(vals.Encode()), "application/x-www-form-urlencoded"
		}
	} else {
		data, err := json.Marshal(pingData{WebhookID: w.ID, Message: "ping"})
		if err != nil {
			return fail(err)
		}
		body = append(envelopeHead(make([]byte, 0, 192), id, PingEventType, "", now), data...)
		body, ctype = append(body, '}'), "application/json"
	}
	target := w.URL
	if query != "" {
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + query
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.AttemptTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, w.method(), target, rd)
	if err != nil {
		return fail(errors.New("the request could not be built"))
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	if err := d.pingAuth(actx, w, req.Header, stored); err != nil {
		return fail(err)
	}
	signed := body
	if w.method() == http.MethodGet {
		signed = []byte(query)
	}
	d.stamp(req.Header, w, id, now, signed, ctype, false)
	res.RequestHeaders = maskHeaders(req.Header)

	start := time.Now()
	resp, err := w.client.Do(req)
	var answer []byte
	if err == nil {
		answer, err = readCapped(resp.Body, d.cfg.MaxResponseBytes)
		resp.Body.Close()
		res.StatusCode = resp.StatusCode
		res.Header = resp.Header.Clone()
		if vs := res.Header.Values("Set-Cookie"); len(vs) > 0 {
			res.Header["Set-Cookie"] = []string{"xxxxx"}
		}
	}
	res.Latency = time.Since(start)
	res.Body = snippet(answer)
	if err != nil {
		return fail(redactTransportError(err))
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		if res.StatusCode == http.StatusUnauthorized && stored {
			d.unauthorized(w, req)
		}
		return fail(nil)
	}
	return res
}

// pingAuth sets the receiver auth of a ping as for a delivery. A webhook
// not stored yet has no identity to cache an OAuth2 token under: its
// token is fetched for the ping alone, so that one form's token never
// reaches another form's receiver.
func (d *Dispatcher) pingAuth(ctx context.Context, w *compiled, h http.Header, stored bool) error {
	if !stored && w.Auth != nil && w.Auth.Type == AuthOAuth2ClientCredentials {
		v, _, err := d.fetchToken(ctx, w)
		if err != nil {
			return err
		}
		h.Set("Authorization", v)
		return nil
	}
	return d.authorize(ctx, w, h)
}

// redactTransportError masks the URL net/http puts in its errors: it
// strips a password but keeps query values, where API keys often are.
func redactTransportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		c := *ue
		c.URL = RedactURL(ue.URL)
		return &c
	}
	return err
}
