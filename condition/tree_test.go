package condition

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// treeInput is the record the operator tests run on.
func treeInput() Input {
	return Input{
		Table: "employee", Op: "UPDATE", Key: "E-1", Tenant: "acme",
		Old: map[string]any{"department": "HR", "status": "Pending", "grade": 3, "name": "Ada Lovelace"},
		New: map[string]any{
			"department": "Sales", "status": "Approved", "grade": 5.0, "name": "Ada Lovelace",
			"tags": []any{"remote", "senior"}, "address": map[string]any{"city": "London"},
			"first name": "Ada", "hired": "2021-03-01T09:00:00Z",
		},
		Context: map[string]any{"actor": "admin@example.com"},
	}
}

func TestTreeOperators(t *testing.T) {
	t.Parallel()
	tests := []struct {
		leaf string // JSON
		expr string // what it compiles to
		want bool
	}{
		{`{"field": "new.department", "op": "eq", "value": "Sales"}`, `new.department == "Sales"`, true},
		{`{"field": "new.department", "op": "eq", "value": "HR"}`, `new.department == "HR"`, false},
		{`{"field": "new.grade", "op": "eq", "value": 5}`, `new.grade == 5`, true},
		{`{"field": "new.salary", "op": "eq", "value": null}`, `new.salary == nil`, true},
		{`{"field": "new.salary", "op": "eq"}`, `new.salary == nil`, true},
		{`{"field": "old.department", "op": "ne", "value": "Sales"}`, `old.department != "Sales"`, true},
		{`{"field": "new.grade", "op": "ne", "value": 5.0}`, `new.grade != 5.0`, false},
		{`{"field": "new.grade", "op": "gt", "value": 4.5}`, `new.grade > 4.5`, true},
		{`{"field": "new.grade", "op": "gt", "value": 5}`, `new.grade > 5`, false},
		{`{"field": "new.grade", "op": "gte", "value": 5}`, `new.grade >= 5`, true},
		{`{"field": "old.grade", "op": "lt", "value": 4}`, `old.grade < 4`, true},
		{`{"field": "old.grade", "op": "lte", "value": 2}`, `old.grade <= 2`, false},
		{`{"field": "new.name", "op": "lt", "value": "B"}`, `new.name < "B"`, true},
		{`{"field": "new.hired", "op": "lt", "value": "2022-01-01T00:00:00Z"}`, `new.hired < "2022-01-01T00:00:00Z"`, true},
		{`{"field": "new.salary", "op": "gt", "value": 0}`, `new.salary > 0`, false},
		{`{"field": "new.department", "op": "in", "value": ["Sales", "Marketing"]}`, `new.department in ["Sales", "Marketing"]`, true},
		{`{"field": "new.grade", "op": "in", "value": [1, 5]}`, `new.grade in [1, 5]`, true},
		{`{"field": "new.department", "op": "not_in", "value": ["HR"]}`, `new.department not in ["HR"]`, true},
		{`{"field": "new.department", "op": "not_in", "value": ["Sales", null]}`, `new.department not in ["Sales", nil]`, false},
		{`{"field": "new.name", "op": "contains", "value": "Love"}`, `new.name contains "Love"`, true},
		{`{"field": "new.tags", "op": "contains", "value": "remote"}`, `new.tags contains "remote"`, true},
		{`{"field": "new.tags", "op": "contains", "value": "junior"}`, `new.tags contains "junior"`, false},
		{`{"field": "new.name", "op": "starts_with", "value": "Ada"}`, `new.name startsWith "Ada"`, true},
		{`{"field": "new.name", "op": "ends_with", "value": "Ada"}`, `new.name endsWith "Ada"`, false},
		{`{"field": "new.address", "op": "exists"}`, `new.address != nil`, true},
		{`{"field": "old.address", "op": "exists"}`, `old.address != nil`, false},
		{`{"field": "new.address.city", "op": "eq", "value": "London"}`, `new.address?.city == "London"`, true},
		{`{"field": "new.manager.name", "op": "exists"}`, `new.manager?.name != nil`, false},
		{`{"field": "new.first name", "op": "eq", "value": "Ada"}`, `new["first name"] == "Ada"`, true},
		{`{"field": "context.actor", "op": "ends_with", "value": "@example.com"}`, `context.actor endsWith "@example.com"`, true},
		{`{"field": "op", "op": "eq", "value": "UPDATE"}`, `op == "UPDATE"`, true},
		{`{"field": "table", "op": "in", "value": ["employee"]}`, `table in ["employee"]`, true},
		{`{"field": "key", "op": "starts_with", "value": "E-"}`, `key startsWith "E-"`, true},
		{`{"field": "tenant", "op": "ne", "value": "acme"}`, `tenant != "acme"`, false},
		{`{"field": "changed", "op": "contains", "value": "status"}`, `changed contains "status"`, true},
		{`{"field": "status", "op": "changed"}`, `changed("status")`, true},
		{`{"field": "new.status", "op": "changed"}`, `changed("status")`, true},
		{`{"field": "name", "op": "changed"}`, `changed("name")`, false},
		{`{"field": "status", "op": "changed_to", "value": "Approved"}`, `changedTo("status", "Approved")`, true},
		{`{"field": "status", "op": "changed_to", "value": "Rejected"}`, `changedTo("status", "Rejected")`, false},
		{`{"field": "old.status", "op": "changed_from", "value": "Pending"}`, `changedFrom("status", "Pending")`, true},
		{`{"field": "grade", "op": "changed_from", "value": 3}`, `changedFrom("grade", 3)`, true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			var n Node
			require.NoError(t, json.Unmarshal([]byte(tt.leaf), &n))
			src, err := n.Expr()
			require.NoError(t, err)
			assert.Equal(t, tt.expr, src)

			c := mustCompile(t, Rule{Tree: &n})
			got, err := c.Match(treeInput())
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)

			// The same, written as an expression.
			got, err = mustCompile(t, Rule{Expr: src}).Match(treeInput())
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "as an expression")
		})
	}
}

