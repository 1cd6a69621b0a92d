package webhook_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// The tests in this file are not parallel: each checks that goroutines
// return to where they were, and some measure allocations, which other
// tests running at the same time would disturb.

// noLeaks fails the test if goroutines started during it outlive it. Call
// it first, so its check runs after every other cleanup.
func noLeaks(t *testing.T) {
	t.Helper()
	baseline := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, baseline) })
}

// allocated returns the bytes allocated on the heap while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// answerSetup returns a test dispatcher (loopback allowed) with a
// webhook pointing at handler, and a hook capturing each attempt's result.
func answerSetup(t *testing.T, cfg webhook.Config, handler http.HandlerFunc) (*webhooktest.Kit, *[]transform.Result) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the request to its end lets the server notice when the
		// client hangs up, which ends r.Context().
		_, _ = io.Copy(io.Discard, r.Body)
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	var results []transform.Result
	hooks := transform.NewRegistry()
	require.NoError(t, hooks.RegisterAfter("capture", transform.AfterFunc(func(_ context.Context, r *transform.Result) error {
		results = append(results, *r) // attempts run one at a time here
		return nil
	})))
	cfg.Hooks = hooks
	k := webhooktest.NewDispatcher(t, cfg)
	_, err := k.Register(t.Context(), webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: srv.URL + "/hook", After: []string{"capture"}})
	require.NoError(t, err)
	_, err = k.Publish(t.Context(), update("E1", nil, map[string]any{"grade": 3}))
	require.NoError(t, err)
	return k, &results
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// timesOutThenRetries runs one attempt against a receiver that misbehaves
// until behave is set, checks that it ended in a timeout within the
// attempt's bound and was scheduled again, then lets the retry succeed.
func timesOutThenRetries(t *testing.T, k *webhooktest.Kit, results *[]transform.Result, behave *atomic.Bool) {
	t.Helper()
	start := time.Now()
	require.Equal(t, 1, k.Drain(t))
	took := time.Since(start)
	assert.Less(t, took, 5*time.Second, "the attempt is cut off by AttemptTimeout (300ms)")

	require.Len(t, *results, 1)
	assert.True(t, isTimeout((*results)[0].Err), "a timeout: %v", (*results)[0].Err)
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, webhook.Pending, ds[0].Status)
	assert.Equal(t, 1, ds[0].Attempts)
	assert.Equal(t, webhooktest.Epoch.Add(time.Second), ds[0].NextAttempt, "retried on the schedule")

	behave.Store(true)
	k.Clock.Advance(time.Second)
	require.Equal(t, 1, k.Drain(t))
	ds, err = k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Equal(t, webhook.Delivered, ds[0].Status, "the retry is delivered")
	assert.Equal(t, 2, ds[0].Attempts)
}

func TestSlowlorisReceiverTimesOutAndIsRetried(t *testing.T) {
	noLeaks(t)
	var behave atomic.Bool
	k, results := answerSetup(t, webhook.Config{AttemptTimeout: 300 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		if behave.Load() {
			return
		}
		// Headers at once, then the body one byte at a time, forever.
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				if rc.Flush() != nil {
					return
				}
			}
		}
	})
	timesOutThenRetries(t, k, results, &behave)
	assert.Equal(t, http.StatusOK, (*results)[0].StatusCode, "the headers had arrived; the body never finished")
}

func TestSilentReceiverTimesOutAndIsRetried(t *testing.T) {
	noLeaks(t)
	var behave atomic.Bool
	k, results := answerSetup(t, webhook.Config{AttemptTimeout: 300 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		if behave.Load() {
			return
		}
		<-r.Context().Done() // reads the request, never answers
	})
	timesOutThenRetries(t, k, results, &behave)
	assert.Zero(t, (*results)[0].StatusCode)
}

func TestHugeAnswerIsReadOnlyUpToTheCap(t *testing.T) {
	noLeaks(t)
	const size = 1 << 30
	var sent atomic.Int64
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
	k, results := answerSetup(t, webhook.Config{}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for sent.Load() < size {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	var n int
	alloc := allocated(func() { n = k.Drain(t) })
	require.Equal(t, 1, n)
	t.Logf("1 GiB answer: %d KiB allocated during the attempt, %d KiB sent before the connection closed", alloc>>10, sent.Load()>>10)
	assert.Less(t, alloc, uint64(16<<20), "memory stays flat: the 1 GiB body is not buffered")
	assert.Less(t, sent.Load(), int64(64<<20), "herald stopped reading long before the end")
	require.Len(t, *results, 1)
	assert.Len(t, (*results)[0].Body, 64<<10, "read up to MaxResponseBytes (64 KiB by default)")
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Equal(t, webhook.Delivered, ds[0].Status, "a 2xx is a success, however long its body")
}

// gzipBomb returns about 1 MiB that inflates to size bytes: the same
// gzip member (1 MiB of zeros) repeated; gzip readers read every member.
func gzipBomb(t *testing.T, size int) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, err := gzip.NewWriterLevel(&member, gzip.BestCompression)
	require.NoError(t, err)
	_, err = zw.Write(make([]byte, 1<<20))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return bytes.Repeat(member.Bytes(), size>>20)
}

func TestGzipBombIsReadOnlyUpToTheCap(t *testing.T) {
	bomb := gzipBomb(t, 1<<30)
	serve := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(bomb)
	}
	t.Run("default transport does not inflate", func(t *testing.T) {
		noLeaks(t)
		k, results := answerSetup(t, webhook.Config{MaxResponseBytes: 32 << 10}, serve)
		alloc := allocated(func() { require.Equal(t, 1, k.Drain(t)) })
		t.Logf("gzip bomb, default transport: %d KiB allocated", alloc>>10)
		assert.Less(t, alloc, uint64(16<<20))
		require.Len(t, *results, 1)
		assert.Len(t, (*results)[0].Body, 32<<10, "the compressed bytes, up to the cap")
		assert.Equal(t, bomb[:32<<10], (*results)[0].Body)
	})
	t.Run("a client that inflates is capped after inflating", func(t *testing.T) {
		noLeaks(t)
		tr := &http.Transport{} // Go's transparent gzip: on
		t.Cleanup(tr.CloseIdleConnections)
		k, results := answerSetup(t, webhook.Config{MaxResponseBytes: 32 << 10, HTTPClient: &http.Client{Transport: tr}}, serve)
		alloc := allocated(func() { require.Equal(t, 1, k.Drain(t)) })
		t.Logf("gzip bomb, inflating client: %d KiB allocated", alloc>>10)
		assert.Less(t, alloc, uint64(16<<20), "1 GiB inflated would not fit this bound")
		require.Len(t, *results, 1)
		assert.Equal(t, make([]byte, 32<<10), (*results)[0].Body, "32 KiB of the inflated zeros")
	})
}
