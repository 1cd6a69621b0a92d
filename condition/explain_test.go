package condition

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExplainFires(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{
		Match:  AnySelected,
		Fields: []string{"status", "grade"},
		Tree:   All(Leaf("new.department", OpEq, "HR"), Any(Leaf("status", OpChangedTo, "Approved"), Leaf("new.grade", OpGt, 9))),
		Expr:   `old.status == "Pending"`,
	})
	x := c.Explain(update(map[string]any{"status": "Approved"}))
	assert.True(t, x.Match)
	assert.Equal(t, "fires: every part of the condition holds", x.Reason)
	assert.Empty(t, x.Error)
	assert.Equal(t, "UPDATE", x.Op)
	assert.Equal(t, []string{"status"}, x.Changed)
	assert.Equal(t, FieldRuleResult{
		Match: AnySelected, Fields: []string{"status", "grade"}, Applies: true,
		ChangedFields: []string{"status"}, Result: true,
	}, x.FieldRule)
	require.NotNil(t, x.Expr)
	assert.Equal(t, ExprResult{Expr: `old.status == "Pending"`, Result: true}, *x.Expr)

	require.NotNil(t, x.Tree)
	assert.True(t, x.Tree.Result)
	assert.Equal(t, `new.department == "HR" && (changedTo("status", "Approved") || new.grade > 9)`, x.Tree.Expr)
	assert.Equal(t, NodeResult{
		Path: "tree", Kind: "all", Result: true,
		Expr: `new.department == "HR" && (changedTo("status", "Approved") || new.grade > 9)`,
		Children: []NodeResult{
			{Path: "tree.all[0]", Kind: "leaf", Expr: `new.department == "HR"`, Result: true},
			{Path: "tree.all[1]", Kind: "any", Expr: `changedTo("status", "Approved") || new.grade > 9`, Result: true,
				Children: []NodeResult{
					{Path: "tree.all[1].any[0]", Kind: "leaf", Expr: `changedTo("status", "Approved")`, Result: true},
					{Path: "tree.all[1].any[1]", Kind: "leaf", Expr: `new.grade > 9`, Result: false},
				}},
		},
	}, x.Tree.Root)
}

func TestExplainSaysWhy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		rule   Rule
		in     Input
		reason string
		err    string
	}{
		{
			"no selected field changed",
			Rule{Match: AnySelected, Fields: []string{"grade", "department"}},
			update(map[string]any{"status": "x"}),
			"does not fire: none of the selected fields (grade, department) changed", "",
		},
		{
			"not every selected field changed",
			Rule{Match: AllSelected, Fields: []string{"grade", "department", "status"}},
			update(map[string]any{"status": "x"}),
			"does not fire: not every selected field changed (unchanged: grade, department)", "",
		},
		{
			"tree false, expression false",
			Rule{Tree: Leaf("new.grade", OpGt, 5), Expr: "new.grade > 4"},
			update(nil),
			"does not fire: the tree is false; the expression is false", "",
		},
		{
			"expression fails",
			Rule{Expr: "new.grade + new.missing > 1"},
			update(nil),
			"does not fire: the expression failed to evaluate", "invalid operation",
		},
		{
			"expression fails behind a false field rule",
			Rule{Match: AnySelected, Fields: []string{"grade"}, Expr: "new.grade + new.missing > 1"},
			update(nil),
			"does not fire: none of the selected fields (grade) changed; the expression failed to evaluate", "",
		},
		{
			"expression fails behind a false tree",
			Rule{Tree: Leaf("op", OpEq, "INSERT"), Expr: "new.grade + new.missing > 1"},
			update(nil),
			"does not fire: the tree is false; the expression failed to evaluate", "",
		},
		{
			"unknown op",
			Rule{Expr: "true"},
			Input{Op: "MERGE"},
			"the input is not a change herald knows", `op "MERGE" is not INSERT, UPDATE or DELETE`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustCompile(t, tt.rule)
			x := c.Explain(tt.in)
			assert.False(t, x.Match)
			assert.Equal(t, tt.reason, x.Reason)

			// Explain reports exactly the error Match returns.
			ok, err := c.Match(tt.in)
			assert.False(t, ok)
			if tt.err == "" {
				assert.NoError(t, err)
				assert.Empty(t, x.Error)
			} else {
				require.Error(t, err)
				assert.Equal(t, err.Error(), x.Error)
				assert.Contains(t, x.Error, tt.err)
			}
		})
	}
}

