package otelobserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/otelobserver"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	obs    *otelobserver.Observer
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	kit    *webhooktest.Kit
	rcv    *webhooktest.Receiver
}

func setup(t *testing.T, cfg webhook.Config) *fixture {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	obs, err := otelobserver.New(otelobserver.Options{TracerProvider: tp, MeterProvider: mp})
	require.NoError(t, err)
	t.Cleanup(func() { _ = obs.Close() })
	cfg.Observer = obs
	k := webhooktest.NewDispatcher(t, cfg)
	return &fixture{obs: obs, spans: spans, reader: reader, kit: k, rcv: webhooktest.NewReceiver(t, k.Clock)}
}

func (f *fixture) register(t *testing.T, w webhook.Webhook) webhook.Webhook {
	t.Helper()
	if w.Name == "" {
		w.Name = "payroll"
	}
	w.Table = "employee"
	w.Ops = []webhook.Op{webhook.Insert, webhook.Update}
	if w.URL == "" {
		w.URL = f.rcv.URL + "/hook?token=query-secret"
	}
	got, err := f.kit.Register(t.Context(), w)
	require.NoError(t, err)
	f.rcv.AddSecret(got.Secret)
	return got
}

func (f *fixture) publish(t *testing.T, key string) string {
	t.Helper()
	id, err := f.kit.Publish(t.Context(), webhook.Change{Table: "employee", Op: webhook.Insert, Key: key, New: map[string]any{"a": 1}})
	require.NoError(t, err)
	return id
}

