package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/webhook"
)

// heraldBurst measures a month-end burst: o.Burst changes published by c
// goroutines as fast as Publish returns, none waiting for a delivery, and
// delivered by c workers. Its rate is the deliveries over the time from
// the first Publish to the last receiver's answer, so it shows how fast
// herald drains a backlog while it is still being written, when claims
// and acks can gather many rows each; the closed loop of heraldRun keeps
// only c changes in flight. Latency is from each change's Publish to its
// last delivery, queueing included.
func heraldBurst(ctx context.Context, url string, st store.Store, o options, c int) (result, error) {
	prefix := "burst-" + strconv.Itoa(c) + "-"
	per := (o.Burst + c - 1) / c // changes per goroutine
	published := make([][]time.Time, c)
	left := make([][]atomic.Int32, c)
	for g := range c {
		published[g] = make([]time.Time, per)
		left[g] = make([]atomic.Int32, per)
		for i := range left[g] {
			left[g][i].Store(int32(o.Fanout))
		}
	}
	total := int64(c*per) * int64(o.Fanout)
	var delivered, failed atomic.Int64
	var lat latencies
	done := make(chan struct{})
	d, stop, err := startDispatcher(ctx, url, st, o, c, func(e webhook.Event) {
		switch e.Kind {
		case webhook.EventDelivered:
			g, i, ok := parseOpID(e.MessageID, prefix)
			if !ok || g >= c || i >= per {
				return
			}
			if left[g][i].Add(-1) == 0 {
				lat.add([]time.Duration{time.Since(published[g][i])})
			}
			if delivered.Add(1) == total {
				close(done)
			}
		case webhook.EventRetry, webhook.EventDead:
			failed.Add(1)
		}
	})
	if err != nil {
		return result{}, err
	}
	defer stop()
	old, new := changeRecords(o.Payload)
	m := startMeter()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, c)
	for g := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				published[g][i] = time.Now() // before Publish: the observer may run before it returns
				if _, err := d.Publish(ctx, webhook.Change{ID: opID(prefix, g, i), Table: "employee", Op: webhook.Update,
					Key: opID("E-", g, i), Old: old, New: new}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	select {
	case <-done:
	case <-time.After(2*time.Minute + time.Duration(total)*time.Millisecond):
		return result{}, fmt.Errorf("%d of %d deliveries made (%d attempts failed)", delivered.Load(), total, failed.Load())
	}
	r := result{Scenario: "burst", Concurrency: c, Deliveries: total}
	r.ElapsedSeconds = time.Since(start).Seconds()
	r.PerSecond = float64(r.Deliveries) / r.ElapsedSeconds
	m.finish(&r)
	lat.fill(&r)
	return r, nil
}
