package signer_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhr/herald/signer"
)

// FuzzVerify feeds arbitrary headers and bodies to Verify. It must never
// panic, must fail only with its documented sentinels, and must accept a
// message only when the header carries the signature the sender's key
// would have produced for exactly that id, timestamp and body.
//
// Seeds live in testdata/fuzz/FuzzVerify; run with
//
//	go test -run '^$' -fuzz FuzzVerify ./signer/
func FuzzVerify(f *testing.F) {
	f.Add(specMsgID, strconv.Itoa(specTimestamp), specSignature, []byte(specBody))
	f.Add(specMsgID, strconv.Itoa(specTimestamp), specEdSignature, []byte(specBody))

	// The Ed25519 key is the reference vector's, so its signatures are
	// reproducible and seeds can carry valid ones.
	pub, err := signer.PublicKey(specEdKey)
	if err != nil {
		f.Fatal(err)
	}
	v, err := signer.NewVerifierWithOptions(signer.VerifierOptions{Now: fixedClock(specTime)}, specSecret, pub)
	if err != nil {
		f.Fatal(err)
	}
	hmacSigner := mustNew(f, specSecret)
	edSigner := mustNew(f, specEdKey)

	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)

		err := v.Verify(h, body)
		if err != nil {
			for _, want := range []error{signer.ErrMissingHeader, signer.ErrInvalidHeader, signer.ErrTimestamp, signer.ErrNoMatchingSignature} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("error outside the documented sentinels: %v", err)
		}

		unix, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil {
			t.Fatalf("accepted unparsable timestamp %q", ts)
		}
		if d := specTime.Sub(time.Unix(unix, 0)); d > signer.DefaultTolerance || d < -signer.DefaultTolerance {
			t.Fatalf("accepted timestamp %q outside the tolerance", ts)
		}
		at := time.Unix(unix, 0)
		entries := strings.Fields(sig)
		for _, want := range []string{hmacSigner.Sign(id, at, body), edSigner.Sign(id, at, body)} {
			for _, e := range entries {
				if e == want {
					return
				}
			}
		}
		t.Fatalf("accepted id %q ts %q sig %q body %q without a genuine signature", id, ts, sig, body)
	})
}
