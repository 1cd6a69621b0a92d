// Package memory is an in-memory herald store: what the demo and tests
// use. Nothing survives the process.
//
// # How it keeps work
//
// Every pending delivery belongs to an order chain (webhook, tenant, record
// key) unless it was replayed. Only the head of a chain is claimable. Heads
// wait in a heap per webhook ordered by due time, and webhooks wait in a
// heap ordered by their earliest due head, so a claim costs O(log n) in
// the backlog and takes turns across webhooks. A batching webhook's claim
// gathers further due heads (and their chains' next records) up to its
// batch size and fixes them as one message.
package memory
