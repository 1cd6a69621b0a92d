package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// maxCombined bounds how many calls one transaction carries.
const maxCombined = 256

// combiner gathers the hot-path writes (enqueues, claims, outcomes,
// releases) that arrive while the writer connection is busy into one
// transaction, a group commit. With one writer, publishers at the same
// moment otherwise queue for the connection one transaction each, and
// every commit writes each page it touched to the log again: the shared
// pages (the tails of the tables and of their indexes) are written once
// per transaction, not once per call.
//
// There is no waiting for company: a call that finds nothing in flight
// runs at once, alone, as it always did. Calls that arrive while a
// transaction is in flight queue, and when it ends the first of them runs
// the next transaction for all of them; each call runs at most the one
// transaction that carries it, so none serves the others indefinitely.
//
// Each call in a shared transaction sees the writes of the calls before
// it, exactly as if they had committed one after the other, and every
// call returns once its writes committed. The calls on this path fail
// only when the database refuses what they write (input that passed
// validation, such as a delivery id already taken) or fails itself, so
// the transaction takes no savepoint per call, which would cost every
// call two statements and a copy of each page it first touches: when a
// call fails, or the commit does, the whole transaction is rolled back
// and each of its calls runs again alone, in order, and gets the answer
// it would have had alone.
type combiner struct {
	mu      sync.Mutex
	queue   []*writeOp
	running bool // a transaction is in flight, or about to be

	shared atomic.Int64 // transactions that carried more than one call
	undone atomic.Int64 // shared transactions rolled back, their calls run alone
}

// Op states: a queued op is run by the leader that moves it to opRunning,
// or left by a caller whose context ended first (opLeft).
const (
	opQueued int32 = iota
	opRunning
	opLeft
)

// writeOp is one call waiting in a combiner.
type writeOp struct {
	ctx context.Context // the caller's: checked before the op runs, never given to SQLite
	// run does the call's writes in tx. It uses ctx, the transaction's own
	// context, not the caller's: a statement interrupted by a cancelled
	// context makes SQLite roll back the whole transaction, the other
	// calls' writes with it. That context cannot be cancelled (see
	// sqlCtx). run may be called again, in a new transaction, after a
	// failed one.
	run   func(ctx context.Context, tx *sql.Tx) error
	err   error
	state atomic.Int32

	done     chan struct{} // closed once err is set
	lead     chan struct{} // closed when this call is to run the next transaction
	promoted bool          // lead is closed (under the combiner's lock)
}

// add queues op and reports whether its caller is to run the next
// transaction at once.
func (c *combiner) add(op *writeOp) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, op)
	if c.running {
		return false
	}
	c.running = true
	return true
}

// take removes the next transaction's calls from the queue.
func (c *combiner) take() []*writeOp {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(c.queue), maxCombined)
	batch := slices.Clone(c.queue[:n])
	c.queue = slices.Delete(c.queue, 0, n)
	return batch
}

// next hands the running of the next transaction to the first call
// queued, if any.
func (c *combiner) next() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.running = false
		return
	}
	op := c.queue[0]
	op.promoted = true
	close(op.lead)
}

// leave lets op's caller go when its context ended: it removes op from
// the queue, or marks it so that the transaction that took it passes it
// by, and reports whether it did. It refuses when op was asked to run the
// next transaction or has started.
func (c *combiner) leave(op *writeOp) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if op.promoted {
		return false
	}
	if i := slices.Index(c.queue, op); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
		return true
	}
	return op.state.CompareAndSwap(opQueued, opLeft)
}

// combined runs fn in a write transaction, shared with the calls that
// wait at the same moment (see combiner). It returns fn's error, or the
// transaction's, once fn's writes are committed or undone. A call whose
// ctx ends before its turn comes returns ctx.Err() without running fn.
func (s *Store) combined(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, run: fn, done: make(chan struct{}), lead: make(chan struct{})}
	if s.combine.add(op) {
		s.runCombined(ctx)
	} else {
		select {
		case <-op.done:
		case <-op.lead:
			s.runCombined(ctx)
		case <-ctx.Done():
			if s.combine.leave(op) {
				return ctx.Err()
			}
			// Running, or asked to run the next transaction: see it
			// through, since the calls behind depend on it.
			select {
			case <-op.done:
			case <-op.lead:
				s.runCombined(ctx)
			}
		}
	}
	<-op.done
	return op.err
}

// runCombined runs one transaction for the calls at the head of the
// queue, then hands the next one on.
func (s *Store) runCombined(ctx context.Context) {
	ctx = sqlCtx(ctx)
	batch := s.combine.take()
	s.writeCombined(ctx, batch)
	s.combine.next()
	for _, op := range batch {
		close(op.done)
	}
}

// start moves op from queued to running, unless its caller left or its
// context ended; it reports whether op is to run.
func start(op *writeOp) bool {
	if !op.state.CompareAndSwap(opQueued, opRunning) {
		return false // its caller has gone
	}
	if err := op.ctx.Err(); err != nil {
		op.err = err
		return false
	}
	return true
}

// writeCombined runs the calls of batch in one transaction and sets each
// call's error.
func (s *Store) writeCombined(ctx context.Context, batch []*writeOp) {
	live := make([]*writeOp, 0, len(batch))
	for _, op := range batch {
		if start(op) {
			live = append(live, op)
		}
	}
	switch len(live) {
	case 0:
		return
	case 1:
		s.writeAlone(live[0])
		return
	}
	tx, err := s.begin(ctx)
	if err != nil {
		for _, op := range live {
			op.err = fmt.Errorf("sqlite: %w", err)
		}
		return
	}
	s.combine.shared.Add(1)
	failed := false
	for _, op := range live {
		if err := op.run(ctx, tx); err != nil {
			failed = true
			break
		}
	}
	s.end(tx)
	if !failed {
		if err := tx.Commit(); err == nil {
			s.prepareWanted(ctx)
			return
		}
	} else {
		_ = tx.Rollback()
	}
	// Nothing of the transaction is stored. Each call runs again alone
	// and gets the answer it would have had alone.
	s.combine.undone.Add(1)
	for _, op := range live {
		s.writeAlone(op)
	}
}

// writeAlone runs op in a transaction of its own: the transaction
// carries nobody else's writes. Like a shared one, it runs to its end once
// begun, whatever becomes of its caller's context (see sqlCtx).
func (s *Store) writeAlone(op *writeOp) {
	ctx := sqlCtx(op.ctx)
	op.err = s.write(ctx, func(tx *sql.Tx) error { return op.run(ctx, tx) })
}

// sqlCtx returns the context the hot path's transactions run under: ctx's
// values, never its end. modernc.org/sqlite watches a context that can
// end with a goroutine of its own for every statement, BEGIN and COMMIT
// included, and installs a progress handler for it; on a transaction of a
// few statements, that costs more than the statements. Nothing here can
// wait without bound: a call whose context ended before its transaction
// began returns without running (see start), and a wait for another
// connection's write lock ends at the busy timeout.
func sqlCtx(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}
