package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/store/postgres/postgrestest"
	"github.com/heraldhr/herald/webhook"
)

// The test binary runs as a dispatcher process when childEnv names a
// schema: it delivers until its standard input closes, then shuts down.
const childEnv = "HERALD_TEST_DISPATCHER_SCHEMA"

func runChild() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := pgxpool.New(ctx, os.Getenv(postgrestest.EnvURL))
	if err != nil {
		log.Error("connect", "error", err)
		return 1
	}
	defer pool.Close()
	s, err := postgres.New(pool, postgres.Options{Schema: os.Getenv(childEnv), Logger: log})
	if err != nil {
		log.Error("store", "error", err)
		return 1
	}
	d, err := webhook.New(webhook.Config{Store: s, Workers: 16, AllowPrivateNetworks: true, Logger: log,
		Retry: webhook.RetryPolicy{InitialInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, MaxAttempts: 50}})
	if err != nil {
		log.Error("dispatcher", "error", err)
		return 1
	}
	if err := d.Start(ctx); err != nil {
		log.Error("start", "error", err)
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := d.Shutdown(sctx); err != nil {
		log.Error("shutdown", "error", err)
		return 1
	}
	return 0
}

// receiver counts deliveries and checks that no message is ever attempted
// twice at once and that each record's changes arrive in order.
type receiver struct {
	mu         sync.Mutex
	inFlight   map[string]bool
	concurrent []string
	last       map[string]int // record key -> last n delivered
	delivered  map[string]bool
	disorder   []string
	dupes      int
	attempts   int
	want       int
	done       chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	id := req.Header.Get("webhook-id")
	var body struct {
		Data struct {
			Key string         `json:"key"`
			New map[string]any `json:"new"`
		} `json:"data"`
	}
	b, _ := io.ReadAll(req.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := int(body.Data.New["n"].(float64))
	r.mu.Lock()
	if r.inFlight[id] {
		r.concurrent = append(r.concurrent, id)
	}
	r.inFlight[id] = true
	r.attempts++
	// Every 40th record fails the first attempt of each change, to put
	// retries (and changes waiting behind them) into the run.
	k, _ := strconv.Atoi(strings.TrimPrefix(body.Data.Key, "K"))
	fail := k%40 == 7 && !r.delivered[id+"/failed"]
	if fail {
		r.delivered[id+"/failed"] = true
	}
	r.mu.Unlock()
	// A receiver takes a moment; a second attempt of the same message
	// from another process would overlap this one.
	time.Sleep(time.Millisecond)

	status := http.StatusOK
	if fail {
		status = http.StatusServiceUnavailable
	}

	r.mu.Lock()
	delete(r.inFlight, id)
	if !fail {
		switch {
		case r.delivered[id]:
			r.dupes++
		case n != r.last[body.Data.Key]+1:
			r.disorder = append(r.disorder, fmt.Sprintf("%s: %d after %d", body.Data.Key, n, r.last[body.Data.Key]))
			fallthrough
		default:
			r.delivered[id] = true
			r.last[body.Data.Key] = n
			if len(r.last) > 0 && r.count() == r.want {
				close(r.done)
			}
		}
	}
	r.mu.Unlock()
	w.WriteHeader(status)
}

func (r *receiver) count() int {
	n := 0
	for _, v := range r.last {
		n += v
	}
	return n
}

// TestThreeDispatcherProcesses runs three dispatchers as separate
// processes on one database and delivers 10,000 changes (1,000 with
// -short) to a receiver in this process: none lost, none attempted twice
// at once, every record's changes in order.
func TestThreeDispatcherProcesses(t *testing.T) {
	t.Parallel()
	total, perKey := 10000, 5
	if testing.Short() {
		total = 1000
	}
	pool := postgrestest.Pool(t, 8)
	s := postgrestest.NewStore(t, pool)
	ctx := t.Context()

	rcv := &receiver{inFlight: map[string]bool{}, last: map[string]int{}, delivered: map[string]bool{}, want: total, done: make(chan struct{})}
	srv := httptest.NewServer(rcv)
	defer srv.Close()

	d, err := webhook.New(webhook.Config{Store: s, AllowPrivateNetworks: true})
	require.NoError(t, err)
	_, err = d.Register(ctx, webhook.Webhook{Name: "sync", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: srv.URL + "/hook"})
	require.NoError(t, err)

	var children []*exec.Cmd
	var stdins []io.Closer
	outs := make([]*bytes.Buffer, 3)
	for i := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+s.Schema())
		outs[i] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		in, err := cmd.StdinPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		children, stdins = append(children, cmd), append(stdins, in)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, in := range stdins {
			_ = in.Close()
		}
		for i, c := range children {
			waited := make(chan error, 1)
			go func() { waited <- c.Wait() }()
			select {
			case err := <-waited:
				assert.NoError(t, err, "dispatcher %d:\n%s", i, outs[i])
			case <-time.After(30 * time.Second):
				_ = c.Process.Kill()
				<-waited
				t.Errorf("dispatcher %d did not stop within 30s:\n%s", i, outs[i])
			}
		}
	}
	defer stop()

	// Publish while the dispatchers run, in bursts of 500: records K0..,
	// each changed perKey times in order.
	keys := total / perKey
	start := time.Now()
	var batch []webhook.Change
	for round := 1; round <= perKey; round++ {
		for k := range keys {
			batch = append(batch, webhook.Change{Table: "employee", Op: webhook.Update, Key: "K" + strconv.Itoa(k),
				Old: map[string]any{"n": round - 1}, New: map[string]any{"n": round}})
			if len(batch) == 500 {
				_, err := d.PublishMany(ctx, batch)
				require.NoError(t, err)
				batch = batch[:0]
			}
		}
	}
	if len(batch) > 0 {
		_, err := d.PublishMany(ctx, batch)
		require.NoError(t, err)
	}

	select {
	case <-rcv.done:
	case <-time.After(100 * time.Second):
	}
	took := time.Since(start)
	stop()
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	assert.Equal(t, total, rcv.count(), "every change delivered")
	assert.Empty(t, rcv.concurrent, "no message attempted twice at once")
	assert.Empty(t, rcv.disorder, "every record's changes in order")
	assert.Greater(t, rcv.attempts, total, "some first attempts failed and were retried")
	t.Logf("%d changes through 3 dispatcher processes in %v (%d requests, %d duplicates)", total, took, rcv.attempts, rcv.dupes)
}
