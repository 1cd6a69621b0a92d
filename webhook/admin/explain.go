package admin

import (
	"errors"
	"net/http"
	"slices"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/webhook"
)

// explainRequest is the body of POST /conditions/explain.
type explainRequest struct {
	When   condition.Rule `json:"when"`
	Change changeJSON     `json:"change"`
}

// webhookExplainRequest is the body of POST /webhooks/{id}/explain.
type webhookExplainRequest struct {
	Change changeJSON `json:"change"`
}

// webhookExplanation says whether a change would be delivered to a stored
// webhook, and why.
type webhookExplanation struct {
	// WouldDeliver is whether Publish would create a delivery for the
	// change now: every check below passes.
	WouldDeliver bool `json:"would_deliver"`
	// TableMatches: the change is of the webhook's table.
	TableMatches bool `json:"table_matches"`
	// OpListed: the webhook lists the change's op.
	OpListed bool `json:"op_listed"`
	// TenantMatches: the webhook serves the change's tenant.
	TenantMatches bool `json:"tenant_matches"`
	// Enabled: the webhook is published.
	Enabled bool `json:"enabled"`
	// Condition is the dry run of the webhook's When.
	Condition condition.Explanation `json:"condition"`
}

// input turns a sample change into a condition's input. A tenant caller's
// sample is of its own tenant; an operator's defaults to def.
func (q *request) input(c changeJSON, defTable, defTenant string) (condition.Input, error) {
	if c.Table == "" {
		c.Table = defTable
	}
	switch {
	case !q.caller.Operator && c.Tenant != "" && c.Tenant != q.caller.Tenant:
		return condition.Input{}, badRequest("invalid_request", "change.tenant", "change.tenant must be the caller's own, or left out")
	case !q.caller.Operator:
		c.Tenant = q.caller.Tenant
	case c.Tenant == "":
		c.Tenant = defTenant
	}
	if !webhook.Op(c.Op).Valid() {
		return condition.Input{}, badRequest("invalid_request", "change.op", "change.op must be INSERT, UPDATE or DELETE")
	}
	return condition.Input{Table: c.Table, Op: c.Op, Key: c.Key, Tenant: c.Tenant,
		Old: c.Old, New: c.New, Context: c.Context}, nil
}

// POST /conditions/explain: a dry run of a rule not saved yet.
func (h *handler) explainCondition(q *request) (int, any, error) {
	var in explainRequest
	if err := q.decode(&in, false); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == "invalid_webhook" {
			ae.Code = "invalid_condition" // a tree that does not decode
		}
		return 0, nil, err
	}
	cond, err := condition.Compile(in.When)
	if err != nil {
		return 0, nil, conditionError(err)
	}
	input, err := q.input(in.Change, "", "")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, cond.Explain(input), nil
}

// POST /webhooks/{id}/explain: would this change reach this webhook?
func (h *handler) explainWebhook(q *request) (int, any, error) {
	w, err := q.webhook(q.r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	var in webhookExplainRequest
	if err := q.decode(&in, false); err != nil {
		return 0, nil, err
	}
	input, err := q.input(in.Change, w.Table, w.Tenant)
	if err != nil {
		return 0, nil, err
	}
	cond, err := condition.Compile(w.When)
	if err != nil {
		return 0, nil, err // Register compiled it: not the caller's fault
	}
	x := webhookExplanation{
		TableMatches:  input.Table == w.Table,
		OpListed:      slices.Contains(w.Ops, webhook.Op(input.Op)),
		TenantMatches: w.Tenant == "" || w.Tenant == input.Tenant,
		Enabled:       !w.Disabled,
		Condition:     cond.Explain(input),
	}
	x.WouldDeliver = x.TableMatches && x.OpListed && x.TenantMatches && x.Enabled && x.Condition.Match
	return http.StatusOK, x, nil
}

// conditionError is a 422 naming the part of a rule at fault.
func conditionError(err error) error {
	e := &apiError{Status: http.StatusUnprocessableEntity, Code: "invalid_condition", Message: err.Error()}
	f := fieldJSON{Field: "when", Message: err.Error()}
	var ce *condition.CompileError
	if errors.As(err, &ce) {
		f.Field = "when." + ce.Part
		if ce.Path != "" {
			f.Field = "when." + ce.Path
		}
		f.Line, f.Column = ce.Line, ce.Column
	}
	e.Fields = []fieldJSON{f}
	return e
}
