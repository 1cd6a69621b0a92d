package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An array parameter encodes as pgx encodes the plain slice, without an
// allocation per element.
func TestArrayParamsEncodeAsPlainSlices(t *testing.T) { // not parallel: AllocsPerRun
	m := pgtype.NewMap()
	const n = 100
	texts, times := make([]string, n), make([]time.Time, n)
	ints, smalls, uuids := make([]int64, n), make([]int32, n), make([][16]byte, n)
	var tx []textElem
	var tm []timeElem
	var i64 []int64Elem
	var i32 []int32Elem
	var us []uuidElem
	for i := range n {
		texts[i], times[i] = fmt.Sprint("delivery-", i, "-\"q\""), time.Date(2026, 1, 2, 3, 4, 5, i*1000, time.UTC)
		ints[i], smalls[i], uuids[i] = int64(i)<<40, int32(i*1000), [16]byte{byte(i), 1, 2, 3}
		tx, tm, i64, i32, us = append(tx, textElem(texts[i])), append(tm, timeElem(times[i])), append(i64, int64Elem(ints[i])),
			append(i32, int32Elem(smalls[i])), append(us, uuidElem(uuids[i]))
	}
	cases := []struct {
		name       string
		oid        uint32
		plain, arr any
	}{
		{"text", pgtype.TextArrayOID, texts, textArray(tx)},
		{"timestamptz", pgtype.TimestamptzArrayOID, times, timeArray(tm)},
		{"int8", pgtype.Int8ArrayOID, ints, int64Array(i64)},
		{"int4", pgtype.Int4ArrayOID, smalls, int32Array(i32)},
		{"uuid", pgtype.UUIDArrayOID, uuids, uuidArray(us)},
		{"empty", pgtype.TextArrayOID, []string{}, textArray{}},
		{"nil", pgtype.TextArrayOID, []string(nil), textArray(nil)},
	}
	for _, c := range cases {
		want, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.plain, nil)
		require.NoError(t, err, c.name)
		got, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.arr, nil)
		require.NoError(t, err, c.name)
		assert.Equal(t, want, got, c.name)
		buf := make([]byte, 0, 64<<10)
		allocs := testing.AllocsPerRun(10, func() {
			_, _ = m.Encode(c.oid, pgtype.BinaryFormatCode, c.arr, buf)
		})
		assert.LessOrEqual(t, allocs, 4.0, "%s: allocations to encode %d elements", c.name, n)
	}
}
