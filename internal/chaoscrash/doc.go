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
// After each child ends, the parent waits until the receiver has read and
// answered every request the child wrote (ChaosReceiver.Quiesce), so each
// is counted for the child that sent it. Each child logs its leases to a
// file the parent reads (webhooktest.LeaseLog): which it was given, which
// it let go, and which outcomes the store refused for a lost lease.
//
// The run then checks what webhooktest's chaos runs check (nothing lost,
// out of order, unsigned, unexpected, dead or stuck, the store in
// agreement, no connection to a refused address) and that every duplicate
// has a cause: a slow body the sender gave up on, an answer later than its
// timeout, a request in flight at a kill (its delivery pending after the
// kill, or sent under a lease the killed child never let go), or a lease
// that ran out before the outcome was recorded. An outcome lost any other
// way fails the run. Should the run fail, the children's warnings are
// logged.
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
