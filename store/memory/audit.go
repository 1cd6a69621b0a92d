package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/heraldhr/herald/store"
)

var _ store.Auditor = (*Store)(nil)

// auditLog is the memory store's audit trail, under its own lock so that
// recording never waits for a claim.
type auditLog struct {
	mu   sync.Mutex
	seq  int64
	recs []store.AuditRecord // in order of Seq
}

// AppendAudit stores r and returns it with its Seq.
func (s *Store) AppendAudit(ctx context.Context, r store.AuditRecord) (store.AuditRecord, error) {
	if err := ctx.Err(); err != nil {
		return store.AuditRecord{}, err
	}
	if r.ID == "" || r.Action == "" {
		return store.AuditRecord{}, fmt.Errorf("memory: audit record without id or action")
	}
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	r.Seq = a.seq
	r.Definition = slices.Clone(r.Definition)
	r.Detail = slices.Clone(r.Detail)
	a.recs = append(a.recs, r)
	return clone(r), nil
}

// AuditRecords lists the records matching f in order of Seq.
func (s *Store) AuditRecords(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := &s.audit
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []store.AuditRecord
	take := func(r store.AuditRecord) bool {
		if auditMatch(r, f) {
			out = append(out, clone(r))
		}
		return f.Limit <= 0 || len(out) < f.Limit
	}
	if f.Newest {
		end := len(a.recs)
		if f.After > 0 {
			end = sort.Search(len(a.recs), func(i int) bool { return a.recs[i].Seq >= f.After })
		}
		for i := end - 1; i >= 0; i-- {
			if !take(a.recs[i]) {
				break
			}
		}
		return out, nil
	}
	start := sort.Search(len(a.recs), func(i int) bool { return a.recs[i].Seq > f.After })
	for _, r := range a.recs[start:] {
		if !take(r) {
			break
		}
	}
	return out, nil
}

func auditMatch(r store.AuditRecord, f store.AuditFilter) bool {
	switch {
	case f.Tenant != "" && r.Tenant != f.Tenant,
		f.WebhookID != "" && r.WebhookID != f.WebhookID,
		f.Action != "" && r.Action != f.Action,
		f.Actor != "" && r.Actor != f.Actor,
		f.Definitions && len(r.Definition) == 0,
		!f.Since.IsZero() && r.Time.Before(f.Since),
		!f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	}
	return true
}

func clone(r store.AuditRecord) store.AuditRecord {
	r.Definition = slices.Clone(r.Definition)
	r.Detail = slices.Clone(r.Detail)
	return r
}
