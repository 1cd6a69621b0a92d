package sqlite_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// twin is one message as the memory store and the SQLite store handed it
// out.
type twin struct{ ref, got store.Message }

// members names a message by its deliveries, which both stores share.
func members(m store.Message) string {
	ids := make([]string, len(m.Deliveries))
	for i, d := range m.Deliveries {
		ids[i] = d.ID
	}
	return strings.Join(ids, ",")
}

func (l *lockstep) names(ms map[string]store.Message) []string {
	var out []string
	for _, k := range keys(ms) {
		var ns []string
		for _, id := range strings.Split(k, ",") {
			ns = append(ns, l.name(id))
		}
		out = append(out, strings.Join(ns, "+"))
	}
	return out
}

// lockstep drives the memory store (the reference) and a SQLite store
// through the same operations and fails the test at the first difference
// in what they hand out, report or hold.
type lockstep struct {
	t    *testing.T
	ref  *memory.Store
	got  store.Store
	rng  *rand.Rand
	now  time.Time
	held []twin
	log  []string
	key  map[string]string // delivery id -> record key
}

// name is a delivery's short name in the log: its key and the end of its
// id.
func (l *lockstep) name(id string) string {
	if len(id) < 4 {
		return id
	}
	return l.key[id] + "/" + id[len(id)-4:]
}

func (l *lockstep) step(format string, args ...any) {
	l.log = append(l.log, fmt.Sprintf(format, args...))
}

func (l *lockstep) fatal(format string, args ...any) {
	l.t.Helper()
	l.t.Fatalf("%s\nafter:\n  %s", fmt.Sprintf(format, args...), strings.Join(l.log, "\n  "))
}

func (l *lockstep) publish(key string) {
	ctx := l.t.Context()
	e := store.Event{ID: uuid.Must(uuid.NewV7()).String(), Table: "employee", Op: "UPDATE", Key: key, Time: l.now,
		Payload: json.RawMessage(`{"key":"` + key + `"}`)}
	d := store.Delivery{ID: uuid.Must(uuid.NewV7()).String(), WebhookID: "wh", NextAttempt: l.now, CreatedAt: l.now}
	l.key[d.ID] = key
	l.step("publish %s", l.name(d.ID))
	for _, s := range []store.Store{l.ref, l.got} {
		_, err := s.Enqueue(ctx, e, []store.Delivery{d})
		require.NoError(l.t, err)
	}
}

func (l *lockstep) claim() {
	ctx := l.t.Context()
	// Leases outlast the run: an expired lease counts as held in the memory
	// store until its next claim notices, and as gone in SQLite at once.
	c := store.Claim{Now: l.now, Lease: time.Hour, Limit: 50}
	ref, err := l.ref.Claim(ctx, c)
	require.NoError(l.t, err)
	got, err := l.got.Claim(ctx, c)
	require.NoError(l.t, err)
	byMembers, refMembers := map[string]store.Message{}, map[string]store.Message{}
	for _, m := range got {
		byMembers[members(m)] = m
	}
	for _, m := range ref {
		refMembers[members(m)] = m
	}
	l.step("claim %v", l.names(refMembers))
	if len(ref) != len(got) {
		l.fatal("claim: the reference handed out %v, SQLite %v", l.names(refMembers), l.names(byMembers))
	}
	for _, r := range ref {
		g, ok := byMembers[members(r)]
		if !ok {
			l.fatal("claim: the reference handed out %v, SQLite %v", l.names(refMembers), l.names(byMembers))
		}
		if r.ID != g.ID || r.Attempt != g.Attempt {
			l.fatal("claim: message %s: reference id %s attempt %d, SQLite id %s attempt %d", members(r), r.ID, r.Attempt, g.ID, g.Attempt)
		}
		l.held = append(l.held, twin{r, g})
	}
}

