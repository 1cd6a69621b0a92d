// Package storetest is the conformance suite every herald store must pass.
//
// # Use
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
//	}
//
// The factory is called once per sub-test and must return an empty store;
// the suite closes it. Time is passed explicitly, so the suite checks lease
// expiry and retry schedules without sleeping.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
)

// Factory returns a new, empty store for one test.
type Factory func(t *testing.T) store.Store

// t0 is the suite's fixed start of time.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

const lease = 30 * time.Second

// Option adds to what the suite checks.
type Option func(*options)

type options struct {
	another func(t *testing.T, s store.Store) store.Store
}

// Shared lets the suite check what several store instances on the same
// data (several processes on one database) must agree on: another returns
// a second instance reading and writing the same data as s. A store that
// lives in one process's memory returns s itself.
func Shared(another func(t *testing.T, s store.Store) store.Store) Option {
	return func(o *options) { o.another = another }
}

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore Factory, opts ...Option) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	another := func(t *testing.T, s store.Store) store.Store { return s }
	if o.another != nil {
		another = func(t *testing.T, s store.Store) store.Store {
			s2 := o.another(t, s)
			t.Cleanup(func() { _ = s2.Close() })
			return s2
		}
	}
	shared := []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"SharedDefinitions", testSharedDefinitions},
		{"SharedQueue", testSharedQueue},
		{"Notifications", testNotifications},
	}
	for _, tc := range shared {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s, another(t, s))
		})
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"WebhookDefinitions", testWebhookDefinitions},
		{"ConditionalSave", testConditionalSave},
		{"EnqueueIsIdempotent", testEnqueueIdempotent},
		{"ClaimOnlyDue", testClaimOnlyDue},
		{"LeaseHoldsUntilExpiry", testLease},
		{"PerKeyOrder", testPerKeyOrder},
		{"DeadHeadUnblocksChain", testDeadUnblocks},
		{"Batches", testBatches},
		{"BatchCarriesOneKeyInOrder", testBatchSameKey},
		{"BatchedAcks", testBatchedAcks},
		{"LeaseLost", testLeaseLost},
		{"Release", testRelease},
		{"Postpone", testPostpone},
		{"Skip", testSkip},
		{"Replay", testReplay},
		{"ReplayInBatchingWebhook", testReplayBatch},
		{"DisabledWebhookWaits", testDisabled},
		{"DeleteCancelsPending", testDeleteCancels},
		{"DeliveriesFilterAndPage", testDeliveriesFilter},
		{"Attempts", testAttempts},
		{"ConcurrentClaimers", testConcurrentClaimers},
		{"FairAcrossWebhooks", testFairAcrossWebhooks},
		{"ConcurrentClaimersKeepOrder", testConcurrentOrder},
		{"OrderAcrossBatches", testOrderAcrossBatches},
		{"BatchLeaseExpires", testBatchLeaseExpires},
		{"EnqueueMany", testEnqueueMany},
		{"AuditAppend", testAuditAppend},
		{"AuditFilters", testAuditFilters},
		{"AuditPages", testAuditPages},
		{"AuditOutlivesWebhook", testAuditOutlivesWebhook},
		{"AuditConcurrentAppends", testAuditConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
	runObservability(t, newStore)
	RunRetention(t, newStore)
}

func ctx(t *testing.T) context.Context { return t.Context() }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// hook saves a webhook definition.
func hook(t *testing.T, s store.Store, id string, disabled bool) store.Webhook {
	t.Helper()
	w, err := s.SaveWebhook(ctx(t), store.Webhook{ID: id, Disabled: disabled,
		Definition: json.RawMessage(`{"name":"` + id + `"}`)}, t0)
	require.NoError(t, err)
	return w
}

