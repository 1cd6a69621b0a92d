package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// recorder is an Observer that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []webhook.Event
}

func (r *recorder) Observe(e webhook.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// take returns the events so far and forgets them.
func (r *recorder) take() []webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func kinds(es []webhook.Event) []webhook.EventKind {
	out := make([]webhook.EventKind, len(es))
	for i, e := range es {
		out[i] = e.Kind
	}
	return out
}

func TestObserverIsToldEveryKind(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	hooks := transform.NewRegistry()
	require.NoError(t, hooks.RegisterBefore("skip-terminated", transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
		if m.Records[0].New["status"] == "terminated" {
			return transform.ErrSkip
		}
		return nil
	})))
	k, rcv := setup(t, webhook.Config{Observer: obs, Hooks: hooks, Retry: webhook.RetryPolicy{MaxAttempts: 2}})
	w := register(t, k, rcv, webhook.Webhook{URL: rcv.URL + "/hook?token=secret-token", Before: []string{"skip-terminated"}})
	ctx := t.Context()

	// Delivered at once: an attempt, then the outcome.
	id, err := k.Publish(ctx, update("E1", map[string]any{"a": 1}, map[string]any{"a": 2}))
	require.NoError(t, err)
	k.Drain(t)
	es := obs.take()
	require.Equal(t, []webhook.EventKind{webhook.EventAttempt, webhook.EventDelivered}, kinds(es))
	a := es[0]
	assert.Equal(t, w.ID, a.WebhookID)
	assert.Equal(t, id, a.MessageID)
	assert.Equal(t, 1, a.Attempt)
	assert.Equal(t, 1, a.Records)
	assert.Equal(t, http.StatusOK, a.StatusCode)
	assert.Equal(t, "POST", a.Method)
	assert.Equal(t, webhook.EventDelivered, a.Outcome)
	assert.Positive(t, a.Latency)
	assert.True(t, a.Time.Equal(webhooktest.Epoch), "an attempt's time is when it began")
	assert.NotContains(t, a.URL, "secret-token", "URLs are redacted")
	assert.NoError(t, a.Err)

	// A failure, a retry, then dead.
	rcv.Fail(2, http.StatusInternalServerError)
	_, err = k.Publish(ctx, update("E2", map[string]any{"a": 1}, map[string]any{"a": 2}))
	require.NoError(t, err)
	k.Settle(t, 5)
	es = obs.take()
	require.Equal(t, []webhook.EventKind{webhook.EventAttempt, webhook.EventRetry, webhook.EventAttempt, webhook.EventDead}, kinds(es))
	assert.Equal(t, webhook.EventRetry, es[0].Outcome)
	assert.Equal(t, http.StatusInternalServerError, es[0].StatusCode)
	require.Error(t, es[0].Err)
	assert.Contains(t, es[0].Err.Error(), "status 500")
	assert.True(t, es[1].Next.After(es[1].Time), "a retry tells when the next attempt is due")
	assert.Equal(t, webhook.EventDead, es[2].Outcome)
	assert.Equal(t, 2, es[3].Attempt)

	// Skipped on purpose by a before hook: no attempt.
	_, err = k.Publish(ctx, update("E3", map[string]any{"status": "active"}, map[string]any{"status": "terminated"}))
	require.NoError(t, err)
	k.Drain(t)
	es = obs.take()
	require.Equal(t, []webhook.EventKind{webhook.EventSkipped}, kinds(es))
	assert.Contains(t, es[0].Reason, "skip-terminated")

	// Disabled and enabled again, by the application and by a 410.
	_, err = k.SetDisabled(ctx, w.ID, true)
	require.NoError(t, err)
	_, err = k.SetDisabled(ctx, w.ID, true)
	require.NoError(t, err)
	_, err = k.SetDisabled(ctx, w.ID, false)
	require.NoError(t, err)
	es = obs.take()
	require.Equal(t, []webhook.EventKind{webhook.EventWebhookDisabled, webhook.EventWebhookEnabled}, kinds(es),
		"only changes are told")
	rcv.Fail(1, http.StatusGone)
	_, err = k.Publish(ctx, update("E4", map[string]any{"a": 1}, map[string]any{"a": 2}))
	require.NoError(t, err)
	k.Drain(t)
	es = obs.take()
	require.Equal(t, []webhook.EventKind{webhook.EventWebhookDisabled, webhook.EventAttempt, webhook.EventRetry}, kinds(es))
	assert.Contains(t, es[0].Reason, "410")
	assert.Equal(t, http.StatusGone, es[1].StatusCode)
}

