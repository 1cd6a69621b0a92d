package signer_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/signer"
)

// recordingHandler records what the protected handler saw.
type recordingHandler struct {
	calls int
	body  []byte
	again []byte // the body as GetBody replays it
}

func (h *recordingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls++
	h.body, _ = io.ReadAll(r.Body)
	if r.GetBody != nil {
		rc, err := r.GetBody()
		if err == nil {
			h.again, _ = io.ReadAll(rc)
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

func signedRequest(t *testing.T, body []byte, keys ...string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/hooks/hr", bytes.NewReader(body))
	mustNew(t, keys...).SetHeaders(r.Header, "evt_1", specTime, body)
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestMiddlewarePassesVerifiedRequestWithBodyRestored(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime)}, specSecret)
	next := &recordingHandler{}
	body := []byte(`{"id":"evt_1","type":"employee.updated"}`)

	rec := serve(v.Middleware(next), signedRequest(t, body, specSecret))
	assert.Equal(t, http.StatusAccepted, rec.Code, "next's answer goes out unchanged")
	assert.Equal(t, 1, next.calls)
	assert.Equal(t, body, next.body)
	assert.Equal(t, body, next.again)
}

func TestMiddlewareRejectsWithoutDetails(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt_1"}`)
	for _, tc := range []struct {
		name   string
		now    time.Time
		modify func(r *http.Request)
		want   int
	}{
		{"missing id", specTime, func(r *http.Request) { r.Header.Del("webhook-id") }, http.StatusBadRequest},
		{"missing timestamp", specTime, func(r *http.Request) { r.Header.Del("webhook-timestamp") }, http.StatusBadRequest},
		{"missing signature", specTime, func(r *http.Request) { r.Header.Del("webhook-signature") }, http.StatusBadRequest},
		{"malformed timestamp", specTime, func(r *http.Request) { r.Header.Set("webhook-timestamp", "soon") }, http.StatusBadRequest},
		{"stale", specTime.Add(time.Hour), func(*http.Request) {}, http.StatusUnauthorized},
		{"future", specTime.Add(-time.Hour), func(*http.Request) {}, http.StatusUnauthorized},
		{"wrong signature", specTime, func(r *http.Request) {
			r.Header.Set("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
		}, http.StatusUnauthorized},
		{"tampered body", specTime, func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"id":"evt_2"}`))
		}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			v := mustVerifier(t, signer.VerifierOptions{
				Now:    fixedClock(tc.now),
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			}, specSecret)
			next := &recordingHandler{}
			r := signedRequest(t, body, specSecret)
			tc.modify(r)

			rec := serve(v.Middleware(next), r)
			assert.Equal(t, tc.want, rec.Code)
			assert.Equal(t, http.StatusText(tc.want)+"\n", rec.Body.String(), "only the status text")
			assert.Zero(t, next.calls)

			assert.Contains(t, logs.String(), "webhook rejected")
			assert.NotContains(t, logs.String(), strings.TrimPrefix(specSecret, "whsec_"))
		})
	}
}

func TestMiddlewareCapsBody(t *testing.T) {
	t.Parallel()
	const limit = 64
	v := mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime), MaxBodyBytes: limit}, specSecret)

	t.Run("at the limit", func(t *testing.T) {
		next := &recordingHandler{}
		body := bytes.Repeat([]byte("a"), limit)
		rec := serve(v.Middleware(next), signedRequest(t, body, specSecret))
		assert.Equal(t, http.StatusAccepted, rec.Code)
		assert.Equal(t, body, next.body)
	})
	t.Run("declared length over the limit", func(t *testing.T) {
		next := &recordingHandler{}
		rec := serve(v.Middleware(next), signedRequest(t, bytes.Repeat([]byte("a"), limit+1), specSecret))
		assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
		assert.Zero(t, next.calls)
	})
	t.Run("unknown length over the limit", func(t *testing.T) {
		next := &recordingHandler{}
		r := signedRequest(t, bytes.Repeat([]byte("a"), limit+1), specSecret)
		r.ContentLength = -1
		r.Body = io.NopCloser(r.Body) // hide the length, as a chunked body would
		rec := serve(v.Middleware(next), r)
		assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
		assert.Zero(t, next.calls)
	})
}

func TestMiddlewareDefaultLimitIsOneMiB(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime)}, specSecret)
	next := &recordingHandler{}

	rec := serve(v.Middleware(next), signedRequest(t, bytes.Repeat([]byte("a"), 1<<20), specSecret))
	assert.Equal(t, http.StatusAccepted, rec.Code)
	rec = serve(v.Middleware(next), signedRequest(t, bytes.Repeat([]byte("a"), 1<<20+1), specSecret))
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	assert.Equal(t, 1, next.calls)
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestMiddlewareBodyReadError(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime)}, specSecret)
	next := &recordingHandler{}
	r := signedRequest(t, []byte("x"), specSecret)
	r.Body = io.NopCloser(failingReader{})
	rec := serve(v.Middleware(next), r)
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Zero(t, next.calls)
}

func TestMiddlewareEmptyBody(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime)}, specSecret)
	next := &recordingHandler{}
	r := httptest.NewRequest(http.MethodPost, "/hooks/hr?status=P", nil)
	mustNew(t, specSecret).SetHeaders(r.Header, "evt_1", specTime, nil)
	rec := serve(v.Middleware(next), r)
	assert.Equal(t, http.StatusAccepted, rec.Code)
	assert.Empty(t, next.body)
}

func TestMiddlewareOverHTTP(t *testing.T) {
	t.Parallel()
	edSecret, edPublic, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	v := mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime)}, specSecret, edPublic)
	next := &recordingHandler{}
	srv := httptest.NewServer(v.Middleware(next))
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 10 * time.Second}

	body := []byte(`{"id":"evt_9","type":"leave.updated"}`)
	for _, keys := range [][]string{{specSecret}, {edSecret}, {secretOf(32, 8), edSecret}} {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		require.NoError(t, err)
		mustNew(t, keys...).SetHeaders(req.Header, "evt_9", specTime, body)
		resp, err := client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	assert.Equal(t, 3, next.calls)
	assert.Equal(t, body, next.body)

	req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
	require.NoError(t, err)
	mustNew(t, secretOf(32, 8)).SetHeaders(req.Header, "evt_9", specTime, body)
	resp, err := client.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, 3, next.calls)
}

func TestMiddlewareVerifiesTheQueryStringOfGet(t *testing.T) {
	t.Parallel()
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	s, err := signer.New(secret)
	require.NoError(t, err)
	v, err := signer.NewVerifier(secret)
	require.NoError(t, err)
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	now := time.Now()
	query := "employee_id=E-1&status=P"
	for _, tc := range []struct {
		query string
		want  int
	}{{query, http.StatusNoContent}, {"employee_id=E-1&status=A", http.StatusUnauthorized}} {
		req := httptest.NewRequest(http.MethodGet, "/sync?"+tc.query, nil)
		req.Header.Set("webhook-id", "msg_1")
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", s.Sign("msg_1", now, []byte(query)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, tc.want, rec.Code, tc.query)
	}
}
