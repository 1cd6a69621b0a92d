package transform

import (
	"bytes"
	"encoding/json"
	"maps"
	"mime"
	"net/url"
	"reflect"
)

// Withheld replaces a stored answer that still holds a value the webhook
// redacts or masks.
const Withheld = "[withheld: the answer holds a value this webhook redacts]"

// minSensitive is the shortest redacted value looked for in stored
// answers: shorter ones ("1", "yes") would match almost any text.
const minSensitive = 4

// shapes reports whether Shape changes anything.
func (m *Mapper) shapes() bool {
	return m.selected != nil || len(m.drop) > 0 || len(m.mask) > 0 || len(m.values) > 0 && len(m.fields) == 0
}

// Redacts reports whether the body redacts or masks any field.
func (m *Mapper) Redacts() bool { return m != nil && len(m.drop)+len(m.mask) > 0 }

// Shape returns r as the body lets it leave: New and Old keep only the
// selected fields, redacted fields are removed from New, Old and Context
// and masked ones replaced by MaskValue, Changed keeps the names of what
// is still there, and, for a body without Fields, the value maps apply to
// New and Old. Shape never changes r's own maps; it copies what it
// changes.
func (m *Mapper) Shape(r Record) Record {
	if m == nil || !m.shapes() {
		return r
	}
	r.New = m.shapeMap(r.New, true)
	r.Old = m.shapeMap(r.Old, true)
	r.Context = m.shapeMap(r.Context, false)
	if r.Changed != nil {
		changed := make([]string, 0, len(r.Changed))
		for _, c := range r.Changed {
			if m.keeps(c) {
				changed = append(changed, c)
			}
		}
		r.Changed = changed
	}
	return r
}

// keeps reports whether a field name may be listed in changed.
func (m *Mapper) keeps(name string) bool {
	if m.selected != nil && !m.selected[name] {
		return false
	}
	for _, p := range m.drop {
		if len(p) == 1 && p[0] == name {
			return false
		}
	}
	return true
}

func (m *Mapper) shapeMap(src map[string]any, record bool) map[string]any {
	if src == nil {
		return nil
	}
	out := make(map[string]any, len(src))
	for k, v := range src {
		if record && m.selected != nil && !m.selected[k] {
			continue
		}
		if record && len(m.fields) == 0 {
			if vals, ok := m.values[k]; ok {
				v = mapValue(vals, v)
			}
		}
		out[k] = v
	}
	m.redactMap(out)
	return out
}

// redactMap applies Redact and Mask to a map the caller owns; nested
// values are copied before they are changed.
func (m *Mapper) redactMap(out map[string]any) {
	for _, p := range m.drop {
		applyPath(out, p, false)
	}
	for _, p := range m.mask {
		applyPath(out, p, true)
	}
}

func applyPath(m map[string]any, path []string, mask bool) {
	v, ok := m[path[0]]
	if !ok {
		return
	}
	if len(path) == 1 {
		if mask {
			m[path[0]] = MaskValue
		} else {
			delete(m, path[0])
		}
		return
	}
	m[path[0]] = applyNested(v, path[1:], mask)
}

// applyNested walks the rest of a path into objects and lists of objects,
// copying what it changes.
func applyNested(v any, path []string, mask bool) any {
	switch x := v.(type) {
	case map[string]any:
		c := maps.Clone(x)
		applyPath(c, path, mask)
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = applyNested(e, path, mask)
		}
		return c
	}
	if composite(v) {
		// A Go value a hook put in the record (a struct, a typed map):
		// walk its JSON form, which is what would be sent.
		if j, ok := jsonForm(v); ok {
			return applyNested(j, path, mask)
		}
	}
	return v
}

// composite reports whether v is a Go value that JSON encodes as an
// object or a list.
func composite(v any) bool {
	if v == nil {
		return false
	}
	switch reflect.TypeOf(v).Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct, reflect.Pointer, reflect.Interface:
		return true
	}
	return false
}

