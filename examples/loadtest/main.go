// Command loadtest measures herald against the physical limit of this
// machine: plain net/http POSTs of the same signed JSON body to the same
// loopback receiver, at the same concurrency, in the same run.
//
//	go run ./examples/loadtest                     # every store, concurrency 1, 8, 64
//	go run ./examples/loadtest -stores memory -duration 5s -rounds 5 -json
//
// By default herald runs on the memory store, then SQLite, then Postgres
// where HERALD_TEST_POSTGRES_URL names a server (a fresh schema, dropped
// afterwards); without it the Postgres scenario is skipped, and says so.
// For each concurrency it runs the baseline and herald on each store in
// turns (-rounds of them, interleaved, so a change of load on a shared
// machine hits both alike) and reports, per scenario, the median round:
// deliveries per second, the ratio to the baseline of the same round,
// latency p50/p99, CPU time, allocations and bytes per delivery, the
// peak heap, and the receiver process's CPU time per delivery.
//
// The receiver shares the machine's cores with the side under test, so the
// throughput ratio herald can reach is bounded by CPU per delivery:
// (baseline + receiver) / (herald + receiver). The receiver column makes
// that bound computable from one run.
//
// The baseline is a closed loop of c goroutines each sending one signed
// POST after the other over keep-alive connections (MaxIdleConnsPerHost
// = c). herald's is a closed loop of c goroutines each publishing one
// change and waiting until herald has the receiver's 2xx answer for it,
// with Workers = c. Latency is measured the same way on both sides: from
// the start of the request (or the Publish call) to the 2xx answer in
// hand.
//
// With -burst N, each store also runs a month-end burst: N changes
// published by c goroutines as fast as Publish returns, none waiting for
// its delivery, delivered by c workers; its rate runs from the first
// Publish to the last answer (scenario "burst", same baseline). The closed
// loop keeps c changes in flight; a burst lets claims and acks gather many
// rows each, as a backlog does.
//
// By default the receiver runs in a second process (this program,
// started again), so that the receiver's work is not counted in the
// allocations and CPU of the side under test, and the two do not share
// one Go scheduler; -receiver inproc keeps it in this process.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
)

// options are the harness's flags.
type options struct {
	Duration    time.Duration
	Rounds      int
	Concurrency []int
	Payload     int // bytes of record data per change
	Webhooks    int // webhooks on the changed table
	Fanout      int // of which this many match every change; the rest have a condition it fails
	Stores      []string
	Receiver    string // "process" or "inproc"
	JSON        bool
	Burst       int // changes per burst scenario; 0: no burst scenario
}

