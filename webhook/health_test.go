package webhook_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// of returns the events of one kind so far (recorder: observer_test.go).
func (r *recorder) of(kind webhook.EventKind) []webhook.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []webhook.Event
	for _, e := range r.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// failing makes rcv answer status while *status is not 0, else 200.
func failing(rcv *webhooktest.Receiver) *atomic.Int32 {
	var status atomic.Int32
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer {
		if s := status.Load(); s != 0 {
			return webhooktest.Answer{Status: int(s)}
		}
		return webhooktest.Answer{Status: http.StatusOK}
	})
	return &status
}

func publishKeys(t *testing.T, k *webhooktest.Kit, n int) {
	t.Helper()
	for i := range n {
		_, err := k.Publish(t.Context(), update(fmt.Sprintf("E%d", i), nil, map[string]any{"seq": i}))
		require.NoError(t, err)
	}
}

func pendingByAttempts(t *testing.T, k *webhooktest.Kit) map[int]int {
	t.Helper()
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{Status: webhook.Pending})
	require.NoError(t, err)
	out := map[int]int{}
	for _, d := range ds {
		out[d.Attempts]++
	}
	return out
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	// One worker: attempts run one after another, so the count of
	// requests before the breaker opens is exact.
	k, rcv := setup(t, webhook.Config{Workers: 1, Observer: obs, Retry: webhook.RetryPolicy{MaxAttempts: 10}})
	w := register(t, k, rcv, webhook.Webhook{})
	status := failing(rcv)
	status.Store(http.StatusInternalServerError)
	publishKeys(t, k, 12)

	k.Drain(t)
	require.Len(t, rcv.Requests(), 10, "the breaker opens at the 10th failure within its window")
	opened := obs.of(webhook.EventBreakerOpened)
	require.Len(t, opened, 1)
	assert.Equal(t, w.ID, opened[0].WebhookID)
	assert.Equal(t, "10 of 10 requests failed within 1m0s", opened[0].Reason)
	probeAt := webhooktest.Epoch.Add(30 * time.Second)
	assert.Equal(t, probeAt, opened[0].Next)
	assert.Equal(t, map[int]int{1: 10, 0: 2}, pendingByAttempts(t, k), "the last two wait without spending an attempt")
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{Status: webhook.Pending})
	require.NoError(t, err)
	assert.Contains(t, ds[11].LastError, "circuit breaker open")

	h, err := k.Health(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.BreakerOpen, h.Breaker)
	assert.Equal(t, probeAt, h.NextProbe)

	// The retries come due; the breaker holds them without a request.
	k.Clock.Advance(time.Second)
	assert.Equal(t, 10, k.Drain(t))
	assert.Len(t, rcv.Requests(), 10)
	assert.Equal(t, map[int]int{1: 10, 0: 2}, pendingByAttempts(t, k))

	// At the probe time one message goes out; it fails, and the breaker
	// opens again for twice as long.
	k.Clock.Set(probeAt)
	k.Drain(t)
	require.Len(t, rcv.Requests(), 11, "a single probe")
	opened = obs.of(webhook.EventBreakerOpened)
	require.Len(t, opened, 2)
	assert.Equal(t, "its probe failed; next probe in 1m0s", opened[1].Reason)
	assert.Equal(t, probeAt.Add(time.Minute), opened[1].Next)
	assert.Empty(t, obs.of(webhook.EventBreakerClosed))

	// The receiver recovers: the next probe succeeds, the breaker closes
	// and everything flows.
	status.Store(0)
	k.Clock.Set(probeAt.Add(time.Minute))
	k.Drain(t)
	closed := obs.of(webhook.EventBreakerClosed)
	require.Len(t, closed, 1)
	assert.Equal(t, "its probe succeeded", closed[0].Reason)
	k.Settle(t, 10)
	ds, err = k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	spent := 0
	for _, d := range ds {
		assert.Equal(t, webhook.Delivered, d.Status)
		spent += d.Attempts
	}
	assert.Equal(t, len(rcv.Requests()), spent, "only requests made spent attempts")
	assert.Equal(t, 12+11, spent, "12 deliveries, 10 failed first attempts and the failed probe")
	h, err = k.Health(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.BreakerClosed, h.Breaker)
}

