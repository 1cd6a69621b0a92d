package signer_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/signer"
)

// fixedClock returns a clock that always reads t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func mustVerifier(t testing.TB, opts signer.VerifierOptions, keys ...string) *signer.Verifier {
	t.Helper()
	v, err := signer.NewVerifierWithOptions(opts, keys...)
	require.NoError(t, err)
	return v
}

// signedHeader returns the three headers of a message signed by keys.
func signedHeader(t testing.TB, msgID string, ts time.Time, body []byte, keys ...string) http.Header {
	t.Helper()
	h := http.Header{}
	mustNew(t, keys...).SetHeaders(h, msgID, ts, body)
	return h
}

func specHeader() http.Header {
	h := http.Header{}
	h.Set("webhook-id", specMsgID)
	h.Set("webhook-timestamp", strconv.Itoa(specTimestamp))
	h.Set("webhook-signature", specSignature)
	return h
}

// verifySetup is what most verification tests need: an Ed25519 pair, and a
// Verifier trusting the spec secret and the public key, with its clock at
// the spec timestamp.
type verifySetup struct {
	edSecret, edPublic string
	v                  *signer.Verifier
}

func setup(t *testing.T) verifySetup {
	t.Helper()
	edSecret, edPublic, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	return verifySetup{
		edSecret: edSecret,
		edPublic: edPublic,
		v:        mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime)}, specSecret, edPublic),
	}
}

func TestVerifyAcceptsSpecVector(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime)}, specSecret)
	assert.NoError(t, v.Verify(specHeader(), []byte(specBody)))
}

func TestVerifyAcceptsReferenceEd25519Vector(t *testing.T) {
	t.Parallel()
	pub, err := signer.PublicKey(specEdKey)
	require.NoError(t, err)
	v := mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime)}, pub)
	h := specHeader()
	h.Set("webhook-signature", specEdSignature)
	assert.NoError(t, v.Verify(h, []byte(specBody)))
}

func TestVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	s := setup(t)
	body := []byte(`{"id":"e1","type":"attendance.inserted","data":{"key":"A-7"}}`)
	for name, key := range map[string]string{"v1": specSecret, "v1a": s.edSecret} {
		t.Run(name, func(t *testing.T) {
			h := signedHeader(t, "e1", specTime, body, key)
			assert.NoError(t, s.v.Verify(h, body))
		})
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	t.Parallel()
	s := setup(t)
	body := []byte(`{"id":"e1","data":{"status":"Present"}}`)
	for name, key := range map[string]string{"v1": specSecret, "v1a": s.edSecret} {
		t.Run(name, func(t *testing.T) {
			tampered := map[string]func(h http.Header) []byte{
				"body": func(http.Header) []byte { return []byte(`{"id":"e1","data":{"status":"Absent"}}`) },
				"body appended": func(http.Header) []byte {
					return append([]byte(nil), append(body, '\n')...)
				},
				"id": func(h http.Header) []byte { h.Set("webhook-id", "e2"); return body },
				"timestamp": func(h http.Header) []byte {
					h.Set("webhook-timestamp", strconv.Itoa(specTimestamp+1))
					return body
				},
				"empty body": func(http.Header) []byte { return nil },
			}
			for what, tamper := range tampered {
				h := signedHeader(t, "e1", specTime, body, key)
				got := tamper(h)
				assert.ErrorIs(t, s.v.Verify(h, got), signer.ErrNoMatchingSignature, what)
			}
		})
	}
}

func TestVerifyRejectsWrongKey(t *testing.T) {
	t.Parallel()
	s := setup(t)
	otherEd, _, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	body := []byte(specBody)

	for _, key := range []string{secretOf(32, 9), otherEd} {
		h := signedHeader(t, specMsgID, specTime, body, key)
		assert.ErrorIs(t, s.v.Verify(h, body), signer.ErrNoMatchingSignature)
	}
}

