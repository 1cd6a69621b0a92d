package condition

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mustCompile compiles r or stops the test.
func mustCompile(t testing.TB, r Rule) *Condition {
	t.Helper()
	c, err := Compile(r)
	require.NoError(t, err)
	return c
}

// update returns an UPDATE of an employee record with the given new values.
func update(changes map[string]any) Input {
	old := map[string]any{"department": "HR", "status": "Pending", "grade": 3, "name": "Ada"}
	new := map[string]any{}
	for k, v := range old {
		new[k] = v
	}
	for k, v := range changes {
		new[k] = v
	}
	return Input{Table: "employee", Op: "UPDATE", Key: "E-1", Old: old, New: new}
}

func TestFieldRules(t *testing.T) {
	t.Parallel()
	insert := Input{Op: "INSERT", New: map[string]any{"department": "HR"}}
	del := Input{Op: "DELETE", Old: map[string]any{"department": "HR"}}
	tests := []struct {
		name string
		rule Rule
		in   Input
		want bool
	}{
		{"any field: update without change", Rule{}, update(nil), true},
		{"any field: update", Rule{}, update(map[string]any{"grade": 4}), true},
		{"any field: insert", Rule{}, insert, true},

		{"any selected: one of two changed", Rule{Match: AnySelected, Fields: []string{"department", "grade"}}, update(map[string]any{"grade": 4}), true},
		{"any selected: both changed", Rule{Match: AnySelected, Fields: []string{"department", "grade"}}, update(map[string]any{"grade": 4, "department": "Sales"}), true},
		{"any selected: another field changed", Rule{Match: AnySelected, Fields: []string{"department", "grade"}}, update(map[string]any{"status": "Approved"}), false},
		{"any selected: nothing changed", Rule{Match: AnySelected, Fields: []string{"department"}}, update(nil), false},
		{"any selected: same value, other kind", Rule{Match: AnySelected, Fields: []string{"grade"}}, update(map[string]any{"grade": 3.0}), false},
		{"any selected: field added", Rule{Match: AnySelected, Fields: []string{"email"}}, update(map[string]any{"email": "a@example.com"}), true},
		{"any selected: field added as nil", Rule{Match: AnySelected, Fields: []string{"email"}}, update(map[string]any{"email": nil}), false},
		{"any selected: field set to nil", Rule{Match: AnySelected, Fields: []string{"grade"}}, update(map[string]any{"grade": nil}), true},
		{"any selected: insert passes", Rule{Match: AnySelected, Fields: []string{"grade"}}, insert, true},
		{"any selected: delete passes", Rule{Match: AnySelected, Fields: []string{"grade"}}, del, true},

		{"all selected: both changed", Rule{Match: AllSelected, Fields: []string{"department", "grade"}}, update(map[string]any{"grade": 4, "department": "Sales"}), true},
		{"all selected: one of two changed", Rule{Match: AllSelected, Fields: []string{"department", "grade"}}, update(map[string]any{"grade": 4}), false},
		{"all selected: single field", Rule{Match: AllSelected, Fields: []string{"grade"}}, update(map[string]any{"grade": 4}), true},
		{"all selected: nothing changed", Rule{Match: AllSelected, Fields: []string{"grade"}}, update(nil), false},
		{"all selected: insert passes", Rule{Match: AllSelected, Fields: []string{"department", "grade"}}, insert, true},
		{"all selected: delete passes", Rule{Match: AllSelected, Fields: []string{"department", "grade"}}, del, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustCompile(t, tt.rule)

			got, err := c.Match(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "changed computed")

			// The dispatcher passes a precomputed list: same verdict.
			in := tt.in
			in.Changed = Changed(in.Old, in.New)
			got, err = c.Match(in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "changed given")

			assert.Equal(t, tt.want, c.Explain(tt.in).Match, "explain")
		})
	}
}

func TestFieldRuleUsesGivenChanged(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{Match: AnySelected, Fields: []string{"grade"}})
	in := update(nil)
	in.Changed = []string{"grade"} // trusted as given, even if Old and New agree
	ok, err := c.Match(in)
	require.NoError(t, err)
	assert.True(t, ok)

	in = update(map[string]any{"grade": 9})
	in.Changed = []string{}
	ok, err = c.Match(in)
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestCompileFieldRuleErrors(t *testing.T) {
	t.Parallel()
	many := make([]string, MaxFields+1)
	for i := range many {
		many[i] = fmt.Sprint("f", i)
	}
	tests := []struct {
		name string
		rule Rule
		part string
		msg  string
	}{
		{"unknown match", Rule{Match: "some_selected", Fields: []string{"a"}}, "match", `unknown field rule "some_selected"`},
		{"any selected without fields", Rule{Match: AnySelected}, "fields", `match "any_selected" selects no field`},
		{"all selected without fields", Rule{Match: AllSelected, Fields: []string{}}, "fields", `match "all_selected" selects no field`},
		{"fields without match", Rule{Fields: []string{"a"}}, "fields", "fields are selected but match is empty"},
		{"empty field", Rule{Match: AnySelected, Fields: []string{"a", ""}}, "fields", "field 1 is empty"},
		{"duplicate field", Rule{Match: AllSelected, Fields: []string{"a", "b", "a"}}, "fields", `field "a" is selected twice`},
		{"too many fields", Rule{Match: AnySelected, Fields: many}, "fields", "257 fields selected; the limit is 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Compile(tt.rule)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.ErrorIs(t, err, ErrInvalidRule)
			var ce *CompileError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.part, ce.Part)
			assert.Contains(t, ce.Message, tt.msg)
			assert.Contains(t, err.Error(), "condition: invalid rule: "+tt.part+": ")
		})
	}
}

