package postgres

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// appendJSONObject must mean, to a JSON reader, what json.Marshal's
// encoding of the same map means.
func checkJSONObject(t *testing.T, m map[string]string) {
	t.Helper()
	got := appendJSONObject(nil, m)
	require.True(t, json.Valid(got), "%q", got)
	want, err := json.Marshal(m)
	require.NoError(t, err)
	var a, b map[string]string
	require.NoError(t, json.Unmarshal(got, &a))
	require.NoError(t, json.Unmarshal(want, &b))
	assert.Equal(t, b, a, "%q", got)
}

func TestAppendJSONObjectMeansWhatMarshalDoes(t *testing.T) {
	t.Parallel()
	checkJSONObject(t, map[string]string{})
	checkJSONObject(t, map[string]string{
		"Content-Type":       "application/json",
		"X-Herald-Signature": "v1,abc=",
		`quote"d`:            `back\slash`,
		"ctl":                "a\x00b\x01c\x1f\n\r\t",
		"html":               "<a href='x'>&amp;</a>",
		"utf8":               "Zoë – 日本 \u2028\u2029 🎉",
		"bad":                "x\xffy\xc3(z\xed\xa0\x80",
		"":                   "",
	})
}

func FuzzAppendJSONObject(f *testing.F) {
	f.Add("Authorization", "Bearer ***")
	f.Add("a\"b", "c\\d\x00\x7f\xff")
	f.Fuzz(func(t *testing.T, k, v string) {
		checkJSONObject(t, map[string]string{k: v, v: k})
	})
}
