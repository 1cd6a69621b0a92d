package memory

import (
	"math"
	"time"

	"github.com/heraldhr/herald/store"
)

// row is one delivery as the store keeps it: a compact form of
// store.Delivery (160 bytes rather than 288), so a million pending
// deliveries fit in well under 2 GiB beside their payloads. Its event
// supplies the event id, tenant and record key, its queue the webhook id;
// times are kept as stamps.
type row struct {
	id        string
	seq       int64
	ev        *store.Event
	q         *queue
	chain     *chain // nil when outside a chain (replayed) or finished
	unit      *unit  // the message it is in, if any
	attempts  []store.Attempt
	lastError string
	batchID   string
	next      stamp // when a pending delivery is due
	created   stamp
	updated   stamp
	maxBatch  int32
	tries     int32 // attempts made
	lastCode  int32
	status    status
	replayed  bool
}

// delivery returns r as the store contract spells it.
func (r *row) delivery() store.Delivery {
	return store.Delivery{
		ID:          r.id,
		Seq:         r.seq,
		EventID:     r.ev.ID,
		WebhookID:   r.q.id,
		Tenant:      r.ev.Tenant,
		Key:         r.ev.Key,
		MaxBatch:    int(r.maxBatch),
		Status:      r.status.String(),
		Attempts:    int(r.tries),
		NextAttempt: r.next.Time(),
		LastError:   r.lastError,
		LastCode:    int(r.lastCode),
		BatchID:     r.batchID,
		Replayed:    r.replayed,
		CreatedAt:   r.created.Time(),
		UpdatedAt:   r.updated.Time(),
	}
}

// messageID is the id r is sent under: its batch id, else its event id.
func (r *row) messageID() string {
	if r.batchID != "" {
		return r.batchID
	}
	return r.ev.ID
}

// status is a delivery state in one byte.
type status uint8

const (
	stPending status = iota
	stDelivered
	stDead
	stSkipped
	stCanceled
)

var statusNames = [...]store.Status{stPending: store.Pending, stDelivered: store.Delivered, stDead: store.Dead,
	stSkipped: store.Skipped, stCanceled: store.Canceled}

// String returns the state as the store contract spells it.
func (s status) String() store.Status { return statusNames[s] }

// statusOf is the inverse of String; ok is false for an unknown state.
func statusOf(s store.Status) (st status, ok bool) {
	for i, n := range statusNames {
		if n == s {
			return status(i), true
		}
	}
	return 0, false
}

// stamp is a time in 8 bytes rather than time.Time's 24: nanoseconds
// since the Unix epoch. Times come back in UTC, without a monotonic
// reading; times before September 1677 or after April 2262, which int64
// nanoseconds cannot hold, are clamped to those bounds.
type stamp int64

const zeroStamp = stamp(math.MinInt64)

var (
	minStampTime = time.Unix(0, math.MinInt64+1)
	maxStampTime = time.Unix(0, math.MaxInt64)
)

func toStamp(t time.Time) stamp {
	switch {
	case t.IsZero():
		return zeroStamp
	case t.Before(minStampTime):
		return stamp(math.MinInt64 + 1)
	case t.After(maxStampTime):
		return stamp(math.MaxInt64)
	}
	return stamp(t.UnixNano())
}

// Time returns the time s holds; the zero time for zeroStamp.
func (s stamp) Time() time.Time {
	if s == zeroStamp {
		return time.Time{}
	}
	return time.Unix(0, int64(s)).UTC()
}

// after reports whether s is after t.
func (s stamp) after(t stamp) bool { return s > t }
