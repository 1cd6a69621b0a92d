package otelobserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhr/herald/webhook"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/heraldhr/herald/webhook/otelobserver"

// Attribute keys of herald's own.
const (
	WebhookIDKey      = attribute.Key("herald.webhook.id")
	MessageIDKey      = attribute.Key("herald.message.id")
	AttemptKey        = attribute.Key("herald.attempt")
	RecordsKey        = attribute.Key("herald.records")
	OutcomeKey        = attribute.Key("herald.outcome")
	TenantKey         = attribute.Key("herald.tenant")
	StatusClassKey    = attribute.Key("herald.status_class")
	EventKindKey      = attribute.Key("herald.event.kind")
	DeliveryStatusKey = attribute.Key("herald.delivery.status")
)

// Options configure an Observer.
type Options struct {
	// TracerProvider makes the attempt spans; nil: otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the instruments; nil: otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// StatsFunc reports the dispatcher's work; Dispatcher.Stats is one.
type StatsFunc func(context.Context) (webhook.Stats, error)

// Observer is a webhook.Observer that records OpenTelemetry spans and
// metrics. It is safe for concurrent use.
type Observer struct {
	tracer   trace.Tracer
	duration httpconv.ClientRequestDuration
	attempts metric.Int64Counter
	dead     metric.Int64Counter
	events   metric.Int64Counter

	stats     atomic.Pointer[StatsFunc]
	reg       metric.Registration
	closeOnce sync.Once
}

var _ webhook.Observer = (*Observer)(nil)

// New makes the tracer and instruments and registers the gauges' callback.
// Call Close to unregister it.
func New(opts Options) (*Observer, error) {
	tp, mp := opts.TracerProvider, opts.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName, metric.WithInstrumentationVersion(webhook.Version))
	o := &Observer{tracer: tp.Tracer(ScopeName, trace.WithInstrumentationVersion(webhook.Version))}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	o.duration, err = httpconv.NewClientRequestDuration(meter)
	check(err)
	o.attempts, err = meter.Int64Counter("herald.attempts", metric.WithUnit("{attempt}"),
		metric.WithDescription("Webhook delivery attempts, by outcome and status class."))
	check(err)
	o.dead, err = meter.Int64Counter("herald.dead_letters", metric.WithUnit("{delivery}"),
		metric.WithDescription("Deliveries that failed for good and wait for a replay."))
	check(err)
	o.events, err = meter.Int64Counter("herald.events", metric.WithUnit("{event}"),
		metric.WithDescription("Skips, holds, cancellations, condition errors and webhook state changes."))
	check(err)
	depth, err := meter.Int64ObservableGauge("herald.queue.depth", metric.WithUnit("{delivery}"),
		metric.WithDescription("Deliveries waiting for an attempt."))
	check(err)
	age, err := meter.Float64ObservableGauge("herald.queue.oldest_age", metric.WithUnit("s"),
		metric.WithDescription("How long the oldest pending delivery has waited."))
	check(err)
	byStatus, err := meter.Int64ObservableGauge("herald.deliveries", metric.WithUnit("{delivery}"),
		metric.WithDescription("Deliveries in the store, by state."))
	check(err)
	inflight, err := meter.Int64ObservableGauge("herald.attempts.in_flight", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts this process is making now."))
	check(err)
	dropped, err := meter.Int64ObservableCounter("herald.observer.dropped", metric.WithUnit("{event}"),
		metric.WithDescription("Observer events dropped because the observer queue was full."))
	check(err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("otelobserver: making instruments: %w", err)
	}
	reg, err := meter.RegisterCallback(func(ctx context.Context, ob metric.Observer) error {
		f := o.stats.Load()
		if f == nil {
			return nil
		}
		st, err := (*f)(ctx)
		if err != nil {
			return err
		}
		for id, w := range st.Webhooks {
			set := metric.WithAttributeSet(attribute.NewSet(WebhookIDKey.String(id)))
			ob.ObserveInt64(depth, w.Pending(), set)
			ob.ObserveFloat64(age, w.OldestPendingAge.Seconds(), set)
			ob.ObserveInt64(inflight, w.InFlight, set)
			for status, n := range w.Deliveries {
				ob.ObserveInt64(byStatus, n, metric.WithAttributes(WebhookIDKey.String(id), DeliveryStatusKey.String(string(status))))
			}
		}
		ob.ObserveInt64(dropped, int64(st.ObserverDropped))
		return nil
	}, depth, age, byStatus, inflight, dropped)
	if err != nil {
		return nil, fmt.Errorf("otelobserver: registering the gauges: %w", err)
	}
	o.reg = reg
	return o, nil
}

// WatchStats sets where the gauges read the dispatcher's work from at each
// collection, usually Dispatcher.Stats. Until it is called the gauges
// report nothing.
func (o *Observer) WatchStats(f StatsFunc) {
	if f == nil {
		o.stats.Store(nil)
		return
	}
	o.stats.Store(&f)
}

// Close unregisters the gauges' callback. Spans and counters keep working.
func (o *Observer) Close() error {
	var err error
	o.closeOnce.Do(func() { err = o.reg.Unregister() })
	return err
}

// Observe records one event.
func (o *Observer) Observe(e webhook.Event) {
	ctx := context.Background()
	switch e.Kind {
	case webhook.EventAttempt:
		o.attempt(ctx, e)
	case webhook.EventDead:
		o.dead.Add(ctx, int64(max(e.Records, 1)), metric.WithAttributes(WebhookIDKey.String(e.WebhookID)))
	case webhook.EventDelivered, webhook.EventRetry:
		// Counted with their attempt.
	default:
		o.events.Add(ctx, 1, metric.WithAttributes(EventKindKey.String(string(e.Kind)), WebhookIDKey.String(e.WebhookID)))
	}
}

// attempt records an attempt's span, duration and count.
func (o *Observer) attempt(ctx context.Context, e webhook.Event) {
	httpAttrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(e.Method)}
	if host, port, ok := server(e.URL); ok {
		httpAttrs = append(httpAttrs, semconv.ServerAddress(host), semconv.ServerPort(port))
	}
	if e.StatusCode != 0 {
		httpAttrs = append(httpAttrs, semconv.HTTPResponseStatusCode(e.StatusCode))
	}
	failed := e.Outcome != webhook.EventDelivered
	if failed {
		errType := semconv.ErrorTypeOther
		if e.StatusCode != 0 {
			errType = semconv.ErrorTypeKey.String(strconv.Itoa(e.StatusCode))
		}
		httpAttrs = append(httpAttrs, errType)
	}
	whAttr := WebhookIDKey.String(e.WebhookID)

	o.duration.Inst().Record(ctx, e.Latency.Seconds(), metric.WithAttributes(slices.Concat(httpAttrs, []attribute.KeyValue{whAttr})...))
	o.attempts.Add(ctx, 1, metric.WithAttributes(whAttr, OutcomeKey.String(string(e.Outcome)),
		StatusClassKey.String(statusClass(e.StatusCode))))

	spanAttrs := slices.Concat(httpAttrs, []attribute.KeyValue{
		semconv.URLFull(e.URL),
		whAttr,
		MessageIDKey.String(e.MessageID),
		AttemptKey.Int(e.Attempt),
		RecordsKey.Int(e.Records),
		OutcomeKey.String(string(e.Outcome)),
	})
	if e.Attempt > 1 {
		spanAttrs = append(spanAttrs, semconv.HTTPRequestResendCount(e.Attempt-1))
	}
	if e.Tenant != "" {
		spanAttrs = append(spanAttrs, TenantKey.String(e.Tenant))
	}
	_, span := o.tracer.Start(ctx, e.Method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(e.Time), trace.WithAttributes(spanAttrs...))
	if failed {
		msg := "not delivered"
		if e.Err != nil {
			msg = e.Err.Error()
		}
		span.SetStatus(codes.Error, msg)
	}
	span.End(trace.WithTimestamp(e.Time.Add(e.Latency)))
}

// server returns the host and port a (redacted) URL points at.
func server(raw string) (string, int, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", 0, false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		return u.Hostname(), n, err == nil
	}
	switch u.Scheme {
	case "https":
		return u.Hostname(), 443, true
	case "http":
		return u.Hostname(), 80, true
	}
	return u.Hostname(), 0, false
}

// statusClass groups a status code: "2xx", "4xx" ..., or "none" when no
// answer arrived.
func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "none"
	}
	return strconv.Itoa(code/100) + "xx"
}