func TestBreakerNeedsSustainedFailure(t *testing.T) {
	t.Parallel()
	t.Run("a minority of failures", func(t *testing.T) {
		t.Parallel()
		obs := &recorder{}
		k, rcv := setup(t, webhook.Config{Workers: 1, Observer: obs})
		w := register(t, k, rcv, webhook.Webhook{})
		var n atomic.Int32
		rcv.Respond(func(webhooktest.Request) webhooktest.Answer {
			if n.Add(1)%3 == 0 {
				return webhooktest.Answer{Status: http.StatusBadGateway}
			}
			return webhooktest.Answer{}
		})
		publishKeys(t, k, 36)
		k.Drain(t)
		assert.Len(t, rcv.Requests(), 36)
		assert.Empty(t, obs.of(webhook.EventBreakerOpened), "12 failures out of 36 stay below the ratio")
		h, err := k.Health(t.Context(), w.ID)
		require.NoError(t, err)
		assert.Equal(t, webhook.BreakerClosed, h.Breaker)
		assert.Equal(t, 36, h.Requests)
		assert.Equal(t, 12, h.Failures)
	})
	t.Run("failures spread beyond the window", func(t *testing.T) {
		t.Parallel()
		obs := &recorder{}
		k, rcv := setup(t, webhook.Config{Workers: 1, Observer: obs})
		register(t, k, rcv, webhook.Webhook{})
		failing(rcv).Store(http.StatusInternalServerError)
		publishKeys(t, k, 9)
		k.Drain(t)
		k.Clock.Advance(61 * time.Second)
		// The nine retries and one new delivery fail: ten failures, but
		// never ten within one minute.
		_, err := k.Publish(t.Context(), update("X", nil, map[string]any{"seq": 1}))
		require.NoError(t, err)
		k.Drain(t)
		assert.Len(t, rcv.Requests(), 19)
		assert.Len(t, obs.of(webhook.EventBreakerOpened), 1, "the window holds ten failures only after the second round")
	})
}

