package webhooktest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/webhook"
)

// ChaosConfig sizes a chaos run. Zero fields take the full size of the
// reliability proof: 20 webhooks over 5 tables, 20,000 changes over 2,000
// record keys, 8 publishers, 30% of requests failing.
type ChaosConfig struct {
	// Seed decides the changes and the receiver's faults.
	Seed       uint64
	Tables     int     // 5, with four webhooks each
	Changes    int     // 20,000
	Keys       int     // 2,000
	Publishers int     // 8
	FaultRate  float64 // 0.3
	Workers    int     // 64
	// AttemptTimeout bounds each request; 0: 300ms. Every hang and slow
	// body costs a worker this long.
	AttemptTimeout time.Duration
	// Timeout bounds the whole run; 0: 3 minutes.
	Timeout time.Duration
}

func (c *ChaosConfig) fill() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Tables, 5)
	def(&c.Changes, 20000)
	def(&c.Keys, 2000)
	def(&c.Publishers, 8)
	def(&c.Workers, 64)
	if c.FaultRate == 0 {
		c.FaultRate = 0.3
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 300 * time.Millisecond
	}
	if c.Timeout == 0 {
		c.Timeout = 3 * time.Minute
	}
}

// ChaosReport is what a chaos run found. Failures lists every promise it
// saw broken; a sound run has none.
type ChaosReport struct {
	Changes  int // published
	Webhooks int // receiving webhooks (traps not counted)
	Expected int // (webhook, change) pairs that match
	// Delivered counts expected pairs the receiver processed at least once.
	Delivered int
	// Lost counts expected pairs never processed.
	Lost int
	// Unexpected counts records processed that no webhook should have got,
	// and requests to paths no webhook has.
	Unexpected int
	// OutOfOrder counts first arrivals of a record that came after a later
	// change of the same key to the same webhook.
	OutOfOrder int
	// BadSignatures counts processed requests whose signature failed.
	BadSignatures int
	// Duplicates counts record arrivals beyond the first; DuplicateCauses
	// says, for each, why the sender sent it again ("unexplained" when no
	// cause was found: a broken promise).
	Duplicates      int
	DuplicateCauses map[string]int
	// Evidence describes, for up to maxEvidence records, the duplicates
	// that only a lost outcome explains, or nothing does: every arrival of
	// the record at the receiver and every attempt the sender logged, so a
	// failed run says what happened.
	Evidence []string
	// Dead, Stuck: deliveries of receiving webhooks given up, or still
	// pending, when the run ended. StoreMismatch counts deliveries the
	// store holds that the run did not expect, or expected ones it lacks
	// or does not call delivered.
	Dead, Stuck, StoreMismatch int
	// TrapDeliveries and TrapAttempts count the deliveries to the webhooks
	// aimed at the trap, an address the guard refuses, and their attempts;
	// TrapConnections counts the connections the trap accepted, which must
	// be none. Traps names the trap webhooks set.
	TrapDeliveries, TrapAttempts, TrapConnections int
	Traps                                         []string
	// BreakerOpenings counts the times a receiving webhook's circuit
	// breaker opened; -1 when not known (a run across processes).
	BreakerOpenings int
	Requests        int64          // requests the receiver got
	Faults          map[string]int // requests per fault
	// Elapsed is the whole run; Publishing the time Publish took for every
	// change, deliveries going on meanwhile.
	Elapsed, Publishing time.Duration
}

// Duplicate causes.
const (
	// The receiver processed a slow body; the sender gave up on it.
	CauseSlowBody = "slow body cut by the sender's timeout"
	// The receiver answered, too late: the sender's attempt log holds an
	// attempt without an answer for it.
	CauseLate = "answer later than the sender's timeout"
	// The request was in flight when its sending process was killed.
	CauseKill = "in flight at a kill"
	// The sender's lease ran out before it recorded the outcome: the store
	// refused the outcome, the attempt log lacks the attempt, and the
	// message was claimed again once the lease had ended.
	CauseLease = "lease ran out before the outcome was recorded"
	// The receiver got more requests for the record than the sender's
	// attempt log holds: an outcome was lost before it was written (its
	// process or database connection died) without another cause above.
	CauseUnrecorded = "outcome never recorded"
	// None of the above: a broken promise.
	CauseUnknown = "unexplained"
)

