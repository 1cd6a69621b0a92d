// Package crashtest proves, for a durable store, that a dispatcher killed
// at any moment loses nothing.
//
// # How
//
// The test re-executes its own binary as a child process that opens the
// store, starts a dispatcher and publishes changes to two webhooks (one
// sending records one by one, one in batches) on a receiver served by the
// parent. Each child is armed (package internal/failpoint) to SIGKILL
// itself at a seeded moment: around the store write in Publish, after a
// request was written, after its answer was read, or before its outcome
// is recorded. After each kill the parent notes which requests the
// receiver got whose outcome the store did not record (those alone may
// come again), then starts the next child, which republishes every change
// with the same ids, as an outbox relay would after a crash. A last child
// runs without failpoints until nothing is pending.
//
// Then every change must have reached each webhook at least once, every
// delivery must be delivered, republishing must have created no delivery,
// each record's first arrivals must be in publishing order, and the
// duplicates must not outnumber the requests that were in flight at the
// kills.
//
// # Use
//
// In the store's tests:
//
//	func TestMain(m *testing.M) {
//		crashtest.Child(open) // does not return in a child process
//		goleak.VerifyTestMain(m)
//	}
//
//	func TestCrash(t *testing.T) { crashtest.Run(t, crashtest.Config{Open: open, Addr: path}) }
package crashtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/internal/failpoint"
	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/webhook"
)

// Environment of a child process.
const (
	envChild   = "HERALD_CRASH_CHILD"   // set: this process is a child
	envAddr    = "HERALD_CRASH_ADDR"    // where the store is, for Opener
	envURL     = "HERALD_CRASH_URL"     // the receiver
	envSecret  = "HERALD_CRASH_SECRET"  // the webhooks' signing secret
	envChanges = "HERALD_CRASH_CHANGES" // publish changes 0 .. n-1
)

// Points are the failpoints a crash test chooses from.
var Points = []string{
	"publish.before-enqueue",
	"publish.after-enqueue",
	"attempt.request-sent",
	"attempt.answered",
	"ack.before-write",
}

// keys is the number of records the changes are spread over: few enough
// that every record has a chain of changes whose order can be checked.
const keys = 13

// Opener opens the store at addr.
type Opener func(ctx context.Context, addr string) (store.Store, error)