func TestBreakerIsPerWebhook(t *testing.T) {
	t.Parallel()
	k, bad := setup(t, webhook.Config{Workers: 1, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	good := webhooktest.NewReceiver(t, k.Clock)
	register(t, k, bad, webhook.Webhook{})
	register(t, k, good, webhook.Webhook{Name: "badge system"})
	failing(bad).Store(http.StatusServiceUnavailable)
	publishKeys(t, k, 20)
	k.Drain(t)
	assert.Len(t, bad.Requests(), 10, "the failing webhook's breaker opened")
	assert.Len(t, good.Delivered(), 20, "the other webhook got every delivery")
}

func TestReplayBypassesOpenBreaker(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	k, rcv := setup(t, webhook.Config{Workers: 1, Observer: obs, Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	w := register(t, k, rcv, webhook.Webhook{})
	status := failing(rcv)
	status.Store(http.StatusInternalServerError)
	publishKeys(t, k, 11)
	k.Drain(t)
	require.Len(t, obs.of(webhook.EventBreakerOpened), 1)
	require.Len(t, rcv.Requests(), 10)
	dead, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{Status: webhook.Dead})
	require.NoError(t, err)
	require.Len(t, dead, 10)

	status.Store(0)
	require.NoError(t, k.Replay(t.Context(), dead[0].ID))
	k.Drain(t)
	reqs := rcv.Requests()
	require.Equal(t, 11, len(reqs), "the replay went out at once, and only the replay")
	assert.Equal(t, dead[0].EventID, reqs[10].ID())
	closed := obs.of(webhook.EventBreakerClosed)
	require.Len(t, closed, 1, "its success closed the breaker")
	assert.Equal(t, "a request succeeded", closed[0].Reason)
	h, err := k.Health(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.BreakerClosed, h.Breaker)
	assert.Len(t, rcv.Delivered(), 1)
	// What the breaker postponed stays due at the probe time it was given.
	k.Clock.Set(webhooktest.Epoch.Add(30 * time.Second))
	k.Drain(t)
	assert.Len(t, rcv.Delivered(), 2, "the delivery the breaker held goes out, without a probe")
}

func TestAutoDisableAfterSustainedFailureThenEnable(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	k, rcv := setup(t, webhook.Config{Observer: obs, DisableAfter: 2 * time.Hour,
		Retry: webhook.RetryPolicy{MaxAttempts: 100, InitialInterval: time.Minute, MaxInterval: 10 * time.Minute}})
	w := register(t, k, rcv, webhook.Webhook{})
	status := failing(rcv)
	status.Store(http.StatusInternalServerError)
	for i := 1; i <= 3; i++ {
		_, err := k.Publish(t.Context(), update("E1", map[string]any{"seq": i - 1}, map[string]any{"seq": i}))
		require.NoError(t, err)
	}

	// Fail until the webhook is disabled; the first failure was at Epoch.
	for range 100 {
		k.Drain(t)
		if len(obs.of(webhook.EventWebhookDisabled)) > 0 {
			break
		}
		ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{Status: webhook.Pending})
		require.NoError(t, err)
		k.Clock.Set(ds[0].NextAttempt)
	}
	disabled := obs.of(webhook.EventWebhookDisabled)
	require.Len(t, disabled, 1)
	assert.GreaterOrEqual(t, k.Clock.Now().Sub(webhooktest.Epoch), 2*time.Hour)
	assert.Less(t, k.Clock.Now().Sub(webhooktest.Epoch), 2*time.Hour+10*time.Minute, "disabled at the first failure past DisableAfter")
	assert.Contains(t, disabled[0].Reason, "every request failed for 2h")
	assert.Contains(t, disabled[0].Reason, "since 2026-03-02T09:00:00Z")
	got, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	assert.Equal(t, disabled[0].Reason, got.DisabledReason)
	assert.Equal(t, webhooktest.Epoch, got.FailingSince, "the run's start was stored once it lasted a minute")

	// Its queue waits: nothing is claimed, nothing new is queued.
	requests := len(rcv.Requests())
	k.Clock.Advance(time.Hour)
	assert.Zero(t, k.Drain(t))
	_, err = k.Publish(t.Context(), update("E2", nil, map[string]any{"seq": 1}))
	require.NoError(t, err)
	assert.Len(t, rcv.Requests(), requests)
	assert.Equal(t, map[int]int{0: 2, requests: 1}, pendingByAttempts(t, k))

	// Enabled, with the receiver back, the backlog flows in order.
	status.Store(0)
	got, err = k.Enable(t.Context(), w.ID)
	require.NoError(t, err)
	assert.False(t, got.Disabled)
	assert.Empty(t, got.DisabledReason)
	assert.True(t, got.FailingSince.IsZero())
	require.Len(t, obs.of(webhook.EventWebhookEnabled), 1)
	k.Settle(t, 20)
	var seqs []float64
	for _, r := range rcv.Delivered() {
		_, seq := keyOf(t, r)
		seqs = append(seqs, seq)
	}
	assert.Equal(t, []float64{1, 2, 3}, seqs)
}

func TestFailingSinceSurvivesRestart(t *testing.T) {
	t.Parallel()
	st := memory.New()
	clock := webhooktest.NewClock(webhooktest.Epoch)
	cfg := webhook.Config{Store: st, Clock: clock, DisableAfter: time.Hour,
		Retry: webhook.RetryPolicy{MaxAttempts: 100, InitialInterval: time.Minute, Multiplier: 1}}
	first := webhooktest.NewDispatcher(t, cfg)
	rcv := webhooktest.NewReceiver(t, clock)
	w := register(t, first, rcv, webhook.Webhook{})
	failing(rcv).Store(http.StatusInternalServerError)
	_, err := first.Publish(t.Context(), update("E1", nil, map[string]any{"seq": 1}))
	require.NoError(t, err)
	first.Drain(t)
	got, err := first.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, got.FailingSince.IsZero(), "a run shorter than a minute is not stored")
	clock.Advance(time.Minute)
	first.Drain(t)
	got, err = first.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, webhooktest.Epoch, got.FailingSince)

	// A process started later knows nothing of the run but what is
	// stored, and disables the webhook when the stored run is an hour old.
	obs := &recorder{}
	cfg.Observer = obs
	second := webhooktest.NewDispatcher(t, cfg)
	clock.Set(webhooktest.Epoch.Add(30 * time.Minute))
	second.Drain(t)
	assert.Empty(t, obs.of(webhook.EventWebhookDisabled))
	h, err := second.Health(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, webhooktest.Epoch, h.FailingSince)
	clock.Set(webhooktest.Epoch.Add(time.Hour))
	second.Drain(t)
	require.Len(t, obs.of(webhook.EventWebhookDisabled), 1)
}