// String gives every figure of the report on one line, for a test log,
// then the evidence of doubtful duplicates, one per line.
func (r ChaosReport) String() string {
	causes := make([]string, 0, len(r.DuplicateCauses))
	for c, n := range r.DuplicateCauses {
		if n > 0 {
			causes = append(causes, fmt.Sprintf("%s: %d", c, n))
		}
	}
	sort.Strings(causes)
	breakers := strconv.Itoa(r.BreakerOpenings)
	if r.BreakerOpenings < 0 {
		breakers = "?"
	}
	var ev strings.Builder
	for _, e := range r.Evidence {
		ev.WriteString("\n  duplicate: " + e)
	}
	return fmt.Sprintf("changes=%d webhooks=%d expected=%d delivered=%d lost=%d unexpected=%d out_of_order=%d bad_signatures=%d "+
		"duplicates=%d (%s) dead=%d stuck=%d store_mismatch=%d traps=%v trap_deliveries=%d trap_attempts=%d trap_connections=%d "+
		"breaker_openings=%s requests=%d faults=%v publishing=%v elapsed=%v",
		r.Changes, r.Webhooks, r.Expected, r.Delivered, r.Lost, r.Unexpected, r.OutOfOrder, r.BadSignatures,
		r.Duplicates, strings.Join(causes, ", "), r.Dead, r.Stuck, r.StoreMismatch, r.Traps, r.TrapDeliveries, r.TrapAttempts,
		r.TrapConnections, breakers, r.Requests, r.Faults, r.Publishing.Round(time.Millisecond), r.Elapsed.Round(time.Millisecond)) + ev.String()
}

// Failures lists the promises the run saw broken: none lost, none out of
// order, none unexpected, every request signed, no duplicate without a
// cause, nothing dead or stuck, the store in agreement, and no connection
// to a refused address. It is empty for a sound run.
func (r ChaosReport) Failures() []string {
	var out []string
	check := func(bad bool, format string, a ...any) {
		if bad {
			out = append(out, fmt.Sprintf(format, a...))
		}
	}
	check(r.Expected == 0, "no change matched any webhook: the run proves nothing")
	check(r.Delivered != r.Expected, "%d of %d expected records were processed", r.Delivered, r.Expected)
	check(r.Lost > 0, "%d lost", r.Lost)
	check(r.Unexpected > 0, "%d sent where they should not go", r.Unexpected)
	check(r.OutOfOrder > 0, "%d out of order", r.OutOfOrder)
	check(r.BadSignatures > 0, "%d badly signed", r.BadSignatures)
	check(r.DuplicateCauses[CauseUnknown] > 0, "%d duplicates without a cause", r.DuplicateCauses[CauseUnknown])
	check(r.Dead > 0, "%d dead", r.Dead)
	check(r.Stuck > 0, "%d stuck", r.Stuck)
	check(r.StoreMismatch > 0, "%d deliveries in the store differ from what was expected", r.StoreMismatch)
	check(r.TrapConnections > 0, "%d connections reached addresses the guard refuses", r.TrapConnections)
	check(len(r.Traps) > 0 && r.TrapDeliveries == 0, "the trap webhooks got no deliveries: the guard was not tested")
	check(r.TrapDeliveries > 0 && r.TrapAttempts == 0, "the trap webhooks were never attempted: the guard was not tested")
	return out
}

// chaosWebhook is one webhook of a chaos run with the rule it should
// match, written out again here so the run checks the dispatcher's
// matching rather than trusting it.
type chaosWebhook struct {
	def  webhook.Webhook
	path string // the URL's path
	trap string // for a webhook aimed at the trap: its host name
	// match is the rule again; nil for a trap, which expects nothing.
	match func(op webhook.Op, old, new map[string]any) bool
}

const (
	chaosHost     = "receiver.chaos.test"
	trapHost      = "trap.chaos.test"  // resolves to the trap
	mixedHost     = "mixed.chaos.test" // resolves to the receiver and the trap
	chaosIDPrefix = "chaos-"
)