func jsonForm(v any) (any, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, false
	}
	switch out.(type) {
	case map[string]any, []any:
		return out, true
	}
	return nil, false
}

// RedactResponse scrubs an answer before it is kept in the delivery log of
// a webhook that redacts or masks fields. In a JSON or form answer, every
// key named like a redacted field (the last part of its path), at any
// depth, is removed, and every key named like a masked one is masked.
// Then, whatever the format, an answer that still contains a redacted or
// masked value of recs (as text, at least 4 characters long) is replaced
// by Withheld as a whole. A body that redacts nothing returns the answer
// unchanged.
func (m *Mapper) RedactResponse(body []byte, contentType string, recs []Record) []byte {
	if !m.Redacts() || len(body) == 0 {
		return body
	}
	drop, mask := lastNames(m.drop), lastNames(m.mask)
	out := body
	mt, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mt == "application/x-www-form-urlencoded":
		if q, err := url.ParseQuery(string(body)); err == nil {
			changed := false
			for k := range q {
				if drop[k] {
					delete(q, k)
					changed = true
				} else if mask[k] {
					q[k] = []string{MaskValue}
					changed = true
				}
			}
			if changed {
				out = []byte(q.Encode())
			}
		}
	case json.Valid(body):
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			if v, changed := scrubNames(v, drop, mask); changed {
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				if enc.Encode(v) == nil {
					out = bytes.TrimRight(buf.Bytes(), "\n")
				}
			}
		}
	}
	for _, s := range m.sensitive(recs) {
		if bytes.Contains(out, []byte(s)) {
			return []byte(Withheld)
		}
	}
	return out
}

func lastNames(paths [][]string) map[string]bool {
	out := make(map[string]bool, len(paths))
	for _, p := range paths {
		out[p[len(p)-1]] = true
	}
	return out
}

// scrubNames removes or masks keys by name at any depth of a decoded JSON
// value.
func scrubNames(v any, drop, mask map[string]bool) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		changed := false
		for k, e := range x {
			switch {
			case drop[k]:
				delete(x, k)
				changed = true
			case mask[k]:
				x[k] = MaskValue
				changed = true
			default:
				var c bool
				if x[k], c = scrubNames(e, drop, mask); c {
					changed = true
				}
			}
		}
		return x, changed
	case []any:
		changed := false
		for i, e := range x {
			var c bool
			if x[i], c = scrubNames(e, drop, mask); c {
				changed = true
			}
		}
		return x, changed
	}
	return v, false
}

// sensitive returns the redacted and masked values of recs as text.
func (m *Mapper) sensitive(recs []Record) []string {
	var out []string
	add := func(v any) {
		if s, ok := valueKey(v); ok && len(s) >= minSensitive {
			if _, isBool := v.(bool); !isBool && v != nil {
				out = append(out, s)
			}
		}
	}
	for _, r := range recs {
		for _, src := range []map[string]any{r.New, r.Old, r.Context} {
			for _, p := range append(append([][]string(nil), m.drop...), m.mask...) {
				collect(src, p, add)
			}
		}
	}
	return out
}

// collect calls add with every scalar found at path in m, and below it.
func collect(m map[string]any, path []string, add func(any)) {
	v, ok := m[path[0]]
	if !ok {
		return
	}
	if len(path) == 1 {
		leaves(v, add)
		return
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			collect(x, path[1:], add)
		case []any:
			for _, e := range x {
				walk(e)
			}
		default:
			if composite(v) {
				if j, ok := jsonForm(v); ok {
					walk(j)
				}
			}
		}
	}
	walk(v)
}

func leaves(v any, add func(any)) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			leaves(e, add)
		}
	case []any:
		for _, e := range x {
			leaves(e, add)
		}
	default:
		if composite(v) {
			if j, ok := jsonForm(v); ok {
				leaves(j, add)
			}
			return
		}
		if _, ok := valueKey(v); ok {
			add(v)
		} else if s, ok := v.(interface{ String() string }); ok {
			add(s.String())
		}
	}
}
