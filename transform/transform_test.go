package transform_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/transform"
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := transform.NewRegistry()
	noop := transform.BeforeFunc(func(context.Context, *transform.Message) error { return nil })
	log := transform.AfterFunc(func(context.Context, *transform.Result) error { return nil })
	require.NoError(t, r.RegisterBefore("enrich", noop))
	require.NoError(t, r.RegisterAfter("enrich", log), "before and after hooks have separate names")
	assert.ErrorIs(t, r.RegisterBefore("enrich", noop), transform.ErrDuplicateHook)
	assert.ErrorIs(t, r.RegisterAfter("enrich", log), transform.ErrDuplicateHook)
	assert.Error(t, r.RegisterBefore("", noop))
	assert.Error(t, r.RegisterBefore("nil", nil))
	assert.Error(t, r.RegisterBefore("nil func", transform.BeforeFunc(nil)))
	assert.Error(t, r.RegisterAfter("nil func", transform.AfterFunc(nil)))

	_, err := r.LookupBefore("enrich")
	assert.NoError(t, err)
	_, err = r.LookupAfter("nobody")
	assert.ErrorIs(t, err, transform.ErrUnknownHook)
	var none *transform.Registry
	_, err = none.LookupBefore("enrich")
	assert.ErrorIs(t, err, transform.ErrUnknownHook, "a nil registry knows no hook")
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("employee record is gone")
	err := transform.Permanent(base)
	assert.True(t, transform.IsPermanent(err))
	assert.True(t, transform.IsPermanent(errorsJoin("context", err)), "wrapped further, still permanent")
	assert.ErrorIs(t, err, base)
	assert.Equal(t, base.Error(), err.Error())
	assert.False(t, transform.IsPermanent(base))
	assert.NoError(t, transform.Permanent(nil))
}

func errorsJoin(msg string, err error) error { return errors.Join(errors.New(msg), err) }

func TestSetHeaderRefusesReservedNames(t *testing.T) {
	t.Parallel()
	var m transform.Message
	for _, name := range []string{"webhook-id", "Webhook-Signature", "webhook-timestamp", "Host", "content-type",
		"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer",
		"Proxy-Authorization", " Host "} {
		assert.Error(t, m.SetHeader(name, "x"), name)
		assert.True(t, transform.ReservedHeader(name), name)
	}
	assert.Error(t, m.SetHeader("X-Ok", "a\r\nX-Evil: 1"), "CR/LF in a value")
	assert.Error(t, m.SetHeader("Bad Name", "x"))
	assert.Error(t, m.SetHeader("", "x"))
	assert.Empty(t, m.Header, "nothing refused was set")
	require.NoError(t, m.SetHeader("x-sync-source", "instance-b"))
	assert.Equal(t, http.Header{"X-Sync-Source": {"instance-b"}}, m.Header)
	assert.False(t, transform.ReservedHeader("Authorization"), "credentials are the webhook's business")
}

func TestCloneIsDeep(t *testing.T) {
	t.Parallel()
	m := &transform.Message{ID: "m1", Header: http.Header{"X-A": {"1"}}, Records: []transform.Record{employee()}}
	c := m.Clone()
	c.Header.Set("X-A", "2")
	c.Records[0].New["name"] = "Grace"
	c.Records[0].New["bank"].(map[string]any)["bic"] = "changed"
	c.Records[0].New["children"].([]any)[1] = "changed"
	c.Records[0].Changed[0] = "changed"
	assert.Equal(t, "1", m.Header.Get("X-A"))
	assert.Equal(t, employee(), m.Records[0])

	res := &transform.Result{Message: m, Body: []byte("ok"), Header: http.Header{"A": {"b"}}}
	rc := res.Clone()
	rc.Body[0] = 'X'
	rc.Message.Records[0].New["name"] = "Grace"
	assert.Equal(t, "ok", string(res.Body))
	assert.Equal(t, "Ada", m.Records[0].New["name"])
	var nilMsg *transform.Message
	assert.Nil(t, nilMsg.Clone())
}

func TestEnrich(t *testing.T) {
	t.Parallel()
	directory := map[string]map[string]any{"E-1": {"name": "Ada Lovelace", "department": "Engineering", "status": "from the directory"}}
	hook := transform.Enrich(func(_ context.Context, r transform.Record) (map[string]any, error) {
		id, _ := r.New["employee_id"].(string)
		if id == "" {
			id, _ = r.Old["employee_id"].(string)
		}
		if id == "E-404" {
			return nil, transform.Permanent(errors.New("no such employee"))
		}
		return directory[id], nil
	})
	m := &transform.Message{Records: []transform.Record{
		{Op: "INSERT", New: map[string]any{"employee_id": "E-1", "status": "Present"}},
		{Op: "DELETE", Old: map[string]any{"employee_id": "E-1"}},
		{Op: "INSERT", New: map[string]any{"employee_id": "E-2"}},
	}}
	require.NoError(t, hook.Before(t.Context(), m))
	assert.Equal(t, map[string]any{"employee_id": "E-1", "status": "Present", "name": "Ada Lovelace", "department": "Engineering"},
		m.Records[0].New, "the record's own fields win")
	assert.Equal(t, "Engineering", m.Records[1].Old["department"], "a deletion is enriched in old")
	assert.Nil(t, m.Records[1].New)
	assert.Equal(t, map[string]any{"employee_id": "E-2"}, m.Records[2].New, "nothing found, nothing added")
	assert.Equal(t, "from the directory", directory["E-1"]["status"], "the looked-up map is not changed")

	err := hook.Before(t.Context(), &transform.Message{Records: []transform.Record{{New: map[string]any{"employee_id": "E-404"}}}})
	assert.True(t, transform.IsPermanent(err))
}
