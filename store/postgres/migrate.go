package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned step of herald's schema.
type Migration struct {
	Version int    // 1, 2, 3 ...
	Name    string // from the file name, e.g. "init"
	up      string
	down    string
}

// AppliedMigration is a migration recorded as applied in a schema.
type AppliedMigration struct {
	Version   int
	Name      string
	AppliedAt time.Time // by the database's clock
}

// migrations are read once from the embedded files
// migrations/NNNN_name.up.sql and NNNN_name.down.sql.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []Migration {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		panic(err)
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*Migration{}
	for _, path := range names {
		base := strings.TrimPrefix(path, "migrations/")
		stem, dir, ok := strings.Cut(strings.TrimSuffix(base, ".sql"), ".")
		num, name, ok2 := strings.Cut(stem, "_")
		v, err := strconv.Atoi(num)
		if !ok || !ok2 || err != nil || v <= 0 || (dir != "up" && dir != "down") {
			return nil, fmt.Errorf("postgres: migration file %q is not NNNN_name.up.sql or .down.sql", base)
		}
		body, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &Migration{Version: v, Name: name}
			byVersion[v] = m
		} else if m.Name != name {
			return nil, fmt.Errorf("postgres: migrations %04d_%s and %04d_%s share a version", v, m.Name, v, name)
		}
		if dir == "up" {
			m.up = string(body)
		} else {
			m.down = string(body)
		}
	}
	var out []Migration
	for _, m := range byVersion {
		if m.up == "" || m.down == "" {
			return nil, fmt.Errorf("postgres: migration %04d_%s needs both an up and a down file", m.Version, m.Name)
		}
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("postgres: migration versions must run 1, 2, 3 ...; found %d at place %d", m.Version, i+1)
		}
	}
	return out, nil
}

// Migrations lists the migrations this version of herald knows, oldest
// first. The last one's Version is what Migrate brings a schema to.
func Migrations() []Migration { return slices.Clone(migrations) }

// Migrate creates the schema if needed and applies every migration not yet
// applied, in one transaction. Several processes may call it at once: an
// advisory lock makes them take turns, and the later ones find nothing to
// do.
func (s *Store) Migrate(ctx context.Context) error {
	return s.MigrateTo(ctx, migrations[len(migrations)-1].Version)
}

// MigrateTo moves the schema up or down to version, in one transaction:
// up migrations run in order, down migrations in reverse. Version 0
// removes every herald table but the migration record and leaves the
// schema itself, which may hold the application's own tables.
func (s *Store) MigrateTo(ctx context.Context, version int) error {
	if version < 0 || version > len(migrations) {
		return fmt.Errorf("postgres: no migration version %d (known: 0 to %d)", version, len(migrations))
	}
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		// Lock before CREATE SCHEMA: two concurrent CREATE SCHEMA IF NOT
		// EXISTS can otherwise collide on the catalog's unique index.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.migrateLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.sql(`CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`)); err != nil {
			return fmt.Errorf("postgres: creating schema %s: %w", s.schemaIdent, err)
		}
		current, err := currentVersion(ctx, tx, s)
		if err != nil {
			return err
		}
		for _, m := range migrations {
			if m.Version <= current || m.Version > version {
				continue
			}
			if _, err := tx.Exec(ctx, s.sql(m.up)); err != nil {
				return fmt.Errorf("postgres: migration %04d_%s up: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, s.sql(`INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)`), m.Version, m.Name); err != nil {
				return err
			}
		}
		for i := len(migrations) - 1; i >= 0; i-- {
			m := migrations[i]
			if m.Version > current || m.Version <= version {
				continue
			}
			if _, err := tx.Exec(ctx, s.sql(m.down)); err != nil {
				return fmt.Errorf("postgres: migration %04d_%s down: %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, s.sql(`DELETE FROM {schema}.schema_migrations WHERE version = $1`), m.Version); err != nil {
				return err
			}
		}
		return nil
	})
}

func currentVersion(ctx context.Context, tx pgx.Tx, s *Store) (int, error) {
	var v int
	err := tx.QueryRow(ctx, s.sql(`SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations`)).Scan(&v)
	return v, err
}

// Applied lists the migrations applied to the store's schema, oldest
// first; none when the schema does not exist yet.
func (s *Store) Applied(ctx context.Context) ([]AppliedMigration, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.schemaIdent+".schema_migrations").Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, s.sql(`SELECT version, name, applied_at FROM {schema}.schema_migrations ORDER BY version`))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AppliedMigration, error) {
		var a AppliedMigration
		err := r.Scan(&a.Version, &a.Name, &a.AppliedAt)
		return a, err
	})
}