// collect reads every metric, by name.
func (f *fixture) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, f.reader.Collect(t.Context(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, otelobserver.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// has reports whether set holds every one of kvs.
func has(set attribute.Set, kvs ...attribute.KeyValue) bool {
	for _, kv := range kvs {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// sumInt adds the int data points of a sum or gauge whose attributes hold kvs.
func sumInt(t *testing.T, m metricdata.Metrics, kvs ...attribute.KeyValue) int64 {
	t.Helper()
	var n int64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes, kvs...) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes, kvs...) {
				n += p.Value
			}
		}
	default:
		t.Fatalf("metric %s is a %T", m.Name, m.Data)
	}
	return n
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

func TestAttemptSpansFollowHTTPConventions(t *testing.T) {
	t.Parallel()
	f := setup(t, webhook.Config{})
	w := f.register(t, webhook.Webhook{Tenant: "acme"})
	f.rcv.Script(webhooktest.Answer{Status: http.StatusServiceUnavailable})
	id, err := f.kit.Publish(t.Context(), webhook.Change{Table: "employee", Op: webhook.Insert, Key: "E1", Tenant: "acme",
		New: map[string]any{"a": 1}})
	require.NoError(t, err)
	f.kit.Settle(t, 5)

	spans := f.spans.Ended()
	require.Len(t, spans, 2)
	u, err := url.Parse(f.rcv.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)

	failed, ok := spans[0], spans[1]
	for _, s := range spans {
		assert.Equal(t, "POST", s.Name())
		assert.Equal(t, trace.SpanKindClient, s.SpanKind())
		a := attrs(s)
		assert.Equal(t, "POST", a["http.request.method"].AsString())
		assert.Equal(t, u.Hostname(), a["server.address"].AsString())
		assert.Equal(t, int64(port), a["server.port"].AsInt64())
		assert.Equal(t, w.ID, a["herald.webhook.id"].AsString())
		assert.Equal(t, id, a["herald.message.id"].AsString())
		assert.Equal(t, "acme", a["herald.tenant"].AsString())
		assert.Equal(t, int64(1), a["herald.records"].AsInt64())
		full := a["url.full"].AsString()
		assert.True(t, strings.HasPrefix(full, f.rcv.URL+"/hook?"), full)
		assert.NotContains(t, full, "query-secret", "url.full is redacted")
		assert.True(t, s.EndTime().After(s.StartTime()), "the span lasts as long as the request")
	}

	a := attrs(failed)
	assert.True(t, failed.StartTime().Equal(webhooktest.Epoch), "the span starts when the attempt began")
	assert.Equal(t, int64(503), a["http.response.status_code"].AsInt64())
	assert.Equal(t, "503", a["error.type"].AsString())
	assert.Equal(t, "retry", a["herald.outcome"].AsString())
	assert.Equal(t, int64(1), a["herald.attempt"].AsInt64())
	assert.NotContains(t, a, attribute.Key("http.request.resend_count"))
	assert.Equal(t, codes.Error, failed.Status().Code)
	assert.Contains(t, failed.Status().Description, "status 503")

	a = attrs(ok)
	assert.True(t, ok.StartTime().Equal(webhooktest.Epoch.Add(time.Second)), "the retry began a second later")
	assert.Equal(t, int64(200), a["http.response.status_code"].AsInt64())
	assert.NotContains(t, a, attribute.Key("error.type"))
	assert.Equal(t, "delivered", a["herald.outcome"].AsString())
	assert.Equal(t, int64(2), a["herald.attempt"].AsInt64())
	assert.Equal(t, int64(1), a["http.request.resend_count"].AsInt64())
	assert.Equal(t, codes.Unset, ok.Status().Code)
}

func TestTransportErrorSpan(t *testing.T) {
	t.Parallel()
	f := setup(t, webhook.Config{Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	f.register(t, webhook.Webhook{URL: gone.URL + "/hook"})
	f.publish(t, "E1")
	f.kit.Drain(t)
	spans := f.spans.Ended()
	require.Len(t, spans, 1)
	a := attrs(spans[0])
	assert.NotContains(t, a, attribute.Key("http.response.status_code"), "no answer arrived")
	assert.Equal(t, "_OTHER", a["error.type"].AsString())
	assert.Equal(t, "dead", a["herald.outcome"].AsString())
	assert.Equal(t, codes.Error, spans[0].Status().Code)

	ms := f.collect(t)
	assert.Equal(t, int64(1), sumInt(t, ms["herald.attempts"], otelobserver.StatusClassKey.String("none"),
		otelobserver.OutcomeKey.String("dead")))
	assert.Equal(t, int64(1), sumInt(t, ms["herald.dead_letters"]))
}

func TestAttemptMetrics(t *testing.T) {
	t.Parallel()
	f := setup(t, webhook.Config{Retry: webhook.RetryPolicy{MaxAttempts: 2}})
	w := f.register(t, webhook.Webhook{})
	other := f.register(t, webhook.Webhook{Name: "access", MaxBatch: 10, URL: f.rcv.URL + "/access"})
	// w: E1 fails once then is delivered; E2 fails twice and dies.
	// other gets both records in one batch, delivered at once.
	var mu sync.Mutex
	seen := map[string]int{}
	f.rcv.Respond(func(r webhooktest.Request) webhooktest.Answer {
		if strings.HasPrefix(r.URL, "/access") {
			return webhooktest.Answer{}
		}
		mu.Lock()
		defer mu.Unlock()
		key := "E1"
		if strings.Contains(string(r.Body), `"key":"E2"`) {
			key = "E2"
		}
		seen[key]++
		switch {
		case key == "E2":
			return webhooktest.Answer{Status: http.StatusBadRequest}
		case seen[key] == 1:
			return webhooktest.Answer{Status: http.StatusServiceUnavailable}
		}
		return webhooktest.Answer{}
	})
	f.publish(t, "E1")
	f.publish(t, "E2")
	f.kit.Settle(t, 10)

	ms := f.collect(t)
	wid := otelobserver.WebhookIDKey.String(w.ID)
	oid := otelobserver.WebhookIDKey.String(other.ID)
	attempts := ms["herald.attempts"]
	assert.Equal(t, int64(5), sumInt(t, attempts))
	assert.Equal(t, int64(4), sumInt(t, attempts, wid))
	assert.Equal(t, int64(1), sumInt(t, attempts, wid, otelobserver.OutcomeKey.String("delivered"), otelobserver.StatusClassKey.String("2xx")))
	assert.Equal(t, int64(2), sumInt(t, attempts, wid, otelobserver.OutcomeKey.String("retry")))
	assert.Equal(t, int64(1), sumInt(t, attempts, wid, otelobserver.OutcomeKey.String("dead"), otelobserver.StatusClassKey.String("4xx")))
	assert.Equal(t, int64(1), sumInt(t, attempts, oid, otelobserver.OutcomeKey.String("delivered")))
	assert.Equal(t, int64(1), sumInt(t, ms["herald.dead_letters"], wid))
	assert.Zero(t, sumInt(t, ms["herald.dead_letters"], oid))

	dur := ms["http.client.request.duration"]
	assert.Equal(t, "s", dur.Unit)
	hist, ok := dur.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%T", dur.Data)
	var count uint64
	var sum float64
	for _, p := range hist.DataPoints {
		count += p.Count
		sum += p.Sum
		assert.True(t, has(p.Attributes, attribute.String("http.request.method", "POST")))
		assert.Contains(t, p.Bounds, 0.005, "the semantic conventions' buckets")
		if v, ok := p.Attributes.Value("http.response.status_code"); ok && v.AsInt64() == 503 {
			assert.True(t, has(p.Attributes, attribute.String("error.type", "503")))
		}
	}
	assert.Equal(t, uint64(5), count)
	assert.Positive(t, sum)
	assert.Less(t, sum, 5.0, "seconds, not milliseconds")
}

func TestEventsCounter(t *testing.T) {
	t.Parallel()
	f := setup(t, webhook.Config{})
	w := f.register(t, webhook.Webhook{})
	_, err := f.kit.SetDisabled(t.Context(), w.ID, true)
	require.NoError(t, err)
	_, err = f.kit.SetDisabled(t.Context(), w.ID, false)
	require.NoError(t, err)
	ms := f.collect(t)
	ev := ms["herald.events"]
	wid := otelobserver.WebhookIDKey.String(w.ID)
	assert.Equal(t, int64(1), sumInt(t, ev, wid, otelobserver.EventKindKey.String("webhook_disabled")))
	assert.Equal(t, int64(1), sumInt(t, ev, wid, otelobserver.EventKindKey.String("webhook_enabled")))
	assert.Empty(t, f.spans.Ended(), "only attempts make spans")
}

func TestQueueGauges(t *testing.T) {
	t.Parallel()
	f := setup(t, webhook.Config{})
	w := f.register(t, webhook.Webhook{})
	f.publish(t, "E1")
	f.publish(t, "E2")
	f.kit.Clock.Advance(90 * time.Second)
	f.publish(t, "E3")

	ms := f.collect(t)
	assert.NotContains(t, ms, "herald.queue.depth", "nothing to report before WatchStats")

	f.obs.WatchStats(f.kit.Stats)
	ms = f.collect(t)
	wid := otelobserver.WebhookIDKey.String(w.ID)
	assert.Equal(t, int64(3), sumInt(t, ms["herald.queue.depth"], wid))
	assert.Equal(t, int64(3), sumInt(t, ms["herald.deliveries"], wid, otelobserver.DeliveryStatusKey.String("pending")))
	assert.Equal(t, int64(0), sumInt(t, ms["herald.deliveries"], wid, otelobserver.DeliveryStatusKey.String("dead")))
	assert.Equal(t, int64(0), sumInt(t, ms["herald.attempts.in_flight"], wid))
	assert.Equal(t, int64(0), sumInt(t, ms["herald.observer.dropped"]))
	age, ok := ms["herald.queue.oldest_age"].Data.(metricdata.Gauge[float64])
	require.True(t, ok)
	require.Len(t, age.DataPoints, 1)
	assert.Equal(t, 90.0, age.DataPoints[0].Value)
	assert.Equal(t, "s", ms["herald.queue.oldest_age"].Unit)

	f.kit.Drain(t)
	ms = f.collect(t)
	assert.Equal(t, int64(0), sumInt(t, ms["herald.queue.depth"], wid), "a drained queue reports zero, not nothing")
	assert.Equal(t, int64(3), sumInt(t, ms["herald.deliveries"], wid, otelobserver.DeliveryStatusKey.String("delivered")))

	require.NoError(t, f.obs.Close())
	require.NoError(t, f.obs.Close(), "a second Close is a no-op")
	ms = f.collect(t)
	assert.NotContains(t, ms, "herald.queue.depth", "Close unregisters the gauges")
}

func TestCoreDoesNotImportOpenTelemetry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", "github.com/heraldhr/herald/webhook").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "github.com/heraldhr/herald/store")
	assert.NotContains(t, string(out), "go.opentelemetry.io", "only otelobserver may import OpenTelemetry")
}
