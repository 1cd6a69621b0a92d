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
package webhooktest
