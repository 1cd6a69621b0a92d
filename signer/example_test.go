package signer_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/heraldhr/herald/signer"
)

func ExampleSigner_Sign() {
	s, err := signer.New("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	body := []byte(`{"test": 2432232314}`)
	fmt.Println(s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body))
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

// During a rotation the Signer holds the new and the old secret; every
// message carries both signatures in one header line.
func ExampleSigner_Sign_rotation() {
	s, err := signer.New(
		"whsec_dGhlIG5ldyBzZWNyZXQgb2YgMzIgYnl0ZXMgbG9uZyE=", // new
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",             // old, until receivers have switched
	)
	if err != nil {
		panic(err)
	}
	header := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	for _, sig := range strings.Split(header, " ") {
		fmt.Println(sig)
	}
	// Output:
	// v1,WQ2Exz61I6mSmDs191mYyDL+ZX9cbWd59QCFGhV4iuk=
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

func ExampleSigner_SetHeaders() {
	s, err := signer.New("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	body := []byte(`{"test": 2432232314}`)
	req := httptest.NewRequest(http.MethodPost, "https://hr.example/hooks", strings.NewReader(string(body)))
	s.SetHeaders(req.Header, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body)
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		fmt.Printf("%s: %s\n", name, req.Header.Get(name))
	}
	// Output:
	// webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek
	// webhook-timestamp: 1614265330
	// webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

func ExampleVerifier_Verify() {
	// A fixed clock makes the example reproducible; leave Now nil in
	// production.
	v, err := signer.NewVerifierWithOptions(signer.VerifierOptions{
		Now: func() time.Time { return time.Unix(1614265330+30, 0) },
	}, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

	fmt.Println(v.Verify(h, []byte(`{"test": 2432232314}`)))

	err = v.Verify(h, []byte(`{"test": 1}`))
	fmt.Println(errors.Is(err, signer.ErrNoMatchingSignature))

	h.Set("webhook-timestamp", "1614260000")
	err = v.Verify(h, []byte(`{"test": 2432232314}`))
	fmt.Println(errors.Is(err, signer.ErrTimestamp), err)
	// Output:
	// <nil>
	// true
	// true signer: timestamp outside tolerance: 1h29m20s old, tolerance 5m0s
}

func ExampleVerifier_Middleware() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sent := time.Unix(1614265330, 0)
	v, err := signer.NewVerifierWithOptions(signer.VerifierOptions{
		Now: func() time.Time { return sent.Add(2 * time.Second) },
	}, secret)
	if err != nil {
		panic(err)
	}
	handler := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // the verified bytes
		fmt.Printf("handler got %s\n", body)
	}))

	s, err := signer.New(secret)
	if err != nil {
		panic(err)
	}
	for _, body := range []string{`{"id":"evt_1"}`, `{"id":"evt_2"}`} {
		req := httptest.NewRequest(http.MethodPost, "/hooks/hr", strings.NewReader(body))
		s.SetHeaders(req.Header, "evt_1", sent, []byte(`{"id":"evt_1"}`))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// handler got {"id":"evt_1"}
	// 200
	// 401
}

func ExampleDedup() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sent := time.Unix(1614265330, 0)
	clock := func() time.Time { return sent }
	v, err := signer.NewVerifierWithOptions(signer.VerifierOptions{Now: clock}, secret)
	if err != nil {
		panic(err)
	}
	seen := signer.NewMemorySeenStore(signer.MemorySeenStoreOptions{Now: clock})
	handler := v.Middleware(signer.Dedup(seen, 24*time.Hour)(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			fmt.Println("processing", r.Header.Get("webhook-id"))
		})))

	s, err := signer.New(secret)
	if err != nil {
		panic(err)
	}
	body := []byte(`{"id":"evt_1"}`)
	for range 2 { // the second send is a retry whose first answer was lost
		req := httptest.NewRequest(http.MethodPost, "/hooks/hr", strings.NewReader(string(body)))
		s.SetHeaders(req.Header, "evt_1", sent, body)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Printf("%d %q\n", rec.Code, rec.Body.String())
	}
	// Output:
	// processing evt_1
	// 200 ""
	// 200 "already processed\n"
}

func ExampleGenerateKeyPair() {
	secret, public, err := signer.GenerateKeyPair()
	if err != nil {
		panic(err)
	}
	// The private key signs; only the public key goes to receivers.
	s, _ := signer.New(secret)
	v, _ := signer.NewVerifier(public)

	now := time.Now()
	body := []byte(`{"id":"evt_1"}`)
	h := http.Header{}
	s.SetHeaders(h, "evt_1", now, body)
	fmt.Println(strings.SplitN(h.Get("webhook-signature"), ",", 2)[0], v.Verify(h, body))
	// Output:
	// v1a <nil>
}

func ExampleGenerateSecret() {
	secret, err := signer.GenerateSecret()
	if err != nil {
		panic(err)
	}
	fmt.Println(secret[:6], len(secret), signer.ValidateSecret(secret))
	// Output:
	// whsec_ 50 <nil>
}
