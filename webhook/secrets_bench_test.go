package webhook

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
)

func benchWebhook(b *testing.B, previous int) Webhook {
	b.Helper()
	cur, err := signer.GenerateSecret()
	if err != nil {
		b.Fatal(err)
	}
	w := Webhook{ID: "w1", Name: "payroll", Table: "employee", Ops: []Op{Update}, URL: "https://payroll.example/hook?k=v",
		Secret: cur, Headers: map[string]string{"X-Api-Key": "k"}, Auth: &Auth{Type: AuthBasic, Username: "u", Password: "p"}}
	for range previous {
		s, err := signer.GenerateSecret()
		if err != nil {
			b.Fatal(err)
		}
		w.PreviousSecrets = append(w.PreviousSecrets, Secret{Value: s, ExpiresAt: time.Now().Add(time.Hour)})
	}
	return w
}

// BenchmarkSign measures the signing of one 1 KiB body by the live key
// set: what a rotation's grace costs each attempt.
func BenchmarkSign(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	now := time.Now()
	for _, n := range []int{0, 1} {
		b.Run(map[int]string{0: "one_secret", 1: "rotation_two_secrets"}[n], func(b *testing.B) {
			k, err := newSigningKeys(benchWebhook(b, n))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = k.at(now).Sign("msg_1", now, body)
			}
		})
	}
}

// BenchmarkDecodeDefinition measures reading one stored definition, as
// every process does for every webhook when the definitions' version
// moves: plain, and sealed with a keyring.
func BenchmarkDecodeDefinition(b *testing.B) {
	keys, err := NewKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{1}, KeySize)})
	if err != nil {
		b.Fatal(err)
	}
	for _, kr := range []*Keyring{nil, keys} {
		name := "plain"
		if kr != nil {
			name = "sealed"
		}
		b.Run(name, func(b *testing.B) {
			d, err := New(Config{Store: memory.New(), SecretKeys: kr})
			if err != nil {
				b.Fatal(err)
			}
			def, err := d.encodeDefinition(benchWebhook(b, 1))
			if err != nil {
				b.Fatal(err)
			}
			row := store.Webhook{ID: "w1", Definition: def}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.decodeDefinition(row); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokenCacheHit measures an attempt's look-up of a cached OAuth2
// token.
func BenchmarkTokenCacheHit(b *testing.B) {
	var c tokenCache
	now := time.Now
	fetch := func(context.Context) (string, time.Time, error) { return "Bearer t", time.Now().Add(time.Hour), nil }
	ctx := context.Background()
	if _, err := c.entry("w1", 1).get(ctx, fetch, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.entry("w1", 1).get(ctx, fetch, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