func TestSuccessClearsFailingSince(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Retry: webhook.RetryPolicy{MaxAttempts: 100, InitialInterval: time.Minute, Multiplier: 1}})
	w := register(t, k, rcv, webhook.Webhook{})
	status := failing(rcv)
	status.Store(http.StatusInternalServerError)
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"seq": 1}))
	require.NoError(t, err)
	k.Drain(t)
	k.Clock.Advance(time.Minute)
	k.Drain(t)
	got, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	require.Equal(t, webhooktest.Epoch, got.FailingSince)
	v := got.Version

	// Update keeps the dispatcher's fields, whatever the caller sends.
	got.FailingSince = time.Time{}
	got.Description = "edited"
	got, err = k.Update(t.Context(), got)
	require.NoError(t, err)
	assert.Equal(t, webhooktest.Epoch, got.FailingSince)

	status.Store(0)
	k.Clock.Advance(time.Minute)
	k.Drain(t)
	got, err = k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, got.FailingSince.IsZero(), "a success ends the run")
	assert.Equal(t, "edited", got.Description, "the write touched FailingSince only")
	assert.Greater(t, got.Version, v)
}

func TestGoneDisablesWithReason(t *testing.T) {
	t.Parallel()
	obs := &recorder{}
	k, rcv := setup(t, webhook.Config{Observer: obs})
	w := register(t, k, rcv, webhook.Webhook{})
	rcv.Fail(1, http.StatusGone)
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"seq": 1}))
	require.NoError(t, err)
	k.Drain(t)
	got, err := k.Webhook(t.Context(), w.ID)
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	assert.Equal(t, "receiver answered 410 Gone", got.DisabledReason)
	ev := obs.of(webhook.EventWebhookDisabled)
	require.Len(t, ev, 1)
	assert.Equal(t, got.DisabledReason, ev[0].Reason)

	got, err = k.Disable(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, "receiver answered 410 Gone", got.DisabledReason, "disabling again keeps the first reason")
	assert.Len(t, obs.of(webhook.EventWebhookDisabled), 1)
	got, err = k.Enable(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Empty(t, got.DisabledReason)
	got, err = k.Disable(t.Context(), w.ID)
	require.NoError(t, err)
	assert.Equal(t, "disabled by the application", got.DisabledReason)
}

// stallAll makes rcv hold every answer until released and reports each
// request on the returned channel.
func stallAll(rcv *webhooktest.Receiver) <-chan struct{} {
	seen := make(chan struct{}, 1024)
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer {
		seen <- struct{}{}
		return webhooktest.Answer{Stall: true}
	})
	return seen
}

