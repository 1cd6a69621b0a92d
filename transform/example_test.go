package transform_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
)

// receiver is a stand-in for another system: it prints what it got.
func receiver(show func(r *http.Request, body []byte)) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		show(r, body)
		w.WriteHeader(http.StatusOK)
	}))
}

// send registers w with a dispatcher using hooks, publishes c and makes
// every attempt due.
func send(hooks *transform.Registry, w webhook.Webhook, c webhook.Change) {
	ctx := context.Background()
	d, err := webhook.New(webhook.Config{
		Store:                memory.New(),
		Hooks:                hooks,
		AllowPrivateNetworks: true, // the receivers of these examples listen on loopback
	})
	if err != nil {
		panic(err)
	}
	if _, err := d.Register(ctx, w); err != nil {
		panic(err)
	}
	if _, err := d.Publish(ctx, c); err != nil {
		panic(err)
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		panic(err)
	}
}

func attendanceChange() webhook.Change {
	return webhook.Change{Table: "attendance", Op: webhook.Insert, Key: "E-1001/2026-03-02",
		New: map[string]any{"employee_id": "E-1001", "date": "2026-03-02", "status": "Present"}}
}

// A before hook turns "Present" into the "P" another system expects, and
// adds a header. The signature covers the changed body.
func ExampleBeforeFunc() {
	instanceA := receiver(func(r *http.Request, body []byte) {
		var msg struct {
			Data struct {
				New map[string]any `json:"new"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &msg)
		fmt.Println("status:", msg.Data.New["status"], "source:", r.Header.Get("X-Sync-Source"))
	})
	defer instanceA.Close()

	hooks := transform.NewRegistry()
	err := hooks.RegisterBefore("present-to-p", transform.BeforeFunc(func(ctx context.Context, m *transform.Message) error {
		for i := range m.Records {
			switch m.Records[i].New["status"] {
			case "Present":
				m.Records[i].New["status"] = "P"
			case "Absent":
				m.Records[i].New["status"] = "A"
			}
		}
		return m.SetHeader("X-Sync-Source", "instance-b") // reserved names are refused
	}))
	if err != nil {
		panic(err)
	}
	send(hooks, webhook.Webhook{Name: "Push attendance", Table: "attendance", Ops: []webhook.Op{webhook.Insert},
		URL: instanceA.URL, Before: []string{"present-to-p"}}, attendanceChange())
	// Output: status: P source: instance-b
}

// An after hook writes the result of every attempt back into the
// application's own record.
func ExampleAfterFunc() {
	instanceA := receiver(func(*http.Request, []byte) {})
	defer instanceA.Close()

	var mu sync.Mutex
	syncStatus := map[string]string{} // the application's records, by key
	hooks := transform.NewRegistry()
	err := hooks.RegisterAfter("sync-status", transform.AfterFunc(func(ctx context.Context, r *transform.Result) error {
		mu.Lock()
		defer mu.Unlock()
		for _, rec := range r.Message.Records {
			syncStatus[rec.Key] = fmt.Sprintf("%s (HTTP %d, attempt %d, final %v)", r.Outcome, r.StatusCode, r.Attempt, r.Final)
		}
		return nil // an error here is logged; it never changes the outcome
	}))
	if err != nil {
		panic(err)
	}
	send(hooks, webhook.Webhook{Name: "Push attendance", Table: "attendance", Ops: []webhook.Op{webhook.Insert},
		URL: instanceA.URL, After: []string{"sync-status"}}, attendanceChange())
	mu.Lock()
	fmt.Println(syncStatus["E-1001/2026-03-02"])
	mu.Unlock()
	// Output: delivered (HTTP 200, attempt 1, final true)
}

// A form mapping, defined as data, calls an API that only takes
// employee_id, date and status=P|A as a form post.
func ExampleBody_form() {
	instanceA := receiver(func(r *http.Request, body []byte) {
		fmt.Println(r.Header.Get("Content-Type"))
		fmt.Println(string(body))
	})
	defer instanceA.Close()

	send(nil, webhook.Webhook{Name: "Push attendance", Table: "attendance", Ops: []webhook.Op{webhook.Insert},
		URL: instanceA.URL + "/api/attendance",
		Body: transform.Body{
			Format: transform.Form,
			Fields: map[string]string{"employee_id": "new.employee_id", "date": "new.date", "status": "new.status"},
			Values: map[string]map[string]any{"status": {"Present": "P", "Absent": "A"}},
		}}, attendanceChange())
	// Output:
	// application/x-www-form-urlencoded
	// date=2026-03-02&employee_id=E-1001&status=P
}

// Enrich joins the application's own data into each record, like the
// "view" of an HR product.
func ExampleEnrich() {
	payroll := receiver(func(_ *http.Request, body []byte) { fmt.Println(string(body)) })
	defer payroll.Close()

	directory := map[string]map[string]any{"E-1001": {"name": "Ada Lovelace", "department": "Engineering"}}
	hooks := transform.NewRegistry()
	err := hooks.RegisterBefore("employee-details", transform.Enrich(func(ctx context.Context, r transform.Record) (map[string]any, error) {
		id, _ := r.New["employee_id"].(string)
		return directory[id], nil
	}))
	if err != nil {
		panic(err)
	}
	send(hooks, webhook.Webhook{Name: "Attendance to payroll", Table: "attendance", Ops: []webhook.Op{webhook.Insert},
		URL: payroll.URL, Before: []string{"employee-details"},
		Body: transform.Body{Fields: map[string]string{
			"employee": "new.employee_id", "name": "new.name", "department": "new.department", "present": "new.status == 'Present'",
		}}}, attendanceChange())
	// Output: {"department":"Engineering","employee":"E-1001","name":"Ada Lovelace","present":true}
}

// CloudEvents 1.0 for a system that wants them, with a national ID that
// must never leave.
func ExampleBody_cloudEvents() {
	identity := receiver(func(r *http.Request, body []byte) {
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		data := ev["data"].(map[string]any)
		fmt.Println(r.Header.Get("Content-Type"))
		fmt.Println(ev["specversion"], ev["type"], ev["source"], ev["subject"])
		fmt.Println(data["new"], data["changed"])
	})
	defer identity.Close()

	send(nil, webhook.Webhook{Name: "Revoke access", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL:  identity.URL,
		Body: transform.Body{Format: transform.CloudEvents, Redact: []string{"national_id"}}},
		webhook.Change{Table: "employee", Op: webhook.Update, Key: "E-1001", Tenant: "acme",
			Old: map[string]any{"status": "Hired", "national_id": "AB123456C"},
			New: map[string]any{"status": "Terminated", "national_id": "AB123456C"}})
	// Output:
	// application/cloudevents+json
	// 1.0 employee.updated herald://acme/employee E-1001
	// map[status:Terminated] [status]
}
