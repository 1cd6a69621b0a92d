package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/heraldhr/herald/store"
)

// Claim leases up to c.Limit due messages: the next delivery of each
// record that has nothing in flight (its earliest new one, or its head),
// and replays, taking turns across webhooks; a batching webhook's heads are
// gathered into batches fixed here with a UUIDv7 id. New deliveries of a
// record that has one in flight are filed behind it on the way. Everything
// happens in one transaction; rows another claimer holds are skipped,
// never waited for.
func (s *Store) Claim(ctx context.Context, c store.Claim) ([]store.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.Limit <= 0 {
		return nil, nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim: %w", err)
	}
	defer conn.Release()
	out, err := s.claimOn(ctx, conn.Conn(), c)
	if err != nil {
		// End the transaction, or drop the connection if that fails too,
		// so the pool never hands out a connection inside a transaction.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
			_ = conn.Conn().Close(rctx)
		}
		return nil, fmt.Errorf("postgres: claim: %w", err)
	}
	return out, nil
}

// claimOn runs a claim on conn. A pick is a transaction of its own, sent
// in one round trip with its BEGIN and COMMIT: it leases lone deliveries
// itself. A pick that had to file deliveries behind busy records and found
// too little is repeated over a wider window, so a long line of new
// deliveries behind a failing record is moved aside in a few rounds, not
// one record per claim. Batches need their rows held from the pick to the
// lease, so when a pick saw batching work, a transaction that holds them
// claims it.
//
// First, unless the last claim found it wanting, a smaller statement
// (fastPickSQL) leases the due deliveries that are alone in their lines,
// the usual case; only if it left due deliveries undecided does the full
// claim run, for the rest.
func (s *Store) claimOn(ctx context.Context, conn *pgx.Conn, c store.Claim) ([]store.Message, error) {
	scan := s.claimScan
	if scan == 0 {
		scan = c.Limit
	}
	until := c.Now.Add(c.Lease)
	var leased []store.Message
	if !s.fullClaims.Load() {
		var f picked
		if err := s.runPick(ctx, conn, &f, s.q.pickFast, c.Now, c.Limit, scan, []int64{}, until); err != nil {
			return nil, err
		}
		if f.filed == 0 || len(f.msgs) >= c.Limit {
			return f.msgs, nil
		}
		// Lines with heads, waiting or batched deliveries: the full claim
		// decides them, and the next claim starts with it too.
		s.fullClaims.Store(true)
		leased, c.Limit = f.msgs, c.Limit-len(f.msgs)
	} else {
		s.fullClaims.Store(false)
	}
	out, err := s.claimFull(ctx, conn, c, scan, until)
	return append(leased, out...), err
}

// claimFull claims with pickSQL.
func (s *Store) claimFull(ctx context.Context, conn *pgx.Conn, c store.Claim, scan int, until time.Time) ([]store.Message, error) {
	var p picked
	if err := s.pickAlone(ctx, conn, &p, c.Now, c.Limit, scan, nil, int64(s.fileBatch), c.Limit, until); err != nil {
		return nil, err
	}
	for total := p.filed; p.filed > 0 && total < int64(s.fileBatch) && p.lines() < c.Limit; total += p.filed {
		window := max(s.fileBatch, c.Limit)
		if err := s.pickAlone(ctx, conn, &p, c.Now, window, window, p.seenSeqs(), int64(s.fileBatch)-total, c.Limit-p.lines(), until); err != nil {
			return nil, err
		}
	}
	if len(p.cands) == 0 || len(p.msgs) >= c.Limit {
		return p.msgs, nil
	}
	more, err := s.claimInTx(ctx, conn, store.Claim{Now: c.Now, Lease: c.Lease, Limit: c.Limit - len(p.msgs)}, scan)
	return append(p.msgs, more...), err
}

// pickAlone runs one pick as a transaction of its own, in one round trip.
func (s *Store) pickAlone(ctx context.Context, conn *pgx.Conn, p *picked, now time.Time, lines, scan int, exclude []int64,
	file int64, claim int, until time.Time) error {
	if exclude == nil {
		exclude = []int64{}
	}
	return s.runPick(ctx, conn, p, s.q.pick, now, lines, scan, exclude, file, claim, until)
}

