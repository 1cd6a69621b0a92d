package condition

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Explanation is a dry run of a condition on one input: whether it fires
// and why, part by part. It is meant for an admin UI's "test this
// condition" button and encodes to JSON as is.
type Explanation struct {
	// Match is what [Condition.Match] returns for the same input.
	Match bool `json:"match"`
	// Reason sums up the outcome in one sentence.
	Reason string `json:"reason"`
	// Error is the evaluation error Match would return, if any.
	Error string `json:"error,omitempty"`
	// Op is the input's operation.
	Op string `json:"op"`
	// Changed lists the fields that changed value.
	Changed []string `json:"changed"`
	// FieldRule is the field rule's verdict.
	FieldRule FieldRuleResult `json:"field_rule"`
	// Tree is the tree's verdict, node by node; nil when there is no tree.
	Tree *TreeResult `json:"tree,omitempty"`
	// Expr is the expression's verdict; nil when there is no expression.
	Expr *ExprResult `json:"expr,omitempty"`
}

// FieldRuleResult is the verdict of a rule's field rule.
type FieldRuleResult struct {
	// Match is the rule's field rule.
	Match FieldMatch `json:"match"`
	// Fields are the fields it selects.
	Fields []string `json:"fields,omitempty"`
	// Applies is false when the rule lets the input through without
	// looking: AnyField, or an INSERT or DELETE.
	Applies bool `json:"applies"`
	// ChangedFields are the selected fields that changed.
	ChangedFields []string `json:"changed_fields,omitempty"`
	// Result is whether the field rule lets the input through.
	Result bool `json:"result"`
}

// ExprResult is the verdict of a rule's expression.
type ExprResult struct {
	// Expr is the expression.
	Expr string `json:"expr"`
	// Result is its value; false when it failed.
	Result bool `json:"result"`
	// Error says why it failed, if it did.
	Error string `json:"error,omitempty"`
	// Line and Column locate the failure, when known (1-based).
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// TreeResult is the verdict of a rule's tree.
type TreeResult struct {
	ExprResult
	// Root is the verdict of every node, from the root down.
	Root NodeResult `json:"root"`
}

// NodeResult is the verdict of one tree node, evaluated on its own.
type NodeResult struct {
	// Path locates the node, as in compile errors: "tree.all[1]".
	Path string `json:"path"`
	// Kind is "all", "any", "not" or "leaf".
	Kind string `json:"kind"`
	// Expr is the expression the node compiles to.
	Expr string `json:"expr"`
	// Result is the node's value; false when it failed.
	Result bool `json:"result"`
	// Error says why the node failed, if it did.
	Error string `json:"error,omitempty"`
	// Children are the verdicts of a group's nodes.
	Children []NodeResult `json:"children,omitempty"`
}

// Explain evaluates every part of c on in, without stopping at the first
// that fails, and says why c fires or not. Its Match is always what
// [Condition.Match] returns. A nil *Condition fires on everything.
func (c *Condition) Explain(in Input) (x Explanation) {
	x.Op = in.Op
	changed := in.Changed
	if changed == nil {
		changed = Changed(in.Old, in.New)
	}
	x.Changed = changed
	if c == nil {
		x.Match, x.Reason = true, "no condition: every change fires"
		x.FieldRule.Result = true
		return x
	}
	defer func() {
		if r := recover(); r != nil {
			x.Match, x.Error = false, fmt.Sprintf("panic: %v", r)
			x.Reason = "the condition could not be evaluated"
		}
	}()
	if err := checkOp(in.Op); err != nil {
		x.Error, x.Reason = err.Error(), "the input is not a change herald knows"
		return x
	}
	in.Changed = changed

	x.FieldRule = c.explainFieldRule(&in)
	var reasons []string
	if !x.FieldRule.Result {
		switch c.rule.Match {
		case AnySelected:
			reasons = append(reasons, fmt.Sprintf("none of the selected fields (%s) changed", strings.Join(c.rule.Fields, ", ")))
		default:
			var missing []string
			for _, f := range c.rule.Fields {
				if !slices.Contains(changed, f) {
					missing = append(missing, f)
				}
			}
			reasons = append(reasons, fmt.Sprintf("not every selected field changed (unchanged: %s)", strings.Join(missing, ", ")))
		}
	}

	st := getState(&in, true)
	defer putState(st)
	var firstErr error
	if c.tree != nil {
		ok, err := c.tree.run(st)
		x.Tree = &TreeResult{ExprResult: exprResult(c.tree.source, ok, err), Root: c.explainTree(st)}
		switch {
		case err != nil:
			firstErr = err
			reasons = append(reasons, "the tree failed to evaluate")
		case !ok:
			reasons = append(reasons, "the tree is false")
		}
	}
	if c.expr != nil {
		ok, err := c.expr.run(st)
		r := exprResult(c.expr.source, ok, err)
		x.Expr = &r
		switch {
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
			reasons = append(reasons, "the expression failed to evaluate")
		case !ok:
			reasons = append(reasons, "the expression is false")
		}
	}
	x.Match = len(reasons) == 0
	// Match stops at the field rule, and runs the expression only when the
	// tree holds: report the error it would report.
	if firstErr != nil && x.FieldRule.Result && (x.Tree == nil || x.Tree.Error != "" || x.Tree.Result) {
		x.Error = firstErr.Error()
	}
	if x.Match {
		x.Reason = "fires: every part of the condition holds"
	} else {
		x.Reason = "does not fire: " + strings.Join(reasons, "; ")
	}
	return x
}

func (c *Condition) explainFieldRule(in *Input) FieldRuleResult {
	r := FieldRuleResult{
		Match:   c.rule.Match,
		Fields:  c.rule.Fields,
		Applies: c.rule.Match != AnyField && in.Op == opUpdate,
		Result:  true,
	}
	for _, f := range c.rule.Fields {
		if fieldChanged(in, f) {
			r.ChangedFields = append(r.ChangedFields, f)
		}
	}
	if r.Applies {
		r.Result = c.fieldRulePasses(in)
	}
	return r
}

func exprResult(source string, ok bool, err error) ExprResult {
	r := ExprResult{Expr: source, Result: ok && err == nil}
	if err != nil {
		r.Error = err.Error()
		var ee *EvalError
		if errors.As(err, &ee) {
			r.Line, r.Column = ee.Line, ee.Column
		}
	}
	return r
}

// explainTree evaluates every node of the tree on its own.
func (c *Condition) explainTree(st *evalState) NodeResult {
	c.explainOnce.Do(func() { compileNodes(c.root) })
	return explainNode(c.root, st)
}

func compileNodes(t *treeNode) {
	t.prog, t.err = compileProgram("tree", t.source, maxTreeNodes)
	for _, child := range t.children {
		compileNodes(child)
	}
}

func explainNode(t *treeNode, st *evalState) NodeResult {
	r := NodeResult{Path: t.path, Kind: t.kind, Expr: t.source}
	if t.err != nil {
		r.Error = t.err.Error()
	} else {
		ok, err := t.prog.run(st)
		r.Result = ok && err == nil
		if err != nil {
			r.Error = err.Error()
		}
	}
	for _, child := range t.children {
		r.Children = append(r.Children, explainNode(child, st))
	}
	return r
}