func TestVerifyWithSeveralSecrets(t *testing.T) {
	t.Parallel()
	oldSecret, newSecret := secretOf(32, 1), secretOf(32, 2)
	body := []byte(specBody)
	h := signedHeader(t, specMsgID, specTime, body, newSecret, oldSecret)
	opts := signer.VerifierOptions{Now: fixedClock(specTime)}

	sigs := strings.Split(h.Get("webhook-signature"), " ")
	require.Len(t, sigs, 2)

	// A receiver holding either key accepts the two-signature header.
	assert.NoError(t, mustVerifier(t, opts, oldSecret).Verify(h, body))
	assert.NoError(t, mustVerifier(t, opts, newSecret).Verify(h, body))
	assert.ErrorIs(t, mustVerifier(t, opts, secretOf(32, 3)).Verify(h, body), signer.ErrNoMatchingSignature)

	// Each signature alone verifies with its own key, and only with it.
	for i, key := range []string{newSecret, oldSecret} {
		single := h.Clone()
		single.Set("webhook-signature", sigs[i])
		assert.NoError(t, mustVerifier(t, opts, key).Verify(single, body), "signature %d", i)
		other := []string{oldSecret, newSecret}[i]
		assert.ErrorIs(t, mustVerifier(t, opts, other).Verify(single, body), signer.ErrNoMatchingSignature)
	}

	// A receiver trusting both keys during its own switch accepts either.
	both := mustVerifier(t, opts, oldSecret, newSecret)
	for _, sig := range sigs {
		single := h.Clone()
		single.Set("webhook-signature", sig)
		assert.NoError(t, both.Verify(single, body))
	}
}

func TestVerifyMixedVersionsInOneHeader(t *testing.T) {
	t.Parallel()
	s := setup(t)
	body := []byte(specBody)
	h := signedHeader(t, specMsgID, specTime, body, secretOf(32, 4), s.edSecret)
	assert.NoError(t, s.v.Verify(h, body), "the v1a entry matches although the v1 one does not")
}

func TestVerifySkipsUnknownAndMalformedEntries(t *testing.T) {
	t.Parallel()
	s := setup(t)
	bogus := "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
	entries := []string{
		bogus,
		"v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
		"v1", "v1,", ",", "v1,!!!!", "v1a,", "v1a,c2hvcnQ=",
		"v1," + strings.TrimPrefix(specSignature, "v1,") + "AA", // too long
		"v1a," + strings.Repeat("A", 88),                        // right size, wrong signature
		"V1," + strings.TrimPrefix(specSignature, "v1,"),        // versions are case-sensitive
	}
	h := specHeader()
	h.Set("webhook-signature", strings.Join(entries, " "))
	assert.ErrorIs(t, s.v.Verify(h, []byte(specBody)), signer.ErrNoMatchingSignature)

	// The same junk around a valid signature, with irregular spacing.
	h.Set("webhook-signature", "  "+strings.Join(entries, "  ")+"   "+specSignature+" "+bogus+" ")
	assert.NoError(t, s.v.Verify(h, []byte(specBody)))
}

func TestVerifyRejectsNonCanonicalBase64(t *testing.T) {
	t.Parallel()
	s := setup(t)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(specSignature, "v1,"))
	require.NoError(t, err)
	enc := []byte(base64.StdEncoding.EncodeToString(raw))
	// The last character before "=" carries two unused bits; setting one
	// keeps the bytes but changes the spelling.
	require.Equal(t, byte('E'), enc[42])
	enc[42] = 'F'
	h := specHeader()
	h.Set("webhook-signature", "v1,"+string(enc))
	assert.ErrorIs(t, s.v.Verify(h, []byte(specBody)), signer.ErrNoMatchingSignature)
}

