package sqlconn

// Writes: Create, Update and Delete of a batch in one transaction, a statement per record and
// per list row, the written records read back together before the commit. A batch in which a
// record fails on the server (a constraint, a value the column cannot hold) is rolled back and
// written again with a savepoint per record, so the failing record fails alone, with the
// server's message, and the others are written as if it were not there. A transaction that
// fails as a whole in a way the server says may succeed again (a serialization failure, a
// deadlock, the connection lost before the commit) is run again, with a pause that doubles.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// invalidData is an error of a record's data found before anything was written.
type invalidData struct{ err error }

func (e invalidData) Error() string { return e.err.Error() }
func (e invalidData) Unwrap() error { return e.err }

// partial is an error of a record's data found after some of the record was written (a list
// row's values): the batch is written again with savepoints, as for a failure on the server.
type partial struct{ err error }

func (e partial) Error() string { return e.err.Error() }
func (e partial) Unwrap() error { return e.err }

// afterWrite turns an invalidData found while writing a record's lists into a partial.
func afterWrite(err error) error {
	var inv invalidData
	if errors.As(err, &inv) {
		return partial{inv.err}
	}
	return err
}

// writeOne writes record i and returns its id's text ("" for a delete).
type writeOne func(ctx context.Context, tx Tx, i int) (string, error)

