package signer

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names of the Standard Webhooks wire format. HTTP header names are
// case-insensitive; http.Header stores them as "Webhook-Id" and so on.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

const (
	hmacSigLen    = 44 // base64 of a 32-byte HMAC-SHA256 sum
	ed25519SigLen = 88 // base64 of a 64-byte Ed25519 signature

	// maxPooledBuf bounds the scratch buffer a pooled signing state keeps.
	// Ed25519 signs the whole message at once, so with a v1a key the buffer
	// holds the body; one huge body must not pin its size in the pool.
	maxPooledBuf = 64 << 10
)

// Signer signs messages with one or more live keys. It is safe for
// concurrent use and holds no mutable state besides a pool of scratch
// buffers and HMAC states, so one Signer per webhook can be kept and
// reused for every delivery.
type Signer struct {
	keys      []signingKey
	secrets   [][]byte // HMAC keys, in key order; signingKey.mac indexes them
	headerLen int      // exact length of the header value Sign returns
	hasEd     bool
	pool      sync.Pool // *signState
}

type signingKey struct {
	mac  int // index into signState.macs; -1 for an Ed25519 key
	priv ed25519.PrivateKey
}

// signState is what one Sign call needs besides the keys. It is pooled so
// that the hot path allocates only the returned string.
type signState struct {
	macs []hash.Hash
	buf  []byte // "msgID.timestamp." and, with Ed25519 keys, the body
	sum  []byte
}

// New returns a Signer for the given live signing keys, in order: "whsec_"
// secrets sign with HMAC-SHA256 (v1), "whsk_" Ed25519 private keys sign v1a.
// During a rotation pass both the new and the old key; receivers holding
// either accept the message. It fails, wrapping ErrInvalidSecret, when no
// key is given or any key is malformed or a public key.
func New(secrets ...string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, invalidf("New needs at least one key")
	}
	s := &Signer{keys: make([]signingKey, 0, len(secrets))}
	for i, sec := range secrets {
		k, err := parseKey(sec)
		if err != nil {
			return nil, fmt.Errorf("%w (key %d of %d)", err, i+1, len(secrets))
		}
		if i > 0 {
			s.headerLen++ // the separating space
		}
		switch k.kind() {
		case kindSecret:
			s.keys = append(s.keys, signingKey{mac: len(s.secrets)})
			s.secrets = append(s.secrets, k.secret)
			s.headerLen += len("v1,") + hmacSigLen
		case kindPrivate:
			s.keys = append(s.keys, signingKey{mac: -1, priv: k.priv})
			s.hasEd = true
			s.headerLen += len("v1a,") + ed25519SigLen
		default:
			return nil, invalidf("a whpk_ public key only verifies; sign with its whsk_ private key (key %d of %d)", i+1, len(secrets))
		}
	}
	s.pool.New = func() any {
		st := &signState{
			macs: make([]hash.Hash, len(s.secrets)),
			buf:  make([]byte, 0, 128),
			sum:  make([]byte, 0, sha256.Size),
		}
		for i, key := range s.secrets {
			st.macs[i] = hmac.New(sha256.New, key)
		}
		return st
	}
	return s, nil
}

// appendSignedPrefix appends "msgID.unix." : the part of the signed content
// that precedes the body.
func appendSignedPrefix(dst []byte, msgID string, unix int64) []byte {
	dst = append(dst, msgID...)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, unix, 10)
	return append(dst, '.')
}

// Sign returns the value of the webhook-signature header for one message:
// a signature over "msgID.timestamp.body" per key, in key order, separated
// by single spaces, each written "v1,<base64>" (HMAC-SHA256) or
// "v1a,<base64>" (Ed25519). ts is sent, and signed, in whole unix seconds.
//
// msgID must be the webhook-id header and ts the webhook-timestamp header
// of the same request, and body must be exactly the bytes sent.
func (s *Signer) Sign(msgID string, ts time.Time, body []byte) string {
	st := s.pool.Get().(*signState)
	st.buf = appendSignedPrefix(st.buf[:0], msgID, ts.Unix())
	prefix := len(st.buf)
	if s.hasEd {
		st.buf = append(st.buf, body...)
	}

	var out strings.Builder
	out.Grow(s.headerLen)
	var enc [ed25519SigLen]byte
	for i, k := range s.keys {
		if i > 0 {
			out.WriteByte(' ')
		}
		if k.mac >= 0 {
			m := st.macs[k.mac]
			m.Reset()
			m.Write(st.buf[:prefix])
			m.Write(body)
			st.sum = m.Sum(st.sum[:0])
			base64.StdEncoding.Encode(enc[:hmacSigLen], st.sum)
			out.WriteString("v1,")
			out.Write(enc[:hmacSigLen])
			continue
		}
		sig := ed25519.Sign(k.priv, st.buf)
		base64.StdEncoding.Encode(enc[:ed25519SigLen], sig)
		out.WriteString("v1a,")
		out.Write(enc[:ed25519SigLen])
	}

	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	s.pool.Put(st)
	return out.String()
}

// SetHeaders sets the three Standard Webhooks headers of one message on h:
// webhook-id, webhook-timestamp (unix seconds) and webhook-signature (Sign).
func (s *Signer) SetHeaders(h http.Header, msgID string, ts time.Time, body []byte) {
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, s.Sign(msgID, ts, body))
}

// String describes the Signer without its keys, so that logging one, even
// by accident, discloses nothing.
func (s *Signer) String() string {
	return fmt.Sprintf("signer.Signer{keys: %d}", len(s.keys))
}

// Format prints String for every verb, %#v and %+v included, which would
// otherwise print the key bytes.
func (s *Signer) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }
