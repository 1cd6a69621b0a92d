// Package store is the storage contract of herald: the row types a store
// keeps (events, deliveries, attempts and webhook definitions as data), the
// interface the dispatcher drives, and the errors a store reports.
//
// A store is a dumb, durable ledger. The dispatcher in package webhook
// decides matching, retries, backoff and what to send; a store only keeps
// rows, hands out due work under a lease, and records outcomes. It never
// retries on its own.
//
// # What a store guarantees
//
//   - Enqueue is idempotent on (tenant, event id): enqueuing an event whose
//     key exists already creates nothing and reports created == false.
//   - Per-record order: for one order key (webhook, tenant, record key), a
//     delivery is not handed out while an earlier one of the same key (by
//     the store's own sequence) is still pending. Replayed deliveries stand
//     outside this chain.
//   - A claimed message is never handed out again while its lease holds. A
//     lease that expires (its holder crashed) makes the message claimable
//     again, with its attempt count unchanged.
//   - Batches are fixed when first claimed: a message of a batching webhook
//     keeps the same id and members across every retry.
//   - Claims and acknowledgements are batched: one call claims up to a limit
//     of messages, one call records many outcomes.
//
// Time is always passed in by the caller ("now"), so a fake clock drives
// lease expiry and retry schedules on every store.
//
// # Optional capabilities
//
// Extras are separate interfaces, found by type assertion: [TxEnqueuer]
// for publishing inside the caller's own database transaction,
// [BulkEnqueuer] and [BulkTxEnqueuer] for writing many events in one call,
// and [Notifier] for waking idle workers when work arrives ([AckNotifier]
// when its notifications also report the work an ack frees, so the
// dispatcher need not look after every ack). [Counter] counts
// deliveries by webhook and state in one query, and [Requeuer] puts
// finished deliveries back into their order chains for bulk recovery; the
// dispatcher falls back to paging Deliveries and to Replay without them.
// [Auditor] keeps the audit trail of webhook changes, replays and
// recoveries; without it the dispatcher records none. [Retainer] purges
// finished work after a while, and [Eraser] erases the personal data of
// one record or one tenant.
//
// The conformance suite in package store/storetest pins these rules; every
// store runs it.
package store
