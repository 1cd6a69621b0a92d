package memory

import (
	"hash/maphash"
	"iter"
	"maps"

	"github.com/heraldhr/herald/store"
)

// index finds the values it holds (rows, events) by their key. It keys
// them by a 64-bit hash of the key rather than by the key: the map, which
// holds everything the store keeps, then grows by rehashing 8-byte keys
// instead of ids of 36 bytes, and its entries hold no string for the
// garbage collector to follow. A value whose key hashes like another's
// (not expected in a store's life, but possible) is kept by key in a map
// of its own.
type index[K comparable, V comparable] struct {
	hash   func(K) uint64
	key    func(V) K
	byHash map[uint64]V
	clash  map[K]V
}

func newIndex[K comparable, V comparable](key func(V) K) index[K, V] {
	seed := maphash.MakeSeed()
	return index[K, V]{hash: func(k K) uint64 { return maphash.Comparable(seed, k) }, key: key,
		byHash: map[uint64]V{}, clash: map[K]V{}}
}

func rowID(r *row) string { return r.id }

func eventKeyOf(e *store.Event) eventKey { return eventKey{e.Tenant, e.ID} }

func (x *index[K, V]) get(k K) (V, bool) {
	if v, ok := x.byHash[x.hash(k)]; ok && x.key(v) == k {
		return v, true
	}
	v, ok := x.clash[k]
	return v, ok
}

// add enters v unless a value with its key is in; it reports whether it
// did.
func (x *index[K, V]) add(v V) bool {
	k := x.key(v)
	h := x.hash(k)
	other, ok := x.byHash[h]
	switch {
	case !ok:
		x.byHash[h] = v
		return true
	case x.key(other) == k:
		return false
	}
	if _, ok := x.clash[k]; ok {
		return false
	}
	x.clash[k] = v
	return true
}

// remove takes v out, if it is in.
func (x *index[K, V]) remove(v V) {
	k := x.key(v)
	h := x.hash(k)
	if other, ok := x.byHash[h]; !ok || other != v {
		if c, ok := x.clash[k]; ok && c == v {
			delete(x.clash, k)
		}
		return
	}
	delete(x.byHash, h)
	// A value that lost the slot to v takes it, so get looks in clash only
	// when the slot holds another key.
	for ck, c := range x.clash {
		if x.hash(ck) == h {
			delete(x.clash, ck)
			x.byHash[h] = c
			return
		}
	}
}

// values yields every value, in no order. remove may be called
// meanwhile; a value it moves out of clash may then be missed.
func (x *index[K, V]) values() iter.Seq[V] {
	return func(yield func(V) bool) {
		clash := maps.Clone(x.clash)
		for _, v := range x.byHash {
			if !yield(v) {
				return
			}
		}
		for _, v := range clash {
			if !yield(v) {
				return
			}
		}
	}
}
