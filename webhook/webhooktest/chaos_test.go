package webhooktest_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func TestChaosFaultsAreReproducible(t *testing.T) {
	a := webhooktest.NewChaosReceiver(t, 42, 0.3)
	b := webhooktest.NewChaosReceiver(t, 42, 0.3)
	c := webhooktest.NewChaosReceiver(t, 43, 0.3)
	const n = 20000
	same, differ := 0, 0
	counts := map[webhooktest.Fault]int{}
	for i := range n {
		id := fmt.Sprintf("msg-%d", i)
		f := a.FaultFor("/hook", id, 1+i%3)
		counts[f]++
		if f == b.FaultFor("/hook", id, 1+i%3) {
			same++
		}
		if f != c.FaultFor("/hook", id, 1+i%3) {
			differ++
		}
	}
	assert.Equal(t, n, same, "the same seed gives every message the same answers")
	assert.Greater(t, differ, n/5, "another seed gives other answers")
	failed := n - counts[webhooktest.FaultNone]
	assert.InDelta(t, 0.3, float64(failed)/n, 0.02, "30%% of requests fail")
	for f := webhooktest.Fault500; f <= webhooktest.FaultBadStatus; f++ {
		assert.InDelta(t, float64(failed)/7, counts[f], float64(failed)/7*0.15, "%v is about a seventh of the faults", f)
	}
	paths := 0
	for i := range 1000 {
		id := fmt.Sprintf("msg-%d", i)
		if a.FaultFor("/a", id, 1) != a.FaultFor("/b", id, 1) {
			paths++
		}
	}
	assert.Greater(t, paths, 100, "the path is part of the choice: one event goes to several webhooks")
}

// idFor finds a webhook-id not used before whose first arrival at path
// gets fault f.
func idFor(t *testing.T, c *webhooktest.ChaosReceiver, path string, f webhooktest.Fault, used map[string]bool) string {
	t.Helper()
	for i := range 10000 {
		id := fmt.Sprintf("msg-%v-%d", f, i)
		if !used[id] && c.FaultFor(path, id, 1) == f {
			used[id] = true
			return id
		}
	}
	t.Fatalf("no id gets %v", f)
	return ""
}

func TestChaosReceiverAnswersAsItsFaultSays(t *testing.T) {
	secret, err := signer.GenerateSecret()
	require.NoError(t, err)
	s, err := signer.New(secret)
	require.NoError(t, err)
	c := webhooktest.NewChaosReceiver(t, 7, 1) // every request fails ...
	c.AddSecret(secret)
	client := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	used := map[string]bool{}
	send := func(f webhooktest.Fault) (*http.Response, []byte, error) {
		id := idFor(t, c, "/hook", f, used)
		body := `{"id":"` + id + `"}`
		req, err := http.NewRequest(http.MethodPost, c.URL+"/hook", strings.NewReader(body))
		require.NoError(t, err)
		now := time.Now()
		req.Header.Set("Webhook-Id", id)
		req.Header.Set("Webhook-Timestamp", fmt.Sprint(now.Unix()))
		req.Header.Set("Webhook-Signature", s.Sign(id, now, []byte(body)))
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}

	resp, _, err := send(webhooktest.Fault500)
	require.NoError(t, err)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)

	resp, _, err = send(webhooktest.Fault503)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	resp, _, err = send(webhooktest.Fault429)
	require.NoError(t, err)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)

	_, _, err = send(webhooktest.FaultHang)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a hang outlasts the client's timeout")

	_, _, err = send(webhooktest.FaultReset)
	assert.Error(t, err, "a reset connection fails the request")

	for range 8 { // several forms, chosen by id
		_, _, err = send(webhooktest.FaultBadStatus)
		assert.Error(t, err, "a wrong status line fails the request")
	}

	resp, body, err := send(webhooktest.FaultSlowBody)
	require.NotNil(t, resp, "a slow body starts with its status")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "but does not end before the client's timeout")
	assert.Less(t, len(body), 20)

	// ... until the receiver calms down.
	c.Calm()
	resp, _, err = send(webhooktest.FaultHang)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	// Close waits for every handler, the slow body's included: it learns
	// that the client hung up.
	c.Close()
	var got []string
	for _, a := range c.Arrivals() {
		got = append(got, fmt.Sprintf("%v processed=%v cut=%v", a.Fault, a.Processed, a.Cut))
		assert.NoError(t, a.VerifyErr, "every request verified")
		assert.Equal(t, 1, a.N, "each id arrived once")
	}
	want := []string{"500 processed=false cut=false", "503 processed=false cut=false", "429 processed=false cut=false",
		"hang processed=false cut=false", "reset processed=false cut=false"}
	for range 8 {
		want = append(want, "bad-status processed=false cut=false")
	}
	want = append(want, "slow-body processed=true cut=true", "ok processed=true cut=false")
	assert.Equal(t, want, got)
	assert.Len(t, c.Processed(), 2)
	assert.Equal(t, int64(len(want)), c.Total())
	assert.Equal(t, 8, c.Faults()["bad-status"])
}

