// Command onboarding shows one employee record fanning out to the systems
// that care, each in the format it wants, each seeing only what it may.
//
// When an employee's status changes to "Hired", payroll gets a flat JSON
// object (national ID included: payroll needs it for tax), IT provisioning
// gets herald's default envelope, and the manager's notification service
// gets a form post. A later salary change reaches payroll only. When the
// status changes to "Terminated", the identity system gets a CloudEvent at
// once, so access is revoked. Every webhook but payroll's redacts the
// national ID, the salary and the bank account.
//
//	go run ./examples/onboarding
//
// It exits 0 only when every system got exactly what it should.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "onboarding:", err)
		os.Exit(1)
	}
}

// received is one request a system accepted.
type received struct {
	contentType string
	body        []byte
}

// system is a receiving system on loopback: it verifies herald's
// signature and keeps what it got.
type system struct {
	name string
	url  string
	stop func()

	mu     sync.Mutex
	secret string
	got    []received
}

func newSystem(name string) (*system, error) {
	s := &system{name: name}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.url, s.stop = "http://"+ln.Addr().String()+"/hooks", func() { _ = srv.Close() }
	return s, nil
}

func (s *system) setSecret(secret string) {
	s.mu.Lock()
	s.secret = secret
	s.mu.Unlock()
}

func (s *system) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := signer.Verify(s.secret, r.Header, body); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	s.got = append(s.got, received{contentType: r.Header.Get("Content-Type"), body: body})
	w.WriteHeader(http.StatusNoContent)
}

func (s *system) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// The employee, as the HR backend holds it before the hire.
const (
	employeeID = "E-2001"
	nationalID = "QQ123456C"
	bankAcct   = "GB29NWBK60161331926819"
)

func offer() map[string]any {
	return map[string]any{
		"name": "Grace Hopper", "email": "grace@acme.example", "department": "Engineering",
		"manager_email": "ada@acme.example", "start_date": "2026-04-01", "status": "Offer",
		"salary": 5200, "national_id": nationalID, "bank_account": bankAcct,
	}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// statusBecomes fires on an update whose status changed to s.
func statusBecomes(s string) condition.Rule {
	return condition.Rule{Match: condition.AnySelected, Fields: []string{"status"}, Expr: fmt.Sprintf("new.status == %q", s)}
}

// sensitive is what only payroll may see.
var sensitive = []string{"national_id", "salary", "bank_account"}

func run(ctx context.Context, out io.Writer) error {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	systems := map[string]*system{}
	for _, name := range []string{"payroll", "it", "manager", "identity"} {
		s, err := newSystem(name)
		if err != nil {
			return err
		}
		defer s.stop()
		systems[name] = s
	}

	// The systems listen on loopback, so private networks are allowed;
	// production keeps the guard on.
	herald, err := webhook.New(webhook.Config{Store: memory.New(), AllowPrivateNetworks: true})
	if err != nil {
		return err
	}
	employee := []webhook.Op{webhook.Update}
	hooks := map[string]webhook.Webhook{
		"payroll": {
			Name: "Payroll: hires and salary changes", Table: "employee", Ops: employee,
			When: condition.Rule{Expr: `(new.status == "Hired" && old.status != "Hired") || "salary" in changed`},
			Body: transform.Body{Fields: map[string]string{
				"employee_id": "key",
				"event":       `new.status == "Hired" && old.status != "Hired" ? "hired" : "salary_changed"`,
				"name":        "new.name",
				"national_id": "new.national_id",
				"salary":      "new.salary",
				"start_date":  "new.start_date",
			}},
		},
		"it": {
			Name: "IT provisioning: new hires", Table: "employee", Ops: employee, When: statusBecomes("Hired"),
			Body: transform.Body{Redact: sensitive}, // the default envelope, minus what IT must not see
		},
		"manager": {
			Name: "Manager notification: new hires", Table: "employee", Ops: employee, When: statusBecomes("Hired"),
			Body: transform.Body{
				Format: transform.Form,
				Fields: map[string]string{
					"manager":    "new.manager_email",
					"employee":   "new.name",
					"department": "new.department",
					"start_date": "new.start_date",
					"message":    `new.name + " joins " + new.department + " on " + new.start_date`,
				},
				Redact: sensitive,
			},
		},
		"identity": {
			Name: "Identity: revoke access on termination", Table: "employee", Ops: employee, When: statusBecomes("Terminated"),
			Body: transform.Body{Format: transform.CloudEvents, Source: "https://hr.acme.example/employees", Redact: sensitive},
		},
	}
	for _, name := range []string{"payroll", "it", "manager", "identity"} {
		w := hooks[name]
		w.URL = systems[name].url
		w, err := herald.Register(ctx, w)
		if err != nil {
			return err
		}
		systems[name].setSecret(w.Secret)
		say("herald: webhook %q registered", w.Name)
	}
	if err := herald.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = herald.Shutdown(sctx)
	}()

	hired := with(offer(), "status", "Hired")
	raised := with(hired, "salary", 5600)
	terminated := with(raised, "status", "Terminated")
	for _, step := range []struct {
		story    string
		old, new map[string]any
	}{
		{"HR marks " + employeeID + " as Hired", offer(), hired},
		{"HR raises " + employeeID + "'s salary to 5600", hired, raised},
		{"HR marks " + employeeID + " as Terminated", raised, terminated},
	} {
		if _, err := herald.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Update, Key: employeeID,
			Old: step.old, New: step.new, Context: map[string]any{"actor": "hr-admin"}}); err != nil {
			return err
		}
		say("hr: %s", step.story)
	}
	if err := waitSettled(ctx, herald); err != nil {
		return err
	}

	for _, name := range []string{"payroll", "it", "manager", "identity"} {
		for _, r := range systems[name].requests() {
			say("%s got %s %s", name, r.contentType, r.body)
		}
	}
	if err := check(systems); err != nil {
		return err
	}
	say("every system got exactly what it should; the national ID reached payroll only")
	return nil
}

