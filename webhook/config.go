package webhook

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"time"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/transform"
)

// Clock tells the time. The dispatcher reads every "now" from it, and
// passes it to the store, so a fake clock drives retries and lease expiry
// in tests.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Config configures a Dispatcher. A zero field means the documented
// default, never "off".
type Config struct {
	// ownClient is set when herald built HTTPClient, so Shutdown may close
	// its idle connections.
	ownClient bool
	// tlsClients are the clients herald built for ClientTLS, by name.
	tlsClients map[string]*http.Client

	// Store keeps webhooks, events and deliveries. Required.
	Store store.Store
	// Hooks holds the before and after hooks webhooks may name; nil: none.
	Hooks *transform.Registry
	// Workers is the number of attempts in flight at once; 0: 4 per CPU,
	// at least 8.
	Workers int
	// Retry is the retry schedule.
	Retry RetryPolicy
	// AllowPrivateNetworks lets the default transport reach loopback,
	// private and every other non-public address, on any port. Cloud
	// metadata and credentials endpoints stay refused.
	AllowPrivateNetworks bool
	// AllowedNetworks are prefixes the default transport may reach although
	// they are not public (an internal receiver in 10.20.0.0/16), without
	// opening every private network. Ports still follow AllowedPorts;
	// cloud metadata stays refused.
	AllowedNetworks []netip.Prefix
	// AllowedPorts are the ports the default transport may connect to
	// besides 80 and 443; AllowPrivateNetworks allows every port.
	AllowedPorts []int
	// Proxy chooses the proxy for a request, as http.Transport.Proxy does;
	// nil: none (HTTP_PROXY and the like in the environment are ignored).
	// herald connects only to the proxy, wherever it is (cloud metadata
	// excepted), and before handing a request over checks what it can
	// without resolving the target's name: the port, an IP-literal host,
	// loopback names. The proxy resolves the name, so it must enforce its
	// own egress policy.
	Proxy func(*http.Request) (*url.URL, error)
	// Resolver looks up host names for the default transport; nil:
	// net.DefaultResolver. Every address it returns is checked.
	Resolver Resolver
	// HTTPClient sends the requests; nil: the guarded default. A client
	// given here is used as it is: its transport and redirect policy decide
	// what it may reach, and Proxy and Resolver must be nil. Register's URL
	// checks, AttemptTimeout and MaxResponseBytes still apply.
	HTTPClient *http.Client
	// Logger receives the dispatcher's logs; nil: discarded.
	Logger *slog.Logger
	// Clock tells the time; nil: the system clock.
	Clock Clock
	// AttemptTimeout bounds one request, from connect to the last byte of
	// the answer read; 0: 15s. With the default transport the TCP connect
	// and the TLS handshake each get at most 10s of it.
	AttemptTimeout time.Duration
	// HookTimeout bounds each before or after hook; 0: 10s.
	HookTimeout time.Duration
	// MaxPayloadBytes caps the encoded size of one change; 0: 256 KiB.
	MaxPayloadBytes int
	// MaxResponseBytes caps how much of an answer is read and kept in the
	// delivery log; 0: 64 KiB read, of which the first 4 KiB are kept. The
	// rest is never read: the connection is closed. The cap counts bytes
	// after any decompression the client does; the default transport asks
	// for none.
	MaxResponseBytes int64
	// LeaseDuration is how long a claimed message is held before another
	// worker may take it (its holder presumed dead); 0: AttemptTimeout plus
	// 2 × HookTimeout plus 30s.
	LeaseDuration time.Duration
	// PollInterval is how often idle workers look for due work when no
	// wake-up arrives (retries coming due, work published by another
	// process without notifications); 0: 1s.
	PollInterval time.Duration
	// Observer is told about attempts, outcomes and webhook state changes;
	// nil: nobody.
	Observer Observer
	// ObserverQueue is how many observer events may wait while the
	// dispatcher runs; when it is full, events are dropped and counted in
	// Stats. 0: 4096.
	ObserverQueue int
	// HoldDelay is how long a delivery waits when this process cannot send
	// it yet (a hook it lacks); 0: 1 minute.
	HoldDelay time.Duration
	// MaxConcurrency caps the requests one webhook has in flight in this
	// process, so a receiver that hangs cannot take every worker; a
	// webhook's own MaxConcurrency overrides it. 0: Workers/2, at least 1.
	MaxConcurrency int
	// Breaker opens a webhook's circuit on sustained failure.
	Breaker BreakerPolicy
	// DisableAfter disables a webhook whose requests have all failed for
	// this long, without a success in between; 0: 5 days; negative: never.
	DisableAfter time.Duration
	// Retention says how long finished deliveries, their attempts and
	// their events are kept; the workers started by Start purge the rest
	// every Retention.Interval, when the store can (store.Retainer). Zero
	// fields are the defaults: delivered 7 days, dead 30 days, change ids
	// remembered 30 days.
	Retention Retention
	// Clients are extra HTTP clients a webhook may name in its Client
	// field, for receivers that need their own TLS setup (mutual TLS with
	// a client certificate). Like HTTPClient, each is used as it is: its
	// transport decides what it may reach. nil: none. ClientTLS keeps the
	// guard.
	Clients map[string]*http.Client
	// ClientTLS are TLS setups a webhook may name in its Client field, as
	// it names Clients: a client certificate for receivers that want
	// mutual TLS, a private CA. herald builds a client for each exactly as
	// its default one (the guard with AllowPrivateNetworks,
	// AllowedNetworks and AllowedPorts; Proxy and Resolver; the timeouts
	// and caps; no redirects), with a clone of the setup as its TLS
	// configuration (at least TLS 1.2 when MinVersion is unset), so a
	// webhook sent with a certificate cannot reach what the guard refuses.
	// A name may not be in both maps. nil: none.
	ClientTLS map[string]*tls.Config
	// SecretKeys encrypts webhook secrets and credentials where the store
	// keeps them; nil: they are stored as they are. See Keyring.
	SecretKeys *Keyring
}

