package condition

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Equal reports whether a and b hold the same value, the way a webhook
// reader would judge it rather than the way Go's == would:
//
//   - numbers compare by value across kinds: int, int8..int64, uint..uint64,
//     float32, float64, json.Number and named types of those kinds
//     (time.Duration included), so 7, int64(7), 7.0 and json.Number("7")
//     are all equal; NaN equals NaN, so an unchanged NaN is not a change;
//   - a time.Time compares as an instant (time.Time.Equal), whatever its
//     location; a string equals a time.Time when it parses as RFC 3339
//     and names the same instant (two strings compare as text);
//   - maps compare key by key over the union of their keys, a key missing
//     on one side being equal to nil on the other; lists compare element by
//     element, in order;
//   - nil equals nil, a nil pointer, and a nil map or slice (they all
//     encode as JSON null), but not an empty map or list;
//   - strings and booleans compare by value, named types included.
//
// Anything else falls back to [reflect.DeepEqual], as do structures nested
// more than 64 levels deep or too large to walk, which keeps cyclic values
// from looping.
func Equal(a, b any) bool {
	e := equaler{budget: maxEqualWork}
	return e.equal(a, b, 0)
}

const (
	// maxEqualDepth bounds the recursion of Equal; beyond it values are
	// handed to reflect.DeepEqual, which handles cycles.
	maxEqualDepth = 64
	// maxEqualWork bounds the number of elements Equal visits itself, so a
	// value holding itself several times cannot make it explode.
	maxEqualWork = 1 << 20
)

type equaler struct{ budget int }

func (e *equaler) equal(a, b any, depth int) bool {
	// Fast paths for what decoded JSON and typical Go records hold.
	switch x := a.(type) {
	case nil:
		return isNil(b)
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case nil:
			return false
		}
	case float64:
		switch y := b.(type) {
		case float64:
			return x == y || (x != x && y != y)
		case int:
			return intEqualsFloat(int64(y), x)
		case nil:
			return false
		}
	case int:
		switch y := b.(type) {
		case int:
			return x == y
		case float64:
			return intEqualsFloat(int64(x), y)
		case nil:
			return false
		}
	case bool:
		switch y := b.(type) {
		case bool:
			return x == y
		case nil:
			return false
		}
	case map[string]any:
		if y, ok := b.(map[string]any); ok {
			return e.stringMaps(x, y, depth)
		}
	case []any:
		if y, ok := b.([]any); ok {
			return e.lists(x, y, depth)
		}
	}
	return e.general(a, b, depth)
}

func (e *equaler) stringMaps(x, y map[string]any, depth int) bool {
	if x == nil || y == nil {
		return x == nil && y == nil
	}
	if depth >= maxEqualDepth || e.budget < len(x)+len(y) {
		return reflect.DeepEqual(x, y)
	}
	if sameMap(x, y) {
		return true
	}
	e.budget -= len(x) + len(y)
	found := 0
	for k, xv := range x {
		yv, ok := y[k]
		if ok {
			found++
		}
		if !e.equal(xv, yv, depth+1) {
			return false
		}
	}
	if found == len(y) {
		return true
	}
	for k, yv := range y {
		if _, ok := x[k]; !ok && !isNil(yv) {
			return false
		}
	}
	return true
}

func (e *equaler) lists(x, y []any, depth int) bool {
	if (x == nil) != (y == nil) || len(x) != len(y) {
		return false
	}
	if depth >= maxEqualDepth || e.budget < len(x) {
		return reflect.DeepEqual(x, y)
	}
	if len(x) > 0 && &x[0] == &y[0] {
		return true
	}
	e.budget -= len(x)
	for i := range x {
		if !e.equal(x[i], y[i], depth+1) {
			return false
		}
	}
	return true
}

// general handles every pair the fast paths did not settle.
func (e *equaler) general(a, b any, depth int) bool {
	va, vb := derefValue(reflect.ValueOf(a)), derefValue(reflect.ValueOf(b))
	if isNilValue(va) || isNilValue(vb) {
		return isNilValue(va) && isNilValue(vb)
	}
	a, b = va.Interface(), vb.Interface()

	na, aNum := toNumber(va)
	nb, bNum := toNumber(vb)
	if aNum || bNum {
		return aNum && bNum && na.equal(nb)
	}
	ta, aTime := a.(time.Time)
	tb, bTime := b.(time.Time)
	switch {
	case aTime && bTime:
		return ta.Equal(tb)
	case aTime && vb.Kind() == reflect.String:
		return stringIsInstant(vb.String(), ta)
	case bTime && va.Kind() == reflect.String:
		return stringIsInstant(va.String(), tb)
	case aTime || bTime:
		return false
	}

	ka, kb := va.Kind(), vb.Kind()
	switch {
	case ka == reflect.String && kb == reflect.String:
		return va.String() == vb.String()
	case ka == reflect.Bool && kb == reflect.Bool:
		return va.Bool() == vb.Bool()
	case ka == reflect.Map && kb == reflect.Map:
		return e.reflectMaps(va, vb, depth)
	case isList(ka) && isList(kb):
		return e.reflectLists(va, vb, depth)
	}
	return reflect.DeepEqual(a, b)
}