func TestTreeGroups(t *testing.T) {
	t.Parallel()
	yes := Leaf("new.department", OpEq, "Sales")
	no := Leaf("new.department", OpEq, "HR")
	tests := []struct {
		name string
		tree *Node
		expr string
		want bool
	}{
		{"all true", All(yes, yes), `new.department == "Sales" && new.department == "Sales"`, true},
		{"all with a false", All(yes, no), `new.department == "Sales" && new.department == "HR"`, false},
		{"any with a true", Any(no, yes), `new.department == "HR" || new.department == "Sales"`, true},
		{"any false", Any(no, no), `new.department == "HR" || new.department == "HR"`, false},
		{"not", Not(no), `!(new.department == "HR")`, true},
		{"not of a group", Not(All(yes, no)), `!(new.department == "Sales" && new.department == "HR")`, true},
		{"single child", All(yes), `new.department == "Sales"`, true},
		{"any in all", All(yes, Any(no, yes)), `new.department == "Sales" && (new.department == "HR" || new.department == "Sales")`, true},
		{"all in any", Any(no, All(yes, no)), `new.department == "HR" || (new.department == "Sales" && new.department == "HR")`, false},
		{"single-child group around a group", All(yes, Any(All(no, yes))), `new.department == "Sales" && (new.department == "HR" && new.department == "Sales")`, false},
		{"precedence kept", Any(All(no, yes), yes), `(new.department == "HR" && new.department == "Sales") || new.department == "Sales"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, err := tt.tree.Expr()
			require.NoError(t, err)
			assert.Equal(t, tt.expr, src)
			got, err := mustCompile(t, Rule{Tree: tt.tree}).Match(treeInput())
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestTreeCompilesToTheSameProgramAsItsExpression(t *testing.T) {
	t.Parallel()
	tree := All(
		Leaf("new.department", OpEq, "Sales"),
		Any(Leaf("status", OpChanged, nil), Leaf("new.grade", OpGt, 5)),
		Not(Leaf("new.tags", OpContains, "intern")),
	)
	fromTree := mustCompile(t, Rule{Tree: tree})
	fromExpr := mustCompile(t, Rule{Expr: `new.department == "Sales" && (changed("status") || new.grade > 5) && !(new.tags contains "intern")`})
	assert.Equal(t, fromExpr.expr.prog.Disassemble(), fromTree.tree.prog.Disassemble())
}

func TestTreeJSONRoundTrip(t *testing.T) {
	t.Parallel()
	in := `{"all":[{"field":"new.department","op":"eq","value":"Sales"},` +
		`{"any":[{"field":"status","op":"changed"},{"field":"new.grade","op":"gt","value":5.50}]},` +
		`{"not":{"field":"new.id","op":"in","value":[12345678901234567890,-9223372036854775808,1e3,true,null,""]}},` +
		`{"field":"new.flag","op":"eq","value":false}]}`
	var r Rule
	require.NoError(t, json.Unmarshal([]byte(`{"match":"any_selected","fields":["status"],"tree":`+in+`}`), &r))
	assert.Equal(t, json.Number("5.50"), r.Tree.All[1].Any[1].Value, "numbers are kept exactly")

	out, err := json.Marshal(r)
	require.NoError(t, err)
	var again Rule
	require.NoError(t, json.Unmarshal(out, &again))
	assert.Equal(t, r, again)

	out2, err := json.Marshal(again)
	require.NoError(t, err)
	assert.JSONEq(t, string(out), string(out2))
	assert.Contains(t, string(out), `12345678901234567890`)

	// Built in Go, encoded, decoded: the same expression.
	built := All(Leaf("new.grade", OpGte, 3), Not(Leaf("tenant", OpIn, []string{"a", "b"})))
	b, err := json.Marshal(built)
	require.NoError(t, err)
	assert.JSONEq(t, `{"all":[{"field":"new.grade","op":"gte","value":3},{"not":{"field":"tenant","op":"in","value":["a","b"]}}]}`, string(b))
	var decoded Node
	require.NoError(t, json.Unmarshal(b, &decoded))
	want, err := built.Expr()
	require.NoError(t, err)
	got, err := decoded.Expr()
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestTreeValuesCannotInject(t *testing.T) {
	t.Parallel()
	evil := []string{
		`" || true || "`,
		`\" || true || \"`,
		"\" || true\n|| \"",
		`'] || true || new['`,
		`\`,
		"\\x41\\u0041",
		"\x00\x1b\u2028é😀",
		"` || true",
	}
	for _, v := range evil {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			t.Parallel()
			in := Input{Op: "INSERT", New: map[string]any{"name": "someone else", v: v}}
			c := mustCompile(t, Rule{Tree: Leaf("new.name", OpEq, v)})
			ok, err := c.Match(in)
			require.NoError(t, err)
			assert.False(t, ok, "the value must be compared, not run")

			in.New["name"] = v
			ok, err = c.Match(in)
			require.NoError(t, err)
			assert.True(t, ok, "the value reads back as itself")

			// As a field name too.
			c = mustCompile(t, Rule{Tree: Leaf("new."+v, OpEq, v)})
			ok, err = c.Match(in)
			require.NoError(t, err)
			assert.Equal(t, !strings.Contains(v, "."), ok)
		})
	}
}

