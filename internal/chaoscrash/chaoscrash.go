package chaoscrash

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/internal/failpoint"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// Environment of a child process.
const (
	envChild   = "HERALD_CHAOSCRASH_CHILD"   // set: this process is a child
	envAddr    = "HERALD_CHAOSCRASH_ADDR"    // where the store is, for the Opener
	envTargets = "HERALD_CHAOSCRASH_TARGETS" // the receiver and its trap
	envConfig  = "HERALD_CHAOSCRASH_CONFIG"  // the workload's sizes
	envShare   = "HERALD_CHAOSCRASH_SHARE"   // the share of the changes to publish
	envLeases  = "HERALD_CHAOSCRASH_LEASES"  // the file the lease log is appended to
	envSender  = "HERALD_CHAOSCRASH_SENDER"  // the child's number, its requests' epoch
)

// Points are the failpoints a run kills at, in turn, from a seeded
// start: around the store write in Publish, after a request was written,
// after its answer was read, before outcomes are written.
var Points = []string{
	"publish.before-enqueue",
	"publish.after-enqueue",
	"attempt.request-sent",
	"attempt.answered",
	"ack.before-write",
}

// hitsBefore returns at which pass of the point the child is killed,
// chosen among the passes it will make at least: each child publishes the
// changes of the children before it again and some new ones (about three
// messages each), and writes outcomes in batches.
func hitsBefore(rng *rand.Rand, point string, published, fresh int) int {
	var most int
	switch point {
	case "publish.before-enqueue", "publish.after-enqueue":
		most = published
	case "ack.before-write":
		most = 5
	default:
		most = fresh
	}
	return 1 + rng.IntN(max(1, most))
}

// Opener opens the store at addr.
type Opener func(ctx context.Context, addr string) (store.Store, error)

