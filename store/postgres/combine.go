package postgres

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/heraldhr/herald/store"
)

// maxCombined bounds how many Enqueue calls one statement carries.
const maxCombined = 256

// combiner joins Enqueue calls that run at the same time into one
// statement and one commit. Every commit costs the server far more than
// the row it adds, and with many publishers at once the commits are most
// of what publishing costs.
//
// There is no waiting for company: a call that finds nothing in flight
// runs at once, alone. Calls that arrive while a statement is in flight
// queue, and when it returns, the first of them runs the next statement
// for all of them; each call runs at most the one statement that carries
// it, so none serves the others indefinitely. Every call returns once its
// rows have committed, as it would alone. If a combined statement fails,
// each of its calls is run again alone, so one call's bad data fails that
// call only.
type combiner struct {
	mu      sync.Mutex
	queue   []*pendingEnqueue
	running bool // a statement is in flight, or about to be
}

// pendingEnqueue is one Enqueue call waiting in a combiner.
type pendingEnqueue struct {
	e        store.Event
	ds       []store.Delivery
	made     bool
	err      error
	done     chan struct{} // closed once made and err are set
	lead     chan struct{} // closed when this call is to run the next statement
	promoted bool          // lead is closed (under the combiner's lock)
}

// add queues p and reports whether its caller is to run the next
// statement at once.
func (c *combiner) add(p *pendingEnqueue) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, p)
	if c.running {
		return false
	}
	c.running = true
	return true
}

// take removes the next statement's calls from the queue.
func (c *combiner) take() []*pendingEnqueue {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(c.queue), maxCombined)
	batch := slices.Clone(c.queue[:n])
	c.queue = slices.Delete(c.queue, 0, n)
	return batch
}

// next hands the running of the next statement to the first call queued,
// if any.
func (c *combiner) next() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.running = false
		return
	}
	p := c.queue[0]
	p.promoted = true
	close(p.lead)
}

// withdraw removes p from the queue if it is still there and was not
// asked to run a statement, and reports whether it did.
func (c *combiner) withdraw(p *pendingEnqueue) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.promoted {
		return false
	}
	i := slices.Index(c.queue, p)
	if i < 0 {
		return false
	}
	c.queue = slices.Delete(c.queue, i, i+1)
	return true
}

// Enqueue stores an event and its deliveries, unless the event exists.
// Calls made at the same time share a statement and a commit (see
// combiner); each returns once its rows are committed.
func (s *Store) Enqueue(ctx context.Context, e store.Event, ds []store.Delivery) (bool, error) {
	if err := checkEvent(e, ds); err != nil {
		return false, err
	}
	p := &pendingEnqueue{e: e, ds: ds, done: make(chan struct{}), lead: make(chan struct{})}
	if s.combine.add(p) {
		s.runCombined(ctx)
	} else {
		select {
		case <-p.done:
		case <-p.lead:
			s.runCombined(ctx)
		case <-ctx.Done():
			if s.combine.withdraw(p) {
				return false, ctx.Err()
			}
			// Already in a statement, or asked to run one: see it through,
			// since the calls behind depend on it.
			select {
			case <-p.done:
			case <-p.lead:
				s.runCombined(ctx)
			}
		}
	}
	<-p.done
	return p.made, p.err
}

// runCombined runs one statement for the calls at the head of the queue,
// then hands the next one on. It does not stop for the context of the
// call that runs it (the others' calls ride on it), but gives up after a
// minute.
func (s *Store) runCombined(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	batch := s.combine.take()
	s.enqueueCombined(ctx, batch)
	s.combine.next()
	for _, p := range batch {
		close(p.done)
	}
}

func (s *Store) enqueueCombined(ctx context.Context, batch []*pendingEnqueue) {
	if len(batch) == 1 {
		p := batch[0]
		p.made, p.err = s.enqueue(ctx, pgxQ{s.pool}, p.e, p.ds, false)
		return
	}
	es := make([]store.EventWithDeliveries, len(batch))
	for i, p := range batch {
		es[i] = store.EventWithDeliveries{Event: p.e, Deliveries: p.ds}
	}
	made, err := s.enqueueMany(ctx, pgxQ{s.pool}, es, false)
	if err == nil {
		for i, p := range batch {
			p.made = made[i]
		}
		return
	}
	for _, p := range batch {
		p.made, p.err = s.enqueue(ctx, pgxQ{s.pool}, p.e, p.ds, false)
	}
}
