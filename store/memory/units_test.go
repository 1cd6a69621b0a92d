package memory

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/heraldhr/herald/store"
)

// TestUnitQueueOrder drives a unitQueue with random pushes (mostly in
// order, as enqueues come, some out of order, as retries and replays
// come), removals, changed units and claims, and checks each claim
// against the earliest of the units it holds, found by brute force.
func TestUnitQueueOrder(t *testing.T) {
	seeds, steps := uint64(20), 20_000
	if testing.Short() {
		seeds, steps = 4, 5_000
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 7))
		var q unitQueue
		var queued []*unit // what q should hold
		seq, clock := int64(0), int64(1000)
		newUnit := func() *unit {
			seq++
			due := clock
			switch rng.IntN(10) {
			case 0:
				due += int64(rng.IntN(500)) // a retry, due later
			case 1:
				due -= int64(rng.IntN(500)) // made earlier, queued late
			default:
				clock += int64(rng.IntN(3))
			}
			return &unit{rows: []*row{{seq: seq}}, due: stamp(due), hidx: -1}
		}
		earliest := func() *unit {
			var m *unit
			for _, u := range queued {
				if m == nil || earlier(u, m) {
					m = u
				}
			}
			return m
		}
		for step := range steps {
			switch op := rng.IntN(20); {
			case op < 9:
				u := newUnit()
				q.push(u)
				queued = append(queued, u)
			case op < 11:
				u := newUnit()
				q.pushAside(u)
				queued = append(queued, u)
			case op < 17 && len(queued) > 0:
				want := earliest()
				if got := q.popMin(); got != want {
					t.Fatalf("seed %d step %d: claimed seq %d due %d, want seq %d due %d",
						seed, step, got.rows[0].seq, got.due, want.rows[0].seq, want.due)
				}
				queued = slices.DeleteFunc(queued, func(u *unit) bool { return u == want })
			case op < 19 && len(queued) > 0:
				u := queued[rng.IntN(len(queued))]
				q.remove(u)
				queued = slices.DeleteFunc(queued, func(x *unit) bool { return x == u })
			case len(queued) > 0:
				// A batch loses its first row: its place changes.
				u := queued[rng.IntN(len(queued))]
				seq++
				u.rows[0] = &row{seq: seq}
				q.fix(u)
			}
			if q.len() != len(queued) {
				t.Fatalf("seed %d step %d: len %d, want %d", seed, step, q.len(), len(queued))
			}
			if want := earliest(); q.min() != want {
				t.Fatalf("seed %d step %d: min is not the earliest unit", seed, step)
			}
			checkUnitQueue(t, &q)
		}
		for _, u := range queued {
			if !u.queued() {
				t.Fatalf("seed %d: a queued unit says it is not", seed)
			}
		}
	}
}

// checkUnitQueue checks q's invariants: the run is in order, neither
// starts nor ends with a nil slot, counts its units, and every unit's hidx
// points at its own slot.
func checkUnitQueue(t *testing.T, q *unitQueue) {
	t.Helper()
	live := 0
	var last *unit
	for i := q.head; i < len(q.run); i++ {
		u := q.run[i]
		if u == nil {
			continue
		}
		live++
		if inRun(u.hidx) != q.base+i {
			t.Fatalf("run unit at %d has position %d", q.base+i, inRun(u.hidx))
		}
		if last != nil && earlier(u, last) {
			t.Fatal("the run is out of order")
		}
		last = u
	}
	if live != q.live {
		t.Fatalf("run holds %d units, counts %d", live, q.live)
	}
	if q.live > 0 && (q.run[q.head] == nil || q.run[len(q.run)-1] == nil) {
		t.Fatal("the run starts or ends with a nil slot")
	}
	for i, u := range q.heap {
		if u.hidx != i {
			t.Fatalf("heap unit at %d has hidx %d", i, u.hidx)
		}
	}
}

