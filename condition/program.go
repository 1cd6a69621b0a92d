package condition

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// env is what an expression sees. It is a struct rather than a map so
// that filling it boxes nothing, and a pointer to it passes through vm.Run
// without allocating.
//
// Besides the variables it carries the functions the rewriter calls. They
// are fields of types expr knows (func(any, any) bool ...), so expr calls
// them directly, without the argument slice it allocates for functions
// given with expr.Function; the ones that read the input are closures
// bound to their env once, when the env is made.
type env struct {
	Old     map[string]any `expr:"old"`
	New     map[string]any `expr:"new"`
	Changed []string       `expr:"changed"`
	Op      string         `expr:"op"`
	Table   string         `expr:"table"`
	Key     string         `expr:"key"`
	Tenant  string         `expr:"tenant"`
	Context map[string]any `expr:"context"`

	Eq          func(a, b any) bool         `expr:"__herald_eq"`
	Ne          func(a, b any) bool         `expr:"__herald_ne"`
	Lt          func(a, b any) bool         `expr:"__herald_lt"`
	Le          func(a, b any) bool         `expr:"__herald_le"`
	Gt          func(a, b any) bool         `expr:"__herald_gt"`
	Ge          func(a, b any) bool         `expr:"__herald_ge"`
	In          func(x, coll any) bool      `expr:"__herald_in"`
	Contains    func(a, b any) bool         `expr:"__herald_contains"`
	StartsWith  func(a, b any) bool         `expr:"__herald_startsWith"`
	EndsWith    func(a, b any) bool         `expr:"__herald_endsWith"`
	Get         func(m, key any) any        `expr:"__herald_get"`
	FieldChange func(field any) bool        `expr:"__herald_changed"`
	ChangedTo   func(field, value any) bool `expr:"__herald_changedTo"`
	ChangedFrom func(field, value any) bool `expr:"__herald_changedFrom"`
	Loop        func() bool                 `expr:"__herald_loop"`

	// loops counts closure iterations in this evaluation.
	loops int
}

// newEnv returns an env with its functions bound.
func newEnv() *env {
	e := &env{
		Eq:       Equal,
		Ne:       func(a, b any) bool { return !Equal(a, b) },
		Lt:       func(a, b any) bool { c, ok := compare(a, b); return ok && c < 0 },
		Le:       func(a, b any) bool { c, ok := compare(a, b); return ok && c <= 0 },
		Gt:       func(a, b any) bool { c, ok := compare(a, b); return ok && c > 0 },
		Ge:       func(a, b any) bool { c, ok := compare(a, b); return ok && c >= 0 },
		In:       member,
		Contains: contains,
		StartsWith: func(a, b any) bool {
			s, t, ok := twoStrings(a, b)
			return ok && strings.HasPrefix(s, t)
		},
		EndsWith: func(a, b any) bool {
			s, t, ok := twoStrings(a, b)
			return ok && strings.HasSuffix(s, t)
		},
		Get: func(m, key any) any {
			r, _ := m.(map[string]any)
			return r[key.(string)]
		},
	}
	// Failures panic: expr's VM recovers them into the evaluation's error,
	// with the position of the call.
	e.FieldChange = func(field any) bool {
		return slices.Contains(e.Changed, fieldName("changed", field))
	}
	e.ChangedTo = func(field, value any) bool {
		f := fieldName("changedTo", field)
		return slices.Contains(e.Changed, f) && Equal(e.New[f], value)
	}
	e.ChangedFrom = func(field, value any) bool {
		f := fieldName("changedFrom", field)
		return slices.Contains(e.Changed, f) && Equal(e.Old[f], value)
	}
	e.Loop = func() bool {
		e.loops++
		if e.loops > MaxLoopIterations {
			panic(errLoopLimit)
		}
		return true
	}
	return e
}

func fieldName(helper string, field any) string {
	s, ok := field.(string)
	if !ok {
		panic(fmt.Errorf("%s: the field name is %s, not a string", helper, describe(field)))
	}
	return s
}

// evalState is what one evaluation needs besides the program. States are
// pooled: they hold no input between evaluations, and reusing the VM's
// stack and the env is what keeps an evaluation from allocating.
type evalState struct {
	env *env
	vm  vm.VM
}

