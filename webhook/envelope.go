package webhook

import (
	"encoding/json"
	"errors"
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
	size := 128
	for _, e := range m.Events {
		size += len(e.Payload) + 1
	}
	var ts time.Time
	for _, e := range m.Events {
		if e.Time.After(ts) {
			ts = e.Time
		}
	}
	table, suffix := envelopeType(m.Events[0].Table, func(i int) string { return m.Events[i].Op }, len(m.Events))
	b := make([]byte, 0, size)
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
