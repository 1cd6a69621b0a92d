package webhook_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/webhook"
)

// TestSharedRulesMatchEachWebhook: webhooks with equal rules share one
// evaluation per change, yet each gets its delivery, and each is told
// about a failing condition.
func TestSharedRulesMatchEachWebhook(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	failed := map[string]int{}
	k, rcv := setup(t, webhook.Config{Observer: webhook.ObserverFunc(func(e webhook.Event) {
		if e.Kind == webhook.EventConditionError {
			mu.Lock()
			failed[e.WebhookID]++
			mu.Unlock()
		}
	})})
	sales := condition.Rule{Expr: `new.department == "Sales"`}
	grade := condition.Rule{Expr: `old.grade + 1 <= new.grade`} // fails when old has no grade
	var toSales, byGrade []string
	for i := range 3 {
		toSales = append(toSales, register(t, k, rcv, webhook.Webhook{Name: fmt.Sprint("sales ", i), When: sales}).ID)
		byGrade = append(byGrade, register(t, k, rcv, webhook.Webhook{Name: fmt.Sprint("grade ", i), When: grade, Tenant: "acme"}).ID)
	}
	matched := func(c webhook.Change) []string {
		t.Helper()
		id, err := k.Publish(t.Context(), c)
		require.NoError(t, err)
		ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: id})
		require.NoError(t, err)
		var out []string
		for _, d := range ds {
			out = append(out, d.WebhookID)
		}
		return out
	}
	c := update("E1", map[string]any{"department": "Ops", "grade": 1}, map[string]any{"department": "Sales", "grade": 2})
	c.Tenant = "acme"
	assert.ElementsMatch(t, append(append([]string{}, toSales...), byGrade...), matched(c))
	c.Tenant = "globex"
	assert.ElementsMatch(t, toSales, matched(c), "tenant webhooks take only their tenant's changes")
	c = update("E2", map[string]any{"department": "Ops"}, map[string]any{"department": "Ops", "grade": 2})
	c.Tenant = "acme"
	assert.Empty(t, matched(c))
	mu.Lock()
	defer mu.Unlock()
	for _, id := range byGrade {
		assert.Equal(t, 1, failed[id], "every webhook of a failing rule is told")
	}
	assert.Len(t, failed, len(byGrade))
}

// TestMatchingFollowsEdits: an update moving a webhook to another table,
// op or tenant, disabling it and deleting it change what Publish matches
// at once.
func TestMatchingFollowsEdits(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{Name: "moving", Ops: []webhook.Op{webhook.Update}})
	other := register(t, k, rcv, webhook.Webhook{Name: "stays", Ops: []webhook.Op{webhook.Update}})
	count := func(c webhook.Change) int {
		t.Helper()
		id, err := k.Publish(t.Context(), c)
		require.NoError(t, err)
		ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{EventID: id, WebhookID: w.ID})
		require.NoError(t, err)
		return len(ds)
	}
	emp := update("E1", map[string]any{"a": 1}, map[string]any{"a": 2})
	att := webhook.Change{Table: "attendance", Op: webhook.Insert, Key: "A1", New: map[string]any{"a": 1}}
	assert.Equal(t, 1, count(emp))

	w.Table, w.Ops = "attendance", []webhook.Op{webhook.Insert}
	w, err := k.Update(t.Context(), w)
	require.NoError(t, err)
	assert.Equal(t, 0, count(emp))
	assert.Equal(t, 1, count(att))

	w.Tenant = "acme"
	w, err = k.Update(t.Context(), w)
	require.NoError(t, err)
	assert.Equal(t, 0, count(att))
	att.Tenant = "acme"
	assert.Equal(t, 1, count(att))

	_, err = k.SetDisabled(t.Context(), w.ID, true)
	require.NoError(t, err)
	assert.Equal(t, 0, count(att))
	_, err = k.SetDisabled(t.Context(), w.ID, false)
	require.NoError(t, err)
	assert.Equal(t, 1, count(att))

	require.NoError(t, k.Delete(t.Context(), w.ID))
	assert.Equal(t, 0, count(att))
	list, err := k.Webhooks(t.Context())
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, other.ID, list[0].ID)
}
