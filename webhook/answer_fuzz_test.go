package webhook_test

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// Credentials and a redacted value the fuzzed receiver may echo back:
// "%KEY%", "%TOKEN%" and "%SSN%" in an answer become them.
const (
	fuzzAPIKey = "key-7f3a9c2e1b"
	fuzzToken  = "tok-5d8e0a4c6f"
	fuzzSSN    = "123-45-6789"
)

// answerServer answers every request with the raw bytes it was last
// given, then closes the connection, and counts the connections it
// accepted. One serves a whole fuzz run: a listener per input would use
// up the ephemeral ports.
type answerServer struct {
	l      net.Listener
	answer atomic.Pointer[[]byte]
	conns  atomic.Int64
	done   chan struct{}
}

func newAnswerServer(tb testing.TB) *answerServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &answerServer{l: l, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				_, _ = c.Write(*s.answer.Load())
			}
			_ = c.Close()
		}
	}()
	tb.Cleanup(func() {
		_ = l.Close()
		<-s.done
	})
	return s
}

// set makes the server answer with b from now on and zeroes its count.
func (s *answerServer) set(b []byte) {
	s.answer.Store(&b)
	s.conns.Store(0)
}

// FuzzAnswer feeds arbitrary bytes to the sender as a receiver's answer:
// status lines, headers (Retry-After above all), bodies, or garbage. The
// attempt must end in a recorded outcome (delivered only on a 2xx), never
// follow a redirect, schedule any retry within the policy's bounds, and
// keep the webhook's credentials and redacted values out of everything it
// stores: the error and the answer kept in the delivery log.
func FuzzAnswer(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzAnswer.
	for _, s := range []string{
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\n\r\n",
		"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n\r\ntoken %TOKEN% expired",
		"HTTP/1.1 %KEY% x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	srv := newAnswerServer(f)
	f.Fuzz(func(t *testing.T, answer []byte) {
		answer = bytes.ReplaceAll(answer, []byte("%KEY%"), []byte(fuzzAPIKey))
		answer = bytes.ReplaceAll(answer, []byte("%TOKEN%"), []byte(fuzzToken))
		answer = bytes.ReplaceAll(answer, []byte("%SSN%"), []byte(fuzzSSN))
		srv.set(answer)
		k := webhooktest.NewDispatcher(t, webhook.Config{AttemptTimeout: 200 * time.Millisecond})
		ctx := t.Context()
		w, err := k.Register(ctx, webhook.Webhook{Name: "fuzz", Table: "employee", Ops: []webhook.Op{webhook.Insert},
			URL: "http://" + srv.l.Addr().String() + "/hook", Headers: map[string]string{"X-Api-Key": fuzzAPIKey},
			Auth: &webhook.Auth{Type: webhook.AuthBearer, Token: fuzzToken}, Body: transform.Body{Redact: []string{"ssn"}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Insert, Key: "E-1",
			New: map[string]any{"name": "Ada", "ssn": fuzzSSN}})
		if err != nil {
			t.Fatal(err)
		}
		if n := k.Drain(t); n != 1 {
			t.Fatalf("attempted %d messages, want 1", n)
		}
		ds, err := k.Deliveries(ctx, webhook.DeliveryQuery{})
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries: %v, %v", ds, err)
		}
		d := ds[0]
		atts, err := k.Attempts(ctx, d.ID)
		if err != nil || len(atts) != 1 {
			t.Fatalf("attempts: %v, %v", atts, err)
		}
		a := atts[0]
		if d.Attempts != 1 {
			t.Fatalf("delivery counts %d attempts, want 1", d.Attempts)
		}
		// At most one: a redirect is never followed. (None is possible on a
		// loaded machine: the attempt may time out before the receiver's
		// accept loop has taken the connection from the kernel's queue.)
		if got := srv.conns.Load(); got > 1 {
			t.Fatalf("the receiver got %d connections, want at most 1 (a redirect is never followed)", got)
		}
		switch d.Status {
		case webhook.Delivered:
			if a.StatusCode < 200 || a.StatusCode > 299 || a.Error != "" {
				t.Fatalf("delivered on status %d, error %q", a.StatusCode, a.Error)
			}
		case webhook.Pending:
			wait := d.NextAttempt.Sub(k.Clock.Now())
			if wait < 0 || wait > 10*time.Hour {
				t.Fatalf("retry in %v, outside the policy's bounds", wait)
			}
			if a.Error == "" {
				t.Fatal("a failed attempt without an error")
			}
		case webhook.Dead:
		default:
			t.Fatalf("delivery is %q after one attempt", d.Status)
		}
		if !utf8.ValidString(a.ResponseBody) || len(a.ResponseBody) > 4096 {
			t.Fatalf("kept answer is not valid UTF-8 of at most 4 KiB: %d bytes", len(a.ResponseBody))
		}
		for _, secret := range []string{fuzzAPIKey, fuzzToken, fuzzSSN, w.Secret} {
			for what, s := range map[string]string{"error": a.Error, "last error": d.LastError, "kept answer": a.ResponseBody} {
				if strings.Contains(s, secret) {
					t.Fatalf("the %s holds %q: %q", what, secret, s)
				}
			}
		}
	})
}