// statePool is shared by every Condition: a state is independent of the
// program it runs, and one pool keeps idle memory low when a process holds
// thousands of webhooks.
var statePool = sync.Pool{New: func() any { return &evalState{env: newEnv()} }}

// maxMemory is the VM's memory budget per evaluation, in expr's units
// (roughly: elements of the lists, maps and strings the expression builds).
const maxMemory = 100_000

func getState(in *Input, needsChanged bool) *evalState {
	st := statePool.Get().(*evalState)
	e := st.env
	e.Old, e.New, e.Context = in.Old, in.New, in.Context
	e.Op, e.Table, e.Key, e.Tenant = in.Op, in.Table, in.Key, in.Tenant
	e.Changed = in.Changed
	if needsChanged && e.Changed == nil {
		e.Changed = Changed(in.Old, in.New)
	}
	return st
}

func putState(st *evalState) {
	e := st.env
	e.Old, e.New, e.Context, e.Changed = nil, nil, nil, nil
	e.Op, e.Table, e.Key, e.Tenant = "", "", "", ""
	// Drop what the last run left on the VM's stacks, so the pool does not
	// keep records alive.
	clear(st.vm.Stack[:cap(st.vm.Stack)])
	clear(st.vm.Scopes[:cap(st.vm.Scopes)])
	clear(st.vm.Variables)
	statePool.Put(st)
}

// program is one compiled expression: a rule's Expr, or the expression its
// Tree compiles to.
type program struct {
	part         string // "expr" or "tree"
	source       string
	prog         *vm.Program
	needsChanged bool // reads the changed list, directly or through a helper
}

// run evaluates p on st. Any failure, a non-boolean result included, is an
// *EvalError.
func (p *program) run(st *evalState) (bool, error) {
	st.env.loops = 0
	st.vm.MemoryBudget = maxMemory
	out, err := st.vm.Run(p.prog, st.env)
	if err != nil {
		return false, evalErrorFromExpr(p.part, err)
	}
	b, ok := out.(bool)
	if !ok {
		return false, &EvalError{Part: p.part, Message: fmt.Sprintf("result is %s, not a boolean", describe(out))}
	}
	return b, nil
}

func describe(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("%T %v", v, v)
}

// internalPrefix starts the names of the functions the rewriter calls.
// Expressions cannot name them themselves.
const internalPrefix = "__herald_"

const (
	fnEq          = internalPrefix + "eq"
	fnNe          = internalPrefix + "ne"
	fnLt          = internalPrefix + "lt"
	fnLe          = internalPrefix + "le"
	fnGt          = internalPrefix + "gt"
	fnGe          = internalPrefix + "ge"
	fnIn          = internalPrefix + "in"
	fnContains    = internalPrefix + "contains"
	fnStartsWith  = internalPrefix + "startsWith"
	fnEndsWith    = internalPrefix + "endsWith"
	fnChanged     = internalPrefix + "changed"
	fnChangedTo   = internalPrefix + "changedTo"
	fnChangedFrom = internalPrefix + "changedFrom"
	fnLoop        = internalPrefix + "loop"
	fnGet         = internalPrefix + "get"
)

// operators maps the binary operators herald gives its own semantics to
// the functions that implement them.
var operators = map[string]string{
	"==":         fnEq,
	"!=":         fnNe,
	"<":          fnLt,
	"<=":         fnLe,
	">":          fnGt,
	">=":         fnGe,
	"in":         fnIn,
	"contains":   fnContains,
	"startsWith": fnStartsWith,
	"endsWith":   fnEndsWith,
}

// helper is a function expressions call by name.
type helper struct {
	internal string
	params   []string
}

var helpers = map[string]helper{
	"changed":     {fnChanged, []string{"field"}},
	"changedTo":   {fnChangedTo, []string{"field", "value"}},
	"changedFrom": {fnChangedFrom, []string{"field", "value"}},
}

