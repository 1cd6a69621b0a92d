package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
)

// The Ratio benchmarks pair herald with plain SQL operation by operation:
// each iteration runs both, in alternating order, on schemas of their own,
// and times each side. On a shared, noisy machine the separate plain and
// herald sub-benchmarks above run minutes apart under different loads;
// paired, both sides see the same load, so their ratio holds still.
//
//	HERALD_TEST_POSTGRES_URL=... go test -run '^$' -bench Ratio -benchtime 2s -count 3 ./store/postgres
//
// Each reports plain-us and herald-us (microseconds per delivery) and
// pct-of-plain: herald's throughput as a percentage of plain's, the
// figure the targets are stated in.

// side is one half of a pair: its own pool, whose server processes'
// CPU time it can read.
type side struct {
	pool *pgxpool.Pool
	pids []uint32
}

// newSide opens a pool of exactly conns connections and notes the server
// process of each.
func newSide(b *testing.B, conns int32) side {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(postgrestest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns, cfg.MinConns, cfg.MaxConnIdleTime = conns, conns, time.Hour
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	s := side{pool: pool}
	var held []*pgxpool.Conn
	for range conns {
		c, err := pool.Acquire(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, c)
		s.pids = append(s.pids, c.Conn().PgConn().PID())
	}
	for _, c := range held {
		c.Release()
	}
	return s
}

// serverCPU is the CPU time the side's server processes have used, from
// /proc/<pid>/schedstat (nanoseconds on the CPU); 0 where unreadable (a
// server on another machine).
func (s side) serverCPU() time.Duration {
	var total time.Duration
	for _, pid := range s.pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err != nil {
			return 0
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0
		}
		ns, _ := strconv.ParseInt(f[0], 10, 64)
		total += time.Duration(ns)
	}
	return total
}

// clientCPU is the CPU time this process has used.
func clientCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pair accumulates, for each side, the wall time it took and the CPU its
// server processes and this process used meanwhile.
type pair struct {
	plainSide, heraldSide side
	wall, server, client  [2]time.Duration // [0] plain, [1] herald
	n                     int              // deliveries per side
}

// run times plain and herald once each, alternating which goes first.
func (p *pair) run(b *testing.B, i int, plain, herald func() error) {
	b.Helper()
	order := [2]int{0, 1}
	if i%2 == 1 {
		order = [2]int{1, 0}
	}
	fns := [2]func() error{plain, herald}
	sides := [2]side{p.plainSide, p.heraldSide}
	for _, k := range order {
		s0, c0, t0 := sides[k].serverCPU(), clientCPU(), time.Now()
		if err := fns[k](); err != nil {
			b.Fatal(err)
		}
		p.wall[k] += time.Since(t0)
		p.client[k] += clientCPU() - c0
		p.server[k] += sides[k].serverCPU() - s0
	}
}

func (p *pair) report(b *testing.B) {
	if p.n == 0 || p.wall[1] == 0 {
		return
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(p.n) }
	b.ReportMetric(per(p.wall[0]), "plain-us")
	b.ReportMetric(per(p.wall[1]), "herald-us")
	b.ReportMetric(100*float64(p.wall[0])/float64(p.wall[1]), "pct-of-plain")
	if p.server[0] > 0 && p.server[1] > 0 {
		b.ReportMetric(per(p.server[0]), "plain-server-us")
		b.ReportMetric(per(p.server[1]), "herald-server-us")
		b.ReportMetric(per(p.client[0]), "plain-client-us")
		b.ReportMetric(per(p.client[1]), "herald-client-us")
		b.ReportMetric(100*float64(p.server[0]+p.client[0])/float64(p.server[1]+p.client[1]), "cpu-pct-of-plain")
	}
}

// pairedStores returns the two sides of a pair with conns connections
// each (one publisher needs two: herald sends its wake-ups to other
// processes on a connection of their own, after the enqueue commits): plain with a store on its schema (see plainStore) and the quoted
// schema name, herald with a store in a schema of its own.
func pairedStores(b *testing.B, conns int32) (*pair, *postgres.Store, string, *postgres.Store) {
	b.Helper()
	p := &pair{plainSide: newSide(b, conns), heraldSide: newSide(b, conns)}
	plain, schema := plainStore(b, p.plainSide.pool)
	herald := postgrestest.NewStore(b, p.heraldSide.pool)
	saveBenchWebhook(b, herald)
	return p, plain, schema, herald
}

