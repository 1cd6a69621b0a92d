package sqlite

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/heraldhr/herald/store"
)

// Scan destinations for the driver's column values. database/sql converts
// an integer column into an *int64, *int or *bool through reflection, a
// few hundred nanoseconds a column; a claim reads twenty columns a row, so
// the hot paths scan into these instead: database/sql hands them the
// driver's value as it is.

// nanoTime scans unix nanoseconds (0: the zero time) into a time.Time.
type nanoTime time.Time

func (t *nanoTime) Scan(src any) error {
	n, err := integer(src)
	*t = nanoTime(fromNanos(n))
	return err
}

// intCol scans an integer into an int.
type intCol int

func (v *intCol) Scan(src any) error {
	n, err := integer(src)
	*v = intCol(n)
	return err
}

// int64Col scans an integer into an int64.
type int64Col int64

func (v *int64Col) Scan(src any) error {
	n, err := integer(src)
	*v = int64Col(n)
	return err
}

// boolCol scans an integer into a bool (not 0: true).
type boolCol bool

func (v *boolCol) Scan(src any) error {
	n, err := integer(src)
	*v = n != 0
	return err
}

// statusCol scans text into a store.Status.
type statusCol store.Status

func (v *statusCol) Scan(src any) error {
	switch s := src.(type) {
	case string:
		*v = statusCol(s)
	case []byte:
		*v = statusCol(s)
	default:
		return fmt.Errorf("status: unexpected %T", src)
	}
	return nil
}

// payloadCol scans a blob or text into a json.RawMessage (NULL: nil).
// database/sql lets a driver reuse the bytes it hands over once the next
// row is read; modernc.org/sqlite copies each blob into a slice of its own
// instead (TestDriverBlobsAreFresh checks it), so the payload is kept as
// it comes rather than copied a second time: a claim reads every payload
// it returns, the largest value on the hot path.
type payloadCol json.RawMessage

func (v *payloadCol) Scan(src any) error {
	switch b := src.(type) {
	case nil:
		*v = nil
	case []byte:
		*v = payloadCol(b)
	case string:
		*v = payloadCol(b)
	default:
		return fmt.Errorf("payload: unexpected %T", src)
	}
	return nil
}

func integer(src any) (int64, error) {
	switch n := src.(type) {
	case int64:
		return n, nil
	case nil:
		return 0, nil
	}
	return 0, fmt.Errorf("unexpected %T for an integer column", src)
}
