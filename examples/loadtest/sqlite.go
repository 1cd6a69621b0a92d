package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/sqlite"
)

func init() { stores["sqlite"] = openSQLite }

// openSQLite opens a fresh database file in a temporary directory, removed
// when the scenario ends.
func openSQLite(ctx context.Context) (store.Store, func(), error) {
	dir, err := os.MkdirTemp("", "herald-loadtest-")
	if err != nil {
		return nil, nil, err
	}
	s, err := sqlite.Open(ctx, filepath.Join(dir, "herald.db"), sqlite.Options{})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() {
		_ = s.Close()
		_ = os.RemoveAll(dir)
	}, nil
}
