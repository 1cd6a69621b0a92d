package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/heraldhr/herald/internal/chaoscrash"
	"github.com/heraldhr/herald/internal/crashtest"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/sqlite"
	"github.com/heraldhr/herald/store/storetest"
)

func TestMain(m *testing.M) {
	crashtest.Child(func(ctx context.Context, path string) (store.Store, error) {
		return sqlite.Open(ctx, path, sqlite.Options{})
	})
	chaoscrash.Child(openChaos) // returns at once unless this is a chaos crash run's child
	goleak.VerifyTestMain(m)
}

// openWithWebhook opens a store holding webhook "wh", and returns it with
// its file's path.
func openWithWebhook(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	s, path := open(t)
	_, err := s.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	return s, path
}

// open returns a store on a new file in the test's temporary directory.
func open(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := open(t)
		return s
	})
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func event(id, key string) store.Event {
	return store.Event{ID: id, Table: "employee", Op: "UPDATE", Key: key, Time: t0,
		Payload: json.RawMessage(`{"key":"` + key + `","salary":"SECRET-` + key + `"}`)}
}

func delivery(webhook string) store.Delivery {
	return store.Delivery{ID: uuid.Must(uuid.NewV7()).String(), WebhookID: webhook, NextAttempt: t0, CreatedAt: t0}
}

func TestOpenRefusesInMemory(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", ":memory:", "file::memory:", "x.db?mode=memory"} {
		_, err := sqlite.Open(t.Context(), p, sqlite.Options{})
		assert.Error(t, err, p)
	}
}

func TestSurvivesReopen(t *testing.T) {
	t.Parallel()
	s, path := open(t)
	_, err := s.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	d := delivery("wh")
	created, err := s.Enqueue(t.Context(), event("c1", "E1"), []store.Delivery{d})
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, s.Close())

	s2, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	require.NoError(t, err)
	defer s2.Close()
	ms, err := s2.Claim(t.Context(), store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
	require.NoError(t, err)
	require.Len(t, ms, 1)
	assert.Equal(t, d.ID, ms[0].Deliveries[0].ID)
	assert.JSONEq(t, `{"key":"E1","salary":"SECRET-E1"}`, string(ms[0].Events[0].Payload))
}

