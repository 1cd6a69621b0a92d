package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrBlockedDestination: the guarded transport, or Register, refused an
// address (loopback, private, cloud metadata ...) or a port. Every such
// refusal wraps it, and none of them opened a connection.
var ErrBlockedDestination = errors.New("webhook: destination not allowed")

// Resolver looks up the addresses of a host name for the guarded
// transport. *net.Resolver satisfies it. Every address it returns is
// checked before a connection is opened, so a resolver cannot widen what
// the guard lets through.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// guard decides which addresses and ports the default transport may reach,
// and dials only those. One decision function, reason, serves the dialer
// at connect time and Register for IP-literal URLs.
type guard struct {
	allowPrivate bool
	allowed      []netip.Prefix // reachable despite being non-public
	ports        []int          // reachable besides 80 and 443
	resolver     Resolver
	// dial connects to an address the guard has already accepted, given as
	// "ip:port". Tests replace it to stop at the decision.
	dial func(ctx context.Context, network, address string) (net.Conn, error)
	// connectTimeout bounds the connection to one address.
	connectTimeout time.Duration
}

// newGuard builds the guard cfg describes; cfg's defaults must be filled.
func newGuard(cfg *Config) *guard {
	g := &guard{
		allowPrivate:   cfg.AllowPrivateNetworks,
		ports:          slices.Clone(cfg.AllowedPorts),
		resolver:       cfg.Resolver,
		connectTimeout: min(cfg.AttemptTimeout, maxConnectTimeout),
	}
	for _, p := range cfg.AllowedNetworks {
		g.allowed = append(g.allowed, p.Masked())
	}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	if g.connectTimeout <= 0 {
		g.connectTimeout = maxConnectTimeout
	}
	d := &net.Dialer{Timeout: g.connectTimeout, KeepAlive: 30 * time.Second, Control: g.control}
	g.dial = d.DialContext
	return g
}

// maxConnectTimeout bounds the TCP connect and the TLS handshake; both are
// also bounded by the attempt's timeout.
const maxConnectTimeout = 10 * time.Second

// checkTransportConfig returns what is wrong with the guard's settings.
func (c *Config) checkTransportConfig() []error {
	var errs []error
	for _, p := range c.AllowedPorts {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("webhook: Config.AllowedPorts: %d is not a port", p))
		}
	}
	for _, p := range c.AllowedNetworks {
		if !p.IsValid() {
			errs = append(errs, errors.New("webhook: Config.AllowedNetworks holds an invalid prefix"))
		}
	}
	if c.HTTPClient != nil && (c.Proxy != nil || c.Resolver != nil) {
		errs = append(errs, errors.New("webhook: Config.Proxy and Config.Resolver configure the default transport; "+
			"they would be ignored with Config.HTTPClient set"))
	}
	return errs
}

// blocked builds a refusal: subject is what was asked for (a host, an
// address), why what is wrong with it.
func blocked(subject, why string) error {
	return fmt.Errorf("%w: %s: %s", ErrBlockedDestination, subject, why)
}

// check refuses ip:port unless the guard allows it; host, when not empty,
// is the name that resolved to ip and is named in the error.
func (g *guard) check(host string, ip netip.Addr, port int) error {
	why := g.reason(ip, port)
	if why == "" {
		return nil
	}
	subject := ip.String()
	if host != "" && host != subject {
		subject = host + " (" + subject + ")"
	}
	return blocked(subject, why)
}

// reason returns why ip:port may not be reached, or "" when it may.
//
// The order is the policy: cloud metadata is refused whatever the
// configuration; AllowPrivateNetworks then allows everything else; then
// the port must be allowed; then the address must be public or inside an
// allowed network. An IPv6 address that carries an IPv4 address
// (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged as that
// IPv4 address.
func (g *guard) reason(ip netip.Addr, port int) string {
	if !ip.IsValid() {
		return "not an IP address"
	}
	ip = ip.WithZone("")
	if isMetadata(ip) {
		return "cloud metadata or credentials endpoint (refused even with AllowPrivateNetworks)"
	}
	if g.allowPrivate {
		return ""
	}
	if why := g.portReason(port); why != "" {
		return why
	}
	v := ip
	if v4, ok := carriedIPv4(ip); ok {
		v = v4
	}
	for _, p := range g.allowed {
		if p.Contains(v) || p.Contains(ip) {
			return ""
		}
	}
	if why := nonPublic(v); why != "" {
		if v != ip {
			return fmt.Sprintf("carries %s, %s", v, why)
		}
		return why
	}
	return ""
}

