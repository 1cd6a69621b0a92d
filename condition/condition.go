package condition

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// FieldMatch says which field changes let an UPDATE through.
type FieldMatch string

// Field rules. They gate UPDATEs only: an INSERT or a DELETE passes them.
const (
	// AnyField lets every change through. It is the zero value.
	AnyField FieldMatch = ""
	// AnySelected lets an UPDATE through when at least one of the
	// selected fields changed value.
	AnySelected FieldMatch = "any_selected"
	// AllSelected lets an UPDATE through only when every selected field
	// changed value.
	AllSelected FieldMatch = "all_selected"
)

// Limits on what a rule may ask for. Rules come from admins, so their cost
// is bounded when they are compiled and when they run.
const (
	// MaxExprBytes is the longest Rule.Expr accepted.
	MaxExprBytes = 4096
	// MaxExprNodes is the most syntax nodes Rule.Expr may parse into.
	MaxExprNodes = 1000
	// MaxTreeDepth is the deepest a Rule.Tree may nest, counting every
	// node from the root to a leaf.
	MaxTreeDepth = 10
	// MaxTreeLeaves is the most leaves a Rule.Tree may hold.
	MaxTreeLeaves = 100
	// MaxTreeExprBytes is the longest expression a Rule.Tree may compile to.
	MaxTreeExprBytes = 16384
	// MaxLoopIterations is the most closure iterations (all, any, filter,
	// map ... bodies, nested ones counting each time) one evaluation may
	// run.
	MaxLoopIterations = 100_000
	// MaxFields is the most fields a field rule may select.
	MaxFields = 256
)

// maxTreeNodes bounds the syntax nodes of a tree's expression. Every node
// takes at least two bytes of source, so MaxTreeExprBytes is the limit a
// tree meets first.
const maxTreeNodes = MaxTreeExprBytes / 2

// Rule is a webhook's condition as data. The zero Rule matches every
// change. Its parts are ANDed: the field rule, then the tree, then the
// expression.
type Rule struct {
	// Match is the field rule.
	Match FieldMatch `json:"match,omitempty"`
	// Fields are the fields the field rule selects; required by
	// AnySelected and AllSelected, refused by AnyField.
	Fields []string `json:"fields,omitempty"`
	// Expr is an expr-lang boolean expression; empty or blank means true.
	Expr string `json:"expr,omitempty"`
	// Tree is an AND/OR tree as data, as an admin UI builds it; nil means
	// true.
	Tree *Node `json:"tree,omitempty"`
}

// IsZero reports whether r is the zero Rule, which matches every change.
func (r Rule) IsZero() bool {
	return r.Match == AnyField && len(r.Fields) == 0 && r.Expr == "" && r.Tree == nil
}

// Input is the change a condition is evaluated against.
type Input struct {
	// Table, Key and Tenant identify the record; Op is "INSERT", "UPDATE"
	// or "DELETE" (anything else is an evaluation error).
	Table, Op, Key, Tenant string
	// Old is the record before the change (nil on INSERT), New the record
	// after it (nil on DELETE), Context what the caller adds: actor,
	// request id, source system ... Match does not modify them.
	Old, New, Context map[string]any
	// Changed lists the fields whose values changed. When nil it is
	// computed from Old and New with [Changed], and only if the rule needs
	// it; a caller that has it already passes it in, and it is used as
	// given.
	Changed []string
}

// Operations, as Input.Op spells them.
const (
	opInsert = "INSERT"
	opUpdate = "UPDATE"
	opDelete = "DELETE"
)

// Condition is a compiled Rule. It is immutable and safe for concurrent
// use.
type Condition struct {
	rule         Rule
	expr         *program // nil: no expression
	tree         *program // nil: no tree
	root         *treeNode
	needsChanged bool

	explainOnce sync.Once // compiles every tree node for Explain, once
}

