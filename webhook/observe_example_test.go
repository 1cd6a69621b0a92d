package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

// After an outage, count what failed, then send it again: each record's
// changes arrive oldest first.
func ExampleDispatcher_Recover() {
	ctx := context.Background()
	var up atomic.Bool
	payroll := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var msg struct {
			Data struct {
				Key string         `json:"key"`
				New map[string]any `json:"new"`
			} `json:"data"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &msg)
		fmt.Println("payroll got", msg.Data.Key, msg.Data.New["department"])
	}))
	defer payroll.Close()

	d, err := webhook.New(webhook.Config{Store: memory.New(), AllowPrivateNetworks: true,
		Retry: webhook.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		panic(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "payroll", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: payroll.URL + "/hooks"})
	if err != nil {
		panic(err)
	}
	from := "HR"
	for _, to := range []string{"Sales", "Finance", "Legal"} {
		_, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Update, Key: "E-1001",
			Old: map[string]any{"department": from}, New: map[string]any{"department": to}})
		if err != nil {
			panic(err)
		}
		from = to
	}
	if _, err := d.ProcessDue(ctx); err != nil { // payroll is down: all three die
		panic(err)
	}

	q := webhook.RecoverQuery{WebhookID: w.ID, Since: time.Now().Add(-24 * time.Hour), DryRun: true}
	dry, err := d.Recover(ctx, q)
	if err != nil {
		panic(err)
	}
	fmt.Println("would resend", dry.Matched)

	up.Store(true)
	q.DryRun = false
	res, err := d.Recover(ctx, q)
	if err != nil {
		panic(err)
	}
	fmt.Println("resent", res.Replayed, "in order:", res.InOrder)
	if _, err := d.ProcessDue(ctx); err != nil {
		panic(err)
	}
	// Output:
	// would resend 3
	// resent 3 in order: true
	// payroll got E-1001 Sales
	// payroll got E-1001 Finance
	// payroll got E-1001 Legal
}

// Page through the delivery log of one webhook.
func ExampleDispatcher_DeliveryLog() {
	ctx := context.Background()
	d, err := webhook.New(webhook.Config{Store: memory.New()})
	if err != nil {
		panic(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "payroll", Table: "attendance", Ops: []webhook.Op{webhook.Insert},
		URL: "https://payroll.example.com/hooks"})
	if err != nil {
		panic(err)
	}
	for i := range 5 {
		_, err := d.Publish(ctx, webhook.Change{Table: "attendance", Op: webhook.Insert, Key: fmt.Sprintf("A-%d", i),
			New: map[string]any{"status": "Present"}})
		if err != nil {
			panic(err)
		}
	}

	q := webhook.LogQuery{WebhookID: w.ID, Status: webhook.Pending, Limit: 2}
	for {
		page, err := d.DeliveryLog(ctx, q)
		if err != nil {
			panic(err)
		}
		for _, dl := range page.Deliveries {
			fmt.Print(dl.Key, " ")
		}
		fmt.Println("| more:", page.More)
		if !page.More {
			break
		}
		q.Cursor = page.NextCursor
	}
	// Output:
	// A-0 A-1 | more: true
	// A-2 A-3 | more: true
	// A-4 | more: false
}

// Read the depth and lag of the queue, per webhook and in total.
func ExampleDispatcher_Stats() {
	ctx := context.Background()
	clock := webhooktest.NewClock(webhooktest.Epoch)
	d, err := webhook.New(webhook.Config{Store: memory.New(), Clock: clock})
	if err != nil {
		panic(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "access control", Table: "employee", Ops: []webhook.Op{webhook.Delete},
		URL: "https://doors.example.com/hooks"})
	if err != nil {
		panic(err)
	}
	for _, key := range []string{"E-7", "E-8"} {
		_, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Delete, Key: key, Old: map[string]any{"badge": key}})
		if err != nil {
			panic(err)
		}
		clock.Advance(time.Minute)
	}

	st, err := d.Stats(ctx)
	if err != nil {
		panic(err)
	}
	access := st.Webhooks[w.ID]
	fmt.Println("pending:", access.Pending(), "oldest waiting:", access.OldestPendingAge)
	fmt.Println("delivered:", st.Total.Deliveries[webhook.Delivered], "in flight:", st.Total.InFlight)
	// Output:
	// pending: 2 oldest waiting: 2m0s
	// delivered: 0 in flight: 0
}

// An observer sees every attempt and its outcome. Without Start it is
// called synchronously, so a test can check it right after ProcessDue.
func ExampleObserverFunc() {
	ctx := context.Background()
	payroll := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer payroll.Close()
	obs := webhook.ObserverFunc(func(e webhook.Event) {
		switch e.Kind {
		case webhook.EventAttempt:
			fmt.Println(e.Kind, e.Method, e.StatusCode, "->", e.Outcome)
		default:
			fmt.Println(e.Kind, "records:", e.Records)
		}
	})
	d, err := webhook.New(webhook.Config{Store: memory.New(), Observer: obs, AllowPrivateNetworks: true})
	if err != nil {
		panic(err)
	}
	_, err = d.Register(ctx, webhook.Webhook{Name: "payroll", Table: "leave", Ops: []webhook.Op{webhook.Update},
		URL: payroll.URL + "/hooks"})
	if err != nil {
		panic(err)
	}
	_, err = d.Publish(ctx, webhook.Change{Table: "leave", Op: webhook.Update, Key: "L-1",
		Old: map[string]any{"state": "requested"}, New: map[string]any{"state": "approved"}})
	if err != nil {
		panic(err)
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		panic(err)
	}
	// Output:
	// attempt POST 200 -> delivered
	// delivered records: 1
}
