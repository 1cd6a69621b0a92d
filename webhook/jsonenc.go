package webhook

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The encoder below writes exactly the bytes encoding/json's Marshal
// writes, for the types records are made of (strings, numbers, booleans,
// nil, time.Time, and maps and slices of them), without reflection and
// with one allocation for the result. Anything else (named types, structs,
// values with their own MarshalJSON, strings that need escaping) is handed
// to encoding/json, value by value, so the output never differs from it.
// Publish encodes every change once, and this is most of its cost.

// maxFastDepth bounds the nesting the encoder follows itself; deeper
// values go to encoding/json, which also catches cycles.
const maxFastDepth = 32

// encBufs are scratch buffers; the result is copied out at its exact size.
var encBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledEncBuf keeps one huge change from pinning its buffer in the pool.
const maxPooledEncBuf = 256 << 10

// marshalPayload encodes p as json.Marshal would.
func marshalPayload(p *payload) ([]byte, error) {
	bp := encBufs.Get().(*[]byte)
	b, err := appendPayload((*bp)[:0], p)
	var out []byte
	if err == nil {
		out = slices.Clone(b)
	}
	if cap(b) <= maxPooledEncBuf {
		*bp = b[:0]
		encBufs.Put(bp)
	}
	return out, err
}

func appendPayload(b []byte, p *payload) ([]byte, error) {
	var err error
	b = append(b, `{"event_id":`...)
	b = appendString(b, p.EventID)
	b = append(b, `,"table":`...)
	b = appendString(b, p.Table)
	b = append(b, `,"op":`...)
	b = appendString(b, p.Op)
	b = append(b, `,"key":`...)
	b = appendString(b, p.Key)
	if len(p.New) > 0 {
		b = append(b, `,"new":`...)
		if b, err = appendMap(b, p.New, 1); err != nil {
			return b, err
		}
	}
	if len(p.Old) > 0 {
		b = append(b, `,"old":`...)
		if b, err = appendMap(b, p.Old, 1); err != nil {
			return b, err
		}
	}
	if len(p.Changed) > 0 {
		b = append(b, `,"changed":`...)
		b = appendStrings(b, p.Changed)
	}
	if p.Tenant != "" {
		b = append(b, `,"tenant":`...)
		b = appendString(b, p.Tenant)
	}
	if len(p.Context) > 0 {
		b = append(b, `,"context":`...)
		if b, err = appendMap(b, p.Context, 1); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendValue appends the JSON encoding of v.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxFastDepth {
		return appendMarshal(b, v)
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		return appendFloat(b, v, 64)
	case float32:
		return appendFloat(b, float64(v), 32)
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(v), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case time.Time:
		if y := v.Year(); y < 0 || y > 9999 {
			return appendMarshal(b, v) // encoding/json's error
		}
		b = append(b, '"')
		b = v.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), nil
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		return appendMap(b, v, depth+1)
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		var err error
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case []string:
		if v == nil {
			return append(b, "null"...), nil
		}
		return appendStrings(b, v), nil
	}
	return appendMarshal(b, v)
}

