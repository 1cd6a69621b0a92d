package webhook_test

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// hosts is a Resolver answering from a table: it lets a test point a name
// at 127.0.0.1 without touching DNS.
type hosts map[string]string

func (h hosts) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := h[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

var _ webhook.Resolver = hosts(nil)
var _ webhook.Resolver = (*net.Resolver)(nil)

// errCapture is an after hook keeping the error of each attempt.
type errCapture struct {
	mu   sync.Mutex
	errs []error
}

func (c *errCapture) After(_ context.Context, r *transform.Result) error {
	c.mu.Lock()
	c.errs = append(c.errs, r.Err)
	c.mu.Unlock()
	return nil
}

func (c *errCapture) last(t *testing.T) error {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.NotEmpty(t, c.errs, "the after hook ran")
	return c.errs[len(c.errs)-1]
}

// guardedSetup returns a dispatcher with the guard as New sets it up
// (unlike webhooktest.NewDispatcher, which allows private networks), a
// receiver on 127.0.0.1 reachable by the name receiver.example.com on its
// port, and a hook capturing attempt errors.
func guardedSetup(t *testing.T, cfg webhook.Config) (*webhook.Dispatcher, *webhooktest.Clock, *webhooktest.Receiver, *errCapture) {
	t.Helper()
	clock := webhooktest.NewClock(webhooktest.Epoch)
	rcv := webhooktest.NewReceiver(t, clock)
	u, err := url.Parse(rcv.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	capture := &errCapture{}
	hooks := transform.NewRegistry()
	require.NoError(t, hooks.RegisterAfter("capture", capture))
	cfg.Store, cfg.Clock, cfg.Hooks = memory.New(), clock, hooks
	cfg.Resolver = hosts{"receiver.example.com": "127.0.0.1"}
	cfg.AllowedPorts = append(cfg.AllowedPorts, port)
	cfg.AttemptTimeout = time.Second
	cfg.Retry = webhook.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Second, Jitter: -1}
	d, err := webhook.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	w, err := d.Register(t.Context(), webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: "http://receiver.example.com:" + u.Port() + "/hook", After: []string{"capture"}})
	require.NoError(t, err, "a name passes Register: what it resolves to is decided at connect time")
	rcv.AddSecret(w.Secret)
	return d, clock, rcv, capture
}

func TestGuardKeepsALoopbackReceiverUnreached(t *testing.T) {
	t.Parallel()
	d, _, rcv, capture := guardedSetup(t, webhook.Config{})
	_, err := d.Publish(t.Context(), update("E1", nil, map[string]any{"grade": 3}))
	require.NoError(t, err)
	n, err := d.ProcessDue(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n)

	assert.Empty(t, rcv.Requests(), "the receiver on 127.0.0.1 was never reached")
	ds, err := d.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, webhook.Pending, ds[0].Status, "a refusal is a failed attempt, retried on the schedule")
	assert.Equal(t, 1, ds[0].Attempts)
	assert.Contains(t, ds[0].LastError, "destination not allowed")
	assert.Contains(t, ds[0].LastError, "receiver.example.com (127.0.0.1): loopback address")
	atts, err := d.Attempts(t.Context(), ds[0].ID)
	require.NoError(t, err)
	require.Len(t, atts, 1)
	assert.Zero(t, atts[0].StatusCode, "no answer: no connection was made")
	assert.Equal(t, ds[0].LastError, atts[0].Error)

	err = capture.last(t)
	assert.ErrorIs(t, err, webhook.ErrBlockedDestination, "hooks can tell a refusal from other failures")
	var de *webhook.DeliveryError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 1, de.Attempt)
}

func TestAllowPrivateNetworksReachesALoopbackReceiver(t *testing.T) {
	t.Parallel()
	d, _, rcv, capture := guardedSetup(t, webhook.Config{AllowPrivateNetworks: true})
	_, err := d.Publish(t.Context(), update("E1", nil, map[string]any{"grade": 3}))
	require.NoError(t, err)
	_, err = d.ProcessDue(t.Context())
	require.NoError(t, err)
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	assert.NoError(t, reqs[0].VerifyErr)
	assert.NoError(t, capture.last(t))
	ds, err := d.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Equal(t, webhook.Delivered, ds[0].Status)
}

func TestAllowedNetworksReachAnInternalReceiver(t *testing.T) {
	t.Parallel()
	d, _, rcv, _ := guardedSetup(t, webhook.Config{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	_, err := d.Publish(t.Context(), update("E1", nil, map[string]any{"grade": 3}))
	require.NoError(t, err)
	_, err = d.ProcessDue(t.Context())
	require.NoError(t, err)
	assert.Len(t, rcv.Delivered(), 1, "an allow-listed prefix on an allowed port is reachable with the guard on")
}

func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	elsewhere := webhooktest.NewReceiver(t, k.Clock)
	register(t, k, rcv, webhook.Webhook{})
	rcv.Script(webhooktest.Answer{Status: http.StatusFound, Header: http.Header{"Location": {elsewhere.URL + "/stolen"}}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"grade": 3}))
	require.NoError(t, err)
	require.Equal(t, 1, k.Drain(t))

	assert.Empty(t, elsewhere.Requests(), "the 302's Location was not visited")
	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	assert.Equal(t, webhook.Pending, ds[0].Status, "a 3xx is a failed attempt")
	assert.Equal(t, 1, ds[0].Attempts)
	assert.Contains(t, ds[0].LastError, "status 302")
	assert.Equal(t, webhooktest.Epoch.Add(time.Second), ds[0].NextAttempt, "retried on the schedule")

	k.Settle(t, 5)
	assert.Len(t, rcv.Delivered(), 1, "the retry goes to the webhook's own URL")
	assert.Empty(t, elsewhere.Requests())
}

func TestNewRejectsBadTransportConfig(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		cfg  webhook.Config
		says string
	}{
		"port zero":            {webhook.Config{AllowedPorts: []int{0}}, "Config.AllowedPorts: 0 is not a port"},
		"port too large":       {webhook.Config{AllowedPorts: []int{65536}}, "Config.AllowedPorts: 65536 is not a port"},
		"invalid prefix":       {webhook.Config{AllowedNetworks: []netip.Prefix{{}}}, "Config.AllowedNetworks holds an invalid prefix"},
		"proxy with client":    {webhook.Config{HTTPClient: &http.Client{}, Proxy: http.ProxyFromEnvironment}, "ignored with Config.HTTPClient"},
		"resolver with client": {webhook.Config{HTTPClient: &http.Client{}, Resolver: net.DefaultResolver}, "ignored with Config.HTTPClient"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c.cfg.Store = memory.New()
			_, err := webhook.New(c.cfg)
			assert.ErrorContains(t, err, c.says)
		})
	}
	_, err := webhook.New(webhook.Config{Store: memory.New(), AllowedPorts: []int{8443}, Resolver: net.DefaultResolver,
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}})
	assert.NoError(t, err)
}
