package webhooktest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
)

// Clock is a fake clock for tests: time stands still until moved.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Epoch is where test clocks start: a Monday morning.
var Epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Request is one request the receiver got.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// VerifyErr is nil when the signature verified under the Standard
	// Webhooks rules with one of the receiver's secrets.
	VerifyErr error
	// Status is what the receiver answered.
	Status int
}

// ID returns the webhook-id header.
func (r Request) ID() string { return r.Header.Get("Webhook-Id") }

// Answer is what the receiver sends back for one request.
type Answer struct {
	Status int
	Header http.Header
	Body   string
	// Stall holds the answer until the request's context ends or Release
	// is called.
	Stall bool
}

// Receiver is a recording HTTP receiver on loopback. It verifies every
// request's signature, records it, and answers as told: 200 by default,
// or from a queue of scripted answers, or from a function.
type Receiver struct {
	*httptest.Server
	clock   func() time.Time
	mu      sync.Mutex
	secrets []string
	reqs    []Request
	script  []Answer
	respond func(Request) Answer
	changed chan struct{}
	release chan struct{}
}

// NewReceiver starts a receiver that verifies signatures made with any of
// secrets, at the time clock tells (nil: the system clock). It is closed
// when the test ends.
func NewReceiver(t testing.TB, clock webhook.Clock, secrets ...string) *Receiver {
	r := &Receiver{secrets: secrets, changed: make(chan struct{}), release: make(chan struct{})}
	r.clock = time.Now
	if clock != nil {
		r.clock = clock.Now
	}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.Release()
		r.Server.Close()
	})
	return r
}

// AddSecret adds a secret the receiver accepts (a webhook's Secret, once
// Register generated it). An Ed25519 "whsk_" key is turned into its public
// key, as a real receiver would hold it.
func (r *Receiver) AddSecret(s string) {
	if strings.HasPrefix(s, "whsk_") {
		if pub, err := signer.PublicKey(s); err == nil {
			s = pub
		}
	}
	r.mu.Lock()
	r.secrets = append(r.secrets, s)
	r.mu.Unlock()
}

// Script queues answers for the next requests; after the queue runs out
// the receiver answers 200 again (or what Respond says).
func (r *Receiver) Script(as ...Answer) {
	r.mu.Lock()
	r.script = append(r.script, as...)
	r.mu.Unlock()
}

// Fail queues n answers of the given status.
func (r *Receiver) Fail(n, status int) {
	for range n {
		r.Script(Answer{Status: status})
	}
}

// Respond sets a function that decides every answer not scripted.
func (r *Receiver) Respond(f func(Request) Answer) {
	r.mu.Lock()
	r.respond = f
	r.mu.Unlock()
}

// Release lets every stalled answer go.
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.release:
	default:
		close(r.release)
	}
}

func (r *Receiver) serve(w http.ResponseWriter, hr *http.Request) {
	body, _ := io.ReadAll(hr.Body)
	req := Request{Method: hr.Method, URL: hr.URL.String(), Header: hr.Header.Clone(), Body: body}
	r.mu.Lock()
	signed := body
	if hr.Method == http.MethodGet {
		signed = []byte(hr.URL.RawQuery)
	}
	req.VerifyErr = verify(r.secrets, r.clock(), hr.Header, signed)
	a := Answer{Status: http.StatusOK}
	switch {
	case len(r.script) > 0:
		a = r.script[0]
		r.script = r.script[1:]
	case r.respond != nil:
		f := r.respond
		r.mu.Unlock()
		a = f(req)
		r.mu.Lock()
	}
	release := r.release
	r.mu.Unlock()
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	if a.Stall {
		select {
		case <-hr.Context().Done():
		case <-release:
		}
	}
	req.Status = a.Status
	r.record(req)
	for k, vs := range a.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, a.Body)
}

func (r *Receiver) record(req Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Requests returns every request received so far, in order of answer.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Delivered returns the requests answered 2xx.
func (r *Receiver) Delivered() []Request {
	var out []Request
	for _, q := range r.Requests() {
		if q.Status >= 200 && q.Status < 300 {
			out = append(out, q)
		}
	}
	return out
}

// WaitFor waits until at least n requests were answered, or fails the test
// after timeout.
func (r *Receiver) WaitFor(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, changed := len(r.reqs), r.changed
		r.mu.Unlock()
		if got >= n {
			return r.Requests()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("receiver got %d requests, want %d within %v", got, n, timeout)
			return nil
		}
	}
}

// Options change the dispatcher NewDispatcher builds.
type Options struct {
	Config webhook.Config // fields left zero get the test defaults
}

// Kit is a dispatcher wired for tests.
type Kit struct {
	*webhook.Dispatcher
	Clock *Clock
	Store store.Store
}

// NewDispatcher returns a dispatcher for tests: the memory store (unless
// cfg.Store is set), a fake clock at Epoch, loopback allowed, fast retries
// without jitter (1s, 2s, 4s ... up to 5 attempts), and a Shutdown when
// the test ends. It is not started: drive it with Drain, or call Start.
func NewDispatcher(t testing.TB, cfg webhook.Config) *Kit {
	t.Helper()
	clock := NewClock(Epoch)
	if c, ok := cfg.Clock.(*Clock); ok {
		clock = c
	}
	cfg.Clock = clock
	if cfg.Store == nil {
		cfg.Store = memory.New()
	}
	cfg.AllowPrivateNetworks = true
	if cfg.Retry.MaxAttempts == 0 {
		cfg.Retry.MaxAttempts = 5
	}
	if cfg.Retry.InitialInterval == 0 {
		cfg.Retry.InitialInterval = time.Second
	}
	if cfg.Retry.Multiplier == 0 {
		cfg.Retry.Multiplier = 2
	}
	if cfg.Retry.Jitter == 0 {
		cfg.Retry.Jitter = -1
	}
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 5 * time.Second
	}
	d, err := webhook.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	return &Kit{Dispatcher: d, Clock: clock, Store: cfg.Store}
}

// Drain attempts every message due now and returns how many it attempted.
func (k *Kit) Drain(t testing.TB) int {
	t.Helper()
	n, err := k.ProcessDue(t.Context())
	require.NoError(t, err)
	return n
}

// Settle attempts everything due, then moves the clock to the next pending
// delivery's due time and repeats, until nothing is pending or rounds run
// out (then it fails the test). It returns the number of attempts made.
func (k *Kit) Settle(t testing.TB, rounds int) int {
	t.Helper()
	total := 0
	for range rounds {
		total += k.Drain(t)
		pending, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{Status: webhook.Pending})
		require.NoError(t, err)
		if len(pending) == 0 {
			return total
		}
		// Jump to the earliest due time still ahead: deliveries due already
		// wait behind a head of their record (or a held webhook), whose own
		// time is what matters.
		now := k.Clock.Now()
		var next time.Time
		for _, p := range pending {
			if p.NextAttempt.After(now) && (next.IsZero() || p.NextAttempt.Before(next)) {
				next = p.NextAttempt
			}
		}
		if next.IsZero() {
			k.Clock.Advance(time.Second)
		} else {
			k.Clock.Set(next)
		}
	}
	t.Fatalf("deliveries still pending after %d rounds", rounds)
	return total
}

// verify checks a request against the secrets with the signer's verifier
// at the receiver's clock.
func verify(secrets []string, now time.Time, h http.Header, body []byte) error {
	v, err := signer.NewVerifierWithOptions(signer.VerifierOptions{Now: func() time.Time { return now }}, secrets...)
	if err != nil {
		return err
	}
	return v.Verify(h, body)
}
