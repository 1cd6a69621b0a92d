package admin_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExplainACondition(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rule := map[string]any{"match": "any_selected", "fields": []string{"department"},
		"expr": `new.department == "Sales"`}
	a := e.do(acme, "POST", "/conditions/explain", map[string]any{"when": rule, "change": map[string]any{
		"table": "employee", "op": "UPDATE", "key": "E1",
		"old": map[string]any{"department": "Ops", "grade": 3}, "new": map[string]any{"department": "Sales", "grade": 3}}})
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
	x := a.JSON(t)
	assert.Equal(t, true, x["match"])
	assert.Equal(t, []any{"department"}, x["changed"])
	assert.Equal(t, true, x["field_rule"].(map[string]any)["result"])
	assert.Equal(t, true, x["expr"].(map[string]any)["result"])

	a = e.do(acme, "POST", "/conditions/explain", map[string]any{"when": rule, "change": map[string]any{
		"table": "employee", "op": "UPDATE", "key": "E1",
		"old": map[string]any{"department": "Sales", "grade": 3}, "new": map[string]any{"department": "Sales", "grade": 4}}})
	require.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, false, a.JSON(t)["match"])
	assert.Contains(t, a.JSON(t)["reason"], "department")

	// A rule that does not compile names the part and the position.
	a = e.do(acme, "POST", "/conditions/explain", map[string]any{"when": map[string]any{"expr": "new.grade >"},
		"change": map[string]any{"op": "INSERT", "new": map[string]any{}}})
	require.Equal(t, http.StatusUnprocessableEntity, a.Status)
	var eb errBody
	a.Decode(t, &eb)
	assert.Equal(t, "invalid_condition", eb.Error.Code)
	require.Len(t, eb.Error.Fields, 1)
	assert.Equal(t, "when.expr", eb.Error.Fields[0].Field)
	assert.Equal(t, 1, eb.Error.Fields[0].Line)

	a = e.do(acme, "POST", "/conditions/explain", `{"when":{"tree":{"all":[{"field":"grade","op":"gt","value":[1]}]}},"change":{"op":"INSERT"}}`)
	assert.Equal(t, http.StatusUnprocessableEntity, a.Status, "%s", a.Body)
	assert.Equal(t, "invalid_condition", a.ErrorCode(t))

	for _, bad := range []string{
		`{"when":{},"change":{"op":"UPSERT"}}`,
		`{"when":{},"change":{"op":"INSERT","tenant":"globex"}}`,
		`{"when":{},"change":{"op":"INSERT"},"extra":1}`,
	} {
		assert.Equal(t, http.StatusBadRequest, e.do(acme, "POST", "/conditions/explain", bad).Status, bad)
	}
}

func TestExplainAWebhook(t *testing.T) {
	t.Parallel()
	e := setup(t)
	h := e.create(acme, map[string]any{"ops": []string{"UPDATE"}, "when": map[string]any{"expr": "new.grade > old.grade"}})
	ask := func(change map[string]any) map[string]any {
		a := e.do(acme, "POST", "/webhooks/"+h.ID+"/explain", map[string]any{"change": change})
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
		return a.JSON(t)
	}
	x := ask(map[string]any{"op": "UPDATE", "key": "E1", "old": map[string]any{"grade": 3}, "new": map[string]any{"grade": 4}})
	assert.Equal(t, true, x["would_deliver"])
	assert.Equal(t, true, x["table_matches"], "the table defaults to the webhook's")
	assert.Equal(t, true, x["tenant_matches"], "the tenant is the caller's")
	assert.Equal(t, true, x["condition"].(map[string]any)["match"])

	x = ask(map[string]any{"op": "UPDATE", "old": map[string]any{"grade": 4}, "new": map[string]any{"grade": 3}})
	assert.Equal(t, false, x["would_deliver"])
	assert.Equal(t, false, x["condition"].(map[string]any)["match"])

	x = ask(map[string]any{"op": "INSERT", "new": map[string]any{"grade": 3}})
	assert.Equal(t, false, x["would_deliver"])
	assert.Equal(t, false, x["op_listed"])

	require.Equal(t, http.StatusOK, e.do(acme, "POST", "/webhooks/"+h.ID+"/disable", nil).Status)
	x = ask(map[string]any{"table": "attendance", "op": "UPDATE", "old": map[string]any{"grade": 3}, "new": map[string]any{"grade": 4}})
	assert.Equal(t, false, x["would_deliver"])
	assert.Equal(t, false, x["table_matches"])
	assert.Equal(t, false, x["enabled"])
}
