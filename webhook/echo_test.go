package webhook_test

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// Receivers quote the credentials they refuse ("invalid API key ..."), in
// their answer or, broken ones, in their status line, which net/http then
// quotes in its error. Neither the delivery log nor the logs may keep
// them.
func TestEchoedCredentialsStayOutOfTheLog(t *testing.T) {
	t.Parallel()
	const key, pass, query = "key-Echo-7781", "pw-Echo-5562", "q-Echo-9034"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("refused " + r.Header.Get("X-Api-Key") + " for " + u + ":" + p + " with " + r.URL.Query().Get("k")))
	}))
	defer echo.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if r, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				_, _ = c.Write([]byte("HTTP/1.1 " + r.Header.Get("X-Api-Key") + " no\r\n\r\n"))
			}
			_ = c.Close()
		}
	}()

	var logs syncBuffer
	k := webhooktest.NewDispatcher(t, webhook.Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	for _, u := range []string{echo.URL + "/hook?k=" + query, "http://" + l.Addr().String() + "/hook"} {
		_, err := k.Register(t.Context(), webhook.Webhook{Name: "echo", Table: "employee", Ops: []webhook.Op{webhook.Insert}, URL: u,
			Headers: map[string]string{"X-Api-Key": key}, Auth: &webhook.Auth{Type: webhook.AuthBasic, Username: "herald", Password: pass}})
		require.NoError(t, err)
	}
	_, err = k.Publish(t.Context(), webhook.Change{Table: "employee", Op: webhook.Insert, Key: "E-1", New: map[string]any{"a": 1}})
	require.NoError(t, err)
	require.Equal(t, 2, k.Drain(t))

	ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 2)
	var kept []string
	for _, d := range ds {
		atts, err := k.Attempts(t.Context(), d.ID)
		require.NoError(t, err)
		require.Len(t, atts, 1)
		kept = append(kept, d.LastError, atts[0].Error, atts[0].ResponseBody)
	}
	kept = append(kept, logs.String())
	all := strings.Join(kept, "\n")
	assert.Contains(t, all, "refused "+webhook.Masked+" for herald:"+webhook.Masked+" with "+webhook.Masked, "the answer is kept, masked")
	assert.Contains(t, all, "malformed HTTP status code", "the error is kept, masked")
	for _, secret := range []string{key, pass, query} {
		assert.NotContains(t, all, secret)
	}
}
