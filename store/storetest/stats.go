package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
)

// runObservability runs the delivery log tests every store must pass, and
// the tests of the optional store.Counter and store.Requeuer, which skip
// when the store lacks them.
func runObservability(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"LogPagesWithFilters", testLogPagesWithFilters},
		{"LogTimeRangeBounds", testLogTimeRange},
		{"LogCursorSeesNewDeliveries", testLogCursorTail},
		{"CountDeliveries", testCountDeliveries},
		{"RequeueRejoinsChainInOrder", testRequeueInOrder},
		{"RequeueSkips", testRequeueSkips},
		{"RequeueSkipsErasedPayloads", testRequeueSkipsErased},
		{"RequeueIntoBatch", testRequeueBatch},
		{"RequeueBehindLeasedHead", testRequeueLeasedHead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

// pageAll pages through f with the given page size and returns the ids.
func pageAll(t *testing.T, s store.Store, f store.DeliveryFilter, size int) []string {
	t.Helper()
	var ids []string
	f.Limit = size
	for range 1000 {
		page, err := s.Deliveries(ctx(t), f)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), size, "a page respects its limit")
		for i, d := range page {
			ids = append(ids, d.ID)
			if i > 0 {
				require.Less(t, page[i-1].Seq, d.Seq, "a page runs oldest first")
			}
			require.Greater(t, d.Seq, f.After, "a page starts after its cursor")
		}
		if len(page) < size {
			return ids
		}
		f.After = page[len(page)-1].Seq
	}
	t.Fatal("paging did not end")
	return nil
}

func testLogPagesWithFilters(t *testing.T, s store.Store) {
	hook(t, s, "a", false)
	hook(t, s, "b", false)
	// 30 events over 30 minutes, two tenants, three keys, two webhooks.
	for i := range 30 {
		tenant := []string{"acme", "globex"}[i%2]
		publish(t, s, tenant, fmt.Sprintf("E%d", i%3), t0.Add(time.Duration(i)*time.Minute), 0, "a", "b")
	}
	// Some of webhook a's deliveries die: claim and bury every head once.
	for _, m := range claim(t, s, t0.Add(time.Hour), 100) {
		if m.WebhookID == "a" {
			ack(t, s, m, store.OutcomeDead, t0.Add(time.Hour), time.Time{})
		}
	}
	all, err := s.Deliveries(ctx(t), store.DeliveryFilter{})
	require.NoError(t, err)
	require.Len(t, all, 60)

	filters := []store.DeliveryFilter{
		{WebhookID: "a"},
		{WebhookID: "a", Status: store.Dead},
		{WebhookID: "b", Status: store.Pending, Tenant: "globex"},
		{Key: "E1", Tenant: "acme"},
		{WebhookID: "b", Since: t0.Add(10 * time.Minute), Until: t0.Add(20 * time.Minute)},
		{WebhookID: "a", Key: "E2", Since: t0.Add(5 * time.Minute)},
		{EventID: all[10].EventID},
		{Status: store.Delivered},
	}
	for _, f := range filters {
		var want []string
		for _, d := range all {
			if matches(d, f) {
				want = append(want, d.ID)
			}
		}
		for _, size := range []int{1, 4, 7, 100} {
			got := pageAll(t, s, f, size)
			assert.Equal(t, want, got, "filter %+v, pages of %d: every match once, in order", f, size)
		}
	}
	none, err := s.Deliveries(ctx(t), store.DeliveryFilter{After: all[len(all)-1].Seq})
	require.NoError(t, err)
	assert.Empty(t, none, "a cursor at the end finds nothing")
}

// matches is the reference meaning of a DeliveryFilter's fields.
func matches(d store.Delivery, f store.DeliveryFilter) bool {
	return (f.WebhookID == "" || d.WebhookID == f.WebhookID) &&
		(f.EventID == "" || d.EventID == f.EventID) &&
		(f.Status == "" || d.Status == f.Status) &&
		(f.Tenant == "" || d.Tenant == f.Tenant) &&
		(f.Key == "" || d.Key == f.Key) &&
		(f.Since.IsZero() || !d.CreatedAt.Before(f.Since)) &&
		(f.Until.IsZero() || d.CreatedAt.Before(f.Until))
}

