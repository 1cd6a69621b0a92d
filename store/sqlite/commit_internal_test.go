package sqlite

import (
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	msqlite "modernc.org/sqlite"
)

// TestWriterCommitsWakeTheCheckpointer checks that every write committed
// on a writer connection calls the commit hook, whoever commits it: a
// transaction a caller begins and commits as BeginTx's callers do, and a
// lone statement. Reads call nothing; a rollback calls the rollback hook.
func TestWriterCommitsWakeTheCheckpointer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	inner, err := msqlite.NewConnector(DSN(filepath.Join(t.TempDir(), "hook.db"), 0))
	require.NoError(t, err)
	var commits, rollbacks atomic.Int64
	db := sql.OpenDB(writerConnector{Connector: inner, committed: func() { commits.Add(1) },
		rolledBack: func() { rollbacks.Add(1) }})
	defer db.Close()

	_, err = db.ExecContext(ctx, `CREATE TABLE t (v INTEGER)`)
	require.NoError(t, err)
	assert.EqualValues(t, 1, commits.Load(), "a statement on its own commits once")

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	for v := range 3 {
		_, err = tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, v)
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, commits.Load(), "nothing commits before Commit")
	require.NoError(t, tx.Commit())
	assert.EqualValues(t, 2, commits.Load(), "the caller's commit")

	var n int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n))
	assert.Equal(t, 3, n)
	assert.EqualValues(t, 2, commits.Load(), "a read commits nothing")

	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (9)`)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	assert.EqualValues(t, 2, commits.Load(), "a rollback commits nothing")
	assert.EqualValues(t, 1, rollbacks.Load(), "the rollback is heard")
}
