package condition

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzCompileEval feeds arbitrary expressions, trees (as JSON) and records
// through Compile, Match and Explain. Nothing may panic, every error must
// wrap the package's sentinels, and Match and Explain must agree.
func FuzzCompileEval(f *testing.F) {
	rec := []byte(`{"department":"Sales","status":"Approved","grade":5,"tags":["a","b"],"address":{"city":"London"}}`)
	old := []byte(`{"department":"HR","status":"Pending","grade":3.0,"tags":["a"]}`)
	f.Add(`new.department == "Sales" && (old.status != new.status || new.grade > 5)`, []byte(nil), old, rec, uint8(1))
	f.Add(`changed("status") && changedTo("status", "Approved") && changedFrom("status", "Pending")`, []byte(nil), old, rec, uint8(1))
	f.Add(`"grade" in changed && old.grade < new.grade`, []byte(nil), []byte(nil), rec, uint8(0))
	f.Add(``, []byte(`{"all":[{"field":"new.department","op":"eq","value":"Sales"},{"any":[{"field":"status","op":"changed"},{"field":"new.grade","op":"gt","value":5}]}]}`), old, rec, uint8(1))
	f.Add(`all(new.tags, # startsWith "a")`, []byte(`{"not":{"field":"new.address.city","op":"in","value":["Paris",null,1e3]}}`), old, rec, uint8(5))
	f.Add(`let r = 1..500; any(r, all(r, # > 0))`, []byte(`{"field":"changed","op":"contains","value":"grade"}`), old, rec, uint8(2))
	f.Add(`new.grade / old.grade > 1`, []byte(`{"feild":"x"}`), rec, []byte(`{}`), uint8(3))

	ops := []string{"INSERT", "UPDATE", "DELETE", "MERGE"}
	f.Fuzz(func(t *testing.T, src string, tree, oldJSON, newJSON []byte, mode uint8) {
		r := Rule{Expr: src}
		if len(tree) > 0 {
			var n Node
			if err := json.Unmarshal(tree, &n); err != nil {
				var syntax *json.SyntaxError
				if !errors.As(err, &syntax) {
					require.ErrorIs(t, err, ErrInvalidRule)
				}
			} else {
				r.Tree = &n
			}
		}
		if mode&8 != 0 {
			r.Match, r.Fields = AnySelected, []string{"grade", "status"}
		}
		c, err := Compile(r)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidRule)
			require.Nil(t, c)
			return
		}
		if r.Tree != nil {
			// A tree that compiles survives a JSON round trip unchanged.
			b, err := json.Marshal(r.Tree)
			require.NoError(t, err)
			var back Node
			require.NoError(t, json.Unmarshal(b, &back))
			want, err := r.Tree.Expr()
			require.NoError(t, err)
			got, err := back.Expr()
			require.NoError(t, err)
			require.Equal(t, want, got)
		}

		in := Input{
			Op:  ops[int(mode)%len(ops)],
			Old: decodeRecord(oldJSON, mode&16 != 0),
			New: decodeRecord(newJSON, mode&16 != 0),
		}
		ok, err := c.Match(in)
		if err != nil {
			require.ErrorIs(t, err, ErrEval)
			require.False(t, ok)
		}
		x := c.Explain(in)
		require.Equal(t, ok, x.Match)
		if err != nil {
			require.Equal(t, err.Error(), x.Error)
		}

		// A precomputed changed list gives the same verdict.
		in.Changed = Changed(in.Old, in.New)
		ok2, err2 := c.Match(in)
		require.Equal(t, ok, ok2)
		require.Equal(t, err == nil, err2 == nil)

		// Changed is symmetric, and a record never differs from itself.
		require.Equal(t, in.Changed, Changed(in.New, in.Old))
		require.Empty(t, Changed(in.New, in.New))
	})
}

func decodeRecord(data []byte, numbers bool) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(data))
	if numbers {
		dec.UseNumber()
	}
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil
	}
	return m
}