func testLogTimeRange(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	at := []time.Time{t0, t0.Add(time.Millisecond), t0.Add(time.Second), t0.Add(time.Hour)}
	var ids []string
	for i, ts := range at {
		ids = append(ids, publish(t, s, "", fmt.Sprintf("E%d", i), ts, 0, "wh")...)
	}
	got := pageAll(t, s, store.DeliveryFilter{Since: t0.Add(time.Millisecond), Until: t0.Add(time.Hour)}, 10)
	assert.Equal(t, ids[1:3], got, "Since is inclusive, Until exclusive")
	got = pageAll(t, s, store.DeliveryFilter{Until: t0.Add(time.Millisecond)}, 10)
	assert.Equal(t, ids[:1], got)
	got = pageAll(t, s, store.DeliveryFilter{Since: t0.Add(2 * time.Hour)}, 10)
	assert.Empty(t, got)
}

func testLogCursorTail(t *testing.T, s store.Store) {
	hook(t, s, "wh", false)
	first := publish(t, s, "", "E1", t0, 0, "wh")
	page, err := s.Deliveries(ctx(t), store.DeliveryFilter{WebhookID: "wh", Limit: 10})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, first[0], page[0].ID)
	later := publish(t, s, "", "E1", t0.Add(time.Minute), 0, "wh")
	page, err = s.Deliveries(ctx(t), store.DeliveryFilter{WebhookID: "wh", After: page[0].Seq, Limit: 10})
	require.NoError(t, err)
	require.Len(t, page, 1, "a cursor kept from the last page finds what was published since")
	assert.Equal(t, later[0], page[0].ID)
}

func testCountDeliveries(t *testing.T, s store.Store) {
	c, ok := s.(store.Counter)
	if !ok {
		t.Skip("the store does not implement store.Counter")
	}
	counts, err := c.CountDeliveries(ctx(t))
	require.NoError(t, err)
	assert.Empty(t, counts, "an empty store counts nothing")

	hook(t, s, "a", false)
	hook(t, s, "b", false)
	hook(t, s, "gone", false)
	for i := range 6 {
		publish(t, s, "", fmt.Sprintf("E%d", i), t0.Add(time.Duration(i)*time.Minute), 0, "a", "b", "gone")
	}
	// a: two delivered, one dead, three pending. b: all pending.
	// gone: deleted, so all canceled.
	n := 0
	for _, m := range claim(t, s, t0.Add(time.Hour), 100) {
		if m.WebhookID != "a" {
			continue
		}
		n++
		switch {
		case n <= 2:
			ack(t, s, m, store.OutcomeDelivered, t0.Add(time.Hour), time.Time{})
		case n == 3:
			ack(t, s, m, store.OutcomeDead, t0.Add(time.Hour), time.Time{})
		default:
			ack(t, s, m, store.OutcomeRetry, t0.Add(time.Hour), t0.Add(2*time.Hour))
		}
	}
	require.Equal(t, 6, n)
	require.NoError(t, s.DeleteWebhook(ctx(t), "gone", t0.Add(time.Hour)))

	counts, err = c.CountDeliveries(ctx(t))
	require.NoError(t, err)
	type key struct {
		webhook string
		status  store.Status
	}
	got := map[key]store.DeliveryCount{}
	for _, dc := range counts {
		k := key{dc.WebhookID, dc.Status}
		_, dup := got[k]
		assert.False(t, dup, "one row per webhook and state: %+v", dc)
		got[k] = dc
	}
	want := map[key]int64{
		{"a", store.Delivered}: 2, {"a", store.Dead}: 1, {"a", store.Pending}: 3,
		{"b", store.Pending}: 6, {"gone", store.Canceled}: 6,
	}
	assert.Len(t, got, len(want))
	for k, n := range want {
		assert.Equal(t, n, got[k].Count, "%s %s", k.webhook, k.status)
	}
	// The heads were claimed oldest first, so a's first three are
	// finished and its oldest pending one was published at minute 3.
	assert.True(t, got[key{"a", store.Pending}].Oldest.Equal(t0.Add(3*time.Minute)), "oldest pending of a: %v", got[key{"a", store.Pending}].Oldest)
	assert.True(t, got[key{"b", store.Pending}].Oldest.Equal(t0), "oldest pending of b: %v", got[key{"b", store.Pending}].Oldest)
	assert.True(t, got[key{"a", store.Delivered}].Oldest.Equal(t0))
}