// portReason returns why port may not be used, or "" when it may: 80 and
// 443 always, AllowedPorts too, any port with AllowPrivateNetworks.
func (g *guard) portReason(port int) string {
	if g.allowPrivate || port == 80 || port == 443 || slices.Contains(g.ports, port) {
		return ""
	}
	ps := append([]int{80, 443}, g.ports...)
	slices.Sort(ps)
	list := make([]string, 0, len(ps))
	for _, p := range slices.Compact(ps) {
		list = append(list, strconv.Itoa(p))
	}
	return fmt.Sprintf("port %d is not allowed (allowed: %s; see Config.AllowedPorts)", port, strings.Join(list, ", "))
}

// checkName refuses, without asking a resolver, host names that always
// mean this machine (RFC 6761) and numeric hosts that resolvers read
// differently. Everything else is decided on the addresses
// it resolves to.
func (g *guard) checkName(host string) error {
	if g.allowPrivate {
		return nil
	}
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return blocked(host, "a loopback name")
	}
	if endsInNumber(h) {
		return blocked(host, "a numeric host that is not a standard IP address (127.1, 0x7f.1 and 2130706433 mean 127.0.0.1 to some resolvers)")
	}
	return nil
}

// DialContext is the default transport's dialer. It resolves the host
// itself, refuses the whole name if any of its addresses is refused (so a
// name that points both outward and inward cannot be used to pick the
// inward one), and connects only to the addresses it checked. A lookup
// that fails, or finds nothing, fails the dial: nothing is connected.
func (g *guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, blocked(address, "not a host:port")
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, blocked(address, "not a valid port")
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		if err := g.checkName(host); err != nil {
			return nil, err
		}
		if why := g.portReason(port); why != "" {
			return nil, blocked(address, why) // no lookup needed
		}
		found, err := g.resolver.LookupNetIP(ctx, ipNetwork(network), host)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("resolving %s: no addresses", host)
		}
		ips = make([]netip.Addr, len(found)) // the resolver's slice may be shared
		for i, ip := range found {
			ips[i] = ip.Unmap()
		}
	}
	for _, ip := range ips {
		if err := g.check(host, ip, port); err != nil {
			return nil, err
		}
	}
	return dialInTurn(ctx, g.dial, network, ips, port, g.connectTimeout)
}

// control checks the socket address once more just before connect: the
// decision then holds for the very address the kernel is given.
func (g *guard) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return blocked(address, "network "+network+" is not allowed")
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return blocked(address, "not an ip:port")
	}
	return g.check("", ap.Addr(), int(ap.Port()))
}

