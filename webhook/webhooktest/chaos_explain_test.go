package webhooktest

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
)

// arrival is a request the receiver got: the attempt that sent it began
// in second ts.
func arrival(id string, ts int64, f Fault) *ChaosArrival {
	h := http.Header{}
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	return &ChaosArrival{Request: Request{Header: h}, Fault: f, Processed: f == FaultNone || f == FaultSlowBody,
		Cut: f == FaultSlowBody}
}

// finished marks a slow body as written to the end.
func finished(a *ChaosArrival) *ChaosArrival {
	a.Cut = false
	return a
}

// attemptAt is an attempt in the sender's log, begun in second ts.
func attemptAt(id string, ts int64, code int, err string) store.Attempt {
	return store.Attempt{MessageID: id, At: time.Unix(ts, 250_000_000), StatusCode: code, Error: err}
}

const timedOut = "net/http: timeout awaiting response headers"

// doubtfulOf keeps the arrivals Check leaves to explain: processed, not
// cut (none of these tests has a kill).
func doubtfulOf(as []*ChaosArrival) []*ChaosArrival {
	var out []*ChaosArrival
	for _, a := range as {
		if a.Processed && !a.Cut {
			out = append(out, a)
		}
	}
	return out
}

func causesOf(as []*ChaosArrival, killed []int, atts []store.Attempt, lease []sent) map[string]int {
	inFlight := map[*ChaosArrival]bool{}
	for _, i := range killed {
		inFlight[as[i]] = true
	}
	out := map[string]int{}
	for c, n := range explain(doubtfulOf(as), inFlight, as, atts, lease) {
		if n != 0 {
			out[c] = n
		}
	}
	return out
}

func TestExplainDuplicates(t *testing.T) {
	const id = "evt-1"
	for _, c := range []struct {
		name   string
		as     []*ChaosArrival
		killed []int // indexes of the arrivals in flight at a kill
		atts   []store.Attempt
		lease  []sent
		want   map[string]int
	}{{
		// A request answered after the sender's timeout arrives after the
		// retry the sender made meanwhile, which was delivered.
		name: "late answer overtaken by its retry",
		as:   []*ChaosArrival{arrival(id, 50, FaultHang), arrival(id, 51, FaultNone), arrival(id, 50, FaultNone)},
		atts: []store.Attempt{attemptAt(id, 50, 0, timedOut), attemptAt(id, 50, 0, "context deadline exceeded"), attemptAt(id, 51, 204, "")},
		want: map[string]int{CauseLate: 1},
	}, {
		// A hang whose attempt died with its process (so is not logged)
		// in one second says nothing of a late answer in another.
		name: "late answer beside an unlogged hang",
		as:   []*ChaosArrival{arrival(id, 11, FaultHang), arrival(id, 13, FaultNone), arrival(id, 17, FaultNone)},
		atts: []store.Attempt{attemptAt(id, 13, 0, timedOut), attemptAt(id, 17, 204, "")},
		want: map[string]int{CauseLate: 1},
	}, {
		name: "outcome lost",
		as:   []*ChaosArrival{arrival(id, 20, FaultNone), arrival(id, 22, FaultNone)},
		atts: []store.Attempt{attemptAt(id, 22, 204, "")},
		want: map[string]int{CauseUnrecorded: 1},
	}, {
		name:  "outcome refused for a lost lease",
		as:    []*ChaosArrival{arrival(id, 20, FaultNone), arrival(id, 22, FaultNone)},
		atts:  []store.Attempt{attemptAt(id, 22, 204, "")},
		lease: []sent{{id, 20}},
		want:  map[string]int{CauseLease: 1},
	}, {
		name:  "a lost lease of another second explains nothing",
		as:    []*ChaosArrival{arrival(id, 20, FaultNone), arrival(id, 22, FaultNone)},
		atts:  []store.Attempt{attemptAt(id, 22, 204, "")},
		lease: []sent{{id, 21}},
		want:  map[string]int{CauseUnrecorded: 1},
	}, {
		name:   "outcome lost at a kill",
		as:     []*ChaosArrival{arrival(id, 20, FaultNone), arrival(id, 23, FaultNone)},
		killed: []int{0},
		atts:   []store.Attempt{attemptAt(id, 23, 204, "")},
		want:   map[string]int{CauseKill: 1},
	}, {
		// The parent found the delivery pending after the kill, but the
		// dead sender's outcome was committed after all: no duplicate.
		name:   "outcome recorded after the kill",
		as:     []*ChaosArrival{arrival(id, 20, FaultNone)},
		killed: []int{0},
		atts:   []store.Attempt{attemptAt(id, 20, 204, "")},
		want:   map[string]int{},
	}, {
		name: "slow body",
		as:   []*ChaosArrival{arrival(id, 30, FaultSlowBody), arrival(id, 30, FaultNone)},
		atts: []store.Attempt{attemptAt(id, 30, 200, "reading the answer: timeout"), attemptAt(id, 30, 204, "")},
		want: map[string]int{},
	}, {
		// The receiver wrote the whole slow body, but its last bytes left
		// after the sender had given up reading it.
		name: "slow body finished after the sender gave up",
		as:   []*ChaosArrival{finished(arrival(id, 30, FaultSlowBody)), arrival(id, 30, FaultNone)},
		atts: []store.Attempt{attemptAt(id, 30, 200, "reading the answer: context deadline exceeded"), attemptAt(id, 30, 204, "")},
		want: map[string]int{CauseLate: 1},
	},
		// Injected faults: a sender that logged a request delivered and
		// sent it again is caught, whatever else the log holds.
		{
			name: "sent again after a delivery was logged",
			as:   []*ChaosArrival{arrival(id, 40, FaultNone), arrival(id, 41, FaultNone)},
			atts: []store.Attempt{attemptAt(id, 40, 204, ""), attemptAt(id, 41, 204, "")},
			want: map[string]int{CauseUnknown: 1},
		}, {
			name: "a timeout in another second does not cover it",
			as:   []*ChaosArrival{arrival(id, 11, FaultSlowBody), arrival(id, 13, FaultNone), arrival(id, 15, FaultNone)},
			atts: []store.Attempt{attemptAt(id, 11, 0, timedOut), attemptAt(id, 13, 204, ""), attemptAt(id, 15, 204, "")},
			want: map[string]int{CauseUnknown: 1},
		}, {
			name: "nor does a timeout of that second already matched by a hang",
			as:   []*ChaosArrival{arrival(id, 40, FaultHang), arrival(id, 40, FaultNone), arrival(id, 41, FaultNone)},
			atts: []store.Attempt{attemptAt(id, 40, 0, timedOut), attemptAt(id, 40, 204, ""), attemptAt(id, 41, 204, "")},
			want: map[string]int{CauseUnknown: 1},
		}, {
			name:  "nor a lost lease",
			as:    []*ChaosArrival{arrival(id, 20, FaultNone), arrival(id, 22, FaultNone)},
			atts:  []store.Attempt{attemptAt(id, 20, 204, ""), attemptAt(id, 22, 204, "")},
			lease: []sent{{id, 20}},
			want:  map[string]int{CauseUnknown: 1},
		}, {
			name:   "nor a kill, when the log holds the attempt",
			as:     []*ChaosArrival{arrival(id, 20, FaultNone), arrival(id, 22, FaultNone)},
			killed: []int{0},
			atts:   []store.Attempt{attemptAt(id, 20, 204, ""), attemptAt(id, 22, 204, "")},
			want:   map[string]int{CauseUnknown: 1},
		}, {
			name: "nor an attempt of another message",
			as:   []*ChaosArrival{arrival(id, 20, FaultNone), arrival(id, 22, FaultNone)},
			atts: []store.Attempt{attemptAt("evt-2", 20, 0, timedOut), attemptAt(id, 20, 204, ""), attemptAt(id, 22, 204, "")},
			want: map[string]int{CauseUnknown: 1},
		}} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, causesOf(c.as, c.killed, c.atts, c.lease))
		})
	}
}