func (e *equaler) reflectMaps(x, y reflect.Value, depth int) bool {
	if depth >= maxEqualDepth || e.budget < x.Len()+y.Len() {
		return reflect.DeepEqual(x.Interface(), y.Interface())
	}
	if x.UnsafePointer() == y.UnsafePointer() {
		return true
	}
	e.budget -= x.Len() + y.Len()
	if x.Type().Key().Kind() == reflect.String && y.Type().Key().Kind() == reflect.String {
		// Keys of any string kind: match them by their text.
		index := make(map[string]reflect.Value, y.Len())
		for it := y.MapRange(); it.Next(); {
			index[it.Key().String()] = it.Value()
		}
		for it := x.MapRange(); it.Next(); {
			k := it.Key().String()
			yv, ok := index[k]
			if ok {
				delete(index, k)
				if !e.equal(it.Value().Interface(), yv.Interface(), depth+1) {
					return false
				}
			} else if !isNilValue(derefValue(it.Value())) {
				return false
			}
		}
		for _, yv := range index {
			if !isNilValue(derefValue(yv)) {
				return false
			}
		}
		return true
	}
	if x.Type() != y.Type() {
		return reflect.DeepEqual(x.Interface(), y.Interface())
	}
	for it := x.MapRange(); it.Next(); {
		yv := y.MapIndex(it.Key())
		var yi any
		if yv.IsValid() {
			yi = yv.Interface()
		}
		if !e.equal(it.Value().Interface(), yi, depth+1) {
			return false
		}
	}
	for it := y.MapRange(); it.Next(); {
		if !x.MapIndex(it.Key()).IsValid() && !isNilValue(derefValue(it.Value())) {
			return false
		}
	}
	return true
}

func (e *equaler) reflectLists(x, y reflect.Value, depth int) bool {
	if x.Len() != y.Len() {
		return false
	}
	if x.Kind() == reflect.Slice && y.Kind() == reflect.Slice && x.IsNil() != y.IsNil() {
		return false
	}
	if xb, ok := x.Interface().([]byte); ok {
		if yb, ok := y.Interface().([]byte); ok {
			return string(xb) == string(yb)
		}
	}
	if xs, ok := x.Interface().([]string); ok {
		if ys, ok := y.Interface().([]string); ok {
			return slices.Equal(xs, ys)
		}
	}
	if depth >= maxEqualDepth || e.budget < x.Len() {
		return reflect.DeepEqual(x.Interface(), y.Interface())
	}
	e.budget -= x.Len()
	for i := range x.Len() {
		if !e.equal(x.Index(i).Interface(), y.Index(i).Interface(), depth+1) {
			return false
		}
	}
	return true
}

func isList(k reflect.Kind) bool { return k == reflect.Slice || k == reflect.Array }

// sameMap reports whether x and y are the same map, so a map holding itself
// compares equal to itself at once.
func sameMap(x, y map[string]any) bool {
	return reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
}

// derefValue follows pointers and interfaces down to the value they hold.
func derefValue(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

// isNilValue reports whether v stands for JSON null: no value, or a nil
// map, slice, pointer, interface, channel or function.
func isNilValue(v reflect.Value) bool {
	if !v.IsValid() {
		return true
	}
	switch v.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func:
		return v.IsNil()
	}
	return false
}

// isNil reports whether v stands for JSON null.
func isNil(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string, float64, int, bool, int64, json.Number, time.Time:
		return false
	case map[string]any:
		return x == nil
	case []any:
		return x == nil
	}
	return isNilValue(reflect.ValueOf(v))
}

func stringIsInstant(s string, t time.Time) bool {
	st, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && st.Equal(t)
}

// number is a numeric value of any Go kind, kept exactly: integers do not
// go through float64, so large IDs compare correctly.
type number struct {
	kind numKind
	i    int64
	u    uint64
	f    float64
}

type numKind uint8

const (
	numInt numKind = iota + 1
	numUint
	numFloat
)

// toNumber converts v to a number when it holds one: any integer or float
// kind, or a json.Number that parses.
func toNumber(v reflect.Value) (number, bool) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return number{kind: numInt, i: v.Int()}, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return number{kind: numUint, u: v.Uint()}, true
	case reflect.Float32, reflect.Float64:
		return number{kind: numFloat, f: v.Float()}, true
	case reflect.String:
		if v.Type() == jsonNumberType {
			return parseNumber(v.String())
		}
	}
	return number{}, false
}

var jsonNumberType = reflect.TypeFor[json.Number]()