// result is one measured scenario.
type result struct {
	Scenario       string  `json:"scenario"`
	Store          string  `json:"store,omitempty"`
	Concurrency    int     `json:"concurrency"`
	Rounds         int     `json:"rounds"`
	Deliveries     int64   `json:"deliveries"`
	PerSecond      float64 `json:"deliveries_per_second"`
	Ratio          float64 `json:"ratio_to_baseline"`
	P50Micros      float64 `json:"p50_us"`
	P99Micros      float64 `json:"p99_us"`
	CPUMicrosPerDl float64 `json:"cpu_us_per_delivery"`
	GCMicrosPerDl  float64 `json:"gc_cpu_us_per_delivery"` // the runtime's estimate, within cpu_us_per_delivery
	// ReceiverMicros is the receiver process's CPU per delivery: the
	// machine's two sides share its cores, so the ratio herald can reach
	// is (baseline + receiver) / (herald + receiver), in CPU per delivery.
	ReceiverMicros float64 `json:"receiver_cpu_us_per_delivery,omitempty"`
	AllocsPerDlv   float64 `json:"allocs_per_delivery"`
	BytesPerDlv    float64 `json:"bytes_per_delivery"`
	PeakHeapMiB    float64 `json:"peak_heap_mib"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
}

func main() {
	if os.Getenv(receiverEnv) != "" {
		os.Exit(serveReceiver(os.Stdin, os.Stdout))
	}
	var o options
	var conc, stores string
	flag.DurationVar(&o.Duration, "duration", 2*time.Second, "how long each scenario runs in each round")
	flag.IntVar(&o.Rounds, "rounds", 3, "rounds per scenario, interleaved with the other scenarios; the median is reported")
	flag.StringVar(&conc, "concurrency", "1,8,64", "comma-separated concurrency levels")
	flag.IntVar(&o.Payload, "payload", 1024, "approximate bytes of record data per change")
	flag.IntVar(&o.Webhooks, "webhooks", 1, "webhooks on the changed table; those beyond -fanout have a condition the changes fail")
	flag.IntVar(&o.Fanout, "fanout", 1, "webhooks (of -webhooks) each change matches and is delivered to")
	flag.StringVar(&stores, "stores", "memory,sqlite,postgres",
		"comma-separated stores: "+strings.Join(storeNames(), ", ")+"; postgres runs where "+postgresURLEnv+" is set")
	flag.StringVar(&o.Receiver, "receiver", "process", `where the receiver runs: "process" (a second process) or "inproc"`)
	flag.BoolVar(&o.JSON, "json", false, "print JSON instead of a table")
	flag.IntVar(&o.Burst, "burst", 0, "also run each store as a burst: this many changes published by c goroutines without waiting, delivered by c workers")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (labelled side=baseline|herald)")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the whole run to this file (pprof -sample_index=alloc_objects)")
	flag.Parse()
	if *memprofile != "" {
		runtime.MemProfileRate = 4096
		defer writeHeapProfile(*memprofile)
	}
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

// writeHeapProfile writes the allocations of the run so far.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
	}
}

func run(ctx context.Context, o options, log io.Writer) ([]result, error) {
	if o.Fanout < 1 || o.Fanout > o.Webhooks {
		return nil, errors.New("-fanout must be between 1 and -webhooks")
	}
	if o.Rounds < 1 {
		return nil, errors.New("-rounds must be at least 1")
	}
	for i, name := range o.Stores {
		o.Stores[i] = strings.TrimSpace(name)
		if _, ok := stores[o.Stores[i]]; !ok {
			return nil, fmt.Errorf("unknown store %q (have %s)", name, strings.Join(storeNames(), ", "))
		}
	}
	var rcv *receiver
	var err error
	switch o.Receiver {
	case "process":
		rcv, err = startReceiverProcess()
	case "inproc", "":
		rcv, err = startReceiverHere()
	default:
		return nil, fmt.Errorf("-receiver %q: want process or inproc", o.Receiver)
	}
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	receiverCPU = rcv.cpu
	defer func() { receiverCPU = nil }()
	skipped := map[string]bool{}
	var out []result
	for _, c := range o.Concurrency {
		var base []result
		herald, bursts := map[string][]result{}, map[string][]result{}
		for round := range o.Rounds {
			fmt.Fprintf(log, "round %d/%d: baseline, signed net/http, concurrency %d ...\n", round+1, o.Rounds, c)
			var b result
			// Labels split a -cpuprofile by side: pprof -tagfocus side=herald.
			pprof.Do(ctx, pprof.Labels("side", "baseline"), func(ctx context.Context) { b, err = baseline(ctx, rcv.url, o, c) })
			if err != nil {
				return nil, err
			}
			base = append(base, b)
			for _, name := range o.Stores {
				if skipped[name] {
					continue
				}
				st, closeStore, err := stores[name](ctx)
				if errors.Is(err, errSkipStore) {
					fmt.Fprintf(log, "herald on %s: skipped (%v)\n", name, err)
					skipped[name] = true
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("store %s: %w", name, err)
				}
				fmt.Fprintf(log, "round %d/%d: herald on %s, concurrency %d ...\n", round+1, o.Rounds, name, c)
				var r result
				pprof.Do(ctx, pprof.Labels("side", "herald", "store", name), func(ctx context.Context) {
					r, err = heraldRun(ctx, rcv.url, st, o, c)
				})
				closeStore()
				if err != nil {
					return nil, fmt.Errorf("herald on %s: %w", name, err)
				}
				r.Store = name
				r.Ratio = r.PerSecond / b.PerSecond
				herald[name] = append(herald[name], r)
				if o.Burst <= 0 {
					continue
				}
				if st, closeStore, err = stores[name](ctx); err != nil {
					return nil, fmt.Errorf("store %s: %w", name, err)
				}
				fmt.Fprintf(log, "round %d/%d: burst of %d changes on %s, concurrency %d ...\n", round+1, o.Rounds, o.Burst, name, c)
				pprof.Do(ctx, pprof.Labels("side", "herald", "store", name), func(ctx context.Context) {
					r, err = heraldBurst(ctx, rcv.url, st, o, c)
				})
				closeStore()
				if err != nil {
					return nil, fmt.Errorf("burst on %s: %w", name, err)
				}
				r.Store = name
				r.Ratio = r.PerSecond / b.PerSecond
				bursts[name] = append(bursts[name], r)
			}
		}
		m := median(base)
		m.Ratio = 1
		out = append(out, m)
		for _, name := range o.Stores {
			if rs := herald[name]; len(rs) > 0 {
				out = append(out, median(rs))
			}
		}
		for _, name := range o.Stores {
			if rs := bursts[name]; len(rs) > 0 {
				out = append(out, median(rs))
			}
		}
	}
	return out, nil
}

// median returns the round with the median throughput, its ratio replaced
// by the median of the rounds' ratios (each to the baseline of its own
// round), and the round count.
func median(rs []result) result {
	byRate := slices.Clone(rs)
	slices.SortFunc(byRate, func(a, b result) int { return cmpFloat(a.PerSecond, b.PerSecond) })
	m := byRate[len(byRate)/2]
	ratios := make([]float64, len(rs))
	for i, r := range rs {
		ratios[i] = r.Ratio
	}
	slices.Sort(ratios)
	m.Ratio = ratios[len(ratios)/2]
	m.Rounds = len(rs)
	return m
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// errSkipStore: the store is not available here (its server is not set).
var errSkipStore = errors.New("not available")

// stores opens a fresh store per scenario and round; more register in
// their own files.
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

// record returns a record of about n bytes of JSON.
func record(n int) map[string]any {
	m := map[string]any{"employee_id": "E-1001", "department": "Sales", "status": "Active"}
	for i := 0; n > 80; i++ {
		m[fmt.Sprintf("field_%02d", i)] = strings.Repeat("x", 40)
		n -= 55
	}
	return m
}

// changeRecords returns the old and new record of the change every
// scenario sends: about n bytes each, one field changed.
func changeRecords(n int) (old, new map[string]any) {
	old, new = record(n), record(n)
	new["status"] = "Leave"
	return old, new
}

// receiverCPU tells the CPU seconds the receiver's process has used; nil
// when it is not measured (the receiver runs in this process).
var receiverCPU func() float64

// meter measures CPU time, allocations, bytes and the peak heap over a
// scenario, and the receiver's CPU time. It reads runtime/metrics, which
// does not stop the world.
type meter struct {
	cpu, gc, allocs, bytes, rcv float64
	peak                        atomic.Uint64
	stop, done                  chan struct{}
}

var meterMetrics = []string{"/gc/heap/allocs:objects", "/gc/heap/tiny/allocs:objects", "/gc/heap/allocs:bytes",
	"/memory/classes/heap/objects:bytes", "/cpu/classes/gc/total:cpu-seconds"}

func readMetrics() (allocs, bytes, heap, gc float64) {
	s := make([]metrics.Sample, len(meterMetrics))
	for i, n := range meterMetrics {
		s[i].Name = n
	}
	metrics.Read(s)
	v := func(i int) float64 {
		switch s[i].Value.Kind() {
		case metrics.KindUint64:
			return float64(s[i].Value.Uint64())
		case metrics.KindFloat64:
			return s[i].Value.Float64()
		}
		return 0
	}
	return v(0) + v(1), v(2), v(3), v(4)
}

func startMeter() *meter {
	m := &meter{stop: make(chan struct{}), done: make(chan struct{})}
	runtime.GC()
	m.cpu = cpuSeconds()
	if receiverCPU != nil {
		m.rcv = receiverCPU()
	}
	m.allocs, m.bytes, _, m.gc = readMetrics()
	go func() {
		defer close(m.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				if _, _, h, _ := readMetrics(); uint64(h) > m.peak.Load() {
					m.peak.Store(uint64(h))
				}
			}
		}
	}()
	return m
}

func (m *meter) finish(r *result) {
	close(m.stop)
	<-m.done
	cpu := cpuSeconds()
	allocs, bytes, heap, gc := readMetrics()
	// A reading of 0 is a receiver that did not answer: no figure then.
	if receiverCPU != nil && r.Deliveries > 0 && m.rcv > 0 {
		if rcv := receiverCPU(); rcv > 0 {
			r.ReceiverMicros = (rcv - m.rcv) * 1e6 / float64(r.Deliveries)
		}
	}
	if r.Deliveries > 0 {
		r.CPUMicrosPerDl = (cpu - m.cpu) * 1e6 / float64(r.Deliveries)
		r.GCMicrosPerDl = (gc - m.gc) * 1e6 / float64(r.Deliveries)
		r.AllocsPerDlv = (allocs - m.allocs) / float64(r.Deliveries)
		r.BytesPerDlv = (bytes - m.bytes) / float64(r.Deliveries)
	}
	r.PeakHeapMiB = max(float64(m.peak.Load()), heap) / (1 << 20)
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
func baseline(ctx context.Context, url string, o options, c int) (result, error) {
	secret, err := signer.GenerateSecret()
	if err != nil {
		return result{}, err
	}
	s, err := signer.New(secret)
	if err != nil {
		return result{}, err
	}
	// The body herald sends for the same change: its envelope around the
	// old and new record and the changed fields, so both sides move and
	// sign the same number of bytes.
	old, new := changeRecords(o.Payload)
	body, err := json.Marshal(map[string]any{"id": "chg-64-63-1000000", "type": "employee.updated", "timestamp": time.Now(),
		"data": map[string]any{"event_id": "chg-64-63-1000000", "table": "employee", "op": "UPDATE", "key": "E-63-1000000",
			"new": new, "old": old, "changed": []string{"status"}}})
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
				id := opID("base-", g, i)
				t0 := time.Now()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
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
				if resp.StatusCode/100 != 2 {
					errs <- fmt.Errorf("receiver answered %d", resp.StatusCode)
					return
				}
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

// waiter is a publishing goroutine waiting for the deliveries of its
// current change.
type waiter struct {
	seq  atomic.Int64 // the number of the change it waits for
	left atomic.Int32 // deliveries still to come
	done chan struct{}
}

// opID is the id of goroutine g's i-th operation. Made with strconv, not
// fmt, so that neither side pays more than it must for its ids.
func opID(prefix string, g, i int) string {
	b := make([]byte, 0, len(prefix)+24)
	b = append(b, prefix...)
	b = strconv.AppendInt(b, int64(g), 10)
	b = append(b, '-')
	return string(strconv.AppendInt(b, int64(i), 10))
}

// parseOpID returns the g and i of an id opID made with prefix.
func parseOpID(id, prefix string) (g, i int, ok bool) {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return 0, 0, false
	}
	gs, is, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	g, err1 := strconv.Atoi(gs)
	i, err2 := strconv.Atoi(is)
	return g, i, err1 == nil && err2 == nil
}

// startDispatcher starts a dispatcher on st with c workers and o.Webhooks
// webhooks on the changed table posting to url, o.Fanout of which match
// every change; observe sees its events. stop shuts it down.
func startDispatcher(ctx context.Context, url string, st store.Store, o options, c int, observe func(webhook.Event)) (
	d *webhook.Dispatcher, stop func(), err error) {
	d, err = webhook.New(webhook.Config{Store: st, AllowPrivateNetworks: true, Workers: c, Observer: webhook.ObserverFunc(observe)})
	if err != nil {
		return nil, nil, err
	}
	for i := range o.Webhooks {
		w := webhook.Webhook{Name: fmt.Sprintf("load %d", i), Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: url}
		if i >= o.Fanout {
			w.When = condition.Rule{Expr: `new.department == "Finance"`} // evaluated, never true
		}
		if _, err := d.Register(ctx, w); err != nil {
			return nil, nil, err
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	if err := d.Start(runCtx); err != nil {
		cancel()
		return nil, nil, err
	}
	return d, func() {
		defer cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = d.Shutdown(sctx)
	}, nil
}

// heraldRun publishes changes from c goroutines in a closed loop, each
// waiting until herald has the receiver's answer for every delivery of its
// change, with c workers. The observer finds the waiting goroutine from
// the change id, which names it, rather than in a map of every change.
func heraldRun(ctx context.Context, url string, st store.Store, o options, c int) (result, error) {
	prefix := "chg-" + strconv.Itoa(c) + "-"
	waiters := make([]waiter, c)
	for g := range waiters {
		waiters[g].seq.Store(-1)
		waiters[g].done = make(chan struct{}, 1)
	}
	var failed atomic.Int64
	d, stop, err := startDispatcher(ctx, url, st, o, c, func(e webhook.Event) {
		switch e.Kind {
		case webhook.EventDelivered:
			g, i, ok := parseOpID(e.MessageID, prefix)
			if !ok || g >= len(waiters) {
				return
			}
			if w := &waiters[g]; w.seq.Load() == int64(i) && w.left.Add(-1) == 0 {
				w.done <- struct{}{}
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
			timeout := time.NewTimer(time.Hour)
			defer timeout.Stop()
			w := &waiters[g]
			for i := 0; time.Now().Before(deadline); i++ {
				id := opID(prefix, g, i)
				w.seq.Store(int64(i)) // first: a late event of the last change no longer counts
				w.left.Store(int32(o.Fanout))
				t0 := time.Now()
				if _, err := d.Publish(ctx, webhook.Change{ID: id, Table: "employee", Op: webhook.Update,
					Key: opID("E-", g, i), Old: old, New: new}); err != nil {
					errs <- err
					return
				}
				timeout.Reset(30 * time.Second)
				select {
				case <-w.done:
				case <-timeout.C:
					errs <- fmt.Errorf("change %s not delivered within 30s (%d attempts failed)", id, failed.Load())
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
	fmt.Fprintf(tw, "scenario\tstore\tconc\tdeliveries/s\tratio\tp50 µs\tp99 µs\tcpu µs/dlv\tof it gc\treceiver µs/dlv\tallocs/dlv\tbytes/dlv\tpeak heap MiB\t\n")
	for _, r := range rs {
		rcv := "-"
		if r.ReceiverMicros > 0 {
			rcv = strconv.FormatFloat(r.ReceiverMicros, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2f\t%.0f\t%.0f\t%.1f\t%.1f\t%s\t%.0f\t%.0f\t%.1f\t\n", r.Scenario, r.Store, r.Concurrency,
			r.PerSecond, r.Ratio, r.P50Micros, r.P99Micros, r.CPUMicrosPerDl, r.GCMicrosPerDl, rcv, r.AllocsPerDlv, r.BytesPerDlv, r.PeakHeapMiB)
	}
	fmt.Fprintf(tw, "\nreceiver: %s; %d round(s) of %v per scenario, median shown; %d CPUs, %s\n",
		o.Receiver, o.Rounds, o.Duration, runtime.NumCPU(), runtime.Version())
	return tw.Flush()
}