// Child runs the child's part and exits when this process is a crash
// test's child; otherwise it returns at once. Call it first in TestMain.
func Child(open Opener) {
	if os.Getenv(envChild) == "" {
		return
	}
	if err := child(open); err != nil {
		fmt.Fprintln(os.Stderr, "crashtest child:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

var hooks = []struct {
	id, path string
	batch    int
}{
	{"crash-single", "/single", 0},
	{"crash-batch", "/batch", 4},
}

func child(open Opener) error {
	if err := failpoint.ArmFromEnv(); err != nil {
		return err
	}
	n, err := strconv.Atoi(os.Getenv(envChanges))
	if err != nil {
		return fmt.Errorf("%s: %w", envChanges, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := open(ctx, os.Getenv(envAddr))
	if err != nil {
		return err
	}
	defer st.Close()
	d, err := webhook.New(webhook.Config{
		Store:                st,
		AllowPrivateNetworks: true,
		Workers:              2,
		AttemptTimeout:       time.Second,
		LeaseDuration:        2 * time.Second, // what a restart waits for at most
		PollInterval:         20 * time.Millisecond,
		Retry:                webhook.RetryPolicy{MaxAttempts: 1000, InitialInterval: 50 * time.Millisecond, MaxInterval: 200 * time.Millisecond, Jitter: -1},
		Retention:            webhook.Retention{Disabled: true},
	})
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if _, err := d.Webhook(ctx, h.id); err == nil {
			continue
		} else if !errors.Is(err, webhook.ErrNotFound) {
			return err
		}
		_, err := d.Register(ctx, webhook.Webhook{ID: h.id, Name: h.id, Table: "attendance", Ops: []webhook.Op{webhook.Insert},
			URL: os.Getenv(envURL) + h.path, MaxBatch: h.batch, Secret: os.Getenv(envSecret)})
		if err != nil {
			return err
		}
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Shutdown(context.Background())
	// Publish every change up to n again, with the same ids, in order, as
	// an outbox relay does after a crash: the ones stored before create
	// nothing.
	for i := range n {
		if _, err := d.Publish(ctx, change(i)); err != nil {
			return err
		}
	}
	for {
		pending, err := d.Deliveries(ctx, webhook.DeliveryQuery{Status: webhook.Pending, Limit: 1})
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return d.Shutdown(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deliveries still pending: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func change(i int) webhook.Change {
	return webhook.Change{ID: eventID(i), Table: "attendance", Op: webhook.Insert, Key: fmt.Sprintf("E%02d", i%keys),
		New: map[string]any{"n": i, "status": "Present"}}
}

func eventID(i int) string { return fmt.Sprintf("change-%05d", i) }

// Config sizes a crash test.
type Config struct {
	Open Opener
	Addr string // passed to Open, in the children and in the parent
	// Kills is the number of children to kill; 0: 20, or 6 with -short.
	Kills int
	// PerRun is the number of new changes each child publishes; 0: 10.
	PerRun int
	// Seed chooses the kill points; 0: HERALD_CRASH_SEED, else 1.
	Seed uint64
	// Budget bounds the whole test; 0: 60s. A run with -short takes
	// about 10s, but a loaded machine may stretch it several times.
	Budget time.Duration
}

// Report is what a crash test observed.
type Report struct {
	Kills        map[string]int // kills by point
	InFlight     map[string]int // requests whose outcome a kill lost, by point
	CleanRuns    int            // children that finished before their point fired
	Changes      int
	Requests     int
	Duplicates   int // record arrivals beyond the first
	MaxPerRecord int
}

// receipt is one record that arrived at the receiver.
type receipt struct {
	run  int
	hook string
	n    int
	key  string
}

// receiver records every record of every request, tagged with the child
// run that sent it, and answers 200.
type receiver struct {
	secret string
	mu     sync.Mutex
	run    int
	got    []receipt
	bad    []string
	reqs   int

	// Connections, for quiesce: the open ones by the order the server
	// accepted them, and a channel closed (and replaced) whenever one
	// opens or ends.
	connMu   sync.Mutex
	accepted uint64
	open     map[net.Conn]uint64
	changed  chan struct{}
}

func newReceiver(secret string) *receiver {
	return &receiver{secret: secret, open: map[net.Conn]uint64{}, changed: make(chan struct{})}
}

// connState follows the server's connections, reported in the order the
// server accepted them.
func (rc *receiver) connState(conn net.Conn, st http.ConnState) {
	rc.connMu.Lock()
	defer rc.connMu.Unlock()
	switch st {
	case http.StateNew:
		rc.accepted++
		rc.open[conn] = rc.accepted
	case http.StateHijacked, http.StateClosed:
		if _, ok := rc.open[conn]; !ok {
			return
		}
		delete(rc.open, conn)
	default:
		return
	}
	close(rc.changed)
	rc.changed = make(chan struct{})
}

// quiesce returns once the server has finished with every connection
// opened to it before the call, so every request a dead child wrote has
// been counted for it, however late the server read it: the server
// accepts connections in the order they were made, so once it has
// accepted one quiesce dials itself, it has accepted every earlier one.
func (rc *receiver) quiesce(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	me := conn.LocalAddr().String()
	for {
		rc.connMu.Lock()
		var mine uint64
		for oc, n := range rc.open {
			if oc.RemoteAddr().String() == me {
				mine = n
			}
		}
		busy := 0
		for _, n := range rc.open {
			if mine == 0 || n < mine {
				busy++
			}
		}
		changed := rc.changed
		rc.connMu.Unlock()
		if mine != 0 && busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d connections still open: %w", busy, ctx.Err())
		case <-changed:
		}
	}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.reqs++
	if err != nil {
		// The child died while sending: nothing arrived.
		return
	}
	if err := signer.Verify(rc.secret, r.Header, body); err != nil {
		rc.bad = append(rc.bad, fmt.Sprintf("%s: signature: %v", r.Header.Get("Webhook-Id"), err))
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	type record struct {
		Key string `json:"key"`
		New struct {
			N int `json:"n"`
		} `json:"new"`
	}
	var recs []record
	if err := json.Unmarshal(body, &env); err == nil && len(env.Data) > 0 && env.Data[0] == '[' {
		err = json.Unmarshal(env.Data, &recs)
	} else if err == nil {
		var one record
		err = json.Unmarshal(env.Data, &one)
		recs = []record{one}
	}
	for _, rec := range recs {
		rc.got = append(rc.got, receipt{run: rc.run, hook: r.URL.Path, n: rec.New.N, key: rec.Key})
	}
	w.WriteHeader(http.StatusOK)
}

// Run runs a crash test and returns what it observed.
func Run(t *testing.T, cfg Config) Report {
	t.Helper()
	if cfg.Kills == 0 {
		cfg.Kills = 20
		if testing.Short() {
			cfg.Kills = 6
		}
	}
	if cfg.PerRun == 0 {
		cfg.PerRun = 10
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
		if s, err := strconv.ParseUint(os.Getenv("HERALD_CRASH_SEED"), 10, 64); err == nil {
			cfg.Seed = s
		}
	}
	if cfg.Budget == 0 {
		cfg.Budget = 60 * time.Second
	}
	t.Logf("crash test: %d kills, seed %d (set HERALD_CRASH_SEED to vary)", cfg.Kills, cfg.Seed)
	ctx, cancel := context.WithTimeout(t.Context(), cfg.Budget)
	defer cancel()
	secret, err := signer.GenerateSecret()
	require.NoError(t, err)
	rc := newReceiver(secret)
	srv := httptest.NewUnstartedServer(rc)
	srv.Config.ConnState = rc.connState
	srv.Start()
	defer srv.Close()

	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed))
	rep := Report{Kills: map[string]int{}, InFlight: map[string]int{}}
	total := (cfg.Kills + 1) * cfg.PerRun
	kills, run := 0, 0
	for kills < cfg.Kills {
		run++
		if run > 3*cfg.Kills {
			t.Fatalf("%d children ran but only %d were killed: the failpoints are not reached", run-1, kills)
		}
		point := Points[rng.IntN(len(Points))]
		// Each child publishes PerRun new changes, so it reaches a
		// publish or attempt point at least PerRun times; acknowledgements
		// are written in batches, so fewer times.
		most := cfg.PerRun / 2
		if point == "ack.before-write" {
			most = 2
		}
		spec := fmt.Sprintf("%s=kill@%d", point, 1+rng.IntN(most))
		upto := min(total, (kills+1)*cfg.PerRun)
		killed := runChild(ctx, t, rc, run, srv.URL, secret, cfg.Addr, spec, upto)
		if !killed {
			rep.CleanRuns++
			continue
		}
		kills++
		rep.Kills[point]++
		rep.InFlight[point] += inFlight(ctx, t, cfg, rc, run)
	}
	run++
	if runChild(ctx, t, rc, run, srv.URL, secret, cfg.Addr, "", total) {
		t.Fatal("the last child, without failpoints, was killed")
	}
	check(ctx, t, cfg, rc, total, &rep)
	return rep
}

// runChild runs one child to its end and reports whether it was killed
// by its failpoint. Any other end but a clean exit fails the test.
func runChild(ctx context.Context, t *testing.T, rc *receiver, run int, url, secret, addr, spec string, changes int) bool {
	t.Helper()
	rc.mu.Lock()
	rc.run = run
	rc.mu.Unlock()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envAddr+"="+addr, envURL+"="+url, envSecret+"="+secret,
		fmt.Sprintf("%s=%d", envChanges, changes), failpoint.EnvVar+"="+spec)
	out, err := cmd.CombinedOutput()
	// The child is gone; wait for the requests it sent to be handled, so
	// each is counted for the run that sent it.
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if qerr := rc.quiesce(qctx, strings.TrimPrefix(url, "http://")); qerr != nil {
		t.Fatalf("the receiver is still handling requests of a dead child: %v", qerr)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return false
	case errors.As(err, &exit) && spec != "":
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && ctx.Err() == nil {
			return true
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("the test's budget ran out while child %d (%q) ran: %v:\n%s", run, spec, err, out)
	}
	t.Fatalf("child %d (%q) ended with %v:\n%s", run, spec, err, out)
	return false
}

// inFlight counts the records that arrived during run whose delivery the
// store still holds pending: their outcome died with the child, so they
// will be sent again.
func inFlight(ctx context.Context, t *testing.T, cfg Config, rc *receiver, run int) int {
	t.Helper()
	st, err := cfg.Open(ctx, cfg.Addr)
	require.NoError(t, err)
	defer st.Close()
	pending, err := st.Deliveries(ctx, store.DeliveryFilter{Status: store.Pending})
	require.NoError(t, err)
	open := map[string]bool{}
	for _, d := range pending {
		open[d.WebhookID+" "+d.EventID] = true
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, r := range rc.got {
		if r.run == run && open[hookID(r.hook)+" "+eventID(r.n)] {
			n++
		}
	}
	return n
}

func hookID(path string) string {
	for _, h := range hooks {
		if h.path == path {
			return h.id
		}
	}
	return "?"
}

func check(ctx context.Context, t *testing.T, cfg Config, rc *receiver, total int, rep *Report) {
	t.Helper()
	st, err := cfg.Open(ctx, cfg.Addr)
	require.NoError(t, err)
	defer st.Close()
	all, err := st.Deliveries(ctx, store.DeliveryFilter{})
	require.NoError(t, err)
	assert.Len(t, all, total*len(hooks), "one delivery per change and webhook: republishing created none")
	for _, d := range all {
		if d.Status != store.Delivered {
			t.Errorf("delivery %s of %s is %s after the last child", d.ID, d.EventID, d.Status)
		}
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	assert.Empty(t, rc.bad, "every request is signed")
	rep.Changes, rep.Requests = total, rc.reqs
	count := map[string]int{}
	lastFirst := map[string]int{} // hook+key -> n of the last first arrival
	for _, r := range rc.got {
		id := r.hook + " " + strconv.Itoa(r.n)
		count[id]++
		if count[id] > 1 {
			continue
		}
		chain := r.hook + " " + r.key
		if prev, ok := lastFirst[chain]; ok && r.n < prev {
			t.Errorf("%s: change %d arrived first after change %d: record order broken", chain, r.n, prev)
		}
		lastFirst[chain] = r.n
	}
	for _, h := range hooks {
		for i := range total {
			if count[h.path+" "+strconv.Itoa(i)] == 0 {
				t.Errorf("change %d never reached %s", i, h.id)
			}
		}
	}
	inflight := 0
	for _, n := range rep.InFlight {
		inflight += n
	}
	for _, c := range count {
		rep.Duplicates += c - 1
		rep.MaxPerRecord = max(rep.MaxPerRecord, c)
	}
	points := slices.Sorted(func(yield func(string) bool) {
		for p := range rep.Kills {
			if !yield(p) {
				return
			}
		}
	})
	var b strings.Builder
	for _, p := range points {
		fmt.Fprintf(&b, " %s: %d kills, %d in flight;", p, rep.Kills[p], rep.InFlight[p])
	}
	t.Logf("crash test: %d changes × %d webhooks, %d requests, %d duplicate arrivals, %d lost in flight at kills, %d clean runs;%s",
		total, len(hooks), rep.Requests, rep.Duplicates, inflight, rep.CleanRuns, b.String())
	assert.LessOrEqual(t, rep.Duplicates, inflight, "duplicates come only from requests in flight at a kill")
}