func TestExplainFieldRuleOnInsert(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{Match: AllSelected, Fields: []string{"grade", "department"}})
	x := c.Explain(Input{Op: "INSERT", New: map[string]any{"grade": 1}})
	assert.True(t, x.Match)
	assert.False(t, x.FieldRule.Applies)
	assert.True(t, x.FieldRule.Result)
	assert.Equal(t, []string{"grade"}, x.FieldRule.ChangedFields)
}

func TestExplainTreeErrors(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{Tree: Any(Leaf("new.grade", OpEq, 3), Leaf("new.address.city", OpEq, "x"))})
	in := update(map[string]any{"address": "not a map"})
	x := c.Explain(in)
	ok, err := c.Match(in)
	assert.True(t, ok, "any stops at the first true leaf")
	require.NoError(t, err)
	assert.True(t, x.Match)
	require.NotNil(t, x.Tree)
	leaf := x.Tree.Root.Children[1]
	assert.Equal(t, "tree.any[1]", leaf.Path)
	assert.False(t, leaf.Result)
	assert.Contains(t, leaf.Error, "condition: evaluation failed: tree")

	c = mustCompile(t, Rule{Tree: All(Leaf("new.address.city", OpEq, "x"), Leaf("new.grade", OpEq, 3))})
	x = c.Explain(in)
	_, err = c.Match(in)
	require.ErrorIs(t, err, ErrEval)
	assert.False(t, x.Match)
	assert.Equal(t, err.Error(), x.Error)
	assert.Equal(t, err.Error(), x.Tree.Error)
	assert.Positive(t, x.Tree.Line)
	assert.Positive(t, x.Tree.Column)
}

func TestExplainJSON(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{
		Match: AnySelected, Fields: []string{"status"},
		Tree: Not(Leaf("new.status", OpEq, "Draft")),
		Expr: `new.grade > "x"`,
	})
	b, err := json.Marshal(c.Explain(update(map[string]any{"status": "Approved"})))
	require.NoError(t, err)
	assert.JSONEq(t, `{
		"match": false,
		"reason": "does not fire: the expression is false",
		"op": "UPDATE",
		"changed": ["status"],
		"field_rule": {"match": "any_selected", "fields": ["status"], "applies": true, "changed_fields": ["status"], "result": true},
		"tree": {
			"expr": "!(new.status == \"Draft\")", "result": true,
			"root": {"path": "tree", "kind": "not", "expr": "!(new.status == \"Draft\")", "result": true,
				"children": [{"path": "tree.not", "kind": "leaf", "expr": "new.status == \"Draft\"", "result": false}]}
		},
		"expr": {"expr": "new.grade > \"x\"", "result": false}
	}`, string(b))
}

func TestExplainAgreesWithMatch(t *testing.T) {
	t.Parallel()
	rules := []Rule{
		{},
		{Match: AllSelected, Fields: []string{"grade", "status"}},
		{Expr: `changed("grade") || new.status == "Approved"`},
		{Tree: Any(Leaf("grade", OpChanged, nil), Leaf("new.department", OpIn, []any{"Sales"}))},
		{Match: AnySelected, Fields: []string{"grade"}, Tree: Leaf("old.grade", OpLt, 4), Expr: "new.grade / old.grade > 1"},
	}
	inputs := []Input{
		update(nil),
		update(map[string]any{"grade": 4}),
		update(map[string]any{"grade": 0, "status": "Approved"}),
		update(map[string]any{"department": "Sales"}),
		{Op: "INSERT", New: map[string]any{"grade": 1}},
		{Op: "DELETE", Old: map[string]any{"grade": 1}},
		{Op: "bogus"},
	}
	for _, r := range rules {
		c := mustCompile(t, r)
		for _, in := range inputs {
			ok, err := c.Match(in)
			x := c.Explain(in)
			assert.Equal(t, ok, x.Match, "%+v on %+v", r, in)
			if err != nil {
				assert.Equal(t, err.Error(), x.Error)
			} else {
				assert.Empty(t, x.Error)
			}
		}
	}
}