// The lease log finds an outcome the store refused because the lease ran
// out and the message was claimed again, in memory and read back from
// what it wrote.
func TestLeaseLogFindsRefusedOutcomes(t *testing.T) {
	ctx := t.Context()
	mem := memory.New()
	t0 := time.Unix(1_800_000_000, 0)
	_, err := mem.SaveWebhook(ctx, store.Webhook{ID: "w", Definition: []byte(`{}`)}, t0)
	require.NoError(t, err)
	for _, ev := range []string{"e1", "e2"} {
		_, err = mem.Enqueue(ctx, store.Event{ID: ev, Table: "t", Op: "INSERT", Key: ev, Time: t0, Payload: []byte(`{}`)},
			[]store.Delivery{{ID: "d-" + ev, EventID: ev, WebhookID: "w", Key: ev, NextAttempt: t0}})
		require.NoError(t, err)
	}
	var out bytes.Buffer
	l := NewLeaseLog(&out, 0)
	st := l.Store(mem)

	first, err := st.Claim(ctx, store.Claim{Now: t0, Lease: time.Second, Limit: 2})
	require.NoError(t, err)
	require.Len(t, first, 2)
	// The holder is slow: both leases run out, and another claim takes
	// e1. e2's outcome is still recorded.
	again, err := st.Claim(ctx, store.Claim{Now: t0.Add(time.Second), Lease: time.Second, Limit: 1})
	require.NoError(t, err)
	require.Len(t, again, 1)
	byID := map[string]store.Message{}
	for _, m := range first {
		byID[m.ID] = m
	}
	require.Equal(t, "e1", again[0].ID)
	at := t0.Add(100 * time.Millisecond)
	res := func(m store.Message) store.Result {
		return store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDelivered, Now: at.Add(2 * time.Second),
			Attempt: &store.Attempt{MessageID: m.ID, At: at, StatusCode: 204}}
	}
	require.ErrorIs(t, st.Ack(ctx, []store.Result{res(byID["e1"]), res(byID["e2"])}), store.ErrLeaseLost)
	require.NoError(t, l.Err())

	e1 := []*ChaosArrival{arrival("e1", at.Unix(), FaultNone)}
	e2 := []*ChaosArrival{arrival("e2", at.Unix(), FaultNone)}
	logOf := func(id string) []store.Attempt {
		atts, err := mem.Attempts(ctx, "d-"+id)
		require.NoError(t, err)
		return atts
	}
	// Lines a kill cut short, at the start (a killed sender before this
	// one) and at the end, are skipped.
	cut := append([]byte(`{"done":"41.c5c5`+"\n"), out.Bytes()...)
	read, err := ReadLeaseLog(bytes.NewReader(append(cut, `{"claim":{"webh`...)))
	require.NoError(t, err)
	assert.Equal(t, 2, read.Cut())
	assert.Zero(t, l.Cut())
	for name, l := range map[string]*LeaseLog{"in memory": l, "read back": read} {
		assert.Equal(t, []sent{{"e1", at.Unix()}}, l.refused("w", e1, logOf("e1")), "%s: e1's outcome was refused", name)
		assert.Empty(t, l.refused("w", e2, logOf("e2")), "%s: e2's was recorded", name)
		assert.Empty(t, l.refused("other", e1, logOf("e1")), "%s: only at its webhook", name)
	}
	var none *LeaseLog
	assert.Empty(t, none.refused("w", e1, nil), "no log, no evidence")
}

