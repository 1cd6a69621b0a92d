package webhooktest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/heraldhr/herald/store"
)

// LeaseLog records the leases a chaos run's dispatchers were given, the
// leases they let go (acknowledged or released) and the outcomes the store
// refused because their lease was lost. So the run can tell a duplicate
// sent because a sender's lease ran out (at least once delivery cannot
// avoid it: a holder that takes longer than its lease is presumed dead),
// or because a sender was killed while it held a lease, from one sent for
// no reason.
//
// Wrap each dispatcher's store with Store. A run across processes gives
// each child a LeaseLog writing to one file (NewLeaseLog) and reads it
// back in the parent (ReadLeaseLog).
type LeaseLog struct {
	mu     sync.Mutex
	out    io.Writer
	sender int
	err    error
	leases map[string]leaseClaim   // by lease token
	claims map[msgKey][]leaseClaim // by message
	lost   map[msgKey][]lostResult
	done   map[string]bool // leases let go
	cut    int             // lines read that a kill had cut short
}

// msgKey names a message: one event's id is the message id at every
// webhook it goes to.
type msgKey struct{ webhook, message string }

type leaseClaim struct {
	Sender  int       `json:"sender,omitempty"` // the claiming process: its epoch
	Webhook string    `json:"webhook"`
	Message string    `json:"message"`
	Lease   string    `json:"lease"`
	At      time.Time `json:"at"`    // the claim's now
	Until   time.Time `json:"until"` // when the lease runs out
}

// lostResult is an outcome the store refused: its lease was lost.
type lostResult struct {
	Lease string `json:"lease"`
	// Attempt is when the attempt whose outcome it was began; zero when
	// the outcome carried no attempt (no request was made).
	Attempt time.Time `json:"attempt"`
}

// leaseRecord is one line of a lease log file: a claim, a lost result, or
// a lease let go.
type leaseRecord struct {
	Claim *leaseClaim `json:"claim,omitempty"`
	Lost  *lostResult `json:"lost,omitempty"`
	Done  string      `json:"done,omitempty"`
}

// NewLeaseLog returns an empty log for the dispatchers of one sender, a
// process whose requests the receiver tags with the epoch sender (see
// ChaosReceiver.SetEpoch). When out is not nil the log also writes each
// record to it, a line of JSON as it happens: a process killed at any
// moment has written all it learnt.
func NewLeaseLog(out io.Writer, sender int) *LeaseLog {
	return &LeaseLog{out: out, sender: sender, leases: map[string]leaseClaim{}, claims: map[msgKey][]leaseClaim{},
		lost: map[msgKey][]lostResult{}, done: map[string]bool{}}
}

// ReadLeaseLog reads what the logs of NewLeaseLog wrote to r. A line a
// kill cut short (the file's last, or one a later process appended after
// once it began a line of its own) is skipped and counted by Cut.
func ReadLeaseLog(r io.Reader) (*LeaseLog, error) {
	l := NewLeaseLog(nil, 0)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec leaseRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			l.cut++
			continue
		}
		l.add(rec)
	}
	return l, sc.Err()
}

// Cut returns how many lines ReadLeaseLog skipped because a kill had cut
// them short: at most one for each process killed.
func (l *LeaseLog) Cut() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut
}

// Err returns the first error met writing the log.
func (l *LeaseLog) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *LeaseLog) add(rec leaseRecord) {
	switch {
	case rec.Claim != nil:
		c := *rec.Claim
		k := msgKey{c.Webhook, c.Message}
		l.leases[c.Lease] = c
		l.claims[k] = append(l.claims[k], c)
	case rec.Lost != nil:
		if c, ok := l.leases[rec.Lost.Lease]; ok {
			k := msgKey{c.Webhook, c.Message}
			l.lost[k] = append(l.lost[k], *rec.Lost)
		}
	case rec.Done != "":
		l.done[rec.Done] = true
	}
}

// record adds recs and writes them out in one write.
func (l *LeaseLog) record(recs []leaseRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var buf []byte
	for _, rec := range recs {
		l.add(rec)
		if l.out != nil {
			b, err := json.Marshal(rec)
			if err != nil {
				l.err = errors.Join(l.err, err)
				continue
			}
			buf = append(append(buf, b...), '\n')
		}
	}
	if len(buf) > 0 {
		if _, err := l.out.Write(buf); err != nil && l.err == nil {
			l.err = fmt.Errorf("lease log: %w", err)
		}
	}
}