func receive(t *testing.T, seen <-chan struct{}, n int) {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for range n {
		select {
		case <-seen:
		case <-timeout.C:
			t.Fatalf("fewer than %d requests reached the receiver", n)
		}
	}
}

func TestConcurrencyCapHoldsNoWorkers(t *testing.T) {
	t.Parallel()
	// Four workers; the hanging webhook may use three of them. Its other
	// messages wait in memory without a worker, leaving the fourth for
	// the other webhook.
	k, hung := setup(t, webhook.Config{Workers: 4})
	fine := webhooktest.NewReceiver(t, k.Clock)
	w := register(t, k, hung, webhook.Webhook{MaxConcurrency: 3})
	register(t, k, fine, webhook.Webhook{Name: "badge system", Table: "badge"})
	seen := stallAll(hung)
	publishKeys(t, k, 12)
	require.NoError(t, k.Start(t.Context()))
	receive(t, seen, 3)
	require.Eventually(t, func() bool {
		h, err := k.Health(t.Context(), w.ID)
		require.NoError(t, err)
		return h.InFlight == 3 && h.Waiting == 9
	}, 10*time.Second, time.Millisecond, "three in flight, nine waiting")

	for i := range 5 {
		_, err := k.Publish(t.Context(), webhook.Change{Table: "badge", Op: webhook.Insert, Key: fmt.Sprint(i), New: map[string]any{"n": i}})
		require.NoError(t, err)
	}
	fine.WaitFor(t, 5, 10*time.Second)
	select {
	case <-seen:
		t.Fatal("a fourth request reached the hanging receiver")
	default:
	}
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
	require.NoError(t, err)
	for _, d := range ds {
		assert.Equal(t, webhooktest.Epoch, d.NextAttempt, "waiting wrote nothing to the store")
	}

	// The receiver answers again: each request that ends hands its slot
	// to a waiting message, and all go out; the clock never moved.
	hung.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{} })
	hung.Release()
	hung.WaitFor(t, 12, 10*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, k.Shutdown(ctx))
	ds, err = k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
	require.NoError(t, err)
	for _, d := range ds {
		assert.Equal(t, webhook.Delivered, d.Status)
		assert.Equal(t, 1, d.Attempts, "waiting spent no attempt")
	}
}

func TestShutdownReleasesWaitingMessages(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Workers: 4})
	w := register(t, k, rcv, webhook.Webhook{MaxConcurrency: 1})
	seen := stallAll(rcv)
	publishKeys(t, k, 3)
	require.NoError(t, k.Start(t.Context()))
	receive(t, seen, 1)
	h, err := k.Health(t.Context(), w.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		h, err = k.Health(t.Context(), w.ID)
		require.NoError(t, err)
		return h.Waiting == 2
	}, 10*time.Second, time.Millisecond)
	// One in flight, two waiting in memory: all three are released.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, k.Shutdown(ctx), context.DeadlineExceeded)
	assert.Equal(t, map[int]int{0: 3}, pendingByAttempts(t, k), "nothing spent an attempt")
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{} })
	assert.Equal(t, 3, k.Drain(t), "released at once")
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	for _, d := range ds {
		assert.Equal(t, webhook.Delivered, d.Status)
		assert.Equal(t, 1, d.Attempts)
	}
}

func TestProcessDueHonoursConcurrencyCap(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{Workers: 8})
	register(t, k, rcv, webhook.Webhook{MaxConcurrency: 2})
	var cur, peak atomic.Int32
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		cur.Add(-1)
		return webhooktest.Answer{}
	})
	publishKeys(t, k, 40)
	assert.Equal(t, 40, k.Drain(t))
	assert.Len(t, rcv.Delivered(), 40, "Drain waits for slots instead of postponing")
	assert.LessOrEqual(t, peak.Load(), int32(2))
}