// waitSettled waits until no delivery is pending, then checks that every
// one was delivered.
func waitSettled(ctx context.Context, d *webhook.Dispatcher) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		pending, err := d.Deliveries(ctx, webhook.DeliveryQuery{Status: webhook.Pending})
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d deliveries still pending: %s", len(pending), pending[0].LastError)
		case <-t.C:
		}
	}
	all, err := d.Deliveries(ctx, webhook.DeliveryQuery{})
	if err != nil {
		return err
	}
	for _, x := range all {
		if x.Status != webhook.Delivered {
			return fmt.Errorf("delivery %s is %s: %s", x.ID, x.Status, x.LastError)
		}
	}
	return nil
}

// check compares what each system got with what it should have got.
func check(systems map[string]*system) error {
	var errs []error
	expect := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	count := func(name string, n int) []received {
		got := systems[name].requests()
		expect(len(got) == n, "%s got %d requests, want %d", name, len(got), n)
		if len(got) < n {
			return make([]received, n)
		}
		return got
	}

	payroll := count("payroll", 2)
	for i, want := range []map[string]any{
		{"employee_id": employeeID, "event": "hired", "name": "Grace Hopper", "national_id": nationalID, "salary": 5200.0, "start_date": "2026-04-01"},
		{"employee_id": employeeID, "event": "salary_changed", "name": "Grace Hopper", "national_id": nationalID, "salary": 5600.0, "start_date": "2026-04-01"},
	} {
		var got map[string]any
		_ = json.Unmarshal(payroll[i].body, &got)
		expect(payroll[i].contentType == "application/json", "payroll request %d is %q, want flat JSON", i+1, payroll[i].contentType)
		expect(reflect.DeepEqual(got, want), "payroll request %d is %s, want %v", i+1, payroll[i].body, want)
	}

	it := count("it", 1)[0]
	var env struct {
		Type string `json:"type"`
		Data struct {
			Key     string         `json:"key"`
			New     map[string]any `json:"new"`
			Old     map[string]any `json:"old"`
			Changed []string       `json:"changed"`
		} `json:"data"`
	}
	_ = json.Unmarshal(it.body, &env)
	expect(env.Type == "employee.updated" && env.Data.Key == employeeID, "IT got %s, want the employee.updated envelope", it.body)
	expect(env.Data.New["status"] == "Hired" && env.Data.Old["status"] == "Offer", "IT got statuses %v -> %v", env.Data.Old["status"], env.Data.New["status"])
	expect(reflect.DeepEqual(env.Data.Changed, []string{"status"}), "IT got changed %v, want [status]", env.Data.Changed)
	expect(env.Data.New["email"] == "grace@acme.example", "IT got no email to provision an account with")

	manager := count("manager", 1)[0]
	form, _ := url.ParseQuery(string(manager.body))
	expect(manager.contentType == "application/x-www-form-urlencoded", "manager got %q, want a form", manager.contentType)
	expect(reflect.DeepEqual(form, url.Values{
		"manager": {"ada@acme.example"}, "employee": {"Grace Hopper"}, "department": {"Engineering"},
		"start_date": {"2026-04-01"}, "message": {"Grace Hopper joins Engineering on 2026-04-01"},
	}), "manager got %s", manager.body)

	identity := count("identity", 1)[0]
	var ev struct {
		SpecVersion string `json:"specversion"`
		Type        string `json:"type"`
		Source      string `json:"source"`
		Subject     string `json:"subject"`
		Data        struct {
			New map[string]any `json:"new"`
		} `json:"data"`
	}
	_ = json.Unmarshal(identity.body, &ev)
	expect(identity.contentType == "application/cloudevents+json", "identity got %q, want a CloudEvent", identity.contentType)
	expect(ev.SpecVersion == "1.0" && ev.Type == "employee.updated" && ev.Subject == employeeID &&
		ev.Source == "https://hr.acme.example/employees", "identity got %s", identity.body)
	expect(ev.Data.New["status"] == "Terminated", "identity got status %v, want Terminated", ev.Data.New["status"])

	for _, name := range []string{"it", "manager", "identity"} {
		for _, r := range systems[name].requests() {
			for _, secret := range []string{nationalID, bankAcct, "5200", "5600", "national_id", "salary"} {
				expect(!strings.Contains(string(r.body), secret), "%s saw %q: %s", name, secret, r.body)
			}
		}
	}
	return errors.Join(errs...)
}
