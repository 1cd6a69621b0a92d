package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// results collects what after hooks were told.
type results struct {
	mu  sync.Mutex
	got []transform.Result
}

func (rs *results) hook() transform.After {
	return transform.AfterFunc(func(_ context.Context, r *transform.Result) error {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		rs.got = append(rs.got, *r.Clone())
		return nil
	})
}

func (rs *results) all() []transform.Result {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]transform.Result(nil), rs.got...)
}

// hookSetup returns a kit whose registry holds the given before hooks
// and a recording after hook named "record".
func hookSetup(t *testing.T, cfg webhook.Config, before map[string]transform.Before) (*webhooktest.Kit, *webhooktest.Receiver, *results) {
	t.Helper()
	reg := transform.NewRegistry()
	for name, h := range before {
		require.NoError(t, reg.RegisterBefore(name, h))
	}
	rs := &results{}
	require.NoError(t, reg.RegisterAfter("record", rs.hook()))
	cfg.Hooks = reg
	k, rcv := setup(t, cfg)
	return k, rcv, rs
}

func onlyDelivery(t *testing.T, k *webhooktest.Kit) webhook.Delivery {
	t.Helper()
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	return ds[0]
}

func TestBeforeHookChangesRecordsAndSignatureCoversThem(t *testing.T) {
	t.Parallel()
	k, rcv, rs := hookSetup(t, webhook.Config{}, map[string]transform.Before{
		"present-to-p": transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
			for i := range m.Records {
				if m.Records[i].New["status"] == "Present" {
					m.Records[i].New["status"] = "P"
				}
			}
			return m.SetHeader("X-Source", "instance-b")
		}),
		"second": transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
			m.Records[0].New["seen_by_second"] = m.Records[0].New["status"]
			return nil
		}),
	})
	w := register(t, k, rcv, webhook.Webhook{Table: "attendance", Before: []string{"present-to-p", "second"}, After: []string{"record"},
		Headers: map[string]string{"Authorization": "Bearer a-token"}})
	id, err := k.Publish(t.Context(), webhook.Change{Table: "attendance", Op: webhook.Insert, Key: "E1/2026-03-02",
		New: map[string]any{"employee_id": "E1", "status": "Present"}})
	require.NoError(t, err)
	require.Equal(t, 1, k.Drain(t))

	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	require.NoError(t, reqs[0].VerifyErr, "the signature covers the bytes the hooks produced")
	e, d := decode(t, reqs[0].Body)
	assert.Equal(t, id, e.ID)
	assert.Equal(t, "P", d.New["status"])
	assert.Equal(t, "P", d.New["seen_by_second"], "hooks run in order, each on what the last one left")
	assert.Equal(t, "instance-b", reqs[0].Header.Get("X-Source"))
	assert.Equal(t, "Bearer a-token", reqs[0].Header.Get("Authorization"))

	got := rs.all()
	require.Len(t, got, 1)
	assert.Equal(t, w.ID, got[0].Message.WebhookID)
	assert.Equal(t, w.Name, got[0].Message.WebhookName)
	assert.Equal(t, id, got[0].Message.ID)
	assert.Equal(t, reqs[0].Body, got[0].RequestBody, "after hooks see the bytes sent")
	assert.Equal(t, transform.Delivered, got[0].Outcome)
	as, err := k.Attempts(t.Context(), onlyDelivery(t, k).ID)
	require.NoError(t, err)
	assert.Equal(t, "xxxxx", as[0].RequestHeaders["X-Source"], "hook headers are masked in the log like the webhook's own")
}

