package postgres

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhr/herald/store"
)

var (
	_ store.Store        = (*Store)(nil)
	_ store.TxEnqueuer   = (*Store)(nil)
	_ store.BulkEnqueuer = (*Store)(nil)
	_ store.Notifier     = (*Store)(nil)
)

// owner names this kind of store in store.Tx values.
const owner = "postgres"

// notifyChannel is the LISTEN/NOTIFY channel; the payload is the schema,
// so stores in other schemas of one database ignore each other's signals.
// The wake-ups a store sends after its own enqueues carry the schema, a
// newline and the store's tag (see Store.wakes).
const notifyChannel = "herald"

// Options configures a Store. The zero value is usable.
type Options struct {
	// Schema holds herald's tables; "": "herald". Any name works: it is
	// quoted wherever it is used. Two stores with the same pool and schema
	// share one queue, as two processes on one database do.
	Schema string
	// FileBatch caps how many newly published deliveries one claim files
	// behind records that already have a delivery in flight (deliveries of
	// other records are claimed as they are, without filing); 0: 1000.
	FileBatch int
	// Logger receives the few things the store reports on its own (a
	// LISTEN connection lost and restored); nil: discarded.
	Logger *slog.Logger
	// ClaimScan caps how many due candidates one claim reads per webhook
	// before taking turns across webhooks; 0: the claim's limit.
	ClaimScan int
}

// Store is a herald store on PostgreSQL. It is safe for concurrent use, and
// any number of Stores, in any number of processes, may share one schema.
type Store struct {
	pool        *pgxpool.Pool
	schema      string
	schemaIdent string // quoted
	fileBatch   int
	claimScan   int
	migrateLock int64 // advisory lock key of Migrate
	q           queries
	log         *slog.Logger
	wakeups     wakeups
	wakeTag     string      // the payload of this store's own wake-ups
	fullClaims  atomic.Bool // the last claim's fast pick left work undecided: skip it once
	combine     combiner
	direct      bool    // combined enqueues run through queryDirect
	params      bufPool // queryDirect's parameter buffers
	blobs       bufPool // the combined enqueue's payload buffers
}

// New returns a store that keeps its tables in opts.Schema of pool's
// database. It does not touch the database: call Migrate once (at every
// start is fine) before using the store. The pool stays the caller's:
// Close does not close it.
func New(pool *pgxpool.Pool, opts Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("postgres: New needs a pool")
	}
	if opts.Schema == "" {
		opts.Schema = "herald"
	}
	if len(opts.Schema) > 63 || strings.ContainsRune(opts.Schema, 0) {
		return nil, fmt.Errorf("postgres: schema name %q must be 1 to 63 bytes without NUL", opts.Schema)
	}
	if opts.FileBatch < 0 || opts.ClaimScan < 0 {
		return nil, errors.New("postgres: Options.FileBatch and ClaimScan must not be negative")
	}
	if opts.FileBatch == 0 {
		opts.FileBatch = 1000
	}
	s := &Store{
		pool:        pool,
		schema:      opts.Schema,
		schemaIdent: pgx.Identifier{opts.Schema}.Sanitize(),
		fileBatch:   opts.FileBatch,
		claimScan:   opts.ClaimScan,
		migrateLock: lockKey("migrate", opts.Schema),
		log:         opts.Logger,
		wakeTag:     opts.Schema + "\n" + rand.Text(),
		direct:      directOK(pool.Config().ConnConfig),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.q = buildQueries(s.sql)
	return s, nil
}

// Schema returns the schema the store keeps its tables in, unquoted.
func (s *Store) Schema() string { return s.schema }

// Close waits for a wake-up being sent to other processes, if any; it
// does not close the pool, which belongs to the caller, and subscriptions
// end with their contexts.
func (s *Store) Close() error {
	s.waitWakeups()
	return nil
}

// sql puts the quoted schema name into a statement.
func (s *Store) sql(q string) string { return strings.ReplaceAll(q, "{schema}", s.schemaIdent) }

// lockKey derives an advisory lock key from a purpose and a schema, so
// stores in different schemas never wait for each other.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("herald\x00" + purpose + "\x00" + schema))
	return int64(h.Sum64())
}

// Tx wraps a pgx transaction for Dispatcher.PublishTx: the deliveries
// become visible when, and only when, tx commits. tx must be on the
// database the store's pool connects to.
func Tx(tx pgx.Tx) store.Tx { return store.NewTx(owner, tx) }

// SQLTx wraps a database/sql transaction for Dispatcher.PublishTx. Its
// connection must come from the pgx driver (github.com/jackc/pgx/v5/stdlib),
// which passes the arrays the store sends; other drivers fail with their
// own error.
func SQLTx(tx *sql.Tx) store.Tx { return store.NewTx(owner, tx) }
