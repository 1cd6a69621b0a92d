package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// maxResponseHeaderBytes caps the header block of an answer; the body is
// capped by Config.MaxResponseBytes.
const maxResponseHeaderBytes = 64 << 10

// newGuardedClient returns the default client for cfg (defaults filled):
// g, built from cfg, decides every connection, redirects are not followed (a 3xx is
// an answer like any other), proxies come only from cfg.Proxy, and every
// stage has a timeout within AttemptTimeout.
func newGuardedClient(cfg *Config, g *guard) *http.Client {
	return &http.Client{
		Transport: newGuardedTransport(cfg, g),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// newGuardedTLSClient is newGuardedClient with tc (cloned) as the TLS
// configuration of its connections, direct and through a proxy.
func newGuardedTLSClient(cfg *Config, g *guard, tc *tls.Config) *http.Client {
	c := newGuardedClient(cfg, g)
	t := c.Transport.(*guardedTransport)
	tc = tc.Clone()
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	t.direct.TLSClientConfig = tc
	if t.proxied != nil {
		t.proxied.TLSClientConfig = tc
	}
	return c
}

// guardedTransport sends a request directly, through the guard's dialer,
// or, when cfg.Proxy names a proxy for it, through a second transport that
// only ever dials proxies. Keeping the two apart means a direct connection
// can never be mistaken for a proxy connection and escape the guard.
type guardedTransport struct {
	guard   *guard
	direct  *http.Transport
	proxy   func(*http.Request) (*url.URL, error) // nil: no proxy
	proxied *http.Transport                       // nil when proxy is nil
}

func newGuardedTransport(cfg *Config, g *guard) *guardedTransport {
	t := &guardedTransport{guard: g, direct: baseTransport(cfg.AttemptTimeout)}
	// Every worker may hold a connection to one busy receiver; fewer idle
	// slots than workers would close and redial connections all the time.
	t.direct.MaxIdleConnsPerHost = max(t.direct.MaxIdleConnsPerHost, cfg.Workers)
	t.direct.MaxIdleConns = max(t.direct.MaxIdleConns, cfg.Workers)
	t.direct.DialContext = g.DialContext
	if cfg.Proxy != nil {
		t.proxy = cfg.Proxy
		t.proxied = baseTransport(cfg.AttemptTimeout)
		t.proxied.Proxy = proxyFromContext
		pd := &net.Dialer{Timeout: g.connectTimeout, KeepAlive: 30 * time.Second, Control: proxyControl}
		t.proxied.DialContext = pd.DialContext
	}
	return t
}

// baseTransport holds the settings both transports share. Compression is
// off, so the body cap counts the bytes on the wire and no untrusted
// stream is inflated; Proxy is nil, so the environment's HTTP_PROXY and
// friends are ignored.
func baseTransport(attempt time.Duration) *http.Transport {
	step := min(attempt, maxConnectTimeout)
	return &http.Transport{
		Proxy:                  nil,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    step,
		ResponseHeaderTimeout:  attempt,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		MaxIdleConns:           512,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		// Find dead HTTP/2 connections in the pool before a request waits
		// on one until its attempt times out.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 10 * time.Second},
	}
}

// RoundTrip sends req directly, or through the proxy cfg.Proxy names for
// it after checking what can be checked without resolving the target's
// name (the proxy does that): the port, an IP-literal host, loopback
// names.
func (t *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.proxy == nil {
		return t.direct.RoundTrip(req)
	}
	u, err := t.proxy(req)
	if err == nil && u != nil {
		err = t.guard.checkTarget(req.URL)
	}
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper closes the body, on errors too
		}
		return nil, err
	}
	if u == nil {
		return t.direct.RoundTrip(req)
	}
	return t.proxied.RoundTrip(req.WithContext(context.WithValue(req.Context(), proxyKey{}, u)))
}