// A store that handed a message out again before its lease ran out, and
// then refused the first holder's outcome, is not excused by the log.
func TestLeaseLogWantsTheLeaseRunOut(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	l := NewLeaseLog(nil, 0)
	l.record([]leaseRecord{
		{Claim: &leaseClaim{Webhook: "w", Message: "e1", Lease: "L1", At: t0, Until: t0.Add(time.Second)}},
		{Claim: &leaseClaim{Webhook: "w", Message: "e1", Lease: "L2", At: t0.Add(999 * time.Millisecond), Until: t0.Add(2 * time.Second)}},
		{Lost: &lostResult{Lease: "L1", Attempt: t0.Add(100 * time.Millisecond)}},
	})
	e1 := []*ChaosArrival{arrival("e1", t0.Unix(), FaultNone)}
	assert.Empty(t, l.refused("w", e1, nil), "claimed again while the lease held")
	l.record([]leaseRecord{
		{Claim: &leaseClaim{Webhook: "w", Message: "e1", Lease: "L3", At: t0.Add(time.Second), Until: t0.Add(2 * time.Second)}},
	})
	assert.Equal(t, []sent{{"e1", t0.Unix()}}, l.refused("w", e1, nil), "claimed again once it had run out")
}

// A request a killed sender made under a lease it never let go was in
// its hands when it died, even if another sender delivered the record
// before anyone looked at the store; a lease it let go, or another
// sender's, says nothing.
func TestHeldAtKill(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	l := NewLeaseLog(nil, 0)
	claim := func(sender int, lease string, at time.Time) leaseRecord {
		return leaseRecord{Claim: &leaseClaim{Sender: sender, Webhook: "w", Message: "e1", Lease: lease, At: at, Until: at.Add(2 * time.Second)}}
	}
	l.record([]leaseRecord{claim(2, "L1", t0), claim(2, "L2", t0.Add(2*time.Second)), {Done: "L2"}, claim(3, "L3", t0.Add(4*time.Second))})
	at := func(epoch int, ts int64) *ChaosArrival {
		a := arrival("e1", ts, FaultNone)
		a.Epoch = epoch
		return a
	}
	for _, c := range []struct {
		name   string
		a      *ChaosArrival
		killed map[int]bool
		want   bool
	}{
		{"sent under a lease held at the kill", at(2, t0.Unix()), map[int]bool{2: true}, true},
		{"sender not killed", at(2, t0.Unix()), map[int]bool{3: true}, false},
		{"sent by another sender", at(3, t0.Unix()+4), map[int]bool{2: true}, false},
		{"sent before the lease began", at(2, t0.Unix()-1), map[int]bool{2: true}, false},
	} {
		inFlight := map[*ChaosArrival]bool{}
		heldAtKill([]*ChaosArrival{c.a}, inFlight, "w", ChaosEvidence{Leases: l, Killed: c.killed})
		assert.Equal(t, c.want, inFlight[c.a], c.name)
	}
	// One lease held at the kill explains one request.
	a, b := at(2, t0.Unix()), at(2, t0.Unix()+1)
	inFlight := map[*ChaosArrival]bool{}
	heldAtKill([]*ChaosArrival{a, b}, inFlight, "w", ChaosEvidence{Leases: l, Killed: map[int]bool{2: true}})
	assert.Equal(t, map[*ChaosArrival]bool{a: true}, inFlight)
}
