package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/heraldhr/herald/store/memory"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/admin"
)

// The application mounts the admin API behind its own authentication; its
// Resolve tells the API which tenant and user make each request.
func Example() {
	d, err := webhook.New(webhook.Config{Store: memory.New()})
	if err != nil {
		panic(err)
	}
	defer d.Shutdown(context.Background())

	api, err := admin.New(d, admin.Options{
		Resolve: func(r *http.Request) (admin.Caller, error) {
			// A real application reads its session here.
			switch r.Header.Get("Authorization") {
			case "Bearer acme-admin":
				return admin.Caller{Tenant: "acme", Actor: "alice@acme.example"}, nil
			case "Bearer globex-admin":
				return admin.Caller{Tenant: "globex", Actor: "bob@globex.example"}, nil
			}
			return admin.Caller{}, admin.ErrUnauthenticated
		},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/api/", http.StripPrefix("/admin/api", api))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	call := func(token, method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+"/admin/api"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, m
	}

	status, created := call("acme-admin", "POST", "/webhooks", `{
		"name": "Payroll sync", "table": "employee", "ops": ["INSERT", "UPDATE"],
		"url": "https://payroll.example.com/hooks/herald",
		"headers": {"X-Api-Key": "k-123"},
		"when": {"match": "any_selected", "fields": ["salary", "department"]}}`)
	id := created["id"].(string)
	fmt.Println("create:", status, created["tenant"], strings.HasPrefix(created["secret"].(string), "whsec_"))

	status, got := call("acme-admin", "GET", "/webhooks/"+id, "")
	fmt.Println("read:", status, got["secret"], got["headers"])

	status, _ = call("globex-admin", "GET", "/webhooks/"+id, "")
	fmt.Println("another tenant:", status)

	status, bad := call("acme-admin", "POST", "/webhooks", `{"name": "x", "table": "employee", "ops": ["INSERT"], "url": "ftp://files.example.com"}`)
	fields := bad["error"].(map[string]any)["fields"].([]any)
	fmt.Println("invalid:", status, fields[0].(map[string]any)["field"])
	// Output:
	// create: 201 acme true
	// read: 200 xxxxx map[X-Api-Key:xxxxx]
	// another tenant: 404
	// invalid: 422 url
}
