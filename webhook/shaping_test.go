package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/signer"
	"github.com/heraldhr/herald/transform"
	"github.com/heraldhr/herald/webhook"
	"github.com/heraldhr/herald/webhook/webhooktest"
)

func attendance(status string) webhook.Change {
	return webhook.Change{Table: "attendance", Op: webhook.Insert, Key: "E-1001/2026-03-02", Tenant: "acme",
		Time: webhooktest.Epoch.Add(-time.Hour),
		New:  map[string]any{"employee_id": "E-1001", "date": "2026-03-02", "status": status, "hours": 8}}
}

func TestFieldsMakeAFlatJSONBody(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{Table: "attendance", Body: transform.Body{Fields: map[string]string{
		"employee": "new.employee_id", "day": "new.date", "present": "new.status == 'Present'", "hours": "new.hours",
	}}})
	_, err := k.Publish(t.Context(), attendance("Present"))
	require.NoError(t, err)
	k.Drain(t)
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	require.NoError(t, reqs[0].VerifyErr)
	assert.Equal(t, "application/json", reqs[0].Header.Get("Content-Type"))
	assert.JSONEq(t, `{"employee":"E-1001","day":"2026-03-02","present":true,"hours":8}`, string(reqs[0].Body),
		"the body is exactly the mapped object")
}

func TestFormBodyWithValueMap(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{Table: "attendance", Body: transform.Body{
		Format: transform.Form,
		Fields: map[string]string{"employee_id": "new.employee_id", "date": "new.date", "status": "new.status"},
		Values: map[string]map[string]any{"status": {"Present": "P", "Absent": "A"}},
	}})
	for _, s := range []string{"Present", "Absent"} {
		c := attendance(s)
		c.Key += "/" + s
		_, err := k.Publish(t.Context(), c)
		require.NoError(t, err)
	}
	k.Drain(t)
	reqs := rcv.Requests()
	require.Len(t, reqs, 2)
	v, err := signer.NewVerifierWithOptions(signer.VerifierOptions{Now: k.Clock.Now}, w.Secret)
	require.NoError(t, err)
	var statuses, bodies []string
	for _, r := range reqs {
		require.NoError(t, r.VerifyErr)
		require.NoError(t, v.Verify(r.Header, r.Body), "the signature covers the encoded form")
		bodies = append(bodies, string(r.Body))
		assert.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
		v, err := url.ParseQuery(string(r.Body))
		require.NoError(t, err)
		assert.Equal(t, "E-1001", v.Get("employee_id"))
		assert.Equal(t, "2026-03-02", v.Get("date"))
		statuses = append(statuses, v.Get("status"))
	}
	assert.ElementsMatch(t, []string{"P", "A"}, statuses)
	assert.ElementsMatch(t, []string{"date=2026-03-02&employee_id=E-1001&status=P", "date=2026-03-02&employee_id=E-1001&status=A"}, bodies,
		"keys in order, so the same record encodes the same way")
}

func TestGETSendsAndSignsTheQueryString(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	// A second receiver checks with the signer's own middleware.
	var viaMiddleware []url.Values
	var secret string
	mw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := signer.NewVerifierWithOptions(signer.VerifierOptions{Now: k.Clock.Now}, secret)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			viaMiddleware = append(viaMiddleware, r.URL.Query())
		})).ServeHTTP(w, r)
	}))
	t.Cleanup(mw.Close)
	body := transform.Body{Format: transform.Form, Fields: map[string]string{
		"employee_id": "new.employee_id", "status": "new.status", "note": "'a b&c=d'"}}
	register(t, k, rcv, webhook.Webhook{Table: "attendance", Method: "GET", URL: rcv.URL + "/sync?token=abc#ignored", Body: body})
	w2 := register(t, k, rcv, webhook.Webhook{Name: "mw", Table: "attendance", Method: "GET", URL: mw.URL + "/sync", Body: body})
	secret = w2.Secret
	_, err := k.Publish(t.Context(), attendance("Present"))
	require.NoError(t, err)
	k.Drain(t)

	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, http.MethodGet, r.Method)
	assert.Empty(t, r.Body)
	assert.Empty(t, r.Header.Get("Content-Type"), "a GET has no body, so no content type")
	require.NoError(t, r.VerifyErr, "the signature covers the raw query string, the URL's own part included")
	u, err := url.Parse(r.URL)
	require.NoError(t, err)
	assert.Equal(t, "token=abc&employee_id=E-1001&note=a+b%26c%3Dd&status=Present", u.RawQuery)
	require.Len(t, viaMiddleware, 1, "signer.Middleware accepts it")
	assert.Equal(t, "E-1001", viaMiddleware[0].Get("employee_id"))
	assert.Len(t, rcv.Delivered(), 1)
}

