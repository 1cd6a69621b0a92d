package signer

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Key prefixes, as the Standard Webhooks spec names them. The prefix alone
// decides what a key is, so a key never needs a separate "type" setting.
const (
	secretPrefix     = "whsec_" // HMAC-SHA256 shared secret: signs and verifies v1
	privateKeyPrefix = "whsk_"  // Ed25519 private key: signs v1a
	publicKeyPrefix  = "whpk_"  // Ed25519 public key: verifies v1a
)

// Secret sizes in bytes (after base64 decoding). The spec asks for at least
// 192 bits and allows up to 512.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
	newSecretBytes = 32
)

// ErrInvalidSecret reports a malformed or unusable key: an unknown prefix,
// bad base64, a wrong length, or a key of the wrong kind for its use (a
// public key given to a Signer, a private key given to a Verifier). Errors
// that wrap it describe the problem but never include the key itself.
var ErrInvalidSecret = errors.New("signer: invalid secret")

// b64 decodes keys and signatures. Strict refuses non-zero padding bits, so
// one byte string has exactly one accepted spelling.
var b64 = base64.StdEncoding.Strict()

type keyKind uint8

const (
	kindSecret keyKind = iota + 1
	kindPrivate
	kindPublic
)

// parsedKey is one decoded key; exactly one of its fields is set.
type parsedKey struct {
	secret []byte
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
}

func (k parsedKey) kind() keyKind {
	switch {
	case k.secret != nil:
		return kindSecret
	case k.priv != nil:
		return kindPrivate
	default:
		return kindPublic
	}
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidSecret}, args...)...)
}

// parseKey decodes one prefixed key. Its errors describe the shape that was
// expected and never quote the input: a secret pasted into the wrong field
// must not end up in a log line.
func parseKey(s string) (parsedKey, error) {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, secretPrefix):
		raw, err := b64.DecodeString(s[len(secretPrefix):])
		if err != nil {
			return parsedKey{}, invalidf("whsec_ secret is not standard base64")
		}
		if len(raw) < minSecretBytes || len(raw) > maxSecretBytes {
			return parsedKey{}, invalidf("whsec_ secret decodes to %d bytes, want %d to %d", len(raw), minSecretBytes, maxSecretBytes)
		}
		return parsedKey{secret: raw}, nil

	case strings.HasPrefix(s, privateKeyPrefix):
		raw, err := b64.DecodeString(s[len(privateKeyPrefix):])
		if err != nil {
			return parsedKey{}, invalidf("whsk_ key is not standard base64")
		}
		switch len(raw) {
		case ed25519.SeedSize:
			return parsedKey{priv: ed25519.NewKeyFromSeed(raw)}, nil
		case ed25519.PrivateKeySize:
			// seed || public key, as crypto/ed25519 lays it out. A public
			// half that does not belong to the seed is a corrupted key, and
			// would sign with one key while advertising another.
			priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
			if subtle.ConstantTimeCompare(priv[ed25519.SeedSize:], raw[ed25519.SeedSize:]) != 1 {
				return parsedKey{}, invalidf("whsk_ key's public half does not match its seed")
			}
			return parsedKey{priv: priv}, nil
		default:
			return parsedKey{}, invalidf("whsk_ key decodes to %d bytes, want %d (seed) or %d", len(raw), ed25519.SeedSize, ed25519.PrivateKeySize)
		}

	case strings.HasPrefix(s, publicKeyPrefix):
		raw, err := b64.DecodeString(s[len(publicKeyPrefix):])
		if err != nil {
			return parsedKey{}, invalidf("whpk_ key is not standard base64")
		}
		if len(raw) != ed25519.PublicKeySize {
			return parsedKey{}, invalidf("whpk_ key decodes to %d bytes, want %d", len(raw), ed25519.PublicKeySize)
		}
		return parsedKey{pub: ed25519.PublicKey(raw)}, nil

	case s == "":
		return parsedKey{}, invalidf("empty key")
	default:
		return parsedKey{}, invalidf("unknown key prefix, want whsec_, whsk_ or whpk_")
	}
}

// GenerateSecret returns a new HMAC-SHA256 signing secret: "whsec_"
// followed by the standard base64 encoding of 32 random bytes. The same
// string signs (New) and verifies (NewVerifier).
func GenerateSecret() (string, error) {
	b := make([]byte, newSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("signer: generating secret: %w", err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// GenerateKeyPair returns a new Ed25519 key pair for v1a signatures.
//
// secret is "whsk_" followed by the standard base64 encoding of the 32-byte
// private key seed (RFC 8032); it stays with the sender and goes to New.
// public is "whpk_" followed by the base64 of the 32-byte public key; hand
// it to receivers for NewVerifier. New also accepts a "whsk_" key holding
// the 64-byte form crypto/ed25519 uses (seed followed by public key).
func GenerateKeyPair() (secret, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("signer: generating key pair: %w", err)
	}
	return privateKeyPrefix + base64.StdEncoding.EncodeToString(priv.Seed()),
		publicKeyPrefix + base64.StdEncoding.EncodeToString(pub), nil
}

// PublicKey returns the "whpk_" public key that verifies signatures made
// with the "whsk_" private key secret. It fails, wrapping
// ErrInvalidSecret, for anything else.
func PublicKey(secret string) (string, error) {
	k, err := parseKey(secret)
	if err != nil {
		return "", err
	}
	if k.kind() != kindPrivate {
		return "", invalidf("PublicKey needs a whsk_ private key")
	}
	pub := k.priv.Public().(ed25519.PublicKey)
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(pub), nil
}

// ValidateSecret reports whether s is a signing key that New accepts: a
// "whsec_" secret of 24 to 64 bytes or a "whsk_" Ed25519 private key. The
// error wraps ErrInvalidSecret and never echoes s.
func ValidateSecret(s string) error {
	k, err := parseKey(s)
	if err != nil {
		return err
	}
	if k.kind() == kindPublic {
		return invalidf("a whpk_ public key only verifies; sign with its whsk_ private key")
	}
	return nil
}
