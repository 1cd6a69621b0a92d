package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
)

// nopTransport answers 204 without a network.
type nopTransport struct{}

func (nopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

// record30 is a record of 30 fields, about 1 KB of JSON.
func record30(dept string) map[string]any {
	m := map[string]any{"department": dept, "status": "Active", "grade": 6}
	for i := len(m); i < 30; i++ {
		m[fmt.Sprintf("field_%02d", i)] = strings.Repeat("x", 24)
	}
	return m
}

// claimedMessage publishes one change to one webhook and claims it.
func claimedMessage(b *testing.B) (*Dispatcher, store.Message) {
	b.Helper()
	d, err := New(Config{Store: memory.New(), HTTPClient: &http.Client{Transport: nopTransport{}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Register(ctx, Webhook{Name: "payroll", Table: "employee", Ops: []Op{Update}, URL: "https://payroll.example.com/hook"}); err != nil {
		b.Fatal(err)
	}
	if _, err := d.Publish(ctx, Change{Table: "employee", Op: Update, Key: "E-1", Old: record30("Ops"), New: record30("Sales")}); err != nil {
		b.Fatal(err)
	}
	ms, err := d.store.Claim(ctx, store.Claim{Now: d.now(), Lease: time.Hour, Limit: 1})
	if err != nil || len(ms) != 1 {
		b.Fatalf("claim: %v, %d messages", err, len(ms))
	}
	return d, ms[0]
}

// BenchmarkEnvelopeAndSign measures building the default envelope around
// a stored 2 KB payload (a 30-field record before and after) and signing
// it: the per-attempt work of the wire format.
func BenchmarkEnvelopeAndSign(b *testing.B) {
	d, m := claimedMessage(b)
	w := d.defs.Load().byID[m.WebhookID]
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(envelopeFromStored(m))))
	cpu := cpuTime()
	for b.Loop() {
		body := envelopeFromStored(m)
		_ = w.keys.at(now).Sign(m.ID, now, body)
	}
	reportCPU(b, cpu)
}

// BenchmarkAttempt measures one attempt of a claimed message, store and
// network left out: the definition look-up, envelope, signature, request
// building, the client's round trip through a transport that answers at
// once, the outcome and the observer's report.
func BenchmarkAttempt(b *testing.B) {
	d, m := claimedMessage(b)
	ctx := context.Background()
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if r, ok := d.handle(ctx, m, nil); !ok || r.Outcome != store.OutcomeDelivered {
			b.Fatalf("attempt: %v %v", r.Outcome, ok)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkAttemptLoopback measures one attempt through herald's own
// guarded client to a receiver on the loopback interface, beside the
// same signed POST sent with a plain http.Client: what an attempt costs
// beyond the request itself. The receiver runs in this process, so
// cpu-ns/op counts its work on both sides alike.
func BenchmarkAttemptLoopback(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	d, err := New(Config{Store: memory.New(), AllowPrivateNetworks: true})
	if err != nil {
		b.Fatal(err)
	}
	defer d.closeIdle()
	ctx := context.Background()
	if _, err := d.Register(ctx, Webhook{Name: "payroll", Table: "employee", Ops: []Op{Update}, URL: srv.URL + "/hook"}); err != nil {
		b.Fatal(err)
	}
	if _, err := d.Publish(ctx, Change{Table: "employee", Op: Update, Key: "E-1", Old: record30("Ops"), New: record30("Sales")}); err != nil {
		b.Fatal(err)
	}
	ms, err := d.store.Claim(ctx, store.Claim{Now: d.now(), Lease: time.Hour, Limit: 1})
	if err != nil || len(ms) != 1 {
		b.Fatalf("claim: %v, %d messages", err, len(ms))
	}
	m := ms[0]
	b.Run("herald", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			if r, ok := d.handle(ctx, m, nil); !ok || r.Outcome != store.OutcomeDelivered {
				b.Fatalf("attempt: %v %v %v", r.Outcome, ok, r.Attempt)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("net-http", func(b *testing.B) {
		body := envelopeFromStored(m)
		secret, err := signer.GenerateSecret()
		if err != nil {
			b.Fatal(err)
		}
		s, err := signer.New(secret)
		if err != nil {
			b.Fatal(err)
		}
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/hook", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			s.SetHeaders(req.Header, m.ID, time.Now(), body)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		reportCPU(b, cpu)
	})
}

// BenchmarkMarshalPayload measures encoding a change once per event: the
// payload of an update whose old and new records have 30 fields each.
func BenchmarkMarshalPayload(b *testing.B) {
	p := &payload{EventID: "0190f6a1-7c1e-7000-8000-000000000001", Table: "employee", Op: "UPDATE", Key: "E-1",
		Old: record30("Ops"), New: record30("Sales"), Changed: []string{"department"}, Tenant: "acme"}
	out, err := marshalPayload(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if _, err := marshalPayload(p); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkReleaseParked hands a webhook's slot to its first parked
// message with 100 and with 10,000 parked, as a month-end burst parks
// them: the cost does not follow the park's length.
func BenchmarkReleaseParked(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("parked=%d", n), func(b *testing.B) {
			g := &gate{}
			m := store.Message{ID: "m", WebhookID: "w", Lease: "l", Deliveries: make([]store.Delivery, 1), Events: make([]store.Event, 1)}
			for range n {
				g.park = append(g.park, parked{m: m})
			}
			b.ReportAllocs()
			for b.Loop() {
				h := &hand{}
				g.releaseSlot(h, false)
				g.park = append(g.park, *h.next)
			}
		})
	}
}