func parseNumber(s string) (number, bool) {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return number{kind: numInt, i: i}, true
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return number{kind: numUint, u: u}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeError(err) {
		return number{}, false
	}
	return number{kind: numFloat, f: f}, true
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func (a number) equal(b number) bool {
	c, ok := a.compare(b)
	if !ok {
		return a.kind == numFloat && b.kind == numFloat && math.IsNaN(a.f) && math.IsNaN(b.f)
	}
	return c == 0
}

// compare orders a and b exactly; ok is false when either is NaN.
func (a number) compare(b number) (int, bool) {
	switch a.kind {
	case numInt:
		switch b.kind {
		case numInt:
			return cmpOrdered(a.i, b.i), true
		case numUint:
			if a.i < 0 {
				return -1, true
			}
			return cmpOrdered(uint64(a.i), b.u), true
		case numFloat:
			return cmpIntFloat(a.i, b.f)
		}
	case numUint:
		switch b.kind {
		case numInt:
			c, _ := b.compare(a)
			return -c, true
		case numUint:
			return cmpOrdered(a.u, b.u), true
		case numFloat:
			return cmpUintFloat(a.u, b.f)
		}
	case numFloat:
		switch b.kind {
		case numInt, numUint:
			c, ok := b.compare(a)
			return -c, ok
		case numFloat:
			if math.IsNaN(a.f) || math.IsNaN(b.f) {
				return 0, false
			}
			return cmpOrdered(a.f, b.f), true
		}
	}
	return 0, false
}

func cmpOrdered[T int64 | uint64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

const (
	two63 = float64(1 << 63)
	two64 = float64(1<<63) * 2
)

// cmpIntFloat compares i with f without rounding i through float64.
func cmpIntFloat(i int64, f float64) (int, bool) {
	switch {
	case math.IsNaN(f):
		return 0, false
	case f >= two63:
		return -1, true
	case f < -two63:
		return 1, true
	}
	t := math.Trunc(f)
	if c := cmpOrdered(i, int64(t)); c != 0 {
		return c, true
	}
	return cmpOrdered(0, f-t), true
}

func cmpUintFloat(u uint64, f float64) (int, bool) {
	switch {
	case math.IsNaN(f):
		return 0, false
	case f >= two64:
		return -1, true
	case f < 0:
		return 1, true
	}
	t := math.Trunc(f)
	if c := cmpOrdered(u, uint64(t)); c != 0 {
		return c, true
	}
	return cmpOrdered(0, f-t), true
}

func intEqualsFloat(i int64, f float64) bool {
	c, ok := cmpIntFloat(i, f)
	return ok && c == 0
}

// compare orders a and b for <, <=, > and >=: numbers of any kind by
// value, strings as text, times as instants (a string parsing as RFC 3339
// against a time.Time as that instant). ok is false for any other pair, nil
// included: such a comparison has no answer and is false.
func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		switch y := b.(type) {
		case float64:
			if x != x || y != y {
				return 0, false
			}
			return cmpOrdered(x, y), true
		case int:
			c, ok := cmpIntFloat(int64(y), x)
			return -c, ok
		}
	case int:
		switch y := b.(type) {
		case int:
			return cmpOrdered(int64(x), int64(y)), true
		case float64:
			return cmpIntFloat(int64(x), y)
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	}
	va, vb := derefValue(reflect.ValueOf(a)), derefValue(reflect.ValueOf(b))
	if !va.IsValid() || !vb.IsValid() {
		return 0, false
	}
	na, aNum := toNumber(va)
	nb, bNum := toNumber(vb)
	if aNum || bNum {
		if !aNum || !bNum {
			return 0, false
		}
		return na.compare(nb)
	}
	ta, aTime := va.Interface().(time.Time)
	tb, bTime := vb.Interface().(time.Time)
	var err error
	switch {
	case aTime && bTime:
	case aTime && vb.Kind() == reflect.String:
		tb, err = time.Parse(time.RFC3339Nano, vb.String())
	case bTime && va.Kind() == reflect.String:
		ta, err = time.Parse(time.RFC3339Nano, va.String())
	case va.Kind() == reflect.String && vb.Kind() == reflect.String:
		return strings.Compare(va.String(), vb.String()), true
	default:
		return 0, false
	}
	if err != nil {
		return 0, false
	}
	return ta.Compare(tb), true
}

// Changed returns the sorted names of the fields whose values differ
// between old and new, over the union of their keys, as judged by [Equal]:
// a field missing on one side and nil on the other did not change. On an
// insert (old nil) it names every non-nil field of new, on a delete every
// non-nil field of old. The result is never nil, so it can be passed on as
// [Input.Changed] without being computed again.
func Changed(old, new map[string]any) []string {
	var out []string
	found := 0
	for k, nv := range new {
		ov, ok := old[k]
		if ok {
			found++
		}
		if !Equal(ov, nv) {
			out = append(out, k)
		}
	}
	if found < len(old) {
		for k, ov := range old {
			if _, ok := new[k]; !ok && !isNil(ov) {
				out = append(out, k)
			}
		}
	}
	if out == nil {
		return []string{}
	}
	slices.Sort(out)
	return out
}
