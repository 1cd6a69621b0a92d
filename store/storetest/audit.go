package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/store"
)

// auditor returns s as a store.Auditor, or skips the test: the audit
// trail is optional.
func auditor(t *testing.T, s store.Store) store.Auditor {
	t.Helper()
	a, ok := s.(store.Auditor)
	if !ok {
		t.Skipf("%T keeps no audit trail (store.Auditor)", s)
	}
	return a
}

// auditRec is a record of the given action about a webhook, at t0 plus
// minutes.
func auditRec(tenant, webhookID, action, actor string, minutes int) store.AuditRecord {
	return store.AuditRecord{ID: newID(), Time: t0.Add(time.Duration(minutes) * time.Minute), Tenant: tenant,
		Actor: actor, Action: action, WebhookID: webhookID, Detail: json.RawMessage(`{"reason":"test"}`)}
}

func appendAudit(t *testing.T, a store.Auditor, r store.AuditRecord) store.AuditRecord {
	t.Helper()
	out, err := a.AppendAudit(ctx(t), r)
	require.NoError(t, err)
	return out
}

func listAudit(t *testing.T, a store.Auditor, f store.AuditFilter) []store.AuditRecord {
	t.Helper()
	rs, err := a.AuditRecords(ctx(t), f)
	require.NoError(t, err)
	return rs
}

func auditIDs(rs []store.AuditRecord) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func testAuditAppend(t *testing.T, s store.Store) {
	a := auditor(t, s)
	assert.Empty(t, listAudit(t, a, store.AuditFilter{}), "a new store has an empty trail")
	def := json.RawMessage(`{"name":"Payroll","secret":"xxxxx"}`)
	in := auditRec("acme", "wh-1", "webhook.created", "alice", 0)
	in.WebhookVersion, in.Definition = 7, def
	first := appendAudit(t, a, in)
	assert.Positive(t, first.Seq)
	second := appendAudit(t, a, auditRec("acme", "wh-1", "delivery.replayed", "", 1))
	assert.Greater(t, second.Seq, first.Seq, "Seq grows with every record")

	rs := listAudit(t, a, store.AuditFilter{})
	require.Len(t, rs, 2)
	got := rs[0]
	assert.Equal(t, first.Seq, got.Seq)
	assert.Equal(t, in.ID, got.ID)
	assert.True(t, in.Time.Equal(got.Time), "time round-trips: %v", got.Time)
	assert.Equal(t, "acme", got.Tenant)
	assert.Equal(t, "alice", got.Actor)
	assert.Equal(t, "webhook.created", got.Action)
	assert.Equal(t, "wh-1", got.WebhookID)
	assert.Equal(t, int64(7), got.WebhookVersion)
	assert.JSONEq(t, string(def), string(got.Definition))
	assert.JSONEq(t, `{"reason":"test"}`, string(got.Detail))
	assert.Empty(t, rs[1].Definition, "a record without a definition keeps none")
	assert.Empty(t, rs[1].Actor)

	got.Definition[0] = 'X'
	again := listAudit(t, a, store.AuditFilter{Limit: 1})
	assert.JSONEq(t, string(def), string(again[0].Definition), "records are kept as appended")
}

