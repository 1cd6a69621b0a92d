// Package webhooktest is herald's test kit: a recording receiver, a
// dispatcher ready for tests, a fake clock, and deterministic draining, so
// tests wait on conditions, never on sleeps.
//
// # Receiver
//
// [NewReceiver] starts an httptest server on loopback that verifies every
// request's signature under the Standard Webhooks rules (at the time of a
// clock you pass, so fake clocks work), records it, and answers as told:
// 200 by default, scripted answers with [Receiver.Script] or
// [Receiver.Fail], any answer from a function with [Receiver.Respond], and
// stalls ([Answer].Stall) released by [Receiver.Release]. [Receiver.WaitFor]
// waits, with a bound, for a number of requests.
//
// # Dispatcher
//
// [NewDispatcher] builds a dispatcher on the memory store with a fake
// [Clock] at [Epoch], loopback allowed, and fast retries without jitter
// (1s, 2s, 4s ... five attempts). [Kit.Drain] attempts everything due now;
// [Kit.Settle] also moves the clock to each next retry until nothing is
// pending. Both work without Start, so a test controls every attempt.
//
//	k := webhooktest.NewDispatcher(t, webhook.Config{})
//	rcv := webhooktest.NewReceiver(t, k.Clock)
//	w, _ := k.Register(ctx, webhook.Webhook{..., URL: rcv.URL})
//	rcv.AddSecret(w.Secret)
//	rcv.Fail(2, 503)
//	k.Publish(ctx, change)
//	k.Settle(t, 10) // three attempts, the last delivered
//
// # Chaos
//
// [NewChaosReceiver] starts a receiver that misbehaves for a share of
// requests in seven ways (500; 503 with Retry-After; 429; a 200 whose body
// trickles past any timeout; no answer; a reset connection; a wrong status
// line), each chosen by a hash of a seed, the message and its arrival
// count, so one seed gives each message the same answers however requests
// interleave. It verifies signatures and records every arrival. Beside it
// listens a trap, on an address the guard refuses, that counts the
// connections it gets.
//
// [RunChaos] is the reliability proof for a store: 20 webhooks over 5
// tables (with field rules, expressions and batches) and 2 aimed at the
// trap, 20,000 changes over 2,000 keys from 8 goroutines, the receiver
// failing 30% of requests until every message was tried, then calm. Its
// [ChaosReport] counts what was lost, out of order, unexpected, badly
// signed, dead or stuck, checks the store's deliveries against the
// expected ones, and gives every duplicate a cause; [ChaosReport.Failures]
// lists the broken promises. Run it on your own store implementation:
//
//	rep := webhooktest.RunChaos(t, mystore.New(), webhooktest.ChaosConfig{Seed: 1})
//	assert.Empty(t, rep.Failures(), rep.String())
//
// [ChaosWorkload] is the same work, fixed by its config, for runs that
// span processes (a dispatcher restarted or killed): each registers the
// same webhooks and publishes the same changes with the same ids.
package webhooktest