func TestEnvelopeValueMapsAndSelection(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{Body: transform.Body{
		Select: []string{"status", "department"},
		Values: map[string]map[string]any{"status": {"Hired": "active", "Terminated": "inactive"}},
	}})
	_, err := k.Publish(t.Context(), update("E1",
		map[string]any{"status": "Offer", "department": "Ops", "phone": "1", "grade": 3},
		map[string]any{"status": "Hired", "department": "Sales", "phone": "2", "grade": 3}))
	require.NoError(t, err)
	k.Drain(t)
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	require.NoError(t, reqs[0].VerifyErr)
	e, d := decode(t, reqs[0].Body)
	assert.Equal(t, "employee.updated", e.Type, "still the envelope")
	assert.Equal(t, map[string]any{"status": "active", "department": "Sales"}, d.New)
	assert.Equal(t, map[string]any{"status": "Offer", "department": "Ops"}, d.Old, "unlisted values pass unchanged")
	assert.Equal(t, []string{"department", "status"}, d.Changed, "only selected fields are listed as changed")
}

func TestRedactedFieldsLeaveNothingBehind(t *testing.T) {
	t.Parallel()
	const ssn, iban, salary = "123-45-6789", "DE89370400440532013000", 7300
	k, rcv := setup(t, webhook.Config{})
	// The receiver echoes what it got, and adds what it knows itself.
	rcv.Respond(func(r webhooktest.Request) webhooktest.Answer {
		var got map[string]any
		_ = json.Unmarshal(r.Body, &got)
		echo, _ := json.Marshal(map[string]any{"received": got, "ssn": "987-65-4321", "profile": map[string]any{"ssn": "987-65-4321"}})
		return webhooktest.Answer{Status: http.StatusUnprocessableEntity, Header: http.Header{"Content-Type": {"application/json"}}, Body: string(echo)}
	})
	envelope := register(t, k, rcv, webhook.Webhook{Name: "it", Body: transform.Body{
		Redact: []string{"ssn", "bank.iban"}, Mask: []string{"salary"}}})
	mapped := register(t, k, rcv, webhook.Webhook{Name: "mapped", Body: transform.Body{
		Fields: map[string]string{"who": "new.name", "ssn": "new.ssn", "all": "new", "ctx": "context"},
		Redact: []string{"ssn", "bank.iban"}, Mask: []string{"salary"}}})
	_, err := k.Publish(t.Context(), webhook.Change{Table: "employee", Op: webhook.Update, Key: "E1",
		Old:     map[string]any{"name": "Ada", "ssn": ssn, "salary": 7000, "bank": map[string]any{"iban": iban, "bic": "COBADEFF"}},
		New:     map[string]any{"name": "Ada", "ssn": ssn, "salary": salary, "bank": map[string]any{"iban": iban, "bic": "COBADEFF"}},
		Context: map[string]any{"actor": "hr", "ssn": ssn}})
	require.NoError(t, err)
	require.Equal(t, 2, k.Drain(t))

	reqs := rcv.Requests()
	require.Len(t, reqs, 2)
	for _, r := range reqs {
		require.NoError(t, r.VerifyErr)
		for _, secret := range []string{ssn, iban, "7300", "7000"} {
			assert.NotContains(t, string(r.Body), secret, "the receiver never sees a redacted or masked value")
		}
		assert.NotContains(t, string(r.Body), `"ssn"`)
	}
	var env struct {
		Data data `json:"data"`
	}
	for _, r := range reqs {
		if json.Unmarshal(r.Body, &env) == nil && env.Data.Table != "" {
			break
		}
	}
	assert.Equal(t, map[string]any{"name": "Ada", "salary": "xxxxx", "bank": map[string]any{"bic": "COBADEFF"}}, env.Data.New)
	assert.Equal(t, []string{"salary"}, env.Data.Changed, "a masked field stays listed; a dropped one does not")
	assert.Equal(t, map[string]any{"actor": "hr"}, env.Data.Context)

	for _, w := range []webhook.Webhook{envelope, mapped} {
		ds, err := k.Deliveries(t.Context(), webhook.DeliveryQuery{WebhookID: w.ID})
		require.NoError(t, err)
		require.Len(t, ds, 1)
		as, err := k.Attempts(t.Context(), ds[0].ID)
		require.NoError(t, err)
		require.Len(t, as, 1)
		stored := as[0].ResponseBody + as[0].Error + ds[0].LastError
		for _, h := range as[0].RequestHeaders {
			stored += h
		}
		assert.NotEmpty(t, as[0].ResponseBody)
		for _, secret := range []string{ssn, iban, "987-65-4321", `"ssn"`, "7300"} {
			assert.NotContains(t, stored, secret, "the delivery log keeps no redacted field (%s)", w.Name)
		}
		assert.Contains(t, as[0].ResponseBody, `"received"`, "the rest of the answer is kept")
	}
}