func testAuditFilters(t *testing.T, s store.Store) {
	a := auditor(t, s)
	created := auditRec("acme", "wh-1", "webhook.created", "alice", 0)
	created.Definition = json.RawMessage(`{"name":"one"}`)
	created.WebhookVersion = 1
	recs := []store.AuditRecord{
		created,
		auditRec("acme", "wh-1", "delivery.replayed", "bob", 10),
		auditRec("globex", "wh-2", "webhook.disabled", "herald", 20),
		auditRec("", "wh-3", "webhook.deleted", "ops", 30),
	}
	recs[1].DeliveryID = "dl-1"
	for _, r := range recs {
		appendAudit(t, a, r)
	}
	ids := func(i ...int) []string {
		var out []string
		for _, n := range i {
			out = append(out, recs[n].ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    store.AuditFilter
		want []string
	}{
		{"everything", store.AuditFilter{}, ids(0, 1, 2, 3)},
		{"tenant", store.AuditFilter{Tenant: "acme"}, ids(0, 1)},
		{"webhook", store.AuditFilter{WebhookID: "wh-2"}, ids(2)},
		{"action", store.AuditFilter{Action: "webhook.deleted"}, ids(3)},
		{"actor", store.AuditFilter{Actor: "bob"}, ids(1)},
		{"since is inclusive", store.AuditFilter{Since: t0.Add(10 * time.Minute)}, ids(1, 2, 3)},
		{"until is exclusive", store.AuditFilter{Until: t0.Add(20 * time.Minute)}, ids(0, 1)},
		{"definitions only", store.AuditFilter{Definitions: true}, ids(0)},
		{"filters combine", store.AuditFilter{Tenant: "acme", Action: "delivery.replayed"}, ids(1)},
		{"nothing matches", store.AuditFilter{Tenant: "acme", WebhookID: "wh-2"}, nil},
	} {
		assert.Equal(t, c.want, auditIDs(listAudit(t, a, c.f)), c.name)
	}
	got := listAudit(t, a, store.AuditFilter{Action: "delivery.replayed"})
	require.Len(t, got, 1)
	assert.Equal(t, "dl-1", got[0].DeliveryID)
}

func testAuditPages(t *testing.T, s store.Store) {
	a := auditor(t, s)
	var all []string
	for i := range 7 {
		tenant := "acme"
		if i%3 == 2 {
			tenant = "globex" // interleaved records that a filtered page skips
		}
		r := appendAudit(t, a, auditRec(tenant, "wh", "webhook.updated", "alice", i))
		if tenant == "acme" {
			all = append(all, r.ID)
		}
	}
	page := func(f store.AuditFilter) []string {
		var got []string
		for range 10 {
			rs := listAudit(t, a, f)
			if len(rs) == 0 {
				return got
			}
			require.LessOrEqual(t, len(rs), f.Limit)
			got = append(got, auditIDs(rs)...)
			f.After = rs[len(rs)-1].Seq
		}
		t.Fatal("paging did not end")
		return nil
	}
	assert.Equal(t, all, page(store.AuditFilter{Tenant: "acme", Limit: 2}), "oldest first, page by page")
	var reversed []string
	for i := len(all) - 1; i >= 0; i-- {
		reversed = append(reversed, all[i])
	}
	assert.Equal(t, reversed, page(store.AuditFilter{Tenant: "acme", Limit: 2, Newest: true}), "newest first, page by page")

	newest := listAudit(t, a, store.AuditFilter{Newest: true, Limit: 1})
	require.Len(t, newest, 1)
	assert.Empty(t, listAudit(t, a, store.AuditFilter{After: newest[0].Seq}), "nothing after the newest")
	oldest := listAudit(t, a, store.AuditFilter{Limit: 1})
	assert.Empty(t, listAudit(t, a, store.AuditFilter{Newest: true, After: oldest[0].Seq}), "nothing before the oldest")
}

func testAuditOutlivesWebhook(t *testing.T, s store.Store) {
	a := auditor(t, s)
	hook(t, s, "wh-gone", false)
	appendAudit(t, a, auditRec("acme", "wh-gone", "webhook.created", "alice", 0))
	require.NoError(t, s.DeleteWebhook(ctx(t), "wh-gone", t0.Add(time.Minute)))
	appendAudit(t, a, auditRec("acme", "wh-gone", "webhook.deleted", "alice", 1))
	rs := listAudit(t, a, store.AuditFilter{WebhookID: "wh-gone"})
	require.Len(t, rs, 2, "a webhook's trail outlives it")
	assert.Equal(t, "webhook.deleted", rs[1].Action)
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	a := auditor(t, s)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := a.AppendAudit(ctx(t), auditRec("acme", fmt.Sprintf("wh-%d", w), "webhook.updated", "alice", i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	rs := listAudit(t, a, store.AuditFilter{})
	require.Len(t, rs, writers*each)
	seen := map[int64]bool{}
	for i, r := range rs {
		assert.False(t, seen[r.Seq], "Seq %d is unique", r.Seq)
		seen[r.Seq] = true
		if i > 0 {
			assert.Greater(t, r.Seq, rs[i-1].Seq, "listed in order of Seq")
		}
	}
}