// runPick runs query, a pick statement, with args as a transaction of its
// own, in one round trip, and reads its rows into p.
func (s *Store) runPick(ctx context.Context, conn *pgx.Conn, p *picked, query string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue(s.q.claimSettings)
	b.Queue(query, args...)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	err := func() error {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if err := p.read(br.Query()); err != nil {
			return err
		}
		return commitTag(br.Exec())
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// claimInTx claims in one transaction that holds what its pick locked
// until the lease: for batches.
func (s *Store) claimInTx(ctx context.Context, conn *pgx.Conn, c store.Claim, scan int) ([]store.Message, error) {
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	b.Queue(s.q.claimSettings)
	b.Queue(s.q.pick, c.Now, c.Limit, scan, []int64{}, s.fileBatch, c.Limit, c.Now.Add(c.Lease))
	br := conn.SendBatch(ctx, b)
	var p picked
	err := func() error {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return p.read(br.Query())
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return s.claim(ctx, conn, c, &p)
}

// commitTag checks that a transaction's COMMIT committed.
func commitTag(tag pgconn.CommandTag, err error) error {
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("the claim's transaction ended with %s", tag)
	}
	return err
}

// picked collects what the picks of one claim returned: messages leased
// already (a single delivery each), and rows for the caller to lease (a
// fixed batch's member, or a batching webhook's next delivery).
type picked struct {
	msgs    []store.Message
	cands   []cand
	filed   int64 // by the last pick; for a fast pick, the due deliveries it left undecided
	seen    map[int64]bool
	nlines  int
	maxLine int64
}

func (p *picked) lines() int { return p.nlines }

func (p *picked) seenSeqs() []int64 {
	out := make([]int64, 0, len(p.seen))
	for q := range p.seen {
		out = append(out, q)
	}
	return out
}

// read adds a pick's rows. A later pick may return a row an earlier one
// did (a line reached through another of its deliveries); it counts once.
func (p *picked) read(rows pgx.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	if p.seen == nil {
		p.seen = map[int64]bool{}
	}
	base, last := p.maxLine, int64(-1)
	// One set of destinations for every row (a set per row cost seven
	// allocations a delivery), cleared before each; the values are copied
	// out of them.
	var (
		line    int64
		l       string
		payload []byte
		d       store.Delivery
		e       store.Event
	)
	dst := append([]any{&line, &d.Seq, &p.filed, &l}, deliveryDest(&d)...)
	dst = append(dst, &e.Table, &e.Op, &e.Time, &payload)
	for rows.Next() {
		line, l, payload, d, e = 0, "", nil, store.Delivery{}, store.Event{}
		if err := rows.Scan(dst...); err != nil {
			return err
		}
		if line == 0 || p.seen[d.Seq] {
			continue // only the count, or seen before
		}
		p.seen[d.Seq] = true
		x := cand{line: base + line, seq: d.Seq, webhook: d.WebhookID, maxBatch: d.MaxBatch}
		if x.line != last {
			p.nlines++
			last = x.line
		}
		p.maxLine = max(p.maxLine, x.line)
		if l == "" {
			if d.BatchID != "" {
				id := d.BatchID // d is scanned into again
				x.batchID = &id
			}
			p.cands = append(p.cands, x)
			continue
		}
		fixDelivery(&d)
		e.ID, e.Tenant, e.Key, e.Time, e.Payload = d.EventID, d.Tenant, d.Key, e.Time.UTC(), payload
		p.msgs = append(p.msgs, message(l, []member{{d, e}}))
	}
	return rows.Err()
}

// cand is a row a pick locked for the caller to lease.
type cand struct {
	line     int64 // the pick's rank of its record's line
	seq      int64
	webhook  string
	maxBatch int
	batchID  *string
}

// readPick reads the rows of a pick made for a batch (nothing leased).
func readPick(rows pgx.Rows, err error) ([]cand, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []cand
	for rows.Next() {
		var filed int64
		var x cand
		var batchID string
		if err := rows.Scan(&x.line, &x.seq, &x.webhook, &x.maxBatch, (*nullString)(&batchID), &filed); err != nil {
			return nil, err
		}
		if x.line != 0 {
			if batchID != "" {
				x.batchID = &batchID
			}
			out = append(out, x)
		}
	}
	return out, rows.Err()
}

// unit is a message being assembled by a claim.
type unit struct {
	lease   [16]byte
	batchID string  // a new batch's id, to be written; "" otherwise
	seqs    []int64 // the rows, unless fixed
	fixed   string  // a fixed batch's id: its members are found by it
	ok      bool    // every member of the fixed batch is locked
}

func (s *Store) claim(ctx context.Context, tx *pgx.Conn, c store.Claim, p *picked) ([]store.Message, error) {
	cands := p.cands
	var units []*unit
	var fixed []string
	fixedUnit := map[string]*unit{}
	taken := map[int64]bool{}
	for _, x := range cands {
		if len(p.msgs)+len(units) >= c.Limit {
			break
		}
		switch {
		case x.batchID != nil:
			// A fixed batch (or a replay of a batching webhook): all its
			// members go out again, under the same id.
			if fixedUnit[*x.batchID] != nil {
				continue
			}
			u := &unit{lease: newLease(), fixed: *x.batchID}
			fixedUnit[*x.batchID] = u
			fixed = append(fixed, *x.batchID)
			units = append(units, u)
		case x.maxBatch > 1:
			if taken[x.seq] {
				continue // already gathered into an earlier batch of this claim
			}
			u := &unit{lease: newLease(), batchID: uuid.Must(uuid.NewV7()).String()}
			seqs, err := s.gather(ctx, tx, x.seq, x.webhook, x.maxBatch, c.Now, taken)
			if err != nil {
				return nil, err
			}
			u.seqs = seqs
			units = append(units, u)
		default:
			if taken[x.seq] {
				continue
			}
			taken[x.seq] = true
			units = append(units, &unit{lease: newLease(), seqs: []int64{x.seq}})
		}
	}
	if len(fixed) > 0 {
		rows, err := tx.Query(ctx, s.q.fixedBatches, fixed)
		if err != nil {
			return nil, err
		}
		type fb struct {
			id            string
			total, locked int
		}
		fbs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fb, error) {
			var x fb
			err := r.Scan(&x.id, &x.total, &x.locked)
			return x, err
		})
		if err != nil {
			return nil, err
		}
		for _, b := range fbs {
			fixedUnit[b.id].ok = b.total == b.locked
		}
	}

	// One UPDATE leases every unit's rows. Fixed batches are named by
	// batch id; the statement finds their members.
	var seqs []int64
	var leases [][16]byte
	var batchIDs []string
	var fixedIDs []string
	var fixedLeases [][16]byte
	for _, u := range units {
		if u.fixed != "" {
			if u.ok {
				fixedIDs = append(fixedIDs, u.fixed)
				fixedLeases = append(fixedLeases, u.lease)
			}
			continue
		}
		for _, q := range u.seqs {
			seqs = append(seqs, q)
			leases = append(leases, u.lease)
			batchIDs = append(batchIDs, u.batchID)
		}
	}
	if len(seqs) == 0 && len(fixedIDs) == 0 {
		_, err := tx.Exec(ctx, "COMMIT") // what the picks leased and filed
		return p.msgs, err
	}
	batches, err := s.lease(ctx, tx, c, seqs, leases, batchIDs, fixedIDs, fixedLeases)
	return append(p.msgs, batches...), err
}