func TestObserverIsToldConditionErrors(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	k, rcv := setup(t, webhook.Config{Observer: obs})
	w := register(t, k, rcv, webhook.Webhook{When: condition.Rule{Expr: `new.grade > old.grade + 1`}})
	id, err := k.Publish(t.Context(), webhook.Change{Table: "employee", Op: webhook.Insert, Key: "E1", Tenant: "acme",
		New: map[string]any{"grade": 3}})
	require.NoError(t, err, "a failing condition does not fail Publish")
	es := obs.take()
	require.Equal(t, []webhook.EventKind{webhook.EventConditionError}, kinds(es))
	assert.Equal(t, w.ID, es[0].WebhookID)
	assert.Equal(t, id, es[0].EventID)
	assert.Equal(t, "acme", es[0].Tenant)
	assert.Error(t, es[0].Err)
	assert.Zero(t, k.Drain(t), "the change did not match")
}

func TestObserverIsToldHeldAndCanceled(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	st := &ghostStore{Store: memory.New()}
	clock := webhooktest.NewClock(webhooktest.Epoch)
	rcv := webhooktest.NewReceiver(t, clock)
	withHook := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Clock: clock, Hooks: hooksWith(t, "enrich")})
	w := register(t, withHook, rcv, webhook.Webhook{Before: []string{"enrich"}})
	without := webhooktest.NewDispatcher(t, webhook.Config{Store: st, Clock: clock, Observer: obs})
	_, err := without.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	without.Drain(t)
	es := obs.take()
	require.Equal(t, []webhook.EventKind{webhook.EventHeld}, kinds(es))
	assert.Equal(t, w.ID, es[0].WebhookID)
	assert.Contains(t, es[0].Reason, "enrich")

	// A message claimed for a webhook that another process deleted
	// meanwhile is dropped.
	st.ghost("deleted-elsewhere")
	without.Drain(t)
	es = obs.take()
	require.Equal(t, []webhook.EventKind{webhook.EventCanceled}, kinds(es))
	assert.Equal(t, "deleted-elsewhere", es[0].WebhookID)
	assert.Equal(t, "ghost-message", es[0].MessageID)
}

// ghostStore hands out, once, a message of a webhook that does not exist,
// as a store shared with another process can after that process deleted
// the webhook between the claim and the attempt.
type ghostStore struct {
	store.Store
	mu      sync.Mutex
	pending string
}

func (g *ghostStore) ghost(webhookID string) {
	g.mu.Lock()
	g.pending = webhookID
	g.mu.Unlock()
}

func (g *ghostStore) Claim(ctx context.Context, c store.Claim) ([]store.Message, error) {
	ms, err := g.Store.Claim(ctx, c)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending != "" && err == nil {
		ms = append(ms, store.Message{ID: "ghost-message", WebhookID: g.pending, Lease: "ghost-lease", Attempt: 1,
			Deliveries: []store.Delivery{{ID: "ghost", WebhookID: g.pending}}, Events: []store.Event{{ID: "ghost-message"}}})
		g.pending = ""
	}
	return ms, err
}

func (g *ghostStore) Ack(ctx context.Context, rs []store.Result) error {
	var real []store.Result
	for _, r := range rs {
		if r.Lease != "ghost-lease" {
			real = append(real, r)
		} else if r.Outcome != store.OutcomeCanceled {
			return fmt.Errorf("ghost message acked as %v, want canceled", r.Outcome)
		}
	}
	return g.Store.Ack(ctx, real)
}

