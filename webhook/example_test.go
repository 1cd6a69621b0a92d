package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
)

// The README's quick start: register a webhook, publish a change, verify it
// on the receiving side.
func Example() {
	ctx := context.Background()

	// The receiving side: payroll verifies the signature with the secret
	// herald generated for the webhook.
	var mu sync.Mutex
	var secret string
	got := make(chan string, 1)
	payroll := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		err := signer.Verify(secret, r.Header, body)
		mu.Unlock()
		var msg struct {
			Type string `json:"type"`
			Data struct {
				Key     string   `json:"key"`
				Changed []string `json:"changed"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &msg)
		got <- fmt.Sprintf("verified=%v type=%s key=%s changed=%v", err == nil, msg.Type, msg.Data.Key, msg.Data.Changed)
	}))
	defer payroll.Close()

	// The sending side: the HR backend embeds herald.
	d, err := webhook.New(webhook.Config{
		Store:                memory.New(),
		AllowPrivateNetworks: true, // the receiver is on loopback in this example
	})
	if err != nil {
		panic(err)
	}
	w, err := d.Register(ctx, webhook.Webhook{
		Name:    "Payroll: department changes",
		Table:   "employee",
		Ops:     []webhook.Op{webhook.Update},
		When:    condition.Rule{Match: condition.AnySelected, Fields: []string{"department"}},
		URL:     payroll.URL + "/hooks/herald",
		Headers: map[string]string{"Authorization": "Bearer payroll-token"},
	})
	if err != nil {
		panic(err)
	}
	mu.Lock()
	secret = w.Secret
	mu.Unlock()

	if err := d.Start(ctx); err != nil {
		panic(err)
	}
	defer d.Shutdown(ctx)

	// Only the department change matches the webhook's rule.
	for _, c := range []webhook.Change{
		{Table: "employee", Op: webhook.Update, Key: "E-1001",
			Old: map[string]any{"phone": "1"}, New: map[string]any{"phone": "2"}},
		{Table: "employee", Op: webhook.Update, Key: "E-1001",
			Old: map[string]any{"department": "Ops"}, New: map[string]any{"department": "Sales"}},
	} {
		if _, err := d.Publish(ctx, c); err != nil {
			panic(err)
		}
	}
	fmt.Println(<-got)
	// Output: verified=true type=employee.updated key=E-1001 changed=[department]
}
