package signer

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of VerifierOptions.
const (
	DefaultTolerance    = 5 * time.Minute
	DefaultMaxBodyBytes = 1 << 20
)

const (
	// maxSignatures caps the entries of one webhook-signature header. A
	// sender lists one per live key; without a cap a forged header of
	// thousands of v1a entries would cost an Ed25519 verification each.
	maxSignatures = 32

	// maxTimestampDigits rejects timestamps that cannot be unix seconds
	// (13 digits is milliseconds, a common mistake) before any arithmetic.
	maxTimestampDigits = 12
)

// Sentinel errors of Verify, for errors.Is. Returned errors wrap them with
// details; no error ever includes a key, and none includes the signatures
// that were received.
var (
	// ErrMissingHeader: webhook-id, webhook-timestamp or webhook-signature
	// is absent or empty. The error names the header.
	ErrMissingHeader = errors.New("signer: missing header")

	// ErrInvalidHeader: webhook-timestamp is not unix seconds, or
	// webhook-signature lists more signatures than a sender would send.
	ErrInvalidHeader = errors.New("signer: malformed header")

	// ErrTimestamp: webhook-timestamp lies further than the tolerance from
	// the receiver's clock, in the past (stale, possibly a replay) or in the
	// future. The error is a *TimestampError.
	ErrTimestamp = errors.New("signer: timestamp outside tolerance")

	// ErrNoMatchingSignature: no signature in webhook-signature matches any
	// of the Verifier's keys for this id, timestamp and body.
	ErrNoMatchingSignature = errors.New("signer: no matching signature")
)

// TimestampError reports a webhook-timestamp outside the tolerance. It
// matches ErrTimestamp with errors.Is.
type TimestampError struct {
	Timestamp time.Time     // the message's webhook-timestamp
	Now       time.Time     // the receiver's clock when it checked
	Tolerance time.Duration // the allowed distance either way
}

// Error says how far off the timestamp was, and which way.
func (e *TimestampError) Error() string {
	if d := e.Now.Sub(e.Timestamp); d > 0 {
		return fmt.Sprintf("%v: %v old, tolerance %v", ErrTimestamp, d, e.Tolerance)
	}
	return fmt.Sprintf("%v: %v in the future, tolerance %v", ErrTimestamp, e.Timestamp.Sub(e.Now), e.Tolerance)
}

// Unwrap returns ErrTimestamp.
func (e *TimestampError) Unwrap() error { return ErrTimestamp }

// VerifierOptions configures a Verifier. The zero value is the default for
// every field.
type VerifierOptions struct {
	// Tolerance is how far webhook-timestamp may lie from Now, in either
	// direction, for a message to be accepted; a distance equal to it is
	// accepted. Zero means DefaultTolerance (5 minutes). It bounds how long
	// a captured request can be replayed, and must cover the clock skew
	// between sender and receiver.
	Tolerance time.Duration

	// Now is the receiver's clock. Nil means time.Now. Tests pass a fixed
	// or fake clock.
	Now func() time.Time

	// MaxBodyBytes caps the body Middleware reads; a larger body is
	// answered 413 and not verified. Zero means DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64

	// Logger receives one line per request Middleware rejects, with the
	// reason (which names no key and no signature). Nil means no logging.
	Logger *slog.Logger
}

// Verifier checks received messages against one or more trusted keys. It
// is safe for concurrent use.
type Verifier struct {
	secrets   [][]byte // HMAC keys
	pubs      []ed25519.PublicKey
	tolerance time.Duration
	now       func() time.Time
	maxBody   int64
	logger    *slog.Logger
	pool      sync.Pool // *verifyState
}

type verifyState struct {
	macs []hash.Hash
	sums [][]byte // sums[i] is macs[i]'s result for the current message
	buf  []byte   // the signed content; the body is appended only for v1a
}

// NewVerifier returns a Verifier with default options that accepts a
// message signed by any of keys: "whsec_" secrets (v1) and "whpk_" Ed25519
// public keys (v1a). A receiver switching keys passes both the old and the
// new one. It fails, wrapping ErrInvalidSecret, when no key is given, a key
// is malformed, or a key is a "whsk_" private key (a receiver needs only
// the public key; see PublicKey).
func NewVerifier(keys ...string) (*Verifier, error) {
	return NewVerifierWithOptions(VerifierOptions{}, keys...)
}

