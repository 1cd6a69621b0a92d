// Command attendance-sync is herald's main demo: two HR instances in one
// process. Instance B records an attendance entry; a webhook defined as
// data (table attendance, event INSERT, a bearer token from instance A in
// its headers) delivers it, signed, to instance A's attendance API; A marks
// the employee present on that date.
//
//	go run ./examples/attendance-sync
//
// It exits 0 only when A's calendar really shows the employee present.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "attendance-sync:", err)
		os.Exit(1)
	}
}

// instanceA is the receiving HR instance: an attendance calendar behind an
// API that wants a bearer token and a valid herald signature.
type instanceA struct {
	token  string
	secret func() string // the webhook's signing secret, shared at setup

	mu       sync.Mutex
	calendar map[string]string // "employee/date" -> status
	marked   chan struct{}
}

func (a *instanceA) status(employee, date string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.calendar[employee+"/"+date]; ok {
		return s
	}
	return "absent"
}

// ServeHTTP is A's attendance API: POST /api/attendance.
func (a *instanceA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/attendance" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+a.token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if err := verify(a.secret(), r.Header, body); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var msg struct {
		Type string `json:"type"`
		Data struct {
			New struct {
				EmployeeID string `json:"employee_id"`
				Date       string `json:"date"`
				Status     string `json:"status"`
			} `json:"new"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Type != "attendance.inserted" {
		http.Error(w, "not an attendance record", http.StatusUnprocessableEntity)
		return
	}
	rec := msg.Data.New
	a.mu.Lock()
	a.calendar[rec.EmployeeID+"/"+rec.Date] = map[string]string{"Present": "present", "Absent": "absent"}[rec.Status]
	a.mu.Unlock()
	select {
	case a.marked <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusOK)
}

// instanceB is the sending HR instance: it records attendance in its own
// data and reports every change to herald.
type instanceB struct {
	herald *webhook.Dispatcher
	mu     sync.Mutex
	rows   map[string]map[string]any
}

// record stores an attendance entry and publishes the change.
func (b *instanceB) record(ctx context.Context, employee, date, status string) (string, error) {
	id := employee + "/" + date
	row := map[string]any{"id": id, "employee_id": employee, "date": date, "status": status}
	b.mu.Lock()
	b.rows[id] = row
	b.mu.Unlock()
	return b.herald.Publish(ctx, webhook.Change{
		Table: "attendance", Op: webhook.Insert, Key: id, New: row,
		Context: map[string]any{"actor": "team-lead", "source": "attendance-report"},
	})
}

func run(ctx context.Context, out io.Writer) error {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	// Instance A issues a token and serves its attendance API.
	var secret string
	var secretMu sync.Mutex
	a := &instanceA{token: newToken(), calendar: map[string]string{}, marked: make(chan struct{}, 1),
		secret: func() string { secretMu.Lock(); defer secretMu.Unlock(); return secret }}
	aURL, stopA, err := serve(a)
	if err != nil {
		return err
	}
	defer stopA()
	say("instance A: attendance API at %s/api/attendance, API token issued", aURL)

	// Instance B embeds herald. The demo talks to loopback, so private
	// networks are allowed; production keeps the guard on.
	herald, err := webhook.New(webhook.Config{Store: memory.New(), AllowPrivateNetworks: true})
	if err != nil {
		return err
	}
	b := &instanceB{herald: herald, rows: map[string]map[string]any{}}
	w, err := herald.Register(ctx, webhook.Webhook{
		Name:        "Push single attendance record",
		Description: "Sends every new attendance entry of instance B to instance A",
		Table:       "attendance",
		Ops:         []webhook.Op{webhook.Insert},
		URL:         aURL + "/api/attendance",
		Method:      http.MethodPost,
		Headers:     map[string]string{"Authorization": "Bearer " + a.token},
	})
	if err != nil {
		return err
	}
	secretMu.Lock()
	secret = w.Secret
	secretMu.Unlock()
	say("instance B: webhook %q registered (table %s, event INSERT, bearer token in its headers)", w.Name, w.Table)
	if err := herald.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = herald.Shutdown(sctx)
	}()

	const employee, date = "E-1001", "2026-03-02"
	say("instance A: calendar of %s on %s shows %s", employee, date, a.status(employee, date))
	eventID, err := b.record(ctx, employee, date, "Present")
	if err != nil {
		return err
	}
	say("instance B: team lead records %s present on %s (event %s)", employee, date, eventID)

	select {
	case <-a.marked:
	case <-ctx.Done():
		return errors.New("instance A was not updated in time")
	}
	ds, err := herald.Deliveries(ctx, webhook.DeliveryQuery{EventID: eventID})
	if err != nil {
		return err
	}
	for _, d := range ds {
		got, err := waitDelivered(ctx, herald, d.ID)
		if err != nil {
			return err
		}
		say("herald: delivered to %q, signed, after %d attempt(s)", w.Name, got.Attempts)
	}
	got := a.status(employee, date)
	say("instance A: calendar of %s on %s shows %s", employee, date, got)
	if got != "present" {
		return fmt.Errorf("instance A shows %s, want present", got)
	}
	return nil
}

// waitDelivered waits until the delivery is recorded as delivered.
func waitDelivered(ctx context.Context, d *webhook.Dispatcher, id string) (webhook.Delivery, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		got, err := d.Delivery(ctx, id)
		if err != nil {
			return got, err
		}
		if got.Status == webhook.Delivered {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("delivery %s is %s: %s", id, got.Status, got.LastError)
		case <-t.C:
		}
	}
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// verify checks a request's Standard Webhooks signature.
func verify(secret string, h http.Header, body []byte) error {
	return signer.Verify(secret, h, body)
}
