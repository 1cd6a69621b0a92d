package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
)

const day = 24 * time.Hour

// RunRetention runs the tests of the optional store.Retainer and
// store.Eraser capabilities; Run calls it. A store without a capability
// skips its tests.
func RunRetention(t *testing.T, newStore Factory) {
	tests := []struct {
		name  string
		needs string
		fn    func(t *testing.T, s store.Store)
	}{
		{"PurgeByAge", "retainer", testPurgeByAge},
		{"PurgeKeepsEventKeys", "retainer", testPurgeKeepsEventKeys},
		{"PurgeDropsPayloadsKeepsLog", "retainer", testPurgePayloads},
		{"PurgeInBatches", "retainer", testPurgeBatches},
		{"PurgeLeavesChainsWorking", "retainer", testPurgeChains},
		{"EraseRecord", "eraser", testEraseRecord},
		{"EraseTenant", "eraser", testEraseTenant},
		{"EraseBatchMember", "eraser", testEraseBatchMember},
		{"EraseValidates", "eraser", testEraseValidates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			if _, ok := s.(store.Retainer); tc.needs == "retainer" && !ok {
				t.Skipf("%T does not implement store.Retainer", s)
			}
			if _, ok := s.(store.Eraser); tc.needs == "eraser" && !ok {
				t.Skipf("%T does not implement store.Eraser", s)
			}
			tc.fn(t, s)
		})
	}
}

func purge(t *testing.T, s store.Store, p store.PurgePolicy, now time.Time) store.PurgeResult {
	t.Helper()
	r, err := s.(store.Retainer).Purge(ctx(t), p, now)
	require.NoError(t, err)
	return r
}

func erase(t *testing.T, s store.Store, e store.Erasure, now time.Time) store.ErasureResult {
	t.Helper()
	r, err := s.(store.Eraser).Erase(ctx(t), e, now)
	require.NoError(t, err)
	return r
}

// finish publishes one event to wh, claims it and records outcome o at at.
func finish(t *testing.T, s store.Store, key string, o store.Outcome, at time.Time) string {
	t.Helper()
	ids := publish(t, s, "", key, at, 0, "wh")
	ms := claim(t, s, at, 1)
	require.Len(t, ms, 1)
	require.Equal(t, ids, deliveryIDs(ms[0]))
	ack(t, s, ms[0], o, at, time.Time{})
	return ids[0]
}