// NewVerifierWithOptions is NewVerifier with options. Negative Tolerance or
// MaxBodyBytes is an error.
func NewVerifierWithOptions(opts VerifierOptions, keys ...string) (*Verifier, error) {
	if opts.Tolerance < 0 {
		return nil, errors.New("signer: Tolerance must not be negative")
	}
	if opts.MaxBodyBytes < 0 {
		return nil, errors.New("signer: MaxBodyBytes must not be negative")
	}
	if len(keys) == 0 {
		return nil, invalidf("NewVerifier needs at least one key")
	}
	v := &Verifier{
		tolerance: opts.Tolerance,
		now:       opts.Now,
		maxBody:   opts.MaxBodyBytes,
		logger:    opts.Logger,
	}
	if v.tolerance == 0 {
		v.tolerance = DefaultTolerance
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxBody == 0 {
		v.maxBody = DefaultMaxBodyBytes
	}
	if v.logger == nil {
		v.logger = slog.New(slog.DiscardHandler)
	}
	for i, key := range keys {
		k, err := parseKey(key)
		if err != nil {
			return nil, fmt.Errorf("%w (key %d of %d)", err, i+1, len(keys))
		}
		switch k.kind() {
		case kindSecret:
			v.secrets = append(v.secrets, k.secret)
		case kindPublic:
			v.pubs = append(v.pubs, k.pub)
		default:
			return nil, invalidf("a whsk_ private key stays with the sender; verify with its whpk_ public key (key %d of %d)", i+1, len(keys))
		}
	}
	v.pool.New = func() any {
		st := &verifyState{
			macs: make([]hash.Hash, len(v.secrets)),
			sums: make([][]byte, len(v.secrets)),
			buf:  make([]byte, 0, 128),
		}
		for i, key := range v.secrets {
			st.macs[i] = hmac.New(sha256.New, key)
			st.sums[i] = make([]byte, 0, sha256.Size)
		}
		return st
	}
	return v, nil
}

// Verify is the one-call form of NewVerifier(secret).Verify(h, body) with
// default options: secret is a "whsec_" secret or a "whpk_" public key.
// Keep a Verifier instead when verifying many messages.
func Verify(secret string, h http.Header, body []byte) error {
	v, err := NewVerifier(secret)
	if err != nil {
		return err
	}
	return v.Verify(h, body)
}

// Verify checks one received message: h must carry webhook-id,
// webhook-timestamp and webhook-signature, the timestamp must lie within
// the tolerance of the clock, and at least one of the listed signatures
// must match one of the keys over the id, the timestamp and body, which
// must be the raw bytes received. Signatures of versions other than v1 and
// v1a, and malformed entries, are skipped.
//
// A nil error means the message is authentic and fresh. Otherwise the
// error wraps ErrMissingHeader, ErrInvalidHeader, ErrTimestamp or
// ErrNoMatchingSignature.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	id := firstValue(h, "Webhook-Id", HeaderID)
	if id == "" {
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderID)
	}
	tsText := firstValue(h, "Webhook-Timestamp", HeaderTimestamp)
	if tsText == "" {
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderTimestamp)
	}
	sigLines := signatureValues(h)
	if len(sigLines) == 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeader, HeaderSignature)
	}

	unix, ok := parseUnixSeconds(tsText)
	if !ok {
		return fmt.Errorf("%w: %s is not unix seconds", ErrInvalidHeader, HeaderTimestamp)
	}
	ts := time.Unix(unix, 0)
	now := v.now()
	if d := now.Sub(ts); d > v.tolerance || d < -v.tolerance {
		return &TimestampError{Timestamp: ts, Now: now, Tolerance: v.tolerance}
	}

	n := 0
	for _, line := range sigLines {
		n += len(strings.Fields(line))
	}
	if n > maxSignatures {
		return fmt.Errorf("%w: %s lists %d signatures, at most %d are accepted", ErrInvalidHeader, HeaderSignature, n, maxSignatures)
	}

	st := v.pool.Get().(*verifyState)
	defer v.release(st)
	st.buf = appendSignedPrefix(st.buf[:0], id, unix)
	prefix := len(st.buf)
	macsDone, msgDone := false, false

	// Decode needs room for what the text could decode to, not for what a
	// valid signature holds: 88 characters without padding are 66 bytes.
	var raw [ed25519SigLen / 4 * 3]byte
	for _, line := range sigLines {
		for entry := range strings.FieldsSeq(line) {
			version, enc, ok := strings.Cut(entry, ",")
			if !ok {
				continue
			}
			switch version {
			case "v1":
				if len(v.secrets) == 0 || len(enc) != hmacSigLen {
					continue
				}
				if k, err := b64.Decode(raw[:], []byte(enc)); err != nil || k != sha256.Size {
					continue
				}
				if !macsDone {
					for i, m := range st.macs {
						m.Reset()
						m.Write(st.buf[:prefix])
						m.Write(body)
						st.sums[i] = m.Sum(st.sums[i][:0])
					}
					macsDone = true
				}
				for _, sum := range st.sums {
					if hmac.Equal(sum, raw[:sha256.Size]) {
						return nil
					}
				}
			case "v1a":
				if len(v.pubs) == 0 || len(enc) != ed25519SigLen {
					continue
				}
				if k, err := b64.Decode(raw[:], []byte(enc)); err != nil || k != ed25519.SignatureSize {
					continue
				}
				if !msgDone {
					st.buf = append(st.buf[:prefix], body...)
					msgDone = true
				}
				for _, pub := range v.pubs {
					if ed25519.Verify(pub, st.buf, raw[:ed25519.SignatureSize]) {
						return nil
					}
				}
			}
		}
	}
	return ErrNoMatchingSignature
}

func (v *Verifier) release(st *verifyState) {
	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	v.pool.Put(st)
}

// firstValue returns the first value of a header, looked up by its
// canonical name and, for a hand-built http.Header, by its lower-case one.
func firstValue(h http.Header, canonical, lower string) string {
	if vs := h[canonical]; len(vs) > 0 {
		return vs[0]
	}
	if vs := h[lower]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// signatureValues returns every non-blank webhook-signature line: a sender
// or a proxy may split the list over several header lines.
func signatureValues(h http.Header) []string {
	var out []string
	for _, key := range [...]string{"Webhook-Signature", HeaderSignature} {
		for _, line := range h[key] {
			if strings.TrimSpace(line) != "" {
				out = append(out, line)
			}
		}
	}
	return out
}

// parseUnixSeconds accepts decimal digits only: no sign, no spaces, no
// fraction, and few enough digits that no arithmetic on them overflows.
func parseUnixSeconds(s string) (int64, bool) {
	if len(s) == 0 || len(s) > maxTimestampDigits {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// String describes the Verifier without its keys.
func (v *Verifier) String() string {
	return fmt.Sprintf("signer.Verifier{keys: %d, tolerance: %v}", len(v.secrets)+len(v.pubs), v.tolerance)
}

// Format prints String for every verb, so that no verb prints key bytes.
func (v *Verifier) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(v.String())) }
