package postgres

// Query texts, for the tests that show their plans.
func (s *Store) PickSQL() string       { return s.q.pick }
func (s *Store) PromoteSQL() string    { return s.q.promote }
func (s *Store) SuccessorsSQL() string { return s.q.successors }
func (s *Store) LeaseSQL() string      { return s.q.lease }