// TestRetriesLeaveTheRunToNewDeliveries checks, through the store, that
// a delivery retried later waits aside: the deliveries enqueued after it,
// due earlier, still wait in the run, where claims are constant-time.
func TestRetriesLeaveTheRunToNewDeliveries(t *testing.T) {
	ctx := t.Context()
	s := New()
	_, err := s.SaveWebhook(ctx, store.Webhook{ID: "wh", Definition: []byte(`{}`)}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	enqueue := func(i int, at time.Time) {
		e := store.Event{ID: fmt.Sprintf("e%d", i), Key: fmt.Sprintf("k%d", i), Time: at, Payload: []byte(`{}`)}
		d := store.Delivery{ID: fmt.Sprintf("d%d", i), WebhookID: "wh", NextAttempt: at, CreatedAt: at}
		if _, err := s.Enqueue(ctx, e, []store.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		enqueue(i, t0.Add(time.Duration(i)*time.Second))
	}
	ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 1})
	if err != nil || len(ms) != 1 {
		t.Fatalf("claim: %v, %d messages", err, len(ms))
	}
	err = s.Ack(ctx, []store.Result{{MessageID: ms[0].ID, Lease: ms[0].Lease, Outcome: store.OutcomeRetry,
		Now: t0, NextAttempt: t0.Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 20; i++ {
		enqueue(i, t0.Add(time.Duration(i)*time.Second))
	}
	q := s.queues["wh"]
	if len(q.units.heap) != 1 || q.units.live != 19 {
		t.Fatalf("the heap holds %d units and the run %d; want the retry alone in the heap", len(q.units.heap), q.units.live)
	}
}

// TestUnitQueueRetriesStayAside checks that a unit coming back due later
// (a retry) does not end the run: the new units behind it, due earlier,
// still join the run.
func TestUnitQueueRetriesStayAside(t *testing.T) {
	var q unitQueue
	for i := range 10 {
		q.push(&unit{rows: []*row{{seq: int64(i)}}, due: stamp(i), hidx: -1})
	}
	retry := &unit{rows: []*row{{seq: 100}}, due: stamp(1000), hidx: -1}
	q.pushAside(retry)
	for i := 10; i < 20; i++ {
		q.push(&unit{rows: []*row{{seq: int64(i)}}, due: stamp(i), hidx: -1})
	}
	if len(q.heap) != 1 || q.live != 20 {
		t.Fatalf("heap holds %d units, run %d; want the retry alone aside", len(q.heap), q.live)
	}
	for i := range 20 {
		if u := q.popMin(); u.rows[0].seq != int64(i) {
			t.Fatalf("claim %d took seq %d", i, u.rows[0].seq)
		}
	}
	if q.popMin() != retry || q.len() != 0 {
		t.Fatal("the retry is not last, or the queue is not empty")
	}
	checkUnitQueue(t, &q)
}

// TestUnitQueueInOrderStaysInTheRun checks that units pushed in order
// never touch the heap, the case that makes claims constant-time, and
// that a queue pushed and claimed for long keeps a slice the size of its
// backlog, not of all it ever held.
func TestUnitQueueInOrderStaysInTheRun(t *testing.T) {
	var q unitQueue
	for i := range 100_000 {
		q.push(&unit{rows: []*row{{seq: int64(i)}}, due: stamp(i / 10), hidx: -1})
		if i >= 10 {
			if u := q.popMin(); u.rows[0].seq != int64(i-10) {
				t.Fatalf("claimed seq %d, want %d", u.rows[0].seq, i-10)
			}
		}
	}
	if len(q.heap) != 0 {
		t.Fatalf("%d in-order units went to the heap", len(q.heap))
	}
	if q.live != 10 || cap(q.run) > 1024 {
		t.Fatalf("the run holds %d units in a slice of %d", q.live, cap(q.run))
	}
	checkUnitQueue(t, &q)
}