// publish enqueues one event for the given webhooks and returns the
// delivery ids in webhook order.
func publish(t *testing.T, s store.Store, tenant, key string, at time.Time, maxBatch int, webhooks ...string) []string {
	t.Helper()
	e := store.Event{ID: newID(), Tenant: tenant, Table: "employee", Op: "UPDATE", Key: key, Time: at,
		Payload: json.RawMessage(`{"table":"employee","op":"UPDATE","key":"` + key + `"}`)}
	var ds []store.Delivery
	var ids []string
	for _, w := range webhooks {
		id := newID()
		ids = append(ids, id)
		ds = append(ds, store.Delivery{ID: id, WebhookID: w, MaxBatch: maxBatch, NextAttempt: at, CreatedAt: at})
	}
	created, err := s.Enqueue(ctx(t), e, ds)
	require.NoError(t, err)
	require.True(t, created)
	return ids
}

func claim(t *testing.T, s store.Store, now time.Time, limit int) []store.Message {
	t.Helper()
	ms, err := s.Claim(ctx(t), store.Claim{Now: now, Lease: lease, Limit: limit})
	require.NoError(t, err)
	return ms
}

func ack(t *testing.T, s store.Store, m store.Message, o store.Outcome, now, next time.Time) {
	t.Helper()
	r := store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: o, Now: now, NextAttempt: next}
	if o == store.OutcomeDelivered || o == store.OutcomeRetry || o == store.OutcomeDead {
		r.Attempt = &store.Attempt{MessageID: m.ID, At: now, StatusCode: 500, Error: "status 500"}
		if o == store.OutcomeDelivered {
			r.Attempt.StatusCode, r.Attempt.Error = 200, ""
		}
	}
	require.NoError(t, s.Ack(ctx(t), []store.Result{r}))
}

func deliveryIDs(m store.Message) []string {
	out := make([]string, len(m.Deliveries))
	for i, d := range m.Deliveries {
		out[i] = d.ID
	}
	return out
}

func get(t *testing.T, s store.Store, id string) store.Delivery {
	t.Helper()
	d, err := s.Delivery(ctx(t), id)
	require.NoError(t, err)
	return d
}

func testWebhookDefinitions(t *testing.T, s store.Store) {
	v0, err := s.WebhooksVersion(ctx(t))
	require.NoError(t, err)
	a := hook(t, s, "wh-a", false)
	assert.Greater(t, a.Version, v0)
	b := hook(t, s, "wh-b", true)
	assert.Greater(t, b.Version, a.Version)
	a2, err := s.SaveWebhook(ctx(t), store.Webhook{ID: "wh-a", Tenant: "acme", Definition: json.RawMessage(`{"name":"renamed"}`)}, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Greater(t, a2.Version, b.Version)
	assert.Equal(t, t0, a2.CreatedAt.UTC(), "an update keeps the creation time")
	assert.Equal(t, t0.Add(time.Minute), a2.UpdatedAt.UTC())

	got, err := s.Webhook(ctx(t), "wh-a")
	require.NoError(t, err)
	assert.JSONEq(t, `{"name":"renamed"}`, string(got.Definition))
	assert.Equal(t, "acme", got.Tenant)
	all, err := s.Webhooks(ctx(t))
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, "wh-a", all[0].ID)
	assert.True(t, all[1].Disabled)

	v1, err := s.WebhooksVersion(ctx(t))
	require.NoError(t, err)
	require.NoError(t, s.DeleteWebhook(ctx(t), "wh-b", t0))
	v2, err := s.WebhooksVersion(ctx(t))
	require.NoError(t, err)
	assert.Greater(t, v2, v1, "a delete moves the version")
	_, err = s.Webhook(ctx(t), "wh-b")
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, s.DeleteWebhook(ctx(t), "wh-b", t0), store.ErrNotFound)
}