// requeuer returns the store as a store.Requeuer or skips the test.
func requeuer(t *testing.T, s store.Store) store.Requeuer {
	t.Helper()
	r, ok := s.(store.Requeuer)
	if !ok {
		t.Skip("the store does not implement store.Requeuer")
	}
	return r
}

// bury claims the single due message now and acks it as dead.
func bury(t *testing.T, s store.Store, now time.Time, want []string) {
	t.Helper()
	ms := claim(t, s, now, 10)
	require.Len(t, ms, 1)
	require.Equal(t, want, deliveryIDs(ms[0]))
	ack(t, s, ms[0], store.OutcomeDead, now, time.Time{})
}

func testRequeueInOrder(t *testing.T, s store.Store) {
	rq := requeuer(t, s)
	hook(t, s, "wh", false)
	d1 := publish(t, s, "acme", "E1", t0, 0, "wh")
	d2 := publish(t, s, "acme", "E1", t0, 0, "wh")
	d3 := publish(t, s, "acme", "E1", t0, 0, "wh")
	bury(t, s, t0, d1)
	bury(t, s, t0, d2)
	// d3 is now the head, its retry due in 30s; d4 waits behind it.
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	require.Equal(t, d3, deliveryIDs(ms[0]))
	ack(t, s, ms[0], store.OutcomeRetry, t0, t0.Add(30*time.Second))
	d4 := publish(t, s, "acme", "E1", t0, 0, "wh")
	other := publish(t, s, "acme", "E2", t0, 0, "wh")
	bury(t, s, t0, other)

	now := t0.Add(time.Minute)
	n, err := rq.Requeue(ctx(t), []string{d2[0], other[0], d1[0]}, now)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	for _, id := range []string{d1[0], d2[0]} {
		d := get(t, s, id)
		assert.Equal(t, store.Pending, d.Status)
		assert.Equal(t, 0, d.Attempts, "a fresh attempt count")
		assert.False(t, d.Replayed, "back in its chain, not a replay")
		assert.True(t, d.NextAttempt.Equal(now), "due at once")
	}

	// Key E1: d1, d2, then the former head d3 (due since 30s) and d4, one
	// at a time; E2 flows alongside.
	ms = claim(t, s, now, 10)
	got := map[string]bool{}
	for _, m := range ms {
		got[m.Deliveries[0].ID] = true
	}
	assert.Equal(t, map[string]bool{d1[0]: true, other[0]: true}, got,
		"only the oldest requeued delivery of a key is handed out; the former head waits behind it")
	for _, m := range ms {
		assert.Equal(t, 1, m.Attempt)
		assert.Equal(t, m.Deliveries[0].EventID, m.ID, "sent under its event id again")
		ack(t, s, m, store.OutcomeDelivered, now, time.Time{})
	}
	for i, want := range [][]string{d2, d3, d4} {
		ms = claim(t, s, now, 10)
		require.Len(t, ms, 1, "step %d", i)
		assert.Equal(t, want, deliveryIDs(ms[0]), "step %d", i)
		if i == 1 {
			assert.Equal(t, 2, ms[0].Attempt, "the former head kept its attempt count")
		}
		ack(t, s, ms[0], store.OutcomeDelivered, now, time.Time{})
	}
	assert.Empty(t, claim(t, s, now, 10))
}

