// Package otelobserver turns herald's observer events into OpenTelemetry
// traces and metrics. It is the only herald package that imports
// OpenTelemetry: the dispatcher itself knows only the small
// webhook.Observer interface.
//
// # Use
//
//	obs, err := otelobserver.New(otelobserver.Options{
//		TracerProvider: tp, // nil: the global provider
//		MeterProvider:  mp, // nil: the global provider
//	})
//	if err != nil { ... }
//	d, err := webhook.New(webhook.Config{Store: st, Observer: obs})
//	if err != nil { ... }
//	obs.WatchStats(d.Stats) // feeds the queue gauges
//	defer obs.Close()
//
// # Traces
//
// Every attempt becomes one span of kind client, named after the HTTP
// method ("POST"), following the OpenTelemetry HTTP client conventions:
// http.request.method, server.address, server.port, url.full (redacted:
// no user info, query values masked), http.response.status_code (when an
// answer arrived), error.type (the status code, or "_OTHER" when no answer
// arrived) and http.request.resend_count (on retries), plus
// herald.webhook.id, herald.message.id, herald.attempt, herald.records,
// herald.outcome ("delivered", "retry" or "dead") and herald.tenant (when
// the webhook has one). The span starts when the attempt began and lasts
// as long as its request did; its status is Error unless the message was
// delivered. Spans are made after the fact from observer events, so they
// start a trace of their own: they are not children of the span that
// published the change, and no traceparent header is sent.
//
// # Metrics
//
//   - http.client.request.duration (histogram, s): request duration, with
//     the same HTTP attributes as the span and herald.webhook.id.
//   - herald.attempts (counter): attempts by herald.webhook.id,
//     herald.outcome and herald.status_class ("2xx", "4xx", "5xx", ...,
//     or "none" when no answer arrived).
//   - herald.dead_letters (counter): deliveries that failed for good, by
//     herald.webhook.id.
//   - herald.events (counter): every other observer event (skipped,
//     held, canceled, condition_error, webhook_disabled,
//     webhook_enabled) by herald.event.kind and herald.webhook.id.
//
// With WatchStats, read at each collection from Dispatcher.Stats:
//
//   - herald.queue.depth (gauge): pending deliveries, by herald.webhook.id.
//   - herald.queue.oldest_age (gauge, s): how long the oldest pending
//     delivery has waited, by herald.webhook.id.
//   - herald.deliveries (gauge): deliveries by herald.webhook.id and
//     herald.delivery.status.
//   - herald.attempts.in_flight (gauge): attempts this process is making,
//     by herald.webhook.id.
//   - herald.observer.dropped (counter): observer events dropped because
//     the dispatcher's observer queue was full.
//
// Stats reads the store, so a collection costs a query (or, with a store
// that cannot count, a pass over the delivery log); collect at a
// scrape-like pace.
package otelobserver