func testConditionalSave(t *testing.T, s store.Store) {
	def := json.RawMessage(`{"name":"a"}`)
	a, err := s.SaveWebhook(ctx(t), store.Webhook{ID: "wh", Definition: def, IfVersion: -1}, t0)
	require.NoError(t, err, "create-only save of a new id")
	assert.Zero(t, a.IfVersion)
	_, err = s.SaveWebhook(ctx(t), store.Webhook{ID: "wh", Definition: def, IfVersion: -1}, t0)
	assert.ErrorIs(t, err, store.ErrConflict, "create-only save of a taken id")
	b, err := s.SaveWebhook(ctx(t), store.Webhook{ID: "wh", Definition: json.RawMessage(`{"name":"b"}`), IfVersion: a.Version}, t0)
	require.NoError(t, err, "save at the version read")
	_, err = s.SaveWebhook(ctx(t), store.Webhook{ID: "wh", Definition: json.RawMessage(`{"name":"lost"}`), IfVersion: a.Version}, t0)
	assert.ErrorIs(t, err, store.ErrConflict, "a save from a stale read loses no update")
	got, err := s.Webhook(ctx(t), "wh")
	require.NoError(t, err)
	assert.JSONEq(t, `{"name":"b"}`, string(got.Definition))
	assert.Equal(t, b.Version, got.Version)
	_, err = s.SaveWebhook(ctx(t), store.Webhook{ID: "other", Definition: def, IfVersion: 7}, t0)
	assert.ErrorIs(t, err, store.ErrConflict, "a conditional save of a missing id")
	_, err = s.SaveWebhook(ctx(t), store.Webhook{ID: "wh", Definition: json.RawMessage(`{"name":"c"}`)}, t0)
	assert.NoError(t, err, "an unconditional save")
}

func testEnqueueIdempotent(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	e := store.Event{ID: "change-1", Tenant: "acme", Table: "employee", Op: "INSERT", Key: "E1", Time: t0, Payload: json.RawMessage(`{}`)}
	created, err := s.Enqueue(ctx(t), e, []store.Delivery{{ID: newID(), WebhookID: "wh", NextAttempt: t0, CreatedAt: t0}})
	require.NoError(t, err)
	assert.True(t, created)
	created, err = s.Enqueue(ctx(t), e, []store.Delivery{{ID: newID(), WebhookID: "wh", NextAttempt: t0, CreatedAt: t0}})
	require.NoError(t, err)
	assert.False(t, created, "the same (tenant, id) again creates nothing")
	e.Tenant = "globex"
	created, err = s.Enqueue(ctx(t), e, []store.Delivery{{ID: newID(), WebhookID: "wh", NextAttempt: t0, CreatedAt: t0}})
	require.NoError(t, err)
	assert.True(t, created, "the same id in another tenant is another event")
	ds, err := s.Deliveries(ctx(t), store.DeliveryFilter{EventID: "change-1"})
	require.NoError(t, err)
	assert.Len(t, ds, 2)
	created, err = s.Enqueue(ctx(t), store.Event{ID: "no-match", Table: "employee", Op: "INSERT", Key: "E2", Time: t0, Payload: json.RawMessage(`{}`)}, nil)
	require.NoError(t, err)
	assert.True(t, created, "an event without deliveries is still recorded")
	created, err = s.Enqueue(ctx(t), store.Event{ID: "no-match", Table: "employee", Op: "INSERT", Key: "E2", Time: t0, Payload: json.RawMessage(`{}`)},
		[]store.Delivery{{ID: newID(), WebhookID: "wh", NextAttempt: t0, CreatedAt: t0}})
	require.NoError(t, err)
	assert.False(t, created, "a webhook registered later gets nothing from a repeated publish")
}

func testClaimOnlyDue(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	now := publish(t, s, "", "E1", t0, 0, "wh")
	later := publish(t, s, "", "E2", t0.Add(time.Hour), 0, "wh")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	assert.Equal(t, now, deliveryIDs(ms[0]))
	assert.Equal(t, 1, ms[0].Attempt)
	assert.False(t, ms[0].Batch)
	assert.Equal(t, ms[0].Deliveries[0].EventID, ms[0].ID, "a single delivery is sent under its event id")
	require.Len(t, ms[0].Events, 1)
	assert.Equal(t, "E1", ms[0].Events[0].Key)
	assert.JSONEq(t, `{"table":"employee","op":"UPDATE","key":"E1"}`, string(ms[0].Events[0].Payload))
	ack(t, s, ms[0], store.OutcomeDelivered, t0, time.Time{})
	ms = claim(t, s, t0.Add(time.Hour), 10)
	require.Len(t, ms, 1)
	assert.Equal(t, later, deliveryIDs(ms[0]))
	assert.Empty(t, claim(t, s, t0, 0), "limit 0 claims nothing")
}