func TestRateLimitSpacesRequests(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{RateLimit: 1})
	publishKeys(t, k, 5)
	assert.Equal(t, 5, k.Drain(t))
	assert.Len(t, rcv.Requests(), 1, "one request now; the others wait for their turn")
	k.Settle(t, 10)
	reqs := rcv.Requests()
	require.Len(t, reqs, 5)
	for i, r := range reqs {
		assert.Equal(t, fmt.Sprint(webhooktest.Epoch.Unix()+int64(i)), r.Header.Get("Webhook-Timestamp"), "one a second")
	}
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	for _, d := range ds {
		assert.Equal(t, 1, d.Attempts, "waiting for the rate spent no attempt")
	}
}

func TestLimitsAreValidated(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	for name, w := range map[string]webhook.Webhook{
		"negative concurrency": {MaxConcurrency: -1},
		"negative rate":        {RateLimit: -1},
		"rate not a number":    {RateLimit: math.NaN()},
		"infinite rate":        {RateLimit: math.Inf(1)},
	} {
		w.Name, w.Table, w.Ops, w.URL = "x", "employee", []webhook.Op{webhook.Insert}, rcv.URL
		_, err := k.Register(t.Context(), w)
		assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, name)
	}
	for name, cfg := range map[string]webhook.Config{
		"MaxConcurrency":       {MaxConcurrency: -1},
		"Breaker.MinFailures":  {Breaker: webhook.BreakerPolicy{MinFailures: -1}},
		"Breaker.FailureRatio": {Breaker: webhook.BreakerPolicy{FailureRatio: 1.5}},
		"Breaker.Window":       {Breaker: webhook.BreakerPolicy{Window: -time.Second}},
		"Breaker.MaxCooldown":  {Breaker: webhook.BreakerPolicy{Cooldown: time.Hour, MaxCooldown: time.Minute}},
	} {
		cfg.Store = memory.New()
		_, err := webhook.New(cfg)
		assert.ErrorContains(t, err, name)
	}
}

func TestRegisterIgnoresHealthFields(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{FailingSince: webhooktest.Epoch, DisabledReason: "made up"})
	assert.True(t, w.FailingSince.IsZero())
	assert.Empty(t, w.DisabledReason)
}

// TestFailingReceiverDoesNotSlowOthers compares a healthy webhook's
// delivery rate alone with its rate beside a webhook whose receiver is
// down with 1,000 deliveries queued, on the real clock. The two set-ups
// (each its own store, dispatcher and receivers) run at the same time and
// are compared over the same stretch of time, after a warm-up, so the
// ratio does not depend on how busy the machine is; whatever CPU the dead
// receiver's backlog costs still shows in it.
func TestFailingReceiverDoesNotSlowOthers(t *testing.T) {
	n, backlog := 6000, 1000
	if testing.Short() {
		n = 1500
	}
	for _, tc := range []struct {
		name string
		dead http.HandlerFunc
	}{
		{"never answers", nil},
		{"answers 500 slowly", func(w http.ResponseWriter, r *http.Request) {
			t := time.NewTimer(200 * time.Millisecond)
			defer t.Stop()
			select {
			case <-r.Context().Done():
			case <-t.C:
			}
			w.WriteHeader(http.StatusInternalServerError)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The machine's load shifts the two set-ups' share of the CPU:
			// up to three measurements, any one of which must show the
			// ratio. A webhook that does take the others' workers fails
			// every one.
			var ratios []float64
			for range 3 {
				ratio := compareRates(t, n, backlog, tc.dead)
				ratios = append(ratios, ratio)
				if ratio >= 0.8 {
					return
				}
			}
			t.Errorf("healthy webhook's rate beside the dead one, as a share of its rate alone: %.2f, want 0.8 or more", ratios)
		})
	}
}