func TestBeforeHookSkip(t *testing.T) {
	t.Parallel()
	k, rcv, rs := hookSetup(t, webhook.Config{}, map[string]transform.Before{
		"weekends-only": transform.BeforeFunc(func(context.Context, *transform.Message) error {
			return transform.Permanent(transform.ErrSkip) // even wrapped, a skip is a skip
		}),
	})
	register(t, k, rcv, webhook.Webhook{Before: []string{"weekends-only"}, After: []string{"record"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	k.Settle(t, 5)

	assert.Empty(t, rcv.Requests(), "nothing is sent")
	d := onlyDelivery(t, k)
	assert.Equal(t, webhook.Skipped, d.Status)
	assert.Equal(t, 0, d.Attempts, "a skip spends no attempt")
	assert.Contains(t, d.LastError, "skipped by before hook weekends-only")
	got := rs.all()
	require.Len(t, got, 1)
	assert.Equal(t, transform.Skipped, got[0].Outcome)
	assert.True(t, got[0].Final)
	assert.NoError(t, got[0].Err)
	assert.Nil(t, got[0].RequestBody)
}

func TestBeforeHookErrorRetries(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	k, rcv, rs := hookSetup(t, webhook.Config{}, map[string]transform.Before{
		"flaky-directory": transform.BeforeFunc(func(context.Context, *transform.Message) error {
			if calls.Add(1) == 1 {
				return errors.New("directory unavailable")
			}
			return nil
		}),
	})
	register(t, k, rcv, webhook.Webhook{Before: []string{"flaky-directory"}, After: []string{"record"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	require.Equal(t, 1, k.Drain(t))
	d := onlyDelivery(t, k)
	assert.Equal(t, webhook.Pending, d.Status)
	assert.Equal(t, 1, d.Attempts, "a failed hook spends the attempt")
	assert.Equal(t, "before hook flaky-directory: directory unavailable", d.LastError)
	assert.Empty(t, rcv.Requests())

	k.Settle(t, 5)
	assert.Len(t, rcv.Delivered(), 1)
	d = onlyDelivery(t, k)
	assert.Equal(t, webhook.Delivered, d.Status)
	assert.Equal(t, 2, d.Attempts)
	got := rs.all()
	require.Len(t, got, 2)
	assert.Equal(t, transform.Retrying, got[0].Outcome)
	assert.False(t, got[0].Final)
	assert.EqualError(t, got[0].Err, "directory unavailable")
	assert.Equal(t, 1, got[0].Attempt)
	assert.Equal(t, transform.Delivered, got[1].Outcome)
	assert.Equal(t, 2, got[1].Attempt)
}

func TestBeforeHookPermanentFailure(t *testing.T) {
	t.Parallel()
	k, rcv, rs := hookSetup(t, webhook.Config{}, map[string]transform.Before{
		"needs-employee": transform.BeforeFunc(func(context.Context, *transform.Message) error {
			return transform.Permanent(errors.New("employee E1 no longer exists"))
		}),
	})
	register(t, k, rcv, webhook.Webhook{Before: []string{"needs-employee"}, After: []string{"record"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	k.Settle(t, 5)
	d := onlyDelivery(t, k)
	assert.Equal(t, webhook.Dead, d.Status)
	assert.Equal(t, 1, d.Attempts, "no retry for a permanent failure")
	assert.Contains(t, d.LastError, "employee E1 no longer exists")
	assert.Empty(t, rcv.Requests())
	got := rs.all()
	require.Len(t, got, 1)
	assert.Equal(t, transform.Dead, got[0].Outcome)
	assert.True(t, got[0].Final)
}

func TestBeforeHookPanicFailsOnlyItsAttempt(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	k, rcv, _ := hookSetup(t, webhook.Config{}, map[string]transform.Before{
		"buggy": transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
			if calls.Add(1) == 1 {
				var missing map[string]any
				missing["boom"] = m.Records[0].Key // assignment to a nil map
			}
			return nil
		}),
		"exits": transform.BeforeFunc(func(context.Context, *transform.Message) error {
			runtime.Goexit()
			return nil
		}),
	})
	register(t, k, rcv, webhook.Webhook{Before: []string{"buggy"}})
	goexit := register(t, k, rcv, webhook.Webhook{Name: "goexit", Table: "leave", Before: []string{"exits"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	_, err = k.Publish(t.Context(), webhook.Change{Table: "leave", Op: webhook.Insert, Key: "L1", New: map[string]any{"a": 1}})
	require.NoError(t, err)
	require.Equal(t, 2, k.Drain(t), "the process and its workers live on")

	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 2)
	for _, d := range ds {
		assert.Equal(t, webhook.Pending, d.Status, "a panic fails its attempt, for a retry")
		if d.WebhookID == goexit.ID {
			assert.Contains(t, d.LastError, "before hook exits: ended its goroutine without returning")
			continue
		}
		assert.Contains(t, d.LastError, "before hook buggy: panicked: assignment to entry in nil map")
		assert.Contains(t, d.LastError, "hooks_test.go", "the error carries the hook's stack")
	}
	k.Clock.Advance(time.Second)
	k.Drain(t)
	assert.Len(t, rcv.Delivered(), 1, "the next attempt goes through")
}

func TestBeforeHookHonouringItsDeadline(t *testing.T) {
	t.Parallel()
	k, rcv, rs := hookSetup(t, webhook.Config{HookTimeout: 20 * time.Millisecond}, map[string]transform.Before{
		"slow-lookup": transform.BeforeFunc(func(ctx context.Context, _ *transform.Message) error {
			<-ctx.Done() // a lookup that waits on its context
			return ctx.Err()
		}),
	})
	register(t, k, rcv, webhook.Webhook{Before: []string{"slow-lookup"}, After: []string{"record"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	require.Equal(t, 1, k.Drain(t))
	d := onlyDelivery(t, k)
	assert.Equal(t, webhook.Pending, d.Status, "a timeout fails the attempt for a retry")
	assert.Equal(t, 1, d.Attempts)
	assert.Contains(t, d.LastError, "before hook slow-lookup:")
	require.Len(t, rs.all(), 1)
	assert.ErrorIs(t, rs.all()[0].Err, context.DeadlineExceeded)
	assert.Empty(t, rcv.Requests())
}

func TestBeforeHookIgnoringItsContextIsLeftBehind(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	returned := make(chan struct{})
	var observed []webhook.Event
	var mu sync.Mutex
	k, rcv, rs := hookSetup(t, webhook.Config{
		HookTimeout: 20 * time.Millisecond,
		Observer: webhook.ObserverFunc(func(e webhook.Event) {
			mu.Lock()
			observed = append(observed, e)
			mu.Unlock()
		}),
	}, map[string]transform.Before{
		"stuck": transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
			defer close(returned)
			<-release // ignores its context
			m.Records[0].New["late"] = true
			return nil
		}),
	})
	t.Cleanup(func() {
		close(release)
		<-returned
	})
	register(t, k, rcv, webhook.Webhook{Before: []string{"stuck"}, After: []string{"record"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)

	require.Equal(t, 1, k.Drain(t), "the attempt ends although the hook does not")
	d := onlyDelivery(t, k)
	assert.Equal(t, webhook.Pending, d.Status)
	assert.Contains(t, d.LastError, "before hook stuck: did not return within HookTimeout (20ms); it was left running")
	got := rs.all()
	require.Len(t, got, 1)
	assert.ErrorIs(t, got[0].Err, context.DeadlineExceeded)
	assert.Equal(t, map[string]any{"a": 1.0}, got[0].Message.Records[0].New, "after hooks get a message the stuck hook does not hold")
	mu.Lock()
	defer mu.Unlock()
	var kinds []webhook.EventKind
	for _, e := range observed {
		kinds = append(kinds, e.Kind)
	}
	assert.Contains(t, kinds, webhook.EventHookError)
}

func TestShutdownWaitsForAHookLeftRunning(t *testing.T) {
	t.Parallel()
	leftRunning := make(chan struct{}, 1)
	release := make(chan struct{})
	var finished atomic.Bool
	k, rcv, _ := hookSetup(t, webhook.Config{
		HookTimeout: 20 * time.Millisecond,
		Observer: webhook.ObserverFunc(func(e webhook.Event) {
			if e.Kind == webhook.EventHookError {
				leftRunning <- struct{}{}
			}
		}),
	}, map[string]transform.Before{
		"stuck": transform.BeforeFunc(func(context.Context, *transform.Message) error {
			<-release
			finished.Store(true)
			return nil
		}),
	})
	register(t, k, rcv, webhook.Webhook{Before: []string{"stuck"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	require.NoError(t, k.Start(t.Context()))
	select {
	case <-leftRunning: // the attempt went on without the hook
	case <-time.After(10 * time.Second):
		t.Fatal("the hook was never left behind")
	}
	close(release)
	require.NoError(t, k.Shutdown(t.Context()))
	assert.True(t, finished.Load(), "Shutdown returned only after the hook left running had returned")
}

func TestReservedHeadersFromHooksAreRefused(t *testing.T) {
	t.Parallel()
	var setErrs []error
	var mu sync.Mutex
	k, rcv, _ := hookSetup(t, webhook.Config{}, map[string]transform.Before{
		"polite": transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
			mu.Lock()
			defer mu.Unlock()
			for _, h := range []string{"webhook-id", "Webhook-Signature", "Content-Type", "Host", "Content-Length", "Connection"} {
				setErrs = append(setErrs, m.SetHeader(h, "forged"))
			}
			return m.SetHeader("authorization", "Bearer from-hook")
		}),
		"sneaky": transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
			m.Header["webhook-signature"] = []string{"v1,forged"} // bypasses SetHeader
			return nil
		}),
	})
	register(t, k, rcv, webhook.Webhook{Before: []string{"polite"}, Headers: map[string]string{"Authorization": "Bearer static"}})
	register(t, k, rcv, webhook.Webhook{Name: "sneaky", Table: "leave", Before: []string{"sneaky"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	_, err = k.Publish(t.Context(), webhook.Change{Table: "leave", Op: webhook.Insert, Key: "L1", New: map[string]any{"a": 1}})
	require.NoError(t, err)
	k.Drain(t)

	mu.Lock()
	for _, err := range setErrs {
		assert.ErrorContains(t, err, "reserved")
	}
	mu.Unlock()
	reqs := rcv.Requests()
	require.Len(t, reqs, 1, "the sneaky hook's message is never sent")
	require.NoError(t, reqs[0].VerifyErr)
	assert.Equal(t, "application/json", reqs[0].Header.Get("Content-Type"))
	assert.Equal(t, []string{"Bearer from-hook"}, reqs[0].Header.Values("Authorization"), "a hook header replaces the static one")

	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{Status: webhook.Dead})
	require.NoError(t, err)
	require.Len(t, ds, 1, "a reserved header fails the message for good")
	assert.Contains(t, ds[0].LastError, "a before hook set a header herald refuses")
}

func TestAfterHookSeesTheAnswer(t *testing.T) {
	t.Parallel()
	k, rcv, rs := hookSetup(t, webhook.Config{}, nil)
	register(t, k, rcv, webhook.Webhook{After: []string{"record"}})
	rcv.Script(
		webhooktest.Answer{Status: http.StatusServiceUnavailable, Body: `{"error":"maintenance"}`},
		webhooktest.Answer{Status: http.StatusCreated, Header: http.Header{"X-Remote-Id": {"A-77"}}, Body: `{"id":"A-77"}`},
	)
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	k.Settle(t, 5)

	got := rs.all()
	require.Len(t, got, 2)
	first, second := got[0], got[1]
	assert.Equal(t, 503, first.StatusCode)
	assert.Equal(t, `{"error":"maintenance"}`, string(first.Body))
	var de *webhook.DeliveryError
	require.ErrorAs(t, first.Err, &de)
	assert.Equal(t, 503, de.StatusCode)
	assert.Equal(t, transform.Retrying, first.Outcome)
	assert.False(t, first.Final)
	assert.Equal(t, 1, first.Attempt)
	assert.NotEmpty(t, first.RequestBody)

	assert.Equal(t, 201, second.StatusCode)
	assert.Equal(t, "A-77", second.Header.Get("X-Remote-Id"))
	assert.Equal(t, `{"id":"A-77"}`, string(second.Body))
	assert.NoError(t, second.Err)
	assert.Equal(t, transform.Delivered, second.Outcome)
	assert.True(t, second.Final)
	assert.Equal(t, 2, second.Attempt)
	assert.Positive(t, second.Latency)
	assert.Equal(t, "E1", second.Message.Records[0].Key)
}

func TestAfterHookFailuresNeverChangeTheOutcome(t *testing.T) {
	t.Parallel()
	reg := transform.NewRegistry()
	release := make(chan struct{})
	returned := make(chan struct{})
	t.Cleanup(func() {
		close(release)
		<-returned
	})
	require.NoError(t, reg.RegisterAfter("fails", transform.AfterFunc(func(context.Context, *transform.Result) error {
		return errors.New("audit log full")
	})))
	require.NoError(t, reg.RegisterAfter("panics", transform.AfterFunc(func(context.Context, *transform.Result) error {
		panic("sync-status column missing")
	})))
	require.NoError(t, reg.RegisterAfter("stuck", transform.AfterFunc(func(_ context.Context, r *transform.Result) error {
		defer close(returned)
		<-release
		r.Message.Records[0].New["scribbled"] = true // after being left running
		return nil
	})))
	var last transform.Result
	require.NoError(t, reg.RegisterAfter("last", transform.AfterFunc(func(_ context.Context, r *transform.Result) error {
		last = *r
		return nil
	})))
	var mu sync.Mutex
	var hookErrors []webhook.Event
	k, rcv := setup(t, webhook.Config{Hooks: reg, HookTimeout: 20 * time.Millisecond,
		Observer: webhook.ObserverFunc(func(e webhook.Event) {
			if e.Kind == webhook.EventHookError {
				mu.Lock()
				hookErrors = append(hookErrors, e)
				mu.Unlock()
			}
		})})
	register(t, k, rcv, webhook.Webhook{After: []string{"fails", "panics", "stuck", "last"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	require.Equal(t, 1, k.Drain(t))

	assert.Equal(t, webhook.Delivered, onlyDelivery(t, k).Status, "after hooks cannot undo a delivery")
	assert.Equal(t, transform.Delivered, last.Outcome, "every after hook runs, whatever the ones before did")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, hookErrors, 3)
	assert.Equal(t, "after hook fails", hookErrors[0].Reason)
	assert.EqualError(t, hookErrors[0].Err, "audit log full")
	assert.Equal(t, "after hook panics", hookErrors[1].Reason)
	assert.ErrorContains(t, hookErrors[1].Err, "panicked: sync-status column missing")
	assert.Equal(t, "after hook stuck", hookErrors[2].Reason)
	assert.ErrorIs(t, hookErrors[2].Err, context.DeadlineExceeded)
}

func TestHooksSeeEveryRecordOfABatch(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen [][]string
	k, rcv, rs := hookSetup(t, webhook.Config{Workers: 1}, map[string]transform.Before{
		"collect": transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
			mu.Lock()
			defer mu.Unlock()
			var keys []string
			for i, r := range m.Records {
				keys = append(keys, r.Key)
				m.Records[i].New["batched"] = len(m.Records)
			}
			seen = append(seen, keys)
			if !m.Batch {
				return errors.New("a batching webhook's message is a batch")
			}
			return nil
		}),
	})
	register(t, k, rcv, webhook.Webhook{MaxBatch: 3, Before: []string{"collect"}, After: []string{"record"}})
	rcv.Fail(1, http.StatusBadGateway)
	for _, key := range []string{"E1", "E2", "E3"} {
		_, err := k.Publish(t.Context(), update(key, nil, map[string]any{"a": 1}))
		require.NoError(t, err)
	}
	k.Settle(t, 5)

	mu.Lock()
	assert.Equal(t, [][]string{{"E1", "E2", "E3"}, {"E1", "E2", "E3"}}, seen, "the hook saw the whole batch, twice")
	mu.Unlock()
	reqs := rcv.Requests()
	require.Len(t, reqs, 2)
	var b struct {
		Data []data `json:"data"`
	}
	require.NoError(t, json.Unmarshal(reqs[1].Body, &b))
	require.Len(t, b.Data, 3)
	for _, d := range b.Data {
		assert.Equal(t, 3.0, d.New["batched"])
	}
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	for _, d := range ds {
		assert.Equal(t, 2, d.Attempts, "one failed request failed all its records together")
		assert.Equal(t, webhook.Delivered, d.Status)
	}
	got := rs.all()
	require.Len(t, got, 2)
	assert.Len(t, got[0].Message.Records, 3)
	assert.True(t, got[0].Message.Batch)
}

func TestBeforeHookRecordCount(t *testing.T) {
	t.Parallel()
	k, rcv, _ := hookSetup(t, webhook.Config{}, map[string]transform.Before{
		"drop-all": transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
			m.Records = nil
			return nil
		}),
		"duplicate": transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
			m.Records = append(m.Records, m.Records[0])
			return nil
		}),
	})
	register(t, k, rcv, webhook.Webhook{Before: []string{"drop-all"}})
	register(t, k, rcv, webhook.Webhook{Name: "dup", Table: "leave", Before: []string{"duplicate"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	_, err = k.Publish(t.Context(), webhook.Change{Table: "leave", Op: webhook.Insert, Key: "L1", New: map[string]any{"a": 1}})
	require.NoError(t, err)
	k.Drain(t)
	assert.Empty(t, rcv.Requests())
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 2)
	statuses := map[webhook.Status]string{}
	for _, d := range ds {
		statuses[d.Status] = d.LastError
	}
	assert.Equal(t, "before hooks removed every record", statuses[webhook.Skipped])
	assert.True(t, strings.Contains(statuses[webhook.Dead], "left 2 records in a message that carries one"), statuses[webhook.Dead])
}

func TestAfterHooksOfADeliveryOutliveAStop(t *testing.T) {
	t.Parallel()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var afterStop error
	reg := transform.NewRegistry()
	require.NoError(t, reg.RegisterAfter("stop", transform.AfterFunc(func(context.Context, *transform.Result) error {
		stop() // the process is told to stop right after the answer came
		return nil
	})))
	require.NoError(t, reg.RegisterAfter("sync-status", transform.AfterFunc(func(ctx context.Context, _ *transform.Result) error {
		afterStop = ctx.Err()
		return nil
	})))
	k, rcv := setup(t, webhook.Config{Hooks: reg})
	register(t, k, rcv, webhook.Webhook{After: []string{"stop", "sync-status"}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"a": 1}))
	require.NoError(t, err)
	_, _ = k.ProcessDue(ctx)
	require.Len(t, rcv.Delivered(), 1)
	assert.NoError(t, afterStop, "a delivered message's after hooks keep a live context to record it")
}
