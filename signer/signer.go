// Package signer signs and verifies webhooks the Standard Webhooks way.
package signer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidSecret reports a malformed secret.
var ErrInvalidSecret = errors.New("signer: invalid secret")

// GenerateSecret returns a new "whsec_" secret of 32 random bytes.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b), nil
}

// Signer signs messages with one or more live secrets.
type Signer struct{ keys [][]byte }

// New returns a Signer for the given secrets.
func New(secrets ...string) (*Signer, error) {
	s := &Signer{}
	for _, sec := range secrets {
		k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
		if err != nil || len(k) == 0 {
			return nil, fmt.Errorf("%w", ErrInvalidSecret)
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Sign returns the webhook-signature header value.
func (s *Signer) Sign(msgID string, ts time.Time, body []byte) string {
	var parts []string
	for _, k := range s.keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(msgID + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
		m.Write(body)
		parts = append(parts, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(parts, " ")
}

// ValidateSecret checks that s is a well-formed secret.
func ValidateSecret(s string) error {
	_, err := New(s)
	return err
}