func testLease(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	ids := publish(t, s, "", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	assert.Empty(t, claim(t, s, t0.Add(lease-time.Second), 10), "a leased message is not handed out again")
	again := claim(t, s, t0.Add(lease+time.Second), 10)
	require.Len(t, again, 1, "an expired lease makes the message claimable")
	assert.Equal(t, ids, deliveryIDs(again[0]))
	assert.Equal(t, 1, again[0].Attempt, "a lost lease spends no attempt")
	assert.NotEqual(t, ms[0].Lease, again[0].Lease)
}

func testPerKeyOrder(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	first := publish(t, s, "acme", "E1", t0, 0, "wh")
	second := publish(t, s, "acme", "E1", t0, 0, "wh")
	other := publish(t, s, "acme", "E2", t0, 0, "wh")
	otherTenant := publish(t, s, "globex", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 10)
	got := map[string]bool{}
	for _, m := range ms {
		got[m.Deliveries[0].ID] = true
	}
	assert.Equal(t, map[string]bool{first[0]: true, other[0]: true, otherTenant[0]: true}, got,
		"only the head of each (webhook, tenant, key) chain is claimable")
	for _, m := range ms {
		if m.Deliveries[0].ID == first[0] {
			ack(t, s, m, store.OutcomeRetry, t0, t0.Add(time.Minute))
		} else {
			ack(t, s, m, store.OutcomeDelivered, t0, time.Time{})
		}
	}
	assert.Empty(t, claim(t, s, t0.Add(30*time.Second), 10), "a retrying head holds its successor back")
	ms = claim(t, s, t0.Add(time.Minute), 10)
	require.Len(t, ms, 1)
	assert.Equal(t, first, deliveryIDs(ms[0]))
	assert.Equal(t, 2, ms[0].Attempt)
	ack(t, s, ms[0], store.OutcomeDelivered, t0.Add(time.Minute), time.Time{})
	ms = claim(t, s, t0.Add(time.Minute), 10)
	require.Len(t, ms, 1)
	assert.Equal(t, second, deliveryIDs(ms[0]), "the successor flows once the head is delivered")
}

func testDeadUnblocks(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	first := publish(t, s, "", "E1", t0, 0, "wh")
	second := publish(t, s, "", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	ack(t, s, ms[0], store.OutcomeDead, t0, time.Time{})
	assert.Equal(t, store.Dead, get(t, s, first[0]).Status)
	ms = claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	assert.Equal(t, second, deliveryIDs(ms[0]), "a dead head no longer blocks its key")
}

func testBatches(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	var all []string
	for i := range 5 {
		all = append(all, publish(t, s, "", fmt.Sprintf("E%d", i), t0, 3, "wh")...)
	}
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	m := ms[0]
	assert.True(t, m.Batch)
	require.Len(t, m.Deliveries, 3, "a batch fills up to MaxBatch")
	assert.Equal(t, all[:3], deliveryIDs(m), "in order of sequence")
	for _, d := range m.Deliveries {
		assert.Equal(t, m.ID, d.BatchID, "every member carries the batch id")
	}
	assert.NotEqual(t, m.Deliveries[0].EventID, m.ID, "a batch has its own id")
	stored := get(t, s, all[0])
	assert.Equal(t, m.ID, stored.BatchID)

	rest := claim(t, s, t0, 10)
	require.Len(t, rest, 1)
	assert.Equal(t, all[3:], deliveryIDs(rest[0]))
	ack(t, s, rest[0], store.OutcomeDelivered, t0, time.Time{})

	ack(t, s, m, store.OutcomeRetry, t0, t0.Add(time.Minute))
	publish(t, s, "", "E9", t0, 3, "wh")
	ms = claim(t, s, t0.Add(time.Minute), 10)
	var retried *store.Message
	for i := range ms {
		if ms[i].ID == m.ID {
			retried = &ms[i]
		}
	}
	require.NotNil(t, retried, "the retry is sent under the same batch id")
	assert.Equal(t, all[:3], deliveryIDs(*retried), "members are fixed at first claim")
	assert.Equal(t, 2, retried.Attempt)
}

func testBatchSameKey(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	a := publish(t, s, "", "E1", t0, 10, "wh")
	b := publish(t, s, "", "E1", t0, 10, "wh")
	c := publish(t, s, "", "E2", t0, 10, "wh")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	assert.Equal(t, []string{a[0], b[0], c[0]}, deliveryIDs(ms[0]), "a batch may carry several records of one key, in order")
}

func testBatchedAcks(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	var ids []string
	for i := range 4 {
		ids = append(ids, publish(t, s, "", fmt.Sprintf("E%d", i), t0, 0, "wh")...)
	}
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 4)
	outcomes := []store.Outcome{store.OutcomeDelivered, store.OutcomeRetry, store.OutcomeDead, store.OutcomeDelivered}
	var rs []store.Result
	for i, m := range ms {
		r := store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: outcomes[i], Now: t0, NextAttempt: t0.Add(time.Hour),
			Attempt: &store.Attempt{MessageID: m.ID, At: t0, StatusCode: 200}}
		if outcomes[i] != store.OutcomeDelivered {
			r.Attempt.StatusCode, r.Attempt.Error = 503, "status 503"
		}
		rs = append(rs, r)
	}
	require.NoError(t, s.Ack(ctx(t), rs), "many outcomes in one call")
	want := []store.Status{store.Delivered, store.Pending, store.Dead, store.Delivered}
	for i, m := range ms {
		d := get(t, s, m.Deliveries[0].ID)
		assert.Equal(t, want[i], d.Status)
		assert.Equal(t, 1, d.Attempts)
		if want[i] != store.Delivered {
			assert.Equal(t, "status 503", d.LastError)
			assert.Equal(t, 503, d.LastCode)
		}
	}
	assert.Equal(t, t0.Add(time.Hour), get(t, s, ms[1].Deliveries[0].ID).NextAttempt.UTC())
}

