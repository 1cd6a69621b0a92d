package sqlite

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSeqListIsJSON checks that seqList writes what json.Marshal would.
func TestSeqListIsJSON(t *testing.T) {
	t.Parallel()
	for _, seqs := range [][]int64{nil, {}, {7}, {1, 22, 333}, {-1, 0, math.MaxInt64, math.MinInt64}} {
		want, err := json.Marshal(append([]int64{}, seqs...))
		assert.NoError(t, err)
		assert.Equal(t, string(want), seqList(seqs), "%v", seqs)
	}
}

// TestHeadersArgIsJSON checks that headersArg writes what json.Marshal
// would, for plain headers and for those it hands to json.Marshal.
func TestHeadersArgIsJSON(t *testing.T) {
	t.Parallel()
	for _, h := range []map[string]string{
		nil,
		{},
		{"Content-Type": "application/json"},
		{"Webhook-Id": "msg_1", "Content-Type": "application/json", "Authorization": "Bearer ***", "A": ""},
		{"X-Quote": `say "hi"`},
		{"X-Slash": `a\b`},
		{"X-Html": "<b>&</b>"},
		{"X-Control": "a\tb\nc"},
		{"X-Utf8": "café ☕"},
		{"X-Bad": "\xff\xfe"},
		{"X-Del": "\x7f"},
	} {
		want, err := json.Marshal(h)
		assert.NoError(t, err)
		assert.Equal(t, string(want), headersArg(h), "%q", h)
	}
}