func gone(t *testing.T, s store.Store, id string) {
	t.Helper()
	_, err := s.Delivery(ctx(t), id)
	assert.ErrorIs(t, err, store.ErrNotFound, "delivery %s should be purged", id)
	_, err = s.Attempts(ctx(t), id)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func testPurgeByAge(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	hook(t, s, "doomed", false)
	delivered := finish(t, s, "E1", store.OutcomeDelivered, t0)
	skipped := finish(t, s, "E2", store.OutcomeSkipped, t0)
	dead := finish(t, s, "E3", store.OutcomeDead, t0)
	canceled := publish(t, s, "", "E4", t0, 0, "doomed")[0]
	require.NoError(t, s.DeleteWebhook(ctx(t), "doomed", t0))
	retrying := publish(t, s, "", "E5", t0, 0, "wh")[0]
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	ack(t, s, ms[0], store.OutcomeRetry, t0, t0.Add(400*day))

	p := store.PurgePolicy{Delivered: 7 * day, Dead: 30 * day}
	assert.Equal(t, store.PurgeResult{}, purge(t, s, p, t0.Add(7*day)), "nothing has reached its age yet")
	r := purge(t, s, p, t0.Add(7*day+time.Second))
	assert.Equal(t, 2, r.Deliveries, "delivered and skipped go after Delivered")
	assert.Equal(t, 1, r.Attempts, "with their attempts")
	gone(t, s, delivered)
	gone(t, s, skipped)
	assert.Equal(t, store.Dead, get(t, s, dead).Status, "dead waits for Dead")
	assert.Equal(t, store.Canceled, get(t, s, canceled).Status)

	r = purge(t, s, p, t0.Add(30*day+time.Second))
	assert.Equal(t, 2, r.Deliveries, "dead and canceled go after Dead")
	assert.Equal(t, 1, r.Attempts)
	gone(t, s, dead)
	gone(t, s, canceled)

	r = purge(t, s, store.PurgePolicy{Delivered: time.Second, Dead: time.Second}, t0.Add(300*day))
	assert.Zero(t, r.Deliveries)
	d := get(t, s, retrying)
	assert.Equal(t, store.Pending, d.Status, "a pending delivery is never purged, however old")
	assert.Equal(t, 1, d.Attempts)
	as, err := s.Attempts(ctx(t), retrying)
	require.NoError(t, err)
	assert.Len(t, as, 1, "nor are its attempts")

	r = purge(t, s, store.PurgePolicy{}, t0.Add(1000*day))
	assert.Zero(t, r.Deliveries, "a zero policy keeps every delivery")
}

func testPurgeKeepsEventKeys(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	e := store.Event{ID: "change-1", Table: "employee", Op: "INSERT", Key: "E1", Time: t0.Add(-100 * day), CreatedAt: t0,
		Payload: json.RawMessage(`{"key":"E1"}`)}
	created, err := s.Enqueue(ctx(t), e, []store.Delivery{{ID: newID(), WebhookID: "wh", NextAttempt: t0, CreatedAt: t0}})
	require.NoError(t, err)
	require.True(t, created)
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	ack(t, s, ms[0], store.OutcomeDelivered, t0, time.Time{})
	unmatched := store.Event{ID: "no-match", Table: "employee", Op: "INSERT", Key: "E2", Time: t0, Payload: json.RawMessage(`{"key":"E2"}`)}
	created, err = s.Enqueue(ctx(t), unmatched, nil)
	require.NoError(t, err)
	require.True(t, created)

	p := store.PurgePolicy{Delivered: 7 * day, Events: 30 * day}
	r := purge(t, s, p, t0.Add(8*day))
	assert.Equal(t, 1, r.Deliveries)
	assert.Equal(t, 2, r.Payloads, "payloads no delivery refers to are dropped")
	assert.Zero(t, r.Events, "event keys outlive their deliveries (counted from CreatedAt, not Time)")
	created, err = s.Enqueue(ctx(t), e, []store.Delivery{{ID: newID(), WebhookID: "wh", NextAttempt: t0, CreatedAt: t0}})
	require.NoError(t, err)
	assert.False(t, created, "publishing is still idempotent after the deliveries were purged")

	r = purge(t, s, p, t0.Add(30*day+time.Second))
	assert.Equal(t, 2, r.Events, "past Events, a key without deliveries goes")
	assert.Zero(t, r.Payloads)
	created, err = s.Enqueue(ctx(t), e, []store.Delivery{{ID: newID(), WebhookID: "wh", NextAttempt: t0.Add(31 * day), CreatedAt: t0.Add(31 * day)}})
	require.NoError(t, err)
	assert.True(t, created, "after its key is purged, the same change id creates new deliveries")

	r = purge(t, s, p, t0.Add(90*day))
	assert.Zero(t, r.Events, "an event with a pending delivery keeps its key")
}

func testPurgePayloads(t *testing.T, s store.Store) {
	hook(t, s, "a", false)
	hook(t, s, "b", false)
	ids := publish(t, s, "", "E1", t0, 0, "a", "b")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 2)
	var rs []store.Result
	for _, m := range ms {
		r := store.Result{MessageID: m.ID, Lease: m.Lease, Now: t0, Outcome: store.OutcomeDelivered,
			Attempt: &store.Attempt{MessageID: m.ID, At: t0, StatusCode: 200, ResponseBody: `{"echo":"E1 salary"}`}}
		if m.WebhookID == "b" {
			r.Outcome, r.NextAttempt = store.OutcomeRetry, t0.Add(2*day)
			r.Attempt.StatusCode, r.Attempt.Error = 500, "status 500"
		}
		rs = append(rs, r)
	}
	require.NoError(t, s.Ack(ctx(t), rs))

	p := store.PurgePolicy{Delivered: 7 * day, Dead: 30 * day, Payloads: day}
	r := purge(t, s, p, t0.Add(2*day))
	assert.Zero(t, r.Deliveries)
	assert.Zero(t, r.Payloads, "the event's payload stays while a delivery may still send it")
	as, err := s.Attempts(ctx(t), ids[0])
	require.NoError(t, err)
	require.Len(t, as, 1)
	assert.Empty(t, as[0].ResponseBody, "an old attempt loses its body")
	assert.Equal(t, 200, as[0].StatusCode, "and keeps its log line")
	as, err = s.Attempts(ctx(t), ids[1])
	require.NoError(t, err)
	assert.Equal(t, `{"echo":"E1 salary"}`, as[0].ResponseBody, "a pending delivery's attempts keep theirs")

	ms = claim(t, s, t0.Add(2*day), 10)
	require.Len(t, ms, 1)
	assert.JSONEq(t, `{"table":"employee","op":"UPDATE","key":"E1"}`, string(ms[0].Events[0].Payload))
	ack(t, s, ms[0], store.OutcomeDelivered, t0.Add(2*day), time.Time{})

	r = purge(t, s, p, t0.Add(3*day+time.Second))
	assert.Equal(t, 1, r.Payloads, "once every delivery of the event is old enough, its payload goes")
	assert.Zero(t, r.Deliveries)
	for _, id := range ids {
		d := get(t, s, id)
		assert.Equal(t, store.Delivered, d.Status, "the rows stay")
		assert.ErrorIs(t, s.Replay(ctx(t), id, t0.Add(3*day)), store.ErrPayloadGone)
	}
	assert.Equal(t, 2, get(t, s, ids[1]).Attempts)
}