func chaosWebhooks(tables int) []chaosWebhook {
	all := []webhook.Op{webhook.Insert, webhook.Update, webhook.Delete}
	grade := func(m map[string]any) int { g, _ := m["grade"].(int); return g }
	var out []chaosWebhook
	for i := range tables {
		table := fmt.Sprintf("table%d", i)
		for _, h := range []chaosWebhook{
			{def: webhook.Webhook{Name: table + " all", Table: table, Ops: all},
				match: func(webhook.Op, map[string]any, map[string]any) bool { return true }},
			{def: webhook.Webhook{Name: table + " status", Table: table, Ops: []webhook.Op{webhook.Update},
				When: condition.Rule{Match: condition.AnySelected, Fields: []string{"status"}}},
				match: func(op webhook.Op, old, new map[string]any) bool {
					return op == webhook.Update && old["status"] != new["status"]
				}},
			{def: webhook.Webhook{Name: table + " senior", Table: table, Ops: []webhook.Op{webhook.Insert, webhook.Update},
				When: condition.Rule{Expr: "new.grade > 5"}},
				match: func(op webhook.Op, _, new map[string]any) bool { return op != webhook.Delete && grade(new) > 5 }},
			{def: webhook.Webhook{Name: table + " batch", Table: table, Ops: all, MaxBatch: 5},
				match: func(webhook.Op, map[string]any, map[string]any) bool { return true }},
		} {
			kind := h.def.Name[len(table)+1:]
			h.def.ID = chaosIDPrefix + table + "-" + kind
			h.path = "/" + table + "/" + kind
			out = append(out, h)
		}
	}
	// Two webhooks aimed at the trap, an address the guard refuses: one by
	// a name that resolves to it, one by a name that resolves to both the
	// receiver and the trap (a dialer that tried the addresses in turn
	// would reach the receiver). They take the inserts of one key in ten,
	// so their refused attempts do not crowd out the real work. Nothing is
	// expected of them at the receiver.
	for _, host := range []string{trapHost, mixedHost} {
		name := strings.TrimSuffix(host, ".chaos.test")
		out = append(out, chaosWebhook{
			def: webhook.Webhook{ID: chaosIDPrefix + "trap-" + name, Name: "trap: " + host,
				Table: "table0", Ops: []webhook.Op{webhook.Insert}, When: condition.Rule{Expr: `key endsWith "0"`}},
			trap: host, path: "/trap-" + name,
		})
	}
	return out
}

// ChaosWorkload is the work of a chaos run, decided by its ChaosConfig
// alone: the webhooks (with fixed ids and secrets), every change (with
// fixed ids) and which webhooks each must reach. So every process of a
// run that restarts its dispatcher, or kills it, registers the same
// webhooks and publishes the same changes, and publishing again creates
// nothing new.
type ChaosWorkload struct {
	cfg      ChaosConfig
	hooks    []chaosWebhook
	byID     map[string]*chaosWebhook
	changes  [][]webhook.Change   // per publisher, in the order it publishes them
	expected map[chaosRecord]bool // for the receiving webhooks; traps expect nothing
	seq      map[string]float64   // event id -> its sequence number within its key
}

// chaosRecord is one change on its way to one webhook.
type chaosRecord struct{ webhook, event string }

// NewChaosWorkload derives a run's work from cfg.
func NewChaosWorkload(cfg ChaosConfig) *ChaosWorkload {
	cfg.fill()
	w := &ChaosWorkload{cfg: cfg, hooks: chaosWebhooks(cfg.Tables), byID: map[string]*chaosWebhook{},
		expected: map[chaosRecord]bool{}, seq: map[string]float64{}}
	for i := range w.hooks {
		h := &w.hooks[i]
		sum := sha256.Sum256(fmt.Appendf(nil, "herald chaos secret %d %s", cfg.Seed, h.def.ID))
		h.def.Secret = "whsec_" + base64.StdEncoding.EncodeToString(sum[:])
		w.byID[h.def.ID] = h
	}
	// Each publisher owns the keys k ≡ p (mod Publishers), so one
	// goroutine publishes each key's changes, in order; "seq" counts them.
	statuses := []string{"Active", "Leave", "Terminated"}
	w.changes = make([][]webhook.Change, cfg.Publishers)
	for p := range cfg.Publishers {
		rng := rand.New(rand.NewPCG(cfg.Seed+uint64(p), 7))
		state := map[int]map[string]any{}
		seq := map[int]int{}
		for i := range cfg.Changes / cfg.Publishers {
			k := p + cfg.Publishers*rng.IntN(max(1, cfg.Keys/cfg.Publishers))
			table := fmt.Sprintf("table%d", k%cfg.Tables)
			seq[k]++
			old := state[k]
			next := map[string]any{"seq": seq[k], "status": statuses[rng.IntN(len(statuses))], "grade": rng.IntN(10)}
			op := webhook.Update
			switch {
			case old == nil:
				op = webhook.Insert
			case rng.IntN(20) == 0:
				op, next = webhook.Delete, nil
			}
			c := webhook.Change{ID: fmt.Sprintf("%sp%d-%05d", chaosIDPrefix, p, i), Table: table, Op: op,
				Key: fmt.Sprintf("K%d", k), Old: old, New: next}
			if op == webhook.Delete {
				c.Old = maps.Clone(old)
				c.Old["seq"] = seq[k] // the record's order, where a receiver of a delete can read it
			}
			w.changes[p] = append(w.changes[p], c)
			w.seq[c.ID] = float64(seq[k])
			for _, h := range w.hooks {
				if h.trap == "" && h.def.Table == table && slices.Contains(h.def.Ops, op) && h.match(op, old, next) {
					w.expected[chaosRecord{h.def.ID, c.ID}] = true
				}
			}
			state[k] = next
		}
	}
	return w
}

