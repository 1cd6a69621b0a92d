package webhooktest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestKitDeliversAndReceiverVerifies(t *testing.T) {
	k := webhooktest.NewDispatcher(t, webhook.Config{})
	rcv := webhooktest.NewReceiver(t, k.Clock)
	w, err := k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL})
	require.NoError(t, err)
	rcv.Fail(2, http.StatusServiceUnavailable)
	_, err = k.Publish(t.Context(), webhook.Change{Table: "t", Op: webhook.Insert, Key: "1", New: map[string]any{"a": 1}})
	require.NoError(t, err)
	assert.Equal(t, 3, k.Settle(t, 10))
	reqs := rcv.Requests()
	require.Len(t, reqs, 3)
	assert.Error(t, reqs[0].VerifyErr, "without the secret the receiver cannot verify")
	rcv.AddSecret(w.Secret)
	_, err = k.Publish(t.Context(), webhook.Change{Table: "t", Op: webhook.Insert, Key: "2", New: map[string]any{"a": 1}})
	require.NoError(t, err)
	k.Drain(t)
	last := rcv.Requests()[3]
	assert.NoError(t, last.VerifyErr)
	assert.Equal(t, http.StatusOK, last.Status)
	assert.Len(t, rcv.Delivered(), 2)
}

func TestReceiverRejectsStaleSignatures(t *testing.T) {
	k := webhooktest.NewDispatcher(t, webhook.Config{})
	rcvClock := webhooktest.NewClock(webhooktest.Epoch.Add(time.Hour))
	rcv := webhooktest.NewReceiver(t, rcvClock)
	w, err := k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL})
	require.NoError(t, err)
	rcv.AddSecret(w.Secret)
	_, err = k.Publish(t.Context(), webhook.Change{Table: "t", Op: webhook.Insert, Key: "1", New: map[string]any{"a": 1}})
	require.NoError(t, err)
	k.Drain(t)
	require.Len(t, rcv.Requests(), 1)
	assert.Error(t, rcv.Requests()[0].VerifyErr, "an hour-old timestamp is stale")
}

func TestWaitForFailsAfterItsBound(t *testing.T) {
	rcv := webhooktest.NewReceiver(t, nil)
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rcv.WaitFor(ft, 1, 20*time.Millisecond)
	}()
	<-done
	assert.True(t, ft.failed, "WaitFor fails the test when nothing arrives in time")
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	runtimeGoexit()
}

func TestClock(t *testing.T) {
	c := webhooktest.NewClock(webhooktest.Epoch)
	c.Advance(time.Minute)
	assert.Equal(t, webhooktest.Epoch.Add(time.Minute), c.Now())
	c.Set(webhooktest.Epoch)
	assert.Equal(t, webhooktest.Epoch, c.Now())
}