// appendMap appends m with its keys sorted, as encoding/json does. Keys
// and values are taken in one pass over the map, so no value is looked up
// again by its key, into an array on the stack; what is sorted is their
// order, bytes without pointers, so sorting costs no write barriers while
// the garbage collector runs.
func appendMap(b []byte, m map[string]any, depth int) ([]byte, error) {
	if depth > maxFastDepth {
		return appendMarshal(b, m)
	}
	if len(m) > maxStackFields {
		return appendBigMap(b, m, depth)
	}
	var fields [maxStackFields]field
	var heads [maxStackFields]uint64 // the first 8 bytes of each key, to compare most keys at once
	var order [maxStackFields]uint8
	n := 0
	for k, v := range m {
		fields[n], heads[n] = field{k, v}, keyHead(k)
		// Binary insertion as the fields arrive: few enough to beat a
		// general sort.
		lo, hi := 0, n
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if o := order[mid]; heads[o] < heads[n] || heads[o] == heads[n] && fields[o].key < k {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		copy(order[lo+1:n+1], order[lo:n])
		order[lo] = uint8(n)
		n++
	}
	b = append(b, '{')
	var err error
	for i, o := range order[:n] {
		if i > 0 {
			b = append(b, ',')
		}
		f := &fields[o]
		b = appendString(b, f.key)
		b = append(b, ':')
		if b, err = appendValue(b, f.value, depth); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// keyHead packs the first 8 bytes of k, zero-padded, big-endian: heads
// that differ order their keys as the keys' bytes do, and equal heads
// leave the order to the whole keys.
func keyHead(k string) uint64 {
	var h uint64
	for i := range 8 {
		h <<= 8
		if i < len(k) {
			h |= uint64(k[i])
		}
	}
	return h
}

// maxStackFields is the most fields appendMap sorts on the stack.
const maxStackFields = 48

// field is one entry of a map being encoded.
type field struct {
	key   string
	value any
}

// appendBigMap is appendMap for maps of more than maxStackFields.
func appendBigMap(b []byte, m map[string]any, depth int) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, m[k], depth); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendFloat writes the numbers encoding/json writes without an exponent
// itself, and leaves the rest (exponents, NaN and infinities, which are
// errors) to it.
func appendFloat(b []byte, f float64, bits int) ([]byte, error) {
	abs := math.Abs(f)
	if math.IsInf(f, 0) || math.IsNaN(f) || (abs != 0 && (abs < 1e-6 || abs >= 1e21)) {
		if bits == 32 {
			return appendMarshal(b, float32(f))
		}
		return appendMarshal(b, f)
	}
	if bits == 32 && abs != 0 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
		return appendMarshal(b, float32(f))
	}
	return strconv.AppendFloat(b, f, 'f', -1, bits), nil
}

// appendString appends s quoted. Strings that need escaping (control
// characters, quotes, backslashes, HTML's <, > and &, anything beyond
// ASCII that encoding/json might escape or replace) go to encoding/json.
func appendString(b []byte, s string) []byte {
	for i := plainPrefix(s); i < len(s); i++ {
		c := s[i]
		if plainByte[c] {
			continue
		}
		if c < utf8.RuneSelf {
			return appendMarshaledString(b, s)
		}
		// Valid UTF-8 passes unchanged except U+2028 and U+2029.
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return appendMarshaledString(b, s)
		}
		i += size - 1
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainPrefix returns how many of s's leading bytes, in whole words of 8,
// are plain (plainByte): record values are mostly plain ASCII, and testing
// 8 bytes at once takes about 40% fewer instructions than looking each
// up. The byte loop takes the rest.
func plainPrefix(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; len(s)-i >= 8; i += 8 {
		t := s[i : i+8]
		w := uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
			uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56
		// With every byte below 0x80, (v - n*ones) &^ v has a high bit
		// set if and only if some byte of v is below n: a byte below
		// 0x20, or a zero byte where w is XORed with a byte to escape.
		// '"' and '&' differ in one bit only, and so do '<' and '>':
		// with that bit set in w, one XOR finds either of a pair.
		qa, lg, bs := (w|0x04*ones)^'&'*ones, (w|0x02*ones)^'>'*ones, w^'\\'*ones
		bad := w | (w-0x20*ones)&^w | (qa-ones)&^qa | (lg-ones)&^lg | (bs-ones)&^bs
		if bad&highs != 0 {
			break // or a byte beyond ASCII, which w itself flags
		}
	}
	return i
}

func appendMarshaledString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// plainByte marks the ASCII bytes encoding/json writes in a string as they
// are.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		switch c {
		case '"', '\\', '<', '>', '&':
		default:
			t[c] = true
		}
	}
	return t
}()

func appendMarshal(b []byte, v any) ([]byte, error) {
	q, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, q...), nil
}
