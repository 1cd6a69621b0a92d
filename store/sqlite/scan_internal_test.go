package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDriverBlobsAreFresh checks what payloadCol relies on: the driver
// hands each blob it reads over in memory of its own, which later rows,
// statements and the end of the rows leave alone.
func TestDriverBlobsAreFresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sql.Open("sqlite", DSN(filepath.Join(t.TempDir(), "blobs.db"), 0))
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, `CREATE TABLE b (n INTEGER PRIMARY KEY, v BLOB)`)
	require.NoError(t, err)
	blob := func(n int) []byte { return bytes.Repeat([]byte{byte('a' + n)}, 2000) }
	for n := range 8 {
		_, err := db.ExecContext(ctx, `INSERT INTO b (n, v) VALUES (?, ?)`, n, blob(n))
		require.NoError(t, err)
	}
	st, err := db.PrepareContext(ctx, `SELECT v FROM b WHERE n >= ? ORDER BY n`)
	require.NoError(t, err)
	defer st.Close()
	var kept []payloadCol
	for range 2 { // the same statement again: the driver could reuse what it holds
		rows, err := st.QueryContext(ctx, 0)
		require.NoError(t, err)
		for rows.Next() {
			var p payloadCol
			require.NoError(t, rows.Scan(&p))
			kept = append(kept, p)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	}
	require.Len(t, kept, 16)
	for i, p := range kept {
		assert.Equal(t, blob(i%8), []byte(p), "blob %d", i)
	}
	assert.NotSame(t, &kept[0][0], &kept[8][0], "the same row read twice shares memory")
}
