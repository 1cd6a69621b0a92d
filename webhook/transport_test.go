package webhook

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store/memory"
)

// defaultClient returns the client New would build for cfg, with its real
// dialer: only for tests whose every connection goes to 127.0.0.1.
func defaultClient(t *testing.T, cfg Config) *http.Client {
	t.Helper()
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 2 * time.Second
	}
	c := newGuardedClient(&cfg, newGuard(&cfg))
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// trust makes c trust srv's certificate.
func trust(c *http.Client, srv *httptest.Server) {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr := c.Transport.(*guardedTransport)
	tr.direct.TLSClientConfig.RootCAs = pool
	if tr.proxied != nil {
		tr.proxied.TLSClientConfig.RootCAs = pool
	}
}

func portOf(t *testing.T, srv *httptest.Server) int {
	t.Helper()
	ap, err := netip.ParseAddrPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	return int(ap.Port())
}

func TestDefaultTransportSpeaksHTTP2(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	for name, cfg := range map[string]Config{
		"private networks allowed": {AllowPrivateNetworks: true},
		"loopback allow-listed":    {AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, AllowedPorts: []int{portOf(t, srv)}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := defaultClient(t, cfg)
			trust(c, srv)
			resp, err := get(t.Context(), c, srv.URL)
			require.NoError(t, err)
			assert.Equal(t, 2, resp.ProtoMajor, "HTTP/2 survives the custom dialer")
			assert.Equal(t, "HTTP/2.0", resp.Header.Get("X-Proto"))
		})
	}
	t.Run("guard on", func(t *testing.T) {
		t.Parallel()
		c := defaultClient(t, Config{})
		trust(c, srv)
		_, err := get(t.Context(), c, srv.URL)
		assert.ErrorIs(t, err, ErrBlockedDestination)
	})
}

func TestDefaultTransportDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	resp, err := get(t.Context(), defaultClient(t, Config{AllowPrivateNetworks: true}), srv.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusFound, resp.StatusCode, "the 302 is the answer")
	assert.Zero(t, reached.Load(), "its Location is not visited")
}

// TestRoundTripAnswersAsTheClientDoes: attempts through herald's own
// client skip http.Client and call its transport; what they get back,
// answers and errors alike, is what the client would have returned.
func TestRoundTripAnswersAsTheClientDoes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/bad-location":
			w.Header()["Location"] = []string{"http://[::1"}
			w.WriteHeader(http.StatusFound)
		case "/temporary":
			w.Header()["Location"] = []string{"%zz"}
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "/found":
			w.Header()["Location"] = []string{"/elsewhere"}
			w.WriteHeader(http.StatusFound)
		case "/auth":
			w.Header().Set("X-Authorization", r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String() + "/"
	require.NoError(t, ln.Close())
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	u.User = url.UserPassword("ann", "s3cret")
	withUser := u.String() + "/auth"

	d, err := New(Config{Store: memory.New(), AllowPrivateNetworks: true, AttemptTimeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(d.closeIdle)
	require.NotNil(t, d.own, "herald built the client")
	w := &compiled{client: d.client}
	type answer struct {
		status int
		header string
		err    string
	}
	send := func(do func(*http.Request) (*http.Response, error), method, target string, body []byte) answer {
		req, err := http.NewRequestWithContext(t.Context(), method, target, bytes.NewReader(body))
		require.NoError(t, err)
		if body == nil {
			req.Body, req.GetBody, req.ContentLength = nil, nil, 0
		}
		resp, err := do(req)
		if err != nil {
			return answer{err: err.Error()}
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return answer{status: resp.StatusCode, header: resp.Header.Get("Location") + resp.Header.Get("X-Authorization")}
	}
	for _, c := range []struct{ method, url string }{
		{http.MethodPost, srv.URL + "/ok"},
		{http.MethodPost, srv.URL + "/bad-location"},
		{http.MethodGet, srv.URL + "/bad-location"},
		{http.MethodPost, srv.URL + "/temporary"},
		{http.MethodPut, srv.URL + "/found"},
		{http.MethodPost, refused},
		{http.MethodPatch, refused},
		{http.MethodPost, withUser},
	} {
		for _, body := range [][]byte{nil, []byte(`{"id":"1"}`)} {
			direct := send(func(r *http.Request) (*http.Response, error) { return d.roundTrip(w, r) }, c.method, c.url, body)
			client := send(d.client.Do, c.method, c.url, body)
			assert.Equal(t, client, direct, "%s %s, body %q", c.method, c.url, body)
		}
	}
	assert.Contains(t, send(d.client.Do, http.MethodPost, srv.URL+"/bad-location", nil).err, "failed to parse Location header",
		"the case is one the client fails")
	assert.Equal(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("ann:s3cret")),
		send(func(r *http.Request) (*http.Response, error) { return d.roundTrip(w, r) }, http.MethodPost, withUser, nil).header,
		"a URL's user name and password are sent as Basic credentials")
}

// proxyServer is a loopback HTTP proxy stand-in: it records the
// absolute-form target of every plain-HTTP request and answers 200.
func proxyServer(t *testing.T) (*httptest.Server, *atomic.Value) {
	t.Helper()
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.String())
		w.Header().Set("X-Via", "proxy")
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestDefaultTransportIgnoresEnvironmentProxies(t *testing.T) {
	// Not parallel: it sets environment variables.
	proxy, seen := proxyServer(t)
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Via", "direct")
	}))
	t.Cleanup(target.Close)
	resp, err := get(t.Context(), defaultClient(t, Config{AllowPrivateNetworks: true}), target.URL+"/hook")
	require.NoError(t, err)
	assert.Equal(t, "direct", resp.Header.Get("X-Via"))
	assert.Nil(t, seen.Load(), "the proxy from the environment was not used")
}

