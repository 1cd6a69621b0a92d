// Package transform shapes what a webhook sends: before and after hooks
// that plugin authors write in Go and register by name, and declarative
// body mappings that admins define as data ([Body], stored with the
// webhook).
//
// # The pipeline
//
// For every attempt of a message (one record, or a batch), the dispatcher:
//
//  1. decodes the stored records into a [Message];
//  2. runs the webhook's before hooks, in order, on it;
//  3. shapes each record with the body: [Body.Select], [Body.Redact],
//     [Body.Mask] and, without Fields, [Body.Values];
//  4. encodes the body in its [Format], evaluating Fields over the shaped
//     record, then applying Values and redaction to the mapped object;
//  5. signs the exact bytes sent (after every hook and mapping), sends
//     them, and runs the after hooks with the [Result].
//
// Because redaction comes after the hooks and before the mapping, nothing
// a hook adds and nothing a mapping reads can carry a redacted field out.
//
// # Before hooks
//
// A [Before] hook gets the outgoing [Message]: its records (all of them,
// for a batch), the webhook's name and id, the webhook-id and attempt
// number, and headers it may add with [Message.SetHeader]. It may:
//
//   - change, replace or drop records (dropping every record skips the
//     message; a message that is not a batch must keep exactly one);
//   - add headers, never reserved ones ([ReservedHeader], the same rule
//     the dispatcher applies to a webhook's static headers); a hook's
//     header replaces a static header of the same name;
//   - return nil to go on, [ErrSkip] to skip the message on purpose (its
//     deliveries become Skipped, no attempt is spent, nothing is sent),
//     [Permanent](err) to fail it for good (Dead), or any other error to
//     fail the attempt and retry on the webhook's schedule.
//
// # After hooks
//
// An [After] hook runs after every attempt, and after a skip, with a
// [Result]: the message as the before hooks left it, the bytes sent, the
// status code, the response headers and the start of the response body
// (capped), the latency, the attempt number, the error, the [Outcome]
// (Delivered, Retrying, Dead, Skipped) and whether it is Final. It can
// store the response, write a sync status into the application's record
// or an audit log. Its error, panic or timeout is logged and reported to
// the observer; it never changes the outcome. After hooks run before the
// outcome is recorded, so a record marked "synced" by an after hook is
// never behind its delivery log.
//
// # Timeouts and panics
//
// Every hook call runs under a context that ends after the dispatcher's
// HookTimeout, in a goroutine of its own. A panic (or runtime.Goexit) is
// recovered and fails the attempt, for a retry, with the panic value and
// the stack in the attempt's error; the worker lives on. A hook that
// ignores its context and has not returned by the timeout is left
// running: the attempt fails for a retry and goes on, so a stuck hook
// never holds a worker. Whatever the left-behind call holds (its message
// or result) is shared with nothing that runs after it. The call is still
// counted: Shutdown waits for it, within its context and a short grace,
// and logs the hooks that outlive even that. Write hooks that honour ctx.
//
// Hooks are registered in a [Registry] by name, so webhook definitions
// stay data that a store and an admin UI can hold. A definition naming a
// hook this process lacks is held, never sent untransformed.
//
// # Formats
//
// The default envelope (Format ""), as package webhook documents it:
//
//	{"id": "0190c1d2-...", "type": "attendance.inserted", "timestamp": "2026-03-02T09:00:00Z",
//	 "data": {"event_id": "0190c1d2-...", "table": "attendance", "op": "INSERT", "key": "E-1001/2026-03-02",
//	          "new": {"employee_id": "E-1001", "date": "2026-03-02", "status": "Present"},
//	          "tenant": "acme", "context": {"actor": "team-lead"}}}
//
// [JSON] (or Format "" with Fields): exactly the mapped object, or for a
// batch a JSON array of mapped objects, as application/json. With
// Fields {"employee_id": "new.employee_id", "present": "new.status == 'Present'"}:
//
//	{"employee_id": "E-1001", "present": true}
//
// [Form]: the mapped object as application/x-www-form-urlencoded, keys in
// order. Strings go as they are, numbers in plain decimal, booleans as
// true or false, times as RFC 3339, lists as repeated keys, objects as
// JSON text; nil values are left out. With Fields {"employee_id":
// "new.employee_id", "date": "new.date", "status": "new.status"} and
// Values {"status": {"Present": "P", "Absent": "A"}}:
//
//	date=2026-03-02&employee_id=E-1001&status=P
//
// For a GET webhook the same encoding is the query string, appended to the
// URL's own query, and the signature covers the whole raw query string
// (what signer.Middleware verifies for a GET):
//
//	GET /api/attendance?token=abc&date=2026-03-02&employee_id=E-1001&status=P
//
// Form and GET bodies carry one record: a webhook cannot combine them with
// MaxBatch > 1.
//
// [CloudEvents]: a CloudEvents 1.0 event in structured JSON mode
// (application/cloudevents+json); for a batch, a JSON array of events
// (application/cloudevents-batch+json), one per record:
//
//	{"specversion": "1.0", "id": "0190c1d2-...", "source": "herald://acme/attendance",
//	 "type": "attendance.inserted", "subject": "E-1001/2026-03-02",
//	 "time": "2026-03-02T08:59:58Z", "datacontenttype": "application/json",
//	 "data": {"event_id": "0190c1d2-...", "table": "attendance", "op": "INSERT", "key": "E-1001/2026-03-02",
//	          "new": {"employee_id": "E-1001", "status": "Present"}, "tenant": "acme"}}
//
// id is the event id (the webhook-id of a single-record message; a batch
// travels under its own webhook-id, each event keeping its id), so
// receivers can drop duplicates by source and id. source is [Body.Source]
// or, when empty, herald://<tenant, or "default">/<table>, each part
// percent-encoded. type is the envelope's type, <table>.inserted, .updated
// or .deleted: the application, not herald, defines what its records
// mean, so herald adds no reverse-DNS prefix of its own. subject is the
// record key, time the change's time. data is the envelope's data object,
// shaped, or the mapped object when Fields is set.
//
// # Field expressions
//
// Fields maps each output key to an expr-lang/expr expression over one
// record. The expression sees:
//
//	new, old   map[string]any   the record after and before the change (nil when absent)
//	changed    []string         names of the fields whose value changed (updates)
//	op         string           "INSERT", "UPDATE" or "DELETE"
//	table, key, tenant, id      the record's table, key, tenant, and the event id
//	context    map[string]any   Change.Context: actor, request id, source system ...
//	time       time.Time        when the change happened
//
// For example:
//
//	"employee_id": "new.employee_id"
//	"status":      "new.status == 'Present' ? 'P' : 'A'"
//	"date":        "time.Format('2006-01-02')"
//	"previous":    "old?.department ?? 'none'"
//	"event":       "table + '.' + lower(op)"
//	"employee":    "{'id': key, 'name': new.first_name + ' ' + new.last_name}"
//
// A missing field of new or old reads as nil. Numbers are float64, except
// those float64 cannot hold exactly (see [Record]), which are sent digit
// for digit but cannot take part in arithmetic. An expression may return any
// JSON value, objects and lists included, so a mapping can reproduce
// another product's envelope. Expressions are compiled when the webhook is
// registered or updated (and when a process loads the definition), never
// while sending. A name outside the list above, or a syntax or type error,
// fails Register with a [*FieldError] naming the output key, the line and
// the column:
//
//	body: fields["status"]: unexpected token EOF (line 1, column 31)
//
// An expression that fails while a message is encoded (say new.salary * 2
// over a string) fails the message for good (Dead): the same record would
// fail the same way on every retry. Fix the mapping, then replay.
//
// # Value maps
//
// [Body.Values] translates values: {"status": {"Present": "P", "Absent":
// "A"}}. With Fields, the key is an output key and the map applies to the
// expression's result; without Fields, the key is a field of the record
// and the map applies to it in new and old. A value is looked up by its
// JSON text: a string without quotes, a number in plain decimal ("42",
// "2.5"), "true"/"false", or "null". A value that is not listed passes
// unchanged; objects and lists are never mapped.
//
// # Selection
//
// [Body.Select] is an allow-list of record fields: when it is not empty,
// new and old keep only those top-level fields, and changed lists only
// them. Context, key and the other attributes are unaffected. With
// Select ["department", "status"], an update of phone and department
// sends new {"department": "Sales"} and changed ["department"].
//
// # Redaction and masking
//
// [Body.Redact] removes fields; [Body.Mask] keeps them with the value
// [MaskValue] ("xxxxx"), so a receiver learns that a field is there (and,
// in changed, that it changed) without its value. Both apply to new, old
// and context and to the mapped object; a dotted path ("bank.iban",
// "children.ssn") reaches into objects and into every object of a list.
// A redacted field is also left out of changed; a masked one stays. With
// Redact ["ssn"] and Mask ["salary"], an update of salary sends:
//
//	"new": {"name": "Ada", "salary": "xxxxx"}, "changed": ["salary"]
//
// The delivery log must not keep what the receiver must not see: its
// request headers are always masked, and for a webhook that redacts or
// masks, the stored answer is scrubbed too. In a JSON or form answer,
// every key named like a redacted or masked field, at any depth, is
// removed or masked; then an answer of any format that still contains a
// redacted or masked value of the message (as text, 4 characters or more)
// is replaced by [Withheld]. After hooks, being the application's own
// code, see the message and the answer unredacted.
//
// The published change itself is kept whole in the store (it is the
// application's own database); redaction is per webhook, on what leaves
// through it.
//
// # Batches
//
// With MaxBatch > 1, before hooks see every record of the batch in one
// Message (Batch is true), the body carries them all (an envelope with a
// data list, a JSON array of mapped objects, or a CloudEvents batch), and
// one failed request fails all its records together: they are retried
// together, under the same webhook-id, with the same records.
//
// # Enrichment
//
// HR products join related data into a payload (a "view": the employee's
// name and department added to an attendance row). [Enrich] builds such a
// before hook from a lookup into the application's own data:
//
//	hooks.RegisterBefore("employee-details", transform.Enrich(
//		func(ctx context.Context, r transform.Record) (map[string]any, error) {
//			return directory.Details(ctx, r.New["employee_id"])
//		}))
package transform