func testLeaseLost(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	publish(t, s, "", "E1", t0, 0, "wh")
	publish(t, s, "", "E2", t0, 0, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	stale := ms[0]
	again := claim(t, s, t0.Add(2*lease), 1)
	require.Len(t, again, 1)
	require.Equal(t, stale.ID, again[0].ID, "the expired message is claimed again first")
	other := claim(t, s, t0.Add(2*lease), 1)
	require.Len(t, other, 1)
	err := s.Ack(ctx(t), []store.Result{
		{MessageID: stale.ID, Lease: stale.Lease, Outcome: store.OutcomeDelivered, Now: t0, Attempt: &store.Attempt{StatusCode: 200}},
		{MessageID: other[0].ID, Lease: other[0].Lease, Outcome: store.OutcomeDelivered, Now: t0, Attempt: &store.Attempt{StatusCode: 200}},
	})
	assert.ErrorIs(t, err, store.ErrLeaseLost)
	assert.Equal(t, store.Pending, get(t, s, stale.Deliveries[0].ID).Status, "a stale outcome is not recorded")
	assert.Equal(t, store.Delivered, get(t, s, other[0].Deliveries[0].ID).Status, "the others in the call are")
	ack(t, s, again[0], store.OutcomeDelivered, t0.Add(2*lease), time.Time{})
	assert.Equal(t, store.Delivered, get(t, s, stale.Deliveries[0].ID).Status)
}

func testRelease(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	ids := publish(t, s, "", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	require.NoError(t, s.Release(ctx(t), []string{ms[0].Lease}))
	again := claim(t, s, t0, 1)
	require.Len(t, again, 1, "a released message is claimable at once")
	assert.Equal(t, ids, deliveryIDs(again[0]))
	assert.Equal(t, 1, again[0].Attempt)
	assert.Equal(t, 0, get(t, s, ids[0]).Attempts)
}

func testPostpone(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	ids := publish(t, s, "", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	require.NoError(t, s.Ack(ctx(t), []store.Result{{MessageID: ms[0].ID, Lease: ms[0].Lease, Outcome: store.OutcomePostpone,
		NextAttempt: t0.Add(time.Minute), Error: "held: hook missing", Now: t0}}))
	d := get(t, s, ids[0])
	assert.Equal(t, store.Pending, d.Status)
	assert.Equal(t, 0, d.Attempts, "a postponement spends no attempt")
	assert.Equal(t, "held: hook missing", d.LastError)
	assert.Empty(t, claim(t, s, t0.Add(time.Second), 1))
	ms = claim(t, s, t0.Add(time.Minute), 1)
	require.Len(t, ms, 1)
	assert.Equal(t, 1, ms[0].Attempt)
}

func testSkip(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	ids := publish(t, s, "", "E1", t0, 0, "wh")
	next := publish(t, s, "", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	ack(t, s, ms[0], store.OutcomeSkipped, t0, time.Time{})
	d := get(t, s, ids[0])
	assert.Equal(t, store.Skipped, d.Status)
	assert.Equal(t, 0, d.Attempts)
	ms = claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	assert.Equal(t, next, deliveryIDs(ms[0]), "a skipped head frees its key")
}

func testReplay(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	dead := publish(t, s, "", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	ack(t, s, ms[0], store.OutcomeDead, t0, time.Time{})
	blocked := publish(t, s, "", "E1", t0, 0, "wh")
	ms = claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	ack(t, s, ms[0], store.OutcomeRetry, t0, t0.Add(time.Hour))
	waiting := publish(t, s, "", "E1", t0, 0, "wh")

	assert.ErrorIs(t, s.Replay(ctx(t), blocked[0], t0), store.ErrPending)
	assert.ErrorIs(t, s.Replay(ctx(t), "missing", t0), store.ErrNotFound)
	require.NoError(t, s.Replay(ctx(t), dead[0], t0.Add(time.Minute)))
	d := get(t, s, dead[0])
	assert.Equal(t, store.Pending, d.Status)
	assert.Equal(t, 0, d.Attempts, "a replay starts a fresh count")
	assert.True(t, d.Replayed)

	ms = claim(t, s, t0.Add(time.Minute), 10)
	require.Len(t, ms, 1, "the replay goes out although an earlier delivery of its key is pending")
	assert.Equal(t, dead, deliveryIDs(ms[0]))
	assert.Equal(t, ms[0].Deliveries[0].EventID, ms[0].ID)
	assert.Equal(t, 1, ms[0].Attempt)
	ack(t, s, ms[0], store.OutcomeRetry, t0.Add(time.Minute), t0.Add(2*time.Hour))

	ms = claim(t, s, t0.Add(time.Hour), 10)
	require.Len(t, ms, 1, "a pending replay does not hold its key back")
	assert.Equal(t, blocked, deliveryIDs(ms[0]))
	ack(t, s, ms[0], store.OutcomeDelivered, t0.Add(time.Hour), time.Time{})
	ms = claim(t, s, t0.Add(time.Hour), 10)
	require.Len(t, ms, 1)
	assert.Equal(t, waiting, deliveryIDs(ms[0]))
}

func testReplayBatch(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	a := publish(t, s, "", "E1", t0, 5, "wh")
	b := publish(t, s, "", "E2", t0, 5, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	require.Len(t, ms[0].Deliveries, 2)
	ack(t, s, ms[0], store.OutcomeDelivered, t0, time.Time{})
	require.NoError(t, s.Replay(ctx(t), b[0], t0))
	publish(t, s, "", "E3", t0, 5, "wh")
	ms = claim(t, s, t0, 10)
	require.Len(t, ms, 2)
	var replay store.Message
	for _, m := range ms {
		if m.Deliveries[0].ID == b[0] {
			replay = m
		}
	}
	require.Len(t, replay.Deliveries, 1, "a replay travels alone")
	assert.True(t, replay.Batch)
	assert.Equal(t, b[0], replay.ID, "under its own delivery id")
	assert.NotEqual(t, a[0], replay.ID)
}

func testDisabled(t *testing.T, s store.Store) {
	hook(t, s, "wh", true)
	hook(t, s, "other", false)
	ids := publish(t, s, "", "E1", t0, 0, "wh")
	publish(t, s, "", "E1", t0, 0, "other")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	assert.Equal(t, "other", ms[0].WebhookID, "a disabled webhook's deliveries wait")
	hook(t, s, "wh", false)
	ms = claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	assert.Equal(t, ids, deliveryIDs(ms[0]))
}

func testDeleteCancels(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	hook(t, s, "keep", false)
	leased := publish(t, s, "", "E1", t0, 0, "wh")
	queued := publish(t, s, "", "E1", t0, 0, "wh")
	kept := publish(t, s, "", "E1", t0, 0, "keep")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 2)
	var held store.Message
	for _, m := range ms {
		if m.WebhookID == "wh" {
			held = m
		} else {
			ack(t, s, m, store.OutcomeDelivered, t0, time.Time{})
		}
	}
	require.NoError(t, s.DeleteWebhook(ctx(t), "wh", t0))
	for _, id := range []string{leased[0], queued[0]} {
		d := get(t, s, id)
		assert.Equal(t, store.Canceled, d.Status)
		assert.NotEmpty(t, d.LastError)
	}
	assert.Equal(t, store.Delivered, get(t, s, kept[0]).Status, "another webhook's work is untouched")
	err := s.Ack(ctx(t), []store.Result{{MessageID: held.ID, Lease: held.Lease, Outcome: store.OutcomeDelivered, Now: t0, Attempt: &store.Attempt{StatusCode: 200}}})
	assert.ErrorIs(t, err, store.ErrLeaseLost, "an outcome for a deleted webhook's message is not recorded")
	assert.Equal(t, store.Canceled, get(t, s, leased[0]).Status)
	assert.Empty(t, claim(t, s, t0.Add(time.Hour), 10))
}

func testDeliveriesFilter(t *testing.T, s store.Store) {
	hook(t, s, "a", false)
	hook(t, s, "b", false)
	var ids []string
	for i := range 6 {
		tenant := "acme"
		if i%2 == 1 {
			tenant = "globex"
		}
		ids = append(ids, publish(t, s, tenant, fmt.Sprintf("E%d", i%3), t0.Add(time.Duration(i)*time.Minute), 0, "a", "b")...)
	}
	all, err := s.Deliveries(ctx(t), store.DeliveryFilter{})
	require.NoError(t, err)
	require.Len(t, all, 12)
	for i := 1; i < len(all); i++ {
		assert.Less(t, all[i-1].Seq, all[i].Seq, "oldest first")
	}
	byHook, err := s.Deliveries(ctx(t), store.DeliveryFilter{WebhookID: "a"})
	require.NoError(t, err)
	assert.Len(t, byHook, 6)
	byTenant, err := s.Deliveries(ctx(t), store.DeliveryFilter{Tenant: "globex", WebhookID: "b"})
	require.NoError(t, err)
	assert.Len(t, byTenant, 3)
	byKey, err := s.Deliveries(ctx(t), store.DeliveryFilter{Key: "E0"})
	require.NoError(t, err)
	assert.Len(t, byKey, 4)
	byTime, err := s.Deliveries(ctx(t), store.DeliveryFilter{Since: t0.Add(2 * time.Minute), Until: t0.Add(4 * time.Minute)})
	require.NoError(t, err)
	assert.Len(t, byTime, 4)
	byEvent, err := s.Deliveries(ctx(t), store.DeliveryFilter{EventID: all[0].EventID})
	require.NoError(t, err)
	assert.Len(t, byEvent, 2)

	var paged []string
	var after int64
	for {
		page, err := s.Deliveries(ctx(t), store.DeliveryFilter{WebhookID: "a", After: after, Limit: 4})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		assert.LessOrEqual(t, len(page), 4)
		for _, d := range page {
			paged = append(paged, d.ID)
		}
		after = page[len(page)-1].Seq
	}
	var want []string
	for _, d := range byHook {
		want = append(want, d.ID)
	}
	assert.Equal(t, want, paged, "cursor pages cover every delivery once, in order")

	ms := claim(t, s, t0.Add(time.Hour), 100)
	for _, m := range ms {
		ack(t, s, m, store.OutcomeDead, t0.Add(time.Hour), time.Time{})
	}
	dead, err := s.Deliveries(ctx(t), store.DeliveryFilter{Status: store.Dead})
	require.NoError(t, err)
	assert.Len(t, dead, len(ms))
	pending, err := s.Deliveries(ctx(t), store.DeliveryFilter{Status: store.Pending})
	require.NoError(t, err)
	assert.Len(t, pending, 12-len(ms))
}

func testAttempts(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	ids := publish(t, s, "", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	require.NoError(t, s.Ack(ctx(t), []store.Result{{MessageID: ms[0].ID, Lease: ms[0].Lease, Outcome: store.OutcomeRetry, Now: t0,
		NextAttempt: t0.Add(time.Second), Attempt: &store.Attempt{MessageID: ms[0].ID, At: t0, StatusCode: 502, Latency: 20 * time.Millisecond,
			RequestHeaders: map[string]string{"Authorization": "xxxxx"}, ResponseBody: "bad gateway", Error: "status 502", WebhookVersion: 3}}}))
	ms = claim(t, s, t0.Add(time.Second), 1)
	require.Len(t, ms, 1)
	ack(t, s, ms[0], store.OutcomeDelivered, t0.Add(time.Second), time.Time{})
	as, err := s.Attempts(ctx(t), ids[0])
	require.NoError(t, err)
	require.Len(t, as, 2)
	assert.Equal(t, 1, as[0].Number)
	assert.Equal(t, 502, as[0].StatusCode)
	assert.Equal(t, 20*time.Millisecond, as[0].Latency)
	assert.Equal(t, "bad gateway", as[0].ResponseBody)
	assert.Equal(t, "status 502", as[0].Error)
	assert.Equal(t, "xxxxx", as[0].RequestHeaders["Authorization"])
	assert.Equal(t, int64(3), as[0].WebhookVersion)
	assert.Equal(t, 2, as[1].Number)
	assert.Equal(t, 200, as[1].StatusCode)
	_, err = s.Attempts(ctx(t), "missing")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func testConcurrentClaimers(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	const n = 200
	for i := range n {
		publish(t, s, "", fmt.Sprintf("E%d", i), t0, 0, "wh")
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ms, err := s.Claim(context.Background(), store.Claim{Now: t0, Lease: lease, Limit: 7})
				if err != nil {
					errs <- err
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					seen[m.Deliveries[0].ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, seen, n, "every delivery claimed")
	for id, c := range seen {
		if c != 1 {
			t.Errorf("delivery %s handed out %d times under one lease", id, c)
		}
	}
}

func testFairAcrossWebhooks(t *testing.T, s store.Store) {
	hook(t, s, "busy", false)
	hook(t, s, "quiet", false)
	for i := range 50 {
		publish(t, s, "", fmt.Sprintf("E%d", i), t0, 0, "busy")
	}
	publish(t, s, "", "Q", t0.Add(time.Second), 0, "quiet")
	ms := claim(t, s, t0.Add(time.Second), 10)
	found := false
	for _, m := range ms {
		found = found || m.WebhookID == "quiet"
	}
	if !found {
		t.Errorf("a backlog of one webhook starved another's due delivery in a claim of %d", len(ms))
	}
}