func TestRedactionWithholdsAnAnswerThatRepeatsAValue(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	rcv.Script(webhooktest.Answer{Status: 400, Body: "national id 123-45-6789 is already in use"})
	register(t, k, rcv, webhook.Webhook{Body: transform.Body{Redact: []string{"national_id"}}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"national_id": "123-45-6789"}))
	require.NoError(t, err)
	k.Drain(t)
	d := onlyDelivery(t, k)
	as, err := k.Attempts(t.Context(), d.ID)
	require.NoError(t, err)
	assert.Equal(t, transform.Withheld, as[0].ResponseBody)
}

// checkCloudEvent validates one event against the CloudEvents 1.0 JSON
// event format: required attributes and their types, optional ones when
// present, attribute naming, and data as a JSON value (not base64).
func checkCloudEvent(t *testing.T, ev map[string]any) {
	t.Helper()
	str := func(name string, required bool) string {
		v, ok := ev[name]
		if !ok {
			assert.False(t, required, "required attribute %s is missing", name)
			return ""
		}
		s, isStr := v.(string)
		require.True(t, isStr, "%s must be a JSON string, got %T", name, v)
		assert.NotEmpty(t, s, "%s must not be empty", name)
		return s
	}
	assert.Equal(t, "1.0", str("specversion", true))
	str("id", true)
	src := str("source", true)
	_, err := url.Parse(src)
	assert.NoError(t, err, "source is a URI-reference")
	str("type", true)
	if ct := str("datacontenttype", false); ct != "" {
		_, _, err := mime.ParseMediaType(ct)
		assert.NoError(t, err, "datacontenttype is an RFC 2046 media type")
	}
	str("subject", false)
	if ts := str("time", false); ts != "" {
		_, err := time.Parse(time.RFC3339Nano, ts)
		assert.NoError(t, err, "time is RFC 3339")
	}
	if _, ok := ev["dataschema"]; ok {
		u, err := url.Parse(str("dataschema", false))
		assert.NoError(t, err)
		assert.True(t, u.IsAbs(), "dataschema is an absolute URI")
	}
	_, hasData := ev["data"]
	_, hasB64 := ev["data_base64"]
	assert.False(t, hasData && hasB64, "data and data_base64 are mutually exclusive")
	name := regexp.MustCompile(`^[a-z0-9]{1,20}$`)
	for k := range ev {
		if k == "data" || k == "data_base64" {
			continue
		}
		assert.Regexp(t, name, k, "attribute names are lower-case letters and digits")
	}
}

func TestCloudEventsSingle(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{Table: "attendance", Body: transform.Body{Format: transform.CloudEvents, Redact: []string{"hours"}}})
	c := attendance("Present")
	c.Context = map[string]any{"actor": "team-lead"}
	id, err := k.Publish(t.Context(), c)
	require.NoError(t, err)
	k.Drain(t)
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	require.NoError(t, r.VerifyErr)
	assert.Equal(t, "application/cloudevents+json", r.Header.Get("Content-Type"), "structured content mode")
	var ev map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &ev))
	checkCloudEvent(t, ev)
	assert.Equal(t, id, ev["id"], "the event id, which is also the webhook-id")
	assert.Equal(t, id, r.ID())
	assert.Equal(t, "herald://acme/attendance", ev["source"])
	assert.Equal(t, "attendance.inserted", ev["type"])
	assert.Equal(t, "E-1001/2026-03-02", ev["subject"], "subject is the record key")
	assert.Equal(t, c.Time.UTC().Format(time.RFC3339Nano), ev["time"])
	assert.Equal(t, "application/json", ev["datacontenttype"])
	assert.Equal(t, map[string]any{"event_id": id, "table": "attendance", "op": "INSERT", "key": "E-1001/2026-03-02", "tenant": "acme",
		"new":     map[string]any{"employee_id": "E-1001", "date": "2026-03-02", "status": "Present"},
		"context": map[string]any{"actor": "team-lead"}}, ev["data"], "data is the envelope's data object, shaped")
	assert.Len(t, ev, 8, "no attribute beyond the ones checked")
}

