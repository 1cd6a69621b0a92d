package transform

import (
	"context"
	"maps"
)

// Enrich returns a before hook that joins the application's own data into
// every record of a message, as the "view" of an HR product does: for
// each record it calls lookup and adds the fields it returns to the
// record's New (or, for a deletion, to its Old). The record's own fields
// win over looked-up ones of the same name, so a join never rewrites the
// change itself; Changed is left as it is.
//
// A lookup error fails the attempt like any before hook error: return
// ErrSkip to skip the message, Permanent(err) to fail it for good, or
// another error to retry. Lookups run one record at a time; a hook that
// can fetch a whole batch in one query is better written by hand.
func Enrich(lookup func(ctx context.Context, r Record) (map[string]any, error)) Before {
	return BeforeFunc(func(ctx context.Context, m *Message) error {
		for i := range m.Records {
			r := &m.Records[i]
			extra, err := lookup(ctx, *r)
			if err != nil {
				return err
			}
			if len(extra) == 0 {
				continue
			}
			target := &r.New
			if r.New == nil {
				target = &r.Old
			}
			joined := maps.Clone(extra)
			maps.Copy(joined, *target)
			*target = joined
		}
		return nil
	})
}
