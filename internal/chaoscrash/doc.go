// Package chaoscrash runs the chaos workload of webhooktest in dispatcher
// processes that are killed at seeded moments, and proves that a durable
// store loses nothing across the kills.
//
// # How
//
// The test re-executes its own binary as a child process that opens the
// store, starts a dispatcher, registers the workload's webhooks, publishes
// a share of the workload's changes from several goroutines and delivers
// until nothing is pending. Each child publishes a larger share than the
// one before, from the start: the changes stored before create nothing,
// as with an outbox relay after a crash, and the new ones give it work
// however far the one before it got. The receiver, a chaos receiver that
// misbehaves for a share of requests, is served by the parent, so it
// outlives every child. Each child but the last is armed (package
// internal/failpoint) to SIGKILL itself at a seeded moment: around the
// store write in Publish, after a request was written, after its answer
// was read, or before its outcome is recorded. After each kill the parent
// notes which requests the dead child had sent whose delivery the store
// still holds pending: their outcome died with the process. Then the
// receiver calms down and a last child, without failpoints, delivers what
// is left.
//
// The run then checks what webhooktest's chaos runs check (nothing lost,
// out of order, unsigned, unexpected, dead or stuck, the store in
// agreement, no connection to a refused address) and that every duplicate
// has a cause: a slow body the sender gave up on, an answer later than its
// timeout, or a request in flight at a kill.
//
// # Use
//
// In the store's tests:
//
//	func TestMain(m *testing.M) {
//		chaoscrash.Child(open) // does not return in a child process
//		goleak.VerifyTestMain(m)
//	}
//
//	func TestChaosCrash(t *testing.T) {
//		rep := chaoscrash.Run(t, chaoscrash.Config{Open: open, Addr: path})
//		assert.Empty(t, rep.Failures())
//	}
package chaoscrash
