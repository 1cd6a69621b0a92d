package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The combined enqueue carries every payload of its calls, tens of
// kilobytes a statement. Through pgx's query methods they were copied
// three times on the client before the send: into the statement's bytea
// parameter, by pgx into a parameter buffer it grows from a few hundred
// bytes for every statement, and into the message it writes. The first
// two copies cost about a sixth of the bytes the process allocated per
// delivery, and the buffer's growth most of the client's time in the
// statement. So, on the store's own pool, the statement runs as a
// prepared statement of the connection, with its parameters encoded by
// the connection's type map into one buffer reused from call to call, and
// the payloads laid out in a reused buffer of their own that is sent as
// it is.
//
// This path bypasses pgx's query methods, so it is taken only where they
// would do the same: the pool's connections prepare and cache their
// statements (pgx's default), and no tracer watches their queries.

// bufPool keeps byte buffers between statements.
type bufPool struct{ p sync.Pool }

// maxPooledBuf bounds the buffers kept: a rare huge call does not pin its
// memory.
const maxPooledBuf = 4 << 20

func (b *bufPool) get() *[]byte {
	if x, ok := b.p.Get().(*[]byte); ok {
		*x = (*x)[:0]
		return x
	}
	x := make([]byte, 0, 32<<10)
	return &x
}

func (b *bufPool) put(x *[]byte) {
	if cap(*x) <= maxPooledBuf {
		b.p.Put(x)
	}
}

// directOK reports whether the pool's connections run statements as the
// direct path does.
func directOK(cfg *pgx.ConnConfig) bool {
	return cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement && cfg.Tracer == nil
}

var binaryParams = []int16{pgtype.BinaryFormatCode}

// queryDirect runs sql, which returns one row of two columns, on a
// connection of the pool as a prepared statement, and returns the row's
// values in text form. The arguments are encoded in binary into a pooled
// buffer; a []byte for a bytea or json parameter, whose binary form is
// its bytes, is sent as it is. A statement the server no longer knows (dropped by
// DEALLOCATE or DISCARD), or whose plan no longer fits the tables, is
// prepared again and run once more.
func (s *Store) queryDirect(ctx context.Context, sql string, args []any) (v0, v1 string, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return "", "", err
	}
	defer conn.Release()
	c := conn.Conn()
	for try := 0; ; try++ {
		v0, v1, err = s.execDirect(ctx, c, sql, args)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "26000" && pgErr.Code != "0A000") {
			return v0, v1, err
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		derr := c.Deallocate(dctx, sql)
		cancel()
		if derr != nil || try > 0 {
			return v0, v1, err
		}
	}
}

func (s *Store) execDirect(ctx context.Context, c *pgx.Conn, sql string, args []any) (v0, v1 string, err error) {
	sd, err := c.Prepare(ctx, sql, sql)
	if err != nil {
		return "", "", err
	}
	if len(sd.ParamOIDs) != len(args) {
		return "", "", fmt.Errorf("statement has %d parameters, %d given", len(sd.ParamOIDs), len(args))
	}
	bp := s.params.get()
	defer s.params.put(bp)
	buf := *bp
	m := c.TypeMap()
	vals := make([][]byte, len(args))
	spans := make([][2]int, len(args)) // where each encoded value lies in buf; [0, -1]: NULL or given as is
	for i, a := range args {
		if b, ok := a.([]byte); ok && (sd.ParamOIDs[i] == pgtype.ByteaOID || sd.ParamOIDs[i] == pgtype.JSONOID) {
			vals[i], spans[i] = b, [2]int{0, -1}
			continue
		}
		start := len(buf)
		nb, err := m.Encode(sd.ParamOIDs[i], pgtype.BinaryFormatCode, a, buf)
		if err != nil {
			return "", "", err
		}
		if nb == nil {
			spans[i] = [2]int{0, -1}
			continue
		}
		buf = nb
		spans[i] = [2]int{start, len(buf)}
	}
	*bp = buf
	for i, sp := range spans {
		if sp[1] >= 0 {
			vals[i] = buf[sp[0]:sp[1]]
		}
	}
	rr := c.PgConn().ExecStatement(ctx, sd, vals, binaryParams, nil)
	rows := 0
	for rr.NextRow() {
		if v := rr.Values(); len(v) == 2 {
			v0, v1 = string(v[0]), string(v[1])
		}
		rows++
	}
	if _, err := rr.Close(); err != nil {
		return "", "", err
	}
	if rows != 1 {
		return "", "", fmt.Errorf("statement returned %d rows, want 1", rows)
	}
	return v0, v1, nil
}
