// Command receiver is a webhook receiving endpoint done right: it verifies
// every request's Standard Webhooks signature with the signer middleware,
// refuses stale or forged requests, and drops duplicates by webhook-id, so
// a retry of a message it already processed is acknowledged, not
// processed twice.
//
//	go run ./examples/receiver
//
// The program starts the receiver on loopback, sends it a change through
// herald, replays the same delivery (a duplicate), and forges one request;
// it prints what the receiver did with each and exits 0 only when the
// change was processed exactly once and the forgery was refused.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
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
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

// receiver processes employee events; it counts what it processed.
type receiver struct {
	mu        sync.Mutex
	processed map[string]int // webhook-id -> times processed
	done      chan string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.processed[msg.ID]++
	rc.mu.Unlock()
	rc.done <- msg.Type
	w.WriteHeader(http.StatusNoContent)
}

// handler builds the receiving endpoint: verify first, then de-duplicate,
// then process.
func handler(secret string, next http.Handler) (http.Handler, error) {
	v, err := signer.NewVerifier(secret)
	if err != nil {
		return nil, err
	}
	seen := signer.NewMemorySeenStore(signer.MemorySeenStoreOptions{})
	return v.Middleware(signer.Dedup(seen, 0)(next)), nil
}

func run(ctx context.Context, out io.Writer) error {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	secret, err := signer.GenerateSecret()
	if err != nil {
		return err
	}
	rc := &receiver{processed: map[string]int{}, done: make(chan string, 8)}
	h, err := handler(secret, rc)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/hooks/employee"
	say("receiver: listening at %s (signatures verified, duplicates dropped)", url)

	d, err := webhook.New(webhook.Config{Store: memory.New(), AllowPrivateNetworks: true})
	if err != nil {
		return err
	}
	w, err := d.Register(ctx, webhook.Webhook{Name: "identity", Table: "employee",
		Ops: []webhook.Op{webhook.Update}, URL: url, Secret: secret})
	if err != nil {
		return err
	}
	id, err := d.Publish(ctx, webhook.Change{Table: "employee", Op: webhook.Update, Key: "E-1001",
		Old: map[string]any{"status": "Active"}, New: map[string]any{"status": "Terminated"}})
	if err != nil {
		return err
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		return err
	}
	select {
	case typ := <-rc.done:
		say("sender: published %s to %q; receiver processed it (%s)", id, w.Name, typ)
	case <-ctx.Done():
		return errors.New("the change never reached the receiver")
	}

	ds, err := d.Deliveries(ctx, webhook.DeliveryQuery{EventID: id})
	if err != nil || len(ds) != 1 {
		return fmt.Errorf("deliveries: %v", err)
	}
	if err := d.Replay(ctx, ds[0].ID); err != nil {
		return err
	}
	if _, err := d.ProcessDue(ctx); err != nil {
		return err
	}
	again, err := d.Delivery(ctx, ds[0].ID)
	if err != nil {
		return err
	}
	say("sender: replayed the same message (webhook-id %s); receiver answered %d and did not process it again", id, again.LastCode)

	forged, err := forge(ctx, url, id)
	if err != nil {
		return err
	}
	say("attacker: sent a request signed with the wrong secret; receiver answered %d", forged)

	rc.mu.Lock()
	n := rc.processed[id]
	rc.mu.Unlock()
	say("receiver: processed event %s %d time(s)", id, n)
	if n != 1 || forged != http.StatusUnauthorized || again.LastCode != http.StatusOK {
		return fmt.Errorf("processed %d times, forgery answered %d, duplicate answered %d", n, forged, again.LastCode)
	}
	return nil
}

// forge sends a request signed with a secret the receiver does not know.
func forge(ctx context.Context, url, id string) (int, error) {
	wrong, err := signer.GenerateSecret()
	if err != nil {
		return 0, err
	}
	s, err := signer.New(wrong)
	if err != nil {
		return 0, err
	}
	body := []byte(`{"id":"` + id + `","type":"employee.updated","data":{}}`)
	now := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("webhook-id", id+"-forged")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", s.Sign(id+"-forged", now, body))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
