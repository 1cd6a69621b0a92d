package memory

import "hash/maphash"

// rowIndex finds rows by delivery id. It keys them by a 64-bit hash of
// the id rather than by the id: the map, which holds every delivery the
// store keeps, then grows by rehashing 8-byte keys instead of 36-byte
// strings, and its entries hold no string for the garbage collector to
// follow. An id whose hash is another's (not expected in a store's life,
// but possible) is kept by id in a map of its own.
type rowIndex struct {
	hash   func(id string) uint64
	byHash map[uint64]*row
	clash  map[string]*row
}

func newRowIndex() rowIndex {
	seed := maphash.MakeSeed()
	return rowIndex{hash: func(id string) uint64 { return maphash.String(seed, id) },
		byHash: map[uint64]*row{}, clash: map[string]*row{}}
}

func (x *rowIndex) get(id string) (*row, bool) {
	if r := x.byHash[x.hash(id)]; r != nil && r.id == id {
		return r, true
	}
	r, ok := x.clash[id]
	return r, ok
}

// add enters r unless a row with its id is in; it reports whether it did.
func (x *rowIndex) add(r *row) bool {
	h := x.hash(r.id)
	other := x.byHash[h]
	switch {
	case other == nil:
		x.byHash[h] = r
		return true
	case other.id == r.id:
		return false
	}
	if _, ok := x.clash[r.id]; ok {
		return false
	}
	x.clash[r.id] = r
	return true
}

// remove takes r out, if it is in.
func (x *rowIndex) remove(r *row) {
	h := x.hash(r.id)
	if x.byHash[h] != r {
		if x.clash[r.id] == r {
			delete(x.clash, r.id)
		}
		return
	}
	delete(x.byHash, h)
	// A row that lost the slot to r takes it, so get looks in clash only
	// when the slot holds another id.
	for id, c := range x.clash {
		if x.hash(id) == h {
			delete(x.clash, id)
			x.byHash[h] = c
			return
		}
	}
}