func TestChaosTrapCountsConnections(t *testing.T) {
	c := webhooktest.NewChaosReceiver(t, 1, 0)
	tg := c.Targets()
	if !tg.Trap.IsValid() {
		t.Skip("no second loopback address to put the trap on")
	}
	assert.Equal(t, tg.Receiver.Port(), tg.Trap.Port(), "the trap listens on the receiver's port")
	assert.NotEqual(t, tg.Receiver.Addr(), tg.Trap.Addr())
	back, err := webhooktest.ParseChaosTargets(tg.String())
	require.NoError(t, err)
	assert.Equal(t, tg, back)

	assert.Zero(t, c.TrapConnections())
	conn, err := net.Dial("tcp", tg.Trap.String())
	require.NoError(t, err)
	_, _ = conn.Read(make([]byte, 1)) // the trap closes it
	_ = conn.Close()
	assert.Equal(t, 1, c.TrapConnections())

	_, err = webhooktest.ParseChaosTargets("nonsense")
	assert.Error(t, err)
}

// A chaos run on a small scale: it must come out sound, and a run whose
// receiver never calms down must report what it saw rather than hang.
func TestRunChaosSmall(t *testing.T) {
	rep := webhooktest.RunChaos(t, memory.New(), webhooktest.ChaosConfig{Seed: 3, Changes: 400, Keys: 40, Publishers: 4})
	t.Log(rep)
	assert.Empty(t, rep.Failures())
	assert.Equal(t, 400, rep.Changes)
	assert.Equal(t, 20, rep.Webhooks)
	assert.Positive(t, rep.DuplicateCauses[webhooktest.CauseSlowBody], "slow bodies caused duplicates")
	assert.Equal(t, rep.Duplicates, rep.DuplicateCauses[webhooktest.CauseSlowBody]+rep.DuplicateCauses[webhooktest.CauseLate]+
		rep.DuplicateCauses[webhooktest.CauseLease],
		"and late answers or leases that ran out, when the machine is slow; nothing else did")
}

func TestChaosReportFailures(t *testing.T) {
	sound := webhooktest.ChaosReport{Expected: 3, Delivered: 3}
	assert.Empty(t, sound.Failures())
	for _, bad := range []webhooktest.ChaosReport{
		{},
		{Expected: 3, Delivered: 2, Lost: 1},
		{Expected: 3, Delivered: 3, OutOfOrder: 1},
		{Expected: 3, Delivered: 3, Unexpected: 1},
		{Expected: 3, Delivered: 3, BadSignatures: 1},
		{Expected: 3, Delivered: 3, DuplicateCauses: map[string]int{webhooktest.CauseUnknown: 1}},
		{Expected: 3, Delivered: 3, Dead: 1},
		{Expected: 3, Delivered: 3, Stuck: 1},
		{Expected: 3, Delivered: 3, StoreMismatch: 1},
		{Expected: 3, Delivered: 3, TrapConnections: 1},
		{Expected: 3, Delivered: 3, Traps: []string{"trap"}},
		{Expected: 3, Delivered: 3, Traps: []string{"trap"}, TrapDeliveries: 2},
	} {
		assert.NotEmpty(t, bad.Failures(), "%+v", bad)
	}
}

// Requests a sender wrote just before it died are counted for the epoch
// in which it sent them, however late the server reads them: Quiesce
// waits for every connection opened before it, and fails while one stays
// open.
func TestChaosReceiverQuiesce(t *testing.T) {
	c := webhooktest.NewChaosReceiver(t, 7, 1) // every request fails ...
	used := map[string]bool{}
	raw := func(f webhooktest.Fault) net.Conn {
		id := idFor(t, c, "/hook", f, used)
		conn, err := net.Dial("tcp", c.Listener.Addr().String())
		require.NoError(t, err)
		body := `{"id":"` + id + `"}`
		_, err = fmt.Fprintf(conn, "POST /hook HTTP/1.1\r\nHost: receiver\r\nWebhook-Id: %s\r\nContent-Length: %d\r\n\r\n%s", id, len(body), body)
		require.NoError(t, err)
		return conn
	}
	bounded := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		t.Cleanup(cancel)
		return ctx
	}

	c.SetEpoch(1)
	hung := raw(webhooktest.FaultHang) // a sender still waiting for its answer
	assert.ErrorIs(t, c.Quiesce(bounded(100*time.Millisecond)), context.DeadlineExceeded,
		"a connection opened before the call is still open")

	// A sender that writes its requests and dies at once, as under SIGKILL.
	const dead = 20
	for range dead {
		require.NoError(t, raw(webhooktest.Fault500).Close())
	}
	require.NoError(t, hung.Close())
	require.NoError(t, c.Quiesce(bounded(10*time.Second)))
	c.SetEpoch(2)
	got := c.Arrivals()
	require.Len(t, got, dead+1, "every request written before the senders died was read")
	for _, a := range got {
		assert.Equal(t, 1, a.Epoch, "%s is counted in the epoch that sent it", a.Fault)
	}

	// With nothing open it returns at once, and the receiver serves on.
	require.NoError(t, c.Quiesce(bounded(10*time.Second)))
	c.Calm()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post(c.URL+"/hook", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
}