func TestVerifyTimestampTolerance(t *testing.T) {
	t.Parallel()
	body := []byte(specBody)
	for _, tc := range []struct {
		name      string
		tolerance time.Duration
		clock     time.Duration // receiver's clock minus the message timestamp
		wantErr   bool
		future    bool
	}{
		{name: "on time", clock: 0},
		{name: "late by the tolerance", clock: 5 * time.Minute},
		{name: "stale", clock: 5*time.Minute + time.Second, wantErr: true},
		{name: "stale by a nanosecond", clock: 5*time.Minute + 1, wantErr: true},
		{name: "early by the tolerance", clock: -5 * time.Minute},
		{name: "future", clock: -5*time.Minute - time.Second, wantErr: true, future: true},
		{name: "a day stale", clock: 24 * time.Hour, wantErr: true},
		{name: "custom tolerance ok", tolerance: time.Hour, clock: 59 * time.Minute},
		{name: "custom tolerance stale", tolerance: 30 * time.Second, clock: 31 * time.Second, wantErr: true},
		{name: "custom tolerance future", tolerance: 30 * time.Second, clock: -31 * time.Second, wantErr: true, future: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := specTime.Add(tc.clock)
			v := mustVerifier(t, signer.VerifierOptions{Tolerance: tc.tolerance, Now: fixedClock(now)}, specSecret)
			err := v.Verify(specHeader(), body)
			if !tc.wantErr {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, signer.ErrTimestamp)
			var te *signer.TimestampError
			require.ErrorAs(t, err, &te)
			assert.True(t, te.Timestamp.Equal(specTime))
			assert.True(t, te.Now.Equal(now))
			if tc.future {
				assert.Contains(t, err.Error(), "in the future")
			} else {
				assert.Contains(t, err.Error(), "old")
			}
		})
	}
}

func TestVerifyChecksTimestampEvenWithAValidSignature(t *testing.T) {
	t.Parallel()
	// A captured request replayed an hour later carries a valid signature.
	v := mustVerifier(t, signer.VerifierOptions{Now: fixedClock(specTime.Add(time.Hour))}, specSecret)
	assert.ErrorIs(t, v.Verify(specHeader(), []byte(specBody)), signer.ErrTimestamp)
}

func TestVerifyRequiresHeaders(t *testing.T) {
	t.Parallel()
	s := setup(t)
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		for _, how := range []string{"absent", "empty", "blank"} {
			h := specHeader()
			switch how {
			case "absent":
				h.Del(name)
			case "empty":
				h.Set(name, "")
			case "blank":
				if name != "webhook-signature" {
					continue
				}
				h.Set(name, "   ")
			}
			err := s.v.Verify(h, []byte(specBody))
			assert.ErrorIs(t, err, signer.ErrMissingHeader, "%s %s", name, how)
			assert.ErrorContains(t, err, name)
		}
	}
	assert.ErrorIs(t, s.v.Verify(nil, nil), signer.ErrMissingHeader)
}

func TestVerifyRejectsMalformedTimestamps(t *testing.T) {
	t.Parallel()
	s := setup(t)
	for _, ts := range []string{
		"abc", "-1614265330", "+1614265330", "1614265330.5", " 1614265330", "1614265330 ",
		"1614265330000", // milliseconds
		"99999999999999999999999", "0x6037A9F2", "１６１４２６５３３０",
	} {
		h := specHeader()
		h.Set("webhook-timestamp", ts)
		err := s.v.Verify(h, []byte(specBody))
		assert.ErrorIs(t, err, signer.ErrInvalidHeader, "%q", ts)
		assert.NotContains(t, err.Error(), ts)
	}
}

func TestVerifyCapsTheNumberOfSignatures(t *testing.T) {
	t.Parallel()
	s := setup(t)
	bogus := "v1a," + strings.Repeat("A", 88)

	h := specHeader()
	h.Set("webhook-signature", strings.Repeat(bogus+" ", 31)+specSignature)
	assert.NoError(t, s.v.Verify(h, []byte(specBody)), "32 entries are fine")

	h.Set("webhook-signature", strings.Repeat(bogus+" ", 32)+specSignature)
	assert.ErrorIs(t, s.v.Verify(h, []byte(specBody)), signer.ErrInvalidHeader)
}

