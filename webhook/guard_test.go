package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests never connect anywhere but to 127.0.0.1: the guard's dial
// step is replaced, so a decision to connect to a public address ends at
// a stand-in that either refuses or connects to a loopback test server.

// fakeResolver answers from a table; each lookup of a name takes the next
// answer in its list (the last one repeats), so a test can make a name
// change its mind between two lookups.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]string
	lookups map[string]int
	err     error
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lookups == nil {
		r.lookups = map[string]int{}
	}
	n := r.lookups[host]
	r.lookups[host]++
	if r.err != nil {
		return nil, r.err
	}
	as, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range as[min(n, len(as)-1)] {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func (r *fakeResolver) count(host string) int {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[host]
}

// dialLog is the stand-in for the guard's dial step. It records every
// address the guard decided to connect to, and connects to loopback (a
// test server) only when told where.
type dialLog struct {
	mu     sync.Mutex
	dialed []string
	to     string // "127.0.0.1:port" to connect to instead; "": refuse
}

var errStandIn = errors.New("test stand-in: not connecting")

func (d *dialLog) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.dialed = append(d.dialed, address)
	to := d.to
	d.mu.Unlock()
	if to == "" {
		return nil, errStandIn
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

func (d *dialLog) addresses() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.dialed...)
}

// guardedClient returns the default client for cfg with the resolver and
// the dial step replaced.
func guardedClient(t *testing.T, cfg Config, r *fakeResolver, d *dialLog) *http.Client {
	t.Helper()
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 2 * time.Second
	}
	if r != nil {
		cfg.Resolver = r
	}
	g := newGuard(&cfg)
	g.dial = d.dial
	c := newGuardedClient(&cfg, g)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func get(ctx context.Context, c *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Close = true // a fresh connection, hence a fresh decision, every time
	resp, err := c.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// deniedForms are the addresses the guard refuses by default, with a name
// to reach each through a resolver.
var deniedForms = []struct{ name, addr string }{
	{"loopback", "127.0.0.1"},
	{"loopback-other", "127.3.2.1"},
	{"loopback6", "::1"},
	{"mapped-loopback", "::ffff:127.0.0.1"},
	{"unspecified", "0.0.0.0"},
	{"unspecified6", "::"},
	{"private-10", "10.0.0.1"},
	{"private-172", "172.16.5.4"},
	{"private-192", "192.168.1.1"},
	{"mapped-private", "::ffff:10.0.0.1"},
	{"shared", "100.64.0.1"},
	{"link-local", "169.254.1.1"},
	{"metadata", "169.254.169.254"},
	{"metadata-ecs", "169.254.170.2"},
	{"metadata-alibaba", "100.100.100.200"},
	{"metadata6", "fd00:ec2::254"},
	{"metadata-nat64", "64:ff9b::a9fe:a9fe"},
	{"metadata-mapped", "::ffff:169.254.169.254"},
	{"nat64-loopback", "64:ff9b::7f00:1"},
	{"nat64-private", "64:ff9b::a00:1"},
	{"nat64-local-use", "64:ff9b:1::a00:1"},
	{"6to4-loopback", "2002:7f00:1::1"},
	{"6to4-private", "2002:c0a8:101::1"},
	{"6to4-metadata", "2002:a9fe:a9fe::1"},
	{"teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2"},
	{"ietf", "2001:2::1"},
	{"ula", "fd12:3456::1"},
	{"link-local6", "fe80::1"},
	{"site-local6", "fec0::1"},
	{"multicast", "224.0.0.251"},
	{"multicast6", "ff02::1"},
	{"reserved", "240.0.0.1"},
	{"broadcast", "255.255.255.255"},
	{"this-network", "0.1.2.3"},
	{"documentation", "192.0.2.10"},
	{"documentation-2", "198.51.100.7"},
	{"documentation-3", "203.0.113.9"},
	{"documentation6", "2001:db8::1"},
	{"documentation6-new", "3fff::1"},
	{"benchmarking", "198.18.0.1"},
	{"ietf-protocol", "192.0.0.8"},
	{"ipv4-compatible", "::7f00:1"},
	{"discard-only", "100::1"},
	{"srv6", "5f00::1"},
}

func hostOf(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]"
	}
	return addr
}

