package transform

import (
	"fmt"
	"net/url"
	"sort"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Mapper is a compiled body mapping.
type Mapper struct {
	keys  []string
	progs []*vm.Program
}

// mapEnv is what a mapping expression sees.
func mapEnv(r Record) map[string]any {
	return map[string]any{
		"old": r.Old, "new": r.New, "changed": r.Changed, "op": r.Op, "table": r.Table,
		"key": r.Key, "tenant": r.Tenant, "context": r.Context, "id": r.EventID, "time": r.Time,
	}
}

// Compile compiles the body's field expressions. A body without fields
// compiles to a nil Mapper.
func (b Body) Compile() (*Mapper, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if len(b.Fields) == 0 {
		return nil, nil
	}
	m := &Mapper{}
	for k := range b.Fields {
		m.keys = append(m.keys, k)
	}
	sort.Strings(m.keys)
	env := mapEnv(Record{})
	for _, k := range m.keys {
		p, err := expr.Compile(b.Fields[k], expr.Env(env), expr.AllowUndefinedVariables())
		if err != nil {
			return nil, fmt.Errorf("field %q: %v", k, err)
		}
		m.progs = append(m.progs, p)
	}
	return m, nil
}

// Map evaluates the mapping over one record.
func (m *Mapper) Map(r Record) (map[string]any, error) {
	out := make(map[string]any, len(m.keys))
	env := mapEnv(r)
	for i, k := range m.keys {
		v, err := expr.Run(m.progs[i], env)
		if err != nil {
			return nil, fmt.Errorf("field %q: %v", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// FormValues turns a mapped object into form values; nil values are left
// out.
func FormValues(m map[string]any) url.Values {
	v := url.Values{}
	for k, x := range m {
		if x == nil {
			continue
		}
		v.Set(k, fmt.Sprint(x))
	}
	return v
}