// RetryPolicy is the retry schedule: exponential backoff with jitter.
//
// The default makes 11 attempts over about a day: at once, then after
// about 5s, 15s, 45s, 2m15s, 6m45s, 20m, 1h, 3h, 9h and 10h (each ±25%).
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included; 0: 11.
	MaxAttempts int
	// InitialInterval is the wait before the second attempt; 0: 5s.
	InitialInterval time.Duration
	// MaxInterval caps any wait; 0: 10h.
	MaxInterval time.Duration
	// Multiplier grows the wait after each attempt; 0: 3.
	Multiplier float64
	// Jitter spreads each wait by ± this fraction; 0: 0.25; negative: none.
	Jitter float64
	// MaxRetryAfter caps a receiver's Retry-After; 0: 1h.
	MaxRetryAfter time.Duration
}

const (
	defaultMaxPayload = 256 << 10
	defaultReadCap    = 64 << 10
	snippetBytes      = 4 << 10
)

func (c *Config) fill() error {
	if c.Store == nil {
		return errors.New("webhook: Config.Store is required (store/memory.New() for tests)")
	}
	var errs []error
	neg := func(name string, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("webhook: Config.%s must not be negative", name))
		}
	}
	neg("Workers", c.Workers < 0)
	neg("AttemptTimeout", c.AttemptTimeout < 0)
	neg("HookTimeout", c.HookTimeout < 0)
	neg("MaxPayloadBytes", c.MaxPayloadBytes < 0)
	neg("MaxResponseBytes", c.MaxResponseBytes < 0)
	neg("LeaseDuration", c.LeaseDuration < 0)
	neg("PollInterval", c.PollInterval < 0)
	neg("HoldDelay", c.HoldDelay < 0)
	neg("MaxConcurrency", c.MaxConcurrency < 0)
	errs = append(errs, c.Breaker.check()...)
	neg("ObserverQueue", c.ObserverQueue < 0)
	neg("Retry.MaxAttempts", c.Retry.MaxAttempts < 0)
	neg("Retry.InitialInterval", c.Retry.InitialInterval < 0)
	neg("Retry.MaxInterval", c.Retry.MaxInterval < 0)
	neg("Retry.Multiplier", c.Retry.Multiplier < 0)
	neg("Retry.MaxRetryAfter", c.Retry.MaxRetryAfter < 0)
	errs = append(errs, c.checkTransportConfig()...)
	if c.Retry.Multiplier > 0 && c.Retry.Multiplier < 1 {
		errs = append(errs, errors.New("webhook: Config.Retry.Multiplier must be at least 1"))
	}
	if c.Retry.Jitter >= 1 {
		errs = append(errs, errors.New("webhook: Config.Retry.Jitter must be below 1"))
	}
	errs = append(errs, c.clientErrors()...)
	errs = append(errs, c.Retention.check()...)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.Workers == 0 {
		c.Workers = max(8, 4*runtime.NumCPU())
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 15 * time.Second
	}
	if c.HookTimeout == 0 {
		c.HookTimeout = 10 * time.Second
	}
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = defaultMaxPayload
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = defaultReadCap
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = c.AttemptTimeout + 2*c.HookTimeout + 30*time.Second
	}
	if c.LeaseDuration <= c.AttemptTimeout {
		return fmt.Errorf("webhook: Config.LeaseDuration (%v) must exceed AttemptTimeout (%v)", c.LeaseDuration, c.AttemptTimeout)
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.HoldDelay == 0 {
		c.HoldDelay = time.Minute
	}
	c.fillHealth()
	if c.ObserverQueue == 0 {
		c.ObserverQueue = defaultObserverQueue
	}
	c.Retention.fill()
	r := &c.Retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = 11
	}
	if r.InitialInterval == 0 {
		r.InitialInterval = 5 * time.Second
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = 10 * time.Hour
	}
	if r.Multiplier == 0 {
		r.Multiplier = 3
	}
	if r.Jitter == 0 {
		r.Jitter = 0.25
	} else if r.Jitter < 0 {
		r.Jitter = 0
	}
	if r.MaxRetryAfter == 0 {
		r.MaxRetryAfter = time.Hour
	}
	var g *guard
	if c.HTTPClient == nil || len(c.ClientTLS) > 0 {
		g = newGuard(c)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = newGuardedClient(c, g)
		c.ownClient = true
	}
	if len(c.ClientTLS) > 0 {
		c.tlsClients = make(map[string]*http.Client, len(c.ClientTLS))
		for name, tc := range c.ClientTLS {
			c.tlsClients[name] = newGuardedTLSClient(c, g, tc)
		}
	}
	return nil
}