func testPurgeBatches(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	const n = 25
	for i := range n {
		publish(t, s, "", fmt.Sprintf("E%d", i), t0, 0, "wh")
	}
	for {
		ms := claim(t, s, t0, 10)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			ack(t, s, m, store.OutcomeDelivered, t0, time.Time{})
		}
	}
	r := purge(t, s, store.PurgePolicy{Delivered: day, Events: day, BatchSize: 4}, t0.Add(2*day))
	assert.Equal(t, store.PurgeResult{Deliveries: n, Attempts: n, Payloads: n, Events: n}, r,
		"small batches still purge everything")
	all, err := s.Deliveries(ctx(t), store.DeliveryFilter{})
	require.NoError(t, err)
	assert.Empty(t, all)
}

func testPurgeChains(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	first := publish(t, s, "", "E1", t0, 0, "wh")
	second := publish(t, s, "", "E1", t0, 0, "wh")
	third := publish(t, s, "", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	require.Equal(t, first, deliveryIDs(ms[0]))
	ack(t, s, ms[0], store.OutcomeDelivered, t0, time.Time{})
	ms = claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	require.Equal(t, second, deliveryIDs(ms[0]))

	r := purge(t, s, store.PurgePolicy{Delivered: time.Hour, Dead: time.Hour}, t0.Add(2*time.Hour))
	assert.Equal(t, 1, r.Deliveries)
	ack(t, s, ms[0], store.OutcomeDelivered, t0.Add(2*time.Hour), time.Time{})
	ms = claim(t, s, t0.Add(2*time.Hour), 10)
	require.Len(t, ms, 1)
	assert.Equal(t, third, deliveryIDs(ms[0]), "the chain goes on after its purged head")
}

func testEraseRecord(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	old := publish(t, s, "acme", "E1", t0, 0, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	require.NoError(t, s.Ack(ctx(t), []store.Result{{MessageID: ms[0].ID, Lease: ms[0].Lease, Now: t0, Outcome: store.OutcomeDelivered,
		Attempt: &store.Attempt{MessageID: ms[0].ID, At: t0, StatusCode: 200, ResponseBody: "hello E1"}}}))
	inFlight := publish(t, s, "acme", "E1", t0, 0, "wh")
	queued := publish(t, s, "acme", "E1", t0, 0, "wh")
	otherKey := publish(t, s, "acme", "E2", t0, 0, "wh")
	otherTenant := publish(t, s, "globex", "E1", t0, 0, "wh")
	ms = claim(t, s, t0, 10)
	require.Len(t, ms, 3)

	r := erase(t, s, store.Erasure{Tenant: "acme", Table: "employee", Key: "E1"}, t0.Add(time.Minute))
	assert.Equal(t, store.ErasureResult{Events: 3, Attempts: 1, Canceled: 2}, r)
	d := get(t, s, old[0])
	assert.Equal(t, store.Delivered, d.Status, "finished deliveries keep their status")
	assert.Equal(t, 1, d.Attempts)
	as, err := s.Attempts(ctx(t), old[0])
	require.NoError(t, err)
	require.Len(t, as, 1)
	assert.Empty(t, as[0].ResponseBody, "attempt bodies are erased")
	assert.Equal(t, 200, as[0].StatusCode, "their log lines stay")
	assert.ErrorIs(t, s.Replay(ctx(t), old[0], t0.Add(time.Minute)), store.ErrPayloadGone)
	for _, id := range []string{inFlight[0], queued[0]} {
		d := get(t, s, id)
		assert.Equal(t, store.Canceled, d.Status, "pending deliveries of the record are canceled")
		assert.Equal(t, store.ErasedReason, d.LastError)
		assert.ErrorIs(t, s.Replay(ctx(t), id, t0.Add(time.Minute)), store.ErrPayloadGone)
	}

	var rs []store.Result
	for _, m := range ms {
		rs = append(rs, store.Result{MessageID: m.ID, Lease: m.Lease, Now: t0.Add(time.Minute), Outcome: store.OutcomeDelivered,
			Attempt: &store.Attempt{MessageID: m.ID, StatusCode: 200}})
	}
	assert.ErrorIs(t, s.Ack(ctx(t), rs), store.ErrLeaseLost, "the erased message's outcome is not recorded")
	assert.Equal(t, store.Canceled, get(t, s, inFlight[0]).Status)
	assert.Equal(t, store.Delivered, get(t, s, otherKey[0]).Status, "other records are untouched")
	assert.Equal(t, store.Delivered, get(t, s, otherTenant[0]).Status, "so is the same key in another tenant")
	assert.Empty(t, claim(t, s, t0.Add(time.Hour), 10), "nothing of the record is sent again")

	fresh := publish(t, s, "acme", "E1", t0.Add(time.Hour), 0, "wh")
	ms = claim(t, s, t0.Add(time.Hour), 10)
	require.Len(t, ms, 1, "a change published after the erasure flows")
	assert.Equal(t, fresh, deliveryIDs(ms[0]))
	assert.NotEmpty(t, ms[0].Events[0].Payload)
}

func testEraseTenant(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	gone1 := publish(t, s, "acme", "E1", t0, 0, "wh")
	gone2 := publish(t, s, "acme", "E2", t0, 0, "wh")
	kept := publish(t, s, "globex", "E1", t0, 0, "wh")
	created, err := s.Enqueue(ctx(t), store.Event{ID: "unmatched", Tenant: "acme", Table: "leave", Op: "INSERT", Key: "L1", Time: t0,
		Payload: json.RawMessage(`{}`)}, nil)
	require.NoError(t, err)
	require.True(t, created)

	r := erase(t, s, store.Erasure{Tenant: "acme"}, t0)
	assert.Equal(t, store.ErasureResult{Events: 3, Canceled: 2}, r)
	for _, id := range []string{gone1[0], gone2[0]} {
		assert.Equal(t, store.Canceled, get(t, s, id).Status)
	}
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	assert.Equal(t, kept, deliveryIDs(ms[0]), "another tenant's work flows")
	assert.NotEmpty(t, ms[0].Events[0].Payload)
	assert.Equal(t, store.ErasureResult{}, erase(t, s, store.Erasure{Tenant: "acme"}, t0), "erasing twice finds nothing more")
}

func testEraseBatchMember(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	a := publish(t, s, "", "E1", t0, 5, "wh")
	b := publish(t, s, "", "E2", t0, 5, "wh")
	c := publish(t, s, "", "E3", t0, 5, "wh")
	ms := claim(t, s, t0, 1)
	require.Len(t, ms, 1)
	batch := ms[0]
	require.Equal(t, []string{a[0], b[0], c[0]}, deliveryIDs(batch))

	r := erase(t, s, store.Erasure{Table: "employee", Key: "E1"}, t0)
	assert.Equal(t, 1, r.Canceled)
	ack(t, s, batch, store.OutcomeRetry, t0, t0.Add(time.Minute))
	assert.Equal(t, store.Canceled, get(t, s, a[0]).Status, "the outcome does not touch the erased member")
	assert.Equal(t, 1, get(t, s, b[0]).Attempts, "it is recorded for the others")

	ms = claim(t, s, t0.Add(time.Minute), 10)
	require.Len(t, ms, 1)
	assert.Equal(t, batch.ID, ms[0].ID, "the batch keeps its id")
	assert.Equal(t, []string{b[0], c[0]}, deliveryIDs(ms[0]), "and goes on without the erased record")
	assert.Equal(t, 2, ms[0].Attempt)
	for _, e := range ms[0].Events {
		assert.NotEmpty(t, e.Payload)
	}

	erase(t, s, store.Erasure{Table: "employee", Key: "E2"}, t0.Add(time.Minute))
	erase(t, s, store.Erasure{Table: "employee", Key: "E3"}, t0.Add(time.Minute))
	assert.ErrorIs(t, s.Ack(ctx(t), []store.Result{{MessageID: ms[0].ID, Lease: ms[0].Lease, Now: t0.Add(time.Minute),
		Outcome: store.OutcomeDelivered, Attempt: &store.Attempt{StatusCode: 200}}}), store.ErrLeaseLost,
		"a batch whose every member was erased is gone")
	assert.Empty(t, claim(t, s, t0.Add(time.Hour), 10))
}

func testEraseValidates(t *testing.T, s store.Store) {
	for _, e := range []store.Erasure{{}, {Table: "employee"}, {Key: "E1"}, {Tenant: "acme", Key: "E1"}} {
		_, err := s.(store.Eraser).Erase(ctx(t), e, t0)
		assert.Error(t, err, "%+v selects nothing sensible", e)
	}
}
