package condition

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exprCase is an expression and what it gives on an input.
type exprCase struct {
	name string
	expr string
	in   Input
	want bool
}

func runExprCases(t *testing.T, tests []exprCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustCompile(t, Rule{Expr: tt.expr})
			got, err := c.Match(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			x := c.Explain(tt.in)
			assert.Equal(t, tt.want, x.Match, "explain")
			assert.Empty(t, x.Error, "explain")
		})
	}
}

func TestExprEnvironment(t *testing.T) {
	t.Parallel()
	in := update(map[string]any{"status": "Approved"})
	in.Tenant = "acme"
	in.Context = map[string]any{"actor": "admin@example.com", "source": map[string]any{"system": "payroll"}}
	runExprCases(t, []exprCase{
		{"old", `old.status == "Pending"`, in, true},
		{"new", `new.status == "Approved"`, in, true},
		{"op", `op == "UPDATE"`, in, true},
		{"table", `table == "employee"`, in, true},
		{"key", `key == "E-1"`, in, true},
		{"tenant", `tenant == "acme"`, in, true},
		{"context", `context.actor endsWith "@example.com"`, in, true},
		{"nested context", `context.source.system == "payroll"`, in, true},
		{"changed list", `changed == ["status"]`, in, true},
		{"in changed", `"status" in changed`, in, true},
		{"not in changed", `"grade" not in changed`, in, true},
		{"length of changed", `len(changed) == 1`, in, true},
		{"bracket access", `new["status"] == "Approved"`, in, true},
		{"missing field is nil", `new.salary == nil`, in, true},
		{"missing context is nil", `context.request_id == nil`, Input{Op: "INSERT"}, true},
		{"old is nil on insert", `old == nil && len(changed) == 1`, Input{Op: "INSERT", New: map[string]any{"a": 1}}, true},
		{"new is nil on delete", `new == nil`, Input{Op: "DELETE", Old: map[string]any{"a": 1}}, true},
		{"builtins", `upper(new.name) == "ADA" && len(new.name) == 3`, in, true},
		{"closures", `any(["a", "b"], # == "b") && all(changed, # != "grade")`, in, true},
		{"let", `let g = new.grade; g >= 3 and g < 4`, in, true},
		{"ternary", `(new.grade > 2 ? "high" : "low") == "high"`, in, true},
		{"nil coalescing", `(new.salary ?? 0) == 0`, in, true},
		{"optional chaining", `new.address?.city == nil`, in, true},
		{"matches", `new.name matches "^A"`, in, true},
		{"multi-line", "new.status == \"Approved\"\n  && old.status == \"Pending\"", in, true},
	})
}

func TestExprHelpers(t *testing.T) {
	t.Parallel()
	approved := update(map[string]any{"status": "Approved"})
	insert := Input{Op: "INSERT", New: map[string]any{"status": "Approved", "grade": 3}}
	del := Input{Op: "DELETE", Old: map[string]any{"status": "Pending"}}
	given := update(nil)
	given.Changed = []string{"department"}
	runExprCases(t, []exprCase{
		{"changed", `changed("status")`, approved, true},
		{"changed: unchanged field", `changed("grade")`, approved, false},
		{"changed: unknown field", `changed("salary")`, approved, false},
		{"changed: same value of another kind", `changed("grade")`, update(map[string]any{"grade": 3.0}), false},
		{"changed: on insert", `changed("status")`, insert, true},
		{"changed: on delete", `changed("status")`, del, true},
		{"changed: given list", `changed("department")`, given, true},
		{"changed: with a variable", `let f = "status"; changed(f)`, approved, true},
		{"changed: in a closure", `any(["grade", "status"], changed(#))`, approved, true},
		{"changed: piped", `"status" | changed()`, approved, true},
		{"changed and the list together", `changed("status") && "status" in changed`, approved, true},
		{"changedTo", `changedTo("status", "Approved")`, approved, true},
		{"changedTo: other value", `changedTo("status", "Rejected")`, approved, false},
		{"changedTo: unchanged", `changedTo("department", "HR")`, approved, false},
		{"changedTo: number of another kind", `changedTo("grade", 4)`, update(map[string]any{"grade": 4.0}), true},
		{"changedTo: nil", `changedTo("grade", nil)`, update(map[string]any{"grade": nil}), true},
		{"changedTo: on insert", `changedTo("status", "Approved")`, insert, true},
		{"changedFrom", `changedFrom("status", "Pending")`, approved, true},
		{"changedFrom: other value", `changedFrom("status", "Draft")`, approved, false},
		{"changedFrom: unchanged", `changedFrom("department", "HR")`, approved, false},
		{"changedFrom: on delete", `changedFrom("status", "Pending")`, del, true},
		{"changedFrom: on insert is from nil", `changedFrom("status", nil)`, insert, true},
		{"from and to", `changedFrom("status", "Pending") && changedTo("status", "Approved")`, approved, true},
	})
}

