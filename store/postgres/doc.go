// Package postgres is a herald store on PostgreSQL (pgx/v5). It keeps
// webhooks, events, deliveries and attempts in a schema of the
// application's own database, so a record change and its webhook
// deliveries commit together, and any number of dispatcher processes on
// any number of machines share one queue.
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
//     column (seq) that orders each record's chain. Column phase says where
//     a pending delivery stands: new (just published), head (the one of its
//     record that may be claimed), waiting (behind the head) or replayed
//     (outside every chain); it is NULL once the delivery is finished.
//   - attempts: one row per request made, with its status, latency,
//     masked request headers and the start of the answer.
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
// unique key does.
//
// Order within a record follows the sequence at which deliveries were
// inserted. Two transactions that publish changes of the same record
// concurrently, without locking that record's row, are not ordered with
// respect to each other; an application that updates the row before
// publishing (UPDATE, or SELECT ... FOR UPDATE) gets its commit order.
//
// # Notifications
//
// Every enqueue, release, replay and definition change sends a NOTIFY on
// channel "herald" with the schema name as payload, inside the same
// transaction, so it is delivered on commit. [Store.Subscribe] (the
// store.Notifier the dispatcher uses) listens on a connection of its own,
// opened from the pool's configuration, reconnects with backoff when it
// fails, and coalesces signals. Signals are only hints: the dispatcher
// still polls (Config.PollInterval), so a lost connection delays work by
// at most a poll interval. Behind a transaction-pooling proxy such as
// PgBouncer, LISTEN does not work; give the store a pool whose
// configuration connects to PostgreSQL directly, or rely on polling.
//
// # Claims and indexes
//
// A claim is one transaction that never waits for a lock:
//
//  1. File new deliveries into their chains (function file_new). One
//     claimer at a time does it, under a transaction-scoped advisory lock;
//     the others skip the step. A record with nothing filed gets its first
//     new delivery as head and the rest behind it; a record with a filed
//     tail gets its new deliveries behind that tail, which is share-locked
//     so the ack that finishes it sees them. Because publishers never take
//     part, a chain never has two heads, and a head stays the chain's
//     only claimable delivery while it is leased or retrying.
//  2. Pick candidates: the webhooks with heads or replays (a skip scan of
//     the claim index), then each enabled webhook's earliest due, unleased
//     heads, ranked so that one claim takes turns across webhooks and one
//     webhook's backlog cannot starve another's. They are locked with
//     FOR NO KEY UPDATE SKIP LOCKED: rows another claimer holds are skipped.
//  3. For a batching webhook, gather up to MaxBatch due heads and the due
//     deliveries behind them into a batch whose members and UUIDv7 id are
//     fixed here; a retry sends the same members under the same id.
//  4. Lease the rows with one UPDATE (a lease token per message, an expiry
//     from the caller's clock) and commit.
//
// Waiting deliveries are in no claim index, so a long line behind a
// failing record costs a claim nothing. With 50,000 deliveries waiting
// behind heads that retry in an hour and 5,000 just published, claiming
// another webhook's ten due deliveries (filing a thousand first) takes a
// few tens of milliseconds on a small machine; the plans, from
// TestClaimPlansWithLargeBacklog (go test -v -run Plans), are:
//
//	candidates (0.14 ms):
//	  Recursive Union                 -- webhooks with heads: skip scan
//	    Index Only Scan using deliveries_claim (webhook_id > previous)
//	  WindowAgg / Sort                -- turns across webhooks
//	    Nested Loop
//	      Index Scan using deliveries_claim
//	        Index Cond: webhook_id = h.webhook_id AND next_attempt <= now
//	  LockRows                        -- FOR NO KEY UPDATE SKIP LOCKED
//	    Index Scan using deliveries_pkey
//
//	filing 1,000 new deliveries (about 30 ms, mostly the 1,000 row updates):
//	  Index Scan using deliveries_new               -- new rows, by seq
//	  Index Scan Backward using deliveries_chain    -- each chain's tail
//	  LockRows (FOR SHARE SKIP LOCKED) / Index Scan using deliveries_pkey
//
//	promotion after an ack (0.07 ms):
//	  Index Scan using deliveries_pkey              -- the acked rows
//	  Index Scan using deliveries_chain             -- next waiting, no head left
//
// An ack records every result in one statement (completions, retries,
// postponements, dead letters and their attempts, from arrays), and moves
// the next delivery of each finished chain up to head in a second
// statement of the same implicit transaction, sent in the same round
// trip. A result whose lease expired and was claimed again changes
// nothing and is reported, after the others are recorded, as
// store.ErrLeaseLost. Leases are found through the row their token names,
// so no index covers lease columns and leasing a row is a HOT update.
//
// # Tuning
//
//   - Pool size: each dispatcher holds a connection for each claim, ack and
//     publish in flight, plus one for LISTEN outside the pool. A few
//     connections per dispatcher process are enough; workers wait on HTTP,
//     not on the database.
//   - [Options].FileBatch (default 1000) bounds how many new deliveries one
//     claim files; [Options].ClaimScan (default: the claim's limit) how
//     many due heads per webhook a claim ranks.
//   - Claims and acks are batched by the dispatcher (up to Config.Workers
//     messages per claim, whatever arrived meanwhile per ack), which is
//     what keeps commits per delivery low.
//   - Finished deliveries, their attempts and old events are purged by
//     the dispatcher's workers (webhook.Config.Retention); see below.
//   - Autovacuum matters on deliveries, whose rows change several times in
//     their life; the table keeps 20% of each page free for HOT updates.
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
package postgres
