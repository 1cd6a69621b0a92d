// Package postgres is a herald store on PostgreSQL (pgx/v5). It keeps
// webhooks, events, deliveries and attempts in a schema of the
// application's own database, so a record change and its webhook
// deliveries commit together, and any number of dispatcher processes on
// any number of machines share one queue. It needs PostgreSQL 13 or later.
//
//	pool, _ := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	st, err := postgres.New(pool, postgres.Options{Schema: "herald"})
//	if err != nil { ... }
//	if err := st.Migrate(ctx); err != nil { ... } // at every start; a no-op when current
//	d, err := webhook.New(webhook.Config{Store: st})
//
// # Migrations
//
// The schema is created and versioned by embedded SQL migrations
// (migrations/NNNN_name.up.sql and .down.sql). [Store.Migrate] applies
// every migration not yet applied, in one transaction, under an advisory
// lock, so processes starting together take turns and the later ones do
// nothing. [Store.Applied] lists what a schema has, [Migrations] what this
// version of herald knows, and [Store.MigrateTo] moves up or down to a
// version (0 removes herald's tables and keeps the schema, which may hold
// the application's own). Applications that run their own migration tool
// can copy the files: {schema} stands for the quoted schema name.
//
// Every dispatcher sharing a schema must run a version of herald that
// knows the schema's migrations: migrate with the older processes stopped.
// Migration 4, for one, changes how a claim finds a record's next
// delivery; it drops the function that older versions call to claim, so
// they fail instead of sending out of order.
//
// # Schema
//
// All names are qualified with the schema given in [Options] (default
// "herald"), quoted, so any name works and herald never depends on the
// connection's search_path.
//
//   - webhooks: one row per definition (the definition itself is JSONB);
//     meta holds the definitions' version, a counter row updated in the
//     same statement as every save or delete, so a reader never sees the
//     version move before the change that moved it has committed.
//   - events: one row per published change, keyed by (tenant, id). Publish
//     inserts with ON CONFLICT DO NOTHING: repeating a change creates
//     nothing, and never aborts the caller's transaction.
//   - deliveries: one row per (event, webhook), numbered by an identity
//     column (seq) that orders each record's line. Column phase says where
//     a pending delivery stands: new (published; under a lease, in flight
//     for the first time), head (its record's delivery in flight or held
//     back: retried, postponed, or moved up after the one before it),
//     waiting (behind its record's head) or replayed (outside every line);
//     it is NULL once the delivery is finished.
//   - attempts: one row per request made, with its status, latency,
//     masked request headers and the start of the answer. No foreign key
//     ties it to deliveries (from migration 5): an ack writes attempts only
//     for the deliveries it has just updated, and purging deletes a
//     delivery's attempts in the statement that deletes the delivery.
//
// # Transactions
//
// [Tx] wraps a pgx.Tx and [SQLTx] a database/sql transaction opened with
// the pgx driver (github.com/jackc/pgx/v5/stdlib); pass either to
// Dispatcher.PublishTx or PublishManyTx. The deliveries exist when, and
// only when, the transaction commits; a rollback leaves nothing. A store
// refuses another store's transaction with store.ErrForeignTx.
//
// Publishing only inserts rows: it takes no lock that herald's own work
// waits for, and waits for none of herald's, so a long import transaction
// holds up nothing but itself. The one wait is the idempotency key: two
// transactions publishing the same change id at once queue on it, as any
// unique key does. (The NOTIFY a transaction sends is the exception: see
// Notifications.)
//
// Order within a record follows the sequence at which deliveries were
// inserted, among those committed when the record's next delivery is
// chosen; one that commits after a later delivery of its record was sent
// goes after it. Two transactions that publish changes of the same record
// concurrently, without locking that record's row, are therefore not
// ordered with respect to each other; an application that updates the
// row before publishing (UPDATE, or SELECT ... FOR UPDATE) gets its commit
// order.
//
// # Notifications
//
// Every enqueue, release, replay and definition change sends a NOTIFY on
// channel "herald" with the schema name as payload, delivered once what
// it announces has committed. [Store.Subscribe] (the store.Notifier the
// dispatcher uses) listens on a connection of its own, opened from the
// pool's configuration, reconnects with backoff when it fails, and
// coalesces signals. Signals are only hints: the dispatcher still polls
// (Config.PollInterval), so a lost connection delays work by at most a
// poll interval. Behind a transaction-pooling proxy such as PgBouncer,
// LISTEN does not work; give the store a pool whose configuration
// connects to PostgreSQL directly, or rely on polling.
//
// PostgreSQL makes every transaction that notifies hold a database-wide
// lock from just before its commit until the commit has been flushed, so
// notifying transactions commit one at a time. Enqueues in the store's
// own transactions (Publish, PublishMany) therefore commit without a
// NOTIFY and ask for one afterwards: a single goroutine sends wake-ups in
// short transactions of their own, committed asynchronously, answering
// every ask that arrived while the previous one was on its way, and ends
// when none is owed ([Store.Close] waits for it). Inside a caller's
// transaction (PublishTx) the NOTIFY is part of that transaction, since
// only its commit may announce the deliveries; at hundreds of publishing
// transactions per second the lock becomes the limit of how fast they
// commit.
//
// # Claims and indexes
//
// A claim is one transaction that never waits for a lock, and any number
// of claimers run at once; there is no shared lock between them. It starts
// with one statement that
//
//  1. finds due deliveries: the webhooks with work (a skip scan of the
//     claim index), then each enabled webhook's earliest due deliveries
//     that nobody holds, locked as they are read (FOR NO KEY UPDATE SKIP
//     LOCKED), in turns across webhooks, so one webhook's backlog cannot
//     starve another's;
//  2. decides for each of their records (webhook, tenant, key): a record
//     with a head sends the head (when it is due) and nothing else, and
//     its new deliveries are filed behind it (they become waiting, which
//     takes them out of the claim index); a record without a head sends its
//     earliest new delivery;
//  3. locks every row that decision read, but only if the row is still
//     the version the statement read (same xmin), and leaves alone, until
//     the next claim, a record any of whose rows fails. That is what keeps
//     two claimers, each with its own snapshot, from sending two deliveries
//     of one record: snapshots only grow, so of two claimers looking at a
//     record the one that saw less saw a subset, its choice included, and
//     the other locks that row too; and a claimer that saw no head read, as
//     new, the row that has since become the head;
//  4. leases the lone deliveries and returns them with their events.
//     Leasing a new delivery sets only its lease columns, which are in no
//     index, so the update can be HOT: the delivery is written once to be
//     leased and once to be finished.
//
// Most claims never run that statement. Usually each due delivery is
// alone in its record's line (records seldom change twice while one
// delivery is out), and for such a line the decision is to send it, having
// read and locked that row only. A claim first runs a much smaller
// statement (fastPickSQL) that finds and locks due deliveries the same way
// and leases those that are a replay, or their line's only new delivery
// with no head (two index probes each); it counts the due deliveries it
// leaves undecided, and only then does the full statement run, for those.
// Most of what a small claim cost the server was setting up the full
// statement's plan, whatever the number of rows. After a claim that had
// to fall back, the next starts with the full statement.
//
// Each statement is a transaction of its own, sent in one round trip with
// its BEGIN and COMMIT. The claim commits without waiting for its WAL to
// reach the disk: a crash that loses it loses leases and filings only,
// which the deliveries' next claim redoes, and any later commit that does
// wait (an ack, an enqueue) flushes the WAL past it first.
//
// Batches need their rows held from the pick to the lease, so when a pick
// saw a batching webhook's work, a transaction of its own claims it: the
// pick again, then for each batch further records' next deliveries, each
// followed by the due ones behind it, up to MaxBatch, whose members and
// UUIDv7 id are fixed then; a retry sends the same members under the same
// id. The lease and COMMIT go in one round trip.
//
// Waiting deliveries are in no claim index, so a long line behind a
// failing record costs a claim nothing once filed; a claim that files
// deliveries and finds too few to send looks again over a wider window, so
// a burst of new deliveries behind failing records is filed in a few
// rounds (up to [Options].FileBatch per claim), not one record per claim.
// The plans, from TestClaimPlansWithLargeBacklog (go test -v -run Plans),
// with 50,000 deliveries waiting behind heads that retry in an hour and
// 5,000 new ones behind those heads:
//
//	claim of 10 (0.9 ms; 5 sent, 5 new deliveries filed behind heads):
//	  Index Only Scan using deliveries_due         -- webhooks with work: skip scan
//	  LockRows / Index Scan using deliveries_due  -- each webhook's earliest due, locked as read
//	  Index Scan using deliveries_head            -- each record's head
//	  Index Scan using deliveries_new_by_record   -- and its new deliveries
//	  LockRows / Index Scan using deliveries_pkey -- every row read, if unchanged
//	  Update by deliveries_pkey (filed), by deliveries_pkey and events_pkey (leased)
//
//	the same over a window of 1,000 records, filing 1,000: about 30 ms
//
//	promotion after an ack (0.06 ms):
//	  Index Only Scan using deliveries_waiting    -- the next waiting delivery
//	  Index Scan using deliveries_head, deliveries_new_by_record -- none before it
//
// An ack records every result in one statement (completions, retries,
// postponements, dead letters and their attempts, from arrays), and moves
// the next delivery of each finished record up to head in a second
// statement of the same implicit transaction, sent in the same round trip;
// a new delivery that came before the waiting ones is claimed as the head
// instead. A result whose lease expired and was claimed again changes
// nothing and is reported, after the others are recorded, as
// store.ErrLeaseLost. Leases are found through the row their token names,
// so no index covers lease columns.
//
// Every join on seq in these statements is written so that the index is
// used whatever the plan (seq = ANY(...), or a lateral lookup): a generic
// plan cached while the table was small must not turn into a scan of the
// table as it grows.
//
// # Tuning
//
//   - Pool size: each dispatcher holds a connection for each claim, ack and
//     publish in flight, plus one for LISTEN outside the pool. A few
//     connections per dispatcher process are enough; workers wait on HTTP,
//     not on the database.
//   - [Options].FileBatch (default 1000) bounds how many new deliveries
//     one claim files behind records that have a delivery in flight;
//     [Options].ClaimScan (default: the claim's limit) how many due
//     deliveries per webhook a claim reads.
//   - Publish calls made at the same time outside a transaction share one
//     statement and one commit: a call that finds none in flight runs at
//     once, alone, and the calls that arrive meanwhile go together in the
//     next (up to 256). Each returns once its own rows have committed; if
//     the database refuses the shared statement, each call is run again
//     alone, so one call's bad data fails that call only. With many
//     publishers the commits were most of what publishing cost the
//     database.
//   - Enqueues outside a transaction run on the store's pool as prepared
//     statements of the connection, their parameters encoded into
//     buffers the store reuses (the payloads are tens of kilobytes a
//     shared statement). That path is taken when the pool's connections
//     prepare and cache statements (pgx's default
//     QueryExecModeCacheStatement) and no tracer is set on them; otherwise
//     enqueues go through pgx's query methods like every other statement.
//   - Claims and acks are batched by the dispatcher (up to Config.Workers
//     messages per claim, whatever arrived meanwhile per ack), which is
//     what keeps commits per delivery low.
//   - Finished deliveries, their attempts and old events are purged by
//     the dispatcher's workers (webhook.Config.Retention); see below.
//   - Autovacuum matters on deliveries, whose rows change several times in
//     their life. The table keeps 55% of each page free (migration 5), so
//     that a claim's leases (HOT updates) find room for the rows' new
//     versions on their pages and write no index entry.
//
// # Retention and erasure
//
// The store implements store.Retainer and store.Eraser. Purge reads the
// deliveries in order of sequence without locking and deletes or scrubs
// the expired ones in statements of BatchSize rows, so no index is kept
// for it; events no delivery refers to any more are found through a small
// partial index (events.live counts an event's deliveries). Erase cancels
// the selected pending deliveries and erases payloads and attempt bodies in
// one transaction. Migration 2 adds what both need.
//
// # Recovery in order and the audit trail
//
// The store implements store.Auditor (migration 3 adds its table) and
// store.Requeuer, so Dispatcher.Recover puts recovered deliveries back
// into their record lines. Requeue is one transaction, in one round trip,
// that locks what it reads without waiting; if a claim or an ack holds one
// of those rows at that moment, it changes nothing, waits until the rows
// are free holding nothing, and runs again, so it never deadlocks with
// acks. A claim that read a line before a Requeue committed finds the
// line's rows changed and leaves it alone.
//
// A requeued delivery that comes first in its record goes out at once even
// while a later one is in flight, or fixed in a batch awaiting its retry
// (that one is not held back). A record's line sends only its head, so the
// requeued one travels on its own, beside the one in flight, like a replay
// though not marked as one. The record's deliveries waiting behind the one
// in flight move up only when both have finished (from migration 5), as
// on the memory and SQLite stores.
// Deliveries whose payload was purged or erased are not requeued, as
// Replay refuses them.
package postgres