// CloseIdleConnections closes the idle connections of both transports.
func (t *guardedTransport) CloseIdleConnections() {
	t.direct.CloseIdleConnections()
	if t.proxied != nil {
		t.proxied.CloseIdleConnections()
	}
}

type proxyKey struct{}

// proxyFromContext hands the proxied transport the proxy RoundTrip chose;
// it never answers "no proxy", so that transport never dials a target.
func proxyFromContext(r *http.Request) (*url.URL, error) {
	if u, ok := r.Context().Value(proxyKey{}).(*url.URL); ok && u != nil {
		return u, nil
	}
	return nil, errors.New("webhook: proxied request without a proxy")
}

// proxyControl lets the proxied transport connect to the proxy the
// operator configured, wherever it is, except to a metadata endpoint.
func proxyControl(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return blocked(address, "network "+network+" is not allowed")
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return blocked(address, "not an ip:port")
	}
	if isMetadata(ap.Addr().WithZone("")) {
		return blocked(address, "cloud metadata or credentials endpoint")
	}
	return nil
}

// checkTarget applies the guard to a URL without resolving its host: the
// port, an IP-literal host, and host names that are never public. Register
// uses it for every URL, and the transport for requests sent through a
// proxy; the dialer's check of the resolved addresses is the real guard.
func (g *guard) checkTarget(u *url.URL) error {
	host := u.Hostname()
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		var err error
		if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
			return blocked(u.Host, "not a valid port")
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return g.check("", ip, port)
	}
	if err := g.checkName(host); err != nil {
		return err
	}
	if why := g.portReason(port); why != "" {
		return blocked(u.Host, why)
	}
	return nil
}

// endsInNumber reports whether a host name's last label is a number, as
// WHATWG URL parsing defines it: such a host is an IPv4 address in some
// parser's eyes (127.1, 0x7f.0.0.1, 2130706433) and a name in others'.
func endsInNumber(host string) bool {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	if last == "" {
		return false
	}
	if h, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// roundTrip sends an attempt's request through w's client. When that is
// the client herald built, it calls the client's guarded transport as
// the client's Do would: the client
// follows no redirect and has no timeout of its own (the attempt's
// context has one), so all Do adds is a copy of the headers for redirects
// that never happen, and the wrapping of errors, done here alike. A
// request whose URL carries a user name, which Do turns into Basic
// credentials, goes through client.
func (d *Dispatcher) roundTrip(w *compiled, req *http.Request) (*http.Response, error) {
	rt := d.own
	if rt == nil || w.client != d.client || req.URL.User != nil {
		return w.client.Do(req)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		var te tls.RecordHeaderError
		if errors.As(err, &te) && string(te.RecordHeader[:]) == "HTTP/" {
			err = http.ErrSchemeMismatch
		}
		return nil, &url.Error{Op: urlErrorOp(req.Method), URL: req.URL.String(), Err: err}
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		// Do reads the target of a redirect before its redirect policy
		// declines to follow it, and fails on one that does not parse.
		if loc := resp.Header.Get("Location"); loc != "" && redirectable(req, resp.StatusCode) {
			if _, perr := req.URL.Parse(loc); perr != nil {
				resp.Body.Close()
				return nil, &url.Error{Op: urlErrorOp(req.Method), URL: req.URL.String(),
					Err: fmt.Errorf("failed to parse Location header %q: %v", loc, perr)}
			}
		}
	}
	return resp, nil
}

// redirectable reports whether http.Client would consider following a
// redirect of code for req: a 307 or 308 only when the body can be sent
// again.
func redirectable(req *http.Request, code int) bool {
	if code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect {
		return true
	}
	return req.GetBody != nil || req.Body == nil || req.Body == http.NoBody
}

// urlErrorOp is the Op of the *url.Error http.Client returns for method.
func urlErrorOp(method string) string {
	if method == "" {
		return "Get"
	}
	for i := range len(method) {
		if method[i] >= utf8.RuneSelf {
			return method
		}
	}
	return method[:1] + strings.ToLower(method[1:])
}