func keys(m map[string]store.Message) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (l *lockstep) ack() {
	ctx := l.t.Context()
	var keep []twin
	for _, h := range l.held {
		if l.rng.Float64() < 0.4 {
			keep = append(keep, h)
			continue
		}
		r := store.Result{MessageID: h.ref.ID, Now: l.now}
		a := &store.Attempt{MessageID: h.ref.ID, At: l.now, StatusCode: 500, Error: "status 500"}
		switch x := l.rng.Float64(); {
		case x < 0.45:
			r.Outcome, r.Attempt = store.OutcomeDelivered, a
			a.StatusCode, a.Error = 200, ""
		case x < 0.65:
			r.Outcome, r.Attempt, r.NextAttempt = store.OutcomeRetry, a, l.now.Add(time.Duration(l.rng.IntN(4))*time.Second)
		case x < 0.85:
			r.Outcome, r.Attempt = store.OutcomeDead, a
		case x < 0.9:
			r.Outcome, r.NextAttempt = store.OutcomePostpone, l.now.Add(time.Second)
		default:
			r.Outcome, r.Error = store.OutcomeSkipped, "skipped"
		}
		l.step("ack %s outcome %d", l.name(members(h.ref)), r.Outcome)
		r.Lease = h.ref.Lease
		errRef := l.ref.Ack(ctx, []store.Result{r})
		r.Lease = h.got.Lease
		errGot := l.got.Ack(ctx, []store.Result{r})
		if errors.Is(errRef, store.ErrLeaseLost) != errors.Is(errGot, store.ErrLeaseLost) {
			l.fatal("ack %s: reference %v, SQLite %v", members(h.ref), errRef, errGot)
		}
		if !errors.Is(errRef, store.ErrLeaseLost) {
			require.NoError(l.t, errRef)
			require.NoError(l.t, errGot)
		}
	}
	l.held = keep
}

func (l *lockstep) release() {
	if len(l.held) == 0 {
		return
	}
	i := l.rng.IntN(len(l.held))
	h := l.held[i]
	l.held = slices.Delete(l.held, i, i+1)
	l.step("release %s", l.name(members(h.ref)))
	require.NoError(l.t, l.ref.Release(l.t.Context(), []string{h.ref.Lease}))
	require.NoError(l.t, l.got.Release(l.t.Context(), []string{h.got.Lease}))
}

// finished lists the reference's deliveries that are not pending.
func (l *lockstep) finished() []string {
	ds, err := l.ref.Deliveries(l.t.Context(), store.DeliveryFilter{})
	require.NoError(l.t, err)
	var out []string
	for _, d := range ds {
		if d.Status != store.Pending {
			out = append(out, d.ID)
		}
	}
	return out
}

func (l *lockstep) requeue() {
	var ids []string
	for _, id := range l.finished() {
		if l.rng.Float64() < 0.5 {
			ids = append(ids, id)
		}
	}
	ids = append(ids, "missing")
	l.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var short []string
	for _, id := range ids {
		short = append(short, l.name(id))
	}
	l.step("requeue %v", short)
	n, err := l.ref.Requeue(l.t.Context(), ids, l.now)
	require.NoError(l.t, err)
	m, err := l.got.(store.Requeuer).Requeue(l.t.Context(), ids, l.now)
	require.NoError(l.t, err)
	if n != m {
		l.fatal("requeue: the reference requeued %d, SQLite %d", n, m)
	}
}

func (l *lockstep) replay() {
	ids := l.finished()
	if len(ids) == 0 {
		return
	}
	id := ids[l.rng.IntN(len(ids))]
	l.step("replay %s", l.name(id))
	require.NoError(l.t, l.ref.Replay(l.t.Context(), id, l.now))
	require.NoError(l.t, l.got.Replay(l.t.Context(), id, l.now))
}

