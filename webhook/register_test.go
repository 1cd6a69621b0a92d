package webhook_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
)

// guarded returns a dispatcher with the default guard, for Register tests.
func guarded(t *testing.T, cfg webhook.Config) *webhook.Dispatcher {
	t.Helper()
	cfg.Store = memory.New()
	d, err := webhook.New(cfg)
	require.NoError(t, err)
	return d
}

func hookTo(url string) webhook.Webhook {
	return webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update}, URL: url}
}

// refused asserts that Register refuses w with ErrInvalidWebhook and that
// the message says what is wrong.
func refused(t *testing.T, d *webhook.Dispatcher, w webhook.Webhook, says string) error {
	t.Helper()
	before, err := d.Webhooks(t.Context())
	require.NoError(t, err)
	_, err = d.Register(t.Context(), w)
	require.Error(t, err)
	assert.ErrorIs(t, err, webhook.ErrInvalidWebhook)
	assert.Contains(t, err.Error(), says)
	after, lerr := d.Webhooks(t.Context())
	require.NoError(t, lerr)
	assert.Len(t, after, len(before), "nothing was stored")
	return err
}

func TestRegisterRefusesFileURL(t *testing.T) {
	t.Parallel()
	refused(t, guarded(t, webhook.Config{}), hookTo("file:///etc/passwd"), `scheme "file" is not http or https`)
}

func TestRegisterRefusesGopherURL(t *testing.T) {
	t.Parallel()
	refused(t, guarded(t, webhook.Config{}), hookTo("gopher://hooks.example.com:70/_SET%20x"), `scheme "gopher" is not http or https`)
}

func TestRegisterRefusesOtherSchemes(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{})
	for _, u := range []string{"ftp://hooks.example.com/", "dict://hooks.example.com:11211/", "ws://hooks.example.com/", "javascript:alert(1)", "data:text/plain,hi"} {
		refused(t, d, hookTo(u), "is not http or https")
	}
}

func TestRegisterRefusesRelativeURL(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{})
	for _, u := range []string{"/hooks/payroll", "hooks/payroll", "//hooks.example.com/payroll", "hooks.example.com/payroll"} {
		refused(t, d, hookTo(u), "is not http or https")
	}
}

func TestRegisterRefusesHostlessURL(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{})
	for _, u := range []string{"https:///payroll", "http://:80/payroll", "https://?x=1", "http:payroll"} {
		_, err := d.Register(t.Context(), hookTo(u))
		require.Error(t, err, u)
		assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, u)
	}
	refused(t, d, hookTo("https:///payroll"), "has no host")
}

func TestRegisterRefusesCRLFInHeaderValues(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{})
	for _, v := range []string{"abc\r\nX-Injected: 1", "abc\nX-Injected: 1", "abc\rdef", "abc\x00def"} {
		w := hookTo("https://hooks.example.com/payroll")
		w.Headers = map[string]string{"X-Api-Key": v}
		err := refused(t, d, w, "control character")
		assert.NotContains(t, err.Error(), "abc", "header values are not echoed")
	}
}

func TestRegisterRefusesCRLFInHeaderNames(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{})
	for _, n := range []string{"X-Api-Key\r\nX-Injected", "X-Api-Key\n", "X Api Key", "X-Api-Key:", ""} {
		w := hookTo("https://hooks.example.com/payroll")
		w.Headers = map[string]string{n: "v"}
		_, err := d.Register(t.Context(), w)
		assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, "%q", n)
	}
}

func TestRegisterRefusesReservedHeaders(t *testing.T) {
	t.Parallel()
	for _, n := range []string{
		"webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE", "webhook-anything",
		"Host", "Content-Length", "content-type", "Transfer-Encoding", "Connection", "Keep-Alive",
		"Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer", "Upgrade",
	} {
		t.Run(n, func(t *testing.T) {
			t.Parallel()
			w := hookTo("https://hooks.example.com/payroll")
			w.Headers = map[string]string{n: "x"}
			refused(t, guarded(t, webhook.Config{}), w, "reserved")
		})
	}
	d := guarded(t, webhook.Config{})
	w := hookTo("https://hooks.example.com/payroll")
	w.Headers = map[string]string{"Authorization": "Bearer t", "X-Api-Key": "k", "Accept": "application/json"}
	_, err := d.Register(t.Context(), w)
	assert.NoError(t, err, "ordinary credential headers are fine")
}