// refused returns the attempts of a record's messages at a webhook whose
// outcome the store refused because their lease had run out: the store
// reported the lease lost, the attempt is missing from attempts (the
// record's log), and the message was claimed again under another lease
// no earlier than the refused lease's end. Each is a request made whose
// outcome could not count.
func (l *LeaseLog) refused(webhookID string, arrivals []*ChaosArrival, attempts []store.Attempt) []sent {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sent
	seen := map[string]bool{}
	for _, a := range arrivals {
		id := a.ID()
		if seen[id] {
			continue
		}
		seen[id] = true
		k := msgKey{webhookID, id}
		for _, r := range l.lost[k] {
			c := l.leases[r.Lease]
			if r.Attempt.IsZero() || logged(attempts, id, r.Attempt) {
				continue
			}
			for _, later := range l.claims[k] {
				if later.Lease != r.Lease && !later.At.Before(c.Until) {
					out = append(out, sent{id, r.Attempt.Unix()})
					break
				}
			}
		}
	}
	return out
}

// heldAtKill returns the leases of a webhook's message that a sender
// killed still held when it died (it never let them go), by sender.
func (l *LeaseLog) heldAtKill(webhookID, messageID string, killed map[int]bool) []leaseClaim {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []leaseClaim
	for _, c := range l.claims[msgKey{webhookID, messageID}] {
		if killed[c.Sender] && !l.done[c.Lease] {
			out = append(out, c)
		}
	}
	return out
}

// describe writes the leases of a webhook's messages, and the outcomes
// refused for them, for a failed run's evidence.
func (l *LeaseLog) describe(b *strings.Builder, webhookID string, ids []string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b.WriteString("; leases")
	for _, id := range ids {
		k := msgKey{webhookID, id}
		for _, c := range l.claims[k] {
			fmt.Fprintf(b, " [%s of %s by %d from %s to %s, let go %t]", short(c.Lease), id, c.Sender, c.At.Format("15:04:05.000"),
				c.Until.Format("15:04:05.000"), l.done[c.Lease])
		}
		for _, r := range l.lost[k] {
			fmt.Fprintf(b, " [%s refused, attempt at %s]", short(r.Lease), r.Attempt.Format("15:04:05.000"))
		}
	}
}

// short abbreviates a lease token.
func short(lease string) string {
	if len(lease) > 8 {
		return lease[:8]
	}
	return lease
}

// logged reports whether attempts holds one of the message begun at at.
// Stores keep times to the microsecond at least.
func logged(attempts []store.Attempt, messageID string, at time.Time) bool {
	for _, a := range attempts {
		if d := a.At.Sub(at); a.MessageID == messageID && d > -time.Microsecond && d < time.Microsecond {
			return true
		}
	}
	return false
}

// Store returns st wrapped so that the log learns of every claim it makes
// and of every outcome it refuses for a lost lease. Notifications pass
// through when st has them.
func (l *LeaseLog) Store(st store.Store) store.Store {
	w := leaseStore{Store: st, log: l}
	if n, ok := st.(store.Notifier); ok {
		return notifyingLeaseStore{leaseStore: w, n: n}
	}
	return w
}

type leaseStore struct {
	store.Store
	log *LeaseLog
}

// Claim claims through the store and records the leases given.
func (s leaseStore) Claim(ctx context.Context, c store.Claim) ([]store.Message, error) {
	ms, err := s.Store.Claim(ctx, c)
	if len(ms) > 0 {
		recs := make([]leaseRecord, len(ms))
		for i, m := range ms {
			recs[i].Claim = &leaseClaim{Sender: s.log.sender, Webhook: m.WebhookID, Message: m.ID, Lease: m.Lease, At: c.Now, Until: c.Now.Add(c.Lease)}
		}
		s.log.record(recs)
	}
	return ms, err
}

// Ack acknowledges through the store and records every lease as let go,
// whatever came of it; when the store reports a lease lost, every result
// of the call is recorded too, and refused later finds which of them the
// store refused.
func (s leaseStore) Ack(ctx context.Context, rs []store.Result) error {
	err := s.Store.Ack(ctx, rs)
	recs := make([]leaseRecord, 0, 2*len(rs))
	for _, r := range rs {
		recs = append(recs, leaseRecord{Done: r.Lease})
	}
	if errors.Is(err, store.ErrLeaseLost) {
		for _, r := range rs {
			rec := leaseRecord{Lost: &lostResult{Lease: r.Lease}}
			if r.Attempt != nil {
				rec.Lost.Attempt = r.Attempt.At
			}
			recs = append(recs, rec)
		}
	}
	s.log.record(recs)
	return err
}

// Release releases through the store and records the leases as let go.
func (s leaseStore) Release(ctx context.Context, leases []string) error {
	err := s.Store.Release(ctx, leases)
	recs := make([]leaseRecord, len(leases))
	for i, l := range leases {
		recs[i].Done = l
	}
	s.log.record(recs)
	return err
}

type notifyingLeaseStore struct {
	leaseStore
	n store.Notifier
}

// Subscribe passes the store's notifications on.
func (s notifyingLeaseStore) Subscribe(ctx context.Context) (<-chan struct{}, error) {
	return s.n.Subscribe(ctx)
}
