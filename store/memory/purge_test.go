package memory

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
)

var purgeT0 = time.Unix(1_000_000, 0)

// purgeScenario fills s, from seed, with events of zero to three
// deliveries to two webhooks, some sharing record keys, and finishes some
// of the deliveries at different times as delivered, dead, skipped or
// retried, with response bodies. The same seed makes the same store.
func purgeScenario(t *testing.T, s *Store, seed uint64) {
	t.Helper()
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, id := range []string{"a", "b"} {
		_, err := s.SaveWebhook(ctx, store.Webhook{ID: id, Definition: []byte(`{}`)}, purgeT0)
		require.NoError(t, err)
	}
	n := 0
	for round := range 8 {
		now := purgeT0.Add(time.Duration(round) * 10 * time.Hour)
		for range 60 {
			n++
			e := store.Event{ID: fmt.Sprintf("e%d", n), Tenant: "t", Table: "employee", Key: fmt.Sprintf("k%d", rng.IntN(40)),
				Time: now, Payload: []byte(`{"n":1}`)}
			var ds []store.Delivery
			for j := range rng.IntN(4) {
				ds = append(ds, store.Delivery{ID: fmt.Sprintf("d%d-%d", n, j), WebhookID: []string{"a", "b"}[j%2],
					NextAttempt: now, CreatedAt: now})
			}
			_, err := s.Enqueue(ctx, e, ds)
			require.NoError(t, err)
		}
		ms, err := s.Claim(ctx, store.Claim{Now: now, Lease: time.Minute, Limit: 50})
		require.NoError(t, err)
		rs := make([]store.Result, len(ms))
		for i, m := range ms {
			o := []store.Outcome{store.OutcomeDelivered, store.OutcomeDead, store.OutcomeSkipped, store.OutcomeRetry}[rng.IntN(4)]
			rs[i] = store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: o, Now: now, NextAttempt: now.Add(time.Hour),
				Attempt: &store.Attempt{MessageID: m.ID, At: now, StatusCode: 200, ResponseBody: "ok " + m.ID}}
		}
		require.NoError(t, s.Ack(ctx, rs))
	}
}

// purgeOnePass is Purge as it was, one pass under the lock with maps of
// every event: what the purge in turns must do, turn size aside.
func purgeOnePass(s *Store, p store.PurgePolicy, now time.Time) store.PurgeResult {
	delivered, dead, payloads, events := cutoff(now, p.Delivered), cutoff(now, p.Dead), cutoff(now, p.Payloads), cutoff(now, p.Events)
	s.mu.Lock()
	defer s.mu.Unlock()
	var res store.PurgeResult
	live := map[*store.Event]int{}
	needed := map[*store.Event]bool{}
	kept := s.all[:0]
	for _, r := range s.all {
		var expired bool
		switch r.status {
		case stPending:
			needed[r.ev] = true
		case stDelivered, stSkipped:
			expired = before(r.updated.Time(), delivered)
		default:
			expired = before(r.updated.Time(), dead)
		}
		if expired {
			s.rows.remove(r)
			res.Deliveries++
			res.Attempts += len(r.attempts)
			continue
		}
		kept = append(kept, r)
		live[r.ev]++
		if r.status != stPending {
			if before(r.updated.Time(), payloads) {
				for i := range r.attempts {
					r.attempts[i].ResponseBody = ""
				}
			} else {
				needed[r.ev] = true
			}
		}
	}
	clear(s.all[len(kept):])
	s.all = kept
	for ev := range s.events.values() {
		if ev.Payload != nil && !needed[ev] {
			ev.Payload = nil
			res.Payloads++
		}
		if live[ev] == 0 && before(createdAt(ev), events) {
			s.events.remove(ev)
			res.Events++
		}
	}
	return res
}

// purgeState is what a purge leaves, in a form to compare.
func purgeState(s *Store) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.all {
		var bodies []string
		for _, a := range r.attempts {
			bodies = append(bodies, a.ResponseBody)
		}
		out = append(out, fmt.Sprintf("row %s %s %s", r.id, r.ev.ID, strings.Join(bodies, "|")))
	}
	var evs []string
	for ev := range s.events.values() {
		evs = append(evs, fmt.Sprintf("event %s payload=%t", ev.ID, ev.Payload != nil))
	}
	slices.Sort(evs)
	return append(out, evs...)
}

