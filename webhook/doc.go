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
// logs, errors or String output. The default transport resolves each host
// itself and connects only to addresses it checked, so DNS rebinding does
// not pass. It refuses loopback, private, shared, link-local, multicast,
// reserved and documentation addresses, their IPv4-mapped, NAT64 and 6to4
// forms, and ports other than 80, 443 and Config.AllowedPorts.
// Config.AllowedNetworks opens chosen prefixes; Config.AllowPrivateNetworks
// opens every address and port. Cloud metadata endpoints stay refused
// whatever the configuration. Refusals wrap [ErrBlockedDestination] and
// happen before any connection; [Dispatcher.Register] applies the same
// rules to IP literals, names and ports. Redirects are not followed;
// proxies come only from Config.Proxy; every attempt has a timeout and
// reads at most Config.MaxResponseBytes. [Classify] documents what each
// answer means.
//
// # Hooks and body shaping
//
// A webhook's Before and After name hooks registered in Config.Hooks
// (package transform). Each attempt decodes its records, runs the before
// hooks in order, shapes the records with the webhook's Body (selection,
// redaction, masks, value maps), encodes them (the envelope, flat JSON,
// a form, a GET query string, or CloudEvents 1.0), signs the exact bytes
// sent, sends them and runs the after hooks with the result. A webhook
// without hooks and with a plain envelope body sends the stored payloads
// as they are, encoded once per event.
//
// A before hook's ErrSkip ends the message as Skipped, spending no
// attempt; transform.Permanent makes it Dead; any other error fails the
// attempt for a retry. After hooks cannot change the outcome; their
// failures are logged and reported as EventHookError. Every hook call runs
// in its own goroutine under Config.HookTimeout: a panic fails the attempt
// with its stack, and a hook that ignores its context is left running
// while the attempt fails and moves on; Shutdown waits for such calls
// within its context and grace. Body errors (an expression that does not
// compile, with its line and column) fail Register and wrap both
// ErrInvalidWebhook and transform.ErrInvalidBody.
// # Delivery log
//
// Every delivery is kept with its status, attempt count, last error and
// times, and every attempt with its time, request headers (values masked
// except those herald sets itself), status code, latency, the first 4 KiB
// of the answer, its error and the definition version it used.
// [Dispatcher.DeliveryLog] pages through deliveries filtered by webhook,
// event, status, tenant, record key and publication time, oldest first,
// with an opaque cursor bound to the filters; [Dispatcher.Attempts] lists
// one delivery's attempts. [Dispatcher.Deliveries] is the same query with
// the store's raw sequence cursor.
//
// # Recovery
//
// [Dispatcher.Recover] sends again every dead (or otherwise finished)
// delivery of one webhook published in a time range, oldest first, paging
// through the log rather than loading it; DryRun counts first. With a store
// that implements store.Requeuer (the memory, SQLite and Postgres stores
// do) recovered deliveries rejoin their record's order chain by sequence:
// for each record key they go out one at a time, oldest first, ahead of
// the key's later pending deliveries, so the receiver ends with the latest
// state; only a later delivery of the key already in flight is not held
// back. With other stores Recover replays each delivery, and replays of
// one key may arrive in any order; [RecoverResult].InOrder tells which
// happened.
//
// # Observer
//
// Config.Observer is told about every attempt (with its outcome), every
// delivered, retried, dead, skipped, held and canceled message, every
// condition that failed at run time, and every webhook disabled or enabled
// again. While the dispatcher runs, events pass through a bounded queue
// (Config.ObserverQueue) drained by one goroutine that Start launches and
// Shutdown stops once the queue is handed over, so a slow observer never
// holds up a worker; when the queue is full events are dropped and counted
// in [Stats]. Without Start (ProcessDue) the observer is called
// synchronously, so tests see every event at once. Package
// webhook/otelobserver turns the events into OpenTelemetry traces and
// metrics; package webhook itself does not import OpenTelemetry.
//
// # Stats
//
// [Dispatcher.Stats] counts deliveries by webhook and state, the age of the
// oldest pending delivery (counted from its publication, also for a
// replayed or recovered one) and this process's attempts in flight. With a
// store that implements store.Counter it is one query; otherwise it pages
// through the log.
//
// # Logs
//
// The dispatcher logs through Config.Logger (quiet by default): every
// attempt at Debug, a scheduled retry at Info, a message that failed for
// good, a webhook disabled by a 410 and a failed after hook at Warn, and
// what it cannot do (a definition it cannot use, a store that fails) at
// Error. Attributes use stable keys:
//
//   - webhook_id, message_id (the webhook-id header), event_id (a change)
//   - attempt (its number), records (in the message)
//   - status (the HTTP status, 0 when no answer arrived), latency_ms
//   - outcome ("delivered", "retry" or "dead"), next_attempt
//   - delivery_status (a delivery's state), matched, replayed, in_order
//     (a recovery)
//   - url (redacted), hook (a hook's name), kind (an observer event's),
//     dropped (observer events), error
//
// Secrets, header values, URL user info and query values are never
// logged.
//
// # Endpoint health
//
// A receiver that is down does not slow the others, is not hammered, and
// is reported; an admin can see it ([Dispatcher.Health]) and test it
// ([Dispatcher.Ping]).
//
//   - Concurrency. A webhook has at most MaxConcurrency requests in flight
//     in one process (Webhook.MaxConcurrency, else
//     Config.MaxConcurrency: half the workers by default), so a receiver
//     that hangs for its whole AttemptTimeout holds half the workers at
//     most. Its other claimed messages wait in memory, holding neither a
//     worker nor a goroutine, and the worker of each of its requests that
//     ends sends the next, in order: a busy receiver is fed as fast as it
//     answers. Past 10,000 waiting messages per webhook (64 MiB of
//     payload in all, and no more than can still start within their
//     lease) a message is postponed in the store, spending no attempt, to
//     about its turn. Shutdown releases waiting messages at once.
//   - Rate. Webhook.RateLimit caps a webhook's requests per second from
//     one process, evenly spaced; a message waits for its turn postponed
//     in the store, spending no attempt.
//   - Fairness. Stores take turns across webhooks within each claim, so a
//     backlog of one webhook does not starve another's due deliveries.
//   - Circuit breaker ([BreakerPolicy]). A webhook's breaker opens on
//     sustained failure only: by default at least 10 failed requests
//     (any answer but 2xx, or none) within a minute that are also at
//     least half of its requests. While it is open the webhook's
//     deliveries wait, spending no attempt, until its probe: after 30s one
//     delivery goes out; success closes the breaker, failure opens it
//     again for twice as long (up to 10 minutes). Any successful request
//     closes it: a probe, a replay, a ping. A replay of one delivery goes
//     out at once, past an open breaker (it still keeps to the webhook's
//     MaxConcurrency and RateLimit). Opening and closing are reported to
//     the Observer (EventBreakerOpened, EventBreakerClosed) and the log.
//     Deliveries the breaker postponed come due at the probe time they
//     were given, even if a replay or a ping closed it sooner.
//   - Disabling. A webhook whose requests have all failed, without a
//     success, for Config.DisableAfter (5 days by default) is disabled and
//     reported (EventWebhookDisabled with the reason, a warning in the
//     log, Webhook.DisabledReason); its queued deliveries wait.
//     [Dispatcher.Enable] turns it back on: the backlog flows in order,
//     and FailingSince, DisabledReason and this process's breaker start
//     afresh. A 410 Gone answer disables a webhook the same way.
//     The start of a run of failures is stored in the webhook's
//     definition (Webhook.FailingSince) once it has lasted a minute, so
//     the count survives restarts and is shared by every process; a
//     success anywhere ends it.
//
// The breaker, the limits and the requests in flight are kept in memory,
// per process: with several dispatcher processes on one store, each has
// its own, and a webhook may have MaxConcurrency requests in flight from
// each. Their timing comes from Config.Clock.
//
// [Dispatcher.Ping] sends a signed webhook.ping event through the same
// transport, headers and secret as the webhook's deliveries and returns
// the status, latency, headers and start of the answer, or the error;
// [Dispatcher.PingWebhook] does the same for a webhook not stored yet.
// Neither leaves a delivery behind.
//
// # Audit trail
//
// With a store that keeps one (store.Auditor; the memory, SQLite and
// Postgres stores do), the dispatcher records every change of a webhook
// (Register, Update, SetDisabled, RotateSecret, Delete), every Replay and
// every recovery, with who did it: the actor [WithActor] put in the
// context, or [SystemActor] when the dispatcher acted on its own (disabling a webhook
// whose receiver answered 410 Gone or failed for too long). A record of a definition change
// carries the definition as saved, secrets masked, so a webhook's records
// are also its versions; an update names the fields it changed, never
// their values. [Dispatcher.Audit] lists the trail, newest first, by
// tenant, webhook, action, actor and time. A record is written after the
// change succeeded; if the write fails, the change stands and the
// failure is logged. With a store that keeps no trail, nothing is
// recorded and Audit fails with [ErrNoAudit].
//
// Validation errors are a [*ValidationError] listing each problem with
// the JSON name of its field ("url", "headers", "when.expr" ...), for an
// admin UI to show next to the field; package webhook/admin serves all of
// this as an HTTP API.
//
// # Performance
//
// herald's own work is small beside the HTTP requests it sends. Publish
// encodes a change once, whatever the number of webhooks it goes to (the
// attempt wraps the stored bytes in the envelope without decoding them),
// finds the candidate webhooks through an index by table, op and tenant,
// so its cost follows the webhooks on the changed table and not all of
// them, and runs each distinct condition once: webhooks with equal rules
// share an evaluation. Nothing is compiled on the hot path; a saved
// definition is compiled once and patched into the snapshot every Publish
// reads.
//
// Workers are a fixed pool of Config.Workers goroutines fed by one
// claimer, which is woken by Publish and by the store, never left waiting
// for a poll when work is due. Outcomes are written in batches by one
// writer. The figures, the machine they came from and the commands that
// reproduce them are in BENCHMARKS.md at the root of the repository;
// examples/loadtest measures herald end to end against plain net/http on
// the same machine.
//
// # Answers that quote credentials
//
// Receivers often quote the credential they refuse ("invalid API key
// ..."), and a broken one may put a header value in its status line, which
// net/http quotes in its error. Before an answer or an error is kept (the
// delivery log, LastError, the logs, observer events), every credential
// the request carried is masked in it: each header value the delivery log
// masks, a bearer token or Basic password on its own, the URL's password
// and query values, at least 6 characters each so ordinary words stay
// readable. An error that quotes a value the webhook redacts is withheld
// as a whole, as such an answer is. After hooks get the answer as it came.
//
// # Reliability
//
// The promise is that no change is lost, none is sent out of order for
// its record, and none goes where it must not. The repository's
// RELIABILITY.md records how it was tested, with figures and the command
// for each: receivers that fail 30% of requests in seven ways
// (webhooktest.RunChaos, on every store), dispatcher processes killed at
// seeded moments in the send path, and a database that drops connections
// or goes away under load. [Dispatcher.Publish] fails while the store is
// unreachable, never pretends; workers back off (from 200ms, doubling, up
// to 5s) and recover on their own once it is back. Every duplicate a
// receiver sees in those runs has a cause: a request the receiver took in
// but did not finish answering within AttemptTimeout, or one in flight
// when its process died.
package webhook
