package condition

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Node is one node of an AND/OR condition tree, the form an admin UI
// builds. A node is either a group, with exactly one of All, Any or Not,
// or a leaf, with Field, Op and (for most operators) Value:
//
//	{"all": [
//	  {"field": "new.department", "op": "eq", "value": "Sales"},
//	  {"any": [
//	    {"field": "status", "op": "changed"},
//	    {"field": "new.grade", "op": "gt", "value": 5}
//	  ]}
//	]}
//
// A tree compiles to the expression [Node.Expr] returns, and runs exactly
// as that expression would.
type Node struct {
	// All holds when every child holds.
	All []*Node `json:"all,omitempty"`
	// Any holds when at least one child holds.
	Any []*Node `json:"any,omitempty"`
	// Not holds when its child does not.
	Not *Node `json:"not,omitempty"`

	// Field is what a leaf tests: a path into a record or the context
	// ("new.department", "old.address.city", "context.actor"), one of
	// "op", "table", "key", "tenant" and "changed", or, for the change
	// operators, a field name ("status", or "new.status").
	Field string `json:"field,omitempty"`
	// Op is the leaf's operator.
	Op Operator `json:"op,omitempty"`
	// Value is what the field is compared with: a string, a number, a
	// boolean or nil; a list of those for in and not_in; nothing for
	// exists and changed.
	Value any `json:"value,omitempty"`
}

// Operator is a tree leaf's test.
type Operator string

// Tree leaf operators. Comparisons follow [Equal] and the ordering rules
// of expressions: a missing field is nil, and nil is neither greater nor
// less than anything.
const (
	OpEq          Operator = "eq"           // field == value
	OpNe          Operator = "ne"           // field != value
	OpGt          Operator = "gt"           // field > value
	OpGte         Operator = "gte"          // field >= value
	OpLt          Operator = "lt"           // field < value
	OpLte         Operator = "lte"          // field <= value
	OpIn          Operator = "in"           // field equals one of the listed values
	OpNotIn       Operator = "not_in"       // field equals none of the listed values
	OpContains    Operator = "contains"     // a string field holds value as a substring, or a list field holds it as an element
	OpStartsWith  Operator = "starts_with"  // a string field starts with value
	OpEndsWith    Operator = "ends_with"    // a string field ends with value
	OpExists      Operator = "exists"       // field is present and not nil
	OpChanged     Operator = "changed"      // field changed value: changed("field")
	OpChangedTo   Operator = "changed_to"   // field changed, to value: changedTo("field", value)
	OpChangedFrom Operator = "changed_from" // field changed, from value: changedFrom("field", value)
)

// valueKind is what an operator accepts as its value.
type valueKind uint8

const (
	valueNone      valueKind = iota // no value
	valueScalar                     // string, number, boolean or nil
	valueSet                        // string, number or boolean
	valueOrderable                  // string or number
	valueString                     // string
	valueList                       // a non-empty list of strings, numbers, booleans or nils
)

type operatorSpec struct {
	value  valueKind
	change bool   // takes a field name, not a path
	format string // expression with %[1]s the field and %[2]s the value
}

var operatorSpecs = map[Operator]operatorSpec{
	OpEq:          {valueScalar, false, "%s == %s"},
	OpNe:          {valueScalar, false, "%s != %s"},
	OpGt:          {valueOrderable, false, "%s > %s"},
	OpGte:         {valueOrderable, false, "%s >= %s"},
	OpLt:          {valueOrderable, false, "%s < %s"},
	OpLte:         {valueOrderable, false, "%s <= %s"},
	OpIn:          {valueList, false, "%s in %s"},
	OpNotIn:       {valueList, false, "%s not in %s"},
	OpContains:    {valueSet, false, "%s contains %s"},
	OpStartsWith:  {valueString, false, "%s startsWith %s"},
	OpEndsWith:    {valueString, false, "%s endsWith %s"},
	OpExists:      {valueNone, false, "%s != nil"},
	OpChanged:     {valueNone, true, "changed(%s)"},
	OpChangedTo:   {valueScalar, true, "changedTo(%s, %s)"},
	OpChangedFrom: {valueScalar, true, "changedFrom(%s, %s)"},
}

