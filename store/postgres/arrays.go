package postgres

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// pgArray is a one-dimensional array parameter that pgx encodes through
// pointers into the slice. Given a plain []string or []time.Time, pgx
// hands each element to its encoder in an interface holding a copy: one
// allocation per element, and the ack and the combined enqueue send a
// dozen arrays with an element per delivery. A pointer in an interface
// costs nothing; the element types below give pgx their values through
// the pgtype valuer interfaces, as it would read them from the copies.
//
// A nil slice is sent as NULL, an empty one as an empty array, as pgx
// sends plain slices.
type pgArray[E any, P interface{ *E }] []E

func (a pgArray[E, P]) Dimensions() []pgtype.ArrayDimension {
	if a == nil {
		return nil
	}
	return []pgtype.ArrayDimension{{Length: int32(len(a)), LowerBound: 1}}
}

func (a pgArray[E, P]) Index(i int) any { return P(&a[i]) }

func (a pgArray[E, P]) IndexType() any { return P(nil) }

// Array elements, for text[], timestamptz[], int8[], int4[] and uuid[].
type (
	textElem  string
	timeElem  time.Time
	int64Elem int64
	int32Elem int32
	uuidElem  [16]byte
)

func (e *textElem) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: string(*e), Valid: true}, nil
}

func (e *timeElem) TimestamptzValue() (pgtype.Timestamptz, error) {
	return pgtype.Timestamptz{Time: time.Time(*e), Valid: true}, nil
}

func (e *int64Elem) Int64Value() (pgtype.Int8, error) {
	return pgtype.Int8{Int64: int64(*e), Valid: true}, nil
}

func (e *int32Elem) Int64Value() (pgtype.Int8, error) {
	return pgtype.Int8{Int64: int64(*e), Valid: true}, nil
}

func (e *uuidElem) UUIDValue() (pgtype.UUID, error) {
	return pgtype.UUID{Bytes: *e, Valid: true}, nil
}

// The array parameters built from those elements.
type (
	textArray  = pgArray[textElem, *textElem]
	timeArray  = pgArray[timeElem, *timeElem]
	int64Array = pgArray[int64Elem, *int64Elem]
	int32Array = pgArray[int32Elem, *int32Elem]
	uuidArray  = pgArray[uuidElem, *uuidElem]
)
