// Package sqlite is a durable herald store in one SQLite file, on
// modernc.org/sqlite (pure Go, no cgo). It is the choice for a single
// process that must not lose a change: what Publish stored survives a
// crash of the process, and a restarted dispatcher delivers it.
//
// # Use
//
//	st, err := sqlite.Open(ctx, "/var/lib/hr/herald.db", sqlite.Options{})
//	if err != nil { ... }
//	defer st.Close()
//	d, err := webhook.New(webhook.Config{Store: st})
//
// Open creates the file when needed and applies the embedded migrations
// (see Migrate and Migrations). Give it a path on a local disk: WAL mode
// needs shared memory, which network file systems do not provide.
//
// # Publishing inside your transaction
//
// When your records live in the same file, publish in the transaction
// that changes them, so the change and its webhooks commit or roll back
// together:
//
//	tx, err := st.BeginTx(ctx, nil) // on the store's writer connection
//	if err != nil { ... }
//	defer tx.Rollback()
//	// ... tx.ExecContext(ctx, "UPDATE employee SET department = ? WHERE id = ?", ...) ...
//	if _, err := d.PublishTx(ctx, sqlite.Tx(tx), change); err != nil { ... }
//	err = tx.Commit()
//
// A transaction of your own *sql.DB on the same file (OpenDB gives one
// with the store's settings) works too, at the cost of a file check and
// of preparing the store's statements once per transaction. A
// transaction on another file, or of another store, is refused with an
// error wrapping store.ErrForeignTx. Publishing the same change id again
// in a transaction does not fail it (the event is inserted with ON
// CONFLICT DO NOTHING). Deliveries published in a transaction of BeginTx
// or of OpenDB wake the workers as soon as it commits; in a transaction
// of a *sql.DB opened otherwise, or in another process, within
// Options.WatchInterval of the commit.
//
// # Durability and concurrency
//
// The file runs in WAL mode with synchronous=NORMAL and a busy timeout: a
// committed change survives a crash of the process; after a power loss the
// last commits may be missing, never half-written. The store writes
// through one connection, so its own writes never contend with each
// other; reads use a pool and do not wait for writes. Your own
// connections write to the same file under SQLite's single-writer lock and
// wait up to the busy timeout for it. Claims and acknowledgements are
// batched: one transaction claims or records a whole batch. Enqueues,
// claims, acknowledgements and releases that arrive while the writer is
// busy share its next transaction (a group commit); a call made while the
// writer is idle runs at once, alone. Every call still gets its own
// answer: when one call of a shared transaction fails, the transaction is
// rolled back and its calls run again one by one. A call whose context
// ends while it waits for its turn returns the context's error and
// writes nothing; once its transaction has begun, it runs to the end (a
// wait for another connection's lock ends at the busy timeout).
//
// A Store copies what its writer connection commits (its own writes, and
// the transactions BeginTx hands out) from the write-ahead log into the
// database file in the background, on a connection of its own, a tenth of
// a second after the commit (a PASSIVE checkpoint, which waits for no
// one). The writer's own checkpoint, when the log reaches 8,000 pages,
// then finds little left to copy, and the writes queued behind it no
// longer wait for thousands of pages and a sync of the file.
//
// One process per file is the intended shape. Several processes may share
// a file (they serialise on its write lock and see each other's work), but
// for dispatchers on several machines use the Postgres store.
//
// # Retention and erasure
//
// The store implements store.Retainer and store.Eraser. Purge deletes in
// transactions of a bounded number of rows, so workers are never held off
// for long. Erase cancels the selected pending deliveries in one
// transaction, erases payloads and attempt bodies in batches, then
// checkpoints the write-ahead log. secure_delete is on, so erased and
// deleted content is overwritten in the database file rather than left in
// free pages, and after the checkpoint it is not in the log either
// (backups you took before are yours to handle). When a reader keeps the
// checkpoint from emptying the log past the busy timeout, Erase says so
// in its error; erasing again finishes the job.
//
// # Recovery in order and the audit trail
//
// The store implements store.Requeuer, so Dispatcher.Recover puts
// recovered deliveries back into their records' chains, in one write
// transaction per page, and store.Auditor (migration 2 adds the table of
// the trail).
//
// # Differences from the memory store
//
// A delivery enqueued for a webhook that no longer exists is stored as
// canceled (the webhook was deleted between matching and storing), and a
// delivery whose webhook was deleted cannot be replayed (ErrNotFound):
// there is nowhere to send it. Requeue skips deliveries whose payload was
// purged or erased, as Replay refuses them, and counts a lease that ran
// out as gone at once (the memory store notices at its next claim), so the
// delivery it covered waits behind a requeued earlier one. A requeued
// delivery of a batching webhook that would stand before a lone delivery
// in flight (the webhook stopped batching meanwhile) waits for it, since a
// batch gathered around it would take that one too.
package sqlite