func TestExprOperators(t *testing.T) {
	t.Parallel()
	noon := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	rec := Input{Op: "INSERT", New: map[string]any{
		"int": 7, "float": 7.0, "num": json.Number("7"), "u": uint8(7), "big": int64(1<<53 + 1),
		"name": "Ada Lovelace", "tags": []any{"a", 2}, "strs": []string{"x", "y"},
		"addr": map[string]any{"city": "London", "zip": nil}, "at": noon, "at_text": "2024-05-01T14:00:00+02:00",
		"dur": 90 * time.Minute, "yes": true,
	}}
	runExprCases(t, []exprCase{
		{"int equals float", `new.int == new.float`, rec, true},
		{"json.Number equals int", `new.num == 7 && new.num == new.u`, rec, true},
		{"large ints stay exact", `new.big != 9007199254740992`, rec, true},
		{"not equal", `new.int != 8`, rec, true},
		{"ordering across kinds", `new.num > 6.5 && new.u <= 7 && new.float < 8 && new.int >= 7`, rec, true},
		{"strings order", `new.name > "Ada" && new.name < "B"`, rec, true},
		{"times equal as instants", `new.at == new.at_text`, rec, true},
		{"times order", `new.at < "2024-05-01T12:00:01Z"`, rec, true},
		{"durations", `new.dur > duration("1h")`, rec, true},
		{"booleans", `new.yes == true && new.yes != false`, rec, true},
		{"nil equals missing", `new.missing == nil && old.missing == nil`, rec, true},
		{"nil is not greater", `new.missing > 5`, rec, false},
		{"nil is not less", `new.missing < 5`, rec, false},
		{"nil is not less or equal", `new.missing <= 5 || 5 >= new.missing`, rec, false},
		{"old on insert", `old.grade < new.int`, rec, false},
		{"mixed types do not order", `new.name > 5`, rec, false},
		{"mixed types do not equal", `new.name == 5`, rec, false},
		{"in list", `new.int in [1, 7.0]`, rec, true},
		{"not in list", `new.int not in [1, 2]`, rec, true},
		{"in list of other kind", `"7" in [7]`, rec, false},
		{"in map: present", `"city" in new.addr`, rec, true},
		{"in map: nil is absent", `"zip" in new.addr`, rec, false},
		{"in map: missing", `"street" in new.addr`, rec, false},
		{"in nil", `"x" in new.missing`, rec, false},
		{"in typed list", `"y" in new.strs`, rec, true},
		{"contains substring", `new.name contains "Love"`, rec, true},
		{"contains element", `new.tags contains 2.0 && new.strs contains "x"`, rec, true},
		{"contains on nil", `new.missing contains "x"`, rec, false},
		{"contains on a number", `new.int contains "7"`, rec, false},
		{"startsWith", `new.name startsWith "Ada"`, rec, true},
		{"startsWith on nil", `new.missing startsWith "Ada"`, rec, false},
		{"endsWith", `new.name endsWith "lace"`, rec, true},
		{"endsWith on a number", `new.int endsWith "7"`, rec, false},
		{"negated", `not (new.missing > 5) && !(new.int < 0)`, rec, true},
	})
}

func TestExprInsertDoesNotFail(t *testing.T) {
	t.Parallel()
	// An expression written for updates, run on an insert or a delete.
	c := mustCompile(t, Rule{Expr: `old.grade < new.grade && old.status != new.status`})
	for _, in := range []Input{
		{Op: "INSERT", New: map[string]any{"grade": 4}},
		{Op: "INSERT", Old: map[string]any{}, New: map[string]any{"grade": 4}},
		{Op: "DELETE", Old: map[string]any{"grade": 4}},
		{Op: "UPDATE"},
	} {
		ok, err := c.Match(in)
		require.NoError(t, err, in.Op)
		assert.False(t, ok, in.Op)
	}
}

func TestExprCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		expr         string
		line, column int // 0: no position expected
		msg          string
	}{
		{"unknown variable", `employee.grade > 1`, 1, 1, "unknown name employee"},
		{"unknown variable after a line break", "new.grade > 1 &&\n  nwe.grade < 5", 2, 3, "unknown name nwe"},
		{"unknown variable inside a comparison", `new.grade > limit`, 1, 13, "unknown name limit"},
		{"unknown function", `isManager(new.id)`, 1, 1, "unknown name isManager"},
		{"Go field names are not names", `New.grade > 1`, 1, 1, "unknown name New"},
		{"unexported state is not a name", `loops > 0`, 1, 1, "unknown name loops"},
		{"env is not exposed", `$env.new == nil`, 1, 1, "unknown name $env"},
		{"internal functions are not names", `__herald_eq(1, 1)`, 1, 1, "unknown name __herald_eq"},
		{"syntax error", `new.grade >`, 1, 11, "unexpected token EOF"},
		{"unclosed parenthesis", `(new.grade > 1`, 1, 14, "unexpected token EOF"},
		{"unclosed string", `new.name == "Ada`, 1, 17, "literal not terminated"},
		{"changed without argument", `changed()`, 1, 1, "changed takes 1 argument(s) (field), not 0"},
		{"changedTo with one argument", `changedTo("status")`, 1, 1, "changedTo takes 2 argument(s) (field, value), not 1"},
		{"changedFrom with three arguments", `changedFrom("a", 1, 2)`, 1, 1, "changedFrom takes 2 argument(s) (field, value), not 3"},
		{"changed with a number", `changed(1)`, 1, 9, "changed: the field name must be a string, not number"},
		{"changedTo with a list", `changedTo(["a"], 1)`, 1, 11, "changedTo: the field name must be a string, not list"},
		{"ordering a string with a number", `op > 5`, 1, 4, "cannot order string and number with >"},
		{"ordering booleans", `true < false`, 1, 6, "cannot order bool and bool with <"},
		{"ordering nil", `new.grade >= nil`, 1, 11, "cannot order nil with >="},
		{"not a boolean", `new.grade`, 0, 0, ""}, // known only at run time
		{"a string", `"yes"`, 0, 0, "the expression must be a boolean, not string"},
		{"a number", `1 + 2`, 0, 0, "the expression must be a boolean, not int"},
		{"a list", `changed`, 0, 0, "the expression must be a boolean, not []string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(Rule{Expr: tt.expr})
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidRule)
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "expr", ce.Part)
			assert.Contains(t, ce.Message, tt.msg)
			if tt.line > 0 {
				assert.Equal(t, tt.line, ce.Line, "line")
				assert.Equal(t, tt.column, ce.Column, "column")
				assert.Contains(t, err.Error(), "line ")
				assert.NotEmpty(t, ce.Snippet)
			}
		})
	}
}

