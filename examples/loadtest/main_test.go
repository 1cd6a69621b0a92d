package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"
)

// TestLoadtestRuns runs every scenario briefly: the harness works and
// reports a ratio for each herald run. It asserts no speed; figures come
// from full runs (see BENCHMARKS.md).
func TestLoadtestRuns(t *testing.T) {
	o := options{Duration: 100 * time.Millisecond, Concurrency: []int{1, 4}, Payload: 512, Webhooks: 2, Fanout: 1,
		Stores: storeNames(), JSON: true}
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
	herald := 0
	for _, r := range back {
		if r.Deliveries <= 0 || r.PerSecond <= 0 {
			t.Errorf("%s/%s at %d: nothing delivered", r.Scenario, r.Store, r.Concurrency)
		}
		if r.Scenario == "herald" {
			herald++
			if r.Ratio <= 0 {
				t.Errorf("herald on %s at %d: no ratio to the baseline", r.Store, r.Concurrency)
			}
		}
	}
	if herald == 0 {
		t.Error("no herald scenario ran")
	}
}