// Create implements connector.Conn.
//
// With a dialect that inserts in bulk (BulkInserter), the records without lists are inserted
// together first, in one round trip per chunk; the others one at a time. When a record fails
// on the server, the batch is written again with savepoints (see writeTx): the bulk chunks then
// each under one of their own, a chunk that fails split in halves until the records that fail
// alone are found, which are left to be written one at a time, each failing with the server's
// message, and the others still go in bulk.
func (c *Conn) Create(ctx context.Context, name string, recs []map[string]any) ([]connector.Result, error) {
	var bulk prepare
	if bi, ok := c.d.(BulkInserter); ok {
		bulk = func(ctx context.Context, tx Tx, e *entity, savepoints bool, ids []string) error {
			rows, at := c.bulkRows(e, recs)
			for start := 0; start < len(rows); start += Chunk {
				end := min(start+Chunk, len(rows))
				var err error
				if savepoints {
					err = c.insertBisect(ctx, tx, bi, e, rows[start:end], at[start:end], ids)
				} else {
					err = c.insertBulk(ctx, tx, bi, e, rows[start:end], at[start:end], ids)
				}
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	return c.write(ctx, name, len(recs), bulk, true, func(e *entity) writeOne {
		return func(ctx context.Context, tx Tx, i int) (string, error) { return c.create(ctx, tx, e, recs[i]) }
	})
}

// bulkRows are the rows of the records that may be inserted in bulk, and the records' indexes:
// those without an error of their own (found before writing) and without child rows.
func (c *Conn) bulkRows(e *entity, recs []map[string]any) ([]Row, []int) {
	var rows []Row
	var at []int
	for i, data := range recs {
		ch, err := c.createChange(e, data)
		if err != nil || len(ch.lists) > 0 || listsIn(e, data) {
			continue // one at a time: an error of its own, or child rows
		}
		rows, at = append(rows, Row{Cols: ch.cols, Args: ch.args}), append(at, i)
	}
	return rows, at
}

// insertBulk inserts rows, of the records at, in one call and sets the records' ids.
func (c *Conn) insertBulk(ctx context.Context, tx Tx, bi BulkInserter, e *entity, rows []Row, at []int, ids []string) error {
	got, err := bi.InsertMany(ctx, tx, e.Table, rows, e.id)
	if err != nil {
		return err
	}
	for k, id := range got {
		ids[at[k]] = id
	}
	return nil
}

// insertBisect is insertBulk under a savepoint; when a record's values fail, the chunk is rolled
// back and each half inserted the same way, in order, so that a record conflicting with an
// earlier one of the batch is the one that fails, as one at a time. A record that fails alone
// keeps no id: it is written one at a time after, under a savepoint, with its own error.
func (c *Conn) insertBisect(ctx context.Context, tx Tx, bi BulkInserter, e *entity, rows []Row, at []int, ids []string) error {
	if _, err := tx.Exec(ctx, "SAVEPOINT bulk"); err != nil {
		return err
	}
	err := c.insertBulk(ctx, tx, bi, e, rows, at, ids)
	if err != nil && !c.d.RecordError(err) {
		return err
	}
	if err != nil {
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT bulk"); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT bulk"); err != nil {
		return err
	}
	if err == nil || len(rows) == 1 {
		return nil
	}
	mid := len(rows) / 2
	if err := c.insertBisect(ctx, tx, bi, e, rows[:mid], at[:mid], ids); err != nil {
		return err
	}
	return c.insertBisect(ctx, tx, bi, e, rows[mid:], at[mid:], ids)
}

// Update implements connector.Conn: a patch per record; object (JSON) columns are merged into
// the stored object, lists replaced.
func (c *Conn) Update(ctx context.Context, name string, recs []connector.Record) ([]connector.Result, error) {
	var before map[string]stored
	prepare := func(ctx context.Context, tx Tx, e *entity, savepoints bool, written []string) error {
		ids := make([]string, len(recs))
		times := make(map[string]int, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
			times[r.ID]++
		}
		var err error
		if before, err = c.readIDs(ctx, tx, e, ids); err != nil {
			return err
		}
		be, ok := c.d.(BulkExecer)
		if !ok || savepoints {
			return nil
		}
		// The patches of records that exist, appear once, change no list and have no error of
		// their own go together, in one round trip per chunk; the others one at a time.
		var stmts []Stmt
		var at []int
		for i, r := range recs {
			cur, found := before[r.ID]
			if !found || times[r.ID] > 1 || listsIn(e, r.Data) {
				continue
			}
			if v, ok := r.Data[e.Cols[e.id].Name]; ok && IDString(v) != cur.rec.ID {
				continue
			}
			ch, err := c.changeOf(e.Table, r.Data, e.listIndex, cur.rec.Data, e.id)
			if err != nil {
				continue
			}
			at = append(at, i)
			if len(ch.cols) == 0 {
				continue
			}
			q, args := c.setSQL(e.Table, ch, []int{e.id}, []any{cur.id})
			stmts = append(stmts, Stmt{q, args})
		}
		for start := 0; start < len(stmts); start += Chunk {
			if err := be.ExecMany(ctx, tx, stmts[start:min(start+Chunk, len(stmts))]); err != nil {
				return err
			}
		}
		for _, i := range at {
			written[i] = before[recs[i].ID].id
		}
		return nil
	}
	return c.write(ctx, name, len(recs), prepare, true, func(e *entity) writeOne {
		seen := make(map[string]bool, len(recs))
		return func(ctx context.Context, tx Tx, i int) (string, error) {
			r := recs[i]
			cur, ok := before[r.ID]
			if !ok || seen[r.ID] { // changed earlier in the batch: read it again
				got, err := c.readIDs(ctx, tx, e, []string{r.ID})
				if err != nil {
					return "", err
				}
				if cur, ok = got[r.ID]; !ok {
					return "", invalidData{fmt.Errorf("record %s does not exist", r.ID)}
				}
			}
			seen[r.ID] = true
			return c.update(ctx, tx, e, r, cur)
		}
	})
}

// Delete implements connector.Conn: each record with its lists' rows.
func (c *Conn) Delete(ctx context.Context, name string, ids []string) ([]error, error) {
	res, err := c.write(ctx, name, len(ids), nil, false, func(e *entity) writeOne {
		return func(ctx context.Context, tx Tx, i int) (string, error) { return "", c.delete(ctx, tx, e, ids[i]) }
	})
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(res))
	for i, r := range res {
		errs[i] = r.Err
	}
	return errs, nil
}

// prepare runs first in a batch's transaction; savepoints says that the batch is written a
// record at a time after a record failed. It may write records itself (a create in bulk) and
// set their ids, which the record-at-a-time writes then skip.
type prepare func(ctx context.Context, tx Tx, e *entity, savepoints bool, ids []string) error

func (c *Conn) write(ctx context.Context, name string, n int, prepare prepare, readBack bool, one func(*entity) writeOne) ([]connector.Result, error) {
	if c.readOnly {
		return nil, errReadOnly
	}
	e, err := c.entity(ctx, name)
	if err != nil {
		return nil, err
	}
	var results []connector.Result
	err = c.retry(ctx, func() error {
		var failed bool
		results, failed, err = c.writeTx(ctx, e, n, prepare, readBack, one(e), false)
		if err == nil && failed {
			results, _, err = c.writeTx(ctx, e, n, prepare, readBack, one(e), true)
		}
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.scrub(err)
	}
	for i := range results {
		results[i].Err = c.scrub(results[i].Err)
	}
	return results, nil
}

// writeTx writes the batch in one transaction; without savepoints it stops at the first
// record that fails on the server and reports failed (nothing is committed); with them each
// record is written under its own.
func (c *Conn) writeTx(ctx context.Context, e *entity, n int, prepare prepare, readBack bool, one writeOne, savepoints bool) ([]connector.Result, bool, error) {
	tx, err := c.db.Begin(ctx, false)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	results := make([]connector.Result, n)
	ids := make([]string, n)
	if prepare != nil {
		if err := prepare(ctx, tx, e, savepoints, ids); err != nil {
			if !savepoints && c.d.RecordError(err) {
				return nil, true, nil
			}
			return nil, false, err
		}
	}
	for i := range n {
		if ids[i] != "" {
			continue // written by prepare
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		if savepoints {
			if _, err := tx.Exec(ctx, "SAVEPOINT record"); err != nil {
				return nil, false, err
			}
		}
		id, err := one(ctx, tx, i)
		var invalid invalidData
		var part partial
		switch {
		case err == nil:
			ids[i] = id
		case errors.As(err, &invalid):
			results[i].Err = invalid.err
		case !errors.As(err, &part) && !c.d.RecordError(err):
			return nil, false, err
		case !savepoints:
			return nil, true, nil
		default:
			if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT record"); rerr != nil {
				return nil, false, rerr
			}
			if errors.As(err, &part) {
				err = part.err
			}
			results[i].Err = err
		}
		if savepoints {
			if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT record"); err != nil {
				return nil, false, err
			}
		}
	}
	if readBack {
		var chunk []string
		for i, id := range ids {
			if id != "" && results[i].Err == nil {
				chunk = append(chunk, id)
			}
		}
		got, err := c.readIDs(ctx, tx, e, chunk)
		if err != nil {
			return nil, false, err
		}
		for i, id := range ids {
			if id != "" && results[i].Err == nil {
				results[i].Record = got[id].rec
				if results[i].Record.ID == "" {
					results[i].Record.ID = id
				}
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, false, committing{err}
	}
	return results, false, nil
}

// change is what a record's data writes: columns with their bound text, and lists.
type change struct {
	cols  []int
	args  []any
	lists []listChange
}

type listChange struct {
	l     *list
	items []any
}

func (ch *change) set(col int, v *string) {
	ch.cols = append(ch.cols, col)
	if v == nil {
		ch.args = append(ch.args, nil)
	} else {
		ch.args = append(ch.args, *v)
	}
}

// changeOf checks data's property names and encodes its values, in the order of their names
// (the same properties give the same statement). skip names columns the caller writes itself;
// cur is the record as stored, for object patches (nil on create).
func (c *Conn) changeOf(t *Table, data map[string]any, lists map[string]*list, cur map[string]any, skip ...int) (change, error) {
	var ch change
	var unknownNames []string
	names := make([]string, 0, len(data))
	for name := range data {
		names = append(names, name)
	}
	sort.Strings(names)
next:
	for _, name := range names {
		v := data[name]
		if i, ok := t.Index[name]; ok {
			for _, s := range skip {
				if i == s {
					continue next
				}
			}
			col := &t.Cols[i]
			if p, ok := v.(map[string]any); ok && col.Kind == JSON && cur != nil {
				v = mergeObject(cur[name], p)
			}
			s, err := c.d.Encode(col, v)
			if err != nil {
				return change{}, fmt.Errorf("property %q: %w", name, err)
			}
			ch.set(i, s)
			continue
		}
		if l := lists[name]; l != nil {
			items, err := listItems(name, v)
			if err != nil {
				return change{}, err
			}
			ch.lists = append(ch.lists, listChange{l, items})
			continue
		}
		unknownNames = append(unknownNames, name)
	}
	if len(unknownNames) > 0 {
		return change{}, unknown(t, unknownNames, lists)
	}
	for _, lc := range ch.lists {
		if _, _, _, err := lc.l.check(lc.items); err != nil {
			return change{}, err
		}
	}
	return ch, nil
}

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

// newID gives a new record an id when it has none and the server gives none either.
func (c *Conn) newID(col *Column) (string, bool) {
	if col.Auto {
		return "", false
	}
	switch col.Kind {
	case UUID:
		return newUUID(), true
	case Text:
		return newTextID(), true
	}
	return "", false
}

// createChange is what creating a record writes, with the id the connector makes for it when
// it has none and the database gives none.
func (c *Conn) createChange(e *entity, data map[string]any) (change, error) {
	var skip []int
	if data[e.Cols[e.id].Name] == nil {
		skip = append(skip, e.id)
	}
	ch, err := c.changeOf(e.Table, data, e.listIndex, nil, skip...)
	if err != nil {
		return change{}, err
	}
	if len(skip) > 0 {
		if id, ok := c.newID(&e.Cols[e.id]); ok {
			ch.set(e.id, &id)
		}
	}
	return ch, nil
}

// listsIn reports whether data gives any of the entity's lists (even an empty one).
func listsIn(e *entity, data map[string]any) bool {
	for name := range e.listIndex {
		if _, ok := data[name]; ok {
			return true
		}
	}
	return false
}

func (c *Conn) create(ctx context.Context, tx Tx, e *entity, data map[string]any) (string, error) {
	ch, err := c.createChange(e, data)
	if err != nil {
		return "", invalidData{err}
	}
	id, err := c.d.Insert(ctx, tx, e.Table, ch.cols, ch.args, e.id)
	if err != nil {
		return "", err
	}
	for _, lc := range ch.lists {
		if err := c.writeList(ctx, tx, lc.l, id, lc.items, false); err != nil {
			return "", afterWrite(err)
		}
	}
	return id, nil
}

func (c *Conn) update(ctx context.Context, tx Tx, e *entity, r connector.Record, cur stored) (string, error) {
	if v, ok := r.Data[e.Cols[e.id].Name]; ok && IDString(v) != cur.rec.ID {
		return "", invalidData{fmt.Errorf("property %q: cannot change the id of record %s to %s", e.Cols[e.id].Name, cur.rec.ID, IDString(v))}
	}
	ch, err := c.changeOf(e.Table, r.Data, e.listIndex, cur.rec.Data, e.id)
	if err != nil {
		return "", invalidData{err}
	}
	if err := c.set(ctx, tx, e.Table, ch, []int{e.id}, []any{cur.id}); err != nil {
		return "", err
	}
	for _, lc := range ch.lists {
		if err := c.writeList(ctx, tx, lc.l, cur.id, lc.items, true); err != nil {
			return "", afterWrite(err)
		}
	}
	return cur.id, nil
}

// set updates the columns of ch in the rows whose where columns equal whereArgs.
func (c *Conn) set(ctx context.Context, tx Tx, t *Table, ch change, where []int, whereArgs []any) error {
	if len(ch.cols) == 0 {
		return nil
	}
	q, args := c.setSQL(t, ch, where, whereArgs)
	_, err := tx.Exec(ctx, q, args...)
	return err
}

// setSQL is the UPDATE of set and its arguments.
func (c *Conn) setSQL(t *Table, ch change, where []int, whereArgs []any) (string, []any) {
	var b strings.Builder
	b.WriteString("UPDATE " + t.Quoted + " SET ")
	for i, col := range ch.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.d.Quote(t.Cols[col].Name) + " = " + c.d.Param(i+1, &t.Cols[col]))
	}
	b.WriteString(c.whereEq(t, where, len(ch.cols)+1))
	return b.String(), append(append([]any(nil), ch.args...), whereArgs...)
}

// whereEq is " WHERE a = $n AND b = $n+1" for columns cols.
func (c *Conn) whereEq(t *Table, cols []int, first int) string {
	parts := make([]string, len(cols))
	for i, col := range cols {
		parts[i] = c.d.Quote(t.Cols[col].Name) + " = " + c.d.Param(first+i, &t.Cols[col])
	}
	return " WHERE " + strings.Join(parts, " AND ")
}

func (c *Conn) delete(ctx context.Context, tx Tx, e *entity, id string) error {
	if !c.holds(&e.Cols[e.id], id) {
		return invalidData{fmt.Errorf("record %s does not exist", id)}
	}
	for _, l := range e.lists {
		if _, err := tx.Exec(ctx, "DELETE FROM "+l.Quoted+c.whereEq(l.Table, []int{l.key}, 1), id); err != nil {
			return fmt.Errorf("list %s: %w", l.name, err)
		}
	}
	n, err := tx.Exec(ctx, "DELETE FROM "+e.Quoted+c.whereEq(e.Table, []int{e.id}, 1), id)
	if err != nil {
		return err
	}
	if n == 0 {
		return invalidData{fmt.Errorf("record %s does not exist", id)}
	}
	return nil
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

// committing is the error of a commit: whether the server committed is unknown (the
// connection may have dropped after it did), so the batch is not written again; the engine's
// intents find out on the next run.
type committing struct{ err error }

func (e committing) Error() string { return e.err.Error() }
func (e committing) Unwrap() error { return e.err }

// Committing reports whether err is the error of a commit (see committing).
func Committing(err error) bool {
	var c committing
	return errors.As(err, &c)
}
