package webhook

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/heraldhr/herald/condition"
	"github.com/heraldhr/herald/store"
	"github.com/heraldhr/herald/store/memory"
)

// shape describes a snapshot: what a full reload would build.
func shape(defs *definitions) map[string]any {
	out := map[string]any{"version": defs.version}
	for id, c := range defs.byID {
		out["id "+id] = fmt.Sprint(c.Version, c.Table, c.Tenant, c.Disabled)
	}
	for t, ws := range defs.byTable {
		var ids []string
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		out["table "+t] = ids
	}
	for t, r := range defs.routes {
		out["conds "+t] = len(r.conds)
		for i, o := range r.ops {
			var any []string
			for _, x := range o.any {
				any = append(any, fmt.Sprint(x.w.ID, "/", x.slot))
			}
			out[fmt.Sprint("any ", t, i)] = any
			for ten, rs := range o.tenant {
				var ids []string
				for _, x := range rs {
					ids = append(ids, fmt.Sprint(x.w.ID, "/", x.slot))
				}
				out[fmt.Sprint("tenant ", t, i, ten)] = ids
			}
		}
	}
	return out
}

// countingStore counts full reloads.
type countingStore struct {
	store.Store
	reloads int
}

func (s *countingStore) Webhooks(ctx context.Context) ([]store.Webhook, error) {
	s.reloads++
	return s.Store.Webhooks(ctx)
}

// TestPatchedSnapshotEqualsReload: after registrations, updates, moves and
// deletes, the patched snapshot is what a full reload builds, and no
// reload happened.
func TestPatchedSnapshotEqualsReload(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: memory.New()}
	d, err := New(Config{Store: st, AllowPrivateNetworks: true})
	require.NoError(t, err)
	ctx := t.Context()
	_, err = d.current(ctx, true) // the first load
	require.NoError(t, err)
	st.reloads = 0
	var ws []Webhook
	for i := range 12 {
		w := Webhook{ID: fmt.Sprintf("w%02d", 11-i), Name: "n", Table: fmt.Sprint("t", i%3), Ops: []Op{Insert, Update},
			URL: "http://127.0.0.1/x", Tenant: []string{"", "acme"}[i%2]}
		if i%4 == 0 {
			w.When = condition.Rule{Expr: `new.a == 1`}
		}
		w, err := d.Register(ctx, w)
		require.NoError(t, err)
		ws = append(ws, w)
	}
	ws[0].Table = "t2"
	_, err = d.Update(ctx, ws[0])
	require.NoError(t, err)
	_, err = d.SetDisabled(ctx, ws[1].ID, true)
	require.NoError(t, err)
	require.NoError(t, d.Delete(ctx, ws[2].ID))
	assert.Zero(t, st.reloads, "saves and deletes patch the snapshot")

	patched := shape(d.defs.Load())
	d.defs.Store(nil)
	reloaded, err := d.current(ctx, true)
	require.NoError(t, err)
	assert.Equal(t, shape(reloaded), patched)
}

// TestSnapshotReloadsWhenAnotherChangeCameBetween: a change saved behind
// the dispatcher's back (another process) makes the next save reload.
func TestSnapshotReloadsWhenAnotherChangeCameBetween(t *testing.T) {
	t.Parallel()
	st := &countingStore{Store: memory.New()}
	d, err := New(Config{Store: st, AllowPrivateNetworks: true})
	require.NoError(t, err)
	other, err := New(Config{Store: st, AllowPrivateNetworks: true})
	require.NoError(t, err)
	ctx := t.Context()
	a, err := d.Register(ctx, Webhook{Name: "a", Table: "t", Ops: []Op{Insert}, URL: "http://127.0.0.1/a"})
	require.NoError(t, err)
	b, err := other.Register(ctx, Webhook{Name: "b", Table: "t", Ops: []Op{Insert}, URL: "http://127.0.0.1/b"})
	require.NoError(t, err)
	st.reloads = 0
	a.Name = "a2"
	_, err = d.Update(ctx, a)
	require.NoError(t, err)
	assert.Equal(t, 1, st.reloads, "the version moved by two: reload")
	defs := d.defs.Load()
	require.Contains(t, defs.byID, b.ID, "the other process's webhook is seen")
	assert.Equal(t, "a2", defs.byID[a.ID].Name)
}
