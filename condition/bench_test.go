package condition

import (
	"fmt"
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/stretchr/testify/require"
)

// benchExpr is a typical condition: a department filter and a change test.
const benchExpr = `new.department == "Sales" && (old.status != new.status || new.grade > 5)`

// employee returns a 30-field employee record.
func employee() map[string]any {
	r := map[string]any{
		"id": "E-1001", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
		"department": "Sales", "status": "Pending", "grade": 4.0, "manager_id": "E-0007",
		"hired_on": "2021-03-01", "birth_date": "1990-12-10", "phone": "+44 20 7946 0000",
		"location": "London", "cost_center": "CC-12", "title": "Account Executive",
		"salary": 54000.0, "currency": "GBP", "full_time": true, "hours": 37.5,
		"team": "EMEA", "level": 3.0, "badge": 1001.0, "shift": "day", "contract": "permanent",
		"probation": false, "remote": true, "nationality": "GB", "gender": "F",
		"tags":       []any{"sales", "emea"},
		"address":    map[string]any{"city": "London", "zip": "N1"},
		"updated_by": "system",
	}
	if len(r) != 30 {
		panic(fmt.Sprintf("employee has %d fields", len(r)))
	}
	return r
}

// benchInput is an UPDATE of two of the employee's 30 fields.
func benchInput() Input {
	old := employee()
	new := employee()
	new["status"] = "Approved"
	new["grade"] = 5.0
	return Input{Table: "employee", Op: "UPDATE", Key: "E-1001", Old: old, New: new}
}

// BenchmarkCondition compares Match with running the same compiled program
// bare, in one run so the ratios are meaningful:
//
//	go test -run '^$' -bench BenchmarkCondition -benchmem ./condition/
func BenchmarkCondition(b *testing.B) {
	c, err := Compile(Rule{Expr: benchExpr})
	require.NoError(b, err)
	in := benchInput()

	b.Run("Match", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := c.Match(in); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	// The program Match runs, through expr.Run with an environment built
	// once: the bar Match is measured against.
	b.Run("expr.Run", func(b *testing.B) {
		b.ReportAllocs()
		e := newEnv()
		e.Old, e.New, e.Op, e.Table, e.Key = in.Old, in.New, in.Op, in.Table, in.Key
		for b.Loop() {
			if out, err := expr.Run(c.expr.prog, e); out != true || err != nil {
				b.Fatal(out, err)
			}
		}
	})
	// The same with one VM reused, as Match does: the floor.
	b.Run("vm.Run-reused", func(b *testing.B) {
		b.ReportAllocs()
		e := newEnv()
		e.Old, e.New, e.Op, e.Table, e.Key = in.Old, in.New, in.Op, in.Table, in.Key
		var machine vm.VM
		for b.Loop() {
			if out, err := machine.Run(c.expr.prog, e); out != true || err != nil {
				b.Fatal(out, err)
			}
		}
	})
	// The expression compiled by expr alone, with a map environment: what
	// using expr directly costs.
	b.Run("expr.Run-plain", func(b *testing.B) {
		b.ReportAllocs()
		m := map[string]any{"old": in.Old, "new": in.New, "op": in.Op, "table": in.Table, "key": in.Key}
		prog, err := expr.Compile(benchExpr, expr.Env(m), expr.AsBool())
		require.NoError(b, err)
		for b.Loop() {
			if out, err := expr.Run(prog, m); out != true || err != nil {
				b.Fatal(out, err)
			}
		}
	})
	// The diff behind field rules and the changed list, on 30 fields.
	b.Run("Changed-30-fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got := Changed(in.Old, in.New); len(got) != 2 {
				b.Fatal(got)
			}
		}
	})
	// A field rule with no changed list given: only the selected fields
	// are compared.
	b.Run("Match-field-rule", func(b *testing.B) {
		fr, err := Compile(Rule{Match: AnySelected, Fields: []string{"department", "title", "status"}})
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := fr.Match(in); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	// An expression reading the changed list, with none given: Match
	// diffs the record first.
	b.Run("Match-changed-helper", func(b *testing.B) {
		ch, err := Compile(Rule{Expr: `changed("status") && new.department == "Sales"`})
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := ch.Match(in); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	// A tree equivalent to benchExpr.
	b.Run("Match-tree", func(b *testing.B) {
		tc, err := Compile(Rule{Tree: All(
			Leaf("new.department", OpEq, "Sales"),
			Any(Leaf("status", OpChanged, nil), Leaf("new.grade", OpGt, 5)),
		)})
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := tc.Match(in); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// TestMatchDoesNotAllocate keeps the hot path allocation-free.
func TestMatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	c := mustCompile(t, Rule{Match: AnySelected, Fields: []string{"status"}, Expr: benchExpr})
	in := benchInput()
	allocs := testing.AllocsPerRun(100, func() {
		if ok, err := c.Match(in); !ok || err != nil {
			t.Fatal(ok, err)
		}
	})
	if allocs > 0 {
		t.Errorf("Match allocates %v times per call", allocs)
	}
}

// TestChangedListDoesNotAllocatePerElement keeps "f" in changed cheap.
func TestChangedListDoesNotAllocatePerElement(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	in := benchInput()
	in.Changed = []string{"a", "b", "c", "d", "e", "f", "g", "status"}
	c := mustCompile(t, Rule{Expr: `"status" in changed && changed("status")`})
	allocs := testing.AllocsPerRun(100, func() {
		if ok, err := c.Match(in); !ok || err != nil {
			t.Fatal(ok, err)
		}
	})
	// One: expr boxes the list when it reads the variable.
	if allocs > 1 {
		t.Errorf("Match allocates %v times per call", allocs)
	}
}
