package webhook

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/heraldhr/herald/store"
)

// afterSave brings the snapshot of compiled definitions up to date after
// this process saved row. When the store's version moved by exactly one
// since the snapshot was taken, the save was the only change, so the
// snapshot is patched with row alone: registering n webhooks costs O(n)
// compilations instead of O(n²) reloads. Otherwise every definition is
// reloaded, as any process does when the version moves.
func (d *Dispatcher) afterSave(ctx context.Context, row store.Webhook) error {
	if d.patch(ctx, row.ID, &row) {
		return nil
	}
	_, err := d.current(ctx, true)
	return err
}

// afterDelete is afterSave for a deleted definition.
func (d *Dispatcher) afterDelete(ctx context.Context, id string) error {
	if d.patch(ctx, id, nil) {
		return nil
	}
	_, err := d.current(ctx, true)
	return err
}

// patch replaces (row != nil) or removes (row == nil) the definition id in
// the current snapshot, if the store's version is exactly one past it. It
// reports whether it did. Asking the store for its version, rather than
// trusting row.Version, keeps this right for any store whose version grows
// with every change, as the contract requires.
func (d *Dispatcher) patch(ctx context.Context, id string, row *store.Webhook) bool {
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	prev := d.defs.Load()
	if prev == nil {
		return false
	}
	v, err := d.store.WebhooksVersion(ctx)
	if err != nil || v != prev.version+1 || (row != nil && row.Version != v) {
		return false
	}
	next := &definitions{version: v, byID: maps.Clone(prev.byID), byTable: maps.Clone(prev.byTable)}
	var tables []string
	if old, ok := prev.byID[id]; ok {
		delete(next.byID, id)
		next.byTable[old.Table] = slices.DeleteFunc(slices.Clone(next.byTable[old.Table]), func(c *compiled) bool { return c.ID == id })
		if len(next.byTable[old.Table]) == 0 {
			delete(next.byTable, old.Table)
		}
		tables = append(tables, old.Table)
	}
	if row != nil {
		c := d.compile(*row)
		next.byID[id] = c
		// Keep each table's webhooks in id order, as a reload does.
		list := next.byTable[c.Table]
		i, _ := slices.BinarySearchFunc(list, id, func(e *compiled, id string) int { return strings.Compare(e.ID, id) })
		next.byTable[c.Table] = slices.Insert(slices.Clone(list), i, c)
		tables = append(tables, c.Table)
	}
	next.reindex(prev, tables)
	d.defs.Store(next)
	d.checkedAt.Store(time.Now().UnixNano())
	d.tokens.retain(next)
	return true
}