// dialInTurn tries each address in the order given, giving each a share of
// the time left (at least 2s, at most timeout) so one dead address does not
// eat the whole attempt. It returns the first connection made, or the
// first error.
func dialInTurn(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error),
	network string, ips []netip.Addr, port int, timeout time.Duration) (net.Conn, error) {
	var first error
	for i, ip := range ips {
		per := timeout
		if dl, ok := ctx.Deadline(); ok {
			per = min(per, max(time.Until(dl)/time.Duration(len(ips)-i), 2*time.Second))
		}
		dctx, cancel := context.WithTimeout(ctx, per)
		c, err := dial(dctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
		cancel()
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

func ipNetwork(network string) string {
	switch network {
	case "tcp4":
		return "ip4"
	case "tcp6":
		return "ip6"
	}
	return "ip"
}

// metadata lists the cloud instance-metadata and credentials endpoints.
// They hand out the machine's cloud credentials to whoever asks, so they
// stay refused even with AllowPrivateNetworks or an AllowedNetworks entry
// that covers them.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack ...
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata and credentials
	netip.MustParseAddr("169.254.170.23"),  // AWS EKS Pod Identity credentials
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS instance metadata over IPv6
	netip.MustParseAddr("fd00:ec2::23"),    // AWS EKS Pod Identity over IPv6
}

// isMetadata reports whether ip is a metadata endpoint, or an IPv6 address
// that may lead to one through any of the IPv4 embeddings.
func isMetadata(ip netip.Addr) bool {
	if slices.Contains(metadata, ip) {
		return true
	}
	for _, v4 := range possibleIPv4s(ip) {
		if slices.Contains(metadata, v4) {
			return true
		}
	}
	return false
}

var (
	mappedPrefix  = netip.MustParsePrefix("::ffff:0:0/96")   // IPv4-mapped (RFC 4291)
	compatPrefix  = netip.MustParsePrefix("::/96")           // IPv4-compatible, deprecated (RFC 4291)
	siitPrefix    = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated (RFC 2765)
	nat64Prefix   = netip.MustParsePrefix("64:ff9b::/96")    // NAT64 well-known prefix (RFC 6052)
	nat64Local    = netip.MustParsePrefix("64:ff9b:1::/48")  // NAT64 local-use (RFC 8215)
	sixToFour     = netip.MustParsePrefix("2002::/16")       // 6to4 (RFC 3056)
	teredoPrefix  = netip.MustParsePrefix("2001::/32")       // Teredo (RFC 4380)
	globalUnicast = netip.MustParsePrefix("2000::/3")        // the IPv6 internet

	v4Specials = []special{
		{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" address (RFC 791)"},
		{netip.MustParsePrefix("10.0.0.0/8"), "private address (RFC 1918)"},
		{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (RFC 6598)"},
		{netip.MustParsePrefix("127.0.0.0/8"), "loopback address"},
		{netip.MustParsePrefix("169.254.0.0/16"), "link-local address"},
		{netip.MustParsePrefix("172.16.0.0/12"), "private address (RFC 1918)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment (RFC 6890)"},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation address (RFC 5737)"},
		{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast address, deprecated (RFC 7526)"},
		{netip.MustParsePrefix("192.168.0.0/16"), "private address (RFC 1918)"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking address (RFC 2544)"},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation address (RFC 5737)"},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation address (RFC 5737)"},
		{netip.MustParsePrefix("224.0.0.0/4"), "multicast address"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved address (RFC 1112), broadcast included"},
	}
	v6Specials = []special{
		{netip.MustParsePrefix("::/128"), "unspecified address"},
		{netip.MustParsePrefix("::1/128"), "loopback address"},
		{compatPrefix, "IPv4-compatible address (deprecated)"},
		{siitPrefix, "IPv4-translated address"},
		{nat64Local, "local-use NAT64 address (RFC 8215)"},
		{netip.MustParsePrefix("100::/64"), "discard-only address (RFC 6666)"},
		{netip.MustParsePrefix("fc00::/7"), "unique local address (RFC 4193)"},
		{netip.MustParsePrefix("fec0::/10"), "site-local address"},
		{netip.MustParsePrefix("fe80::/10"), "link-local address"},
		{netip.MustParsePrefix("ff00::/8"), "multicast address"},
		{teredoPrefix, "Teredo address (RFC 4380)"},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation address (RFC 3849)"},
		{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment (RFC 2928)"},
		{netip.MustParsePrefix("3fff::/20"), "documentation address (RFC 9637)"},
		{netip.MustParsePrefix("5f00::/16"), "SRv6 SID (RFC 9602)"},
	}
)

// special is a range that is not the public internet.
type special struct {
	prefix netip.Prefix
	what   string
}

// nonPublic says why ip is not a public address, or "" when it is. IPv4
// addresses are checked against the IANA special-purpose registry (those
// not globally reachable) plus multicast and reserved space. IPv6 must be
// global unicast (2000::/3), outside the special ranges within it.
func nonPublic(ip netip.Addr) string {
	if ip.Is4() {
		for _, s := range v4Specials {
			if s.prefix.Contains(ip) {
				return s.what
			}
		}
		return ""
	}
	for _, s := range v6Specials {
		if s.prefix.Contains(ip) {
			return s.what
		}
	}
	if !globalUnicast.Contains(ip) {
		return "not a global unicast address (outside 2000::/3)"
	}
	return ""
}

// carriedIPv4 returns the IPv4 address an IPv6 address stands for when the
// embedding is fixed by its prefix: IPv4-mapped, the NAT64 well-known
// prefix (always /96) and 6to4.
func carriedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case mappedPrefix.Contains(ip), nat64Prefix.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// possibleIPv4s returns every IPv4 address an IPv6 address might lead to
// through a translator or tunnel, for the metadata check: the fixed forms
// of carriedIPv4, the deprecated IPv4-compatible and IPv4-translated
// forms, local-use NAT64 at each RFC 6052 position its prefix allows, and
// Teredo's server and client addresses.
func possibleIPv4s(ip netip.Addr) []netip.Addr {
	if !ip.Is6() {
		return nil
	}
	b := ip.As16()
	at := func(i ...int) netip.Addr {
		return netip.AddrFrom4([4]byte{b[i[0]], b[i[1]], b[i[2]], b[i[3]]})
	}
	var out []netip.Addr
	if v4, ok := carriedIPv4(ip); ok {
		out = append(out, v4)
	}
	switch {
	case compatPrefix.Contains(ip), siitPrefix.Contains(ip):
		out = append(out, at(12, 13, 14, 15))
	case nat64Local.Contains(ip):
		// RFC 6052 §2.2: prefix lengths /48, /56, /64 and /96 fit inside
		// 64:ff9b:1::/48; bits 64-71 are always skipped.
		out = append(out, at(6, 7, 9, 10), at(7, 9, 10, 11), at(9, 10, 11, 12), at(12, 13, 14, 15))
	case teredoPrefix.Contains(ip):
		client := at(12, 13, 14, 15).As4()
		for i := range client {
			client[i] ^= 0xff
		}
		out = append(out, at(4, 5, 6, 7), netip.AddrFrom4(client))
	}
	return out
}