// Config returns the run's configuration with its defaults filled.
func (w *ChaosWorkload) Config() ChaosConfig { return w.cfg }

// Secrets returns the webhooks' signing secrets, for the receiver.
func (w *ChaosWorkload) Secrets() []string {
	out := make([]string, 0, len(w.hooks))
	for _, h := range w.hooks {
		out = append(out, h.def.Secret)
	}
	return out
}

// DispatcherConfig returns a dispatcher configuration for the run on st,
// sending to the receiver and trap tg names: the SSRF guard on, allowing
// only the receiver's address and port; fast retries that never give up
// during a run; breakers that probe again after a moment; and the run's
// attempt timeout. The caller may change Workers, LeaseDuration and the
// like.
func (w *ChaosWorkload) DispatcherConfig(st store.Store, tg ChaosTargets) webhook.Config {
	hosts := chaosHosts{chaosHost: {tg.Receiver.Addr()}}
	if tg.Trap.IsValid() {
		hosts[trapHost] = []netip.Addr{tg.Trap.Addr()}
		hosts[mixedHost] = []netip.Addr{tg.Receiver.Addr(), tg.Trap.Addr()}
	}
	return webhook.Config{
		Store:           st,
		Workers:         w.cfg.Workers,
		AllowedNetworks: []netip.Prefix{netip.PrefixFrom(tg.Receiver.Addr(), tg.Receiver.Addr().BitLen())},
		AllowedPorts:    []int{int(tg.Receiver.Port())},
		Resolver:        hosts,
		AttemptTimeout:  w.cfg.AttemptTimeout,
		LeaseDuration:   max(5*time.Second, 2*w.cfg.AttemptTimeout),
		PollInterval:    50 * time.Millisecond,
		Retry: webhook.RetryPolicy{MaxAttempts: 1000, InitialInterval: 5 * time.Millisecond,
			MaxInterval: 100 * time.Millisecond, Multiplier: 2, MaxRetryAfter: 20 * time.Millisecond},
		// A streak of faults opens a webhook's breaker now and then; it
		// probes again soon, so the run goes through the breaker's states
		// rather than waiting out a production cool-down.
		Breaker: webhook.BreakerPolicy{Cooldown: 200 * time.Millisecond, MaxCooldown: time.Second},
	}
}

// chaosHosts resolves the run's host names without DNS.
type chaosHosts map[string][]netip.Addr

