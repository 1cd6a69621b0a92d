package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"io"
	"sync"
)

// A transaction of a *sql.DB of OpenDB that publishes through EnqueueTx
// commits on a connection the store does not own, so the store's own
// writes cannot tell its subscribers. OpenDB's connections carry commit
// and rollback hooks instead, which find the stores open on their file in
// this process: its commit wakes their subscribers at once, as a commit
// of a BeginTx transaction does, rather than at their next watch. A
// transaction of a *sql.DB opened otherwise is still seen by the watch.

// opened holds the stores open in this process, by file.
var opened = struct {
	mu     sync.Mutex
	byFile map[string]map[*Store]struct{}
}{byFile: map[string]map[*Store]struct{}{}}

func (s *Store) register() {
	opened.mu.Lock()
	defer opened.mu.Unlock()
	m := opened.byFile[s.file]
	if m == nil {
		m = map[*Store]struct{}{}
		opened.byFile[s.file] = m
	}
	m[s] = struct{}{}
}

func (s *Store) unregister() {
	opened.mu.Lock()
	defer opened.mu.Unlock()
	delete(opened.byFile[s.file], s)
	if len(opened.byFile[s.file]) == 0 {
		delete(opened.byFile, s.file)
	}
}

// foreignCommitted is called as a transaction of OpenDB on file commits:
// the stores on file whose EnqueueTx wrote in it tell their subscribers,
// once the commit is done.
func foreignCommitted(file string) {
	opened.mu.Lock()
	defer opened.mu.Unlock()
	for s := range opened.byFile[file] {
		if s.foreignEnqueued.Swap(false) {
			go s.notifyAfterWriters()
		}
	}
}

// foreignRolledBack is called as a transaction of OpenDB on file rolls
// back: what it published is gone.
func foreignRolledBack(file string) {
	opened.mu.Lock()
	defer opened.mu.Unlock()
	for s := range opened.byFile[file] {
		s.foreignEnqueued.Store(false)
	}
}

// notifyAfterWriters notifies the subscribers once the transaction that
// holds the file's write lock has let go of it: the hooks run before the
// commit is done, and a reader woken sooner might not see the work yet.
// Taking the write lock (the store's transactions begin IMMEDIATE) and
// giving it back waits for exactly that.
func (s *Store) notifyAfterWriters() {
	if tx, err := s.w.BeginTx(context.Background(), nil); err == nil {
		_ = tx.Rollback()
	}
	s.notify()
}

// foreignConnector opens OpenDB's connections with the hooks above.
type foreignConnector struct {
	driver.Connector
}

func (c foreignConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	file, err := mainFile(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := hook(conn, func() { foreignCommitted(file) }, func() { foreignRolledBack(file) }); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// mainFile returns the path of the database file conn has open, as
// SQLite names it: the name Store.file holds for the same file.
func mainFile(ctx context.Context, conn driver.Conn) (string, error) {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return "", fmt.Errorf("sqlite: the driver's connection (%T) cannot query", conn)
	}
	rows, err := q.QueryContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`, nil)
	if err != nil {
		return "", fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		if err == io.EOF {
			return "", fmt.Errorf("sqlite: the connection has no main database")
		}
		return "", fmt.Errorf("sqlite: %w", err)
	}
	file, ok := v[0].(string)
	if !ok {
		return "", fmt.Errorf("sqlite: the main database's file is a %T", v[0])
	}
	return file, nil
}
