// Package signer signs webhook messages and verifies them, following the
// Standard Webhooks specification, so that any receiver using one of the
// specification's reference libraries accepts herald's messages unchanged.
//
// # What is signed
//
// Every message is signed over its id, its send time and its body, joined
// by full stops:
//
//	{webhook-id}.{webhook-timestamp}.{body}
//
// The timestamp is unix seconds in decimal. The body is signed byte for
// byte as it is sent: a receiver must verify the raw body it read, before
// decoding it (re-encoding JSON changes bytes and breaks the signature).
// The id stays the same across retries of one message and is the
// receiver's idempotency key; the timestamp is that of the attempt, so a
// retry is signed afresh and a captured request cannot be replayed after
// the receiver's tolerance has passed.
//
// # Header format
//
// Three headers carry the metadata:
//
//	webhook-id: 0190f6c2-7c4e-7b1a-9d3e-5f0a1b2c3d4e
//	webhook-timestamp: 1614265330
//	webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
//
// webhook-signature is a space-separated list of "version,base64"
// signatures: "v1" for HMAC-SHA256, "v1a" for Ed25519. Receivers ignore
// versions they do not know.
//
// # Keys
//
// A key's prefix says what it is, so no separate setting is needed:
//
//   - "whsec_" + base64 of 24 to 64 random bytes: a shared secret for
//     HMAC-SHA256 ("v1"). The same string signs and verifies.
//     [GenerateSecret] makes one of 32 bytes.
//   - "whsk_" + base64 of an Ed25519 private key seed (32 bytes; the 64-byte
//     crypto/ed25519 form is accepted too): signs "v1a". It never leaves
//     the sender.
//   - "whpk_" + base64 of the 32-byte Ed25519 public key: verifies "v1a".
//     It can be handed out freely. [GenerateKeyPair] makes a pair and
//     [PublicKey] derives the public half.
//
// Keys are base64 with the standard alphabet and padding. Errors about a
// key describe what is wrong with it and never include the key.
//
// # Rotation
//
// A [Signer] holds one or more live keys and signs every message with each
// of them, in order, into one header line:
//
//	webhook-signature: v1,<signature with new key> v1,<signature with old key>
//
// To rotate without downtime: sign with the new and the old key; let each
// receiver switch to the new key at its own pace (a receiver holding either
// key accepts the message); then drop the old key from the sender. A
// [Verifier] likewise accepts several keys, so a receiver can trust the old
// and the new key for the length of a switch.
//
// # Verification
//
// [Verifier.Verify] checks a received message: the three headers must be
// present, webhook-timestamp must lie within a tolerance of the receiver's
// clock (5 minutes by default, either way), and at least one signature in
// the list must match at least one of the receiver's keys. HMAC signatures
// are compared in constant time. Failures are reported with sentinel
// errors for errors.Is: [ErrMissingHeader], [ErrInvalidHeader],
// [ErrTimestamp] and [ErrNoMatchingSignature]. [Verify] is the one-call
// form for a single secret.
//
// [Verifier.Middleware] does the same for a net/http handler: it reads the
// body up to a limit (1 MiB by default), verifies it, answers 400, 401 or
// 413 without details on failure, and otherwise hands the next handler the
// request with its body restored.
//
// # Duplicates
//
// Delivery is at least once: a message whose answer was lost is sent again
// with the same webhook-id (and a fresh timestamp and signature, so the
// tolerance does not catch it). [Dedup] is middleware that remembers
// handled ids in a [SeenStore] ([MemorySeenStore] for a single process, or
// the receiver's own database or cache) and answers a repeated id with 200
// without calling the handler again.
//
// An id counts as processed only once the handler answered 2xx. A handler
// that failed (non-2xx, or a panic) leaves the id unmarked, because the
// sender will retry it and that retry must be processed, not acknowledged
// unseen. While one delivery of an id is being handled, a concurrent
// duplicate is answered 409 Conflict, so the sender tries again later
// instead of being told it succeeded before the outcome is known.
//
// Place Dedup inside the verifying middleware, so that only authentic ids
// are ever recorded; otherwise a forger could claim an id before the
// genuine message arrives:
//
//	handler = v.Middleware(signer.Dedup(store, 24*time.Hour)(handler))
//
// A deliberate replay that resends a message under its original id is
// answered as a duplicate too, for as long as the id is remembered.
package signer
