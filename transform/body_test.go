package transform_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/transform"
)

func TestCompileReportsPositions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		expr         string
		line, column int
		message      string
	}{
		{"new.status == 'Present' ? 'P' :", 1, 31, "unexpected token EOF"},
		{"neww.status", 1, 1, "unknown name neww"},
		{"new.x +* 2", 1, 8, `unexpected token Operator("*")`},
		{"new.status ==\n 'x' ?? )", 2, 9, `unexpected token Bracket(")")`},
		{"1 + 'a'", 1, 3, "mismatched types int and string"},
	}
	for _, c := range cases {
		_, err := transform.Body{Fields: map[string]string{"status": c.expr}}.Compile()
		require.Error(t, err, c.expr)
		assert.ErrorIs(t, err, transform.ErrInvalidBody)
		var fe *transform.FieldError
		require.True(t, errors.As(err, &fe), c.expr)
		assert.Equal(t, "status", fe.Field)
		assert.Equal(t, c.line, fe.Line, c.expr)
		assert.Equal(t, c.column, fe.Column, c.expr)
		assert.Contains(t, fe.Message, c.message)
		assert.Contains(t, err.Error(), `fields["status"]`)
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := transform.Body{
		Format: transform.Form,
		Fields: map[string]string{"a": "new.a +", "b": "", " ": "1"},
		Values: map[string]map[string]any{"c": {"x": "y"}, "a": {}},
		Select: []string{""},
		Redact: []string{"ssn", "bank..iban"},
		Mask:   []string{"ssn"},
		Source: "/hr",
	}.Compile()
	require.Error(t, err)
	for _, want := range []string{
		`fields["a"]`, `fields["b"]: the expression is empty`, "an output key is empty",
		`values["c"]: "c" is not an output key`, `values["a"] maps nothing`,
		"select: a field name is empty", `"bank..iban" has an empty field name`,
		`mask: "ssn" is also in redact`, "source is a CloudEvents attribute",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.ErrorIs(t, err, transform.ErrInvalidBody)
}

func TestCompileFormats(t *testing.T) {
	t.Parallel()
	for _, b := range []transform.Body{
		{Format: transform.JSON},
		{Format: transform.Form},
		{Format: "xml", Fields: map[string]string{"a": "1"}},
		{Format: transform.CloudEvents, Source: "not a uri"},
	} {
		assert.ErrorIs(t, b.Validate(), transform.ErrInvalidBody, b.Format)
	}
	m, err := transform.Body{}.Compile()
	require.NoError(t, err)
	assert.Equal(t, transform.Envelope, m.Format())
	assert.True(t, m.Passthrough(), "the zero body sends the stored envelope as it is")

	m, err = transform.Body{Fields: map[string]string{"a": "key"}}.Compile()
	require.NoError(t, err)
	assert.Equal(t, transform.JSON, m.Format(), "fields without a format mean flat JSON")
	assert.False(t, m.Passthrough())

	m, err = transform.Body{Redact: []string{"ssn"}}.Compile()
	require.NoError(t, err)
	assert.Equal(t, transform.Envelope, m.Format())
	assert.False(t, m.Passthrough(), "an envelope that redacts must be rebuilt")

	m, err = transform.Body{Format: transform.CloudEvents, Source: "https://hr.example.com/employees"}.Compile()
	require.NoError(t, err)
	assert.Equal(t, "https://hr.example.com/employees", m.Source())

	var nilMapper *transform.Mapper
	assert.True(t, nilMapper.Passthrough())
	assert.Equal(t, transform.Envelope, nilMapper.Format())
}

func TestBodyIsData(t *testing.T) {
	t.Parallel()
	b := transform.Body{
		Format: transform.Form,
		Fields: map[string]string{"status": "new.status"},
		Values: map[string]map[string]any{"status": {"Present": "P", "Absent": "A"}},
		Select: []string{"status"},
		Redact: []string{"ssn"},
		Mask:   []string{"bank.iban"},
	}
	raw, err := json.Marshal(b)
	require.NoError(t, err)
	assert.JSONEq(t, `{"format":"form","fields":{"status":"new.status"},
		"values":{"status":{"Present":"P","Absent":"A"}},"select":["status"],
		"redact":["ssn"],"mask":["bank.iban"]}`, string(raw))
	var back transform.Body
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, b, back)
	assert.NoError(t, back.Validate())
	raw, err = json.Marshal(transform.Body{})
	require.NoError(t, err)
	assert.JSONEq(t, `{}`, string(raw))
}