// gather assembles a new batch around leader (already locked, the next
// delivery of its record) and returns its member seqs, marking them taken:
// the leader and the deliveries after it in its record's line, then
// further records' next deliveries of the same webhook each followed by
// theirs, up to max rows, each line cut at its first delivery that cannot
// join (not due, or held elsewhere).
func (s *Store) gather(ctx context.Context, tx *pgx.Conn, leader int64, webhook string, max int, now time.Time, taken map[int64]bool) ([]int64, error) {
	heads := []int64{leader}
	if max > 1 {
		exclude := []int64{leader}
		for q := range taken {
			exclude = append(exclude, q)
		}
		more, err := readPick(tx.Query(ctx, s.q.pickNew, now, max-1, max, exclude, s.fileBatch, max-1, webhook))
		if err != nil {
			return nil, err
		}
		for _, x := range more {
			if x.seq != leader && !taken[x.seq] {
				heads = append(heads, x.seq)
			}
		}
	}
	rows, err := tx.Query(ctx, s.q.successors, heads, now, max)
	if err != nil {
		return nil, err
	}
	after := map[int64][]int64{} // head -> the rows after it that may join, up to the first that may not
	cut := map[int64]bool{}
	for rows.Next() {
		var ord, head, seq int64
		var locked bool
		if err := rows.Scan(&ord, &head, &seq, &locked); err != nil {
			rows.Close()
			return nil, err
		}
		if cut[head] || !locked || taken[seq] {
			cut[head] = true
			continue
		}
		after[head] = append(after[head], seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []int64
	for _, h := range heads {
		if len(out) >= max {
			break
		}
		out = append(out, h)
		taken[h] = true
		for _, q := range after[h] {
			if len(out) >= max {
				break
			}
			out = append(out, q)
			taken[q] = true
		}
	}
	return out, nil
}

func (s *Store) lease(ctx context.Context, tx *pgx.Conn, c store.Claim, seqs []int64, leases [][16]byte, batchIDs []string,
	fixedIDs []string, fixedLeases [][16]byte) ([]store.Message, error) {
	b := &pgx.Batch{}
	b.Queue(s.q.lease, c.Now.Add(c.Lease), seqs, leases, batchIDs, fixedIDs, fixedLeases)
	b.Queue("COMMIT")
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	byLease := map[string][]member{}
	var order []string
	var (
		l       string
		m       member
		payload []byte
	)
	dst := append([]any{&l}, deliveryDest(&m.d)...)
	dst = append(dst, &m.e.Table, &m.e.Op, &m.e.Time, &payload)
	for rows.Next() {
		l, m, payload = "", member{}, nil
		if err := rows.Scan(dst...); err != nil {
			rows.Close()
			return nil, err
		}
		fixDelivery(&m.d)
		m.e.ID, m.e.Tenant, m.e.Key, m.e.Time, m.e.Payload = m.d.EventID, m.d.Tenant, m.d.Key, m.e.Time.UTC(), payload
		if byLease[l] == nil {
			order = append(order, l)
		}
		byLease[l] = append(byLease[l], m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := commitTag(br.Exec()); err != nil {
		return nil, err
	}
	out := make([]store.Message, 0, len(order))
	for _, l := range order {
		out = append(out, message(l, byLease[l]))
	}
	return out, nil
}

// member is one leased delivery with its event.
type member struct {
	d store.Delivery
	e store.Event
}

// message makes the message leased under l from its members.
func message(l string, ms []member) store.Message {
	slices.SortFunc(ms, func(a, b member) int { return cmp.Compare(a.d.Seq, b.d.Seq) })
	first := ms[0].d
	m := store.Message{
		ID:         first.MessageID(),
		WebhookID:  first.WebhookID,
		Batch:      first.MaxBatch > 1,
		Lease:      leaseToken(l, first.Seq),
		Attempt:    first.Attempts + 1,
		Deliveries: make([]store.Delivery, len(ms)),
		Events:     make([]store.Event, len(ms)),
	}
	for i, x := range ms {
		m.Deliveries[i], m.Events[i] = x.d, x.e
	}
	return m
}

func newLease() [16]byte { return uuid.New() }

// deliveryDest returns scan destinations for deliveryCols.
func deliveryDest(d *store.Delivery) []any {
	return []any{&d.Seq, &d.ID, &d.EventID, &d.WebhookID, &d.Tenant, &d.Key, &d.MaxBatch, &d.Status,
		&d.Attempts, &d.NextAttempt, &d.LastError, &d.LastCode, (*nullString)(&d.BatchID), &d.Replayed, &d.CreatedAt, &d.UpdatedAt}
}

// fixDelivery puts a scanned delivery's times in UTC.
func fixDelivery(d *store.Delivery) {
	d.NextAttempt, d.CreatedAt, d.UpdatedAt = d.NextAttempt.UTC(), d.CreatedAt.UTC(), d.UpdatedAt.UTC()
}

// nullString scans a nullable text column into a string ("" for NULL).
type nullString string

func (n *nullString) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*n = ""
	case string:
		*n = nullString(x)
	case []byte:
		*n = nullString(x)
	default:
		return fmt.Errorf("postgres: cannot scan %T into a string", v)
	}
	return nil
}