func operatorNames() string {
	names := make([]string, 0, len(operatorSpecs))
	for op := range operatorSpecs {
		names = append(names, string(op))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// All returns a node that holds when every one of nodes holds.
func All(nodes ...*Node) *Node { return &Node{All: nonNil(nodes)} }

// Any returns a node that holds when at least one of nodes holds.
func Any(nodes ...*Node) *Node { return &Node{Any: nonNil(nodes)} }

// Not returns a node that holds when n does not.
func Not(n *Node) *Node { return &Node{Not: n} }

// Leaf returns a leaf testing field with op against value (nil for
// operators that take no value).
func Leaf(field string, op Operator, value any) *Node {
	return &Node{Field: field, Op: op, Value: value}
}

// nonNil keeps an empty group distinguishable from no group.
func nonNil(nodes []*Node) []*Node {
	if nodes == nil {
		return []*Node{}
	}
	return nodes
}

// Expr returns the expression n compiles to, after validating n. The
// expression can be used as a Rule.Expr with the same meaning.
func (n *Node) Expr() (string, error) {
	t, err := buildTree(n)
	if err != nil {
		return "", err
	}
	return t.source, nil
}

func (n *Node) clone() *Node {
	if n == nil {
		return nil
	}
	c := *n
	if n.All != nil {
		c.All = make([]*Node, len(n.All))
		for i, child := range n.All {
			c.All[i] = child.clone()
		}
	}
	if n.Any != nil {
		c.Any = make([]*Node, len(n.Any))
		for i, child := range n.Any {
			c.Any[i] = child.clone()
		}
	}
	c.Not = n.Not.clone()
	if v := reflect.ValueOf(n.Value); v.Kind() == reflect.Slice && !v.IsNil() {
		list := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(list, v)
		c.Value = list.Interface()
	}
	return &c
}

// UnmarshalJSON decodes a tree strictly: an unknown key, a misspelt one
// included, is an error naming its path in the tree, as is a value of the
// wrong JSON type. Numbers are kept exactly, as json.Number. Errors wrap
// [ErrInvalidRule].
func (n *Node) UnmarshalJSON(data []byte) error {
	d, err := decodeNode(data, "tree", 1)
	if err != nil {
		return err
	}
	*n = *d
	return nil
}

func treeError(path, format string, args ...any) *CompileError {
	return &CompileError{Part: "tree", Path: path, Message: fmt.Sprintf(format, args...)}
}

func decodeNode(data []byte, path string, depth int) (*Node, error) {
	if depth > MaxTreeDepth {
		return nil, treeError(path, "nested more than %d levels deep", MaxTreeDepth)
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, treeError(path, "is %s; want an object such as {\"all\": [...]} or {\"field\": ..., \"op\": ...}", jsonKind(data))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, treeError(path, "is not a valid JSON object: %v", err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := &Node{}
	for _, k := range keys {
		v := raw[k]
		p := path + "." + k
		switch k {
		case "all", "any":
			list, err := decodeList(v, p, depth)
			if err != nil {
				return nil, err
			}
			if k == "all" {
				n.All = list
			} else {
				n.Any = list
			}
		case "not":
			child, err := decodeNode(v, p, depth+1)
			if err != nil {
				return nil, err
			}
			n.Not = child
		case "field", "op":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, treeError(p, "is %s; want a string", jsonKind(v))
			}
			if k == "field" {
				n.Field = s
			} else {
				n.Op = Operator(s)
			}
		case "value":
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.UseNumber()
			if err := dec.Decode(&n.Value); err != nil {
				return nil, treeError(p, "is not valid JSON: %v", err)
			}
		default:
			return nil, treeError(path, "unknown key %q (want all, any, not, field, op or value)", k)
		}
	}
	return n, nil
}

func decodeList(data json.RawMessage, path string, depth int) ([]*Node, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil || items == nil {
		return nil, treeError(path, "is %s; want a list of conditions", jsonKind(data))
	}
	list := make([]*Node, len(items))
	for i, item := range items {
		child, err := decodeNode(item, fmt.Sprintf("%s[%d]", path, i), depth+1)
		if err != nil {
			return nil, err
		}
		list[i] = child
	}
	return list, nil
}

func jsonKind(data []byte) string {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return "empty"
	}
	switch data[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// treeNode is a validated tree node with the expression it compiles to,
// kept for Explain.
type treeNode struct {
	path     string
	kind     string // "all", "any", "not" or "leaf"
	source   string
	chain    bool // source is a bare && or || chain, to be parenthesized inside another
	children []*treeNode

	prog *program // compiled on the first Explain
	err  error
}

// buildTree validates n and generates its expression.
func buildTree(n *Node) (*treeNode, error) {
	if n == nil {
		return nil, treeError("tree", "is null")
	}
	b := &treeBuilder{}
	t, err := b.build(n, "tree", 1)
	if err != nil {
		return nil, err
	}
	if len(t.source) > MaxTreeExprBytes {
		return nil, treeError("tree", "compiles to a %d-byte expression; the limit is %d", len(t.source), MaxTreeExprBytes)
	}
	return t, nil
}

type treeBuilder struct {
	leaves int
}

func (b *treeBuilder) build(n *Node, path string, depth int) (*treeNode, error) {
	if n == nil {
		return nil, treeError(path, "is null; want a condition")
	}
	if depth > MaxTreeDepth {
		return nil, treeError(path, "nested more than %d levels deep", MaxTreeDepth)
	}
	var groups []string
	if n.All != nil {
		groups = append(groups, "all")
	}
	if n.Any != nil {
		groups = append(groups, "any")
	}
	if n.Not != nil {
		groups = append(groups, "not")
	}
	leaf := n.Field != "" || n.Op != "" || n.Value != nil
	switch {
	case len(groups) > 1:
		return nil, treeError(path, "has both %s and %s; a node holds one group", groups[0], groups[1])
	case len(groups) == 1 && leaf:
		return nil, treeError(path, "mixes the group %q with leaf keys (field, op, value); put the leaf inside the group", groups[0])
	case len(groups) == 0 && !leaf:
		return nil, treeError(path, "is empty; want all, any, not, or a leaf with field and op")
	case leaf:
		return b.leaf(n, path)
	}
	t := &treeNode{path: path, kind: groups[0]}
	if n.Not != nil {
		child, err := b.build(n.Not, path+".not", depth+1)
		if err != nil {
			return nil, err
		}
		t.children = []*treeNode{child}
		t.source = "!(" + child.source + ")"
		return t, nil
	}
	list, sep := n.All, " && "
	if n.Any != nil {
		list, sep = n.Any, " || "
	}
	p := path + "." + t.kind
	if len(list) == 0 {
		return nil, treeError(p, "is empty; want at least one condition")
	}
	parts := make([]string, len(list))
	for i, c := range list {
		child, err := b.build(c, fmt.Sprintf("%s[%d]", p, i), depth+1)
		if err != nil {
			return nil, err
		}
		t.children = append(t.children, child)
		parts[i] = child.source
		if child.chain && len(list) > 1 {
			parts[i] = "(" + child.source + ")"
		}
	}
	t.source = strings.Join(parts, sep)
	t.chain = len(list) > 1 || t.children[0].chain
	return t, nil
}

func (b *treeBuilder) leaf(n *Node, path string) (*treeNode, error) {
	b.leaves++
	if b.leaves > MaxTreeLeaves {
		return nil, treeError(path, "is leaf number %d; a tree holds at most %d", b.leaves, MaxTreeLeaves)
	}
	if n.Op == "" {
		return nil, treeError(path+".op", "is missing; want one of %s", operatorNames())
	}
	spec, ok := operatorSpecs[n.Op]
	if !ok {
		return nil, treeError(path+".op", "unknown operator %q; want one of %s", string(n.Op), operatorNames())
	}
	field, err := fieldSource(n.Field, n.Op, spec)
	if err != nil {
		return nil, treeError(path+".field", "%v", err)
	}
	value, err := valueSource(n.Value, n.Op, spec.value)
	if err != nil {
		return nil, treeError(path+".value", "%v", err)
	}
	src := fmt.Sprintf(spec.format, field, value)
	if spec.value == valueNone {
		src = fmt.Sprintf(spec.format, field)
	}
	return &treeNode{path: path, kind: "leaf", source: src}, nil
}

// maxSegmentBytes bounds one segment of a field path.
const maxSegmentBytes = 256

// fieldSource turns a leaf's field into expression source.
func fieldSource(field string, op Operator, spec operatorSpec) (string, error) {
	if field == "" {
		return "", fmt.Errorf("is missing")
	}
	if !utf8.ValidString(field) {
		return "", fmt.Errorf("is not valid UTF-8")
	}
	if spec.change {
		name := strings.TrimPrefix(strings.TrimPrefix(field, "new."), "old.")
		if name == "" || strings.Contains(name, ".") {
			return "", fmt.Errorf("%q: operator %s takes a record field name such as \"status\" (or \"new.status\"), not a path", field, op)
		}
		if len(name) > maxSegmentBytes {
			return "", fmt.Errorf("field name is %d bytes long; the limit is %d", len(name), maxSegmentBytes)
		}
		return strconv.QuoteToASCII(name), nil
	}
	segs := strings.Split(field, ".")
	switch segs[0] {
	case "new", "old", "context":
	case "op", "table", "key", "tenant", "changed":
		if len(segs) > 1 {
			return "", fmt.Errorf("%q: %s has no fields", field, segs[0])
		}
		return segs[0], nil
	default:
		return "", fmt.Errorf("%q does not start with new., old. or context., and is not op, table, key, tenant or changed", field)
	}
	var b strings.Builder
	b.WriteString(segs[0])
	for i, seg := range segs[1:] {
		if seg == "" {
			return "", fmt.Errorf("%q has an empty segment", field)
		}
		if len(seg) > maxSegmentBytes {
			return "", fmt.Errorf("%q: segment %d is %d bytes long; the limit is %d", field, i+1, len(seg), maxSegmentBytes)
		}
		// Below the first level a record may not hold the map the path
		// expects: nil, not an error.
		switch {
		case i == 0 && plainName(seg):
			b.WriteString("." + seg)
		case i == 0:
			b.WriteString("[" + strconv.QuoteToASCII(seg) + "]")
		case plainName(seg):
			b.WriteString("?." + seg)
		default:
			b.WriteString("?.[" + strconv.QuoteToASCII(seg) + "]")
		}
	}
	return b.String(), nil
}

// plainName reports whether s can follow a dot in an expression and read as
// itself: an ASCII identifier that is no keyword.
func plainName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	switch s {
	case "true", "false", "nil", "not", "and", "or", "in", "matches", "contains",
		"startsWith", "endsWith", "let", "if", "else":
		return false
	}
	return s != ""
}

// valueSource turns a leaf's value into an expression literal.
func valueSource(v any, op Operator, kind valueKind) (string, error) {
	if kind == valueNone {
		if v != nil {
			return "", fmt.Errorf("operator %s takes no value", op)
		}
		return "", nil
	}
	if kind == valueList {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			return "", fmt.Errorf("operator %s needs a list of values, not %s", op, valueDesc(v))
		}
		if rv.Len() == 0 {
			return "", fmt.Errorf("operator %s needs at least one value", op)
		}
		parts := make([]string, rv.Len())
		for i := range rv.Len() {
			s, err := scalarSource(rv.Index(i).Interface())
			if err != nil {
				return "", fmt.Errorf("element %d: %v", i, err)
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	s, err := scalarSource(v)
	if err != nil {
		return "", err
	}
	want := ""
	switch {
	case kind == valueSet && v == nil:
		want = "a string, number or boolean"
	case kind == valueOrderable && !(isString(v) || isNumber(v)):
		want = "a string or a number"
	case kind == valueString && !isString(v):
		want = "a string"
	}
	if want != "" {
		return "", fmt.Errorf("operator %s needs %s, not %s", op, want, valueDesc(v))
	}
	return s, nil
}

func isString(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.String && rv.Type() != jsonNumberType
}

func isNumber(v any) bool {
	_, ok := toNumber(reflect.ValueOf(v))
	return ok
}

func valueDesc(v any) string {
	switch {
	case v == nil:
		return "null"
	case isString(v):
		return "a string"
	case isNumber(v):
		return "a number"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// scalarSource writes a string, number, boolean or nil as an expression
// literal that reads back as exactly that value. Strings are quoted with
// every non-ASCII character escaped, so no value can end the literal early.
func scalarSource(v any) (string, error) {
	if v == nil {
		return "nil", nil
	}
	rv := reflect.ValueOf(v)
	if n, ok := toNumber(rv); ok {
		return numberSource(n)
	}
	if rv.Type() == jsonNumberType {
		return "", fmt.Errorf("%q is not a number", rv.String())
	}
	switch rv.Kind() {
	case reflect.String:
		s := rv.String()
		if !utf8.ValidString(s) {
			return "", fmt.Errorf("string is not valid UTF-8")
		}
		return strconv.QuoteToASCII(s), nil
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), nil
	}
	return "", fmt.Errorf("%s is not allowed here; want a string, number, boolean or null", valueDesc(v))
}

func numberSource(n number) (string, error) {
	switch n.kind {
	case numInt:
		if n.i == math.MinInt64 {
			// expr reads -9223372036854775808 as minus an out-of-range literal.
			return "(-9223372036854775807 - 1)", nil
		}
		return strconv.FormatInt(n.i, 10), nil
	case numUint:
		if n.u > math.MaxInt64 {
			return "", fmt.Errorf("%d is out of range; integers must fit in 64 signed bits", n.u)
		}
		return strconv.FormatUint(n.u, 10), nil
	}
	if math.IsNaN(n.f) || math.IsInf(n.f, 0) {
		return "", fmt.Errorf("%v is not a finite number", n.f)
	}
	s := strconv.FormatFloat(n.f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		// Keep it a float literal: 3 would be read as an int.
		s += ".0"
	}
	return s, nil
}
