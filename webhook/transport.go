package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// ErrBlockedDestination: the guarded transport refused to connect to an
// address (loopback, private, metadata ...) or port.
var ErrBlockedDestination = errors.New("webhook: destination not allowed")

type guardOptions struct {
	allowPrivate bool
}

// metadata addresses stay refused even with AllowPrivateNetworks.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00:ec2::254"),
}

// checkDestination decides whether the guarded transport may connect to
// ip:port.
func (o guardOptions) checkDestination(ip netip.Addr, port int) error {
	ip = ip.Unmap()
	for _, m := range metadata {
		if ip == m {
			return fmt.Errorf("%w: %s is a cloud metadata address", ErrBlockedDestination, ip)
		}
	}
	if o.allowPrivate {
		return nil
	}
	if err := o.checkPort(port); err != nil {
		return err
	}
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return fmt.Errorf("%w: %s is not a public address", ErrBlockedDestination, ip)
	}
	return nil
}

// checkPort allows 80 and 443 unless private networks are allowed.
func (o guardOptions) checkPort(port int) error {
	if o.allowPrivate || port == 80 || port == 443 {
		return nil
	}
	return fmt.Errorf("%w: port %d (only 80 and 443)", ErrBlockedDestination, port)
}

// newGuardedClient returns the default client: no proxy from the
// environment, no redirects, and a dialer that checks every resolved
// address at connect time.
func newGuardedClient(o guardOptions) *http.Client {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			host, portStr, err := net.SplitHostPort(address)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrBlockedDestination, err)
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("%w: %q is not an IP address", ErrBlockedDestination, host)
			}
			port, _ := strconv.Atoi(portStr)
			return o.checkDestination(ip, port)
		},
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           func(ctx context.Context, n, a string) (net.Conn, error) { return dialer.DialContext(ctx, n, a) },
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the attempt's context
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
