package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/transform"
)

// MaxBatchLimit is the largest MaxBatch a webhook may ask for.
const MaxBatchLimit = 1000

// validate checks w for Register and Update, collecting every problem;
// the error wraps ErrInvalidWebhook and never echoes secrets.
func (d *Dispatcher) validate(w *Webhook) error {
	var errs []error
	bad := func(field, format string, a ...any) { errs = append(errs, inField(field, fmt.Errorf(format, a...))) }

	w.Name = strings.TrimSpace(w.Name)
	if w.Name == "" {
		bad("name", "name is required")
	}
	if strings.TrimSpace(w.Table) == "" {
		bad("table", "table is required")
	}
	if len(w.Ops) == 0 {
		bad("ops", "ops: at least one of INSERT, UPDATE, DELETE is required")
	}
	for _, op := range w.Ops {
		if !op.Valid() {
			bad("ops", "ops: unknown op %q (INSERT, UPDATE or DELETE)", op)
		}
	}
	if err := d.checkURL(w.URL); err != nil {
		errs = append(errs, inField("url", err))
	}
	switch w.Method {
	case "POST", "PUT", "PATCH":
	case "GET":
		if w.Body.Format != transform.Form || len(w.Body.Fields) == 0 {
			bad("method", "method GET sends its body as a query string: it needs body format form with fields")
		}
	default:
		bad("method", "method %q is not POST, PUT, PATCH or GET", w.Method)
	}
	for k, v := range w.Headers {
		if err := transform.CheckHeader(k, v); err != nil {
			bad("headers", "headers: %v", err)
		}
	}
	if err := w.Body.Validate(); err != nil {
		errs = append(errs, bodyProblems(err)...)
	}
	if w.MaxBatch < 0 || w.MaxBatch > MaxBatchLimit {
		bad("max_batch", "max_batch %d is outside 0..%d", w.MaxBatch, MaxBatchLimit)
	}
	if w.MaxBatch > 1 && (w.Body.Format == transform.Form || w.Method == "GET") {
		bad("max_batch", "max_batch > 1 needs a JSON body: form and GET bodies cannot carry a batch")
	}
	errs = append(errs, checkLimits(*w)...)
	if err := d.checkHooks(*w); err != nil {
		errs = append(errs, err)
	}
	// Each hook may take HookTimeout: the attempt must still end within
	// its lease, or another worker would send the message again.
	if n := len(w.Before) + len(w.After); n > 0 {
		if need := d.cfg.AttemptTimeout + time.Duration(n)*d.cfg.HookTimeout; need >= d.cfg.LeaseDuration {
			bad("", "%d hooks may take %v with the attempt, not less than Config.LeaseDuration (%v): raise LeaseDuration or lower HookTimeout", n, need, d.cfg.LeaseDuration)
		}
	}
	if _, err := condition.Compile(w.When); err != nil {
		errs = append(errs, inField(whenField(err), fmt.Errorf("when: %w", err)))
	}
	errs = append(errs, d.validateCredentials(w)...)
	return invalid(errs)
}

func (d *Dispatcher) checkHooks(w Webhook) error {
	var errs []error
	for _, name := range w.Before {
		if _, err := d.cfg.Hooks.LookupBefore(name); err != nil {
			errs = append(errs, inField("before", err))
		}
	}
	for _, name := range w.After {
		if _, err := d.cfg.Hooks.LookupAfter(name); err != nil {
			errs = append(errs, inField("after", err))
		}
	}
	return errors.Join(errs...)
}

// checkURL accepts only absolute http(s) URLs with a host, and applies the
// transport's guard to what can be judged without DNS (the port, an IP
// literal, loopback and numeric names); the connect-time check of the
// resolved addresses is the real guard.
func (d *Dispatcher) checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("url is required")
	case err != nil:
		return fmt.Errorf("url %s does not parse", RedactURL(raw))
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url scheme %q is not http or https", u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("url %s has no host", RedactURL(raw))
	case u.Opaque != "":
		return fmt.Errorf("url %s is not absolute", RedactURL(raw))
	}
	if strings.ContainsAny(raw, "\r\n\x00 ") {
		return errors.New("url holds white space or control characters")
	}
	if err := newGuard(&d.cfg).checkTarget(u); err != nil {
		return fmt.Errorf("url: %w", err)
	}
	return nil
}

// FieldProblem is one problem Register or Update found in a webhook,
// named by the JSON field it is in.
type FieldProblem struct {
	// Field is the JSON name of the field at fault: "url", "headers",
	// "previous_secrets[0]", "auth", "when.expr", "when.tree.any[1].value"
	// ... "" when the problem is not one field's.
	Field string
	// Message says what is wrong; it names fields, never secret values.
	Message string
	// Err is the problem as an error, for errors.Is and errors.As (a
	// *condition.CompileError for a condition, ErrBlockedDestination for
	// a URL the guard refuses ...). Its text is Message.
	Err error
}

// ValidationError lists every problem Register, Update or PingWebhook
// found in a webhook. It wraps ErrInvalidWebhook and each problem's Err.
type ValidationError struct {
	Problems []FieldProblem
}

// Error lists the problems, one per line, after ErrInvalidWebhook's text.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalidWebhook.Error())
	b.WriteString(": ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Unwrap returns ErrInvalidWebhook and the error of each problem.
func (e *ValidationError) Unwrap() []error {
	out := []error{ErrInvalidWebhook}
	for _, p := range e.Problems {
		if p.Err != nil {
			out = append(out, p.Err)
		}
	}
	return out
}

// fieldError names the field an error of validation is about.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// inField marks err as a problem of the given field.
func inField(field string, err error) error { return &fieldError{field: field, err: err} }

// invalid turns the problems found into a *ValidationError, or nil when
// there are none. Joined errors count one problem each.
func invalid(errs []error) error {
	var ps []FieldProblem
	var add func(field string, err error)
	add = func(field string, err error) {
		switch e := err.(type) {
		case nil:
		case *fieldError:
			add(e.field, e.err)
		case *ValidationError:
			ps = append(ps, e.Problems...)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				add(field, inner)
			}
		default:
			ps = append(ps, FieldProblem{Field: field, Message: err.Error(), Err: err})
		}
	}
	for _, err := range errs {
		add("", err)
	}
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// whenField names the part of a condition a compile error is about:
// "when.expr", "when.tree.all[0].value", "when.fields" ...
func whenField(err error) string {
	var ce *condition.CompileError
	if !errors.As(err, &ce) {
		return "when"
	}
	if ce.Path != "" {
		return "when." + ce.Path
	}
	return "when." + ce.Part
}

// bodyProblems splits the errors of a body into one problem each, an
// expression's named by its output key: "body.fields.grade".
func bodyProblems(err error) []error {
	parts := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	}
	out := make([]error, 0, len(parts))
	for _, e := range parts {
		field := "body"
		var fe *transform.FieldError
		if errors.As(e, &fe) {
			field = "body.fields." + fe.Field
		}
		out = append(out, inField(field, fmt.Errorf("body: %w", e)))
	}
	return out
}
