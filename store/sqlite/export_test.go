package sqlite

// Queued returns how many calls wait for a shared transaction, and
// whether a transaction of calls is in flight.
func (s *Store) Queued() (n int, running bool) {
	s.combine.mu.Lock()
	defer s.combine.mu.Unlock()
	return len(s.combine.queue), s.combine.running
}

// SharedTransactions returns how many transactions carried more than one
// call, and how many of them were rolled back for their calls to run
// alone.
func (s *Store) SharedTransactions() (shared, undone int64) {
	return s.combine.shared.Load(), s.combine.undone.Load()
}

// ForeignTransactions returns how many transactions of other *sql.DBs the
// store still keeps track of.
func (s *Store) ForeignTransactions() int {
	n := 0
	s.foreign.Range(func(any, any) bool { n++; return true })
	return n
}

// WriterWaits returns how many times a call waited for the writer
// connection, held by a transaction.
func (s *Store) WriterWaits() int64 {
	return s.w.Stats().WaitCount
}

// Statements holds the SQL of the hot path, for the benchmarks that run
// it without the store's Go code around it.
var Statements = struct {
	InsertEvent, InsertDelivery            string
	ReadyWebhooks, DueHeads, SetLeases     string
	LeaseHeads, ApplyOutcome, PromoteHeads string
	InsertAttempts                         func(n int) string
}{insertEvent, insertDelivery, readyWebhooks, dueHeads, setLeases, leaseHeads, applyOutcome, promoteHeads, insertAttempts}

// WillNotify reports whether the commit of the transaction open on the
// writer, or of one of OpenDB on the file, is to wake the subscribers.
func (s *Store) WillNotify() (own, foreign bool) {
	return s.ownEnqueued.Load(), s.foreignEnqueued.Load()
}