func testRequeueSkips(t *testing.T, s store.Store) {
	rq := requeuer(t, s)
	hook(t, s, "wh", false)
	hook(t, s, "gone", false)
	dead := publish(t, s, "", "E1", t0, 0, "wh")
	bury(t, s, t0, dead)
	pending := publish(t, s, "", "E2", t0, 0, "wh")
	canceled := publish(t, s, "", "E3", t0, 0, "gone")
	require.NoError(t, s.DeleteWebhook(ctx(t), "gone", t0))

	n, err := rq.Requeue(ctx(t), []string{pending[0], "missing", canceled[0], dead[0], dead[0]}, t0)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "pending, missing and deleted webhooks' deliveries are skipped; a repeated id counts once")
	assert.Equal(t, store.Canceled, get(t, s, canceled[0]).Status)
	ms := claim(t, s, t0, 10)
	assert.Len(t, ms, 2)

	n, err = rq.Requeue(ctx(t), nil, t0)
	require.NoError(t, err)
	assert.Zero(t, n)
}

// testRequeueSkipsErased: a finished delivery whose payload was erased
// is not requeued (Replay refuses it too: there is nothing to send).
func testRequeueSkipsErased(t *testing.T, s store.Store) {
	rq := requeuer(t, s)
	er, ok := s.(store.Eraser)
	if !ok {
		t.Skip("the store does not implement store.Eraser")
	}
	hook(t, s, "wh", false)
	erased := publish(t, s, "", "E1", t0, 0, "wh")
	bury(t, s, t0, erased)
	kept := publish(t, s, "", "E2", t0, 0, "wh")
	bury(t, s, t0, kept)
	_, err := er.Erase(ctx(t), store.Erasure{Table: "employee", Key: "E1"}, t0)
	require.NoError(t, err)

	n, err := rq.Requeue(ctx(t), []string{erased[0], kept[0]}, t0)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the delivery whose payload is still there")
	assert.Equal(t, store.Dead, get(t, s, erased[0]).Status)
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	assert.Equal(t, kept[0], ms[0].Deliveries[0].ID)
}

func testRequeueBatch(t *testing.T, s store.Store) {
	rq := requeuer(t, s)
	hook(t, s, "wh", false)
	a := publish(t, s, "", "E1", t0, 5, "wh")
	b := publish(t, s, "", "E1", t0, 5, "wh")
	c := publish(t, s, "", "E2", t0, 5, "wh")
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1)
	first := ms[0].ID
	ack(t, s, ms[0], store.OutcomeDead, t0, time.Time{})

	n, err := rq.Requeue(ctx(t), []string{c[0], b[0], a[0]}, t0.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	ms = claim(t, s, t0.Add(time.Minute), 10)
	require.Len(t, ms, 1)
	assert.Equal(t, []string{a[0], b[0], c[0]}, deliveryIDs(ms[0]), "requeued records batch again in order")
	assert.NotEqual(t, first, ms[0].ID, "under a new batch id")
	assert.Equal(t, 1, ms[0].Attempt)
}

func testRequeueLeasedHead(t *testing.T, s store.Store) {
	rq := requeuer(t, s)
	hook(t, s, "wh", false)
	d1 := publish(t, s, "", "E1", t0, 0, "wh")
	bury(t, s, t0, d1)
	d2 := publish(t, s, "", "E1", t0, 0, "wh")
	held := claim(t, s, t0, 10)
	require.Len(t, held, 1)
	require.Equal(t, d2, deliveryIDs(held[0]))

	n, err := rq.Requeue(ctx(t), d1, t0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	ms := claim(t, s, t0, 10)
	require.Len(t, ms, 1, "a later delivery already in flight is not waited for")
	assert.Equal(t, d1, deliveryIDs(ms[0]))
	ack(t, s, held[0], store.OutcomeDelivered, t0, time.Time{})
	ack(t, s, ms[0], store.OutcomeDelivered, t0, time.Time{})
	assert.Equal(t, store.Delivered, get(t, s, d1[0]).Status)
	assert.Equal(t, store.Delivered, get(t, s, d2[0]).Status)
	d3 := publish(t, s, "", "E1", t0, 0, "wh")
	ms = claim(t, s, t0, 10)
	require.Len(t, ms, 1, "the key's chain still flows")
	assert.Equal(t, d3, deliveryIDs(ms[0]))
}