// member implements x in coll: an element of a list (by Equal), or a key
// present in a map with a non-nil value. Anything else holds nothing.
func member(x, coll any) bool {
	switch c := coll.(type) {
	case []any:
		for _, v := range c {
			if Equal(x, v) {
				return true
			}
		}
		return false
	case []string:
		// The changed list: compare as strings, without boxing each one.
		if s, ok := x.(string); ok {
			return slices.Contains(c, s)
		}
		for _, s := range c {
			if Equal(x, s) {
				return true
			}
		}
		return false
	case map[string]any:
		k, ok := x.(string)
		return ok && !isNil(c[k])
	}
	v := derefValue(reflect.ValueOf(coll))
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if Equal(x, v.Index(i).Interface()) {
				return true
			}
		}
	case reflect.Map:
		kv := reflect.ValueOf(x)
		if !kv.IsValid() || !kv.Type().AssignableTo(v.Type().Key()) {
			return false
		}
		e := v.MapIndex(kv)
		return e.IsValid() && !isNilValue(derefValue(e))
	}
	return false
}

// contains implements a contains b: a substring of a string, or an element
// of a list.
func contains(a, b any) bool {
	if s, t, ok := twoStrings(a, b); ok {
		return strings.Contains(s, t)
	}
	v := derefValue(reflect.ValueOf(a))
	if v.Kind() == reflect.Slice || v.Kind() == reflect.Array {
		return member(b, a)
	}
	return false
}

func twoStrings(a, b any) (string, string, bool) {
	s, ok1 := a.(string)
	t, ok2 := b.(string)
	return s, t, ok1 && ok2
}

// compileProgram compiles source with herald's environment, helpers and
// operator semantics. Errors are *CompileError; compileProgram never panics.
//
// It runs expr's stages itself rather than expr.Compile with a patch: expr
// type-checks a patched tree several times and skips the arguments of a
// call it has already typed, so an unknown name inside a rewritten
// comparison would go unreported.
func compileProgram(part, source string, maxNodes uint) (p *program, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &CompileError{Part: part, Message: fmt.Sprintf("cannot compile: %v", r)}
		}
	}()
	config := conf.New(env{})
	config.MaxNodes = maxNodes

	tree, err := parser.ParseWithConfig(source, config)
	if err != nil {
		return nil, compileErrorFromExpr(part, err)
	}
	// A first check types the nodes, for the rewriter's static checks; its
	// errors may be ones the rewrite removes (changed is a list, not a
	// function), so they are ignored until the final check.
	_, _ = checker.Check(tree, config)
	rw := &rewriter{source: tree.Source}
	ast.Walk(&tree.Node, rw)
	// The rewriter sees the expression as written, so its complaints are
	// closer to the admin's mistake than the checker's.
	if rw.err != nil {
		return nil, compileErrorFromExpr(part, rw.err)
	}
	ast.Walk(&tree.Node, untype{})
	t, err := checker.Check(tree, config)
	if err != nil {
		return nil, compileErrorFromExpr(part, err)
	}
	// The result must be a boolean; when its type is only known at run
	// time, run checks it.
	if t != nil && t.Kind() != reflect.Interface && t.Kind() != reflect.Bool {
		return nil, &CompileError{Part: part, Message: fmt.Sprintf("the expression must be a boolean, not %s", t)}
	}
	if err := optimizer.Optimize(&tree.Node, config); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			err = fe.Bind(tree.Source)
		}
		return nil, compileErrorFromExpr(part, err)
	}
	prog, err := compiler.Compile(tree, config)
	if err != nil {
		return nil, compileErrorFromExpr(part, err)
	}
	return &program{part: part, source: source, prog: prog, needsChanged: rw.needsChanged}, nil
}

// untype forgets the types the first check gave, so the final check looks
// at every node afresh.
type untype struct{}

func (untype) Visit(node *ast.Node) { (*node).SetNature(nature.Nature{}) }

// rewriter is the AST pass that gives expressions herald's semantics:
//
//   - comparisons, in, contains, startsWith and endsWith call functions that
//     use Equal and compare, so 7 == 7.0, and nil > 5 is false rather than
//     an error;
//   - changed(f), changedTo(f, v) and changedFrom(f, v) call functions that
//     also receive the environment (so `changed` stays a plain list);
//   - reading a field of old, new or context is a direct map lookup;
//   - every closure body (all, any, filter, map ...) first counts an
//     iteration, which bounds the work of nested loops.
//
// It runs once, between a first type check and the final one, and records
// the first mistake it finds with its position.
type rewriter struct {
	source       file.Source
	err          *file.Error
	needsChanged bool
}

