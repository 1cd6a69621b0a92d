package admin

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
)

// cursor is a position in a list, bound to the list's kind, filters and
// caller, so a cursor of one query cannot be used with another. It is
// opaque to clients: unpadded URL-safe base64 of a small JSON object.
type cursor struct {
	Kind string `json:"k"`
	Seq  int64  `json:"s,omitempty"` // deliveries: the last sequence seen
	ID   string `json:"i,omitempty"` // webhooks: the last id seen
	Hash string `json:"h"`
}

func queryHash(kind string, parts ...string) string {
	h := fnv.New64a()
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

func encodeCursor(c cursor, parts ...string) string {
	c.Hash = queryHash(c.Kind, parts...)
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads s as a cursor of the given kind and query; "" is
// the start.
func decodeCursor(s, kind string, parts ...string) (cursor, error) {
	if s == "" {
		return cursor{Kind: kind}, nil
	}
	bad := badRequest("invalid_query", "cursor", "cursor is not a cursor of this query (keep the other parameters as they were)")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	var c cursor
	if json.Unmarshal(raw, &c) != nil || c.Kind != kind || c.Hash != queryHash(kind, parts...) || c.Seq < 0 {
		return cursor{}, bad
	}
	return c, nil
}
