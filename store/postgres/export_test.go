package postgres

import "strings"

// Query texts, for the tests that show their plans.
func (s *Store) CandidatesSQL() string { return s.q.candidates }
func (s *Store) PromoteSQL() string    { return s.q.promote }
func (s *Store) GatherSQL() string     { return s.q.gather }
func (s *Store) LeaseSQL() string      { return s.q.lease }

// FileSQL is the filing statement inside file_new, with its row limit as $1.
func (s *Store) FileSQL() string {
	up := migrations[0].up
	i, j := strings.Index(up, "-- file:begin"), strings.Index(up, "-- file:end")
	body := strings.TrimSuffix(strings.TrimSpace(up[i+len("-- file:begin"):j]), ";")
	return s.sql(strings.ReplaceAll(body, "max_rows", "$1"))
}