func TestCloudEventsBatchWithFieldsAndSource(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{Table: "attendance", MaxBatch: 5, Body: transform.Body{
		Format: transform.CloudEvents, Source: "https://hr.example.com/attendance",
		Fields: map[string]string{"employee": "new.employee_id", "status": "new.status"},
		Values: map[string]map[string]any{"status": {"Present": "P"}},
	}})
	var ids []string
	for _, e := range []string{"E-1", "E-2"} {
		c := attendance("Present")
		c.Key, c.New["employee_id"] = e+"/2026-03-02", e
		id, err := k.Publish(t.Context(), c)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	k.Drain(t)
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	require.NoError(t, reqs[0].VerifyErr)
	assert.Equal(t, "application/cloudevents-batch+json", reqs[0].Header.Get("Content-Type"))
	var evs []map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].Body, &evs), "a batch is a JSON array of events")
	require.Len(t, evs, 2)
	for i, ev := range evs {
		checkCloudEvent(t, ev)
		assert.Equal(t, ids[i], ev["id"], "each event keeps its own id")
		assert.Equal(t, "https://hr.example.com/attendance", ev["source"])
		assert.Equal(t, map[string]any{"employee": []string{"E-1", "E-2"}[i], "status": "P"}, ev["data"])
	}
	assert.NotContains(t, ids, reqs[0].ID(), "the batch travels under its own webhook-id")
}

func TestCloudEventsDefaultSourceEscapes(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{Table: "leave request", Body: transform.Body{Format: transform.CloudEvents}})
	_, err := k.Publish(t.Context(), webhook.Change{Table: "leave request", Op: webhook.Delete, Key: "L1", Old: map[string]any{"a": 1}})
	require.NoError(t, err)
	k.Drain(t)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(rcv.Requests()[0].Body, &ev))
	checkCloudEvent(t, ev)
	assert.Equal(t, "herald://default/leave%20request", ev["source"], "no tenant: default; each part escaped")
	assert.Equal(t, "leave request.deleted", ev["type"])
}

func TestFieldsBatchIsAnArrayOfObjects(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{MaxBatch: 10, Body: transform.Body{Fields: map[string]string{"id": "key", "dept": "new.department"}}})
	for _, key := range []string{"E1", "E2", "E3"} {
		_, err := k.Publish(t.Context(), update(key, nil, map[string]any{"department": "Sales"}))
		require.NoError(t, err)
	}
	k.Drain(t)
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	require.NoError(t, reqs[0].VerifyErr)
	assert.JSONEq(t, `[{"id":"E1","dept":"Sales"},{"id":"E2","dept":"Sales"},{"id":"E3","dept":"Sales"}]`, string(reqs[0].Body))
}

// A Fields mapping can reproduce another product's envelope, so herald can
// stand in for it without the receivers changing.
func TestFieldsReproduceAnotherProductsEnvelope(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{Body: transform.Body{Fields: map[string]string{
		"event_time":      "time.Format('2006-01-02T15:04:05Z07:00')",
		"event_type":      "{'INSERT': 'create', 'UPDATE': 'update', 'DELETE': 'delete'}[op] + '_' + table",
		"current_context": "{'tenant': tenant, 'actor': context?.actor, 'request_id': context?.request_id}",
		"data":            "op == 'DELETE' ? old : new",
	}}})
	c := update("E-1001", map[string]any{"department": "Ops"}, map[string]any{"department": "Sales"})
	c.Tenant, c.Time = "acme", webhooktest.Epoch
	c.Context = map[string]any{"actor": "hr-admin", "request_id": "req-9"}
	_, err := k.Publish(t.Context(), c)
	require.NoError(t, err)
	k.Drain(t)
	reqs := rcv.Requests()
	require.Len(t, reqs, 1)
	require.NoError(t, reqs[0].VerifyErr)
	assert.JSONEq(t, `{
		"event_time": "2026-03-02T09:00:00Z",
		"event_type": "update_employee",
		"current_context": {"tenant": "acme", "actor": "hr-admin", "request_id": "req-9"},
		"data": {"department": "Sales"}
	}`, string(reqs[0].Body))
}

