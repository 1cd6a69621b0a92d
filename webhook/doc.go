// Package webhook turns record changes of an HR system into reliable,
// signed webhook deliveries. It holds the [Dispatcher], the [Change] the
// backend publishes, the [Webhook] definitions admins edit as data, and
// the [Delivery] log.
//
// # Publishing
//
// The backend reports every record change with [Dispatcher.Publish] (or
// [Dispatcher.PublishTx], inside the database transaction that changed the
// record, with a store that supports it). Publish validates the change
// (errors wrap [ErrInvalidChange]), assigns a UUIDv7 id when Change.ID is
// empty, decides at once which webhooks match, and stores one delivery per
// matching webhook before it returns. It returns the event id whether or
// not anything matched. Publishing the same change id again (per tenant)
// creates nothing and returns the same id, even if webhooks were
// registered in between.
//
// # Matching
//
// A webhook matches a change when its Table equals the change's, its Ops
// list the change's op, its Tenant is "" or the change's tenant, it is not
// Disabled, and its When rule (package condition) passes. An expression
// that fails at run time counts as "does not match" and is logged; Publish
// does not fail for it.
//
// # What is read when
//
// Matching is decided at Publish. URL, method, headers, body mapping,
// hooks and secret are read at each attempt, so an edit takes effect on
// the next attempt. A disabled webhook gets no new deliveries and its
// queued ones wait until it is enabled again. Deleting a webhook ends its
// pending deliveries as Canceled. A webhook naming a hook this process has
// not registered holds its deliveries (they wait, spending no attempt, and
// the problem is logged); they are never sent untransformed.
//
// # Delivery guarantees
//
//   - At least once: a delivery row exists in the store before Publish
//     returns. A crash at any point loses nothing: the leases of a dead
//     worker expire and the work is claimed again. Receivers de-duplicate
//     by the webhook-id header.
//   - Per-record order: for one webhook, tenant and record key, a delivery
//     is not attempted before the earlier ones (by the store's sequence,
//     never by Change.Time) were delivered or given up. Other keys flow
//     freely, so one stuck record never blocks the rest.
//   - Retries on network errors, timeouts and any answer but 2xx, on an
//     exponential schedule with jitter ([RetryPolicy]; by default 11
//     attempts over about a day), honouring Retry-After on 429, 502, 503
//     and 504 within a cap. MaxAttempts counts every attempt, the first
//     included. After the last, the delivery is Dead, kept, and can be
//     replayed.
//   - A receiver stops the retries of one message by answering with the
//     header "webhook-delivery: abort-message". An answer of 410 Gone
//     disables the webhook (its message stays pending, waiting with the
//     rest of the queue until the webhook is enabled).
//
// # Wire format
//
// The default body is a JSON envelope in the Standard Webhooks style:
//
//	{"id": "<event id>", "type": "employee.updated", "timestamp": "2026-03-02T09:00:00Z",
//	 "data": {"table": "employee", "op": "UPDATE", "key": "E-1001",
//	          "new": {...}, "old": {...}, "changed": ["department"],
//	          "tenant": "acme", "context": {...}}}
//
// Type is "<table>.inserted", "<table>.updated" or "<table>.deleted". Every
// request carries webhook-id (the body's id: for one record, the event id
// Publish returned; the same on every retry), webhook-timestamp (unix
// seconds of the attempt), webhook-signature ("v1,<base64>"; several,
// space-separated, while more than one secret is live), Content-Type,
// User-Agent "herald/<version>", then the webhook's own headers. The
// signature covers "<webhook-id>.<webhook-timestamp>.<body>" and verifies
// with the Standard Webhooks reference libraries and with package signer.
//
// # Batches
//
// A webhook with MaxBatch > 1 sends up to that many due records in one
// request, always as "data": [ ... ] (even for one record) under a batch
// id of its own; its type is the records' common type, or
// "<table>.changed" when they differ. The members of a batch are fixed
// when it is first claimed, so a retry resends the same records under the
// same id, and one failed request fails them together. Each member keeps
// its own [Delivery] with the BatchID. A batch may carry several records
// of one key, in order. Form and GET bodies cannot batch.
//
// # Replay
//
// [Dispatcher.Replay] sends a finished delivery again, at once, with a
// fresh attempt count. It leaves the record's order chain: it neither
// waits for nor blocks other deliveries of its key, and travels alone,
// under its event id (for a batching webhook, under its own delivery id as
// a one-record batch). Replaying a pending delivery fails with
// [ErrPending].
//
// # Workers and shutdown
//
// [Dispatcher.Start] launches the workers and returns. They claim due
// messages in batches under a lease, woken by Publish in this process, by
// the store's notifications where it has them, and by a poll every
// Config.PollInterval. [Dispatcher.Shutdown] stops claiming, waits for the
// attempts in flight until its context ends, then cancels them, releases
// their leases so another dispatcher can take the work at once, waits a
// short grace for hooks that ignore their context, and returns ctx.Err().
// Cancelling the context given to Start is a hard stop. Tests and
// programs without workers can call [Dispatcher.ProcessDue] instead.
//
// # Errors
//
// Configuration mistakes fail at [New] or [Dispatcher.Register], never at
// send time: errors wrap [ErrInvalidWebhook] and name every problem found.
// [ErrNotFound] and [ErrPending] work with errors.Is; a failed attempt is
// described by a [DeliveryError].
//
// # Security
//
// Secrets, header values, URL user info and query values never appear in
// logs, errors or String output. The default transport refuses loopback,
// private and other non-public addresses at connect time (the resolved
// address is checked, so DNS rebinding does not pass) unless
// Config.AllowPrivateNetworks is set; cloud metadata addresses stay
// refused even then. Only ports 80 and 443 are allowed by default,
// redirects are not followed, and every attempt has a timeout and a cap
// on the answer it reads.
//
// # Receiver authentication
//
// Besides static Headers, a webhook authenticates to its receiver with
// Webhook.Auth, data validated by Register like the rest:
//
//   - AuthBasic: Username and Password as "Authorization: Basic".
//   - AuthBearer: Token as "Authorization: Bearer".
//   - AuthOAuth2ClientCredentials: herald asks TokenURL for an access token
//     with ClientID and ClientSecret (RFC 6749 section 4.4; Basic client
//     authentication by default, AuthStyleParams for servers that want
//     the form body), with Scopes and extra Params such as "audience".
//
// OAuth2 tokens are cached per webhook and definition version: any edit
// of the webhook starts afresh, an edit of another webhook does not.
// Attempts that need a token at the same moment share one request to the
// token endpoint, and share its failure. A token is replaced 10s before
// the expires_in of its response runs out, measured on Config.Clock (the
// oauth2 package's own expiry reads the system clock; herald ignores it,
// so a fake clock drives expiry in tests), and at once when a receiver
// answers 401. The token request goes through the webhook's HTTP client,
// so the SSRF guard and any client certificate apply to it too, and is
// bounded by Config.AttemptTimeout. TokenURL must be https unless
// Config.AllowPrivateNetworks is set. When no token can be had the attempt
// fails with a [TokenError] and is retried on the usual schedule; the
// error holds the token URL (redacted), the status and the RFC 6749 error
// code, never the body of the answer, which servers sometimes fill with
// the request's credentials.
//
// A receiver that wants mutual TLS gets a client of its own: put an
// *http.Client with the certificate in Config.Clients under a name, and
// set Webhook.Client to that name. Register refuses names the dispatcher
// does not have; a process that shares the store but lacks the name holds
// the webhook's deliveries, as it does for a missing hook. Such a client
// is used as it is: its transport, not herald's guard, decides what it
// may reach.
//
// # Signing secrets and rotation
//
// Every request is signed with Webhook.Secret: a "whsec_" secret
// (HMAC-SHA256, "v1"), or a "whsk_" Ed25519 private key ("v1a"), which
// Register generates when SignatureScheme is SchemeEd25519. For Ed25519
// the returned PublicKey ("whpk_...") is what the receiver verifies with;
// it cannot sign.
//
// [Dispatcher.RotateSecret] replaces the secret with a new one of the same
// kind and moves the old one to PreviousSecrets with an expiry (grace 0:
// [DefaultRotationGrace], a day). Until then each request carries both
// signatures, space-separated in one webhook-signature header, and a
// receiver holding either secret accepts it. Expiry is read from
// Config.Clock at each attempt, and expired secrets are dropped from the
// definition on its next save. A negative grace revokes at once.
// [Dispatcher.RotateSecretTo] takes the new secret from the caller, of
// either kind, which moves a webhook between HMAC and Ed25519 with both
// signing during the grace. A webhook registered with only Secret, or
// stored before rotation existed, works as before.
//
// # Keeping secrets in
//
// Webhook.Secret, PreviousSecrets, header values, Auth's password, token
// and client secret, and the user info and query values of URL and
// TokenURL are Masked ("xxxxx") wherever a webhook is shown: String and
// every fmt verb, slog (LogValue), and JSON. The JSON of [Webhook], [Auth]
// and [Secret] is meant for admin UIs: unmarshalling reads every field as
// given, and [Dispatcher.Update] keeps the stored value of any field that
// comes back Masked, so a UI can show a webhook and send it back edited.
// A Masked credential is kept only while it goes where it went: after the
// URL's origin (or the token URL) changed, it must be given again, so an
// edit cannot redirect a stored credential without knowing it. The store
// gets a separate encoding that keeps the values.
//
// Errors, the delivery log (LastError, attempt errors, request headers)
// and observer events carry redacted URLs and no credentials: net/http's
// errors, which quote the request URL with its query string, are
// redacted before they are recorded.
//
// # Secrets at rest
//
// With Config.SecretKeys set (see [NewKeyring]), every secret of a
// definition (signing secrets, header values, Auth's secrets, the URL and
// token URL) is encrypted with AES-256-GCM before it reaches the store,
// as one value "enc:v1:<key id>:<base64 of nonce and ciphertext>" bound to
// the webhook's id; the rest of the definition, a redacted URL and the
// header names stay readable. A database dump without the key cannot sign
// a message or call a receiver. Definitions stored before encryption was
// configured still load, and are sealed on their next save or by
// [Dispatcher.ReencryptSecrets]. A definition sealed with a key this
// process lacks is held: its deliveries wait, and [Dispatcher.Webhook]
// fails with [ErrSecretKey] rather than return it without its secrets. To
// rotate the key, add the new key as current beside the old one, call
// ReencryptSecrets, then drop the old key.
package webhook