func (r *rewriter) fail(n ast.Node, format string, args ...any) {
	if r.err == nil {
		r.err = (&file.Error{Location: n.Location(), Message: fmt.Sprintf(format, args...)}).Bind(r.source)
	}
}

func (r *rewriter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		switch {
		case strings.HasPrefix(n.Value, internalPrefix), n.Value == "$env":
			// $env would hand out the env itself, functions included.
			r.fail(n, "unknown name %s", n.Value)
		case n.Value == "changed":
			r.needsChanged = true
		}
	case *ast.CallNode:
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok {
			return
		}
		h, ok := helpers[id.Value]
		if !ok {
			return
		}
		if len(n.Arguments) != len(h.params) {
			r.fail(n, "%s takes %d argument(s) (%s), not %d", id.Value, len(h.params), strings.Join(h.params, ", "), len(n.Arguments))
			return
		}
		if k := staticKind(n.Arguments[0]); k != "" && k != "string" {
			r.fail(n.Arguments[0], "%s: the field name must be a string, not %s", id.Value, k)
			return
		}
		*node = newCall(n, h.internal, n.Arguments...)
		r.needsChanged = true
	case *ast.BinaryNode:
		fn, ok := operators[n.Operator]
		if !ok {
			return
		}
		switch n.Operator {
		case "<", "<=", ">", ">=":
			l, rk := staticKind(n.Left), staticKind(n.Right)
			switch {
			case l == "nil" || rk == "nil":
				r.fail(n, "cannot order nil with %s: nil is neither greater nor less than anything (test for it with == nil)", n.Operator)
				return
			case l != "" && rk != "" && !orderable(l, rk):
				r.fail(n, "cannot order %s and %s with %s (numbers, strings and times can be ordered)", l, rk, n.Operator)
				return
			}
		}
		*node = newCall(n, fn, n.Left, n.Right)
	case *ast.MemberNode:
		// old.x, new.x and context.x read the map directly: expr's generic
		// member access goes through reflect and allocates for each read.
		if _, ok := n.Property.(*ast.StringNode); ok && !n.Method && !n.Optional && n.Node.Type() == mapType {
			*node = newCall(n, fnGet, n.Node, n.Property)
		}
	case *ast.PredicateNode:
		n.Node = &ast.SequenceNode{Nodes: []ast.Node{newCall(n, fnLoop), n.Node}}
		n.Node.SetLocation(n.Location())
	}
}

func newIdent(at ast.Node, name string) ast.Node {
	id := &ast.IdentifierNode{Value: name}
	id.SetLocation(at.Location())
	return id
}

func newCall(at ast.Node, fn string, args ...ast.Node) ast.Node {
	call := &ast.CallNode{Callee: newIdent(at, fn), Arguments: args}
	call.SetLocation(at.Location())
	return call
}

var (
	timeType = reflect.TypeFor[time.Time]()
	mapType  = reflect.TypeFor[map[string]any]()
)

// staticKind names the category of n's type when the checker knows it:
// "number", "string", "time", or the Go type; "" when unknown.
func staticKind(n ast.Node) string {
	switch n.(type) {
	case *ast.NilNode:
		return "nil"
	case *ast.IntegerNode, *ast.FloatNode:
		return "number"
	case *ast.StringNode:
		return "string"
	case *ast.BoolNode:
		return "bool"
	case *ast.ArrayNode:
		return "list"
	case *ast.MapNode:
		return "map"
	}
	t := n.Type()
	if t == nil || t.Kind() == reflect.Interface {
		return ""
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	}
	if t == timeType {
		return "time"
	}
	return t.String()
}

func orderable(a, b string) bool {
	switch {
	case a == b:
		return a == "number" || a == "string" || a == "time"
	default:
		return (a == "time" && b == "string") || (a == "string" && b == "time")
	}
}