// Compile validates every part of r and compiles its tree and expression
// once. Every error wraps [ErrInvalidRule]; most are a [*CompileError]
// naming the part, the tree path or the line and column at fault.
func Compile(r Rule) (*Condition, error) {
	if err := checkFieldRule(r); err != nil {
		return nil, err
	}
	c := &Condition{rule: r.clone()}
	if r.Tree != nil {
		root, err := buildTree(r.Tree)
		if err != nil {
			return nil, err
		}
		p, err := compileProgram("tree", root.source, maxTreeNodes)
		if err != nil {
			return nil, err
		}
		c.root, c.tree = root, p
		c.needsChanged = c.needsChanged || p.needsChanged
	}
	if strings.TrimSpace(r.Expr) != "" {
		if len(r.Expr) > MaxExprBytes {
			return nil, &CompileError{Part: "expr", Message: fmt.Sprintf("expression is %d bytes long; the limit is %d", len(r.Expr), MaxExprBytes)}
		}
		p, err := compileProgram("expr", r.Expr, MaxExprNodes)
		if err != nil {
			return nil, err
		}
		c.expr = p
		c.needsChanged = c.needsChanged || p.needsChanged
	}
	return c, nil
}

func checkFieldRule(r Rule) error {
	switch r.Match {
	case AnyField:
		if len(r.Fields) > 0 {
			return &CompileError{Part: "fields", Message: fmt.Sprintf("fields are selected but match is empty (any field); set match to %q or %q, or drop the fields", AnySelected, AllSelected)}
		}
		return nil
	case AnySelected, AllSelected:
	default:
		return &CompileError{Part: "match", Message: fmt.Sprintf("unknown field rule %q (want %q, %q or empty for any field)", string(r.Match), AnySelected, AllSelected)}
	}
	if len(r.Fields) == 0 {
		return &CompileError{Part: "fields", Message: fmt.Sprintf("match %q selects no field; list at least one", r.Match)}
	}
	if len(r.Fields) > MaxFields {
		return &CompileError{Part: "fields", Message: fmt.Sprintf("%d fields selected; the limit is %d", len(r.Fields), MaxFields)}
	}
	for i, f := range r.Fields {
		if f == "" {
			return &CompileError{Part: "fields", Message: fmt.Sprintf("field %d is empty", i)}
		}
		if slices.Contains(r.Fields[:i], f) {
			return &CompileError{Part: "fields", Message: fmt.Sprintf("field %q is selected twice", f)}
		}
	}
	return nil
}

func (r Rule) clone() Rule {
	r.Fields = slices.Clone(r.Fields)
	r.Tree = r.Tree.clone()
	return r
}

// Rule returns the rule c was compiled from. The result is a copy: changing
// it does not change c.
func (c *Condition) Rule() Rule {
	if c == nil {
		return Rule{}
	}
	return c.rule.clone()
}

// Match reports whether in passes the condition: its field rule, then its
// tree, then its expression. A nil *Condition matches everything.
//
// An evaluation error (wrapping [ErrEval]) means "does not match": Match
// returns false with it so the caller can report it. Match never panics.
func (c *Condition) Match(in Input) (ok bool, err error) {
	if c == nil {
		return true, nil
	}
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, &EvalError{Part: "internal", Message: fmt.Sprintf("panic: %v", r)}
		}
	}()
	if err := checkOp(in.Op); err != nil {
		return false, err
	}
	if in.Op == opUpdate && !c.fieldRulePasses(&in) {
		return false, nil
	}
	if c.tree == nil && c.expr == nil {
		return true, nil
	}
	st := getState(&in, c.needsChanged)
	defer putState(st)
	if c.tree != nil {
		if ok, err := c.tree.run(st); !ok || err != nil {
			return false, err
		}
	}
	if c.expr != nil {
		return c.expr.run(st)
	}
	return true, nil
}

func checkOp(op string) error {
	switch op {
	case opInsert, opUpdate, opDelete:
		return nil
	}
	return &EvalError{Part: "input", Message: fmt.Sprintf("op %q is not INSERT, UPDATE or DELETE", op)}
}

// fieldRulePasses applies the field rule to an UPDATE.
func (c *Condition) fieldRulePasses(in *Input) bool {
	switch c.rule.Match {
	case AnySelected:
		for _, f := range c.rule.Fields {
			if fieldChanged(in, f) {
				return true
			}
		}
		return false
	case AllSelected:
		for _, f := range c.rule.Fields {
			if !fieldChanged(in, f) {
				return false
			}
		}
	}
	return true
}

// fieldChanged looks f up in the given changed list, or compares its two
// values when there is none: cheaper than diffing the whole record.
func fieldChanged(in *Input, f string) bool {
	if in.Changed != nil {
		return slices.Contains(in.Changed, f)
	}
	return !Equal(in.Old[f], in.New[f])
}
