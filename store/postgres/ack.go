package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/heraldhr/herald/store"
)

// Ack records outcomes in one transaction: one statement writes every
// result (completions, retries, dead letters, attempts), a second moves
// the next delivery of each finished chain up to head. Results whose
// lease was lost change nothing; the error then wraps store.ErrLeaseLost
// and names their messages.
func (s *Store) Ack(ctx context.Context, rs []store.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	var (
		leases       = make([]uuidElem, n)
		anchors      = make([]int64Elem, n)
		mids         = make([]textElem, n)
		outcomes     = make([]int32Elem, n)
		nows         = make([]timeElem, n)
		next         = make([]timeElem, n)
		reasons      = make([]textElem, n)
		has          = make([]bool, n)
		codes        = make([]int32Elem, n)
		latency      = make([]int64Elem, n)
		headers      = make([][]byte, n)
		hbuf         []byte
		bodies       = make([]textElem, n)
		errs         = make([]textElem, n)
		versions     = make([]int64Elem, n)
		ats          = make([]timeElem, n)
		attemptMIDs  = make([]textElem, n)
		lost         []string
		valid        = make([]bool, n)
		validResults int
	)
	hsize := 0 // the request headers' JSON, near enough
	for _, r := range rs {
		if a := r.Attempt; a != nil && a.RequestHeaders != nil {
			hsize += 2
			for k, v := range a.RequestHeaders {
				hsize += len(k) + len(v) + 6
			}
		}
	}
	hbuf = make([]byte, 0, hsize)
	for i, r := range rs {
		l, anchor, err := parseLease(r.Lease)
		if err != nil {
			lost = append(lost, r.MessageID) // not a lease this store gave out
			continue
		}
		anchors[i] = int64Elem(anchor)
		valid[i] = true
		validResults++
		leases[i], mids[i], outcomes[i] = uuidElem(l), textElem(r.MessageID), int32Elem(r.Outcome)
		nows[i], next[i], reasons[i] = timeElem(r.Now), timeElem(r.NextAttempt), textElem(r.Error)
		if a := r.Attempt; a != nil {
			has[i], codes[i], latency[i] = true, int32Elem(a.StatusCode), int64Elem(a.Latency)
			bodies[i], errs[i], versions[i], ats[i] = textElem(a.ResponseBody), textElem(a.Error), int64Elem(a.WebhookVersion), timeElem(a.At)
			attemptMIDs[i] = textElem(a.MessageID)
			if attemptMIDs[i] == "" {
				attemptMIDs[i] = textElem(r.MessageID)
			}
			if a.RequestHeaders != nil {
				// Every result's headers in one buffer: a slice of it stays
				// as written when a later append moves the buffer.
				start := len(hbuf)
				hbuf = appendJSONObject(hbuf, a.RequestHeaders)
				headers[i] = hbuf[start:len(hbuf):len(hbuf)]
			}
		}
	}
	if validResults < n {
		leases, mids, outcomes, nows, next, reasons = keep(leases, valid), keep(mids, valid), keep(outcomes, valid), keep(nows, valid), keep(next, valid), keep(reasons, valid)
		has, codes, latency, headers, bodies, errs = keep(has, valid), keep(codes, valid), keep(latency, valid), keep(headers, valid), keep(bodies, valid), keep(errs, valid)
		versions, ats, attemptMIDs, anchors = keep(versions, valid), keep(ats, valid), keep(attemptMIDs, valid), keep(anchors, valid)
	}
	recorded := map[uuidElem]bool{}
	if len(leases) > 0 {
		// One round trip, one transaction: the two statements each with a
		// snapshot of its own. (Should one fail, the server skips the rest;
		// the pool then drops the connection, still in the transaction.)
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(s.q.ackSettings)
		b.Queue(s.q.ack, uuidArray(leases), textArray(mids), int32Array(outcomes), timeArray(nows), timeArray(next),
			textArray(reasons), has, int32Array(codes), int64Array(latency), headers, textArray(bodies), textArray(errs),
			int64Array(versions), timeArray(ats), textArray(attemptMIDs), int64Array(anchors))
		b.Queue(s.q.promote, int64Array(anchors))
		b.Queue("COMMIT")
		br := s.pool.SendBatch(ctx, b)
		err := func() error {
			for range 2 {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			rows, err := br.Query()
			if err != nil {
				return err
			}
			for rows.Next() {
				var l [16]byte
				if err := rows.Scan(&l); err != nil {
					rows.Close()
					return err
				}
				recorded[l] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if _, err := br.Exec(); err != nil {
				return err
			}
			tag, err := br.Exec()
			if err == nil && tag.String() != "COMMIT" {
				err = fmt.Errorf("the ack's transaction ended with %s", tag)
			}
			return err
		}()
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("postgres: ack: %w", err)
		}
	}
	for i, l := range leases {
		if !recorded[l] {
			lost = append(lost, string(mids[i]))
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("postgres: messages %v: %w", lost, store.ErrLeaseLost)
	}
	return nil
}

func keep[T any](xs []T, ok []bool) []T {
	out := xs[:0:0]
	for i, x := range xs {
		if ok[i] {
			out = append(out, x)
		}
	}
	return out
}

// Release returns leased messages to the queue at once, unattempted.
func (s *Store) Release(ctx context.Context, leases []string) error {
	ids := make([][16]byte, 0, len(leases))
	anchors := make([]int64, 0, len(leases))
	for _, l := range leases {
		if id, anchor, err := parseLease(l); err == nil {
			ids, anchors = append(ids, id), append(anchors, anchor)
		}
	}
	if len(ids) == 0 {
		return ctx.Err()
	}
	var n int64
	if err := s.pool.QueryRow(ctx, s.q.release, ids, notifyChannel, s.schema, anchors).Scan(&n); err != nil {
		return fmt.Errorf("postgres: release: %w", err)
	}
	return nil
}

// Replay makes a finished delivery pending again, due at now, outside its
// order chain, with a fresh attempt count.
func (s *Store) Replay(ctx context.Context, id string, now time.Time) error {
	var ok bool
	err := s.pool.QueryRow(ctx, s.q.replay, id, now, notifyChannel, s.schema).Scan(&ok)
	if err == nil {
		return nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: replay: %w", err)
	}
	var pending, erased bool
	err = s.pool.QueryRow(ctx, s.q.replayState, id).Scan(&pending, &erased)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("delivery %q: %w", id, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: replay: %w", err)
	case pending:
		return fmt.Errorf("delivery %q: %w", id, store.ErrPending)
	case erased:
		return fmt.Errorf("delivery %q: %w", id, store.ErrPayloadGone)
	}
	return fmt.Errorf("postgres: replay of delivery %q changed nothing", id)
}

// A lease token is "<uuid>.<seq>": a random id and the seq of the
// message's first row, through which the store finds the message's rows.
func leaseToken(id string, anchor int64) string { return id + "." + strconv.FormatInt(anchor, 10) }

// The uuid is handled as [16]byte, which pgx encodes and decodes as a
// uuid directly (uuid.UUID goes through its text form).
func parseLease(tok string) ([16]byte, int64, error) {
	id, seq, ok := strings.Cut(tok, ".")
	if !ok {
		return [16]byte{}, 0, errors.New("postgres: malformed lease")
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return [16]byte{}, 0, err
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	return u, n, err
}