func TestVerifyReadsHandBuiltAndSplitHeaders(t *testing.T) {
	t.Parallel()
	s := setup(t)
	h := http.Header{
		"webhook-id":        {specMsgID},
		"webhook-timestamp": {strconv.Itoa(specTimestamp)},
		"webhook-signature": {specSignature},
	}
	assert.NoError(t, s.v.Verify(h, []byte(specBody)), "lower-case keys, as in a hand-built header")

	split := specHeader()
	split.Set("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
	split.Add("webhook-signature", specSignature)
	assert.NoError(t, s.v.Verify(split, []byte(specBody)), "signatures over two header lines")
}

func TestVerifyVersionMustMatchKeyKind(t *testing.T) {
	t.Parallel()
	body := []byte(specBody)
	edSecret, edPublic, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	opts := signer.VerifierOptions{Now: fixedClock(specTime)}

	hmacOnly := mustVerifier(t, opts, specSecret)
	h := signedHeader(t, specMsgID, specTime, body, edSecret)
	assert.ErrorIs(t, hmacOnly.Verify(h, body), signer.ErrNoMatchingSignature)

	edOnly := mustVerifier(t, opts, edPublic)
	assert.ErrorIs(t, edOnly.Verify(specHeader(), body), signer.ErrNoMatchingSignature)
}

func TestVerifyIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	s := setup(t)
	body := []byte(specBody)
	good := signedHeader(t, specMsgID, specTime, body, specSecret, s.edSecret)
	bad := signedHeader(t, specMsgID, specTime, body, secretOf(32, 5))
	errs := make(chan error, 64)
	for i := range 64 {
		go func() {
			if i%2 == 0 {
				errs <- s.v.Verify(good, body)
			} else if err := s.v.Verify(bad, body); !errors.Is(err, signer.ErrNoMatchingSignature) {
				errs <- fmt.Errorf("bad header: %v", err)
			} else {
				errs <- nil
			}
		}()
	}
	for range 64 {
		assert.NoError(t, <-errs)
	}
}

func TestVerifyFunction(t *testing.T) {
	t.Parallel()
	body := []byte(specBody)
	// The function uses the real clock: the 2021 vector is stale for it,
	// and a message signed now is fresh for the next 5 minutes.
	assert.ErrorIs(t, signer.Verify(specSecret, specHeader(), body), signer.ErrTimestamp)

	now := time.Now()
	assert.NoError(t, signer.Verify(specSecret, signedHeader(t, "m", now, body, specSecret), body))
	assert.ErrorIs(t, signer.Verify(specSecret, signedHeader(t, "m", now, body, secretOf(32, 6)), body), signer.ErrNoMatchingSignature)
	assert.ErrorIs(t, signer.Verify("whsec_short", specHeader(), body), signer.ErrInvalidSecret)
}

func TestNewVerifierRejectsBadKeysAndOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range malformedKeys {
		_, err := signer.NewVerifier(specSecret, tc.key)
		assert.ErrorIs(t, err, signer.ErrInvalidSecret, tc.name)
		if err != nil {
			assertNoEcho(t, err, tc.key)
		}
	}

	_, err := signer.NewVerifier()
	assert.ErrorIs(t, err, signer.ErrInvalidSecret)

	edSecret, _, err := signer.GenerateKeyPair()
	require.NoError(t, err)
	_, err = signer.NewVerifier(edSecret)
	require.ErrorIs(t, err, signer.ErrInvalidSecret, "a receiver gets the public key, never the private one")
	assertNoEcho(t, err, edSecret)

	_, err = signer.NewVerifierWithOptions(signer.VerifierOptions{Tolerance: -time.Second}, specSecret)
	assert.ErrorContains(t, err, "Tolerance")
	_, err = signer.NewVerifierWithOptions(signer.VerifierOptions{MaxBodyBytes: -1}, specSecret)
	assert.ErrorContains(t, err, "MaxBodyBytes")
}

func TestVerifierFormatHidesKeys(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, signer.VerifierOptions{}, specSecret)
	for _, verb := range []string{"%v", "%+v", "%#v", "%d"} {
		assert.Equal(t, "signer.Verifier{keys: 1, tolerance: 5m0s}", fmt.Sprintf(verb, v), verb)
	}
}
