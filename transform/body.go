package transform

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
)

// ErrInvalidBody reports a Body that cannot work; the detailed errors
// (a *FieldError for an expression) wrap it.
var ErrInvalidBody = errors.New("transform: invalid body")

// ErrMapping reports a field expression that failed while a message was
// being encoded; the *FieldError that says which one wraps it.
var ErrMapping = errors.New("transform: body mapping failed")

// Format is the shape of a request body.
type Format string

// Body formats.
const (
	// Envelope is the default JSON envelope: id, type, timestamp, data.
	// With Fields it means JSON.
	Envelope Format = ""
	// JSON is the mapped object (or, for a batch, a list of them) as JSON.
	JSON Format = "json"
	// Form is the mapped object as application/x-www-form-urlencoded (the
	// query string for GET).
	Form Format = "form"
	// CloudEvents is a CloudEvents 1.0 event in structured JSON mode
	// (application/cloudevents+json), or for a batch a JSON list of events
	// (application/cloudevents-batch+json). Its data is the envelope's data
	// object, or the mapped object when Fields is set.
	CloudEvents Format = "cloudevents"
)

// MaskValue replaces the value of a masked field.
const MaskValue = "xxxxx"

// Body says how a webhook's request body is made, as data an admin edits.
// The zero value is the default envelope. See the package documentation
// for the semantics of each field, with examples.
type Body struct {
	// Format is the body's shape; "" is the envelope, or JSON when Fields
	// is set.
	Format Format `json:"format,omitempty"`
	// Fields maps output keys to expressions over the record (old, new,
	// changed, op, table, key, tenant, context, id, time). Required for
	// JSON and Form; for CloudEvents it shapes the event's data.
	Fields map[string]string `json:"fields,omitempty"`
	// Values maps values to others, per key: {"status": {"Present": "P"}}.
	// With Fields the key is an output key; without, a field of the
	// record's new and old. A value is looked up by its JSON text (a
	// string without quotes, 42, true, null); unlisted values pass
	// unchanged.
	Values map[string]map[string]any `json:"values,omitempty"`
	// Select, when not empty, keeps only these fields of the record's new
	// and old (and only they are listed in changed). Top-level names.
	Select []string `json:"select,omitempty"`
	// Redact lists fields removed from everything that leaves (new, old,
	// changed, context, the mapped object) and from the stored answers.
	// A dotted path ("bank.iban") reaches into objects and lists of
	// objects.
	Redact []string `json:"redact,omitempty"`
	// Mask lists fields whose values are replaced by MaskValue, with the
	// reach of Redact; the field's name stays visible.
	Mask []string `json:"mask,omitempty"`
	// Source is the CloudEvents source attribute, a URI-reference; empty:
	// herald://<tenant, or "default">/<table>. CloudEvents only.
	Source string `json:"source,omitempty"`
}

// Validate checks the body, compiling its expressions; it reports every
// problem it finds. Errors wrap ErrInvalidBody.
func (b Body) Validate() error {
	_, err := b.Compile()
	return err
}

// Compile checks the body and compiles its expressions into a Mapper, so
// nothing is compiled while messages are sent. Errors wrap ErrInvalidBody;
// an expression that does not compile is reported as a *FieldError with
// its position.
func (b Body) Compile() (*Mapper, error) {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidBody}, a...)...))
	}
	m := &Mapper{format: b.Format, source: b.Source}
	switch b.Format {
	case Envelope:
		if len(b.Fields) > 0 {
			m.format = JSON
		}
	case JSON, Form:
		if len(b.Fields) == 0 {
			bad("format %s needs fields", b.Format)
		}
	case CloudEvents:
	default:
		bad("format %q is not one of json, form, cloudevents or the default envelope", b.Format)
	}

	keys := make([]string, 0, len(b.Fields))
	for k := range b.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	env := Record{}.env()
	for _, k := range keys {
		src := b.Fields[k]
		switch {
		case strings.TrimSpace(k) == "":
			bad("fields: an output key is empty")
			continue
		case strings.TrimSpace(src) == "":
			errs = append(errs, &FieldError{Field: k, Message: "the expression is empty"})
			continue
		}
		p, err := expr.Compile(src, expr.Env(env))
		if err != nil {
			errs = append(errs, fieldError(k, err, false))
			continue
		}
		m.fields = append(m.fields, field{key: k, prog: p})
	}

	for _, k := range sortedKeys(b.Values) {
		switch {
		case len(b.Fields) > 0 && !hasKey(b.Fields, k):
			bad("values[%q]: %q is not an output key of fields", k, k)
		case len(b.Values[k]) == 0:
			bad("values[%q] maps nothing", k)
		}
	}
	if len(b.Values) > 0 {
		m.values = b.Values
	}

	if len(b.Select) > 0 {
		m.selected = make(map[string]bool, len(b.Select))
		for _, f := range b.Select {
			if strings.TrimSpace(f) == "" {
				bad("select: a field name is empty")
			}
			m.selected[f] = true
		}
	}

	seen := map[string]string{}
	paths := func(list string, names []string) [][]string {
		var out [][]string
		for _, name := range names {
			segs := strings.Split(name, ".")
			ok := true
			for _, s := range segs {
				if strings.TrimSpace(s) == "" {
					bad("%s: %q has an empty field name", list, name)
					ok = false
					break
				}
			}
			if prev, dup := seen[name]; dup && prev != list {
				bad("%s: %q is also in %s", list, name, prev)
			}
			seen[name] = list
			if ok {
				out = append(out, segs)
			}
		}
		return out
	}
	m.drop = paths("redact", b.Redact)
	m.mask = paths("mask", b.Mask)

	if b.Source != "" {
		if b.Format != CloudEvents {
			bad("source is a CloudEvents attribute: it needs format cloudevents")
		} else if _, err := url.Parse(b.Source); err != nil || strings.ContainsAny(b.Source, " \t\r\n") {
			bad("source %q is not a URI-reference", b.Source)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// FieldError is a field expression that does not compile, or that failed
// while a message was encoded. It wraps ErrInvalidBody or ErrMapping.
type FieldError struct {
	Field   string // the output key
	Line    int    // 1-based position in the expression; 0 when unknown
	Column  int
	Message string
	runtime bool
}

// Error says which field failed, why, and where in its expression.
func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("fields[%q]: %s (line %d, column %d)", e.Field, e.Message, e.Line, e.Column)
	}
	return fmt.Sprintf("fields[%q]: %s", e.Field, e.Message)
}

// Unwrap returns ErrMapping for a failure while encoding, ErrInvalidBody
// otherwise.
func (e *FieldError) Unwrap() error {
	if e.runtime {
		return ErrMapping
	}
	return ErrInvalidBody
}

func fieldError(key string, err error, runtime bool) *FieldError {
	fe := &FieldError{Field: key, Message: err.Error(), runtime: runtime}
	var pe *file.Error
	if errors.As(err, &pe) {
		fe.Message = pe.Message
		if pe.Line > 0 {
			fe.Line, fe.Column = pe.Line, pe.Column+1
		}
	}
	return fe
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
