package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	msqlite "modernc.org/sqlite" // also registers the "sqlite" driver

	"github.com/heraldhr/herald/store"
)

var (
	_ store.Store          = (*Store)(nil)
	_ store.TxEnqueuer     = (*Store)(nil)
	_ store.BulkEnqueuer   = (*Store)(nil)
	_ store.BulkTxEnqueuer = (*Store)(nil)
	_ store.Notifier       = (*Store)(nil)
	_ store.Retainer       = (*Store)(nil)
	_ store.Eraser         = (*Store)(nil)
)

// owner names this store's transactions (see Tx).
const owner = "sqlite"

// Options tune Open. The zero value is the documented defaults.
type Options struct {
	// BusyTimeout is how long a statement waits for another connection's
	// write lock before it fails with SQLITE_BUSY; 0: 5s.
	BusyTimeout time.Duration
	// ReadConns is the number of idle read connections kept open; 0: 4.
	ReadConns int
	// WatchInterval is how often a subscription checks whether another
	// connection (a transaction of a *sql.DB you opened without OpenDB
	// that published, another process) committed; 0: 100ms. Commits made
	// through this Store, and of transactions of BeginTx or OpenDB that
	// published, wake subscribers at once.
	WatchInterval time.Duration
}

// Store is a herald store in one SQLite file, safe for concurrent use.
// Writes go through a single connection, so they never contend with each
// other inside the process; reads use a pool and, in WAL mode, never wait
// for writes.
type Store struct {
	file  string // the main database file as SQLite names it
	w     *sql.DB
	r     *sql.DB
	watch time.Duration

	// combine gathers the hot path's writes into shared transactions.
	combine combiner

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
	wanted map[string]struct{}
	// curTx is the transaction of write or of a shared transaction in
	// flight on the writer connection, and curStmts the statements stmt
	// bound to it: a shared transaction of fifty enqueues binds each
	// statement once, not fifty times. Guarded by stmtMu.
	curTx    *sql.Tx
	curStmts map[string]*sql.Stmt
	// claimBuf holds the due heads a claim reads, reused from claim to
	// claim: claims run on the writer connection, one at a time.
	claimBuf []item

	// own holds the transactions BeginTx made, weakly: an entry goes when
	// its transaction is garbage.
	own sync.Map // weak.Pointer[sql.Tx] -> struct{}
	// ownTx is the latest transaction BeginTx made and ownStmts the
	// store's statements bound to it, each bound once for the
	// transaction rather than once per use: a hundred publishes in one
	// transaction otherwise bind two hundred statements, which its commit
	// then closes one by one. Only the latest is kept, so a transaction
	// long ended is not held.
	ownMu    sync.Mutex
	ownTx    *sql.Tx
	ownStmts *foreignTx
	// ownEnqueued says that the transaction of BeginTx open on the writer
	// enqueued work: its commit wakes subscribers (see writerConnector).
	ownEnqueued atomic.Bool
	// foreignEnqueued says the same of a transaction of another *sql.DB
	// (see foreignCommitted).
	foreignEnqueued atomic.Bool
	// foreign holds, the same way, the transactions of other *sql.DBs
	// given to EnqueueTx whose file was checked.
	foreign sync.Map // weak.Pointer[sql.Tx] -> struct{}
	// foreignTx is the latest of them and foreignStmts the statements
	// prepared for it. Only the latest is kept: a statement refers to its
	// transaction, so a map of them held each transaction for as long as
	// the store lived. Transactions of OpenDB take the write lock when
	// they begin, so they publish one at a time anyway.
	foreignMu    sync.Mutex
	foreignTx    *sql.Tx
	foreignStmts *foreignTx

	subMu   sync.Mutex
	subs    map[chan struct{}]struct{}
	closing chan struct{}
	subWG   sync.WaitGroup
	once    sync.Once

	// ck is the checkpointer's connection, and ckWake tells it the
	// writer committed (see checkpointer). ckMu keeps its checkpoints and
	// Erase's apart: a checkpoint that finds another running gives up.
	ck     *sql.DB
	ckWake chan struct{}
	ckMu   sync.Mutex
}

