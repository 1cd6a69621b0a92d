// Package condition decides whether a record change fires a webhook.
//
// A webhook's condition is a [Rule] of three optional parts, ANDed: a
// field rule, an AND/OR tree and an expr-lang/expr expression. The zero
// Rule fires on every change. [Compile] validates a rule and compiles it
// once, when the webhook is registered; [Condition.Match] then runs on
// every change, and [Condition.Explain] tells an admin why a sample change
// would fire or not.
//
//	c, err := condition.Compile(condition.Rule{
//		Match:  condition.AnySelected,
//		Fields: []string{"department", "grade"},
//		Expr:   `new.department == "Sales" && new.grade > 5`,
//	})
//	if err != nil {
//		return err // wraps condition.ErrInvalidRule; names the position
//	}
//	ok, err := c.Match(condition.Input{Table: "employee", Op: "UPDATE", Old: old, New: new})
//
// Match returns false with an error wrapping [ErrEval] when the tree or the
// expression fails at run time: the change does not match, and the error
// is there to be reported. Match never panics, and a nil *Condition
// matches everything.
//
// # Field rules
//
// [Rule.Match] says which updates get through:
//
//   - [AnyField] (the zero value): every change;
//   - [AnySelected]: an UPDATE in which at least one of [Rule.Fields]
//     changed value;
//   - [AllSelected]: an UPDATE in which every one of Rule.Fields changed
//     value.
//
// Field rules gate UPDATEs only: an INSERT or a DELETE passes them.
// Selecting no field with AnySelected or AllSelected, selecting fields
// with AnyField, listing a field twice and an unknown Match value are
// compile errors.
//
// "Changed" compares values, not the presence of keys: an UPDATE whose new
// record repeats the old value did not change that field. When
// [Input.Changed] is nil, Match compares only the selected fields; when
// the caller passes the list (as the dispatcher does), Match uses it as
// given.
//
// # Value equality
//
// [Equal] decides what "the same value" means, for [Changed], for field
// rules and for ==, != and in inside expressions and trees:
//
//   - numbers are equal by value whatever their Go kind: 7, int64(7), 7.0,
//     uint8(7) and json.Number("7") are all equal, integers are compared
//     exactly (not through float64), and NaN equals NaN;
//   - a time.Time is an instant: two times in different locations are
//     equal when they name the same instant, and a string that parses as
//     RFC 3339 (time.RFC3339Nano) equals the time.Time naming the same
//     instant. Two strings always compare as text;
//   - maps are equal key by key over the union of their keys, a key missing
//     on one side being equal to nil on the other; lists are equal element
//     by element, in order;
//   - nil, a nil pointer and a nil map or slice are all nil (JSON null);
//     nil differs from an empty map, an empty list, "" and 0;
//   - strings and booleans compare by value, named types included; other
//     values fall back to reflect.DeepEqual.
//
// [Changed] lists the fields of two records that differ by Equal, sorted.
// On an INSERT (no old record) that is every non-nil field of the new
// record; on a DELETE every non-nil field of the old one.
//
// # Expressions
//
// [Rule.Expr] is an expr-lang/expr expression (https://expr-lang.org) that
// must be a boolean. It sees these variables, and nothing else:
//
//	old      map[string]any  the record before the change (nil on INSERT)
//	new      map[string]any  the record after the change (nil on DELETE)
//	changed  []string        the fields that changed value (Input.Changed, or computed)
//	op       string          "INSERT", "UPDATE" or "DELETE"
//	table    string          the record's table
//	key      string          the record's key
//	tenant   string          the tenant, "" when single-tenant
//	context  map[string]any  actor, request id, source system ...
//
// A field missing from a record reads as nil (new.salary == nil). expr's
// operators and builtins are available (&&, ||, !, ?:, ??, ?., let,
// matches, len, upper, all, any, filter ...), with these helpers:
//
//	changed("status")                  status changed value
//	changedTo("status", "Approved")    status changed, and is now "Approved"
//	changedFrom("status", "Pending")   status changed, and was "Pending"
//
// changed is both the list and the helper: "status" in changed and
// changed("status") mean the same. changedTo and changedFrom compare with
// Equal. On an INSERT every field with a value changed from nil.
//
// Herald gives a few operators its own meaning, so that expressions agree
// with field rules and never fail on a missing field:
//
//   - == and != use Equal: new.grade == 7 holds for 7.0 and json.Number("7");
//   - <, <=, > and >= order numbers of any kind by value, strings as text
//     and times as instants (an RFC 3339 string against a time.Time too);
//     any other pair, nil included, is simply false. So on an INSERT
//     old.grade < new.grade is false, not an error;
//   - x in list holds when an element equals x (by Equal); x in map holds
//     when the map has the key x with a non-nil value;
//   - a contains b holds for a substring of a string or an element of a
//     list; startsWith and endsWith hold for strings only. On anything else
//     all three are false.
//
// Unknown variables and functions, ordering values whose types can never
// be ordered (op > 5, anything < nil) and an expression whose type is
// known not to be boolean are compile errors. A result that turns out not
// to be a boolean at run time, arithmetic on nil (old.grade + 1 on an
// INSERT), reading a member of nil (new.address.city when address is
// missing; write new.address?.city) and exceeding a limit are evaluation
// errors.
//
// # Trees
//
// [Rule.Tree] is the same kind of condition as data, the form an admin UI
// builds. A [Node] is a group, {"all": [...]}, {"any": [...]} or
// {"not": {...}}, or a leaf {"field": ..., "op": ..., "value": ...}:
//
//	{"all": [
//	  {"field": "new.department", "op": "eq", "value": "Sales"},
//	  {"any": [
//	    {"field": "status", "op": "changed"},
//	    {"field": "new.grade", "op": "gt", "value": 5}
//	  ]}
//	]}
//
// A leaf's field is a path into new, old or context ("new.department",
// "new.address.city", "context.actor"; a nested level missing reads as
// nil), or one of op, table, key, tenant and changed. Operators:
//
//	eq, ne              ==, != a string, number, boolean or null
//	gt, gte, lt, lte    >, >=, <, <= a string or number
//	in, not_in          equals one, none, of a non-empty list
//	contains            a substring of a string field, or an element of a list field
//	starts_with         a string field starts with a string
//	ends_with           a string field ends with a string
//	exists              present and not null; no value
//	changed             changed("field"); no value
//	changed_to          changedTo("field", value)
//	changed_from        changedFrom("field", value)
//
// The change operators take a field name, "status" or "new.status". A
// tree compiles to an expression ([Node.Expr]; the one above is
// new.department == "Sales" && (changed("status") || new.grade > 5)) and
// from there to exactly the program that expression compiles to. Values
// and field names are quoted, never spliced: no value can change the
// expression's structure. Trees round-trip through encoding/json; numbers
// decode as json.Number and keep their exact value. Decoding and
// compiling a malformed tree fails with the path of the offending node
// and what was expected, for instance
//
//	condition: invalid rule: tree.all[1].any[0].op: unknown operator "greater"; want one of ...
//
// A rule may have a tree and an expression: both must hold.
//
// # Errors
//
// Every error [Compile] returns wraps [ErrInvalidRule] (errors.Is), most as
// a [*CompileError] giving the part at fault (match, fields, expr, tree),
// the tree path, or the 1-based line and column in the expression, with a
// snippet pointing at it. For a tree that fails to compile as a whole,
// line and column refer to the expression the tree compiles to.
//
// Every evaluation error wraps [ErrEval], as an [*EvalError] with the part
// that failed and, when known, the line and column. Exceeding the loop
// limit also wraps the cause. Such an error means "does not match".
//
// # Limits
//
// Rules are written by admins, so what they may cost is bounded:
//
//   - an expression is at most [MaxExprBytes] bytes and [MaxExprNodes]
//     syntax nodes;
//   - a tree nests at most [MaxTreeDepth] levels, holds at most
//     [MaxTreeLeaves] leaves, and compiles to at most [MaxTreeExprBytes]
//     bytes; a field rule selects at most [MaxFields] fields;
//   - an evaluation runs at most [MaxLoopIterations] closure iterations
//     (the bodies of all, any, filter, map ..., nested ones counting each
//     time) and builds at most about 100,000 elements of lists, maps and
//     strings; past either it fails with an evaluation error;
//   - expressions reach only the variables above, expr's builtins and the
//     helpers: no Go values, methods, I/O or unbounded loops.
//
// # Concurrency and cost
//
// A [Condition] is immutable and safe for concurrent use. Match reuses
// pooled evaluation state: field rules, and expressions and trees that
// compare fields of old, new and context, run without allocating. Reading
// op, table, key, tenant or the changed list as values, building strings
// or lists, and computing the changed list (when [Input.Changed] is nil
// and the rule reads it) allocate.
package condition
