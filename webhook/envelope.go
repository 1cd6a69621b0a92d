package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/transform"
)

// envelopeType is the type of a message, as its table and a suffix: the
// type of its records when they agree, else "<table>.changed". Kept in two
// parts, it is written into the envelope without building a string.
func envelopeType(table string, ops func(i int) string, n int) (string, string) {
	op := ops(0)
	for i := 1; i < n; i++ {
		if ops(i) != op {
			return table, ".changed"
		}
	}
	switch Op(op) {
	case Insert:
		return table, ".inserted"
	case Update:
		return table, ".updated"
	case Delete:
		return table, ".deleted"
	}
	return table, ".changed"
}

// envelopeFromStored builds the default envelope from the stored payloads
// without decoding them: each event is encoded once, whatever the number
// of webhooks it goes to.
func envelopeFromStored(m store.Message) []byte {
	return appendEnvelope(make([]byte, 0, envelopeSize(m)), m)
}

// envelopeSize is about the size of m's default envelope.
func envelopeSize(m store.Message) int {
	size := 128
	for _, e := range m.Events {
		size += len(e.Payload) + 1
	}
	return size
}

// appendEnvelope appends m's default envelope to b.
func appendEnvelope(b []byte, m store.Message) []byte {
	var ts time.Time
	for _, e := range m.Events {
		if e.Time.After(ts) {
			ts = e.Time
		}
	}
	table, suffix := envelopeType(m.Events[0].Table, func(i int) string { return m.Events[i].Op }, len(m.Events))
	b = envelopeHead(b, m.ID, table, suffix, ts)
	if m.Batch {
		b = append(b, '[')
		for i, e := range m.Events {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, e.Payload...)
		}
		b = append(b, ']')
	} else {
		b = append(b, m.Events[0].Payload...)
	}
	return append(b, '}')
}

// bodyBuf holds the envelope of one attempt. The attempt and every request
// body reading it hold a reference; when the last lets go, the buffer
// goes back to the pool for another attempt. A body the transport never
// closes keeps its buffer out of the pool, for the collector: only a
// reference let go too soon could do harm, and none is.
type bodyBuf struct {
	b    []byte
	refs atomic.Int32
}

var bodyBufs = sync.Pool{New: func() any { return new(bodyBuf) }}

// maxPooledBody keeps one huge envelope from pinning its buffer in the
// pool.
const maxPooledBody = 256 << 10

// pooledEnvelope returns a buffer holding m's envelope and one reference,
// the caller's.
func pooledEnvelope(m store.Message) *bodyBuf {
	p := bodyBufs.Get().(*bodyBuf)
	p.b = appendEnvelope(slices.Grow(p.b[:0], envelopeSize(m)), m)
	p.refs.Store(1)
	return p
}

// release lets go of one reference.
func (p *bodyBuf) release() {
	if p == nil || p.refs.Add(-1) != 0 {
		return
	}
	if cap(p.b) <= maxPooledBody {
		bodyBufs.Put(p)
	}
}

// attach makes p the body of req, as http.NewRequest makes a bytes.Reader
// one: a known length, and a way to read it again. The transport closes
// each body it reads (net/http's RoundTripper contract: the body may be
// reused once closed).
func (p *bodyBuf) attach(req *http.Request) {
	req.ContentLength = int64(len(p.b))
	req.Body = p.reader()
	req.GetBody = func() (io.ReadCloser, error) { return p.reader(), nil }
}

func (p *bodyBuf) reader() io.ReadCloser {
	p.refs.Add(1)
	return &pooledBody{Reader: bytes.NewReader(p.b), buf: p}
}

// pooledBody is a request body over a bodyBuf; closing it, once, lets go
// of its reference.
type pooledBody struct {
	*bytes.Reader
	buf    *bodyBuf
	closed atomic.Bool
}

func (b *pooledBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.buf.release()
	}
	return nil
}

// envelopeFromRecords builds the default envelope from records a hook may
// have changed.
func envelopeFromRecords(msg *transform.Message) ([]byte, error) {
	if len(msg.Records) == 0 {
		return nil, errors.New("no records to send")
	}
	var ts time.Time
	data := make([]json.RawMessage, len(msg.Records))
	for i, r := range msg.Records {
		if r.Time.After(ts) {
			ts = r.Time
		}
		p, err := marshalPayload(&payload{EventID: r.EventID, Table: r.Table, Op: r.Op, Key: r.Key, New: r.New, Old: r.Old,
			Changed: r.Changed, Tenant: r.Tenant, Context: r.Context})
		if err != nil {
			return nil, err
		}
		data[i] = p
	}
	table, suffix := envelopeType(msg.Records[0].Table, func(i int) string { return msg.Records[i].Op }, len(msg.Records))
	b := envelopeHead(make([]byte, 0, 256), msg.ID, table, suffix, ts)
	if msg.Batch {
		b = append(b, '[')
		for i, p := range data {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, p...)
		}
		b = append(b, ']')
	} else {
		b = append(b, data[0]...)
	}
	return append(b, '}'), nil
}

func envelopeHead(b []byte, id, table, suffix string, ts time.Time) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"type":`...)
	if plainJSON(table) {
		b = append(b, '"')
		b = append(b, table...)
		b = append(b, suffix...)
		b = append(b, '"')
	} else {
		b = appendJSONString(b, table+suffix)
	}
	b = append(b, `,"timestamp":"`...)
	b = ts.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `","data":`...)
}

// plainJSON reports whether s is written in JSON as it is, between quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	if !plainJSON(s) {
		q, _ := json.Marshal(s)
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