// Open opens (creating it if needed) the SQLite database at path, applies
// the migrations it lacks and returns a store. The file is put in WAL mode
// with synchronous=NORMAL: a commit survives a crash of the process, and
// the last commits before a power loss may be lost, never torn.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: %q: give the path of a database file (an in-memory database cannot be shared by the store's connections)", path)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = 100 * time.Millisecond
	}
	wc, err := msqlite.NewConnector(DSN(path, opts.BusyTimeout))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	var s *Store // set before the writer opens its first connection
	w := sql.OpenDB(writerConnector{Connector: wc, committed: func() { s.committed() },
		rolledBack: func() { s.ownEnqueued.Store(false) }})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", readDSN(path, opts.BusyTimeout))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxIdleConns(opts.ReadConns)
	ck, err := sql.Open("sqlite", DSN(path, opts.BusyTimeout))
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	ck.SetMaxOpenConns(1)
	ck.SetMaxIdleConns(1)
	ck.SetConnMaxLifetime(0)
	ck.SetConnMaxIdleTime(0)
	s = &Store{w: w, r: r, ck: ck, watch: opts.WatchInterval, stmts: map[string]*sql.Stmt{},
		wanted: map[string]struct{}{}, curStmts: map[string]*sql.Stmt{}, subs: map[chan struct{}]struct{}{},
		closing: make(chan struct{}), ckWake: make(chan struct{}, 1)}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.register()
	s.subWG.Add(1)
	go s.checkpointer()
	return s, nil
}

// checkpointDelay is how long the checkpointer lets commits gather after
// the first one it hears of.
const checkpointDelay = 100 * time.Millisecond

// checkpointer copies what the writer committed from the write-ahead log
// into the database file, in the background: a PASSIVE checkpoint, on a
// connection of its own, a short while after the writer commits. It and
// the writer's transactions never wait for each other; only Erase's own
// checkpoint takes turns with it (ckMu).
//
// The writer still checkpoints by itself when the log reaches 8,000 pages
// (see DSN): only a checkpoint that catches up with the end of the log
// lets the next transaction start the log over, and one running beside a
// busy writer never quite does. But it then finds nearly every page
// copied already. Left to the writer alone, a checkpoint copied thousands
// of pages and synced the file inside a commit, and every write queued
// behind that commit waited for it. At 64 deliveries in flight, moving
// the copying here halved the 99th percentile and gained about a tenth
// in throughput (BENCHMARKS.md).
func (s *Store) checkpointer() {
	defer s.subWG.Done()
	ctx := context.Background() // a checkpoint is short; Close waits for it
	t := time.NewTimer(checkpointDelay)
	t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-s.ckWake:
		}
		t.Reset(checkpointDelay)
		select {
		case <-s.closing:
			t.Stop()
			return
		case <-t.C:
		}
		// A busy answer (another checkpoint runs) or any other failure
		// leaves the work to the next round, or to the writer.
		var busy, log, done int
		s.ckMu.Lock()
		_ = s.ck.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done)
		s.ckMu.Unlock()
	}
}

// committed is called as a write transaction commits on the writer
// connection. It wakes the checkpointer, and the subscribers when the
// transaction is one of BeginTx that enqueued work: its caller commits
// it, and the store's own writes notify by themselves. SQLite calls it
// before the commit is done, so the subscribers hear of it once the
// transaction has let go of the writer connection: a reader woken sooner
// might not see the work yet.
func (s *Store) committed() {
	signal(s.ckWake)
	if s.ownEnqueued.Swap(false) {
		go func() {
			if conn, err := s.w.Conn(context.Background()); err == nil { // after the commit
				conn.Close()
			}
			s.notify()
		}()
	}
}

// writerConnector opens the writer's connections with a commit hook that
// calls committed and a rollback hook that calls rolledBack, so that
// every commit on the writer is seen: the store's own, and those of the
// transactions BeginTx hands out, which their callers commit. SQLite
// calls the hooks as a transaction ends, on the goroutine ending it,
// before the commit is done: neither touches the connection, and what
// they wake takes its turn for the writer after the commit.
type writerConnector struct {
	driver.Connector
	committed, rolledBack func()
}