// compareRates runs the healthy webhook alone and beside a dead one with
// backlog changes queued, at the same time, and returns the ratio of its
// deliveries beside to alone over the same stretch, after a warm-up.
func compareRates(t *testing.T, n, backlog int, dead http.HandlerFunc) float64 {
	t.Helper()
	alone := newRig(t, n, 0, dead)
	beside := newRig(t, n, backlog, dead)
	defer alone.stop(t)
	defer beside.stop(t)
	require.NoError(t, alone.d.Start(t.Context()))
	require.NoError(t, beside.d.Start(t.Context()))
	deadline := time.Now().Add(30 * time.Second)
	waitUntil := func(cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("healthy deliveries: %d alone, %d beside, of %d within 30s", alone.got.Load(), beside.got.Load(), n)
			}
			select {
			case <-alone.tick:
			case <-beside.tick:
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	warm := int64(n / 10)
	waitUntil(func() bool { return alone.got.Load() >= warm && beside.got.Load() >= warm })
	a0, b0, t0 := alone.got.Load(), beside.got.Load(), time.Now()
	waitUntil(func() bool { return alone.got.Load() >= int64(n) || beside.got.Load() >= int64(n) })
	a1, b1, t1 := alone.got.Load(), beside.got.Load(), time.Now()
	require.Greater(t, a1, a0, "no delivery alone within the window")
	secs := t1.Sub(t0).Seconds()
	ratio := float64(b1-b0) / float64(a1-a0)
	t.Logf("over %.2fs: healthy webhook %.0f deliveries/s alone, %.0f/s beside a dead receiver with %d queued: ratio %.2f",
		secs, float64(a1-a0)/secs, float64(b1-b0)/secs, backlog, ratio)
	return ratio
}

// rig is a dispatcher with a healthy webhook that has n changes to send
// and, with backlog > 0, a webhook whose receiver is down (dead, or
// never answering when nil) with backlog changes queued first.
type rig struct {
	d    *webhook.Dispatcher
	got  atomic.Int64
	tick chan struct{}
	free func()
}

func newRig(t *testing.T, n, backlog int, dead http.HandlerFunc) *rig {
	t.Helper()
	ctx := t.Context()
	r := &rig{tick: make(chan struct{}, 1)}
	release := make(chan struct{})
	var once sync.Once
	r.free = func() { once.Do(func() { close(release) }) }
	t.Cleanup(r.free)
	if dead == nil {
		dead = func(w http.ResponseWriter, req *http.Request) {
			select {
			case <-req.Context().Done():
			case <-release:
			}
		}
	}
	deadSrv := httptestServer(t, dead)
	okSrv := httptestServer(t, func(w http.ResponseWriter, req *http.Request) {
		if r.got.Add(1)%64 == 0 {
			select {
			case r.tick <- struct{}{}:
			default:
			}
		}
	})
	d, err := webhook.New(webhook.Config{Store: memory.New(), AllowPrivateNetworks: true, Workers: 8,
		AttemptTimeout: 30 * time.Second, Retry: webhook.RetryPolicy{InitialInterval: 10 * time.Millisecond}})
	require.NoError(t, err)
	r.d = d
	for _, w := range []webhook.Webhook{
		{Name: "provisioning", Table: "employee", Ops: []webhook.Op{webhook.Insert}, URL: deadSrv.URL},
		{Name: "payroll", Table: "attendance", Ops: []webhook.Op{webhook.Insert}, URL: okSrv.URL},
	} {
		_, err := d.Register(ctx, w)
		require.NoError(t, err)
	}
	for i := range backlog {
		_, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Insert, Key: fmt.Sprint(i), New: map[string]any{"i": i}})
		require.NoError(t, err)
	}
	for i := range n {
		_, err := d.Publish(ctx, webhook.Change{Table: "attendance", Op: webhook.Insert, Key: fmt.Sprint(i), New: map[string]any{"i": i}})
		require.NoError(t, err)
	}
	return r
}

func (r *rig) stop(t *testing.T) {
	t.Helper()
	r.free()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.d.Shutdown(ctx))
}

func httptestServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// A receiver that fails every request: after ten failures within a
// minute the webhook's breaker opens, and its deliveries wait for the
// probe instead of hammering it.
func ExampleDispatcher_Health() {
	ctx := context.Background()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()

	d, err := webhook.New(webhook.Config{
		Store:                memory.New(),
		AllowPrivateNetworks: true,
		Observer: webhook.ObserverFunc(func(e webhook.Event) {
			if e.Kind == webhook.EventBreakerOpened {
				fmt.Println("breaker opened:", e.Reason)
			}
		}),
	})
	if err != nil {
		panic(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "IT provisioning", Table: "employee",
		Ops: []webhook.Op{webhook.Insert}, URL: down.URL})
	if err != nil {
		panic(err)
	}
	for i := range 10 {
		if _, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Insert,
			Key: fmt.Sprint("E-", i), New: map[string]any{"name": "new hire"}}); err != nil {
			panic(err)
		}
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		panic(err)
	}
	h, err := d.Health(ctx, w.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("breaker:", h.Breaker, "next probe in", h.NextProbe.Sub(h.OpenedAt))
	// Output:
	// breaker opened: 10 of 10 requests failed within 1m0s
	// breaker: open next probe in 30s
}

// TestHealthOnEveryStore runs what endpoint health keeps in the store
// (postponements that spend no attempt, the run of failures written into
// the definition with a conditional save and read by another process,
// disabling and enabling) on every store herald ships.
func TestHealthOnEveryStore(t *testing.T) {
	t.Parallel()
	for name, newStore := range map[string]func(t *testing.T) store.Store{
		"memory":   func(*testing.T) store.Store { return memory.New() },
		"postgres": func(t *testing.T) store.Store { return postgrestest.NewStore(t, postgrestest.Pool(t, 4)) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clock := webhooktest.NewClock(webhooktest.Epoch)
			obs := &recorder{}
			cfg := webhook.Config{Store: newStore(t), Clock: clock, Workers: 1, Observer: obs, DisableAfter: time.Hour,
				Retry: webhook.RetryPolicy{MaxAttempts: 100, InitialInterval: time.Minute, Multiplier: 1}}
			first := webhooktest.NewDispatcher(t, cfg)
			rcv := webhooktest.NewReceiver(t, clock)
			w := register(t, first, rcv, webhook.Webhook{})
			status := failing(rcv)
			status.Store(http.StatusServiceUnavailable)
			publishKeys(t, first, 12)

			first.Drain(t)
			require.Len(t, rcv.Requests(), 10, "the breaker opened")
			assert.Equal(t, map[int]int{1: 10, 0: 2}, pendingByAttempts(t, first))
			clock.Set(webhooktest.Epoch.Add(30 * time.Second))
			first.Drain(t)
			clock.Set(webhooktest.Epoch.Add(90 * time.Second))
			first.Drain(t)
			require.Len(t, rcv.Requests(), 12, "one probe each time")
			got, err := first.Webhook(t.Context(), w.ID)
			require.NoError(t, err)
			assert.Equal(t, webhooktest.Epoch, got.FailingSince, "the run is stored once a minute old")

			// Another process, with a breaker of its own, reads the run.
			second := webhooktest.NewDispatcher(t, cfg)
			clock.Set(webhooktest.Epoch.Add(time.Hour))
			second.Drain(t)
			require.Len(t, obs.of(webhook.EventWebhookDisabled), 1)
			got, err = second.Webhook(t.Context(), w.ID)
			require.NoError(t, err)
			assert.True(t, got.Disabled)
			assert.Contains(t, got.DisabledReason, "every request failed for 1h0m0s")

			status.Store(0)
			_, err = second.Enable(t.Context(), w.ID)
			require.NoError(t, err)
			second.Settle(t, 20)
			ds, err := second.Deliveries(t.Context(), webhook.DeliveryQuery{})
			require.NoError(t, err)
			require.Len(t, ds, 12)
			for _, d := range ds {
				assert.Equal(t, webhook.Delivered, d.Status)
			}
		})
	}
}