// blockingObserver blocks on every event until released.
type blockingObserver struct {
	release chan struct{}
	mu      sync.Mutex
	got     int
	entered chan struct{} // receives once, when the first event arrives
	once    sync.Once
}

func (b *blockingObserver) Observe(webhook.Event) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	b.mu.Lock()
	b.got++
	b.mu.Unlock()
}

func TestSlowObserverNeverBlocksWorkers(t *testing.T) {
	t.Parallel()
	obs := &blockingObserver{release: make(chan struct{}), entered: make(chan struct{})}
	k, rcv := setup(t, webhook.Config{Observer: obs, ObserverQueue: 4})
	register(t, k, rcv, webhook.Webhook{})
	require.NoError(t, k.Start(t.Context()))
	const n = 20
	for i := range n {
		_, err := k.Publish(t.Context(), update(fmt.Sprintf("E%d", i), nil, map[string]any{"i": i}))
		require.NoError(t, err)
	}
	// Every delivery completes while the observer is stuck on its first
	// event.
	rcv.WaitFor(t, n, 10*time.Second)
	<-obs.entered
	waitDelivered(t, k, n)
	st, err := k.Stats(t.Context())
	require.NoError(t, err)
	// 2 events per delivery: 1 taken by the observer, 4 queued, the rest
	// dropped.
	assert.Equal(t, uint64(2*n-1-4), st.ObserverDropped)

	close(obs.release)
	require.NoError(t, k.Shutdown(t.Context()))
	obs.mu.Lock()
	defer obs.mu.Unlock()
	assert.Equal(t, 2*n, obs.got+int(st.ObserverDropped), "Shutdown hands every queued event over before it returns")
}

// waitDelivered waits until n deliveries are recorded as delivered.
func waitDelivered(t *testing.T, k *webhooktest.Kit, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{Status: webhook.Delivered})
		require.NoError(t, err)
		if len(ds) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries recorded as delivered, want %d", len(ds), n)
		}
		time.Sleep(5 * time.Millisecond) // polling the store's state, bounded above
	}
}

func TestObserverQueueKeepsOrderAndIsDrainedOnShutdown(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	k, rcv := setup(t, webhook.Config{Observer: obs, Workers: 1})
	register(t, k, rcv, webhook.Webhook{})
	require.NoError(t, k.Start(t.Context()))
	const n = 10
	for i := range n {
		_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"i": i}))
		require.NoError(t, err)
	}
	rcv.WaitFor(t, n, 10*time.Second)
	waitDelivered(t, k, n)
	require.NoError(t, k.Shutdown(t.Context()))
	es := obs.take()
	require.Len(t, es, 2*n, "nothing is lost when the queue has room")
	for i := 0; i < len(es); i += 2 {
		assert.Equal(t, webhook.EventAttempt, es[i].Kind)
		assert.Equal(t, webhook.EventDelivered, es[i+1].Kind)
		assert.Equal(t, es[i].MessageID, es[i+1].MessageID, "an attempt's outcome follows it")
	}
}

func TestPanickingObserverFailsNothing(t *testing.T) {
	t.Parallel()
	for _, started := range []bool{false, true} {
		t.Run(fmt.Sprintf("started=%v", started), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			calls := 0
			obs := webhook.ObserverFunc(func(webhook.Event) {
				mu.Lock()
				calls++
				mu.Unlock()
				panic(errors.New("observer bug"))
			})
			k, rcv := setup(t, webhook.Config{Observer: obs})
			register(t, k, rcv, webhook.Webhook{})
			_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
			require.NoError(t, err)
			if started {
				require.NoError(t, k.Start(t.Context()))
				rcv.WaitFor(t, 1, 10*time.Second)
				waitDelivered(t, k, 1)
				require.NoError(t, k.Shutdown(t.Context()))
			} else {
				k.Drain(t)
			}
			waitDelivered(t, k, 1)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, 2, calls, "the observer is called on, after it panicked")
		})
	}
}