// compare checks that both stores hold the same deliveries in the same
// states.
func (l *lockstep) compare() {
	ctx := l.t.Context()
	ref, err := l.ref.Deliveries(ctx, store.DeliveryFilter{})
	require.NoError(l.t, err)
	got, err := l.got.Deliveries(ctx, store.DeliveryFilter{})
	require.NoError(l.t, err)
	require.Len(l.t, got, len(ref))
	for i, r := range ref {
		g := got[i]
		if r.ID != g.ID || r.Status != g.Status || r.Attempts != g.Attempts || r.Replayed != g.Replayed ||
			!r.NextAttempt.Equal(g.NextAttempt) {
			l.fatal("delivery %s: reference %s attempts %d replayed %v next %v; SQLite %s attempts %d replayed %v next %v",
				r.ID, r.Status, r.Attempts, r.Replayed, r.NextAttempt, g.Status, g.Attempts, g.Replayed, g.NextAttempt)
		}
	}
}

func (l *lockstep) pending() int {
	ds, err := l.ref.Deliveries(l.t.Context(), store.DeliveryFilter{Status: store.Pending})
	require.NoError(l.t, err)
	return len(ds)
}

// TestRequeueMatchesMemory runs random sequences of publishes, claims,
// outcomes, releases, replays, requeues and clock moves against the
// memory store, whose Requeue is the reference, and the SQLite store; after
// every step both must have handed out the same messages and hold the same
// deliveries. Then everything left is delivered, in step.
func TestRequeueMatchesMemory(t *testing.T) {
	t.Parallel()
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			s, _ := open(t)
			l := &lockstep{t: t, ref: memory.New(), got: s, rng: rand.New(rand.NewPCG(seed, 42)), now: t0,
				key: map[string]string{}}
			for _, st := range []store.Store{l.ref, l.got} {
				_, err := st.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
				require.NoError(t, err)
			}
			keys := []string{"E1", "E2", "E3"}
			for range 300 {
				switch x := l.rng.IntN(16); {
				case x < 3:
					l.publish(keys[l.rng.IntN(len(keys))])
				case x < 6:
					l.claim()
				case x < 9:
					l.ack()
				case x < 10:
					l.release()
				case x < 12:
					l.requeue()
				case x < 13:
					l.replay()
				default:
					d := time.Duration(l.rng.IntN(4)) * time.Second
					l.step("advance %v", d)
					l.now = l.now.Add(d)
				}
				l.compare()
			}
			for len(l.held) > 0 {
				l.release()
			}
			for range 200 {
				if l.pending() == 0 {
					return
				}
				l.now = l.now.Add(10 * time.Second)
				l.step("advance 10s")
				l.claim()
				for _, h := range l.held {
					r := store.Result{MessageID: h.ref.ID, Now: l.now, Outcome: store.OutcomeDelivered}
					r.Lease = h.ref.Lease
					require.NoError(t, l.ref.Ack(t.Context(), []store.Result{r}))
					r.Lease = h.got.Lease
					require.NoError(t, l.got.Ack(t.Context(), []store.Result{r}))
				}
				l.held = nil
				l.compare()
			}
			t.Fatal("deliveries still pending after 200 rounds of draining")
		})
	}
}

