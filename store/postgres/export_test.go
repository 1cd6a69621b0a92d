package postgres

import (
	"context"

	"github.com/heraldhr/herald/store"
)

// Query texts, for the tests that show their plans.
func (s *Store) PickSQL() string       { return s.q.pick }
func (s *Store) PromoteSQL() string    { return s.q.promote }
func (s *Store) SuccessorsSQL() string { return s.q.successors }
func (s *Store) LeaseSQL() string      { return s.q.lease }

// EnqueueTogether runs the given calls as one combined statement and
// returns each call's outcome.
func (s *Store) EnqueueTogether(ctx context.Context, es []store.EventWithDeliveries) ([]bool, []error) {
	batch := make([]*pendingEnqueue, len(es))
	for i, x := range es {
		batch[i] = &pendingEnqueue{e: x.Event, ds: x.Deliveries}
	}
	s.enqueueCombined(ctx, batch)
	made, errs := make([]bool, len(es)), make([]error, len(es))
	for i, p := range batch {
		made[i], errs[i] = p.made, p.err
	}
	return made, errs
}

// HoldCombiner makes Enqueue calls queue as if a statement were in
// flight, until release.
func (s *Store) HoldCombiner() (release func()) {
	s.combine.mu.Lock()
	s.combine.running = true
	s.combine.mu.Unlock()
	return func() {
		s.combine.mu.Lock()
		s.combine.running = false
		s.combine.mu.Unlock()
	}
}

// CombinerQueued is how many Enqueue calls wait in the combiner.
func (s *Store) CombinerQueued() int {
	s.combine.mu.Lock()
	defer s.combine.mu.Unlock()
	return len(s.combine.queue)
}

// Wakes reports whether a notification payload wakes the store's
// subscribers; WakeTag is the payload of its own wake-ups.
func (s *Store) Wakes(payload string) bool { return s.wakes(payload) }
func (s *Store) WakeTag() string           { return s.wakeTag }

// PickFastSQL is the query text of the small claim statement.
func (s *Store) PickFastSQL() string { return s.q.pickFast }
