// Package condition compiles and evaluates a webhook's When rule.
package condition

import (
	"errors"
	"fmt"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// ErrInvalidRule reports a rule that does not compile.
var ErrInvalidRule = errors.New("condition: invalid rule")

// FieldMatch says which field changes let an Update through.
type FieldMatch string

// Field rules.
const (
	AnyField    FieldMatch = ""
	AnySelected FieldMatch = "any_selected"
	AllSelected FieldMatch = "all_selected"
)

// Rule is a webhook's condition as data.
type Rule struct {
	Match  FieldMatch `json:"match,omitempty"`
	Fields []string   `json:"fields,omitempty"`
	Expr   string     `json:"expr,omitempty"`
}

// Input is the change a condition is evaluated against.
type Input struct {
	Table, Op, Key, Tenant string
	Old, New, Context      map[string]any
	Changed                []string
}

// Condition is a compiled rule.
type Condition struct {
	rule Rule
	prog *vm.Program
}

// Compile compiles r.
func Compile(r Rule) (*Condition, error) {
	c := &Condition{rule: r}
	if r.Expr != "" {
		p, err := expr.Compile(r.Expr, expr.AsBool(), expr.AllowUndefinedVariables())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidRule, err)
		}
		c.prog = p
	}
	return c, nil
}

// Match reports whether in passes the condition.
func (c *Condition) Match(in Input) (bool, error) {
	if c == nil {
		return true, nil
	}
	if in.Changed == nil {
		in.Changed = Changed(in.Old, in.New)
	}
	if in.Op == "UPDATE" && c.rule.Match != AnyField {
		n := 0
		for _, f := range c.rule.Fields {
			for _, ch := range in.Changed {
				if ch == f {
					n++
				}
			}
		}
		if n == 0 || (c.rule.Match == AllSelected && n < len(c.rule.Fields)) {
			return false, nil
		}
	}
	if c.prog == nil {
		return true, nil
	}
	out, err := expr.Run(c.prog, map[string]any{"old": in.Old, "new": in.New, "changed": in.Changed, "op": in.Op, "table": in.Table, "key": in.Key, "tenant": in.Tenant, "context": in.Context})
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