// TestCheckpointsInTheBackground checks that what the writer commits is
// copied into the database file while the log holds far fewer pages than
// the writer's own checkpoint waits for: the store's checkpointer did it.
func TestCheckpointsInTheBackground(t *testing.T) {
	t.Parallel()
	s, path := openWithWebhook(t)
	fileSize := func() int64 {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Size()
	}
	before := fileSize()
	payload := json.RawMessage(`{"note":"` + strings.Repeat("x", 2000) + `"}`)
	es := make([]store.EventWithDeliveries, 100) // about 200 KiB, some 60 pages of the log
	for i := range es {
		e := event(fmt.Sprintf("c%d", i), fmt.Sprintf("E%d", i))
		e.Payload = payload
		es[i] = store.EventWithDeliveries{Event: e, Deliveries: []store.Delivery{delivery("wh")}}
	}
	_, err := s.EnqueueMany(t.Context(), es)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return fileSize() >= before+100*2000 }, 10*time.Second, 10*time.Millisecond,
		"the committed pages reach the database file")
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	s, path := open(t)
	ms, err := s.Migrations(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	assert.Equal(t, 1, ms[0].Version)
	assert.Equal(t, "init", ms[0].Name)
	for _, m := range ms {
		assert.False(t, m.AppliedAt.IsZero(), "migration %d applied by Open", m.Version)
	}
	require.NoError(t, s.Migrate(t.Context()), "migrating again does nothing")
	again, err := s.Migrations(t.Context())
	require.NoError(t, err)
	assert.Equal(t, ms, again)

	db, err := sqlite.OpenDB(path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(t.Context(), `INSERT INTO herald_migrations (version, name, applied_at) VALUES (9999, 'future', 1)`)
	require.NoError(t, err)
	_, err = sqlite.Open(t.Context(), path, sqlite.Options{})
	assert.ErrorContains(t, err, "newer than this herald knows")
}

func TestEnqueueTx(t *testing.T) {
	t.Parallel()
	s, path := open(t)
	_, err := s.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	db, err := sqlite.OpenDB(path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(t.Context(), `CREATE TABLE employee (id TEXT PRIMARY KEY, department TEXT)`)
	require.NoError(t, err)

	// Rolled back: neither the record nor its delivery exists.
	tx, err := db.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(t.Context(), `INSERT INTO employee VALUES ('E1', 'Ops')`)
	require.NoError(t, err)
	created, err := s.EnqueueTx(t.Context(), sqlite.Tx(tx), event("c1", "E1"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, tx.Rollback())
	ds, err := s.Deliveries(t.Context(), store.DeliveryFilter{})
	require.NoError(t, err)
	assert.Empty(t, ds, "a rolled-back transaction leaves no delivery")

	// Committed: both exist; the same change again does not abort the
	// transaction.
	tx, err = db.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(t.Context(), `INSERT INTO employee VALUES ('E1', 'Ops')`)
	require.NoError(t, err)
	created, err = s.EnqueueTx(t.Context(), sqlite.Tx(tx), event("c1", "E1"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	require.True(t, created)
	created, err = s.EnqueueTx(t.Context(), sqlite.Tx(tx), event("c1", "E1"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	assert.False(t, created, "a repeated change is ignored inside the transaction")
	_, err = tx.ExecContext(t.Context(), `UPDATE employee SET department = 'Sales' WHERE id = 'E1'`)
	require.NoError(t, err, "the transaction goes on after the conflict")
	require.NoError(t, tx.Commit())
	ds, err = s.Deliveries(t.Context(), store.DeliveryFilter{})
	require.NoError(t, err)
	assert.Len(t, ds, 1)

	// A transaction of the store's own connection takes the prepared path.
	own, err := s.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	created, err = s.EnqueueTx(t.Context(), sqlite.Tx(own), event("c3", "E3"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	require.True(t, created)
	require.NoError(t, own.Rollback())
	own, err = s.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	_, err = own.ExecContext(t.Context(), `INSERT INTO employee VALUES ('E3', 'Ops')`)
	require.NoError(t, err)
	created, err = s.EnqueueTx(t.Context(), sqlite.Tx(own), event("c3", "E3"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	require.True(t, created, "the rolled-back event left no key")
	require.NoError(t, own.Commit())
	ds, err = s.Deliveries(t.Context(), store.DeliveryFilter{EventID: "c3"})
	require.NoError(t, err)
	assert.Len(t, ds, 1)

	// A failed enqueue leaves none of its rows in the transaction.
	dup := ds[0]
	tx, err = db.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	_, err = s.EnqueueTx(t.Context(), sqlite.Tx(tx), event("c2", "E2"), []store.Delivery{delivery("wh"), {ID: dup.ID, WebhookID: "wh"}})
	require.Error(t, err)
	require.NoError(t, tx.Commit())
	ds, err = s.Deliveries(t.Context(), store.DeliveryFilter{EventID: "c2"})
	require.NoError(t, err)
	assert.Empty(t, ds)
	created, err = s.Enqueue(t.Context(), event("c2", "E2"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	assert.True(t, created, "nor its event key")
}

func TestEnqueueTxRefusesForeignTransactions(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	_, otherPath := open(t)
	other, err := sqlite.OpenDB(otherPath)
	require.NoError(t, err)
	defer other.Close()
	tx, err := other.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	defer tx.Rollback()
	_, err = s.EnqueueTx(t.Context(), sqlite.Tx(tx), event("c1", "E1"), nil)
	assert.ErrorIs(t, err, store.ErrForeignTx, "a transaction on another file")
	_, err = s.EnqueueTx(t.Context(), store.NewTx("postgres", tx), event("c1", "E1"), nil)
	assert.ErrorIs(t, err, store.ErrForeignTx, "another store's transaction")
	_, err = s.EnqueueTx(t.Context(), store.Tx{}, event("c1", "E1"), nil)
	assert.ErrorIs(t, err, store.ErrForeignTx)
}

func TestSubscribeSeesOtherConnections(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{WatchInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.Subscribe(ctx)
	require.NoError(t, err)
	db, err := sqlite.OpenDB(path)
	require.NoError(t, err)
	defer db.Close()
	tx, err := db.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	_, err = s.EnqueueTx(t.Context(), sqlite.Tx(tx), event("c1", "E1"), nil)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification after another connection committed")
	}
	cancel()
	for range ch { // closed once ctx ends
	}
}

// TestSubscribeWakesAtABeginTxCommit checks that work published in a
// transaction of BeginTx wakes subscribers when the caller commits, not a
// poll later: the watch here would take an hour.
func TestSubscribeWakesAtABeginTxCommit(t *testing.T) {
	t.Parallel()
	s, _, ch := openSubscribed(t)
	tx, err := s.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	_, err = s.EnqueueTx(t.Context(), sqlite.Tx(tx), event("c1", "E1"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	select {
	case <-ch:
		t.Fatal("a notification before the commit")
	default:
	}
	own, _ := s.WillNotify()
	require.True(t, own, "the transaction published")
	require.NoError(t, tx.Commit())
	own, _ = s.WillNotify()
	require.False(t, own, "the commit took the mark")
	awaitNotified(t, s, ch, "the commit of a BeginTx transaction")
}

// TestSubscribeWakesAtAnOpenDBCommit checks the same for a transaction
// of a *sql.DB of OpenDB, your own handle on the file.
func TestSubscribeWakesAtAnOpenDBCommit(t *testing.T) {
	t.Parallel()
	s, path, ch := openSubscribed(t)
	db, err := sqlite.OpenDB(path)
	require.NoError(t, err)
	defer db.Close()

	// A transaction that rolls back, and one that publishes nothing,
	// wake no one.
	tx, err := db.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	_, err = s.EnqueueTx(t.Context(), sqlite.Tx(tx), event("c0", "E0"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	_, foreign := s.WillNotify()
	require.True(t, foreign, "the transaction published")
	require.NoError(t, tx.Rollback())
	_, foreign = s.WillNotify()
	require.False(t, foreign, "the rollback took the publication back")
	_, err = db.ExecContext(t.Context(), `CREATE TABLE mine (v INTEGER)`)
	require.NoError(t, err)
	select {
	case <-ch:
		t.Fatal("a notification without work committed")
	default:
	}

	tx, err = db.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	_, err = s.EnqueueTx(t.Context(), sqlite.Tx(tx), event("c1", "E1"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	awaitNotified(t, s, ch, "the commit of an OpenDB transaction")
}

// awaitNotified waits, boundedly, for a notification on ch after what,
// then checks that the one delivery it announces can be read.
func awaitNotified(t *testing.T, s *sqlite.Store, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no notification after %s", what)
	}
	ds, err := s.Deliveries(t.Context(), store.DeliveryFilter{})
	require.NoError(t, err)
	assert.Len(t, ds, 1, "what the notification announces is there to read")
}

// openSubscribed opens a store with webhook "wh" whose watch would take
// an hour, and subscribes to it.
func openSubscribed(t *testing.T) (*sqlite.Store, string, <-chan struct{}) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{WatchInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	ch, err := s.Subscribe(t.Context())
	require.NoError(t, err)
	drain(ch) // nothing before the test's own work
	return s, path, ch
}

// drain takes a pending notification off ch, if there is one.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// TestEraseLeavesNoTrace checks the bytes on disk: after Erase, a marker
// that was in the payloads and response bodies is in neither the database
// file nor its write-ahead log.
func TestEraseLeavesNoTrace(t *testing.T) {
	t.Parallel()
	s, path := open(t)
	_, err := s.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	for i := range 3 {
		_, err := s.Enqueue(t.Context(), event(fmt.Sprintf("c%d", i), "E1"), []store.Delivery{delivery("wh")})
		require.NoError(t, err)
	}
	_, err = s.Enqueue(t.Context(), event("keep", "E2"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)
	ms, err := s.Claim(t.Context(), store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
	require.NoError(t, err)
	var rs []store.Result
	for _, m := range ms {
		rs = append(rs, store.Result{MessageID: m.ID, Lease: m.Lease, Now: t0, Outcome: store.OutcomeDelivered,
			Attempt: &store.Attempt{StatusCode: 200, ResponseBody: "echo SECRET-" + m.Events[0].Key}})
	}
	require.NoError(t, s.Ack(t.Context(), rs))
	marker := []byte("SECRET-E1")
	require.True(t, onDisk(t, path, marker), "the test must see the marker before the erasure")

	r, err := s.Erase(t.Context(), store.Erasure{Table: "employee", Key: "E1"}, t0)
	require.NoError(t, err)
	assert.Equal(t, 3, r.Events)
	assert.False(t, onDisk(t, path, marker), "erased data is overwritten in the file and gone from the log")
	assert.True(t, onDisk(t, path, []byte("SECRET-E2")), "other records stay")
}

// TestEraseReportsALogItCannotEmpty holds a read snapshot open on another
// connection while erasing: the checkpoint cannot empty the log, whose
// older frames still hold the erased data, and Erase says so; erasing
// again once the reader is done finishes the job.
func TestEraseReportsALogItCannotEmpty(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{BusyTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	_, err = s.Enqueue(t.Context(), event("c1", "E1"), []store.Delivery{delivery("wh")})
	require.NoError(t, err)

	db, err := sqlite.OpenDB(path)
	require.NoError(t, err)
	defer db.Close()
	reader, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	var n int
	require.NoError(t, reader.QueryRowContext(t.Context(), `SELECT count(*) FROM herald_events`).Scan(&n))

	_, err = s.Erase(t.Context(), store.Erasure{Table: "employee", Key: "E1"}, t0)
	require.ErrorContains(t, err, "still in use")
	require.NoError(t, reader.Rollback())
	r, err := s.Erase(t.Context(), store.Erasure{Table: "employee", Key: "E1"}, t0)
	require.NoError(t, err)
	assert.Zero(t, r.Events, "the first call erased the payload already")
	assert.False(t, onDisk(t, path, []byte("SECRET-E1")), "erased data is gone from the file and the log")
}

func onDisk(t *testing.T, path string, marker []byte) bool {
	t.Helper()
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		if bytes.Contains(b, marker) {
			return true
		}
	}
	return false
}

// TestEnqueueTxManyInOneTransaction publishes many changes in each of two
// transactions of another *sql.DB, one refused in the middle of the first:
// the store's statements, prepared once per transaction, serve every call,
// the refused one leaves nothing and the next transaction starts afresh.
func TestEnqueueTxManyInOneTransaction(t *testing.T) {
	t.Parallel()
	s, path := open(t)
	_, err := s.SaveWebhook(t.Context(), store.Webhook{ID: "wh", Definition: json.RawMessage(`{}`)}, t0)
	require.NoError(t, err)
	db, err := sqlite.OpenDB(path)
	require.NoError(t, err)
	defer db.Close()
	taken := delivery("wh")
	created, err := s.Enqueue(t.Context(), event("c0", "E0"), []store.Delivery{taken})
	require.NoError(t, err)
	require.True(t, created)

	want := []string{"c0"}
	for round := range 2 {
		tx, err := db.BeginTx(t.Context(), nil)
		require.NoError(t, err)
		for i := range 10 {
			id := fmt.Sprintf("r%d-c%d", round, i)
			ds := []store.Delivery{delivery("wh")}
			if round == 0 && i == 5 {
				ds = append(ds, store.Delivery{ID: taken.ID, WebhookID: "wh"}) // refused
			}
			created, err := s.EnqueueTx(t.Context(), sqlite.Tx(tx), event(id, fmt.Sprintf("K%d", i)), ds)
			if round == 0 && i == 5 {
				require.Error(t, err)
				continue
			}
			require.NoError(t, err, id)
			require.True(t, created, id)
			want = append(want, id)
			created, err = s.EnqueueTx(t.Context(), sqlite.Tx(tx), event(id, fmt.Sprintf("K%d", i)), []store.Delivery{delivery("wh")})
			require.NoError(t, err, id)
			require.False(t, created, "%s again", id)
		}
		require.NoError(t, tx.Commit())
	}
	ds, err := s.Deliveries(t.Context(), store.DeliveryFilter{})
	require.NoError(t, err)
	var got []string
	for _, d := range ds {
		got = append(got, d.EventID)
	}
	assert.Equal(t, want, got)
}

// TestEnqueueToDeletedWebhook pins what an enqueue stores for a webhook
// deleted between matching and storing, whichever way it is published:
// the delivery canceled, as DeleteWebhook would have left it, and the
// record's other deliveries untouched; a delivery id already taken is
// still refused.
func TestEnqueueToDeletedWebhook(t *testing.T) {
	t.Parallel()
	s, path := openWithWebhook(t)
	ctx := t.Context()
	db, err := sqlite.OpenDB(path)
	require.NoError(t, err)
	defer db.Close()

	publish := map[string]func(e store.Event, ds []store.Delivery) error{
		"Enqueue": func(e store.Event, ds []store.Delivery) error {
			_, err := s.Enqueue(ctx, e, ds)
			return err
		},
		"EnqueueTx, own connection": func(e store.Event, ds []store.Delivery) error {
			tx, err := s.BeginTx(ctx, nil)
			require.NoError(t, err)
			if _, err := s.EnqueueTx(ctx, sqlite.Tx(tx), e, ds); err != nil {
				return errors.Join(err, tx.Rollback())
			}
			return tx.Commit()
		},
		"EnqueueTx, another *sql.DB": func(e store.Event, ds []store.Delivery) error {
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			if _, err := s.EnqueueTx(ctx, sqlite.Tx(tx), e, ds); err != nil {
				return errors.Join(err, tx.Rollback())
			}
			return tx.Commit()
		},
	}
	var taken string
	for _, name := range []string{"Enqueue", "EnqueueTx, own connection", "EnqueueTx, another *sql.DB"} {
		gone, kept := delivery("gone"), delivery("wh")
		e := event("change-"+name, "E-"+name)
		require.NoError(t, publish[name](e, []store.Delivery{gone, kept}), name)
		got, err := s.Delivery(ctx, gone.ID)
		require.NoError(t, err, name)
		assert.Equal(t, store.Canceled, got.Status, name)
		assert.Equal(t, "webhook deleted", got.LastError, name)
		got, err = s.Delivery(ctx, kept.ID)
		require.NoError(t, err, name)
		assert.Equal(t, store.Pending, got.Status, name)
		ms, err := s.Claim(ctx, store.Claim{Now: t0, Lease: time.Minute, Limit: 10})
		require.NoError(t, err, name)
		require.Len(t, ms, 1, name)
		assert.Equal(t, "wh", ms[0].WebhookID, name)
		assert.Equal(t, kept.ID, ms[0].Deliveries[0].ID, name)
		taken = gone.ID

		dup := event("dup-"+name, "D-"+name)
		err = publish[name](dup, []store.Delivery{{ID: taken, WebhookID: "gone", NextAttempt: t0}})
		assert.Error(t, err, "%s: a delivery id already taken, to a deleted webhook", name)
		ds, err := s.Deliveries(ctx, store.DeliveryFilter{EventID: dup.ID})
		require.NoError(t, err, name)
		assert.Empty(t, ds, name)
	}
}

// TestEnqueueTxForgetsEndedTransactions: the store keeps no more than the
// latest transaction of another *sql.DB once the others are garbage.
func TestEnqueueTxForgetsEndedTransactions(t *testing.T) {
	t.Parallel()
	s, path := openWithWebhook(t)
	ctx := t.Context()
	db, err := sqlite.OpenDB(path)
	require.NoError(t, err)
	defer db.Close()
	const n = 50
	for i := range n {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = s.EnqueueTx(ctx, sqlite.Tx(tx), event(fmt.Sprintf("c%d", i), "E1"), []store.Delivery{delivery("wh")})
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
	}
	// Cleanups run after a collection, on a goroutine of their own.
	for i := 0; i < 1000 && s.ForeignTransactions() > 1; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	assert.LessOrEqual(t, s.ForeignTransactions(), 1)
}
