package otelobserver_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/otelobserver"
)

// BenchmarkObserveAttempt measures what one attempt costs the observer
// goroutine: a span, a histogram record and a counter add.
func BenchmarkObserveAttempt(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(b.Context())
		_ = mp.Shutdown(b.Context())
	})
	obs, err := otelobserver.New(otelobserver.Options{TracerProvider: tp, MeterProvider: mp})
	require.NoError(b, err)
	e := webhook.Event{Kind: webhook.EventAttempt, Time: time.Now(), WebhookID: "wh-1", MessageID: "msg-1",
		Records: 1, Attempt: 2, StatusCode: 503, Latency: 40 * time.Millisecond, Method: "POST",
		URL: "https://payroll.example.com/hooks?token=xxxxx", Err: errors.New("status 503"), Outcome: webhook.EventRetry}
	b.ReportAllocs()
	for b.Loop() {
		obs.Observe(e)
	}
}