func (c writerConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := hook(conn, c.committed, c.rolledBack); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// hook registers committed and rolledBack as conn's commit and rollback
// hooks. Neither may touch the connection.
func hook(conn driver.Conn, committed, rolledBack func()) error {
	h, ok := conn.(msqlite.HookRegisterer)
	if !ok {
		return fmt.Errorf("sqlite: the driver's connection (%T) takes no commit hook", conn)
	}
	h.RegisterCommitHook(func() int32 {
		committed()
		return 0 // 0: the commit goes ahead
	})
	h.RegisterRollbackHook(rolledBack)
	return nil
}

func (s *Store) init(ctx context.Context) error {
	if err := s.w.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&s.file); err != nil {
		return fmt.Errorf("sqlite: opening: %w", err)
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: opening: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlite: the database is in %s mode, not WAL (a file on a network file system?)", mode)
	}
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	// Prepare the statements of the hot paths now: a transaction from
	// BeginTx never passes through write, which prepares the others.
	for _, q := range []string{insertEvent, insertDelivery, insertCanceled, readyWebhooks, dueHeads, setLeases, leaseHeads,
		leaseBatches, applyOutcome, insertAttempts(1), promoteHeads} {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("sqlite: preparing: %w", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// DSN returns the data source name Open uses for path, for database/sql
// with the "sqlite" driver of modernc.org/sqlite: WAL journal, the given
// busy timeout, synchronous=NORMAL, foreign keys on, secure_delete on (so
// deleted and erased data is overwritten in the file, not left in free
// pages), temporary files in memory (the statement and savepoint journals
// of a transaction, which otherwise spill to a file past 64 KiB), a
// checkpoint once the write-ahead log holds 8,000 pages (about 32 MiB;
// SQLite's default, 1,000, makes the committing writer copy the same hot
// pages back into the database eight times as often; a Store also
// checkpoints in the background, see checkpointer) and transactions
// that take the write lock when they begin (BEGIN IMMEDIATE), which spares
// read-then-write transactions the SQLITE_BUSY errors a deferred upgrade
// can meet.
func DSN(path string, busyTimeout time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "secure_delete(ON)")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "wal_autocheckpoint(8000)")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}

func readDSN(path string, busyTimeout time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "query_only(1)")
	return path + "?" + q.Encode()
}

// OpenDB opens a *sql.DB on the same file with the settings the store
// uses (see DSN), for your own tables and for the transactions you give to
// PublishTx through Tx. When such a transaction that published commits,
// the stores open on the file in this process wake their workers at once;
// a transaction of a *sql.DB opened otherwise is seen within their
// Options.WatchInterval.
func OpenDB(path string) (*sql.DB, error) {
	c, err := msqlite.NewConnector(DSN(path, 5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return sql.OpenDB(foreignConnector{Connector: c}), nil
}

// Tx wraps a transaction of a *sql.DB on the store's file for
// webhook.Dispatcher.PublishTx: the deliveries exist when, and only when,
// tx commits. The store refuses a transaction on another file, or another
// store's, with an error wrapping store.ErrForeignTx.
func Tx(tx *sql.Tx) store.Tx { return store.NewTx(owner, tx) }

// BeginTx starts a transaction on the store's own writer connection, for
// your writes to your tables in the same file and for PublishTx through
// Tx. It is the fast way to publish inside your transaction: the store's
// statements are prepared once, and your writes never wait for a second
// SQLite connection's lock. The database has one writer whichever way you
// choose, so while the transaction is open the store's workers wait to
// claim and record outcomes: keep it short, and always end it (Commit or
// Rollback). Do not call the store's other methods from inside it: they
// wait for the connection it holds.
func (s *Store) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	tx, err := s.w.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	key := weak.Make(tx)
	s.own.Store(key, struct{}{})
	runtime.AddCleanup(tx, func(k weak.Pointer[sql.Tx]) { s.own.Delete(k) }, key)
	s.ownMu.Lock()
	s.ownTx, s.ownStmts = tx, &foreignTx{own: true, stmts: map[string]*sql.Stmt{}}
	s.ownMu.Unlock()
	return tx, nil
}

// Close ends subscriptions and closes the store's connections.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.unregister()
		close(s.closing)
	})
	s.subWG.Wait()
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = map[string]*sql.Stmt{}
	s.stmtMu.Unlock()
	s.ownMu.Lock()
	s.ownTx, s.ownStmts = nil, nil
	s.ownMu.Unlock()
	s.foreignMu.Lock()
	s.foreignTx, s.foreignStmts = nil, nil
	s.foreignMu.Unlock()
	return errors.Join(s.r.Close(), s.w.Close(), s.ck.Close())
}