// Child runs the child's part and exits when this process is a chaos
// crash run's child; otherwise it returns at once. Call it first in
// TestMain.
func Child(open Opener) {
	if os.Getenv(envChild) == "" {
		return
	}
	if err := child(open); err != nil {
		fmt.Fprintln(os.Stderr, "chaoscrash child:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func child(open Opener) error {
	if err := failpoint.ArmFromEnv(); err != nil {
		return err
	}
	cfg, err := decodeConfig(os.Getenv(envConfig))
	if err != nil {
		return err
	}
	tg, err := webhooktest.ParseChaosTargets(os.Getenv(envTargets))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	st, err := open(ctx, os.Getenv(envAddr))
	if err != nil {
		return err
	}
	defer st.Close()
	// Every lease given, let go or refused goes to the parent's file as it
	// happens: a kill loses none of it.
	lf, err := os.OpenFile(os.Getenv(envLeases), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	sender, err := strconv.Atoi(os.Getenv(envSender))
	if err != nil {
		return fmt.Errorf("%s: %w", envSender, err)
	}
	leases := webhooktest.NewLeaseLog(lf, sender)
	w := webhooktest.NewChaosWorkload(cfg)
	dc := w.DispatcherConfig(leases.Store(st), tg)
	dc.LeaseDuration = 2 * time.Second // what the next child waits for at most
	dc.Retention = webhook.Retention{Disabled: true}
	dc.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := webhook.New(dc)
	if err != nil {
		return err
	}
	if err := w.Register(ctx, d, tg); err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Shutdown(context.Background())
	share, err := strconv.ParseFloat(os.Getenv(envShare), 64)
	if err != nil {
		return fmt.Errorf("%s: %w", envShare, err)
	}
	if err := w.PublishWith(ctx, share, func(ctx context.Context, c webhook.Change) error {
		_, err := d.Publish(ctx, c)
		return err
	}); err != nil {
		return err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := w.Settled(ctx, st)
		if err != nil {
			return err
		}
		if ok {
			return errors.Join(d.Shutdown(ctx), leases.Err())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deliveries still pending: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// encodeConfig passes the workload's sizes to a child; the fault rate is
// the parent's receiver's business.
func encodeConfig(c webhooktest.ChaosConfig) string {
	return fmt.Sprintf("%d %d %d %d %d %d %d %d", c.Seed, c.Tables, c.Changes, c.Keys, c.Publishers, c.Workers,
		c.AttemptTimeout, c.Timeout)
}

func decodeConfig(s string) (webhooktest.ChaosConfig, error) {
	f := strings.Fields(s)
	if len(f) != 8 {
		return webhooktest.ChaosConfig{}, fmt.Errorf("%s %q: want 8 numbers", envConfig, s)
	}
	n := make([]int64, len(f))
	for i, v := range f {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return webhooktest.ChaosConfig{}, fmt.Errorf("%s: %w", envConfig, err)
		}
		n[i] = x
	}
	return webhooktest.ChaosConfig{Seed: uint64(n[0]), Tables: int(n[1]), Changes: int(n[2]), Keys: int(n[3]),
		Publishers: int(n[4]), Workers: int(n[5]), AttemptTimeout: time.Duration(n[6]), Timeout: time.Duration(n[7])}, nil
}

// quiesceWait bounds the wait, once a child has ended, for the receiver to
// finish with its connections: a slow body trickles for 2s at most, and a
// dead child's connections end as soon as the server reads them.
const quiesceWait = 10 * time.Second

// maxChildLog bounds what is kept of a child's output.
const maxChildLog = 16 << 10

// Config sizes a run.
type Config struct {
	Open  Opener
	Addr  string // passed to Open, in the children and in the parent
	Chaos webhooktest.ChaosConfig
	// Kills is the number of children to kill; 0: 8.
	Kills int
	// Budget bounds the whole run; 0: 3 minutes.
	Budget time.Duration
}

// Report is what a run observed.
type Report struct {
	webhooktest.ChaosReport
	Kills     map[string]int // kills by failpoint
	CleanRuns int            // children that ended before their failpoint fired
	Children  int            // every child started, the last included
}

// String gives every figure of the report on one line, for a test log.
func (r Report) String() string {
	return fmt.Sprintf("%s children=%d kills=%v clean_runs=%d", r.ChaosReport, r.Children, r.Kills, r.CleanRuns)
}

// Failures lists the promises the run saw broken, those of the chaos run
// and one more: no duplicate may come from an outcome lost but at a kill
// or to a lease that ran out.
func (r Report) Failures() []string {
	out := r.ChaosReport.Failures()
	if n := r.DuplicateCauses[webhooktest.CauseUnrecorded]; n > 0 {
		out = append(out, fmt.Sprintf("%d duplicates from outcomes lost other than at a kill", n))
	}
	if sum(r.Kills) == 0 {
		out = append(out, "no child was killed")
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Run runs the chaos workload through children killed at seeded moments
// and returns what it observed. It fails the test only when the run
// cannot complete; the caller asserts on the report.
func Run(t *testing.T, cfg Config) Report {
	t.Helper()
	if cfg.Kills == 0 {
		cfg.Kills = 8
	}
	if cfg.Budget == 0 {
		cfg.Budget = 3 * time.Minute
	}
	leaseFile := filepath.Join(t.TempDir(), "leases.jsonl") // the children's lease logs
	w := webhooktest.NewChaosWorkload(cfg.Chaos)
	cfg.Chaos = w.Config()
	cfg.Chaos.Timeout = cfg.Budget
	ctx, cancel := context.WithTimeout(t.Context(), cfg.Budget)
	defer cancel()
	start := time.Now()
	rcv := webhooktest.NewChaosReceiver(t, cfg.Chaos.Seed, cfg.Chaos.FaultRate)
	for _, s := range w.Secrets() {
		rcv.AddSecret(s)
	}

	rng := rand.New(rand.NewPCG(cfg.Chaos.Seed, 0xc4a5))
	first := rng.IntN(len(Points))
	rep := Report{Kills: map[string]int{}}
	pendingAt := map[int]map[string]bool{} // child killed -> deliveries pending after the kill
	killed := map[int]bool{}
	for kills := 0; kills < cfg.Kills; {
		rep.Children++
		if rep.Children > 3*cfg.Kills {
			t.Fatalf("%d children ran but only %d were killed: the failpoints are not reached", rep.Children-1, kills)
		}
		// Child k publishes the first k/(Kills+1) of the changes, so each
		// has new work however far the one before it got.
		share := float64(kills+1) / float64(cfg.Kills+1)
		point := Points[(first+kills)%len(Points)]
		fresh := cfg.Chaos.Changes / (cfg.Kills + 1)
		spec := fmt.Sprintf("%s=kill@%d", point, hitsBefore(rng, point, int(share*float64(cfg.Chaos.Changes)), fresh))
		rcv.SetEpoch(rep.Children)
		if !runChild(ctx, t, cfg, rcv, leaseFile, rep.Children, spec, share) {
			rep.CleanRuns++
			continue
		}
		kills++
		killed[rep.Children] = true
		rep.Kills[point]++
		pendingAt[rep.Children] = pending(ctx, t, cfg)
	}
	rcv.Calm()
	rep.Children++
	rcv.SetEpoch(rep.Children)
	if runChild(ctx, t, cfg, rcv, leaseFile, rep.Children, "", 1) {
		t.Fatal("the last child, without failpoints, was killed")
	}

	st, err := cfg.Open(ctx, cfg.Addr)
	require.NoError(t, err)
	defer st.Close()
	lf, err := os.Open(leaseFile)
	require.NoError(t, err)
	leases, err := webhooktest.ReadLeaseLog(lf)
	_ = lf.Close()
	require.NoError(t, err)
	require.LessOrEqual(t, leases.Cut(), len(killed), "only a kill cuts a lease record short")
	cr, err := w.Check(ctx, st, rcv, webhooktest.ChaosEvidence{
		// A request a killed child sent, processed, whose delivery was
		// still pending after the kill: its outcome died with the child.
		InFlight: func(a webhooktest.ChaosArrival, webhookID, eventID string) bool {
			return pendingAt[a.Epoch][webhookID+" "+eventID]
		},
		Leases: leases,
		Killed: killed,
	})
	require.NoError(t, err)
	cr.Elapsed, cr.BreakerOpenings = time.Since(start), -1
	rep.ChaosReport = cr
	return rep
}

// runChild runs one child to its end and reports whether its failpoint
// killed it. Any other end but a clean exit fails the test. It returns
// once the receiver has recorded every request the child sent, so each
// is tagged with the child's epoch, however late the server read it.
func runChild(ctx context.Context, t *testing.T, cfg Config, rcv *webhooktest.ChaosReceiver, leaseFile string, n int, spec string, share float64) bool {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envAddr+"="+cfg.Addr, envTargets+"="+rcv.Targets().String(),
		envConfig+"="+encodeConfig(cfg.Chaos), envShare+"="+strconv.FormatFloat(share, 'g', -1, 64), envLeases+"="+leaseFile, envSender+"="+strconv.Itoa(n),
		failpoint.EnvVar+"="+spec)
	out, err := cmd.CombinedOutput()
	endLine(t, leaseFile) // a kill may have cut the child's last record short
	if len(out) > 0 {
		// The dispatcher's warnings (a lease lost, a breaker opened) tell
		// what happened should the run fail.
		if len(out) > maxChildLog {
			out = append([]byte("..."), out[len(out)-maxChildLog:]...)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("child %d (%q) said:\n%s", n, spec, out)
			}
		})
	}
	qctx, cancel := context.WithTimeout(ctx, quiesceWait)
	defer cancel()
	if qerr := rcv.Quiesce(qctx); qerr != nil {
		t.Fatalf("child %d (%q) has ended, yet the receiver is still handling its requests: %v", n, spec, qerr)
	}
	var exit *exec.ExitError
	if err == nil {
		return false
	}
	if errors.As(err, &exit) && spec != "" && ctx.Err() == nil {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("the run's budget ran out while child %d (%q) ran: %v:\n%s", n, spec, err, out)
	}
	t.Fatalf("child %d (%q) ended with %v:\n%s", n, spec, err, out)
	return false
}

// endLine ends the lease log's last line, if a kill left it unended, so
// the next child's records start on a line of their own.
func endLine(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer f.Close()
	fi, err := f.Stat()
	require.NoError(t, err)
	if fi.Size() == 0 {
		return
	}
	last := make([]byte, 1)
	_, err = f.ReadAt(last, fi.Size()-1)
	require.NoError(t, err)
	if last[0] != '\n' {
		_, err = f.Write([]byte{'\n'})
		require.NoError(t, err)
	}
}

// pending returns the deliveries the store holds pending, by "webhook
// event".
func pending(ctx context.Context, t *testing.T, cfg Config) map[string]bool {
	t.Helper()
	st, err := cfg.Open(ctx, cfg.Addr)
	require.NoError(t, err)
	defer st.Close()
	out := map[string]bool{}
	f := store.DeliveryFilter{Status: store.Pending, Limit: 5000}
	for {
		page, err := st.Deliveries(ctx, f)
		require.NoError(t, err)
		for _, d := range page {
			out[d.WebhookID+" "+d.EventID] = true
		}
		if len(page) < f.Limit {
			return out
		}
		f.After = page[len(page)-1].Seq
	}
}
