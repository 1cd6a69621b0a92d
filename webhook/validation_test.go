package webhook_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
)

func TestValidationErrorNamesFields(t *testing.T) {
	t.Parallel()
	k, _ := setup(t, webhook.Config{})
	_, err := k.Register(t.Context(), webhook.Webhook{
		Name: " ", Table: "employee", Ops: []webhook.Op{"UPSERT"}, URL: "ftp://example.com/x", Method: "DELETE",
		Headers: map[string]string{"X-Token": "bad\r\nvalue"}, MaxBatch: -1, Before: []string{"missing"},
		When: condition.Rule{Expr: "new.grade >"}, MaxConcurrency: -1,
		Body:   transform.Body{Format: transform.JSON, Fields: map[string]string{"emp": "new.id", "grade": "new.grade +"}},
		Secret: "whsec_!!", PreviousSecrets: []webhook.Secret{{Value: "whsec_short"}},
	})
	require.ErrorIs(t, err, webhook.ErrInvalidWebhook)
	var ve *webhook.ValidationError
	require.ErrorAs(t, err, &ve)
	fields := map[string]string{}
	for _, p := range ve.Problems {
		fields[p.Field] = p.Message
	}
	for _, f := range []string{"name", "ops", "url", "method", "headers", "max_batch", "before", "when.expr",
		"secret", "previous_secrets[0]", "previous_secrets[0].expires_at", "max_concurrency", "body.fields.grade"} {
		assert.Contains(t, fields, f, "a problem names the field %s", f)
	}
	var ce *condition.CompileError
	assert.ErrorAs(t, err, &ce, "a condition's compile error stays reachable")
	var fe *transform.FieldError
	assert.ErrorAs(t, err, &fe, "and so does a mapping's")
	assert.ErrorIs(t, err, transform.ErrInvalidBody)
	assert.Equal(t, "name is required", fields["name"])
	for _, leak := range []string{"bad\r\nvalue", "whsec_!!", "whsec_short"} {
		assert.NotContains(t, err.Error(), leak)
	}
	assert.Regexp(t, `^webhook: invalid webhook: `, err.Error())

	w, err := k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: "https://example.com/"})
	require.NoError(t, err)
	_, err = k.Register(t.Context(), webhook.Webhook{ID: w.ID, Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: "https://example.com/"})
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "id", ve.Problems[0].Field)
	_, err = k.RotateSecretTo(t.Context(), w.ID, "whsec_nope", 0)
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "secret", ve.Problems[0].Field)
}