// write runs fn in a transaction on the writer connection. The transaction
// takes the write lock when it begins (BEGIN IMMEDIATE), so it never fails
// half-way for a lock.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := fn(tx); err != nil {
		s.end(tx)
		_ = tx.Rollback()
		return err
	}
	s.end(tx)
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	s.prepareWanted(ctx)
	return nil
}

// begin starts a transaction on the writer connection whose statements
// stmt binds once each (see curTx); end forgets them, before tx ends.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	s.stmtMu.Lock()
	s.curTx = tx
	s.stmtMu.Unlock()
	return tx, nil
}

func (s *Store) end(tx *sql.Tx) {
	s.stmtMu.Lock()
	if s.curTx == tx {
		s.curTx = nil
		clear(s.curStmts)
	}
	s.stmtMu.Unlock()
}

// stmt returns q prepared for tx. The writer's one connection is busy
// with tx, so a query seen for the first time is prepared for tx alone and
// noted; write prepares it for good once the connection is free, and
// later transactions reuse it: each query is parsed about once per store.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	cur := s.curTx == tx
	if cur {
		if st, ok := s.curStmts[q]; ok {
			s.stmtMu.Unlock()
			return st, nil
		}
	}
	st, ok := s.stmts[q]
	if !ok {
		s.wanted[q] = struct{}{}
	}
	s.stmtMu.Unlock()
	if ok {
		st = tx.StmtContext(ctx, st)
	} else {
		var err error
		if st, err = tx.PrepareContext(ctx, q); err != nil {
			return nil, fmt.Errorf("sqlite: preparing: %w", err)
		}
	}
	if cur {
		s.stmtMu.Lock()
		if s.curTx == tx {
			s.curStmts[q] = st
		}
		s.stmtMu.Unlock()
	}
	return st, nil
}

// prepareWanted prepares, on the writer connection, the queries stmt met
// for the first time.
func (s *Store) prepareWanted(ctx context.Context) {
	s.stmtMu.Lock()
	if len(s.wanted) == 0 {
		s.stmtMu.Unlock()
		return
	}
	var qs []string
	for q := range s.wanted {
		qs = append(qs, q)
	}
	clear(s.wanted)
	s.stmtMu.Unlock()
	for _, q := range qs {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			continue // prepared for each use until a later try succeeds
		}
		s.stmtMu.Lock()
		if _, ok := s.stmts[q]; ok {
			st.Close()
		} else {
			s.stmts[q] = st
		}
		s.stmtMu.Unlock()
	}
}

// exec runs a prepared statement in tx.
func (s *Store) exec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, tx, q)
	if err != nil {
		return nil, err
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return res, nil
}

// query runs a prepared query in tx.
func (s *Store) query(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, tx, q)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return rows, nil
}

func affected(res sql.Result) int {
	n, _ := res.RowsAffected()
	return int(n)
}

// nanos stores a time as unix nanoseconds; the zero time is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Subscribe returns a channel that receives a value (coalesced) after
// work is enqueued, released or replayed, or definitions change: at once
// for writes made through this Store and for transactions of BeginTx or
// OpenDB that published, once they commit; within WatchInterval for
// commits of other connections (PublishTx in a transaction of a *sql.DB
// opened otherwise, another process). The channel is closed when ctx
// ends or the store is closed.
func (s *Store) Subscribe(ctx context.Context) (<-chan struct{}, error) {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	var version int64
	if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&version); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	ch := make(chan struct{}, 1)
	s.subMu.Lock()
	s.subs[ch] = struct{}{}
	s.subMu.Unlock()
	s.subWG.Add(1)
	go func() {
		defer s.subWG.Done()
		defer conn.Close()
		defer func() {
			s.subMu.Lock()
			delete(s.subs, ch)
			s.subMu.Unlock()
			close(ch)
		}()
		tick := time.NewTicker(s.watch)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.closing:
				return
			case <-tick.C:
			}
			// data_version moves when another connection commits.
			var v int64
			if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err == nil && v != version {
				version = v
				signal(ch)
			}
		}
	}()
	return ch, nil
}

func (s *Store) notify() {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for ch := range s.subs {
		signal(ch)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
