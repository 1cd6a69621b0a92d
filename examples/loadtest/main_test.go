package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain lets the test binary serve as the receiver process, as the
// program does, and otherwise fails the run if a goroutine outlives the
// tests.
func TestMain(m *testing.M) {
	if os.Getenv(receiverEnv) != "" {
		os.Exit(serveReceiver(os.Stdin, os.Stdout))
	}
	goleak.VerifyTestMain(m)
}

// TestLoadtestRuns runs every scenario briefly, with the receiver in this
// process and in a second one: the harness works and reports a ratio for
// each herald run. It asserts no speed; figures come from full runs (see
// BENCHMARKS.md).
func TestLoadtestRuns(t *testing.T) {
	for _, where := range []string{"inproc", "process"} {
		t.Run(where, func(t *testing.T) {
			o := options{Duration: 100 * time.Millisecond, Rounds: 2, Concurrency: []int{1, 4}, Payload: 512, Webhooks: 3, Fanout: 2,
				Stores: storeNames(), Receiver: where, JSON: true, Burst: 30}
			rs, err := run(context.Background(), o, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := report(&buf, o, rs); err != nil {
				t.Fatal(err)
			}
			var back []result
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
				t.Fatalf("-json output does not parse: %v", err)
			}
			herald, bursts := 0, 0
			for _, r := range back {
				if r.Deliveries <= 0 || r.PerSecond <= 0 || r.Rounds != 2 {
					t.Errorf("%s/%s at %d: nothing delivered or rounds missing: %+v", r.Scenario, r.Store, r.Concurrency, r)
				}
				if r.P50Micros <= 0 || r.P99Micros < r.P50Micros {
					t.Errorf("%s/%s at %d: latencies %v/%v", r.Scenario, r.Store, r.Concurrency, r.P50Micros, r.P99Micros)
				}
				// The receiver's CPU is measured where it runs apart,
				// and where this platform measures CPU time at all.
				if measured := where == "process" && cpuSeconds() > 0; measured != (r.ReceiverMicros > 0) {
					t.Errorf("%s/%s at %d: receiver CPU %v µs per delivery", r.Scenario, r.Store, r.Concurrency, r.ReceiverMicros)
				}
				if r.Scenario == "burst" {
					bursts++
					// 30 changes in all, rounded up to a whole number per
					// publishing goroutine, each delivered twice.
					if want := int64((30+r.Concurrency-1)/r.Concurrency*r.Concurrency) * 2; r.Deliveries != want {
						t.Errorf("burst on %s at %d: %d deliveries, want %d", r.Store, r.Concurrency, r.Deliveries, want)
					}
				}
				if r.Scenario == "herald" {
					herald++
					if r.Ratio <= 0 {
						t.Errorf("herald on %s at %d: no ratio to the baseline", r.Store, r.Concurrency)
					}
					if r.Deliveries%2 != 0 {
						t.Errorf("herald on %s at %d: %d deliveries with a fan-out of 2", r.Store, r.Concurrency, r.Deliveries)
					}
				}
			}
			if herald == 0 || bursts != herald {
				t.Errorf("%d herald scenarios and %d bursts ran", herald, bursts)
			}
		})
	}
}

func TestMedianPairsRatios(t *testing.T) {
	rs := []result{{PerSecond: 10, Ratio: 0.5}, {PerSecond: 30, Ratio: 0.9}, {PerSecond: 20, Ratio: 0.7}}
	m := median(rs)
	if m.PerSecond != 20 || m.Ratio != 0.7 || m.Rounds != 3 {
		t.Fatalf("median %+v", m)
	}
}

// TestOpIDs: the observer finds the goroutine and change an id names, and
// nothing in an id of another form.
func TestOpIDs(t *testing.T) {
	for _, c := range []struct{ g, i int }{{0, 0}, {63, 1000000}, {7, 42}} {
		g, i, ok := parseOpID(opID("chg-64-", c.g, c.i), "chg-64-")
		if !ok || g != c.g || i != c.i {
			t.Errorf("%d-%d came back as %d-%d (%v)", c.g, c.i, g, i, ok)
		}
	}
	for _, id := range []string{"chg-8-1-2", "chg-64-1", "chg-64-x-2", "chg-64-1-y", "other"} {
		if _, _, ok := parseOpID(id, "chg-64-"); ok {
			t.Errorf("%q parsed", id)
		}
	}
}