func TestGuardRefusesEveryDeniedFormBeforeConnecting(t *testing.T) {
	t.Parallel()
	for _, f := range deniedForms {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			res := &fakeResolver{answers: map[string][][]string{f.name + ".example.com": {{f.addr}}}}
			d := &dialLog{}
			c := guardedClient(t, Config{}, res, d)
			for _, url := range []string{
				"http://" + hostOf(f.addr) + "/hook",                        // as an IP literal
				"https://" + hostOf(f.addr) + "/hook",                       // over TLS
				"http://" + f.name + ".example.com/hook",                    // a name that points there
				"https://" + strings.ToUpper(f.name) + ".example.com./hook", // spelled otherwise
			} {
				_, err := get(t.Context(), c, url)
				require.Error(t, err, url)
				assert.ErrorIs(t, err, ErrBlockedDestination, url)
			}
			assert.Empty(t, d.addresses(), "no connection was attempted")
		})
	}
}

func TestGuardRefusesLoopbackNamesWithoutALookup(t *testing.T) {
	t.Parallel()
	res := &fakeResolver{}
	d := &dialLog{}
	c := guardedClient(t, Config{}, res, d)
	for _, host := range []string{"localhost", "LocalHost.", "api.localhost", "127.1", "0x7f.1", "2130706433", "017700000001"} {
		_, err := get(t.Context(), c, "http://"+host+"/hook")
		assert.ErrorIs(t, err, ErrBlockedDestination, host)
		assert.Zero(t, res.count(host), "%s is refused without asking DNS", host)
	}
	assert.Empty(t, d.addresses())
}

func TestGuardRefusesARebindingName(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	// The first lookup answers a public address, the second 127.0.0.1.
	res := &fakeResolver{answers: map[string][][]string{"rebind.example.com": {{"93.184.215.14"}, {"127.0.0.1"}}}}
	d := &dialLog{to: srv.Listener.Addr().String()}
	c := guardedClient(t, Config{}, res, d)

	resp, err := get(t.Context(), c, "http://rebind.example.com/hook")
	require.NoError(t, err, "the public answer is accepted (the stand-in connects to a loopback server)")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []string{"93.184.215.14:80"}, d.addresses(), "the guard connects to the address it checked")

	_, err = get(t.Context(), c, "http://rebind.example.com/hook")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrBlockedDestination, "the second answer, 127.0.0.1, is refused")
	assert.Contains(t, err.Error(), "rebind.example.com (127.0.0.1)", "the error names the host and the address")
	assert.Len(t, d.addresses(), 1, "and nothing was dialled for it")
	assert.Equal(t, 2, res.count("rebind.example.com"), "every new connection resolves again")
}

func TestGuardRefusesANameIfAnyAddressIsRefused(t *testing.T) {
	t.Parallel()
	res := &fakeResolver{answers: map[string][][]string{"mixed.example.com": {{"93.184.215.14", "10.0.0.1"}}}}
	d := &dialLog{}
	c := guardedClient(t, Config{}, res, d)
	_, err := get(t.Context(), c, "http://mixed.example.com/")
	assert.ErrorIs(t, err, ErrBlockedDestination)
	assert.Empty(t, d.addresses(), "not even the public address is dialled")
}

func TestGuardFailsClosedWhenResolutionFails(t *testing.T) {
	t.Parallel()
	t.Run("lookup error", func(t *testing.T) {
		t.Parallel()
		res := &fakeResolver{err: &net.DNSError{Err: "server misbehaving", Name: "hooks.example.com", IsTemporary: true}}
		d := &dialLog{}
		_, err := get(t.Context(), guardedClient(t, Config{}, res, d), "http://hooks.example.com/")
		require.Error(t, err)
		var dnsErr *net.DNSError
		assert.ErrorAs(t, err, &dnsErr, "the lookup's error is kept")
		assert.Empty(t, d.addresses())
	})
	t.Run("unknown name", func(t *testing.T) {
		t.Parallel()
		res := &fakeResolver{}
		d := &dialLog{}
		_, err := get(t.Context(), guardedClient(t, Config{}, res, d), "http://nowhere.example.com/")
		require.Error(t, err)
		assert.Empty(t, d.addresses())
	})
	t.Run("no addresses", func(t *testing.T) {
		t.Parallel()
		res := &fakeResolver{answers: map[string][][]string{"empty.example.com": {{}}}}
		d := &dialLog{}
		_, err := get(t.Context(), guardedClient(t, Config{}, res, d), "http://empty.example.com/")
		assert.ErrorContains(t, err, "no addresses")
		assert.Empty(t, d.addresses())
	})
}

