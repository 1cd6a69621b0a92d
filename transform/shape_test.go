package transform_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/transform"
)

func employee() transform.Record {
	return transform.Record{
		EventID: "ev-1", Table: "employee", Op: "UPDATE", Key: "E-1",
		Old: map[string]any{"name": "Ada", "salary": 5000.0, "ssn": "123-45-6789", "status": "Hired",
			"bank": map[string]any{"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"}},
		New: map[string]any{"name": "Ada", "salary": 5200.0, "ssn": "123-45-6789", "status": "Hired",
			"bank":     map[string]any{"iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
			"children": []any{map[string]any{"name": "Bo", "ssn": "987-65-4321"}, "not an object"}},
		Changed: []string{"children", "salary"},
		Context: map[string]any{"actor": "hr-admin", "ssn": "123-45-6789"},
	}
}

func TestShapeSelectsRedactsAndMasks(t *testing.T) {
	t.Parallel()
	m, err := transform.Body{
		Select: []string{"name", "salary", "ssn", "bank", "children"},
		Redact: []string{"ssn", "children.ssn"},
		Mask:   []string{"salary", "bank.iban"},
	}.Compile()
	require.NoError(t, err)
	in := employee()
	before := in.Clone()
	out := m.Shape(in)

	assert.Equal(t, map[string]any{"name": "Ada", "salary": transform.MaskValue,
		"bank":     map[string]any{"iban": transform.MaskValue, "bic": "COBADEFFXXX"},
		"children": []any{map[string]any{"name": "Bo"}, "not an object"}}, out.New,
		"selected fields only; ssn dropped at both depths; salary and iban masked")
	assert.Equal(t, map[string]any{"name": "Ada", "salary": transform.MaskValue,
		"bank": map[string]any{"iban": transform.MaskValue, "bic": "COBADEFFXXX"}}, out.Old,
		"status is not selected")
	assert.Equal(t, map[string]any{"actor": "hr-admin"}, out.Context, "redaction reaches the context; selection does not")
	assert.Equal(t, []string{"children", "salary"}, out.Changed, "a masked field is still listed as changed")
	assert.Equal(t, before, in, "Shape copies what it changes")
}

func TestShapeChangedLeavesOutDroppedAndUnselected(t *testing.T) {
	t.Parallel()
	m, err := transform.Body{Select: []string{"name", "ssn", "salary"}, Redact: []string{"ssn"}}.Compile()
	require.NoError(t, err)
	r := employee()
	r.Changed = []string{"name", "salary", "ssn", "status"}
	assert.Equal(t, []string{"name", "salary"}, m.Shape(r).Changed)
}

func TestShapeAppliesValueMapsWithoutFields(t *testing.T) {
	t.Parallel()
	m, err := transform.Body{Values: map[string]map[string]any{"status": {"Hired": "H", "Terminated": "T"}}}.Compile()
	require.NoError(t, err)
	r := employee()
	r.Old["status"] = "Offer"
	out := m.Shape(r)
	assert.Equal(t, "H", out.New["status"])
	assert.Equal(t, "Offer", out.Old["status"], "an unlisted value passes unchanged")
	assert.Equal(t, "Hired", r.New["status"], "the input is not changed")

	withFields, err := transform.Body{Fields: map[string]string{"s": "new.status"},
		Values: map[string]map[string]any{"s": {"Hired": "H"}}}.Compile()
	require.NoError(t, err)
	assert.Equal(t, "Hired", withFields.Shape(r).New["status"], "with fields, value maps apply to the output")
	obj, err := withFields.Map(withFields.Shape(r))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"s": "H"}, obj)
}

func TestShapeWalksGoValuesAHookAdded(t *testing.T) {
	t.Parallel()
	type account struct {
		IBAN string `json:"iban"`
		BIC  string `json:"bic"`
	}
	m, err := transform.Body{Redact: []string{"bank.iban"}}.Compile()
	require.NoError(t, err)
	r := transform.Record{New: map[string]any{"bank": account{IBAN: "DE89", BIC: "COBA"}}}
	out := m.Shape(r)
	assert.Equal(t, map[string]any{"bic": "COBA"}, out.New["bank"])
}

func TestMapRedactsItsOutput(t *testing.T) {
	t.Parallel()
	m, err := transform.Body{
		Fields: map[string]string{"ssn": "context.ssn", "who": "new", "name": "new.name"},
		Redact: []string{"ssn"}, Mask: []string{"who.salary"},
	}.Compile()
	require.NoError(t, err)
	r := employee()
	shaped := m.Shape(r)
	out, err := m.Map(shaped)
	require.NoError(t, err)
	assert.NotContains(t, out, "ssn", "an output key named like a redacted field is dropped")
	who := out["who"].(map[string]any)
	assert.NotContains(t, who, "ssn", "expressions see the redacted record")
	assert.Equal(t, transform.MaskValue, who["salary"])
	assert.Equal(t, "Ada", out["name"])
	assert.Equal(t, 5200.0, r.New["salary"], "the record itself is untouched")
}

func TestRedactResponse(t *testing.T) {
	t.Parallel()
	m, err := transform.Body{Redact: []string{"ssn"}, Mask: []string{"bank.iban"}}.Compile()
	require.NoError(t, err)
	recs := []transform.Record{employee()}
	cases := []struct {
		name, ctype, body, want string
	}{
		{"json keys at any depth", "application/json",
			`{"ok":true,"employee":{"ssn":"000-00-0000","iban":"XX00","name":"Ada <a@b>"}}`,
			`{"employee":{"iban":"xxxxx","name":"Ada <a@b>"},"ok":true}`},
		{"json list", "application/problem+json", `[{"ssn":"1"},{"x":2}]`, `[{},{"x":2}]`},
		{"untouched json keeps its bytes", "application/json", `{ "ok" : true }`, `{ "ok" : true }`},
		{"form", "application/x-www-form-urlencoded", "ssn=1&iban=2&name=Ada", "iban=xxxxx&name=Ada"},
		{"plain text", "text/plain", "OK", "OK"},
		{"a redacted value in text", "text/plain", "rejected: 123-45-6789 is invalid", transform.Withheld},
		{"a masked value in json under another key", "application/json", `{"account":"DE89370400440532013000"}`, transform.Withheld},
		{"a nested masked value", "text/html", "<p>DE89370400440532013000</p>", transform.Withheld},
		{"a value outside the paths", "text/plain", "child 987-65-4321", "child 987-65-4321"},
		{"empty", "text/plain", "", ""},
	}
	for _, c := range cases {
		got := m.RedactResponse([]byte(c.body), c.ctype, recs)
		assert.Equal(t, c.want, string(got), c.name)
	}
	plain, err := transform.Body{}.Compile()
	require.NoError(t, err)
	assert.Equal(t, "123-45-6789", string(plain.RedactResponse([]byte("123-45-6789"), "text/plain", recs)),
		"a body that redacts nothing keeps the answer")
}