func TestConfiguredProxy(t *testing.T) {
	t.Parallel()
	proxy, seen := proxyServer(t)
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	res := &fakeResolver{answers: map[string][][]string{"direct.example.com": {{"10.0.0.1"}}}}
	cfg := Config{
		AttemptTimeout: 2 * time.Second,
		Resolver:       res,
		Proxy: func(r *http.Request) (*url.URL, error) {
			if r.URL.Hostname() == "direct.example.com" {
				return nil, nil // this one goes directly
			}
			return proxyURL, nil
		},
	}
	g := newGuard(&cfg)
	d := &dialLog{}
	g.dial = d.dial
	c := newGuardedClient(&cfg, g)
	t.Cleanup(c.CloseIdleConnections)

	t.Run("a name goes to the proxy, which resolves it", func(t *testing.T) {
		resp, err := get(t.Context(), c, "http://hooks.example.com/hook?x=1")
		require.NoError(t, err, "the proxy on 127.0.0.1 is reachable although the guard is on")
		assert.Equal(t, "proxy", resp.Header.Get("X-Via"))
		assert.Equal(t, "http://hooks.example.com/hook?x=1", seen.Load())
		assert.Zero(t, res.count("hooks.example.com"), "herald does not resolve a proxied host")
		assert.Empty(t, d.addresses(), "nor dial it")
	})
	t.Run("a refused IP literal never reaches the proxy", func(t *testing.T) {
		seen.Store("")
		for _, u := range []string{"http://10.0.0.1/hook", "http://[::1]/hook", "http://169.254.169.254/latest", "http://localhost/hook", "http://127.1/hook"} {
			_, err := get(t.Context(), c, u)
			assert.ErrorIs(t, err, ErrBlockedDestination, u)
		}
		assert.Equal(t, "", seen.Load())
	})
	t.Run("the port rule applies before the proxy", func(t *testing.T) {
		seen.Store("")
		_, err := get(t.Context(), c, "http://hooks.example.com:6379/")
		assert.ErrorIs(t, err, ErrBlockedDestination)
		assert.Equal(t, "", seen.Load())
	})
	t.Run("a request the proxy function sends directly meets the guard", func(t *testing.T) {
		_, err := get(t.Context(), c, "http://direct.example.com/hook")
		assert.ErrorIs(t, err, ErrBlockedDestination)
		assert.Empty(t, d.addresses())
	})
}

func TestProxyFunctionErrorFailsTheRequest(t *testing.T) {
	t.Parallel()
	boom := errors.New("no proxy for you")
	c := defaultClient(t, Config{Proxy: func(*http.Request) (*url.URL, error) { return nil, boom }})
	_, err := get(t.Context(), c, "http://hooks.example.com/")
	assert.ErrorIs(t, err, boom)
}

func TestDefaultTransportSettings(t *testing.T) {
	t.Parallel()
	cfg := Config{AttemptTimeout: 15 * time.Second}
	tr := newGuardedClient(&cfg, newGuard(&cfg)).Transport.(*guardedTransport).direct
	assert.Nil(t, tr.Proxy, "no proxy from the environment")
	assert.True(t, tr.DisableCompression, "the body cap counts wire bytes; nothing untrusted is inflated")
	assert.Equal(t, 10*time.Second, tr.TLSHandshakeTimeout)
	assert.Equal(t, 15*time.Second, tr.ResponseHeaderTimeout)
	assert.EqualValues(t, maxResponseHeaderBytes, tr.MaxResponseHeaderBytes)

	short := Config{AttemptTimeout: 300 * time.Millisecond}
	g := newGuard(&short)
	assert.Equal(t, 300*time.Millisecond, g.connectTimeout, "no stage outlasts the attempt")
	tr = newGuardedClient(&short, g).Transport.(*guardedTransport).direct
	assert.Equal(t, 300*time.Millisecond, tr.TLSHandshakeTimeout)
}

func TestConfiguredProxyTunnelsHTTPS(t *testing.T) {
	t.Parallel()
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
	}))
	target.EnableHTTP2 = true
	target.StartTLS()
	t.Cleanup(target.Close)
	// The stand-in proxy tunnels every CONNECT to the loopback target,
	// whatever it was asked for, and records what that was.
	var asked atomic.Value
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		asked.Store(r.Host)
		up, err := net.Dial("tcp", target.Listener.Addr().String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { _, _ = io.Copy(up, buf); up.Close() }()
		_, _ = io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(proxy.Close)
	proxyURL, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	c := defaultClient(t, Config{Proxy: http.ProxyURL(proxyURL), Resolver: &fakeResolver{}})
	trust(c, target)
	resp, err := get(t.Context(), c, "https://example.com/hook") // the test certificate's name
	require.NoError(t, err)
	assert.Equal(t, "example.com:443", asked.Load())
	assert.Equal(t, "HTTP/2.0", resp.Header.Get("X-Proto"), "HTTP/2 through the tunnel")
}
