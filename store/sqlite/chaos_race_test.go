//go:build race

package sqlite_test

// underRace: the race detector slows the pure-Go SQLite engine about
// tenfold, so the chaos runs shrink under it.
const underRace = true
