package webhooktest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
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
	Seed       uint64
	Tables     int     // 5
	Changes    int     // 20,000
	Keys       int     // 2,000
	Publishers int     // 8
	FaultRate  float64 // 0.3
	Workers    int     // 32
	// Timeout bounds the whole run; 0: 3 minutes.
	Timeout time.Duration
}

// ChaosReport is what a chaos run found.
type ChaosReport struct {
	Changes    int            // published
	Expected   int            // (webhook, change) pairs that match
	Delivered  int            // distinct pairs the receiver processed
	Duplicates int            // records processed more than once
	Lost       int            // expected but never processed
	Unexpected int            // processed but not expected
	OutOfOrder int            // first receipts of a key out of publish order
	Dead       int            // deliveries given up
	Requests   int64          // requests the receiver got
	Faults     map[string]int // requests per fault
	Elapsed    time.Duration
}

func (r ChaosReport) String() string {
	return fmt.Sprintf("changes=%d expected=%d delivered=%d duplicates=%d lost=%d unexpected=%d out_of_order=%d dead=%d requests=%d faults=%v elapsed=%v",
		r.Changes, r.Expected, r.Delivered, r.Duplicates, r.Lost, r.Unexpected, r.OutOfOrder, r.Dead, r.Requests, r.Faults, r.Elapsed.Round(time.Millisecond))
}

// chaosWebhook is one of the four webhooks per table, with the rule it
// should match, written out again here so the run checks the dispatcher's
// matching rather than trusting it.
type chaosWebhook struct {
	def   webhook.Webhook
	match func(op webhook.Op, old, new map[string]any) bool
}

func chaosWebhooks(table string, base string) []chaosWebhook {
	all := []webhook.Op{webhook.Insert, webhook.Update, webhook.Delete}
	grade := func(m map[string]any) int { g, _ := m["grade"].(int); return g }
	return []chaosWebhook{
		{webhook.Webhook{Name: table + " all", Table: table, Ops: all, URL: base + "/" + table + "/all"},
			func(webhook.Op, map[string]any, map[string]any) bool { return true }},
		{webhook.Webhook{Name: table + " status", Table: table, Ops: []webhook.Op{webhook.Update}, URL: base + "/" + table + "/status",
			When: condition.Rule{Match: condition.AnySelected, Fields: []string{"status"}}},
			func(op webhook.Op, old, new map[string]any) bool {
				return op == webhook.Update && old["status"] != new["status"]
			}},
		{webhook.Webhook{Name: table + " senior", Table: table, Ops: []webhook.Op{webhook.Insert, webhook.Update}, URL: base + "/" + table + "/senior",
			When: condition.Rule{Expr: "new.grade > 5"}},
			func(op webhook.Op, _, new map[string]any) bool { return op != webhook.Delete && grade(new) > 5 }},
		{webhook.Webhook{Name: table + " batch", Table: table, Ops: all, URL: base + "/" + table + "/batch", MaxBatch: 5},
			func(webhook.Op, map[string]any, map[string]any) bool { return true }},
	}
}