func BenchmarkRatioEnqueue(b *testing.B) {
	ctx := context.Background()
	b.Run("single", func(b *testing.B) {
		p, _, schema, s := pairedStores(b, 2)
		q := strings.ReplaceAll(plainInsert, "{schema}", schema)
		for i := 0; b.Loop(); i++ {
			pe, pds := newEvent(i)
			he, hds := newEvent(i)
			p.run(b, i, func() error {
				_, err := p.plainSide.pool.Exec(ctx, q, pe.ID, pe.Key, pe.Time, string(pe.Payload), pds[0].ID)
				return err
			}, func() error {
				_, err := s.Enqueue(ctx, he, hds)
				return err
			})
			p.n++
		}
		p.report(b)
	})
	b.Run("in-tx", func(b *testing.B) {
		p, _, schema, s := pairedStores(b, 2)
		q := strings.ReplaceAll(plainInsert, "{schema}", schema)
		for i := 0; b.Loop(); i++ {
			pe, pds := newEvent(i)
			he, hds := newEvent(i)
			p.run(b, i, func() error {
				return pgx.BeginFunc(ctx, p.plainSide.pool, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, q, pe.ID, pe.Key, pe.Time, string(pe.Payload), pds[0].ID)
					return err
				})
			}, func() error {
				return pgx.BeginFunc(ctx, p.heraldSide.pool, func(tx pgx.Tx) error {
					_, err := s.EnqueueTx(ctx, postgres.Tx(tx), he, hds)
					return err
				})
			})
			p.n++
		}
		p.report(b)
	})
	const burst = 100
	b.Run(fmt.Sprintf("bulk-%d", burst), func(b *testing.B) {
		p, _, schema, s := pairedStores(b, 2)
		q := strings.ReplaceAll(plainInsertMany, "{schema}", schema)
		for i := 0; b.Loop(); i++ {
			ids, keys, dids, ps := make([]string, burst), make([]string, burst), make([]string, burst), make([]string, burst)
			es := make([]store.EventWithDeliveries, burst)
			for j := range burst {
				e, ds := newEvent(i*burst + j)
				ids[j], keys[j], dids[j], ps[j] = e.ID, e.Key, ds[0].ID, string(e.Payload)
				e, ds = newEvent(i*burst + j)
				es[j] = store.EventWithDeliveries{Event: e, Deliveries: ds}
			}
			p.run(b, i, func() error {
				_, err := p.plainSide.pool.Exec(ctx, q, ids, keys, time.Now(), dids, ps)
				return err
			}, func() error {
				_, err := s.EnqueueMany(ctx, es)
				return err
			})
			p.n += burst
		}
		p.report(b)
	})
}

// BenchmarkRatioClaimComplete loads a round of deliveries of distinct
// records into both schemas (untimed), then drains each with the same
// number of concurrent workers, each claiming up to 100 at a time and
// completing what it claimed; the drains alternate which goes first.
func BenchmarkRatioClaimComplete(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers-%d", workers), func(b *testing.B) {
			ctx := context.Background()
			const round = 1000
			p, ps, schema, hs := pairedStores(b, int32(workers))
			pool := p.plainSide.pool
			claimQ, ackQ := strings.ReplaceAll(plainClaim, "{schema}", schema), strings.ReplaceAll(plainAck, "{schema}", schema)
			plainStep := func() (int, error) {
				now := time.Now()
				rows, err := pool.Query(ctx, claimQ, uuid.New(), now.Add(time.Minute), now)
				if err != nil {
					return 0, err
				}
				var seqs []int64
				for rows.Next() {
					var seq int64
					var id, ev, p string
					if err := rows.Scan(&seq, &id, &ev, &p); err != nil {
						return 0, err
					}
					seqs = append(seqs, seq)
				}
				if err := rows.Err(); err != nil || len(seqs) == 0 {
					return 0, err
				}
				_, err = pool.Exec(ctx, ackQ, seqs, now)
				return len(seqs), err
			}
			heraldStep := func() (int, error) {
				now := time.Now()
				ms, err := hs.Claim(ctx, store.Claim{Now: now, Lease: time.Minute, Limit: 100})
				if err != nil || len(ms) == 0 {
					return 0, err
				}
				rs := make([]store.Result, len(ms))
				for i, m := range ms {
					rs[i] = store.Result{MessageID: m.ID, Lease: m.Lease, Outcome: store.OutcomeDelivered, Now: now,
						Attempt: &store.Attempt{MessageID: m.ID, At: now, StatusCode: 200, Latency: time.Millisecond, WebhookVersion: 1}}
				}
				return len(ms), hs.Ack(ctx, rs)
			}
			for i := 0; b.Loop(); i++ {
				// Each round's records are new ones. Reusing the last
				// round's keys would leave, in the indexes herald reads a
				// record's line through, one dead entry per earlier round
				// for every key (autovacuum does not run within a
				// benchmark's seconds), and herald's claims would wade
				// through them where plain SQL reads no line at all.
				loadFrom(b, ps, i*round, round)
				loadFrom(b, hs, i*round, round)
				p.run(b, i, func() error { return drainWith(workers, round, plainStep) },
					func() error { return drainWith(workers, round, heraldStep) })
				p.n += round
			}
			p.report(b)
		})
	}
}