func TestTreeNumbersReadBackExactly(t *testing.T) {
	t.Parallel()
	values := []any{
		0, -1, math.MaxInt64, int64(math.MinInt64), uint64(math.MaxInt64), int8(-7), uint16(7),
		0.5, -2.25, 1e21, 1e-7, 5e-324, math.MaxFloat64, 3.0, float32(0.1),
		json.Number("12"), json.Number("-9223372036854775808"), json.Number("1.5e300"), json.Number("7.0"),
		time.Duration(90),
	}
	for _, v := range values {
		t.Run(fmt.Sprintf("%T %v", v, v), func(t *testing.T) {
			t.Parallel()
			c := mustCompile(t, Rule{Tree: Leaf("new.x", OpEq, v)})
			ok, err := c.Match(Input{Op: "INSERT", New: map[string]any{"x": v}})
			require.NoError(t, err)
			assert.True(t, ok)
			ok, err = mustCompile(t, Rule{Tree: Leaf("new.x", OpIn, []any{v})}).Match(Input{Op: "INSERT", New: map[string]any{"x": v}})
			require.NoError(t, err)
			assert.True(t, ok, "in a list")
		})
	}
}

func TestTreeErrors(t *testing.T) {
	t.Parallel()
	deep := `{"field":"new.a","op":"exists"}`
	for range MaxTreeDepth {
		deep = `{"not":` + deep + `}`
	}
	var leaves []string
	for range MaxTreeLeaves + 1 {
		leaves = append(leaves, `{"field":"new.a","op":"exists"}`)
	}
	tooMany := `{"any":[` + strings.Join(leaves, ",") + `]}`
	huge := `{"field":"new.a","op":"eq","value":"` + strings.Repeat("x", MaxTreeExprBytes) + `"}`

	tests := []struct {
		name string
		tree string
		path string
		msg  string
	}{
		{"not an object", `[{"field":"new.a","op":"exists"}]`, "tree", "is a list; want an object"},
		{"empty node", `{}`, "tree", "is empty; want all, any, not, or a leaf"},
		{"unknown key", `{"all":[{"feild":"new.a","op":"exists"}]}`, "tree.all[0]", `unknown key "feild"`},
		{"capitalised key", `{"All":[]}`, "tree", `unknown key "All"`},
		{"group not a list", `{"any":{"field":"new.a"}}`, "tree.any", "is an object; want a list of conditions"},
		{"group null", `{"all":null}`, "tree.all", "is null; want a list of conditions"},
		{"empty group", `{"all":[]}`, "tree.all", "is empty; want at least one condition"},
		{"null child", `{"any":[{"field":"new.a","op":"exists"},null]}`, "tree.any[1]", "is null; want an object"},
		{"two groups", `{"all":[{"field":"new.a","op":"exists"}],"any":[{"field":"new.a","op":"exists"}]}`, "tree", "has both all and any"},
		{"group and leaf", `{"not":{"field":"new.a","op":"exists"},"field":"new.b"}`, "tree", `mixes the group "not" with leaf keys`},
		{"field not a string", `{"field":1,"op":"exists"}`, "tree.field", "is a number; want a string"},
		{"op not a string", `{"field":"new.a","op":["eq"]}`, "tree.op", "is a list; want a string"},
		{"missing op", `{"any":[{"field":"new.a","value":1}]}`, "tree.any[0].op", "is missing; want one of changed, changed_from"},
		{"unknown op", `{"all":[{"field":"new.a","op":"equals","value":1}]}`, "tree.all[0].op", `unknown operator "equals"`},
		{"missing field", `{"op":"eq","value":1}`, "tree.field", "is missing"},
		{"unknown root", `{"field":"record.a","op":"exists"}`, "tree.field", `"record.a" does not start with new., old. or context.`},
		{"bare field with a comparison", `{"field":"status","op":"eq","value":"x"}`, "tree.field", `"status" does not start with new.`},
		{"path under op", `{"field":"op.name","op":"exists"}`, "tree.field", `"op.name": op has no fields`},
		{"empty segment", `{"field":"new..a","op":"exists"}`, "tree.field", `"new..a" has an empty segment`},
		{"trailing dot", `{"field":"new.","op":"exists"}`, "tree.field", `"new." has an empty segment`},
		{"change op with a path", `{"field":"new.address.city","op":"changed"}`, "tree.field", `operator changed takes a record field name`},
		{"change op on context", `{"field":"context.actor","op":"changed_to","value":"x"}`, "tree.field", `operator changed_to takes a record field name`},
		{"long segment", `{"field":"new.` + strings.Repeat("a", 300) + `","op":"exists"}`, "tree.field", "segment 1 is 300 bytes long"},
		{"value for exists", `{"field":"new.a","op":"exists","value":true}`, "tree.value", "operator exists takes no value"},
		{"value for changed", `{"field":"a","op":"changed","value":"x"}`, "tree.value", "operator changed takes no value"},
		{"boolean for gt", `{"field":"new.a","op":"gt","value":true}`, "tree.value", "operator gt needs a string or a number, not a boolean"},
		{"null for lte", `{"field":"new.a","op":"lte"}`, "tree.value", "operator lte needs a string or a number, not null"},
		{"number for starts_with", `{"field":"new.a","op":"starts_with","value":1}`, "tree.value", "operator starts_with needs a string, not a number"},
		{"null for contains", `{"field":"new.a","op":"contains","value":null}`, "tree.value", "operator contains needs a string, number or boolean, not null"},
		{"scalar for in", `{"field":"new.a","op":"in","value":"x"}`, "tree.value", "operator in needs a list of values, not a string"},
		{"empty list for not_in", `{"field":"new.a","op":"not_in","value":[]}`, "tree.value", "operator not_in needs at least one value"},
		{"nested list for in", `{"field":"new.a","op":"in","value":[1,[2]]}`, "tree.value", "element 1: a list is not allowed here"},
		{"list for eq", `{"field":"new.a","op":"eq","value":[1]}`, "tree.value", "a list is not allowed here"},
		{"object for eq", `{"field":"new.a","op":"eq","value":{"x":1}}`, "tree.value", "an object is not allowed here"},
		{"integer out of range", `{"field":"new.a","op":"eq","value":18446744073709551615}`, "tree.value", "is out of range"},
		{"too deep", deep, "tree" + strings.Repeat(".not", MaxTreeDepth), "nested more than 10 levels deep"},
		{"too many leaves", tooMany, "tree.any[100]", "a tree holds at most 100"},
		{"too long", huge, "tree", "the limit is 16384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r Rule
			err := json.Unmarshal([]byte(`{"tree":`+tt.tree+`}`), &r)
			if err == nil {
				_, err = Compile(r)
			}
			require.ErrorIs(t, err, ErrInvalidRule)
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "tree", ce.Part)
			assert.Equal(t, tt.path, ce.Path)
			assert.Contains(t, ce.Message, tt.msg)
			assert.Contains(t, err.Error(), "condition: invalid rule: "+tt.path+": ")
		})
	}
}

func TestTreeErrorsInGoValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tree *Node
		path string
		msg  string
	}{
		{"nil child", All(Leaf("new.a", OpExists, nil), nil), "tree.all[1]", "is null"},
		{"empty all", All(), "tree.all", "is empty"},
		{"not of nothing", &Node{Not: nil, All: nil}, "tree", "is empty"},
		{"NaN", Leaf("new.a", OpEq, math.NaN()), "tree.value", "NaN is not a finite number"},
		{"infinity", Leaf("new.a", OpGt, math.Inf(1)), "tree.value", "+Inf is not a finite number"},
		{"invalid UTF-8 value", Leaf("new.a", OpEq, "\xff"), "tree.value", "not valid UTF-8"},
		{"invalid UTF-8 field", Leaf("new.\xff", OpExists, nil), "tree.field", "not valid UTF-8"},
		{"time value", Leaf("new.a", OpEq, time.Now()), "tree.value", "an object is not allowed here"},
		{"bad json.Number", Leaf("new.a", OpEq, json.Number("1x")), "tree.value", `"1x" is not a number`},
		{"map value", Leaf("new.a", OpEq, map[string]any{}), "tree.value", "an object is not allowed here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(Rule{Tree: tt.tree})
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.path, ce.Path)
			assert.Contains(t, ce.Message, tt.msg)
		})
	}
	_, err := (*Node)(nil).Expr()
	assert.ErrorIs(t, err, ErrInvalidRule)
}

func TestTreeAtTheLimits(t *testing.T) {
	t.Parallel()
	n := Leaf("new.a", OpExists, nil)
	for range MaxTreeDepth - 1 {
		n = Not(n)
	}
	_, err := Compile(Rule{Tree: n})
	require.NoError(t, err)

	leaves := make([]*Node, MaxTreeLeaves)
	for i := range leaves {
		leaves[i] = Leaf("new.a", OpIn, []any{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	}
	c, err := Compile(Rule{Tree: Any(leaves...)})
	require.NoError(t, err)
	ok, err := c.Match(Input{Op: "INSERT", New: map[string]any{"a": 20}})
	require.NoError(t, err)
	assert.True(t, ok)
}
