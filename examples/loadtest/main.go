// Command loadtest measures herald against the physical limit of this
// machine: plain net/http POSTs of the same signed JSON body to the same
// loopback receiver, at the same concurrency, in the same run.
//
//	go run ./examples/loadtest                     # memory store, concurrency 1, 8, 64
//	go run ./examples/loadtest -stores memory,sqlite,postgres -duration 10s -json
//
// For each concurrency it reports deliveries per second, the ratio to the
// signed net/http baseline, publish-to-receipt latency p50/p99,
// allocations and bytes per delivery, and the peak heap. Figures are
// ratios to a baseline measured in the same run, so they mean something
// on a noisy machine.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
)

// options are the harness's flags.
type options struct {
	Duration    time.Duration
	Concurrency []int
	Payload     int // bytes of record data per change
	Webhooks    int // webhooks on the table (matching or not)
	Fanout      int // of which this many match every change
	Stores      []string
	JSON        bool
}

// result is one measured scenario.
type result struct {
	Scenario       string  `json:"scenario"`
	Store          string  `json:"store,omitempty"`
	Concurrency    int     `json:"concurrency"`
	Deliveries     int64   `json:"deliveries"`
	PerSecond      float64 `json:"deliveries_per_second"`
	Ratio          float64 `json:"ratio_to_baseline"`
	P50Micros      float64 `json:"p50_us"`
	P99Micros      float64 `json:"p99_us"`
	AllocsPerDlv   float64 `json:"allocs_per_delivery"`
	BytesPerDlv    float64 `json:"bytes_per_delivery"`
	PeakHeapMiB    float64 `json:"peak_heap_mib"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
}

func main() {
	var o options
	var conc, stores string
	flag.DurationVar(&o.Duration, "duration", 3*time.Second, "how long each scenario runs")
	flag.StringVar(&conc, "concurrency", "1,8,64", "comma-separated concurrency levels")
	flag.IntVar(&o.Payload, "payload", 1024, "approximate bytes of record data per change")
	flag.IntVar(&o.Webhooks, "webhooks", 1, "webhooks registered on the table")
	flag.IntVar(&o.Fanout, "fanout", 1, "webhooks (of -webhooks) each change matches")
	flag.StringVar(&stores, "stores", "memory", "comma-separated stores: "+strings.Join(storeNames(), ", "))
	flag.BoolVar(&o.JSON, "json", false, "print JSON instead of a table")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "loadtest: bad concurrency %q\n", s)
			os.Exit(2)
		}
		o.Concurrency = append(o.Concurrency, n)
	}
	o.Stores = strings.Split(stores, ",")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs, err := run(ctx, o, os.Stderr)
	if err == nil {
		err = report(os.Stdout, o, rs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log io.Writer) ([]result, error) {
	if o.Fanout < 1 || o.Fanout > o.Webhooks {
		return nil, errors.New("-fanout must be between 1 and -webhooks")
	}
	rcv, err := newReceiver()
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	var out []result
	for _, c := range o.Concurrency {
		fmt.Fprintf(log, "baseline: signed net/http, concurrency %d ...\n", c)
		base, err := baseline(ctx, rcv, o, c)
		if err != nil {
			return nil, err
		}
		base.Ratio = 1
		out = append(out, base)
		for _, name := range o.Stores {
			open, ok := stores[strings.TrimSpace(name)]
			if !ok {
				return nil, fmt.Errorf("unknown store %q (have %s)", name, strings.Join(storeNames(), ", "))
			}
			st, closeStore, err := open(ctx)
			if errors.Is(err, errSkipStore) {
				fmt.Fprintf(log, "herald on %s: skipped (%v)\n", name, err)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("store %s: %w", name, err)
			}
			fmt.Fprintf(log, "herald on %s, concurrency %d ...\n", name, c)
			r, err := heraldRun(ctx, rcv, st, o, c)
			closeStore()
			if err != nil {
				return nil, fmt.Errorf("herald on %s: %w", name, err)
			}
			r.Store = name
			r.Ratio = r.PerSecond / base.PerSecond
			out = append(out, r)
		}
	}
	return out, nil
}

// errSkipStore: the store is not available here (its server is not set).
var errSkipStore = errors.New("not available")

// stores opens a fresh store per scenario; more register in their own
// files.
var stores = map[string]func(ctx context.Context) (store.Store, func(), error){
	"memory": func(context.Context) (store.Store, func(), error) { return memory.New(), func() {}, nil },
}

func storeNames() []string {
	var n []string
	for k := range stores {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// receiver is the loopback endpoint both sides send to. It tells waiters
// when a webhook-id arrives.
type receiver struct {
	url     string
	srv     *http.Server
	waiters sync.Map // webhook-id -> chan struct{}
	count   atomic.Int64
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook"}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) close() { _ = r.srv.Close() }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	r.count.Add(1)
	if ch, ok := r.waiters.LoadAndDelete(req.Header.Get("Webhook-Id")); ok {
		close(ch.(chan struct{}))
	}
	w.WriteHeader(http.StatusNoContent)
}

// record returns a record of about n bytes of JSON.
func record(n int) map[string]any {
	m := map[string]any{"employee_id": "E-1001", "department": "Sales", "status": "Active"}
	for i := 0; n > 80; i++ {
		m[fmt.Sprintf("field_%02d", i)] = strings.Repeat("x", 40)
		n -= 55
	}
	return m
}

// meter samples allocations, bytes and the peak heap over a scenario.
type meter struct {
	before runtime.MemStats
	peak   atomic.Uint64
	stop   chan struct{}
	done   chan struct{}
}

func startMeter() *meter {
	m := &meter{stop: make(chan struct{}), done: make(chan struct{})}
	runtime.GC()
	runtime.ReadMemStats(&m.before)
	go func() {
		defer close(m.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > m.peak.Load() {
					m.peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	return m
}

func (m *meter) finish(r *result) {
	close(m.stop)
	<-m.done
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if r.Deliveries > 0 {
		r.AllocsPerDlv = float64(after.Mallocs-m.before.Mallocs) / float64(r.Deliveries)
		r.BytesPerDlv = float64(after.TotalAlloc-m.before.TotalAlloc) / float64(r.Deliveries)
	}
	r.PeakHeapMiB = float64(max(m.peak.Load(), after.HeapAlloc)) / (1 << 20)
}

// latencies collects per-operation latencies from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

func (l *latencies) fill(r *result) {
	slices.Sort(l.d)
	if len(l.d) == 0 {
		return
	}
	pct := func(p float64) float64 {
		return float64(l.d[min(len(l.d)-1, int(p*float64(len(l.d))))].Nanoseconds()) / 1e3
	}
	r.P50Micros, r.P99Micros = pct(0.50), pct(0.99)
}

// baseline sends signed POSTs of the same size with plain net/http.
func baseline(ctx context.Context, rcv *receiver, o options, c int) (result, error) {
	secret, err := signer.GenerateSecret()
	if err != nil {
		return result{}, err
	}
	s, err := signer.New(secret)
	if err != nil {
		return result{}, err
	}
	body, err := json.Marshal(map[string]any{"id": "x", "type": "employee.updated", "timestamp": time.Now(),
		"data": map[string]any{"table": "employee", "op": "UPDATE", "key": "E-1001", "new": record(o.Payload)}})
	if err != nil {
		return result{}, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxIdleConns: c}}
	defer client.CloseIdleConnections()
	var n atomic.Int64
	var lat latencies
	m := startMeter()
	start := time.Now()
	deadline := start.Add(o.Duration)
	var wg sync.WaitGroup
	errs := make(chan error, c)
	for g := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var own []time.Duration
			defer func() { lat.add(own) }()
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("base-%d-%d", g, i)
				t0 := time.Now()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, rcv.url, strings.NewReader(string(body)))
				if err != nil {
					errs <- err
					return
				}
				s.SetHeaders(req.Header, id, t0, body)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				own = append(own, time.Since(t0))
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	r := result{Scenario: "net/http signed", Concurrency: c, Deliveries: n.Load()}
	r.ElapsedSeconds = time.Since(start).Seconds()
	r.PerSecond = float64(r.Deliveries) / r.ElapsedSeconds
	m.finish(&r)
	lat.fill(&r)
	return r, nil
}

// heraldRun publishes changes from c goroutines in a closed loop, each
// waiting until its change reached the receiver, with c workers.
func heraldRun(ctx context.Context, rcv *receiver, st store.Store, o options, c int) (result, error) {
	d, err := webhook.New(webhook.Config{Store: st, AllowPrivateNetworks: true, Workers: c,
		PollInterval: 200 * time.Millisecond})
	if err != nil {
		return result{}, err
	}
	for i := range o.Webhooks {
		w := webhook.Webhook{Name: fmt.Sprintf("load %d", i), Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: rcv.url}
		if i >= o.Fanout {
			w.Table = fmt.Sprintf("other%d", i)
		}
		if _, err := d.Register(ctx, w); err != nil {
			return result{}, err
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := d.Start(runCtx); err != nil {
		return result{}, err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = d.Shutdown(sctx)
	}()
	old, new := record(o.Payload), record(o.Payload)
	new["status"] = "Leave"
	var n atomic.Int64
	var lat latencies
	m := startMeter()
	start := time.Now()
	deadline := start.Add(o.Duration)
	var wg sync.WaitGroup
	errs := make(chan error, c)
	for g := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var own []time.Duration
			defer func() { lat.add(own) }()
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("chg-%d-%d-%d", c, g, i)
				got := make(chan struct{})
				rcv.waiters.Store(id, got)
				t0 := time.Now()
				if _, err := d.Publish(ctx, webhook.Change{ID: id, Table: "employee", Op: webhook.Update,
					Key: fmt.Sprintf("E-%d-%d", g, i), Old: old, New: new}); err != nil {
					errs <- err
					return
				}
				select {
				case <-got:
				case <-time.After(30 * time.Second):
					errs <- fmt.Errorf("change %s not received within 30s", id)
					return
				}
				own = append(own, time.Since(t0))
				n.Add(int64(o.Fanout))
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	r := result{Scenario: "herald", Concurrency: c, Deliveries: n.Load()}
	r.ElapsedSeconds = time.Since(start).Seconds()
	r.PerSecond = float64(r.Deliveries) / r.ElapsedSeconds
	m.finish(&r)
	lat.fill(&r)
	return r, nil
}

func report(w io.Writer, o options, rs []result) error {
	if o.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\tstore\tconc\tdeliveries/s\tratio\tp50 µs\tp99 µs\tallocs/dlv\tbytes/dlv\tpeak heap MiB\t\n")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t\n", r.Scenario, r.Store, r.Concurrency,
			r.PerSecond, r.Ratio, r.P50Micros, r.P99Micros, r.AllocsPerDlv, r.BytesPerDlv, r.PeakHeapMiB)
	}
	return tw.Flush()
}
