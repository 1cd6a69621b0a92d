package condition

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type status string

type flag bool

func ptr[T any](v T) *T { return &v }

func TestEqual(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	noonUTC := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

	cyclic := map[string]any{"name": "loop"}
	cyclic["self"] = cyclic
	cyclic2 := map[string]any{"name": "loop"}
	cyclic2["self"] = cyclic2

	tests := []struct {
		name string
		a, b any
		want bool
	}{
		// Numbers compare by value across kinds.
		{"int and float64", 7, 7.0, true},
		{"int64 and float64", int64(7), 7.0, true},
		{"int8 and uint16", int8(7), uint16(7), true},
		{"int32 and uint64", int32(7), uint64(7), true},
		{"uint and float32", uint(7), float32(7), true},
		{"uintptr and int", uintptr(7), 7, true},
		{"json.Number int and int", json.Number("7"), 7, true},
		{"json.Number float and int", json.Number("7.0"), 7, true},
		{"json.Number exponent and float", json.Number("7e0"), 7.0, true},
		{"two json.Numbers", json.Number("70e-1"), json.Number("7"), true},
		{"different numbers", 7, 7.5, false},
		{"float32 fraction", float32(0.5), 0.5, true},
		{"negative int and uint", -1, uint64(math.MaxUint64), false},
		{"max uint64 and float", uint64(math.MaxUint64), float64(math.MaxUint64), false},
		{"large int exact", int64(1 << 53), float64(1 << 53), true},
		{"large int beyond float precision", int64(1<<53 + 1), float64(1 << 53), false},
		{"min int64 and float", int64(math.MinInt64), -two63, true},
		{"NaN equals NaN", math.NaN(), math.NaN(), true},
		{"NaN and number", math.NaN(), 1.0, false},
		{"positive and negative zero", 0.0, math.Copysign(0, -1), true},
		{"duration and int", 5 * time.Second, int64(5e9), true},
		{"number and numeric string", 7, "7", false},
		{"json.Number and string", json.Number("7"), "7", false},
		{"invalid json.Number and number", json.Number("x"), 7, false},
		{"number and bool", 1, true, false},

		// Strings and booleans, named types included.
		{"strings", "Sales", "Sales", true},
		{"strings differ", "Sales", "sales", false},
		{"named string", status("Approved"), "Approved", true},
		{"two named strings", status("a"), status("b"), false},
		{"bools", true, true, true},
		{"bools differ", true, false, false},
		{"named bool", flag(true), true, true},

		// nil and the things that encode as JSON null.
		{"nil and nil", nil, nil, true},
		{"nil and nil map", nil, map[string]any(nil), true},
		{"nil and nil slice", nil, []any(nil), true},
		{"nil and nil pointer", nil, (*int)(nil), true},
		{"nil map and nil slice", map[string]any(nil), []string(nil), true},
		{"nil and empty map", nil, map[string]any{}, false},
		{"nil and empty list", nil, []any{}, false},
		{"nil and empty string", nil, "", false},
		{"nil and zero", nil, 0, false},
		{"nil and false", nil, false, false},
		{"nil and time", nil, noonUTC, false},

		// Pointers compare by what they point to.
		{"pointer and value", ptr(7), 7.0, true},
		{"two pointers", ptr("a"), ptr("a"), true},

		// Maps compare key by key; a missing key equals nil.
		{"equal maps", map[string]any{"a": 1, "b": "x"}, map[string]any{"b": "x", "a": 1.0}, true},
		{"missing key and nil", map[string]any{"a": 1, "b": nil}, map[string]any{"a": 1}, true},
		{"missing key and nil, reversed", map[string]any{"a": 1}, map[string]any{"a": 1, "b": nil}, true},
		{"missing key and value", map[string]any{"a": 1}, map[string]any{"a": 1, "b": 2}, false},
		{"missing key and value, reversed", map[string]any{"a": 1, "b": 2}, map[string]any{"a": 1}, false},
		{"nested maps", map[string]any{"addr": map[string]any{"city": "Paris", "zip": 75001}}, map[string]any{"addr": map[string]any{"city": "Paris", "zip": 75001.0}}, true},
		{"nested maps differ", map[string]any{"addr": map[string]any{"city": "Paris"}}, map[string]any{"addr": map[string]any{"city": "Lyon"}}, false},
		{"typed map and any map", map[string]string{"a": "x"}, map[string]any{"a": "x"}, true},
		{"typed maps with missing nil", map[string]*int{"a": nil}, map[string]any{}, true},
		{"int keyed maps", map[int]any{1: "x"}, map[int]any{1: "x"}, true},
		{"int keyed maps differ", map[int]any{1: "x"}, map[int]any{1: "y"}, false},
		{"int keyed map missing nil", map[int]any{1: "x", 2: nil}, map[int]any{1: "x"}, true},
		{"map and list", map[string]any{}, []any{}, false},

		// Lists compare element by element, in order.
		{"equal lists", []any{1, "a", true}, []any{1.0, "a", true}, true},
		{"lists in another order", []any{1, 2}, []any{2, 1}, false},
		{"lists of other lengths", []any{1}, []any{1, 1}, false},
		{"typed list and any list", []string{"a", "b"}, []any{"a", "b"}, true},
		{"int list and float list", []int{1, 2}, []float64{1, 2}, true},
		{"array and slice", [2]int{1, 2}, []any{1, 2}, true},
		{"string lists", []string{"a"}, []string{"a"}, true},
		{"string lists differ", []string{"a"}, []string{"b"}, false},
		{"bytes", []byte("ab"), []byte("ab"), true},
		{"bytes differ", []byte("ab"), []byte("ac"), false},
		{"nested lists", []any{[]any{1, map[string]any{"x": nil}}}, []any{[]any{1.0, map[string]any{}}}, true},
		{"nil list and empty list", []any(nil), []any{}, false},

		// Times compare as instants.
		{"same instant, other zones", noonUTC, noonUTC.In(paris), true},
		{"other instants", noonUTC, noonUTC.Add(time.Nanosecond), false},
		{"time and RFC 3339 string", noonUTC, "2024-05-01T14:00:00+02:00", true},
		{"RFC 3339 string and time", "2024-05-01T12:00:00Z", noonUTC, true},
		{"time and fractional string", noonUTC.Add(time.Millisecond), "2024-05-01T12:00:00.001Z", true},
		{"time and other instant string", noonUTC, "2024-05-01T12:00:01Z", false},
		{"time and non-time string", noonUTC, "noon", false},
		{"time and date only", noonUTC, "2024-05-01", false},
		{"time pointer and time", ptr(noonUTC), noonUTC, true},
		{"two strings are text", "2024-05-01T12:00:00Z", "2024-05-01T14:00:00+02:00", false},
		{"time and number", noonUTC, noonUTC.Unix(), false},

		// Other values fall back to reflect.DeepEqual.
		{"structs", struct{ A int }{1}, struct{ A int }{1}, true},
		{"structs differ", struct{ A int }{1}, struct{ A int }{2}, false},

		// Cycles terminate.
		{"cyclic map and itself", cyclic, cyclic, true},
		{"two cyclic maps", cyclic, cyclic2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, Equal(tt.a, tt.b), "Equal(a, b)")
			assert.Equal(t, tt.want, Equal(tt.b, tt.a), "Equal(b, a)")
		})
	}
}