func TestGuardPorts(t *testing.T) {
	t.Parallel()
	res := &fakeResolver{answers: map[string][][]string{"hooks.example.com": {{"93.184.215.14"}}}}
	cases := []struct {
		name    string
		cfg     Config
		url     string
		allowed bool
	}{
		{"80", Config{}, "http://hooks.example.com/", true},
		{"443", Config{}, "https://hooks.example.com/", true},
		{"explicit 443", Config{}, "http://hooks.example.com:443/", true},
		{"8443 by default", Config{}, "https://hooks.example.com:8443/", false},
		{"8443 as IP literal", Config{}, "https://93.184.215.14:8443/", false},
		{"22", Config{}, "http://hooks.example.com:22/", false},
		{"8443 configured", Config{AllowedPorts: []int{8443}}, "https://hooks.example.com:8443/", true},
		{"8080 not configured", Config{AllowedPorts: []int{8443}}, "http://hooks.example.com:8080/", false},
		{"any port with private networks", Config{AllowPrivateNetworks: true}, "http://hooks.example.com:6379/", true},
		{"allowed network does not open ports", Config{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("93.184.0.0/16")}}, "http://hooks.example.com:8080/", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := &dialLog{}
			_, err := get(t.Context(), guardedClient(t, c.cfg, res, d), c.url)
			if c.allowed {
				assert.ErrorIs(t, err, errStandIn, "the guard let it through to the dial")
				assert.Len(t, d.addresses(), 1)
				return
			}
			assert.ErrorIs(t, err, ErrBlockedDestination)
			assert.ErrorContains(t, err, "not allowed")
			assert.Empty(t, d.addresses())
		})
	}
}

func TestGuardPortRefusedBeforeTheLookup(t *testing.T) {
	t.Parallel()
	res := &fakeResolver{answers: map[string][][]string{"hooks.example.com": {{"93.184.215.14"}}}}
	_, err := get(t.Context(), guardedClient(t, Config{}, res, &dialLog{}), "http://hooks.example.com:8080/")
	assert.ErrorIs(t, err, ErrBlockedDestination)
	assert.Zero(t, res.count("hooks.example.com"))
}

func TestGuardAllowsPublicAddresses(t *testing.T) {
	t.Parallel()
	g := newGuard(&Config{})
	for _, a := range []string{
		"8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.88.100.1",
		"2606:4700:4700::1111", "2a00:1450:4001:82a::200e",
		"::ffff:8.8.8.8",     // IPv4-mapped public
		"64:ff9b::808:808",   // NAT64 of a public address (IPv6-only networks with DNS64)
		"2002:808:808::1",    // 6to4 of a public address
		"2001:4860:4860::88", // inside 2001::/16 but outside 2001::/23
	} {
		assert.Empty(t, g.reason(netip.MustParseAddr(a), 443), a)
	}
}

func TestGuardAllowPrivateNetworksStillRefusesMetadata(t *testing.T) {
	t.Parallel()
	g := newGuard(&Config{AllowPrivateNetworks: true})
	for _, a := range []string{"127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "fd12::1", "169.254.1.1", "fe80::1", "100.64.0.1"} {
		assert.Empty(t, g.reason(netip.MustParseAddr(a), 6379), "%s on any port", a)
	}
	for _, a := range []string{
		"169.254.169.254", "169.254.170.2", "169.254.170.23", "100.100.100.200", "fd00:ec2::254", "fd00:ec2::23",
		"::ffff:169.254.169.254",               // mapped
		"::a9fe:a9fe",                          // IPv4-compatible
		"::ffff:0:a9fe:a9fe",                   // IPv4-translated
		"64:ff9b::a9fe:a9fe",                   // NAT64 well-known prefix
		"64:ff9b:1:a9fe:a9:fe00::",             // local-use NAT64, /48 layout
		"64:ff9b:1:0:a9:fea9:fe00:0",           // local-use NAT64, /64 layout
		"64:ff9b:1::a9fe:a9fe",                 // local-use NAT64, /96 layout
		"2002:a9fe:a9fe::1",                    // 6to4
		"2001:0:a9fe:a9fe::1",                  // Teredo server
		"2001:0:4136:e378:8000:63bf:5601:5601", // Teredo client (obfuscated)
		"fd00:ec2::254%eth0",                   // with a zone
	} {
		why := g.reason(netip.MustParseAddr(a), 80)
		assert.Contains(t, why, "metadata", a)
	}
	d := &dialLog{}
	c := guardedClient(t, Config{AllowPrivateNetworks: true}, nil, d)
	_, err := get(t.Context(), c, "http://169.254.169.254/latest/meta-data/")
	assert.ErrorIs(t, err, ErrBlockedDestination)
	assert.Empty(t, d.addresses())
}