func TestRegisterRefusesDeniedIPLiterals(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{})
	for _, host := range []string{
		"127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "0.0.0.0", "[::]", "10.0.0.1", "172.16.0.1", "192.168.0.1",
		"100.64.0.1", "169.254.169.254", "[fd00:ec2::254]", "[64:ff9b::a9fe:a9fe]", "[64:ff9b::7f00:1]",
		"[2002:7f00:1::1]", "[2002:a9fe:a9fe::]", "[fe80::1%25eth0]", "[fc00::1]", "224.0.0.1", "255.255.255.255",
		"192.0.2.1", "[2001:db8::1]", "[2001::1]",
	} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			err := refused(t, d, hookTo("https://"+host+"/payroll"), "destination not allowed")
			assert.ErrorIs(t, err, webhook.ErrBlockedDestination)
		})
	}
}

func TestRegisterRefusesLoopbackAndNumericNames(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{})
	for _, host := range []string{"localhost", "LOCALHOST.", "api.localhost", "127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			err := refused(t, d, hookTo("http://"+host+"/payroll"), "destination not allowed")
			assert.ErrorIs(t, err, webhook.ErrBlockedDestination)
		})
	}
}

func TestRegisterRefusesPortsOutside80And443(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{})
	for _, u := range []string{"https://hooks.example.com:8443/x", "http://hooks.example.com:22/", "http://93.184.215.14:6379/"} {
		err := refused(t, d, hookTo(u), "is not allowed (allowed: 80, 443")
		assert.ErrorIs(t, err, webhook.ErrBlockedDestination)
	}
	for _, u := range []string{"https://hooks.example.com/x", "http://hooks.example.com:80/x", "https://hooks.example.com:443/x", "https://93.184.215.14/x"} {
		_, err := d.Register(t.Context(), hookTo(u))
		assert.NoError(t, err, u)
	}
	refused(t, d, hookTo("https://hooks.example.com:99999/x"), "not a valid port")
}

func TestRegisterFollowsTheTransportConfig(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{AllowedPorts: []int{8443}, AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}})
	for _, u := range []string{"https://hooks.example.com:8443/x", "https://10.20.3.4/x", "https://[::ffff:10.20.3.4]:8443/x"} {
		_, err := d.Register(t.Context(), hookTo(u))
		assert.NoError(t, err, u)
	}
	for _, u := range []string{"https://10.21.0.1/x", "https://10.20.3.4:9000/x", "https://hooks.example.com:8080/x"} {
		_, err := d.Register(t.Context(), hookTo(u))
		assert.ErrorIs(t, err, webhook.ErrBlockedDestination, u)
	}

	open := guarded(t, webhook.Config{AllowPrivateNetworks: true})
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://localhost:3000/x", "http://[::1]:9000/x", "http://10.0.0.1:6379/x"} {
		_, err := open.Register(t.Context(), hookTo(u))
		assert.NoError(t, err, u)
	}
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/", "http://[64:ff9b::a9fe:a9fe]/"} {
		_, err := open.Register(t.Context(), hookTo(u))
		assert.ErrorIs(t, err, webhook.ErrBlockedDestination, "%s: metadata stays refused", u)
		assert.ErrorContains(t, err, "metadata")
	}
}

func TestRegisterRefusalsDoNotLeakCredentials(t *testing.T) {
	t.Parallel()
	d := guarded(t, webhook.Config{})
	_, err := d.Register(t.Context(), hookTo("http://admin:s3cret@10.0.0.1/x?token=abc123"))
	require.ErrorIs(t, err, webhook.ErrBlockedDestination)
	assert.False(t, strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "abc123"), err.Error())
}
