package webhook

import (
	"net/http"
	"strings"
)

// Verdict is what a receiver's answer means for the message it answered.
// Classify decides it; the dispatcher acts on it.
type Verdict int

// The verdicts, from the receiver's point of view.
const (
	// VerdictRetry: the message was not accepted; it is sent again on the
	// retry schedule until RetryPolicy.MaxAttempts is spent. Every answer
	// not named below is a VerdictRetry: 1xx, 3xx (redirects are not
	// followed), and the 4xx and 5xx statuses not listed.
	VerdictRetry Verdict = iota
	// VerdictAccepted: any 2xx. The message is delivered.
	VerdictAccepted
	// VerdictBackOff: 429 Too Many Requests, 502 Bad Gateway, 503 Service
	// Unavailable, 504 Gateway Timeout. Retried, but not before the time a
	// Retry-After header asks for (seconds or an HTTP date), capped at
	// RetryPolicy.MaxRetryAfter, and never sooner than the schedule.
	VerdictBackOff
	// VerdictGone: 410 Gone. The receiver no longer exists: the webhook is
	// disabled (logged as a warning, visible as Webhook.Disabled), and the
	// message stays pending, to be sent once the webhook is enabled again.
	VerdictGone
	// VerdictAbort: a non-2xx answer carrying the header
	// "webhook-delivery: abort-message". The receiver refuses this message
	// for good: it is not retried and ends Dead (Replay can send it again).
	// The webhook's other messages are unaffected.
	VerdictAbort
)

// AbortHeader and AbortValue make the answer that stops a message's
// retries. Header names are case-insensitive; so is the value.
const (
	AbortHeader = "Webhook-Delivery"
	AbortValue  = "abort-message"
)

// Classify decides what an answer with the given status and header means.
// It is the one place herald interprets a status code. A 2xx is accepted
// whatever its headers; the abort header takes precedence over every
// other non-2xx status, 410 included.
func Classify(status int, h http.Header) Verdict {
	switch {
	case status >= 200 && status < 300:
		return VerdictAccepted
	case strings.EqualFold(strings.TrimSpace(h.Get(AbortHeader)), AbortValue):
		return VerdictAbort
	case status == http.StatusGone:
		return VerdictGone
	case status == http.StatusTooManyRequests, status == http.StatusBadGateway,
		status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return VerdictBackOff
	}
	return VerdictRetry
}

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case VerdictRetry:
		return "retry"
	case VerdictAccepted:
		return "accepted"
	case VerdictBackOff:
		return "back off"
	case VerdictGone:
		return "gone"
	case VerdictAbort:
		return "abort"
	}
	return "unknown verdict"
}