func TestGuardAllowedNetworks(t *testing.T) {
	t.Parallel()
	g := newGuard(&Config{AllowedNetworks: []netip.Prefix{
		netip.MustParsePrefix("10.20.0.7/16"), // not masked: the guard masks it
		netip.MustParsePrefix("fd12:3456::/32"),
		netip.MustParsePrefix("169.254.0.0/16"),
	}})
	for _, a := range []string{"10.20.1.2", "::ffff:10.20.1.2", "64:ff9b::a14:102", "fd12:3456::9"} {
		assert.Empty(t, g.reason(netip.MustParseAddr(a), 443), a)
	}
	for _, a := range []string{"10.21.0.1", "127.0.0.1", "fd12:3457::1"} {
		assert.NotEmpty(t, g.reason(netip.MustParseAddr(a), 443), a)
	}
	assert.Empty(t, g.reason(netip.MustParseAddr("169.254.3.4"), 80))
	assert.Contains(t, g.reason(netip.MustParseAddr("169.254.169.254"), 80), "metadata", "an allowed network does not open metadata")
	assert.Contains(t, g.reason(netip.MustParseAddr("10.20.1.2"), 8080), "port 8080", "nor other ports")
}

func TestGuardReasonsNameTheRange(t *testing.T) {
	t.Parallel()
	g := newGuard(&Config{})
	for addr, want := range map[string]string{
		"127.0.0.1":          "loopback",
		"10.1.2.3":           "private address (RFC 1918)",
		"100.64.0.1":         "shared address space",
		"::ffff:127.0.0.1":   "loopback",
		"64:ff9b::a00:1":     "carries 10.0.0.1, private",
		"2002:7f00:1::1":     "carries 127.0.0.1, loopback",
		"fd00::1":            "unique local",
		"fe80::1%eth0":       "link-local",
		"2001:0:1::1":        "Teredo",
		"169.254.169.254":    "metadata",
		"64:ff9b::a9fe:a9fe": "metadata",
	} {
		assert.Contains(t, g.reason(netip.MustParseAddr(addr), 80), want, addr)
	}
	assert.Contains(t, g.reason(netip.MustParseAddr("8.8.8.8"), 25), "port 25 is not allowed (allowed: 80, 443")
}

func TestGuardControlChecksTheSocketAddress(t *testing.T) {
	t.Parallel()
	g := newGuard(&Config{})
	assert.ErrorIs(t, g.control("tcp4", "127.0.0.1:80", nil), ErrBlockedDestination)
	assert.ErrorIs(t, g.control("tcp6", "[::1]:443", nil), ErrBlockedDestination)
	assert.ErrorIs(t, g.control("udp4", "8.8.8.8:443", nil), ErrBlockedDestination)
	assert.NoError(t, g.control("tcp4", "8.8.8.8:443", nil))

	assert.NoError(t, proxyControl("tcp4", "10.0.0.5:3128", nil), "a configured proxy may be private")
	assert.NoError(t, proxyControl("tcp4", "127.0.0.1:3128", nil))
	assert.ErrorIs(t, proxyControl("tcp4", "169.254.169.254:80", nil), ErrBlockedDestination, "but not a metadata endpoint")
	assert.ErrorIs(t, proxyControl("tcp6", "[64:ff9b::a9fe:a9fe]:80", nil), ErrBlockedDestination)
}

func TestGuardDialsAddressesInTurn(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	res := &fakeResolver{answers: map[string][][]string{"two.example.com": {{"2606:4700::1", "93.184.215.14"}}}}
	var mu sync.Mutex
	var tried []string
	cfg := Config{AttemptTimeout: 2 * time.Second, Resolver: res}
	g := newGuard(&cfg)
	g.dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		tried = append(tried, address)
		mu.Unlock()
		if strings.HasPrefix(address, "[") {
			return nil, fmt.Errorf("stand-in: %s unreachable", address)
		}
		var nd net.Dialer
		return nd.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	c := newGuardedClient(&cfg, g)
	t.Cleanup(c.CloseIdleConnections)
	resp, err := get(t.Context(), c, "http://two.example.com/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []string{"[2606:4700::1]:80", "93.184.215.14:80"}, tried)
}
