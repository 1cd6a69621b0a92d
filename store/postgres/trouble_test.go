package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// proxy stands between a test's pool and the PostgreSQL server, so the
// test can take "the database" away from its own connections, and only
// those: down closes every connection it carries and stops listening (a
// new connection is refused, as by a server that is restarting); up
// listens again on the same address.
type proxy struct {
	target string
	addr   string
	mu     sync.Mutex
	l      net.Listener
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	require.NoError(t, p.up())
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) up() error {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.l, p.addr = l, l.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c)
			}()
		}
	}()
	return nil
}

func (p *proxy) serve(c net.Conn) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.l == nil { // went down meanwhile
		p.mu.Unlock()
		_, _ = c.Close(), s.Close()
		return
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(s, c)
	go pipe(c, s)
	<-done
	_, _ = c.Close(), s.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
}

// claimCounter counts the claims the dispatcher makes; everything else,
// notifications included, goes to the Postgres store as it is.
type claimCounter struct {
	*postgres.Store
	claims atomic.Int64
}

func (c *claimCounter) Claim(ctx context.Context, cl store.Claim) ([]store.Message, error) {
	c.claims.Add(1)
	return c.Store.Claim(ctx, cl)
}

// troublePool is a pool whose connections go through a proxy, carry an
// application_name of their own (so the test can find its backends, and
// only them), and give up connecting quickly.
func troublePool(t *testing.T) (*pgxpool.Pool, *proxy, string) {
	u, err := url.Parse(postgrestest.URL(t))
	require.NoError(t, err)
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	p := newProxy(t, net.JoinHostPort(u.Hostname(), port))
	cfg, err := pgxpool.ParseConfig(u.String())
	require.NoError(t, err)
	host, pport, err := net.SplitHostPort(p.addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(pport)
	require.NoError(t, err)
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = host, uint16(n), nil
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	app := "herald-trouble-" + hex.EncodeToString(b)
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, p, app
}

// TestDatabaseTrouble runs the chaos workload while the database goes
// away under it: first the server ends every connection of this test
// (pg_terminate_backend), then the database is unreachable for a while,
// as during a restart (every connection dropped, new ones refused). While
// it is away, Publish fails rather than pretending, and the workers back
// off instead of spinning; once it is back they recover by themselves,
// and nothing is lost, out of order, or sent where it should not go.
func TestDatabaseTrouble(t *testing.T) {
	t.Parallel()
	admin := postgrestest.Pool(t, 2)
	pool, px, app := troublePool(t)
	schema := postgrestest.Schema(t, admin)
	postgrestest.StoreIn(t, admin, schema) // migrated over a healthy connection
	s, err := postgres.New(pool, postgres.Options{Schema: schema})
	require.NoError(t, err)
	st := &claimCounter{Store: s}

	changes, outage := 4000, 3*time.Second
	if testing.Short() {
		changes = 1000
	}
	w := webhooktest.NewChaosWorkload(webhooktest.ChaosConfig{Seed: 7, Changes: changes, Keys: changes / 10, FaultRate: 0.1})
	rcv := webhooktest.NewChaosReceiver(t, 7, w.Config().FaultRate)
	for _, s := range w.Secrets() {
		rcv.AddSecret(s)
	}
	tg := rcv.Targets()
	leases := webhooktest.NewLeaseLog(nil, 0)
	cfg := w.DispatcherConfig(leases.Store(st), tg)
	cfg.LeaseDuration = 2 * time.Second // outcomes lost with the connection come back soon
	d, err := webhook.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	require.NoError(t, w.Register(ctx, d, tg))
	require.NoError(t, d.Start(ctx))
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		assert.NoError(t, d.Shutdown(sctx))
	}()

	// An outbox relay: each change is published again until it is
	// stored; an error is never taken for success.
	var (
		published  atomic.Int64
		failures   atomic.Int64
		downMu     sync.Mutex
		downFrom   time.Time // the database is away from here ...
		downTo     time.Time // ... to here
		pretended  int       // Publish calls made and ended inside that window without an error
		failedAway int       // and with one
	)
	away := func(from, to time.Time) bool {
		downMu.Lock()
		defer downMu.Unlock()
		return !downFrom.IsZero() && from.After(downFrom) && (downTo.IsZero() || to.Before(downTo))
	}
	relay := func(ctx context.Context, c webhook.Change) error {
		for {
			start := time.Now()
			_, err := d.Publish(ctx, c)
			inside := away(start, time.Now())
			if inside {
				downMu.Lock()
				if err == nil {
					pretended++
				} else {
					failedAway++
				}
				downMu.Unlock()
			}
			if err == nil {
				published.Add(1)
				return nil
			}
			if ctx.Err() != nil {
				return err
			}
			failures.Add(1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	start := time.Now()
	pubDone := make(chan error, 1)
	go func() { pubDone <- w.PublishWith(ctx, 1, relay) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-tick.C:
			}
		}
	}

	// 1. The server ends every connection of this test, and only this
	// test's: they are found by the application_name its pool sets.
	waitFor("a quarter of the changes", func() bool { return published.Load() >= int64(changes/4) })
	var killed int
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND pid <> pg_backend_pid()) t`, app).Scan(&killed))
	t.Logf("terminated %d backends of %s", killed, app)
	assert.Positive(t, killed, "the test's connections were ended by the server")

	// 2. The database goes away: every connection dropped, new ones
	// refused.
	waitFor("half of the changes", func() bool { return published.Load() >= int64(changes/2) })
	px.down()
	claimsFrom := st.claims.Load()
	downMu.Lock()
	downFrom = time.Now()
	downMu.Unlock()
	time.Sleep(outage) // the outage itself: time passing is the fault
	downMu.Lock()
	downTo = time.Now()
	downMu.Unlock()
	claims := st.claims.Load() - claimsFrom
	require.NoError(t, px.up())
	back := time.Now()
	claimsAtBack := st.claims.Load()
	t.Logf("while the database was away (%v): %d claims, %d publish calls failed, %d pretended", outage, claims, failedAway, pretended)
	// Backing off from 200ms, doubling up to 5s, a claimer makes about
	// four calls in three seconds; wake-ups from attempts that finish add
	// a few. A busy loop would make thousands.
	assert.LessOrEqual(t, claims, int64(15), "workers back off while the database is away")
	assert.Positive(t, claims, "workers keep trying while the database is away")
	assert.Positive(t, failedAway, "Publish failed while the database was away")
	assert.Zero(t, pretended, "no Publish succeeded while the database was away")

	// 3. They recover by themselves.
	waitFor("a claim after the database came back", func() bool { return st.claims.Load() > claimsAtBack })
	t.Logf("a claim %v after the database came back", time.Since(back).Round(time.Millisecond))
	require.NoError(t, <-pubDone)
	waitFor("every message tried", func() bool { return w.Tried(rcv) })
	rcv.Calm()
	waitFor("nothing pending", func() bool {
		ok, err := w.Settled(ctx, st)
		return err == nil && ok
	})
	rep, err := w.Check(ctx, st, rcv, webhooktest.ChaosEvidence{Leases: leases})
	require.NoError(t, err)
	rep.Elapsed = time.Since(start)
	t.Log(rep)
	t.Logf("publish calls failed and retried: %d", failures.Load())
	assert.Empty(t, rep.Failures())
	assert.Zero(t, rep.DuplicateCauses[webhooktest.CauseKill])
}
