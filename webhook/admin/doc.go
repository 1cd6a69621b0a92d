// Package admin is the webhook settings page of an HR product as a JSON
// API: an http.Handler that the backend mounts behind its own
// authentication, so its admin UI can list, add, edit, test, publish and
// delete webhooks, browse and replay their deliveries, and read who
// changed what.
//
//	api, err := admin.New(d, admin.Options{
//		Resolve: func(r *http.Request) (admin.Caller, error) {
//			s, ok := sessions.From(r) // the application's own session
//			if !ok {
//				return admin.Caller{}, admin.ErrUnauthenticated
//			}
//			return admin.Caller{Tenant: s.OrgID, Actor: s.Email}, nil
//		},
//	})
//	mux.Handle("/admin/api/", http.StripPrefix("/admin/api", api))
//
// # Tenants
//
// Resolve tells, for every request, who makes it: a [Caller] with a
// tenant and an actor. A tenant caller sees and changes only its own
// tenant's webhooks, their deliveries and their audit trail; another
// tenant's ids answer 404 exactly as missing ids do, and list filters only
// narrow what the caller sees (asking for another tenant's webhook_id,
// event_id or tenant lists nothing). Every webhook a tenant creates is
// its own: a body naming another tenant is refused, ids are assigned by
// the server, and the application's named HTTP clients (client) cannot be
// chosen. A tenant sees the deliveries of its own webhooks for its own
// changes, and keeps seeing them after it deletes the webhook (the audit
// trail remembers whose it was).
//
// A webhook without a tenant receives every tenant's changes; it belongs
// to the operator. A Caller with Operator set sees and changes everything,
// every tenant's and the global webhooks, and may create webhooks for any
// tenant; single-tenant applications resolve every user as an operator.
// A caller that is neither (no tenant, no Operator) is refused with 403,
// so a Resolve that forgets the tenant fails closed.
//
// # Requests and answers
//
// Bodies are JSON (Content-Type: application/json; PATCH also takes
// application/merge-patch+json), at most [Options].MaxBodyBytes (1 MiB by
// default: 413 beyond). Unknown fields, trailing data and unknown query
// parameters are refused with 400. Every answer is JSON, with
// Cache-Control: no-store and X-Content-Type-Options: nosniff, except 204
// No Content. Cross-origin browser requests that change something are
// refused (403 cross_origin) unless their origin is in
// Options.TrustedOrigins, so another site cannot ride an admin's session.
// Times are RFC 3339 in UTC. Field names are snake_case and stable;
// fields may be added.
//
// Errors are
//
//	{"error": {"code": "invalid_webhook", "message": "the webhook is invalid",
//	           "fields": [{"field": "url", "message": "url scheme \"ftp\" is not http or https"},
//	                      {"field": "when.expr", "message": "...: unexpected token EOF", "line": 1, "column": 11}]}}
//
// with these codes: invalid_json and invalid_query (400, the field or
// parameter named when there is one), unauthenticated (401), forbidden
// and cross_origin (403), not_found (404), method_not_allowed (405, with
// Allow), version_conflict and delivery_pending (409), body_too_large
// (413), unsupported_media_type (415), invalid_webhook and
// invalid_condition (422, every problem with its field), internal (500,
// logged, no detail), not_implemented (501: the store keeps no audit
// trail) and unavailable (503).
//
// Lists answer {"data": [...], "has_more": bool, "next_cursor": "..."}:
// pass next_cursor as cursor, with the same other parameters, for the
// next page (a cursor is bound to its query and caller). limit is 1 to
// 1000, 50 by default. A page of a tenant's deliveries may come back
// short, with has_more, when it had to skip many deliveries the tenant
// cannot see.
//
// # Secrets
//
// No answer shows a secret, a header value, an auth password, token or
// client secret, URL user info or query values: they read "xxxxx", as
// [webhook.Webhook]'s JSON shows them. The one exception is the signing
// secret of an HMAC webhook, shown in clear once, in the answers to
// creating the webhook and rotating its secret; keep it then, or rotate
// again. An Ed25519 webhook's private key is never shown: its receiver
// needs only public_key. A webhook read, edited and sent back keeps every
// value that comes back as "xxxxx" (see [webhook.Dispatcher.Update]),
// unless the URL moved to another origin: a kept credential never follows
// the URL somewhere new.
//
// # Webhooks
//
// A webhook's JSON is that of [webhook.Webhook]: id, name, description,
// tenant, table, ops, when, url, method, headers, body, before, after,
// max_batch, secret, signature_scheme, public_key, previous_secrets, auth,
// client, disabled, version, created_at, updated_at, and whatever the
// dispatcher adds. Fields that are empty are left out.
//
// GET /webhooks lists webhooks by id; filters: table, disabled
// (true|false), and tenant ("tenant=" is the global webhooks).
//
// POST /webhooks creates one, with Register's validation, and answers 201
// with the secret in clear:
//
//	POST /webhooks
//	{"name": "Payroll sync", "table": "employee", "ops": ["INSERT", "UPDATE"],
//	 "url": "https://payroll.example.com/hooks/herald", "headers": {"X-Api-Key": "k-123"},
//	 "when": {"match": "any_selected", "fields": ["salary", "department"]}}
//
//	201 Created
//	{"id": "01a21e0a-1efa-7292-839c-896cd853b56e", "name": "Payroll sync", "tenant": "acme",
//	 "table": "employee", "ops": ["INSERT", "UPDATE"],
//	 "when": {"match": "any_selected", "fields": ["salary", "department"]},
//	 "url": "https://payroll.example.com/hooks/herald", "method": "POST",
//	 "headers": {"X-Api-Key": "xxxxx"}, "secret": "whsec_g6PZqK77gtZfjjVF3RByNzl/Unyf9rNx0cb4Q/lLClg=",
//	 "signature_scheme": "hmac-sha256", "version": 1,
//	 "created_at": "2026-03-02T09:00:00Z", "updated_at": "2026-03-02T09:00:00Z"}
//
// "signature_scheme": "ed25519" creates an Ed25519 webhook; "secret" may
// bring the caller's own.
//
// GET /webhooks/{id} answers the webhook, masked.
//
// PUT /webhooks/{id} replaces it, with Update's semantics: values sent
// back as "xxxxx" keep what is stored, and a version in the body makes
// the update conditional (409 version_conflict if the webhook changed
// since that version was read). Left out of the body, tenant and client
// keep their values, so a webhook never turns global by omission; an
// operator moves one by naming the tenant.
//
// PATCH /webhooks/{id} applies a JSON merge patch (RFC 7396) to the
// webhook as GET shows it, then saves it as PUT does, conditional on the
// version it read: {"description": "monthly run"} changes one field,
// {"headers": {"X-Old": null}} removes one header, {"disabled": true}
// unpublishes.
//
// DELETE /webhooks/{id} answers 204; pending deliveries end as canceled.
//
// POST /webhooks/{id}/enable and POST /webhooks/{id}/disable flip the
// "Published" toggle (no body) and answer the webhook.
//
// POST /webhooks/{id}/rotate-secret gives the webhook a new signing
// secret and answers the webhook with it in clear. The old one keeps
// signing beside it for grace_seconds (0: a day), so the receiver can
// switch at any time within; revoke_previous stops every earlier secret at
// once (for a leak); secret brings the caller's own (another scheme
// switches schemes). Every field is optional:
//
//	POST /webhooks/01a2.../rotate-secret
//	{"grace_seconds": 3600}
//
//	200 OK
//	{"id": "01a2...", ..., "secret": "whsec_5NpwQ6THCUVMGeb8bNc0+JbI2WC0fKz1y73FS71By4k=",
//	 "previous_secrets": [{"value": "xxxxx", "rotated_at": "2026-03-02T09:00:00Z",
//	                       "expires_at": "2026-03-02T10:00:00Z"}], "version": 3, ...}
//
// # Test URL and endpoint health
//
// POST /webhooks/{id}/ping sends a signed webhook.ping event to a saved
// webhook's endpoint, at once, enabled or not, through the same guarded
// transport, and answers what the receiver did (see
// [webhook.Dispatcher.Ping]); a receiver that fails is an answer with
// "ok": false, not an error of the API. It leaves no delivery behind.
// POST /webhooks/ping does the same for a webhook not saved yet: the body
// is the create form's, validated as POST /webhooks validates it, and
// nothing is stored.
//
//	POST /webhooks/01a2.../ping
//
//	200 OK
//	{"ok": true, "message_id": "01a21e22-73a0-7cc5-9ed6-547bf11da893", "method": "POST",
//	 "url": "https://payroll.example.com/hooks/herald",
//	 "request_headers": {"Content-Type": "application/json", "User-Agent": "herald/0.1.0",
//	                     "Webhook-Id": "01a21e22-73a0-...", "Webhook-Signature": "v1,jY5r...",
//	                     "Webhook-Timestamp": "1772442000", "X-Api-Key": "xxxxx"},
//	 "status_code": 200, "latency_ms": 0.444,
//	 "response_headers": {"Content-Type": ["application/json"]}, "response_body": "{\"ok\":true}"}
//
// GET /webhooks/{id}/health answers how the endpoint is doing, as the
// answering process sees it (see [webhook.Dispatcher.Health]):
//
//	{"webhook_id": "01a2...", "breaker": "closed", "requests": 1, "failures": 0,
//	 "in_flight": 0, "waiting": 0, "max_concurrency": 2, "disabled": false}
//
// An open breaker adds opened_at and next_probe_at; a webhook failing
// for a while, failing_since; a disabled one, disabled_reason ("receiver
// answered 410 Gone", or how long every request failed).
//
// # Testing a condition
//
// POST /conditions/explain is a dry run of a rule not saved yet, on a
// sample change; it answers [condition.Explanation], part by part:
//
//	POST /conditions/explain
//	{"when": {"expr": "new.status == \"approved\""},
//	 "change": {"table": "leave", "op": "UPDATE", "key": "L-7",
//	            "old": {"status": "pending"}, "new": {"status": "approved"}}}
//
//	200 OK
//	{"match": true, "reason": "fires: every part of the condition holds", "op": "UPDATE",
//	 "changed": ["status"], "field_rule": {"match": "", "applies": false, "result": true},
//	 "expr": {"expr": "new.status == \"approved\"", "result": true}}
//
// A rule that does not compile answers 422 invalid_condition naming the
// part (when.expr, when.tree.all[1].op ...) and, for an expression, the
// line and column.
//
// POST /webhooks/{id}/explain asks whether a sample change would be
// delivered to a stored webhook now, and why: its table (by default the
// webhook's), op, tenant (the caller's), the "Published" toggle and the
// condition:
//
//	POST /webhooks/01a2.../explain
//	{"change": {"op": "UPDATE", "key": "E-1001", "old": {"salary": 5000}, "new": {"salary": 5200}}}
//
//	200 OK
//	{"would_deliver": false, "table_matches": true, "op_listed": true, "tenant_matches": true,
//	 "enabled": false, "condition": {"match": true, ...}}
//
// # Deliveries
//
// GET /deliveries lists deliveries, oldest first; filters: webhook_id,
// event_id, status (pending, delivered, dead, skipped, canceled), key (the
// record's), since and until (publication time, RFC 3339; since
// inclusive, until exclusive), and for an operator tenant (the change's).
// GET /webhooks/{id}/deliveries is the same for one webhook, 404 if the
// caller cannot see it.
//
//	GET /deliveries?webhook_id=01a2...&status=delivered&limit=1
//
//	200 OK
//	{"data": [{"id": "01a21e0a-1efd-7723-856d-f12ca80afcd3", "webhook_id": "01a2...",
//	           "event_id": "01a21e0a-1efd-766c-a541-aaa8989d7eb2", "message_id": "01a21e0a-1efd-766c-...",
//	           "tenant": "acme", "key": "E-1001", "status": "delivered", "attempts": 2,
//	           "last_status_code": 200, "replayed": false,
//	           "created_at": "2026-03-02T09:00:00Z", "updated_at": "2026-03-02T09:00:01Z"}],
//	 "has_more": false, "next_cursor": "eyJrIjoiZGVsaXZlcmllcyIs..."}
//
// message_id is the webhook-id header the delivery is sent under (its
// batch id in a batch). A pending delivery has next_attempt_at;
// last_error and last_status_code describe the last attempt.
//
// GET /deliveries/{id} answers one delivery; GET /deliveries/{id}/attempts
// its attempts, oldest first, with the request headers (credentials
// masked), status, latency and the start of the answer:
//
//	{"data": [{"number": 1, "message_id": "01a21e0a-1efd-766c-...", "at": "2026-03-02T09:00:00Z",
//	           "status_code": 503, "latency_ms": 0.42,
//	           "request_headers": {"Content-Type": "application/json", "User-Agent": "herald/0.1.0",
//	                               "Webhook-Id": "01a21e0a-1efd-766c-...", "Webhook-Signature": "v1,5IKV...",
//	                               "Webhook-Timestamp": "1772442000"},
//	           "response_body": "maintenance", "error": "attempt 1 to https://...: status 503",
//	           "webhook_version": 6}, ...],
//	 "has_more": false}
//
// POST /deliveries/{id}/replay sends a finished delivery again, at once,
// with a fresh attempt count (see [webhook.Dispatcher.Replay]) and answers
// 202 with the delivery, now pending; a pending one answers 409
// delivery_pending.
//
// POST /webhooks/{id}/recover sends a webhook's finished deliveries again
// in bulk, oldest first and, with a store that can, in their record's
// order (see [webhook.Dispatcher.Recover]). Every field is optional:
// status (dead by default; delivered, skipped or canceled), since and
// until (publication time), key, dry_run (count, send nothing), and for
// an operator tenant. It answers 202, or 200 for a dry run:
//
//	POST /webhooks/01a2.../recover
//	{"since": "2026-03-02T00:00:00Z", "dry_run": true}
//
//	200 OK
//	{"matched": 12, "replayed": 0, "in_order": true, "dry_run": true}
//
// # Audit trail and versions
//
// Every change of a webhook made through the dispatcher (this API, the
// application's own calls, and the dispatcher disabling a webhook on its
// own, as actor "herald"), every replay and every recovery is recorded
// with its actor: the Caller's Actor here, webhook.WithActor elsewhere.
// The trail lives in the store (store.Auditor); with a store that keeps
// none, these routes answer 501.
//
// GET /audit lists records, newest first (order=asc: oldest first);
// filters: webhook_id, action (webhook.created, webhook.updated,
// webhook.enabled, webhook.disabled, webhook.deleted,
// webhook.secret_rotated, delivery.replayed, deliveries.recovered),
// actor, since, until, and for an operator tenant.
//
//	GET /audit?limit=2
//
//	200 OK
//	{"data": [{"id": "01a21e0a-1efc-715e-8a5f-a6d10420b9d2", "time": "2026-03-02T09:00:00Z",
//	           "tenant": "acme", "actor": "alice@acme.example", "action": "webhook.disabled",
//	           "webhook_id": "01a2...", "version": 4, "reason": "disabled by the application"},
//	          {"id": "01a21e0a-1efb-7c10-a172-69839588847d", "time": "2026-03-02T09:00:00Z",
//	           "tenant": "acme", "actor": "alice@acme.example", "action": "webhook.secret_rotated",
//	           "webhook_id": "01a2...", "version": 3, "detail": {"grace": "1h0m0s"}}],
//	 "has_more": true, "next_cursor": "YTEuMy5iMTg4MjU2YQ"}
//
// An update names the fields it changed ("changed": ["headers", "url"]),
// never their values; a replay names the delivery and its earlier status.
//
// GET /webhooks/{id}/versions lists the definitions a webhook went
// through, newest first, each as it was saved (masked) with who saved it;
// a deleted webhook's stay listed for its tenant:
//
//	{"data": [{"version": 4, "time": "2026-03-02T09:00:00Z", "actor": "alice@acme.example",
//	           "action": "webhook.disabled", "reason": "disabled by the application",
//	           "webhook": {"id": "01a2...", "name": "Payroll sync", ..., "disabled": true, "version": 4}}],
//	 "has_more": true, "next_cursor": "YTEuNC5jZTNhYTc3Yw"}
//
// # The application's own policy
//
// Options.Check sees every webhook about to be created, updated or pinged
// unsaved, with its Caller, after the tenant was set: the place for rules of the
// application's own, such as hosts a tenant may send to or hooks only
// some tenants may name.
package admin
