package signer

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
)

// Middleware returns a handler that verifies each request before passing
// it to next. It reads the body up to MaxBodyBytes, verifies it with
// Verify, and on success calls next with r.Body replaced by the bytes read
// (so next reads the same body, and r.GetBody can replay it).
//
// A rejected request is answered with the bare status text, never the
// reason, so a prober learns nothing: 400 Bad Request for a missing or
// malformed webhook header or an unreadable body, 401 Unauthorized for a
// stale or future timestamp or no matching signature, and 413 Request
// Entity Too Large for a body over the limit. The reason goes to
// VerifierOptions.Logger.
//
// A GET request has no body: herald sends a GET webhook's fields as the
// query string and signs the raw query string in the body's place, so for
// a GET without a body the middleware verifies r.URL.RawQuery.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(w, r, v.maxBody)
		if err != nil {
			v.reject(w, r, err)
			return
		}
		signed := body
		if r.Method == http.MethodGet && len(body) == 0 {
			signed = []byte(r.URL.RawQuery)
		}
		if err := v.Verify(r.Header, signed); err != nil {
			v.reject(w, r, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		}
		next.ServeHTTP(w, r)
	})
}

// errBodyTooLarge and errReadBody classify body failures for reject.
var (
	errBodyTooLarge = errors.New("signer: body over the size limit")
	errReadBody     = errors.New("signer: reading body")
)

// readBody reads the whole body, failing once it passes limit bytes. A
// declared Content-Length over the limit fails before anything is read.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, nil
	}
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errBodyTooLarge
		}
		return nil, errors.Join(errReadBody, err)
	}
	return buf.Bytes(), nil
}

// statusFor maps a verification failure to the status Middleware answers.
func statusFor(err error) int {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMissingHeader), errors.Is(err, ErrInvalidHeader), errors.Is(err, errReadBody):
		return http.StatusBadRequest
	default:
		return http.StatusUnauthorized
	}
}

func (v *Verifier) reject(w http.ResponseWriter, r *http.Request, err error) {
	status := statusFor(err)
	v.logger.LogAttrs(r.Context(), slog.LevelWarn, "webhook rejected",
		slog.Int("status", status),
		slog.String("reason", err.Error()),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
	)
	http.Error(w, http.StatusText(status), status)
}