func TestRuleIsZero(t *testing.T) {
	t.Parallel()
	assert.True(t, Rule{}.IsZero())
	assert.False(t, Rule{Match: AnySelected}.IsZero())
	assert.False(t, Rule{Fields: []string{}}.IsZero() && Rule{Fields: []string{"a"}}.IsZero())
	assert.False(t, Rule{Expr: "true"}.IsZero())
	assert.False(t, Rule{Tree: &Node{}}.IsZero())
}

func TestNilConditionMatchesEverything(t *testing.T) {
	t.Parallel()
	var c *Condition
	for _, op := range []string{"INSERT", "UPDATE", "DELETE", "bogus"} {
		ok, err := c.Match(Input{Op: op})
		require.NoError(t, err)
		assert.True(t, ok, op)
	}
	x := c.Explain(update(map[string]any{"grade": 4}))
	assert.True(t, x.Match)
	assert.Equal(t, []string{"grade"}, x.Changed)
	assert.Equal(t, Rule{}, c.Rule())
}

func TestZeroRuleMatchesEverything(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{Expr: "  \n "})
	for _, in := range []Input{update(nil), {Op: "INSERT"}, {Op: "DELETE"}} {
		ok, err := c.Match(in)
		require.NoError(t, err)
		assert.True(t, ok)
	}
}

func TestMatchRejectsUnknownOp(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{Expr: "true"})
	for _, op := range []string{"", "update", "UPSERT"} {
		ok, err := c.Match(Input{Op: op})
		assert.False(t, ok)
		require.ErrorIs(t, err, ErrEval)
		var ee *EvalError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "input", ee.Part)
		assert.Contains(t, ee.Message, fmt.Sprintf("op %q", op))
	}
}

func TestConditionKeepsItsOwnRule(t *testing.T) {
	t.Parallel()
	r := Rule{
		Match:  AnySelected,
		Fields: []string{"grade"},
		Tree:   All(Leaf("new.grade", OpIn, []any{1, 2})),
	}
	c := mustCompile(t, r)
	r.Fields[0] = "department"
	r.Tree.All[0].Field = "new.department"

	got := c.Rule()
	assert.Equal(t, []string{"grade"}, got.Fields)
	assert.Equal(t, "new.grade", got.Tree.All[0].Field)

	got.Fields[0] = "x"
	got.Tree.All[0].Value.([]any)[0] = 9
	assert.Equal(t, []string{"grade"}, c.Rule().Fields)
	assert.Equal(t, []any{1, 2}, c.Rule().Tree.All[0].Value)
}

func TestPartsAreANDed(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{
		Match:  AnySelected,
		Fields: []string{"grade"},
		Tree:   Leaf("new.department", OpEq, "HR"),
		Expr:   "new.grade > 3",
	})
	tests := []struct {
		name string
		in   Input
		want bool
	}{
		{"all hold", update(map[string]any{"grade": 4}), true},
		{"field rule fails", update(map[string]any{"status": "x"}), false},
		{"tree fails", update(map[string]any{"grade": 4, "department": "Sales"}), false},
		{"expression fails", update(map[string]any{"grade": 2}), false},
	}
	for _, tt := range tests {
		ok, err := c.Match(tt.in)
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.want, ok, tt.name)
	}
}

func TestMatchIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	c := mustCompile(t, Rule{Expr: `changed("grade") && new.grade > old.grade && all(new.tags, # != "")`})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				up := i%2 == 0
				in := update(map[string]any{"grade": 4 + g + i, "tags": []any{"a"}})
				if !up {
					in.New["grade"] = 1
				}
				ok, err := c.Match(in)
				if err != nil {
					errs <- err
					return
				}
				if ok != up {
					errs <- fmt.Errorf("goroutine %d, iteration %d: got %v", g, i, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestErrorsUnwrap(t *testing.T) {
	t.Parallel()
	ce := &CompileError{Part: "expr", Line: 2, Column: 5, Message: "unknown name x"}
	assert.ErrorIs(t, ce, ErrInvalidRule)
	assert.Equal(t, "condition: invalid rule: expr: line 2, column 5: unknown name x", ce.Error())

	tree := &CompileError{Part: "tree", Path: "tree.all[0].op", Message: "is missing"}
	assert.Equal(t, "condition: invalid rule: tree.all[0].op: is missing", tree.Error())

	cause := errors.New("cause")
	ee := &EvalError{Part: "expr", Line: 1, Column: 3, Message: "boom", Err: cause}
	assert.ErrorIs(t, ee, ErrEval)
	assert.ErrorIs(t, ee, cause)
	assert.NotErrorIs(t, ee, ErrInvalidRule)
	assert.Equal(t, "condition: evaluation failed: expr: line 1, column 3: boom", ee.Error())
	assert.ErrorIs(t, &EvalError{Part: "input", Message: "x"}, ErrEval)
}
