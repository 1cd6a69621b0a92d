package memory

import "container/heap"

// unitQueue holds a webhook's claimable units, earliest first (earlier).
//
// Most units are new deliveries, enqueued as changes come, each due when
// it was made: they arrive in order. Those wait in a run, a slice already
// in order, taken from its front in constant time however long the
// backlog. Units that come back (a retry, a released or expired lease, a
// replay, a chain's next head) wait in a heap instead, which holds only
// those, and so does a new one that arrives out of order. A retry due
// later must not end the run: every new delivery behind it, due earlier,
// would then go to the heap. The earliest unit is the earlier of the two
// fronts.
//
// With a binary heap alone, a claim from a backlog of a million followed
// a path of some twenty units scattered over the heap, each a likely
// cache miss, and took more than twice as long as from a thousand
// (BenchmarkClaimBacklog).
//
// A unit's hidx says where it is: an index in the heap when 0 or more, -1
// when not queued, and a position in the run (base + index) encoded as
// -2 - position otherwise. A unit taken out of the run leaves a nil slot;
// the run never starts or ends with one.
type unitQueue struct {
	run  []*unit // in order of earlier, with nil slots
	head int     // index of the run's first unit
	base int     // position of run[0]
	live int     // units in the run
	heap unitHeap
}

// inRun turns a run position into hidx and back.
func inRun(pos int) int { return -2 - pos }

func (q *unitQueue) len() int { return q.live + len(q.heap) }

// min returns the earliest unit, or nil when there is none.
func (q *unitQueue) min() *unit {
	switch {
	case q.live == 0 && len(q.heap) == 0:
		return nil
	case q.live == 0:
		return q.heap[0]
	case len(q.heap) == 0:
		return q.run[q.head]
	}
	if r, h := q.run[q.head], q.heap[0]; earlier(h, r) {
		return h
	}
	return q.run[q.head]
}

// push queues u, a new delivery's unit that is not queued: at the end of
// the run when it comes in order, else in the heap.
func (q *unitQueue) push(u *unit) {
	if q.live > 0 && earlier(u, q.run[len(q.run)-1]) {
		heap.Push(&q.heap, u)
		return
	}
	u.hidx = inRun(q.base + len(q.run))
	q.run = append(q.run, u)
	q.live++
}

// pushAside queues u, which is not queued and comes back, in the heap.
func (q *unitQueue) pushAside(u *unit) { heap.Push(&q.heap, u) }

// popMin takes the earliest unit out and returns it; there must be one.
func (q *unitQueue) popMin() *unit {
	u := q.min()
	q.remove(u)
	return u
}

// remove takes u, which is queued, out.
func (q *unitQueue) remove(u *unit) {
	if u.hidx >= 0 {
		heap.Remove(&q.heap, u.hidx) // sets u.hidx to -1
		return
	}
	i := inRun(u.hidx) - q.base
	q.run[i] = nil
	u.hidx = -1
	q.live--
	if q.live == 0 {
		clear(q.run)
		q.base += len(q.run)
		q.run, q.head = q.run[:0], 0
		return
	}
	for q.run[q.head] == nil {
		q.head++
	}
	for q.run[len(q.run)-1] == nil {
		q.run = q.run[:len(q.run)-1]
	}
	// Move the run to the slice's start once most of the slice lies
	// before it: fewer units move than were taken out since the last
	// move, so a removal pays for one move at most.
	if q.head > 32 && q.head >= len(q.run)/2 {
		n := copy(q.run, q.run[q.head:])
		clear(q.run[n:])
		q.run = q.run[:n]
		q.base += q.head
		q.head = 0
	}
}

// fix puts u, which is queued, where it now belongs: its rows changed.
func (q *unitQueue) fix(u *unit) {
	q.remove(u)
	q.pushAside(u)
}

// queued reports whether u waits in its webhook's queue.
func (u *unit) queued() bool { return u.hidx != -1 }