func TestEqualDeepNesting(t *testing.T) {
	t.Parallel()
	build := func(leaf any) any {
		var v any = leaf
		for range 200 {
			v = map[string]any{"x": v}
		}
		return v
	}
	assert.True(t, Equal(build(1), build(1)))
	assert.False(t, Equal(build(1), build(2)))
}

func TestCompare(t *testing.T) {
	t.Parallel()
	noon := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		a, b any
		want int
		ok   bool
	}{
		{"ints", 1, 2, -1, true},
		{"int and float", 3, 2.5, 1, true},
		{"float and int", 2.5, 3, -1, true},
		{"equal across kinds", uint8(4), json.Number("4.0"), 0, true},
		{"int and fraction just above", 2, 2.000001, -1, true},
		{"negative int and fraction", -2, -2.5, 1, true},
		{"large int above float", int64(1<<53 + 1), float64(1 << 53), 1, true},
		{"int and huge float", math.MaxInt64, 1e300, -1, true},
		{"int and huge negative float", math.MinInt64, -1e300, 1, true},
		{"uint and negative float", uint(1), -1.0, 1, true},
		{"uint and huge float", uint64(math.MaxUint64), 1e30, -1, true},
		{"uint and fraction", uint(2), 2.5, -1, true},
		{"negative int and uint", -1, uint(0), -1, true},
		{"uint and negative int", uint(0), -1, 1, true},
		{"strings", "a", "b", -1, true},
		{"named strings", status("b"), "a", 1, true},
		{"times", noon, noon.Add(time.Hour), -1, true},
		{"time and string", noon, "2024-05-01T11:00:00Z", 1, true},
		{"string and time", "2024-05-01T11:00:00Z", noon, -1, true},
		{"durations", time.Second, time.Minute, -1, true},
		{"nil and number", nil, 5, 0, false},
		{"number and nil", 5, nil, 0, false},
		{"string and number", "5", 5, 0, false},
		{"bools", true, false, 0, false},
		{"NaN", math.NaN(), 1.0, 0, false},
		{"int and NaN", 1, math.NaN(), 0, false},
		{"time and bad string", noon, "soon", 0, false},
		{"lists", []any{1}, []any{2}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := compare(tt.a, tt.b)
			assert.Equal(t, tt.ok, ok, "ok")
			if tt.ok {
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

func TestChanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new map[string]any
		want     []string
	}{
		{"nothing changed", map[string]any{"a": 1, "b": "x"}, map[string]any{"a": 1.0, "b": "x"}, []string{}},
		{"both nil", nil, nil, []string{}},
		{"one value changed", map[string]any{"a": 1, "b": "x"}, map[string]any{"a": 1, "b": "y"}, []string{"b"}},
		{"sorted", map[string]any{"z": 1, "a": 1, "m": 1}, map[string]any{"z": 2, "a": 2, "m": 2}, []string{"a", "m", "z"}},
		{"key added", map[string]any{"a": 1}, map[string]any{"a": 1, "b": 2}, []string{"b"}},
		{"key removed", map[string]any{"a": 1, "b": 2}, map[string]any{"a": 1}, []string{"b"}},
		{"key added as nil", map[string]any{"a": 1}, map[string]any{"a": 1, "b": nil}, []string{}},
		{"key removed while nil", map[string]any{"a": 1, "b": nil}, map[string]any{"a": 1}, []string{}},
		{"set to nil", map[string]any{"a": 1}, map[string]any{"a": nil}, []string{"a"}},
		{"nested change", map[string]any{"addr": map[string]any{"city": "Paris"}}, map[string]any{"addr": map[string]any{"city": "Lyon"}}, []string{"addr"}},
		{"list reordered", map[string]any{"tags": []any{"a", "b"}}, map[string]any{"tags": []any{"b", "a"}}, []string{"tags"}},
		{"insert", nil, map[string]any{"a": 1, "b": nil, "c": ""}, []string{"a", "c"}},
		{"delete", map[string]any{"a": 1, "b": nil}, nil, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Changed(tt.old, tt.new)
			require.NotNil(t, got)
			assert.Equal(t, tt.want, got)
		})
	}
}
