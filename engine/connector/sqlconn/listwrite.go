package sqlconn

// The writes of list properties as child rows, and of object columns as patches.

import (
	"context"
	"fmt"
)

func listItems(name string, v any) ([]any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return x, nil
	case []map[string]any:
		items := make([]any, len(x))
		for i, m := range x {
			items[i] = m
		}
		return items, nil
	}
	return nil, fmt.Errorf("property %q is a list of rows: give an array of objects, not %T", name, v)
}

// check checks that items are objects whose ids, where given, appear once.
func (l *list) check(items []any) (objs []map[string]any, ids []string, seen map[string]bool, err error) {
	return CheckItems(l.name, l.Cols[l.id].Name, items, IDString)
}

// CheckItems checks that the items of the list property name are objects whose ids (at idCol,
// as text by idText), where given, appear once, and returns them with their ids ("" where
// absent) and the set of ids. The sqlite connector's lists are checked by it too.
func CheckItems(name, idCol string, items []any, idText func(any) string) (objs []map[string]any, ids []string, seen map[string]bool, err error) {
	objs = make([]map[string]any, len(items))
	ids = make([]string, len(items))
	seen = map[string]bool{}
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, nil, nil, fmt.Errorf("%s[%d]: an element of a list must be an object, not %T", name, i, it)
		}
		objs[i] = m
		if v := m[idCol]; v != nil {
			ids[i] = idText(v)
			if seen[ids[i]] {
				return nil, nil, nil, fmt.Errorf("%s[%d]: %s %s appears twice in the list", name, i, idCol, ids[i])
			}
			seen[ids[i]] = true
		}
	}
	return objs, ids, seen, nil
}

// writeList makes the list's rows of one parent what items say: rows whose id is not among the
// items are deleted first (so a unique key can move to a new row), items with the id of an
// existing row patch it, others are inserted. On create (replace false) every item is inserted.
func (c *Conn) writeList(ctx context.Context, tx Tx, l *list, parent string, items []any, replace bool) error {
	existing := map[string]bool{}
	var order []string
	if replace {
		q := "SELECT " + c.d.Select(c.d.Quote(l.Cols[l.id].Name), &l.Cols[l.id]) + " FROM " + l.Quoted + c.whereEq(l.Table, []int{l.key}, 1)
		rows, err := tx.Query(ctx, q, parent)
		if err != nil {
			return fmt.Errorf("list %s: %w", l.name, err)
		}
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				rows.Close()
				return fmt.Errorf("list %s: %w", l.name, err)
			}
			if v[0] == nil {
				continue
			}
			d, err := c.d.Decode(&l.Cols[l.id], *v[0])
			if err != nil {
				rows.Close()
				return fmt.Errorf("list %s: %w", l.name, err)
			}
			id := IDString(d)
			existing[id] = true
			order = append(order, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list %s: %w", l.name, err)
		}
	}
	objs, ids, seen, err := l.check(items)
	if err != nil {
		return err
	}
	for _, id := range order {
		if !seen[id] {
			if _, err := tx.Exec(ctx, "DELETE FROM "+l.Quoted+c.whereEq(l.Table, []int{l.key, l.id}, 1), parent, id); err != nil {
				return fmt.Errorf("list %s: %w", l.name, err)
			}
		}
	}
	for i, m := range objs {
		exists := ids[i] != "" && existing[ids[i]]
		skip := []int{l.key}
		if exists || ids[i] == "" {
			skip = append(skip, l.id)
		}
		ch, err := c.changeOf(l.Table, m, nil, nil, skip...)
		if err != nil {
			return invalidData{fmt.Errorf("%s[%d]: %w", l.name, i, err)}
		}
		if exists {
			err = c.set(ctx, tx, l.Table, ch, []int{l.key, l.id}, []any{parent, ids[i]})
		} else {
			if ids[i] == "" {
				if id, ok := c.newID(&l.Cols[l.id]); ok {
					ch.set(l.id, &id)
				}
			}
			ch.set(l.key, &parent)
			_, err = c.d.Insert(ctx, tx, l.Table, ch.cols, ch.args, l.id)
		}
		if err != nil {
			return fmt.Errorf("%s[%d]: %w", l.name, i, err)
		}
	}
	return nil
}

// mergeObject applies a nested patch to a stored object: members of patch replace those of
// stored, except that an object member patches a stored object member; arrays are replaced.
func mergeObject(stored any, patch map[string]any) map[string]any {
	base, _ := stored.(map[string]any)
	out := make(map[string]any, len(base)+len(patch))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range patch {
		if p, ok := v.(map[string]any); ok {
			if _, ok := out[k].(map[string]any); ok {
				out[k] = mergeObject(out[k], p)
				continue
			}
		}
		out[k] = v
	}
	return out
}
