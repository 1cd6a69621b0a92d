package webhook

import (
	"context"
	"net/http/httptrace"

	"github.com/heraldhr/herald/internal/failpoint"
)

// sendTrace lets crash tests stop the process after a request was written
// and before its answer is read (the "attempt.request-sent" failpoint).
// Unarmed, it returns ctx as it is.
func sendTrace(ctx context.Context) context.Context {
	if !failpoint.Armed() {
		return ctx
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { failpoint.Hit("attempt.request-sent") },
	})
}
