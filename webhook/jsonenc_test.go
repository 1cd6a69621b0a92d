package webhook

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type named string

type withMarshaler struct{ v int }

func (w withMarshaler) MarshalJSON() ([]byte, error) {
	return []byte(`{"custom":` + string(rune('0'+w.v)) + `}`), nil
}

// TestAppendValueMatchesEncodingJSON pins the payload encoder to
// encoding/json, byte for byte, on the values records are made of and on
// the ones it hands over.
func TestAppendValueMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := []any{
		nil, "", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\x00\x1f",
		"héllo wörld ✓ 日本", "bad \xff utf8", "line\u2028sep\u2029", "\ufffd literal", "emoji 🎉",
		true, false, 0.0, math.Copysign(0, -1), 1.5, -2.25, 1e-6, 9.99e-7, 1e20, 1e21, 123456789.125,
		float32(3.14), float32(1e-7), float32(1e21), math.MaxFloat64, math.SmallestNonzeroFloat64,
		0, -1, math.MaxInt64, math.MinInt64, int8(-8), int16(16), int32(32), uint(7), uint8(8), uint16(16),
		uint32(32), uint64(math.MaxUint64),
		time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.UTC), time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("x", 5*3600+1800)),
		time.Time{}, json.Number("12.50"), json.RawMessage(`{ "a" : 1 }`), []byte("bytes"),
		named("named"), withMarshaler{3}, struct{ A int }{1}, map[string]int{"b": 1, "a": 2},
		[]any{}, []any(nil), []any{1, "x", nil, []any{true}}, []string{}, []string(nil), []string{"a", "<b>"},
		map[string]any{}, map[string]any(nil), map[string]any{"z": 1, "a": map[string]any{"y": []any{1.5}}, "": "empty key", "k<": "v"},
		[]int{1, 2}, &struct{ P *int }{},
	}
	for _, v := range cases {
		want, werr := json.Marshal(v)
		got, gerr := appendValue(nil, v, 0)
		if werr != nil {
			assert.Error(t, gerr, "%#v", v)
			continue
		}
		require.NoError(t, gerr, "%#v", v)
		assert.Equal(t, string(want), string(got), "%#v", v)
	}
}

func TestAppendValueErrorsLikeEncodingJSON(t *testing.T) {
	t.Parallel()
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for _, v := range []any{math.NaN(), math.Inf(1), float32(math.Inf(-1)), map[string]any{"f": math.NaN()},
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), cyclic, make(chan int)} {
		_, gerr := appendValue(nil, v, 0)
		assert.Error(t, gerr, "%T", v)
	}
}

// TestMarshalPayloadRandom compares whole payloads of random records.
func TestMarshalPayloadRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		p := payload{EventID: randString(r), Table: randString(r), Op: "UPDATE", Key: randString(r),
			New: randMap(r, 0), Old: randMap(r, 0), Tenant: randString(r), Context: randMap(r, 2)}
		if r.IntN(2) == 0 {
			p.Changed = []string{randString(r), randString(r)}
		}
		want, werr := json.Marshal(p)
		got, gerr := marshalPayload(&p)
		require.Equal(t, werr == nil, gerr == nil)
		require.Equal(t, string(want), string(got))
	}
}

// TestAppendMapKeyOrder: keys that share their first bytes, end early or
// hold zero bytes sort as encoding/json sorts them, in maps small enough
// to sort on the stack and in larger ones.
func TestAppendMapKeyOrder(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	stems := []string{"", "a", "field_", "field_0", "field_00", "field_000", "field_\x00", "\x00", "\xff", "é", "abcdefgh", "abcdefghi"}
	for _, size := range []int{1, 2, 7, maxStackFields - 1, maxStackFields, maxStackFields + 1, 200} {
		m := map[string]any{}
		for len(m) < size {
			m[stems[r.IntN(len(stems))]+strconv.Itoa(r.IntN(300))] = len(m)
		}
		want, err := json.Marshal(m)
		require.NoError(t, err)
		got, err := appendMap(nil, m, 1)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "%d keys", size)
	}
}

