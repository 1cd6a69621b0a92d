package transform

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"
)

// Mapper is a compiled Body, made by Body.Compile and safe for concurrent
// use. The dispatcher compiles each webhook's body once, when the
// definition is saved or loaded, and keeps the Mapper with it.
type Mapper struct {
	format   Format
	fields   []field // sorted by key
	values   map[string]map[string]any
	selected map[string]bool // nil: every field
	drop     [][]string      // Redact, split on dots
	mask     [][]string      // Mask, split on dots
	source   string
	runners  sync.Pool // *runner, reused across records
}

// runner is a VM and an environment map, reused so that a record costs
// neither a VM nor a map of its own. A pooled runner keeps the last
// record's maps until its next use or until the garbage collector empties
// the pool; overwriting beats clearing and refilling by about a tenth.
type runner struct {
	vm  vm.VM
	env map[string]any
}

type field struct {
	key  string
	prog *vm.Program
}

// Format returns the body format in effect: JSON for an envelope body
// with Fields. A nil Mapper is the plain envelope.
func (m *Mapper) Format() Format {
	if m == nil {
		return Envelope
	}
	return m.format
}

// HasFields reports whether the body maps fields.
func (m *Mapper) HasFields() bool { return m != nil && len(m.fields) > 0 }

// Passthrough reports whether the body is the plain envelope with nothing
// to select, redact, mask or map, so the stored payloads can be sent as
// they are.
func (m *Mapper) Passthrough() bool {
	return m == nil || m.format == Envelope && !m.shapes()
}

// Source returns the configured CloudEvents source, or "" for the
// default.
func (m *Mapper) Source() string {
	if m == nil {
		return ""
	}
	return m.source
}

// env is what a mapping expression sees.
func (r Record) env() map[string]any {
	env := make(map[string]any, 10)
	r.fill(env)
	return env
}

// fill sets the environment's ten names; on a map that has them already,
// it allocates nothing but the boxed time.
func (r Record) fill(env map[string]any) {
	env["old"], env["new"], env["changed"], env["context"] = r.Old, r.New, r.Changed, r.Context
	env["op"], env["table"], env["key"], env["tenant"], env["id"] = r.Op, r.Table, r.Key, r.Tenant, r.EventID
	env["time"] = r.Time
}

// Map evaluates the field expressions over one record, then applies the
// value maps and the redaction to the result. It does not Shape r first:
// the dispatcher does (so expressions see the record already selected
// and redacted). A Mapper without fields returns an empty object. A
// failing expression returns a *FieldError wrapping ErrMapping.
func (m *Mapper) Map(r Record) (map[string]any, error) {
	if m == nil {
		return map[string]any{}, nil
	}
	out := make(map[string]any, len(m.fields))
	if len(m.fields) == 0 {
		return out, nil
	}
	run, _ := m.runners.Get().(*runner)
	if run == nil {
		run = &runner{env: make(map[string]any, 10)}
	}
	r.fill(run.env) // overwrites the last record's values: no clear, no growth
	defer m.runners.Put(run)
	for _, f := range m.fields {
		v, err := run.vm.Run(f.prog, run.env)
		if err != nil {
			return nil, fieldError(f.key, err, true)
		}
		if vals, ok := m.values[f.key]; ok {
			v = mapValue(vals, v)
		}
		out[f.key] = v
	}
	m.redactMap(out)
	return out, nil
}

// mapValue looks v up in a value map by its JSON text; unlisted values
// pass unchanged.
func mapValue(vals map[string]any, v any) any {
	k, ok := valueKey(v)
	if !ok {
		return v
	}
	if to, ok := vals[k]; ok {
		return to
	}
	return v
}

// valueKey is the text a value map looks a value up by.
func valueKey(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "null", true
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case uint:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// FormValues turns a mapped object into form values. Strings go as they
// are; numbers in plain decimal (no exponent); booleans as true/false;
// times as RFC 3339; lists as repeated keys; objects as JSON text. Nil
// values are left out.
func FormValues(m map[string]any) url.Values {
	v := make(url.Values, len(m))
	for k, x := range m {
		switch list := x.(type) {
		case []any:
			for _, e := range list {
				if s, ok := formText(e); ok {
					v.Add(k, s)
				}
			}
		case []string:
			v[k] = append([]string(nil), list...)
		default:
			if s, ok := formText(x); ok {
				v.Set(k, s)
			}
		}
	}
	return v
}

func formText(x any) (string, bool) {
	switch t := x.(type) {
	case nil:
		return "", false
	case time.Time:
		return t.Format(time.RFC3339Nano), true
	case fmt.Stringer:
		return t.String(), true
	}
	if s, ok := valueKey(x); ok {
		return s, true
	}
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprint(x), true
	}
	return string(b), true
}
