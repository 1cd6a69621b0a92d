// Package transform shapes what a webhook sends: before and after hooks
// that plugin authors register by name, and declarative body mappings that
// admins define as data.
//
// # Hooks
//
// A [Before] hook receives the outgoing [Message] (its records, one or a
// batch, the webhook's name and id, and headers it may add) and may change
// the records, add headers (never reserved ones: see [ReservedHeader]),
// skip the delivery on purpose by returning [ErrSkip], fail it for a retry
// by returning any other error, or fail it for good with [Permanent].
// An [After] hook runs after every attempt with its [Result]; its error is
// reported and never changes the delivery's outcome. Every hook runs under
// a timeout from its context, and a panic in a hook fails its attempt, not
// the process.
//
// Hooks are registered in a [Registry] by name, so webhook definitions stay
// data that a store and an admin UI can hold.
//
// # Bodies
//
// A [Body] says how a request body is made: the default JSON envelope, or
// Fields, a map from output key to an expression over the record
// (old, new, changed, op, table, key, tenant, context, id, time), sent as
// JSON or as a form (the query string for GET).
package transform
