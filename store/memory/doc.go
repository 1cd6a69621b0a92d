// Package memory is an in-memory herald store: what the demo and tests
// use. Nothing survives the process.
//
// # How it keeps work
//
// Every pending delivery belongs to an order chain (webhook, tenant, record
// key) unless it was replayed. Only the head of a chain is claimable. Heads
// wait in a queue per webhook ordered by due time: new deliveries, due as
// they are made, in a run taken from its front; heads that come back
// (retries, released or expired leases, replays, a chain's next head) in
// a heap of their own. Webhooks wait in a heap ordered by their earliest
// due head. So a claim from a backlog of new deliveries costs the same
// however long it is, and claims take turns across webhooks. A batching
// webhook's claim gathers further due heads (and their chains' next
// records) up to its batch size and fixes them as one message.
//
// # Memory
//
// A pending delivery of a 1 KiB payload takes about 2 KiB of heap, the
// payload included: a million fit in under 2 GiB, and claiming costs the
// same with a thousand or a million waiting (BenchmarkClaimBacklog).
// Delivered deliveries, their events and attempts are kept until Purge
// removes them (the dispatcher's retention calls it), so without
// retention a long-running process's heap grows with every delivery made.
// Purge works in turns of the policy's batch size and releases the lock
// between them, so it never holds publishers and workers off for long.
package memory
