package admin

import (
	"net/http"
	"time"

	"github.com/heraldhr/herald/webhook"
)

// pingJSON is what a test request to a webhook's endpoint did.
type pingJSON struct {
	// OK is whether the receiver answered 2xx.
	OK bool `json:"ok"`
	// MessageID is the webhook-id the ping was sent under.
	MessageID      string            `json:"message_id"`
	Method         string            `json:"method"`
	URL            string            `json:"url"`
	RequestHeaders map[string]string `json:"request_headers,omitempty"`
	// StatusCode is 0 when no answer arrived.
	StatusCode      int                 `json:"status_code"`
	LatencyMS       float64             `json:"latency_ms"`
	ResponseHeaders map[string][]string `json:"response_headers,omitempty"`
	ResponseBody    string              `json:"response_body,omitempty"`
	Error           string              `json:"error,omitempty"`
}

func toPing(r webhook.PingResult) pingJSON {
	out := pingJSON{OK: r.OK(), MessageID: r.MessageID, Method: r.Method, URL: r.URL, RequestHeaders: r.RequestHeaders,
		StatusCode: r.StatusCode, LatencyMS: float64(r.Latency.Microseconds()) / 1000, ResponseBody: r.Body}
	if len(r.Header) > 0 {
		out.ResponseHeaders = r.Header
	}
	if r.Err != nil {
		out.Error = r.Err.Error()
	}
	return out
}

// POST /webhooks/{id}/ping: the "Test URL" button of a saved webhook.
func (h *handler) pingWebhook(q *request) (int, any, error) {
	w, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if err := q.decode(&struct{}{}, true); err != nil {
		return 0, nil, err
	}
	res, err := h.d.Ping(q.ctx(), w.ID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toPing(res), nil
}

// POST /webhooks/ping: the "Test URL" button of a webhook not saved yet.
// The body is a webhook as POST /webhooks takes it; nothing is stored.
func (h *handler) pingUnsaved(q *request) (int, any, error) {
	var in webhook.Webhook
	if err := q.decode(&in, false); err != nil {
		return 0, nil, err
	}
	if err := q.ownNew(&in); err != nil {
		return 0, nil, err
	}
	if err := q.check(in); err != nil {
		return 0, nil, err
	}
	res, err := h.d.PingWebhook(q.ctx(), in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toPing(res), nil
}

// healthJSON is how a webhook's endpoint is doing.
type healthJSON struct {
	WebhookID string `json:"webhook_id"`
	// Breaker is closed, open or half-open, in the process that answers.
	Breaker        string    `json:"breaker"`
	OpenedAt       time.Time `json:"opened_at,omitzero"`
	NextProbeAt    time.Time `json:"next_probe_at,omitzero"`
	Requests       int       `json:"requests"`
	Failures       int       `json:"failures"`
	InFlight       int       `json:"in_flight"`
	Waiting        int       `json:"waiting"`
	MaxConcurrency int       `json:"max_concurrency"`
	RateLimit      float64   `json:"rate_limit,omitempty"`
	FailingSince   time.Time `json:"failing_since,omitzero"`
	Disabled       bool      `json:"disabled"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
}

// GET /webhooks/{id}/health
func (h *handler) webhookHealth(q *request) (int, any, error) {
	w, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	e, err := h.d.Health(q.ctx(), w.ID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, healthJSON{WebhookID: e.WebhookID, Breaker: string(e.Breaker), OpenedAt: e.OpenedAt.UTC(),
		NextProbeAt: e.NextProbe.UTC(), Requests: e.Requests, Failures: e.Failures, InFlight: e.InFlight,
		Waiting: e.Waiting, MaxConcurrency: e.MaxConcurrency, RateLimit: e.RateLimit,
		FailingSince: e.FailingSince.UTC(), Disabled: e.Disabled, DisabledReason: e.DisabledReason}, nil
}