func TestRegisterReportsBodyErrorsWithPositions(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	_, err := k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "attendance", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL,
		Body: transform.Body{Format: transform.Form, Fields: map[string]string{
			"status": "new.status == 'Present' ? 'P' :",
			"date":   "neww.date",
		}}})
	require.Error(t, err)
	assert.ErrorIs(t, err, webhook.ErrInvalidWebhook)
	assert.ErrorIs(t, err, transform.ErrInvalidBody)
	var fe *transform.FieldError
	require.ErrorAs(t, err, &fe, "an admin UI can point at the field")
	assert.Contains(t, err.Error(), `body: fields["date"]: unknown name neww (line 1, column 1)`)
	assert.Contains(t, err.Error(), `fields["status"]: unexpected token EOF (line 1, column 31)`)

	for name, b := range map[string]transform.Body{
		"json without fields":   {Format: transform.JSON},
		"values for no field":   {Fields: map[string]string{"a": "1"}, Values: map[string]map[string]any{"b": {"x": 1}}},
		"source on an envelope": {Source: "/hr"},
		"redact and mask":       {Redact: []string{"ssn"}, Mask: []string{"ssn"}},
	} {
		_, err := k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL, Body: b})
		assert.ErrorIs(t, err, webhook.ErrInvalidWebhook, name)
	}
	_, err = k.Register(t.Context(), webhook.Webhook{Name: "n", Table: "t", Ops: []webhook.Op{webhook.Insert}, URL: rcv.URL, MaxBatch: 2,
		Body: transform.Body{Format: transform.CloudEvents}})
	assert.NoError(t, err, "CloudEvents batch")
}

func TestMappingThatFailsAtSendTimeIsDead(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	register(t, k, rcv, webhook.Webhook{Body: transform.Body{Fields: map[string]string{"raise": "new.salary * 1.1"}}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"salary": "confidential"}))
	require.NoError(t, err)
	k.Settle(t, 5)
	assert.Empty(t, rcv.Requests())
	d := onlyDelivery(t, k)
	assert.Equal(t, webhook.Dead, d.Status, "the same record fails the same way every time: fix the mapping, then replay")
	assert.Equal(t, 1, d.Attempts)
	assert.Contains(t, d.LastError, `body mapping: fields["raise"]`)
	assert.True(t, strings.Contains(d.LastError, "line 1"), d.LastError)
	assert.False(t, errors.Is(errors.New(d.LastError), transform.ErrInvalidBody))
}

func TestBodyEditTakesEffectOnNextAttempt(t *testing.T) {
	t.Parallel()
	k, rcv := setup(t, webhook.Config{})
	w := register(t, k, rcv, webhook.Webhook{})
	rcv.Fail(1, http.StatusInternalServerError)
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"department": "Sales"}))
	require.NoError(t, err)
	k.Drain(t)
	w.Body = transform.Body{Format: transform.Form, Fields: map[string]string{"dept": "new.department"}}
	_, err = k.Update(t.Context(), w)
	require.NoError(t, err)
	k.Settle(t, 5)
	reqs := rcv.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "application/json", reqs[0].Header.Get("Content-Type"))
	assert.Equal(t, "dept=Sales", string(reqs[1].Body), "the retry uses the new mapping")
	require.NoError(t, reqs[1].VerifyErr)
}

func TestLargeIntegersKeepEveryDigit(t *testing.T) {
	t.Parallel()
	reg := transform.NewRegistry()
	require.NoError(t, reg.RegisterAfter("noop", transform.AfterFunc(func(context.Context, *transform.Result) error { return nil })))
	var seen any
	require.NoError(t, reg.RegisterBefore("look", transform.BeforeFunc(func(_ context.Context, m *transform.Message) error {
		seen = m.Records[0].New["small"]
		return nil
	})))
	k, rcv := setup(t, webhook.Config{Hooks: reg})
	register(t, k, rcv, webhook.Webhook{Name: "envelope", Before: []string{"look"}, After: []string{"noop"}})
	register(t, k, rcv, webhook.Webhook{Name: "json", Body: transform.Body{Fields: map[string]string{"id": "new.id", "small": "new.small * 2"}}})
	register(t, k, rcv, webhook.Webhook{Name: "form", Body: transform.Body{Format: transform.Form, Fields: map[string]string{"id": "new.id"}}})
	_, err := k.Publish(t.Context(), update("E1", nil, map[string]any{"id": int64(1234567890123456789), "small": 21, "price": 0.1}))
	require.NoError(t, err)
	require.Equal(t, 3, k.Drain(t))
	reqs := rcv.Requests()
	require.Len(t, reqs, 3)
	for _, r := range reqs {
		assert.Contains(t, string(r.Body), "1234567890123456789", "an id beyond 2^53 is sent digit for digit")
	}
	assert.Equal(t, 21.0, seen, "numbers float64 holds exactly are float64, as encoding/json gives them")
	bodies := map[string]bool{}
	for _, r := range reqs {
		bodies[string(r.Body)] = true
	}
	assert.True(t, bodies[`{"id":1234567890123456789,"small":42}`], "expressions compute on ordinary numbers: %v", bodies)
	assert.True(t, bodies["id=1234567890123456789"])
}
