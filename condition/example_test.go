package condition_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/heraldhr/herald/condition"
)

// A field rule: fire on an employee update only when the department or
// the grade changed value.
func ExampleCompile_fieldRule() {
	c, err := condition.Compile(condition.Rule{
		Match:  condition.AnySelected,
		Fields: []string{"department", "grade"},
	})
	if err != nil {
		panic(err)
	}
	old := map[string]any{"department": "HR", "grade": 3, "phone": "555-0100"}

	phone, _ := c.Match(condition.Input{Op: "UPDATE", Old: old,
		New: map[string]any{"department": "HR", "grade": 3.0, "phone": "555-0199"}})
	grade, _ := c.Match(condition.Input{Op: "UPDATE", Old: old,
		New: map[string]any{"department": "HR", "grade": 4, "phone": "555-0100"}})
	insert, _ := c.Match(condition.Input{Op: "INSERT", New: old})

	fmt.Println("phone changed:", phone)
	fmt.Println("grade changed:", grade)
	fmt.Println("insert:", insert)
	// Output:
	// phone changed: false
	// grade changed: true
	// insert: true
}

// An expression: a leave request approved in Sales.
func ExampleCompile_expression() {
	c, err := condition.Compile(condition.Rule{
		Expr: `changedTo("status", "Approved") && new.department in ["Sales", "Marketing"]`,
	})
	if err != nil {
		panic(err)
	}
	ok, err := c.Match(condition.Input{
		Table: "leave_request",
		Op:    "UPDATE",
		Old:   map[string]any{"status": "Pending", "department": "Sales"},
		New:   map[string]any{"status": "Approved", "department": "Sales"},
	})
	fmt.Println(ok, err)

	// Mistakes are reported with their position.
	_, err = condition.Compile(condition.Rule{Expr: `new.status == "Approved" && nwe.days > 3`})
	fmt.Println(err)
	fmt.Println(errors.Is(err, condition.ErrInvalidRule))
	// Output:
	// true <nil>
	// condition: invalid rule: expr: line 1, column 29: unknown name nwe
	// true
}

// A tree as an admin UI stores it: JSON, compiled to an expression.
func ExampleCompile_tree() {
	var rule condition.Rule
	err := json.Unmarshal([]byte(`{
		"tree": {"all": [
			{"field": "new.department", "op": "eq", "value": "Sales"},
			{"any": [
				{"field": "status", "op": "changed"},
				{"field": "new.grade", "op": "gt", "value": 5}
			]}
		]}
	}`), &rule)
	if err != nil {
		panic(err)
	}
	src, _ := rule.Tree.Expr()
	fmt.Println(src)

	c, err := condition.Compile(rule)
	if err != nil {
		panic(err)
	}
	ok, _ := c.Match(condition.Input{
		Op:  "UPDATE",
		Old: map[string]any{"department": "Sales", "status": "Active", "grade": 4},
		New: map[string]any{"department": "Sales", "status": "Active", "grade": 6},
	})
	fmt.Println(ok)

	// A malformed leaf is refused with its path in the tree.
	err = json.Unmarshal([]byte(`{"tree": {"any": [{"field": "new.grade", "op": "greater", "value": 5}]}}`), &rule)
	if err == nil {
		_, err = condition.Compile(rule)
	}
	fmt.Println(err)
	// Output:
	// new.department == "Sales" && (changed("status") || new.grade > 5)
	// true
	// condition: invalid rule: tree.any[0].op: unknown operator "greater"; want one of changed, changed_from, changed_to, contains, ends_with, eq, exists, gt, gte, in, lt, lte, ne, not_in, starts_with
}

// Explain answers an admin's "why did (or didn't) this fire?".
func ExampleCondition_Explain() {
	c, err := condition.Compile(condition.Rule{
		Match:  condition.AllSelected,
		Fields: []string{"department", "manager_id"},
		Expr:   `new.department != "Contractors"`,
	})
	if err != nil {
		panic(err)
	}
	x := c.Explain(condition.Input{
		Op:  "UPDATE",
		Old: map[string]any{"department": "HR", "manager_id": "E-7"},
		New: map[string]any{"department": "Sales", "manager_id": "E-7"},
	})
	fmt.Println(x.Match)
	fmt.Println(x.Reason)
	fmt.Println(x.Changed, x.FieldRule.ChangedFields, x.Expr.Result)
	// Output:
	// false
	// does not fire: not every selected field changed (unchanged: manager_id)
	// [department] [department] true
}