// LookupNetIP answers from the table.
func (h chaosHosts) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := h[host]; ok {
		return slices.Clone(a), nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// Register registers every webhook of the run that d's store does not hold
// yet, aimed at the receiver and the trap tg names. Without a trap, the
// webhooks aimed at it are left out.
func (w *ChaosWorkload) Register(ctx context.Context, d *webhook.Dispatcher, tg ChaosTargets) error {
	for _, h := range w.hooks {
		def := h.def
		host := chaosHost
		if h.trap != "" {
			if !tg.Trap.IsValid() {
				continue
			}
			host = h.trap
		}
		def.URL = fmt.Sprintf("http://%s:%d%s", host, tg.Receiver.Port(), h.path)
		if _, err := d.Webhook(ctx, def.ID); err == nil {
			continue
		} else if !errors.Is(err, webhook.ErrNotFound) {
			return err
		}
		if _, err := d.Register(ctx, def); err != nil {
			return fmt.Errorf("registering %s: %w", def.ID, err)
		}
	}
	return nil
}

// Publish publishes every change of the run through d from Publishers
// goroutines, each key's changes in order. Changes published before
// create nothing, so a restarted process may publish everything again, as
// an outbox relay does after a crash. A publisher stops at its first
// error, and the others soon after; the errors are returned joined.
func (w *ChaosWorkload) Publish(ctx context.Context, d *webhook.Dispatcher) error {
	return w.PublishWith(ctx, 1, func(ctx context.Context, c webhook.Change) error {
		_, err := d.Publish(ctx, c)
		return err
	})
}

// PublishWith publishes the first share (above 0, at most 1) of each
// publisher's changes, so a run can hand out its work in parts, through a
// function of the caller's, which may retry a change until it is stored
// (as an outbox relay does while the database is away): each publisher
// waits for it before its next change.
func (w *ChaosWorkload) PublishWith(ctx context.Context, share float64, publish func(context.Context, webhook.Change) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(w.changes))
	for p, cs := range w.changes {
		cs = cs[:int(math.Ceil(min(1, share)*float64(len(cs))))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range cs {
				if err := publish(ctx, c); err != nil {
					errs[p] = fmt.Errorf("publishing %s: %w", c.ID, err)
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Tried reports whether every single-record message of the run reached
// the receiver at least once, so faults have had their chance at every
// first attempt.
func (w *ChaosWorkload) Tried(rcv *ChaosReceiver) bool {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for r := range w.expected {
		h := w.byID[r.webhook]
		if h.def.MaxBatch <= 1 && rcv.seen[h.path+" "+r.event] == 0 {
			return false
		}
	}
	return true
}

// Settled reports whether no delivery of a receiving webhook is pending.
func (w *ChaosWorkload) Settled(ctx context.Context, st store.Store) (bool, error) {
	const page = 64
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{Status: store.Pending, Limit: page})
	if err != nil {
		return false, err
	}
	for _, d := range ds {
		if h := w.byID[d.WebhookID]; h == nil || h.trap == "" {
			return false, nil
		}
	}
	if len(ds) < page {
		return true, nil
	}
	for _, h := range w.hooks { // a page of trap deliveries: ask each webhook
		if h.trap != "" {
			continue
		}
		ds, err := st.Deliveries(ctx, store.DeliveryFilter{Status: store.Pending, WebhookID: h.def.ID, Limit: 1})
		if err != nil || len(ds) > 0 {
			return false, err
		}
	}
	return true, nil
}

// ChaosEvidence is what a run knows, beyond what the receiver recorded
// and what the store holds, of why a request was sent again.
type ChaosEvidence struct {
	// InFlight, when not nil, tells whether a processed arrival was in
	// flight when its sender was killed (its outcome died with the
	// process).
	InFlight func(a ChaosArrival, webhookID, eventID string) bool
	// Leases, when not nil, holds the senders' leases and the outcomes
	// the store refused because a lease had run out.
	Leases *LeaseLog
	// Killed holds the epochs of the senders that were killed: a lease
	// such a sender never let go was in its hands when it died.
	Killed map[int]bool
}

// Check compares what the receiver got, and what the store holds, with
// what the run published, and explains each duplicate with the evidence
// the run gathered.
func (w *ChaosWorkload) Check(ctx context.Context, st store.Store, rcv *ChaosReceiver, ev ChaosEvidence) (ChaosReport, error) {
	rep := ChaosReport{Changes: len(w.seq), Expected: len(w.expected), DuplicateCauses: map[string]int{},
		Requests: rcv.Total(), Faults: rcv.Faults(), TrapConnections: rcv.TrapConnections()}
	for _, h := range w.hooks {
		if h.trap == "" {
			rep.Webhooks++
		}
	}
	byPath := map[string]*chaosWebhook{}
	for i := range w.hooks {
		byPath[w.hooks[i].path] = &w.hooks[i]
	}
	receipts := map[chaosRecord][]*ChaosArrival{}
	arrivalsOf := map[chaosRecord][]*ChaosArrival{} // every arrival of the record, processed or not
	lastSeq := map[string]float64{}                 // webhook and key -> seq of the latest first arrival
	arrivals := rcv.Arrivals()
	for i := range arrivals {
		a := &arrivals[i]
		h := byPath[a.URL]
		if h == nil || h.trap != "" {
			rep.Unexpected++ // a trap webhook's request reached the receiver
			continue
		}
		recs, err := chaosRecords(h.def.MaxBatch > 1, a.Body)
		if err != nil {
			if a.Processed {
				return rep, fmt.Errorf("request %d to %s: %w", i, a.URL, err)
			}
			continue
		}
		if a.Processed && a.VerifyErr != nil {
			rep.BadSignatures++
		}
		for _, rec := range recs {
			r := chaosRecord{h.def.ID, rec.EventID}
			arrivalsOf[r] = append(arrivalsOf[r], a)
			if !a.Processed {
				continue
			}
			if len(receipts[r]) == 0 {
				if !w.expected[r] {
					rep.Unexpected++
				}
				k := h.def.ID + " " + rec.Key
				if s := w.seq[rec.EventID]; s <= lastSeq[k] {
					rep.OutOfOrder++
				} else {
					lastSeq[k] = s
				}
			}
			receipts[r] = append(receipts[r], a)
		}
	}
	// Every processed arrival of a record but one, its delivery, is a
	// duplicate: find why the sender sent each again. The delivery need
	// not be the last to arrive: a request that answered after the
	// sender's timeout may arrive after its retry.
	for r, rs := range receipts {
		rep.Duplicates += len(rs) - 1
		var doubtful []*ChaosArrival
		inFlight := map[*ChaosArrival]bool{}
		for _, a := range rs {
			switch {
			case a.Cut:
				rep.DuplicateCauses[CauseSlowBody]++
			default:
				doubtful = append(doubtful, a)
				inFlight[a] = ev.InFlight != nil && ev.InFlight(*a, r.webhook, r.event)
			}
		}
		if len(doubtful) == 0 {
			// Every arrival was cut short, yet the record was delivered:
			// the last is counted as a delivery nothing explains.
			rep.DuplicateCauses[CauseSlowBody]--
			rep.DuplicateCauses[CauseUnknown]++
			if len(rep.Evidence) < maxEvidence {
				rep.Evidence = append(rep.Evidence, evidence(r, arrivalsOf[r], nil, ev.Leases))
			}
			continue
		}
		if len(doubtful) == 1 {
			continue // the delivery
		}
		heldAtKill(doubtful, inFlight, r.webhook, ev)
		// The receiver answered in time as far as it knows, yet the sender
		// sent again: its attempt log must show why.
		atts, err := w.attempts(ctx, st, r)
		if err != nil {
			return rep, err
		}
		causes := explain(doubtful, inFlight, arrivalsOf[r], atts, ev.Leases.refused(r.webhook, arrivalsOf[r], atts))
		for c, n := range causes {
			rep.DuplicateCauses[c] += n
		}
		if causes[CauseUnrecorded]+causes[CauseUnknown] > 0 && len(rep.Evidence) < maxEvidence {
			rep.Evidence = append(rep.Evidence, evidence(r, arrivalsOf[r], atts, ev.Leases))
		}
	}
	for r := range w.expected {
		if len(receipts[r]) > 0 {
			rep.Delivered++
		} else {
			rep.Lost++
		}
	}
	return rep, w.checkStore(ctx, st, &rep)
}

// heldAtKill marks in flight at a kill the doubtful arrivals that a killed
// sender sent under a lease it still held when it died: one arrival of the
// sender's epoch for each such lease, sent no earlier than the second the
// lease began.
func heldAtKill(doubtful []*ChaosArrival, inFlight map[*ChaosArrival]bool, webhookID string, ev ChaosEvidence) {
	if ev.Leases == nil || len(ev.Killed) == 0 {
		return
	}
	used := map[string]bool{}
	held := map[string][]leaseClaim{}
	for _, a := range doubtful {
		if inFlight[a] {
			continue
		}
		id := a.ID()
		if _, ok := held[id]; !ok {
			held[id] = ev.Leases.heldAtKill(webhookID, id, ev.Killed)
		}
		ts := sentBy(a).ts
		for _, c := range held[id] {
			if !used[c.Lease] && c.Sender == a.Epoch && c.At.Unix() <= ts {
				used[c.Lease], inFlight[a] = true, true
				break
			}
		}
	}
}

// attempts reads the sender's log of r's attempts.
func (w *ChaosWorkload) attempts(ctx context.Context, st store.Store, r chaosRecord) ([]store.Attempt, error) {
	ds, err := st.Deliveries(ctx, store.DeliveryFilter{WebhookID: r.webhook, EventID: r.event})
	if err != nil || len(ds) != 1 {
		return nil, err
	}
	return st.Attempts(ctx, ds[0].ID)
}

// sent names the requests of one attempt: the webhook-id and the
// webhook-timestamp, which is the second the attempt began. The receiver
// sees both on every request; the attempt log keeps the message id and
// the time the attempt began.
type sent struct {
	id string
	ts int64
}

func sentBy(a *ChaosArrival) sent {
	ts, _ := strconv.ParseInt(a.Header.Get("Webhook-Timestamp"), 10, 64)
	return sent{a.ID(), ts}
}

// explain finds why all but one of a record's doubtful arrivals
// (processed, not cut) were sent again; the one left is the delivery.
// It judges from every arrival of the record, its attempt log, which
// arrivals were in flight at a kill, and the attempts whose outcome the
// store refused for a lost lease. Arrivals and attempts are compared
// within each (webhook-id, second) in which attempts began, so an attempt
// logged in one second never explains a request of another. A duplicate
// is explained, in this order, as
//
//   - late: the receiver answered 2xx, and the log holds, for that
//     second, an attempt without an answer beyond the requests the
//     receiver never answered, and fewer delivered attempts than 2xx
//     answers. A slow body the receiver finished counts as a 2xx answer,
//     and an attempt that logged a 2xx status but failed reading the
//     body as one without an answer: the receiver's last bytes can leave
//     after the sender gave up, on a slow machine;
//   - in flight at a kill: the log lacks an attempt of that second, and
//     the request was in flight when its sender was killed;
//   - lease ran out: the log lacks an attempt of that second, and the
//     store refused the outcome of one for a lost lease;
//   - outcome never recorded: the log lacks an attempt of that second;
//   - otherwise unexplained, as when the log shows the request delivered.
func explain(doubtful []*ChaosArrival, inFlight map[*ChaosArrival]bool, arrivals []*ChaosArrival, atts []store.Attempt, leaseLost []sent) map[string]int {
	type group struct {
		doubtful, inFlight, requests, ok, unanswered int // at the receiver
		logged, delivered, noAnswer, lease           int // at the sender
	}
	groups := map[sent]*group{}
	at := func(k sent) *group {
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
		}
		return g
	}
	for _, a := range doubtful {
		g := at(sentBy(a))
		g.doubtful++
		if inFlight[a] {
			g.inFlight++
		}
	}
	for _, a := range arrivals {
		g := at(sentBy(a))
		g.requests++
		switch {
		case a.Fault == FaultNone, a.Fault == FaultSlowBody && !a.Cut:
			g.ok++
		case a.Fault == FaultHang, a.Fault == FaultReset, a.Fault == FaultBadStatus:
			g.unanswered++
		}
	}
	for _, a := range atts {
		g := at(sent{a.MessageID, a.At.Unix()})
		g.logged++
		ok := a.StatusCode >= 200 && a.StatusCode < 300
		switch {
		case ok && a.Error == "":
			g.delivered++
		case (a.StatusCode == 0 || ok) && a.Error != "":
			g.noAnswer++
		}
	}
	for _, k := range leaseLost {
		at(k).lease++
	}
	// One of them is the delivery: the 2xx answer of an attempt logged as
	// delivered (taken for one in flight at a kill first: its outcome was
	// recorded after all), or failing that (a log that lost it) any.
	var exempt *group
	for _, g := range groups {
		if g.doubtful > 0 && g.delivered > 0 && g.ok > 0 {
			exempt = g
			break
		}
	}
	if exempt != nil {
		exempt.delivered--
		exempt.ok--
	} else {
		exempt = at(sentBy(doubtful[len(doubtful)-1]))
	}
	exempt.doubtful--
	if exempt.inFlight > 0 {
		exempt.inFlight--
	}
	causes := map[string]int{}
	for _, g := range groups {
		if g.doubtful == 0 {
			continue
		}
		unknown := g.doubtful
		// 2xx answers the sender did not take for a delivery.
		missed := max(0, g.ok-g.delivered)
		late := min(unknown, missed, max(0, g.noAnswer-g.unanswered))
		unknown -= late
		missed -= late
		// Requests whose attempt the log lacks: each explains one 2xx
		// answer at most, by one cause.
		unrecorded := max(0, g.requests-g.logged)
		kill := min(unknown, missed, unrecorded, g.inFlight)
		unknown -= kill
		missed -= kill
		unrecorded -= kill
		lease := min(unknown, missed, unrecorded, g.lease)
		unknown -= lease
		missed -= lease
		unrecorded -= lease
		never := min(unknown, missed, unrecorded)
		unknown -= never
		causes[CauseLate] += late
		causes[CauseKill] += kill
		causes[CauseLease] += lease
		causes[CauseUnrecorded] += never
		causes[CauseUnknown] += unknown
	}
	return causes
}

// maxEvidence bounds ChaosReport.Evidence.
const maxEvidence = 10

// evidence describes a record's arrivals and logged attempts on one line.
func evidence(r chaosRecord, arrivals []*ChaosArrival, atts []store.Attempt, leases *LeaseLog) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: arrivals", r.webhook, r.event)
	for _, a := range arrivals {
		fmt.Fprintf(&b, " [epoch %d, %s #%d of %s, %s, processed %t, cut %t, at %s, from %s]", a.Epoch, a.Fault, a.N,
			a.ID(), a.Header.Get("Webhook-Timestamp"), a.Processed, a.Cut, a.At.Format("15:04:05.000"), a.Remote)
	}
	b.WriteString("; attempts")
	for _, a := range atts {
		fmt.Fprintf(&b, " [#%d of %s at %s, status %d, %q]", a.Number, a.MessageID, a.At.Format("15:04:05.000"), a.StatusCode, a.Error)
	}
	leases.describe(&b, r.webhook, messageIDs(arrivals))
	return b.String()
}

// messageIDs returns the distinct webhook-ids of arrivals.
func messageIDs(arrivals []*ChaosArrival) []string {
	var ids []string
	for _, a := range arrivals {
		if id := a.ID(); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// checkStore compares the store's deliveries with the expected records.
func (w *ChaosWorkload) checkStore(ctx context.Context, st store.Store, rep *ChaosReport) error {
	for _, h := range w.hooks {
		var ds []store.Delivery
		f := store.DeliveryFilter{WebhookID: h.def.ID, Limit: 5000}
		for {
			page, err := st.Deliveries(ctx, f)
			if err != nil {
				return err
			}
			ds = append(ds, page...)
			if len(page) < f.Limit {
				break
			}
			f.After = page[len(page)-1].Seq
		}
		if h.trap != "" {
			if len(ds) > 0 || w.cfg.Changes > 0 {
				rep.Traps = append(rep.Traps, h.trap)
			}
			rep.TrapDeliveries += len(ds)
			for _, d := range ds {
				rep.TrapAttempts += d.Attempts
			}
			continue
		}
		seen := map[string]bool{}
		for _, d := range ds {
			switch {
			case !w.expected[chaosRecord{h.def.ID, d.EventID}] || seen[d.EventID]:
				rep.StoreMismatch++
			case d.Status == store.Dead:
				rep.Dead++
			case d.Status == store.Pending:
				rep.Stuck++
			case d.Status != store.Delivered:
				rep.StoreMismatch++
			}
			seen[d.EventID] = true
		}
		for r := range w.expected {
			if r.webhook == h.def.ID && !seen[r.event] {
				rep.StoreMismatch++
			}
		}
	}
	return nil
}

// chaosRecord is what the run reads of one record in a request.
type chaosBody struct {
	EventID string `json:"event_id"`
	Key     string `json:"key"`
}

func chaosRecords(batch bool, body []byte) ([]chaosBody, error) {
	if batch {
		var env struct {
			Data []chaosBody `json:"data"`
		}
		err := json.Unmarshal(body, &env)
		return env.Data, err
	}
	var env struct {
		ID   string    `json:"id"`
		Data chaosBody `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	env.Data.EventID = env.ID
	return []chaosBody{env.Data}, nil
}

// RunChaos publishes changes from several goroutines to a dispatcher on st
// while a chaos receiver misbehaves, then calms the receiver, waits until
// nothing is pending, and reports what arrived and what the store holds.
// It fails the test only when the run cannot complete; the caller asserts
// on the report (its Failures above all).
func RunChaos(t testing.TB, st store.Store, cfg ChaosConfig) ChaosReport {
	t.Helper()
	w := NewChaosWorkload(cfg)
	cfg = w.Config()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	start := time.Now()

	rcv := NewChaosReceiver(t, cfg.Seed, cfg.FaultRate)
	for _, s := range w.Secrets() {
		rcv.AddSecret(s)
	}
	tg := rcv.Targets()
	leases := NewLeaseLog(nil, 0)
	dc := w.DispatcherConfig(leases.Store(st), tg)
	var openings atomic.Int64
	dc.Observer = webhook.ObserverFunc(func(e webhook.Event) {
		if h := w.byID[e.WebhookID]; e.Kind == webhook.EventBreakerOpened && h != nil && h.trap == "" {
			openings.Add(1)
		}
	})
	d, err := webhook.New(dc)
	require.NoError(t, err)
	require.NoError(t, w.Register(ctx, d, tg))
	require.NoError(t, d.Start(ctx))
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		require.NoError(t, d.Shutdown(sctx))
	}
	defer stop()

	require.NoError(t, w.Publish(ctx, d))
	published := time.Since(start)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// Keep misbehaving until every message has been tried once, so the
	// faults hit first attempts, not only retries.
	for !w.Tried(rcv) {
		select {
		case <-ctx.Done():
			t.Fatalf("the receiver got %d requests, not every message, before the run timed out", rcv.Total())
		case <-tick.C:
		}
	}
	rcv.Calm()
	for {
		ok, err := w.Settled(ctx, st)
		require.NoError(t, err)
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			rep, _ := w.Check(context.Background(), st, rcv, ChaosEvidence{Leases: leases})
			t.Fatalf("deliveries still pending when the chaos run timed out: %v", rep)
		case <-tick.C:
		}
	}
	stop()
	rep, err := w.Check(ctx, st, rcv, ChaosEvidence{Leases: leases})
	require.NoError(t, err)
	rep.Publishing, rep.Elapsed = published, time.Since(start)
	rep.BreakerOpenings = int(openings.Load())
	return rep
}
