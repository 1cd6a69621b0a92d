// Command postgres-outbox shows the transactional outbox with herald's
// Postgres store: an employee row is updated and the change published in
// the same pgx transaction, so the webhook goes out if, and only if, the
// update commits.
//
//	go run ./examples/postgres-outbox -db postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//
// (or set HERALD_TEST_POSTGRES_URL). The program makes a schema of its own
// for the employee table and herald's tables, drops it at the end, and
// runs a signature-verifying receiver on loopback. It updates an employee
// and rolls back, then updates again and commits; it prints what happened
// and exits 0 only when the receiver got exactly the committed change,
// once. Without a database it says how to run it and exits 0.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/store/postgres"
	"github.com/heraldhr/herald/webhook"
)

func main() {
	db := flag.String("db", os.Getenv("HERALD_TEST_POSTGRES_URL"), "PostgreSQL URL (default $HERALD_TEST_POSTGRES_URL)")
	flag.Parse()
	if *db == "" {
		fmt.Println("postgres-outbox needs a PostgreSQL database it may create a schema in:")
		fmt.Println("  go run ./examples/postgres-outbox -db postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
		fmt.Println("or set HERALD_TEST_POSTGRES_URL. Nothing was run.")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout, *db); err != nil {
		fmt.Fprintln(os.Stderr, "postgres-outbox:", err)
		os.Exit(1)
	}
}

// receiver records the employee changes it was sent.
type receiver struct {
	mu   sync.Mutex
	got  []string // department of each change received
	ids  []string // webhook-id of each
	seen chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Data struct {
			New struct {
				Department string `json:"department"`
			} `json:"new"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.got = append(rc.got, msg.Data.New.Department)
	rc.ids = append(rc.ids, r.Header.Get("webhook-id"))
	rc.mu.Unlock()
	select {
	case rc.seen <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func run(ctx context.Context, out io.Writer, url string) (err error) {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()

	// One schema holds the application's table and herald's: herald lives
	// in the application's own database.
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	schema := "outbox_example_" + hex.EncodeToString(b)
	ident := pgx.Identifier{schema}.Sanitize()
	st, err := postgres.New(pool, postgres.Options{Schema: schema})
	if err != nil {
		return err
	}
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	defer func() {
		if _, derr := pool.Exec(context.Background(), "DROP SCHEMA "+ident+" CASCADE"); derr != nil && err == nil {
			err = derr
		}
	}()
	if _, err := pool.Exec(ctx, `CREATE TABLE `+ident+`.employee (id text PRIMARY KEY, name text, department text);
		INSERT INTO `+ident+`.employee VALUES ('E-1001', 'Ada Lovelace', 'Engineering')`); err != nil {
		return err
	}
	say("schema %s: employee E-1001 in Engineering; herald's tables migrated beside it", schema)

	secret, err := signer.GenerateSecret()
	if err != nil {
		return err
	}
	v, err := signer.NewVerifier(secret)
	if err != nil {
		return err
	}
	rc := &receiver{seen: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: v.Middleware(rc), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	d, err := webhook.New(webhook.Config{Store: st, AllowPrivateNetworks: true})
	if err != nil {
		return err
	}
	if _, err := d.Register(ctx, webhook.Webhook{Name: "directory", Table: "employee", Ops: []webhook.Op{webhook.Update},
		URL: "http://" + ln.Addr().String() + "/hooks/employee", Secret: secret}); err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Shutdown(sctx)
	}()

	// moveTo updates the row and publishes the change in one transaction.
	moveTo := func(dept string, commit bool) (string, error) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return "", err
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		var old string
		if err := tx.QueryRow(ctx, `SELECT department FROM `+ident+`.employee WHERE id = 'E-1001' FOR UPDATE`).Scan(&old); err != nil {
			return "", err
		}
		if _, err := tx.Exec(ctx, `UPDATE `+ident+`.employee SET department = $1 WHERE id = 'E-1001'`, dept); err != nil {
			return "", err
		}
		id, err := d.PublishTx(ctx, postgres.Tx(tx), webhook.Change{Table: "employee", Op: webhook.Update, Key: "E-1001",
			Old: map[string]any{"department": old}, New: map[string]any{"department": dept}})
		if err != nil {
			return "", err
		}
		if commit {
			return id, tx.Commit(ctx)
		}
		return id, tx.Rollback(ctx)
	}

	rolledBack, err := moveTo("Finance", false)
	if err != nil {
		return err
	}
	var dept string
	if err := pool.QueryRow(ctx, `SELECT department FROM `+ident+`.employee WHERE id = 'E-1001'`).Scan(&dept); err != nil {
		return err
	}
	ds, err := d.Deliveries(ctx, webhook.DeliveryQuery{EventID: rolledBack})
	if err != nil {
		return err
	}
	say("rolled back: moved E-1001 to Finance and published %s, then rolled back: department %s, %d deliveries stored", rolledBack, dept, len(ds))
	if dept != "Engineering" || len(ds) != 0 {
		return errors.New("the rollback left something behind")
	}

	start := time.Now()
	committed, err := moveTo("Payroll", true)
	if err != nil {
		return err
	}
	select {
	case <-rc.seen:
	case <-ctx.Done():
		return errors.New("the committed change never reached the receiver")
	}
	say("committed: moved E-1001 to Payroll and published %s; the receiver verified its signature %v after the commit",
		committed, time.Since(start).Round(time.Millisecond))

	// The committed change is the second one published for E-1001, and
	// herald keeps each record's changes in order: had the rolled-back
	// change been stored, it would have been delivered first.
	rc.mu.Lock()
	got, ids := append([]string(nil), rc.got...), append([]string(nil), rc.ids...)
	rc.mu.Unlock()
	say("receiver: %d request(s): %v", len(got), got)
	if len(got) != 1 || got[0] != "Payroll" || ids[0] != committed {
		return fmt.Errorf("the receiver got %v under %v; want only the committed change %s", got, ids, committed)
	}
	say("proved: the change went out with its commit, and nothing went out for the rollback")
	return nil
}
