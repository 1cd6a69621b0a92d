package otelobserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/otelobserver"
)

// Wire the observer into a dispatcher: one span per attempt, counters and
// a duration histogram, and queue gauges fed by Dispatcher.Stats.
func Example() {
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) }()

	obs, err := otelobserver.New(otelobserver.Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		panic(err)
	}
	defer obs.Close()
	d, err := webhook.New(webhook.Config{Store: memory.New(), Observer: obs, AllowPrivateNetworks: true})
	if err != nil {
		panic(err)
	}
	obs.WatchStats(d.Stats)

	payroll := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer payroll.Close()
	_, err = d.Register(ctx, webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Insert},
		URL: payroll.URL + "/hooks"})
	if err != nil {
		panic(err)
	}
	for _, key := range []string{"E-1001", "E-1002"} {
		if _, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Insert, Key: key,
			New: map[string]any{"name": "Ada"}}); err != nil {
			panic(err)
		}
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		panic(err)
	}

	for _, s := range spans.Ended() {
		for _, kv := range s.Attributes() {
			if kv.Key == "http.response.status_code" {
				fmt.Println("span", s.Name(), s.SpanKind(), kv.Value.AsInt64())
			}
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		panic(err)
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch data := m.Data.(type) {
		case metricdata.Sum[int64]:
			if m.Name == "herald.attempts" {
				fmt.Println(m.Name, data.DataPoints[0].Value)
			}
		case metricdata.Gauge[int64]:
			if m.Name == "herald.queue.depth" {
				fmt.Println(m.Name, data.DataPoints[0].Value)
			}
		case metricdata.Histogram[float64]:
			fmt.Println(m.Name, m.Unit, data.DataPoints[0].Count)
		}
	}
	// Output:
	// span POST client 200
	// span POST client 200
	// http.client.request.duration s 2
	// herald.attempts 2
	// herald.queue.depth 0
}