// TestPurgeInTurnsMatchesOnePass purges stores of random work in turns of
// many sizes, twice each at later times, and checks each purge against
// the single pass under the lock that it replaced: the same counts and
// the same rows, events, payloads and bodies left.
func TestPurgeInTurnsMatchesOnePass(t *testing.T) {
	policies := []store.PurgePolicy{
		{Delivered: 30 * time.Hour, Dead: 50 * time.Hour, Payloads: 20 * time.Hour, Events: 40 * time.Hour},
		{Delivered: time.Hour, Dead: time.Hour, Payloads: time.Hour, Events: time.Hour},
		{Delivered: 30 * time.Hour, Payloads: 10 * time.Hour}, // dead kept, events kept
		{},
	}
	for seed := range uint64(6) {
		for pi, p := range policies {
			for _, batch := range []int{1, 2, 3, 7, 0} {
				p.BatchSize = batch
				got, want := New(), New()
				purgeScenario(t, got, seed)
				purgeScenario(t, want, seed)
				for _, later := range []time.Duration{80 * time.Hour, 200 * time.Hour} {
					now := purgeT0.Add(later)
					res, err := got.Purge(t.Context(), p, now)
					require.NoError(t, err)
					name := fmt.Sprintf("seed %d policy %d batch %d at +%v", seed, pi, batch, later)
					require.Equal(t, purgeOnePass(want, p, now), res, name)
					require.Equal(t, purgeState(want), purgeState(got), name)
				}
			}
		}
	}
}

// TestPurgeLetsOthersInBetweenTurns checks that a purge releases the
// store's lock between its turns, and that what is published meanwhile
// (with deliveries, and without) is kept.
func TestPurgeLetsOthersInBetweenTurns(t *testing.T) {
	s := New()
	purgeScenario(t, s, 1)
	ctx := t.Context()
	turns := 0
	betweenTurns(t, s, func() {
		turns++
		var ds []store.Delivery
		if turns%2 == 0 {
			ds = []store.Delivery{{ID: fmt.Sprintf("new-d%d", turns), WebhookID: "a", NextAttempt: purgeT0, CreatedAt: purgeT0}}
		}
		now := purgeT0.Add(300 * time.Hour)
		_, err := s.Enqueue(ctx, store.Event{ID: fmt.Sprintf("new-e%d", turns), Tenant: "t", Table: "employee",
			Key: "new", Time: now, Payload: []byte(`{}`)}, ds)
		if err != nil {
			t.Error(err)
		}
	})
	now := purgeT0.Add(300 * time.Hour)
	_, err := s.Purge(ctx, store.PurgePolicy{Delivered: time.Hour, Dead: time.Hour, Payloads: time.Hour, Events: time.Hour,
		BatchSize: 5}, now)
	require.NoError(t, err)
	require.Greater(t, turns, 10, "a purge of hundreds of rows in turns of 5")
	for i := 2; i <= turns; i += 2 {
		_, err := s.Delivery(ctx, fmt.Sprintf("new-d%d", i))
		assert.NoError(t, err, "a delivery published during the purge is kept")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 1; i <= turns; i++ {
		_, ok := s.events.get(eventKey{"t", fmt.Sprintf("new-e%d", i)})
		assert.True(t, ok, "an event published during the purge is kept (it is new)")
	}
}

// TestCountDeliveriesInTurns counts more deliveries than a turn holds,
// checks that the lock is free between turns, and that deliveries
// published between turns are counted with the rest.
func TestCountDeliveriesInTurns(t *testing.T) {
	s := New()
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		_, err := s.SaveWebhook(ctx, store.Webhook{ID: id, Definition: []byte(`{}`)}, purgeT0)
		require.NoError(t, err)
	}
	publish := func(id string, webhook string) {
		t.Helper()
		_, err := s.Enqueue(ctx, store.Event{ID: id, Key: id, Time: purgeT0, Payload: []byte(`{}`)},
			[]store.Delivery{{ID: "d-" + id, WebhookID: webhook, NextAttempt: purgeT0, CreatedAt: purgeT0}})
		require.NoError(t, err)
	}
	const n = 2*countBatch + 100
	for i := range n {
		publish(fmt.Sprint("e", i), []string{"a", "b"}[i%2])
	}
	ms, err := s.Claim(ctx, store.Claim{Now: purgeT0, Lease: time.Minute, Limit: 30})
	require.NoError(t, err)
	rs := make([]store.Result, len(ms))
	for i, m := range ms {
		rs[i] = store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDelivered, Now: purgeT0}
	}
	require.NoError(t, s.Ack(ctx, rs))

	turns := 0
	betweenTurns(t, s, func() {
		turns++
		publish(fmt.Sprint("during", turns), "b")
	})
	counts, err := s.CountDeliveries(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, turns, "three turns of at most countBatch")
	got := map[string]int64{}
	for _, c := range counts {
		got[c.WebhookID+" "+string(c.Status)] += c.Count
	}
	assert.Equal(t, map[string]int64{
		"a pending": n/2 - 15, "a delivered": 15,
		"b pending": n/2 - 15 + 2, "b delivered": 15, // two published between the turns
	}, got)
}

// betweenTurns makes s call then between the turns of a purge or a count,
// after checking that the store's lock is free there.
func betweenTurns(t *testing.T, s *Store, then func()) {
	s.turnHook = func() {
		if !s.mu.TryLock() {
			t.Error("the lock is held between turns")
			return
		}
		s.mu.Unlock()
		then()
	}
}
