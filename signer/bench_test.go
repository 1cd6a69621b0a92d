package signer_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"testing"

	"github.com/heraldhr/herald/signer"
)

// BenchmarkSign compares Signer.Sign with the same HMAC-SHA256 signature
// computed with crypto/hmac directly, in the same run:
//
//   - Signer: Sign with one whsec_ key.
//   - BareHMAC: what a straightforward implementation does per message:
//     hmac.New, write "id.ts." and the body, Sum, base64, "v1," + sig.
//   - BareHMACReused: one reused hmac.Hash (Reset) and no header string: the
//     floor set by the hash itself.
//
// The body is 1 KiB.
func BenchmarkSign(b *testing.B) {
	body := bytes.Repeat([]byte(`{"k":"v"}`), 1024/9+1)[:1024]
	key, _ := base64.StdEncoding.DecodeString(specSecret[len("whsec_"):])
	const msgID = "0190f6c2-7c4e-7b1a-9d3e-5f0a1b2c3d4e"

	b.Run("Signer", func(b *testing.B) {
		s, err := signer.New(specSecret)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			_ = s.Sign(msgID, specTime, body)
		}
	})

	b.Run("BareHMAC", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write([]byte(msgID + "." + strconv.FormatInt(specTime.Unix(), 10) + "."))
			m.Write(body)
			_ = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		}
	})

	b.Run("BareHMACReused", func(b *testing.B) {
		m := hmac.New(sha256.New, key)
		prefix := []byte(msgID + "." + strconv.FormatInt(specTime.Unix(), 10) + ".")
		sum := make([]byte, 0, sha256.Size)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			m.Reset()
			m.Write(prefix)
			m.Write(body)
			sum = m.Sum(sum[:0])
		}
	})

	b.Run("Signer/TwoKeys", func(b *testing.B) {
		s, err := signer.New(specSecret, secretOf(32, 1))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			_ = s.Sign(msgID, specTime, body)
		}
	})

	b.Run("Signer/Ed25519", func(b *testing.B) {
		s, err := signer.New(specEdKey)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			_ = s.Sign(msgID, specTime, body)
		}
	})
}
