// Command attendance-sync is herald's main demo: two HR instances in one
// process. Instance B records an attendance entry; a webhook defined as
// data (table attendance, event INSERT, a bearer token from instance A in
// its headers) delivers it, signed, to instance A's attendance API; A marks
// the employee present on that date.
//
// Instance A's API is an older one: a form post of employee_id, date and
// status, where status is only ever P or A. So the webhook maps fields as
// data (a form body, with a value map turning "Present" into "P"), a
// before hook joins the employee's name and department from B's own
// directory into the record (the "view" of an HR product), and an after
// hook writes the sync result back into B's attendance record.
//
//	go run ./examples/attendance-sync
//
// It exits 0 only when A's calendar really shows the employee present and
// B's record shows it synced.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/transform"
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
// API that wants a bearer token, a valid herald signature, and a form with
// status P or A.
type instanceA struct {
	token  string
	secret func() string // the webhook's signing secret, shared at setup

	mu       sync.Mutex
	calendar map[string]string // "employee/date" -> present | absent
	names    map[string]string // employee -> "name, department", as A learnt it
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

func (a *instanceA) employee(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.names[id]
}

// ServeHTTP is A's attendance API: POST /api/attendance, a form of
// employee_id, date and status=P|A.
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
	// The signature covers the raw form bytes, exactly as sent.
	if err := signer.Verify(a.secret(), r.Header, body); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "form posts only", http.StatusUnsupportedMediaType)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	mark, ok := map[string]string{"P": "present", "A": "absent"}[form.Get("status")]
	if !ok || form.Get("employee_id") == "" || form.Get("date") == "" {
		http.Error(w, "employee_id, date and status=P|A are required", http.StatusUnprocessableEntity)
		return
	}
	a.mu.Lock()
	a.calendar[form.Get("employee_id")+"/"+form.Get("date")] = mark
	a.names[form.Get("employee_id")] = form.Get("employee_name") + ", " + form.Get("department")
	a.mu.Unlock()
	select {
	case a.marked <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusOK)
}

// instanceB is the sending HR instance: it records attendance in its own
// data, keeps an employee directory, and reports every change to herald.
type instanceB struct {
	herald *webhook.Dispatcher

	mu        sync.Mutex
	rows      map[string]map[string]any // attendance, by id
	directory map[string]map[string]any // employees, by id
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

// row returns a copy of an attendance row.
func (b *instanceB) row(id string) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]any{}
	for k, v := range b.rows[id] {
		out[k] = v
	}
	return out
}

// employeeDetails is the enrichment lookup: the employee's name and
// department, from B's own directory.
func (b *instanceB) employeeDetails(_ context.Context, r transform.Record) (map[string]any, error) {
	id, _ := r.New["employee_id"].(string)
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.directory[id]
	if !ok {
		return nil, transform.Permanent(fmt.Errorf("employee %q is not in the directory", id))
	}
	return map[string]any{"employee_name": e["name"], "department": e["department"]}, nil
}

// recordSync is the after hook: it writes the outcome of every attempt
// into the attendance record's sync_status. It updates B's row without
// publishing a change: sync bookkeeping is not an attendance change, and
// publishing it would feed the webhook its own echo.
func (b *instanceB) recordSync(_ context.Context, r *transform.Result) error {
	status := string(r.Outcome)
	switch r.Outcome {
	case transform.Delivered:
		status = "synced"
	case transform.Retrying, transform.Dead:
		status = fmt.Sprintf("%s: %v", r.Outcome, r.Err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rec := range r.Message.Records {
		if row, ok := b.rows[rec.Key]; ok {
			row["sync_status"] = status
			row["synced_at"] = time.Now().UTC().Format(time.RFC3339)
		}
	}
	return nil
}

func run(ctx context.Context, out io.Writer) error {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	// Instance A issues a token and serves its attendance API.
	var secret string
	var secretMu sync.Mutex
	a := &instanceA{token: newToken(), calendar: map[string]string{}, names: map[string]string{}, marked: make(chan struct{}, 1),
		secret: func() string { secretMu.Lock(); defer secretMu.Unlock(); return secret }}
	aURL, stopA, err := serve(a)
	if err != nil {
		return err
	}
	defer stopA()
	say("instance A: attendance API at %s/api/attendance (form posts, status P or A), API token issued", aURL)

	// Instance B's plugin code registers its hooks by name; webhooks name
	// them as data.
	b := &instanceB{rows: map[string]map[string]any{}, directory: map[string]map[string]any{
		"E-1001": {"name": "Ada Lovelace", "department": "Engineering"},
	}}
	hooks := transform.NewRegistry()
	if err := hooks.RegisterBefore("employee-details", transform.Enrich(b.employeeDetails)); err != nil {
		return err
	}
	if err := hooks.RegisterAfter("sync-status", transform.AfterFunc(b.recordSync)); err != nil {
		return err
	}

	// Instance B embeds herald. The demo talks to loopback, so private
	// networks are allowed; production keeps the guard on.
	herald, err := webhook.New(webhook.Config{Store: memory.New(), Hooks: hooks, AllowPrivateNetworks: true})
	if err != nil {
		return err
	}
	b.herald = herald
	w, err := herald.Register(ctx, webhook.Webhook{
		Name:        "Push single attendance record",
		Description: "Sends every new attendance entry of instance B to instance A",
		Table:       "attendance",
		Ops:         []webhook.Op{webhook.Insert},
		URL:         aURL + "/api/attendance",
		Method:      http.MethodPost,
		Headers:     map[string]string{"Authorization": "Bearer " + a.token},
		Body: transform.Body{
			Format: transform.Form,
			Fields: map[string]string{
				"employee_id":   "new.employee_id",
				"date":          "new.date",
				"status":        "new.status",
				"employee_name": "new.employee_name",
				"department":    "new.department",
			},
			Values: map[string]map[string]any{"status": {"Present": "P", "Absent": "A"}},
		},
		Before: []string{"employee-details"},
		After:  []string{"sync-status"},
	})
	if err != nil {
		return err
	}
	secretMu.Lock()
	secret = w.Secret
	secretMu.Unlock()
	say("instance B: webhook %q registered (table %s, event INSERT, form body, Present->P, hooks %v then %v)",
		w.Name, w.Table, w.Before, w.After)
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
		say("herald: delivered to %q as a signed form post, after %d attempt(s)", w.Name, got.Attempts)
	}
	got := a.status(employee, date)
	say("instance A: calendar of %s on %s shows %s (%s)", employee, date, got, a.employee(employee))
	row := b.row(employee + "/" + date)
	say("instance B: attendance record %s/%s has sync_status %v at %v", employee, date, row["sync_status"], row["synced_at"])
	if got != "present" {
		return fmt.Errorf("instance A shows %s, want present", got)
	}
	if row["sync_status"] != "synced" {
		return fmt.Errorf("instance B's record has sync_status %v, want synced", row["sync_status"])
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
