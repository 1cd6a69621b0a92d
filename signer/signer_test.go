package signer_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/signer"
)

// The Standard Webhooks test vector, as published with the specification's
// reference libraries.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

	// The reference libraries' Ed25519 vector: a 32-byte seed.
	specEdKey       = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
	specEdSignature = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)

var specTime = time.Unix(specTimestamp, 0)

// secretOf returns a whsec_ secret of n bytes, all equal to fill.
func secretOf(n int, fill byte) string {
	return "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, n))
}

func mustNew(t testing.TB, keys ...string) *signer.Signer {
	t.Helper()
	s, err := signer.New(keys...)
	require.NoError(t, err)
	return s
}

func TestSignMatchesSpecVector(t *testing.T) {
	t.Parallel()
	s := mustNew(t, specSecret)
	assert.Equal(t, specSignature, s.Sign(specMsgID, specTime, []byte(specBody)))
}

func TestSignUsesWholeSeconds(t *testing.T) {
	t.Parallel()
	s := mustNew(t, specSecret)
	assert.Equal(t, specSignature, s.Sign(specMsgID, specTime.Add(999*time.Millisecond), []byte(specBody)))
}

func TestSignEd25519MatchesReferenceVector(t *testing.T) {
	t.Parallel()
	s := mustNew(t, specEdKey)
	assert.Equal(t, specEdSignature, s.Sign(specMsgID, specTime, []byte(specBody)))
}

func TestSignEd25519VerifiesWithCryptoEd25519(t *testing.T) {
	t.Parallel()
	secret, public, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(secret, "whsk_"))
	require.True(t, strings.HasPrefix(public, "whpk_"))

	pub, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(public, "whpk_"))
	require.NoError(t, err)
	require.Len(t, pub, ed25519.PublicKeySize)
	seed, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsk_"))
	require.NoError(t, err)
	require.Len(t, seed, ed25519.SeedSize, "whsk_ carries the 32-byte seed")

	body := []byte(`{"id":"e1","type":"employee.updated"}`)
	header := mustNew(t, secret).Sign("evt_1", specTime, body)
	version, b64sig, ok := strings.Cut(header, ",")
	require.True(t, ok)
	assert.Equal(t, "v1a", version)
	sig, err := base64.StdEncoding.DecodeString(b64sig)
	require.NoError(t, err)

	msg := []byte(fmt.Sprintf("evt_1.%d.%s", specTimestamp, body))
	assert.True(t, ed25519.Verify(ed25519.PublicKey(pub), msg, sig))
	assert.False(t, ed25519.Verify(ed25519.PublicKey(pub), append(msg, ' '), sig))
}

func TestSignAccepts64ByteEd25519Key(t *testing.T) {
	t.Parallel()
	seed, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(specEdKey, "whsk_"))
	require.NoError(t, err)
	full := ed25519.NewKeyFromSeed(seed)

	s := mustNew(t, "whsk_"+base64.StdEncoding.EncodeToString(full))
	assert.Equal(t, specEdSignature, s.Sign(specMsgID, specTime, []byte(specBody)))

	corrupt := bytes.Clone(full)
	corrupt[63] ^= 1
	_, err = signer.New("whsk_" + base64.StdEncoding.EncodeToString(corrupt))
	assert.ErrorIs(t, err, signer.ErrInvalidSecret)
}

func TestSignSeveralKeysGivesOneHeaderInKeyOrder(t *testing.T) {
	t.Parallel()
	other := secretOf(32, 7)
	edKey, _, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	body := []byte(specBody)

	header := mustNew(t, other, specSecret, edKey).Sign(specMsgID, specTime, body)
	parts := strings.Split(header, " ")
	require.Len(t, parts, 3)
	assert.Equal(t, mustNew(t, other).Sign(specMsgID, specTime, body), parts[0])
	assert.Equal(t, specSignature, parts[1])
	assert.Equal(t, mustNew(t, edKey).Sign(specMsgID, specTime, body), parts[2])
	assert.NotEqual(t, parts[0], parts[1])
}

func TestSignCoversIDTimestampAndBody(t *testing.T) {
	t.Parallel()
	s := mustNew(t, specSecret)
	base := s.Sign(specMsgID, specTime, []byte(specBody))
	assert.NotEqual(t, base, s.Sign(specMsgID+"x", specTime, []byte(specBody)))
	assert.NotEqual(t, base, s.Sign(specMsgID, specTime.Add(time.Second), []byte(specBody)))
	assert.NotEqual(t, base, s.Sign(specMsgID, specTime, []byte(specBody+" ")))
}

func TestSignIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	edKey, _, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	s := mustNew(t, specSecret, edKey)

	bodies := make([][]byte, 16)
	want := make([]string, len(bodies))
	for i := range bodies {
		bodies[i] = bytes.Repeat([]byte{byte('a' + i)}, 100*i)
		want[i] = s.Sign(fmt.Sprint("msg_", i), specTime, bodies[i])
	}

	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for n := 0; n < 50; n++ {
				i := (g + n) % len(bodies)
				if got := s.Sign(fmt.Sprint("msg_", i), specTime, bodies[i]); got != want[i] {
					t.Errorf("body %d: got %q, want %q", i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSignLargeBodyWithEd25519(t *testing.T) {
	t.Parallel()
	edKey, public, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	s := mustNew(t, edKey)
	body := bytes.Repeat([]byte("x"), 1<<20)
	for range 2 { // the second call runs with whatever the pool kept
		header := s.Sign("big", specTime, body)
		pub, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(public, "whpk_"))
		sig, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(header, "v1a,"))
		require.NoError(t, err)
		msg := append([]byte(fmt.Sprintf("big.%d.", specTimestamp)), body...)
		assert.True(t, ed25519.Verify(pub, msg, sig))
	}
}

func TestSignAllocatesOnlyTheHeader(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	s := mustNew(t, specSecret, secretOf(32, 1))
	body := bytes.Repeat([]byte("b"), 1024)
	s.Sign(specMsgID, specTime, body) // warm the pool
	allocs := testing.AllocsPerRun(100, func() { s.Sign(specMsgID, specTime, body) })
	assert.LessOrEqual(t, allocs, 1.0)
}

func TestSetHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	mustNew(t, specSecret).SetHeaders(h, specMsgID, specTime, []byte(specBody))
	assert.Equal(t, specMsgID, h.Get("webhook-id"))
	assert.Equal(t, "1614265330", h.Get("webhook-timestamp"))
	assert.Equal(t, specSignature, h.Get("webhook-signature"))
}