func TestMapEvaluatesEveryField(t *testing.T) {
	t.Parallel()
	m, err := transform.Body{Fields: map[string]string{
		"employee_id": "new.employee_id",
		"status":      "new.status == 'Present' ? 'P' : 'A'",
		"date":        "time.Format('2006-01-02')",
		"event":       "table + '.' + lower(op)",
		"was":         "old?.status ?? 'none'",
		"changed":     "changed",
		"actor":       "context.actor",
		"id":          "id",
		"nested":      "{'key': key, 'tenant': tenant}",
		"missing":     "new.no_such_field",
	}}.Compile()
	require.NoError(t, err)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	out, err := m.Map(transform.Record{EventID: "ev-1", Table: "attendance", Op: "INSERT", Key: "E-1/2026-03-02",
		Tenant: "acme", Time: at, New: map[string]any{"employee_id": "E-1", "status": "Present"},
		Changed: []string{"status"}, Context: map[string]any{"actor": "lead"}})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"employee_id": "E-1", "status": "P", "date": "2026-03-02", "event": "attendance.insert",
		"was": "none", "changed": []string{"status"}, "actor": "lead", "id": "ev-1",
		"nested": map[string]any{"key": "E-1/2026-03-02", "tenant": "acme"}, "missing": nil,
	}, out)
}

func TestMapRuntimeErrorNamesTheField(t *testing.T) {
	t.Parallel()
	m, err := transform.Body{Fields: map[string]string{"double": "new.salary * 2"}}.Compile()
	require.NoError(t, err)
	_, err = m.Map(transform.Record{New: map[string]any{"salary": "a lot"}})
	require.Error(t, err)
	assert.ErrorIs(t, err, transform.ErrMapping)
	assert.NotErrorIs(t, err, transform.ErrInvalidBody)
	var fe *transform.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "double", fe.Field)
	assert.Equal(t, 1, fe.Line)
}

func TestValueMaps(t *testing.T) {
	t.Parallel()
	m, err := transform.Body{
		Fields: map[string]string{"status": "new.status", "active": "new.active", "grade": "new.grade", "note": "new.note"},
		Values: map[string]map[string]any{
			"status": {"Present": "P", "Absent": "A"},
			"active": {"true": "Y", "false": "N"},
			"grade":  {"3": "senior", "null": "ungraded"},
			"note":   {"x": "y"},
		},
	}.Compile()
	require.NoError(t, err)
	for _, c := range []struct {
		in   map[string]any
		want map[string]any
	}{
		{map[string]any{"status": "Present", "active": true, "grade": 3.0, "note": map[string]any{"a": 1}},
			map[string]any{"status": "P", "active": "Y", "grade": "senior", "note": map[string]any{"a": 1}}},
		{map[string]any{"status": "Absent", "active": false, "grade": nil},
			map[string]any{"status": "A", "active": "N", "grade": "ungraded", "note": nil}},
		{map[string]any{"status": "Late", "active": "maybe", "grade": 2.5},
			map[string]any{"status": "Late", "active": "maybe", "grade": 2.5, "note": nil}},
	} {
		out, err := m.Map(transform.Record{New: c.in})
		require.NoError(t, err)
		assert.Equal(t, c.want, out, "unlisted values pass unchanged")
	}
}

func TestFormValues(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	v := transform.FormValues(map[string]any{
		"s": "a b&c", "f": 1001.0, "big": 12345678901.0, "frac": 2.5, "i": 7, "b": true,
		"t": at, "none": nil, "list": []any{"x", 2.0}, "strs": []string{"p", "q"},
		"obj": map[string]any{"k": "v"}, "num": json.Number("12.50"),
	})
	assert.Equal(t, url.Values{
		"s": {"a b&c"}, "f": {"1001"}, "big": {"12345678901"}, "frac": {"2.5"}, "i": {"7"}, "b": {"true"},
		"t": {"2026-03-02T09:30:00Z"}, "list": {"x", "2"}, "strs": {"p", "q"}, "obj": {`{"k":"v"}`}, "num": {"12.50"},
	}, v)
	assert.Equal(t, "b=true&big=12345678901", transform.FormValues(map[string]any{"big": 12345678901.0, "b": true}).Encode(),
		"keys are encoded in order, numbers without exponent")
}