// RunChaos publishes changes from several goroutines to a dispatcher on st
// while a chaos receiver misbehaves, then calms the receiver, waits until
// nothing is pending, and reports what arrived. It fails the test only when
// the run cannot complete; the caller asserts on the report.
func RunChaos(t testing.TB, st store.Store, cfg ChaosConfig) ChaosReport {
	t.Helper()
	if cfg.Tables == 0 {
		cfg.Tables = 5
	}
	if cfg.Changes == 0 {
		cfg.Changes = 20000
	}
	if cfg.Keys == 0 {
		cfg.Keys = 2000
	}
	if cfg.Publishers == 0 {
		cfg.Publishers = 8
	}
	if cfg.FaultRate == 0 {
		cfg.FaultRate = 0.3
	}
	if cfg.Workers == 0 {
		cfg.Workers = 32
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	start := time.Now()

	rcv := NewChaosReceiver(t, cfg.Seed, cfg.FaultRate)
	d, err := webhook.New(webhook.Config{
		Store: st, AllowPrivateNetworks: true, Workers: cfg.Workers,
		AttemptTimeout: 300 * time.Millisecond, LeaseDuration: 5 * time.Second,
		PollInterval: 50 * time.Millisecond,
		Retry: webhook.RetryPolicy{MaxAttempts: 1000, InitialInterval: 5 * time.Millisecond,
			MaxInterval: 100 * time.Millisecond, Multiplier: 2, MaxRetryAfter: 20 * time.Millisecond},
	})
	require.NoError(t, err)
	var hooks []chaosWebhook
	byPath := map[string]chaosWebhook{}
	for i := range cfg.Tables {
		for _, h := range chaosWebhooks(fmt.Sprintf("table%d", i), rcv.URL) {
			w, err := d.Register(ctx, h.def)
			require.NoError(t, err)
			h.def = w
			hooks = append(hooks, h)
			byPath[strings.TrimPrefix(w.URL, rcv.URL)] = h
		}
	}
	require.NoError(t, d.Start(ctx))
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = d.Shutdown(sctx)
	}()

	// Each publisher owns the keys k ≡ p (mod Publishers), so each key's
	// changes are published in order by one goroutine; "seq" counts them.
	type pair struct{ webhook, event string }
	expected := map[pair]struct{}{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Publishers)
	perPublisher := cfg.Changes / cfg.Publishers
	for p := range cfg.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed+uint64(p), 7))
			state := map[int]map[string]any{}
			seq := map[int]int{}
			for range perPublisher {
				k := p + cfg.Publishers*rng.IntN(max(1, cfg.Keys/cfg.Publishers))
				table := fmt.Sprintf("table%d", k%cfg.Tables)
				seq[k]++
				old := state[k]
				next := map[string]any{"seq": seq[k], "status": []string{"Active", "Leave", "Terminated"}[rng.IntN(3)], "grade": rng.IntN(10)}
				op := webhook.Update
				switch {
				case old == nil:
					op = webhook.Insert
				case rng.IntN(20) == 0:
					op, next = webhook.Delete, nil
				}
				c := webhook.Change{Table: table, Op: op, Key: fmt.Sprintf("K%d", k), Old: old, New: next}
				if op == webhook.Delete {
					c.Old = old
					c.Old["seq"] = seq[k]
				}
				id, err := d.Publish(ctx, c)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, h := range hooks {
					if h.def.Table == table && h.match(op, old, next) {
						expected[pair{h.def.ID, id}] = struct{}{}
					}
				}
				mu.Unlock()
				state[k] = next
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Keep misbehaving until roughly every message has been tried once,
	// so the faults hit the first attempts, not only the publishing.
	var messages int64
	for p := range expected {
		for _, h := range hooks {
			if h.def.ID == p.webhook {
				if h.def.MaxBatch > 1 {
					messages++ // counted per record; divided below
				} else {
					messages += int64(h.def.MaxBatch + 5)
				}
			}
		}
	}
	messages /= 5
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for rcv.Total() < messages {
		select {
		case <-ctx.Done():
			t.Fatalf("the receiver got %d requests of about %d before the run timed out", rcv.Total(), messages)
		case <-tick.C:
		}
	}
	rcv.Calm()

	for {
		pending, err := d.Deliveries(ctx, webhook.DeliveryQuery{Status: webhook.Pending, Limit: 1})
		require.NoError(t, err)
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("deliveries still pending when the chaos run timed out: %+v", pending[0])
		case <-tick.C:
		}
	}

	rep := ChaosReport{Changes: perPublisher * cfg.Publishers, Expected: len(expected), Requests: rcv.Total(), Faults: rcv.Faults()}
	seen := map[pair]int{}
	lastSeq := map[string]float64{} // webhook/key -> seq of the latest first receipt
	type record struct {
		EventID string         `json:"event_id"`
		Key     string         `json:"key"`
		New     map[string]any `json:"new"`
		Old     map[string]any `json:"old"`
	}
	for _, r := range rcv.Processed() {
		h, ok := byPath[r.URL]
		if !ok {
			rep.Unexpected++
			continue
		}
		var recs []record
		if h.def.MaxBatch > 1 {
			var env struct {
				Data []record `json:"data"`
			}
			require.NoError(t, json.Unmarshal(r.Body, &env))
			recs = env.Data
		} else {
			var env struct {
				ID   string `json:"id"`
				Data record `json:"data"`
			}
			require.NoError(t, json.Unmarshal(r.Body, &env))
			env.Data.EventID = env.ID
			recs = []record{env.Data}
		}
		for _, rec := range recs {
			p := pair{h.def.ID, rec.EventID}
			seen[p]++
			if seen[p] > 1 {
				rep.Duplicates++
				continue
			}
			if _, ok := expected[p]; !ok {
				rep.Unexpected++
			}
			src := rec.New
			if src == nil {
				src = rec.Old
			}
			seq, _ := src["seq"].(float64)
			k := h.def.ID + "/" + rec.Key
			if seq <= lastSeq[k] {
				rep.OutOfOrder++
			}
			lastSeq[k] = seq
		}
	}
	for p := range expected {
		if seen[p] > 0 {
			rep.Delivered++
		} else {
			rep.Lost++
		}
	}
	dead, err := d.Deliveries(ctx, webhook.DeliveryQuery{Status: webhook.Dead})
	require.NoError(t, err)
	rep.Dead = len(dead)
	rep.Elapsed = time.Since(start)
	return rep
}