var randPieces = []string{"a", "Z", "0", " ", "<", ">", "&", `"`, `\`, "\n", "\x01", "é", "日", "\u2028", "\xfe", "🎉", "\ufffd"}

func randString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteString(randPieces[r.IntN(len(randPieces))])
	}
	return b.String()
}

func randMap(r *rand.Rand, depth int) map[string]any {
	if r.IntN(8) == 0 {
		return nil
	}
	m := map[string]any{}
	for range r.IntN(40) {
		m[randString(r)] = randValue(r, depth+1)
	}
	return m
}

func randValue(r *rand.Rand, depth int) any {
	switch n := r.IntN(14); {
	case n == 0:
		return nil
	case n == 1:
		return r.IntN(2) == 0
	case n == 2:
		return r.Int64() - r.Int64()
	case n == 3:
		return math.Ldexp(r.Float64()-0.5, r.IntN(160)-80)
	case n == 4:
		return float32(math.Ldexp(r.Float64(), r.IntN(100)-50))
	case n == 5:
		return time.Unix(r.Int64N(1<<35), r.Int64N(1e9)).UTC()
	case n == 6 && depth < 4:
		return randMap(r, depth)
	case n == 7 && depth < 4:
		l := make([]any, r.IntN(4))
		for i := range l {
			l[i] = randValue(r, depth+1)
		}
		return l
	case n == 8:
		return json.Number("42")
	case n == 9:
		return r.IntN(1000)
	default:
		return randString(r)
	}
}

func FuzzMarshalPayload(f *testing.F) {
	f.Add("E-1", "name", "héllo <b>", 1.5, int64(3))
	f.Add("", "\x00", "\xff", math.Inf(1), int64(-1))
	f.Fuzz(func(t *testing.T, key, field, value string, num float64, n int64) {
		p := payload{EventID: key, Table: field, Op: "INSERT", Key: key,
			New: map[string]any{field: value, value: num, "n": n, "nested": map[string]any{field: []any{value, num}}}}
		want, werr := json.Marshal(p)
		got, gerr := marshalPayload(&p)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("errors differ: encoding/json %v, ours %v", werr, gerr)
		}
		if string(want) != string(got) {
			t.Fatalf("encoding/json %s\nours          %s", want, got)
		}
	})
}

// TestEnvelopeHeadTypes: the type is written from its two parts, escaped
// when the table needs it, and the head parses as the start of JSON.
func TestEnvelopeHeadTypes(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, table := range []string{"employee", `odd"table`, "tàble", "a\\b"} {
		head := envelopeHead(nil, "msg_1", table, ".updated", ts)
		var v struct {
			ID, Type string
			Data     int
		}
		require.NoError(t, json.Unmarshal(append(head, `1}`...), &v), "%s", head)
		assert.Equal(t, table+".updated", v.Type)
		assert.Equal(t, "msg_1", v.ID)
	}
}

// TestAppendStringEveryByteEverywhere: a string of plain bytes with one
// byte of every value put at every position, across the word boundaries
// the encoder tests 8 bytes at a time, is written as encoding/json writes
// it; so are strings of two such bytes.
func TestAppendStringEveryByteEverywhere(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 20; n++ {
		for at := range n {
			for c := range 256 {
				s := []byte(strings.Repeat("a", n))
				s[at] = byte(c)
				want, _ := json.Marshal(string(s))
				if got := appendString(nil, string(s)); string(got) != string(want) {
					t.Fatalf("%q: encoding/json %s, ours %s", s, want, got)
				}
				s[n-1-at] = byte(255 - c)
				want, _ = json.Marshal(string(s))
				if got := appendString(nil, string(s)); string(got) != string(want) {
					t.Fatalf("%q: encoding/json %s, ours %s", s, want, got)
				}
			}
		}
	}
}