func TestExprLimits(t *testing.T) {
	t.Parallel()
	t.Run("length", func(t *testing.T) {
		t.Parallel()
		long := `new.name == "` + strings.Repeat("a", MaxExprBytes) + `"`
		_, err := Compile(Rule{Expr: long})
		var ce *CompileError
		require.ErrorAs(t, err, &ce)
		assert.Contains(t, ce.Message, "the limit is 4096")

		_, err = Compile(Rule{Expr: `new.name == "` + strings.Repeat("a", MaxExprBytes-16) + `"`})
		require.NoError(t, err)
	})
	t.Run("nodes", func(t *testing.T) {
		t.Parallel()
		many := strings.Repeat("1+", MaxExprNodes) + "1 > 0"
		require.Less(t, len(many), MaxExprBytes)
		_, err := Compile(Rule{Expr: many})
		var ce *CompileError
		require.ErrorAs(t, err, &ce)
		assert.Contains(t, ce.Message, "exceeds maximum allowed nodes")
	})
}

func TestExprEvalErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		expr         string
		in           Input
		line, column int
		msg          string
	}{
		{"not a boolean", `new.grade`, update(nil), 0, 0, "result is int 3, not a boolean"},
		{"nil result", `new.missing`, update(nil), 0, 0, "result is nil, not a boolean"},
		{"arithmetic on nil", `old.grade + 1 > 2`, Input{Op: "INSERT"}, 1, 11, "invalid operation"},
		{"member of nil", "true &&\n new.address.city == \"x\"", update(nil), 2, 14, "cannot fetch city from <nil>"},
		{"field name not a string", `changed(new.grade)`, update(nil), 1, 1, "changed: the field name is int 3, not a string"},
		{"loop limit", `let r = 1..1000; all(r, all(r, true))`, update(nil), 0, 0, "more than 100000 loop iterations"},
		{"memory limit", `len(1..200000) > 0`, update(nil), 0, 0, "memory budget exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustCompile(t, Rule{Expr: tt.expr})
			ok, err := c.Match(tt.in)
			assert.False(t, ok)
			require.ErrorIs(t, err, ErrEval)
			assert.NotErrorIs(t, err, ErrInvalidRule)
			var ee *EvalError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, "expr", ee.Part)
			assert.Contains(t, ee.Message, tt.msg)
			if tt.line > 0 {
				assert.Equal(t, tt.line, ee.Line, "line")
				assert.Equal(t, tt.column, ee.Column, "column")
			}

			x := c.Explain(tt.in)
			assert.False(t, x.Match)
			assert.Equal(t, err.Error(), x.Error)
		})
	}
}

func TestLoopLimitIsPerEvaluation(t *testing.T) {
	t.Parallel()
	// 60,000 iterations: under the limit each time, over it if the count
	// leaked from one evaluation into the next.
	c := mustCompile(t, Rule{Expr: `let r = 1..300; count(r, count(r[:200], true) > 0) == 300`})
	for range 3 {
		ok, err := c.Match(update(nil))
		require.NoError(t, err)
		assert.True(t, ok)
	}
	_, err := mustCompile(t, Rule{Expr: `let r = 1..400; all(r, all(r, true))`}).Match(update(nil))
	assert.ErrorIs(t, err, errLoopLimit)
}

func TestExprDoesNotRetainInput(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{Expr: `changed("grade") && all(new.tags, # != "")`})
	in := update(map[string]any{"grade": 4, "tags": []any{"a"}})
	_, err := c.Match(in)
	require.NoError(t, err)
	st := statePool.Get().(*evalState)
	defer statePool.Put(st)
	assert.Nil(t, st.env.New)
	assert.Nil(t, st.env.Old)
	assert.Nil(t, st.env.Changed)
}
