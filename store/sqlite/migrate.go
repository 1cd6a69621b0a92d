package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one schema version.
type Migration struct {
	Version   int
	Name      string
	AppliedAt time.Time // zero for a migration not applied
}

type migration struct {
	Migration
	sql string
}

// known lists the embedded migrations in order of version.
func known() ([]migration, error) {
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("sqlite: migration file %q is not named NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{Migration{Version: v, Name: name}, string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.Version - b.Version })
	return out, nil
}

// Migrations returns every migration this version of herald knows, in
// order, with the time each was applied to the database (zero when not
// yet).
func (s *Store) Migrations(ctx context.Context) ([]Migration, error) {
	all, err := known()
	if err != nil {
		return nil, err
	}
	applied, err := appliedAt(ctx, s.r)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, len(all))
	for i, m := range all {
		out[i] = m.Migration
		out[i].AppliedAt = applied[m.Version]
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func appliedAt(ctx context.Context, db querier) (map[int]time.Time, error) {
	out := map[int]time.Time{}
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'herald_migrations'`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading migrations: %w", err)
	}
	exists := rows.Next()
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("sqlite: reading migrations: %w", err)
	}
	if !exists {
		return out, nil
	}
	rows, err = db.QueryContext(ctx, `SELECT version, applied_at FROM herald_migrations`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			return nil, fmt.Errorf("sqlite: reading migrations: %w", err)
		}
		out[v] = fromNanos(at)
	}
	return out, rows.Err()
}

// Migrate applies, in one transaction, every migration the database lacks.
// Open calls it; calling it again does nothing. It fails, changing
// nothing, when the database was migrated by a newer herald.
func (s *Store) Migrate(ctx context.Context) error {
	all, err := known()
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS herald_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("sqlite: migrating: %w", err)
		}
		applied, err := appliedAt(ctx, tx)
		if err != nil {
			return err
		}
		for v := range applied {
			if v > all[len(all)-1].Version {
				return fmt.Errorf("sqlite: the database has schema version %d, newer than this herald knows (%d): upgrade herald",
					v, all[len(all)-1].Version)
			}
		}
		for _, m := range all {
			if _, ok := applied[m.Version]; ok {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("sqlite: migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO herald_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("sqlite: migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		return nil
	})
}
