package postgres

// Query texts, for the tests that show their plans.
func (s *Store) CandidatesSQL() string { return s.q.candidates }
func (s *Store) FileSQL() string       { return s.q.file }
func (s *Store) PromoteSQL() string    { return s.q.promote }
func (s *Store) GatherSQL() string     { return s.q.gather }