// A requeued delivery of a batching webhook that comes before a lone
// delivery in flight (the webhook stopped batching meanwhile) waits for
// it: a batch gathered around the requeued one would take the one in
// flight too.
func TestRequeueNeverGathersALeasedDelivery(t *testing.T) {
	t.Parallel()
	s, _ := openWithWebhook(t)
	ctx := t.Context()
	enqueue := func(maxBatch int) string {
		d := delivery("wh")
		d.MaxBatch = maxBatch
		_, err := s.Enqueue(ctx, event(uuid.NewString(), "E1"), []store.Delivery{d})
		require.NoError(t, err)
		return d.ID
	}
	claimAll := func() []store.Message {
		ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
		require.NoError(t, err)
		return ms
	}
	first := enqueue(3)
	ms := claimAll()
	require.Len(t, ms, 1)
	require.NoError(t, s.Ack(ctx, []store.Result{{MessageID: ms[0].ID, Lease: ms[0].Lease, Outcome: store.OutcomeDead, Now: t0}}))
	lone := enqueue(0)
	held := claimAll()
	require.Len(t, held, 1)
	require.Equal(t, lone, held[0].Deliveries[0].ID)

	n, err := s.Requeue(ctx, []string{first}, t0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	assert.Empty(t, claimAll(), "the requeued batching delivery waits for the lone one in flight")
	require.NoError(t, s.Ack(ctx, []store.Result{{MessageID: held[0].ID, Lease: held[0].Lease, Outcome: store.OutcomeDelivered, Now: t0}}))
	ms = claimAll()
	require.Len(t, ms, 1, "then it goes")
	assert.Equal(t, []string{first}, ids(ms[0]))
}

func ids(m store.Message) []string {
	out := make([]string, len(m.Deliveries))
	for i, d := range m.Deliveries {
		out[i] = d.ID
	}
	return out
}

// A delivery whose payload was erased is not requeued, as it cannot be
// replayed: it would be sent without its record.
func TestRequeueSkipsErasedPayloads(t *testing.T) {
	t.Parallel()
	s, _ := openWithWebhook(t)
	ctx := t.Context()
	var dead []string
	for _, key := range []string{"E1", "E2"} {
		d := delivery("wh")
		_, err := s.Enqueue(ctx, event(uuid.NewString(), key), []store.Delivery{d})
		require.NoError(t, err)
		dead = append(dead, d.ID)
	}
	ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
	require.NoError(t, err)
	require.Len(t, ms, 2)
	for _, m := range ms {
		require.NoError(t, s.Ack(ctx, []store.Result{{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDead, Now: t0}}))
	}
	_, err = s.Erase(ctx, store.Erasure{Table: "employee", Key: "E1"}, t0)
	require.NoError(t, err)

	n, err := s.Requeue(ctx, dead, t0)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the delivery that still has its payload")
	d, err := s.Delivery(ctx, dead[0])
	require.NoError(t, err)
	assert.Equal(t, store.Dead, d.Status)
	ms, err = s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
	require.NoError(t, err)
	require.Len(t, ms, 1)
	assert.Equal(t, dead[1], ms[0].Deliveries[0].ID)
}

// Recover on a SQLite store puts dead deliveries back in order: each
// record's changes arrive oldest first, the recovered ones before a change
// published after the outage.
func TestRecoverInOrder(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := t.Context()
	k := webhooktest.NewDispatcher(t, webhook.Config{Store: s, Workers: 8, Retry: webhook.RetryPolicy{MaxAttempts: 2},
		Breaker: webhook.BreakerPolicy{MinFailures: 1000}})
	rcv := webhooktest.NewReceiver(t, k.Clock)
	w, err := k.Register(ctx, webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: rcv.URL + "/hook"})
	require.NoError(t, err)
	rcv.AddSecret(w.Secret)

	keys := []string{"E1", "E2", "E3"}
	publish := func(seq int) {
		for _, key := range keys {
			_, err := k.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Update, Key: key,
				New: map[string]any{"seq": seq}})
			require.NoError(t, err)
		}
	}
	rcv.Respond(func(webhooktest.Request) webhooktest.Answer { return webhooktest.Answer{Status: 503} })
	for i := range 4 {
		publish(i)
	}
	k.Settle(t, 100)
	rcv.Respond(nil)
	before := len(rcv.Requests())
	publish(4) // after the outage, not sent yet

	res, err := k.Recover(ctx, webhook.RecoverQuery{WebhookID: w.ID})
	require.NoError(t, err)
	assert.Equal(t, webhook.RecoverResult{Matched: 12, Replayed: 12, InOrder: true}, res)
	require.NoError(t, k.Start(ctx))
	got := rcv.WaitFor(t, before+15, 10*time.Second)[before:]
	require.NoError(t, k.Shutdown(ctx))
	seqs := map[string][]float64{}
	for _, r := range got {
		require.NoError(t, r.VerifyErr)
		var env struct {
			Data struct {
				Key string         `json:"key"`
				New map[string]any `json:"new"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &env))
		seq, _ := env.Data.New["seq"].(float64)
		seqs[env.Data.Key] = append(seqs[env.Data.Key], seq)
	}
	for _, key := range keys {
		assert.Equal(t, []float64{0, 1, 2, 3, 4}, seqs[key], "key %s", key)
	}
}