func TestSignerFormatHidesKeys(t *testing.T) {
	t.Parallel()
	s := mustNew(t, secretOf(32, 0xAB), specSecret)
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(specSecret, "whsec_"))
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x"} {
		out := fmt.Sprintf(verb, s)
		assert.Equal(t, "signer.Signer{keys: 2}", out, verb)
		assert.NotContains(t, out, fmt.Sprint(raw[0]), verb)
	}
}

// malformedKeys are keys New and NewVerifier refuse for every use. Each
// carries a marker that must never appear in an error.
var malformedKeys = []struct {
	name, key string
}{
	{"empty", ""},
	{"no prefix", base64.StdEncoding.EncodeToString([]byte("SECRETMARKER-0123456789abcdef"))},
	{"unknown prefix", "whsecret_SECRETMARKER"},
	{"not base64", "whsec_SECRETMARKER!!!!"},
	{"url-safe base64", "whsec_" + base64.URLEncoding.EncodeToString(append(bytes.Repeat([]byte{0xfb}, 30), 'S', 'M'))},
	{"too short", secretOf(23, 'S')},
	{"too long", secretOf(65, 'S')},
	{"whsk wrong length", "whsk_" + base64.StdEncoding.EncodeToString([]byte("SECRETMARKER"))},
	{"whpk wrong length", "whpk_" + base64.StdEncoding.EncodeToString([]byte("SECRETMARKER"))},
	{"whsk not base64", "whsk_SECRETMARKER*"},
	{"whpk not base64", "whpk_SECRETMARKER*"},
}

func TestNewRejectsMalformedKeysWithoutEchoingThem(t *testing.T) {
	t.Parallel()
	for _, tc := range malformedKeys {
		t.Run(tc.name, func(t *testing.T) {
			_, err := signer.New(specSecret, tc.key)
			require.Error(t, err)
			assert.ErrorIs(t, err, signer.ErrInvalidSecret)
			assert.Contains(t, err.Error(), "key 2 of 2")
			assertNoEcho(t, err, tc.key)

			assert.ErrorIs(t, signer.ValidateSecret(tc.key), signer.ErrInvalidSecret)
			assertNoEcho(t, signer.ValidateSecret(tc.key), tc.key)
		})
	}
}

// assertNoEcho checks that err quotes no recognisable part of key.
func assertNoEcho(t *testing.T, err error, key string) {
	t.Helper()
	msg := err.Error()
	assert.NotContains(t, msg, "SECRETMARKER")
	for _, prefix := range []string{"whsec_", "whsk_", "whpk_"} {
		if rest, ok := strings.CutPrefix(key, prefix); ok && len(rest) >= 8 {
			assert.NotContains(t, msg, rest[:8])
		}
	}
	if len(key) >= 8 {
		assert.NotContains(t, msg, key)
	}
}

func TestNewRejectsNoKeysAndPublicKeys(t *testing.T) {
	t.Parallel()
	_, err := signer.New()
	assert.ErrorIs(t, err, signer.ErrInvalidSecret)

	_, public, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	_, err = signer.New(public)
	assert.ErrorIs(t, err, signer.ErrInvalidSecret)
	assertNoEcho(t, err, public)
	assert.ErrorIs(t, signer.ValidateSecret(public), signer.ErrInvalidSecret)
}

func TestValidateSecretAcceptsSpecSizes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{24, 32, 48, 64} {
		assert.NoError(t, signer.ValidateSecret(secretOf(n, byte(n))), "%d bytes", n)
	}
	assert.NoError(t, signer.ValidateSecret(specSecret))
	assert.NoError(t, signer.ValidateSecret(specEdKey))
	assert.NoError(t, signer.ValidateSecret(" "+specSecret+"\n"), "surrounding space is trimmed")
}

func TestGenerateSecret(t *testing.T) {
	t.Parallel()
	a, err := signer.GenerateSecret()
	require.NoError(t, err)
	b, err := signer.GenerateSecret()
	require.NoError(t, err)

	require.True(t, strings.HasPrefix(a, "whsec_"))
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	require.NoError(t, err)
	assert.Len(t, raw, 32)
	assert.NoError(t, signer.ValidateSecret(a))
	assert.NotEqual(t, a, b)
}

func TestPublicKey(t *testing.T) {
	t.Parallel()
	secret, public, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	got, err := signer.PublicKey(secret)
	require.NoError(t, err)
	assert.Equal(t, public, got)

	got, err = signer.PublicKey(specEdKey)
	require.NoError(t, err)
	assert.Equal(t, "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=", got)

	_, err = signer.PublicKey(specSecret)
	assert.ErrorIs(t, err, signer.ErrInvalidSecret)
	_, err = signer.PublicKey(public)
	assert.ErrorIs(t, err, signer.ErrInvalidSecret)
}
