package sqlite

// What a record's data writes (a change of columns and lists), and the creates, updates and
// deletes that write it.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
)

// change is what a record's data writes: columns (indexes in the table's columns) with values
// to bind, and lists.
type change struct {
	cols  []int
	args  []any
	lists []listChange
}

// set adds a column's value.
func (ch *change) set(col int, v any) {
	ch.cols, ch.args = append(ch.cols, col), append(ch.args, v)
}

// value returns the value bound for a column, nil when the change does not write it.
func (ch change) value(col int) any {
	for i, c := range ch.cols {
		if c == col {
			return ch.args[i]
		}
	}
	return nil
}

type listChange struct {
	l     *list
	items []any
}

// changeOf checks data's property names and converts its values. skip names columns the
// caller writes itself; stored is the record as stored, for object patches (nil on create).
// The columns come in the order of their names, so the same properties give the same
// statement text (prepared once per connection).
func (t *table) changeOf(data map[string]any, lists map[string]*list, stored map[string]any, skip ...int) (change, error) {
	return t.changeIn(nil, data, lists, stored, skip)
}

// changeIn is changeOf whose change takes its room from buf (nil: its own).
func (t *table) changeIn(buf *changeBuf, data map[string]any, lists map[string]*list, stored map[string]any, skip []int) (change, error) {
	if ch, ok := t.changeByColumn(buf, data, lists, stored, skip); ok {
		return ch, nil
	}
	return t.changeByName(data, lists, stored, skip)
}

// changeBuf is room for the columns and values of many changes, allocated once: the changes
// of a Create batch live until their rows are inserted, and its buffer is reused after.
type changeBuf struct {
	cols, allCols []int
	args, allArgs []any
}

// newChangeBuf returns room for n changes of up to per columns each (an id added).
func newChangeBuf(n, per int) *changeBuf {
	b := &changeBuf{allCols: make([]int, n*per), allArgs: make([]any, n*per)}
	b.reset()
	return b
}

// take returns empty slices with room for n columns and values, from the buffer while it has
// room.
func (b *changeBuf) take(n int) ([]int, []any) {
	if b == nil || len(b.cols) < n {
		return make([]int, 0, n), make([]any, 0, n)
	}
	cols, args := b.cols[:0:n], b.args[:0:n]
	b.cols, b.args = b.cols[n:], b.args[n:]
	return cols, args
}

// moved is ch in room taken from the buffer (after a reset that freed ch's).
func (b *changeBuf) moved(ch change) change {
	cols, args := b.take(cap(ch.cols))
	ch.cols, ch.args = append(cols, ch.cols...), append(args, ch.args...)
	return ch
}

// reset makes the whole buffer free again: no change taken from it is used after.
func (b *changeBuf) reset() {
	b.cols, b.args = b.allCols, b.allArgs
}

// changeByColumn is changeOf for data without errors, by a lookup per column in the order of
// the column names: no sort of the record's names per record. ok is false when a property is
// not a column or a list or a value cannot be written; changeByName then says which, as it
// always has.
func (t *table) changeByColumn(buf *changeBuf, data map[string]any, lists map[string]*list, stored map[string]any, skip []int) (ch change, ok bool) {
	ch.cols, ch.args = buf.take(len(data) + 1) // +1: an id or key the caller adds
	known := 0
	for _, i := range t.byName {
		c := &t.cols[i]
		v, present := data[c.name]
		if !present {
			continue
		}
		known++
		if slices.Contains(skip, i) {
			continue
		}
		if p, isObj := v.(map[string]any); isObj && c.kind == jsonObj && stored != nil {
			v = mergeObject(stored[c.name], p)
		}
		x, err := toSQL(c.kind, v)
		if err != nil {
			return change{}, false
		}
		ch.set(i, x)
	}
	for name, l := range lists {
		v, present := data[name]
		if !present {
			continue
		}
		known++
		items, err := listItems(name, v)
		if err != nil {
			return change{}, false
		}
		ch.lists = append(ch.lists, listChange{l, items})
	}
	slices.SortFunc(ch.lists, func(a, b listChange) int { return strings.Compare(a.l.name, b.l.name) })
	return ch, known == len(data)
}

// changeByName is changeOf by the record's property names in order, which finds the first
// error as changeOf reports it.
func (t *table) changeByName(data map[string]any, lists map[string]*list, stored map[string]any, skip []int) (change, error) {
	var ch change
	var unknown []string
	names := make([]string, 0, len(data))
	for name := range data {
		names = append(names, name)
	}
	sort.Strings(names) // the same properties give the same statement text (prepared once)
next:
	for _, name := range names {
		v := data[name]
		if i, ok := t.index[name]; ok {
			for _, s := range skip {
				if i == s {
					continue next
				}
			}
			k := t.cols[i].kind
			if p, ok := v.(map[string]any); ok && k == jsonObj && stored != nil {
				v = mergeObject(stored[name], p)
			}
			x, err := toSQL(k, v)
			if err != nil {
				return change{}, fmt.Errorf("property %q: %w", name, err)
			}
			ch.set(i, x)
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
		unknown = append(unknown, name)
	}
	if len(unknown) > 0 {
		return change{}, t.unknown(unknown, lists)
	}
	return ch, nil
}

func (t *table) unknown(names []string, lists map[string]*list) error {
	known := make([]string, 0, len(t.cols)+len(lists))
	for _, c := range t.cols {
		known = append(known, c.name)
	}
	for n := range lists {
		known = append(known, n)
	}
	if len(names) == 1 {
		return fmt.Errorf("unknown property %q: not a column of table %s%s", names[0], Quote(t.name), diag.DidYouMean(names[0], known))
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return fmt.Errorf("unknown properties %s: not columns of table %s", strings.Join(quoted, ", "), Quote(t.name))
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

// create inserts one record with its lists and returns its id as stored; the batch reads it
// back (readBack), or p (when not nil) records it as row i of the batch (see prediction). An
// error of the record's data, found before anything is written, is an invalidData.
func (e *entity) create(ctx context.Context, tx *sql.Tx, data map[string]any, p *prediction, i int) (any, error) {
	ch, err := e.createChange(nil, data)
	if err != nil {
		return nil, err
	}
	return e.insertChange(ctx, tx, ch, p, i)
}

// createChange is what creating a record writes, with the text id the connector makes for it
// when it has none, in buf (nil: room of its own); an error of the record's data is an
// invalidData.
func (e *entity) createChange(buf *changeBuf, data map[string]any) (change, error) {
	var skip []int
	if data[e.cols[e.id].name] == nil {
		skip = e.skipID // absent or null: SQLite numbers the row, or we make a text id
	}
	ch, err := e.changeIn(buf, data, e.listIndex, nil, skip)
	if err != nil {
		return change{}, invalidData{err}
	}
	if err := ch.checkLists(); err != nil {
		return change{}, invalidData{err}
	}
	if len(skip) > 0 && e.textID {
		ch.set(e.id, newTextID())
	}
	return ch, nil
}

// insertChange inserts the row and the lists of a record's change (see create).
func (e *entity) insertChange(ctx context.Context, tx *sql.Tx, ch change, p *prediction, i int) (any, error) {
	id, rowid, err := insert(ctx, tx, e.table, e.id, ch)
	if err != nil {
		return nil, err
	}
	if p != nil {
		p.row(i, e.table, e.id, ch, id, rowid)
	}
	for _, lc := range ch.lists {
		if err := lc.l.write(ctx, tx, id, lc.items, false); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// insert inserts a row and returns its id as stored (the rowid SQLite chose, when the id was
// left out of an INTEGER PRIMARY KEY) and the last_insert_rowid after it (noRowid when the
// statement does not give it). When the id as stored is known without asking (the rowid of an
// INTEGER PRIMARY KEY, text in a column that keeps text as given) the statement is a plain
// INSERT; else it asks with RETURNING, which costs SQLite three times as much.
func insert(ctx context.Context, tx *sql.Tx, t *table, idCol int, ch change) (id any, rowid int64, err error) {
	q := t.insertSQL(ch.cols)
	if idCol == t.alias {
		res, err := tx.ExecContext(ctx, q, ch.args...)
		if err != nil {
			return nil, noRowid, err
		}
		rowid, err := res.LastInsertId()
		return rowid, rowid, err
	}
	if id := ch.value(idCol); isString(id) && t.cols[idCol].keepsText {
		res, err := tx.ExecContext(ctx, q, ch.args...)
		if err != nil {
			return nil, noRowid, err
		}
		rowid, err := res.LastInsertId()
		return id, rowid, err
	}
	q += " RETURNING +" + t.cols[idCol].quoted
	if err := tx.QueryRowContext(ctx, q, ch.args...).Scan(&id); err != nil {
		return nil, noRowid, err
	}
	if id == nil {
		return nil, noRowid, fmt.Errorf("the new row of table %s has no id: give %q a value", Quote(t.name), t.cols[idCol].name)
	}
	return id, noRowid, nil
}

// update patches one record: the columns present in its data, object columns merged, lists
// replaced. cur is the record as stored before the batch, with its id as stored; it returns
// that id, and the batch reads the record back (readBack).
func (e *entity) update(ctx context.Context, tx *sql.Tx, r connector.Record, cur connector.Record, id any) (any, error) {
	if v, ok := r.Data[e.cols[e.id].name]; ok && idString(v) != cur.ID {
		return nil, invalidData{fmt.Errorf("property %q: cannot change the id of record %s to %s", e.cols[e.id].name, cur.ID, idString(v))}
	}
	ch, err := e.changeOf(r.Data, e.listIndex, cur.Data, e.id)
	if err != nil {
		return nil, invalidData{err}
	}
	if err := ch.checkLists(); err != nil {
		return nil, invalidData{err}
	}
	if err := set(ctx, tx, e.table, ch, " WHERE "+Quote(e.cols[e.id].name)+" = ?", id); err != nil {
		return nil, err
	}
	for _, lc := range ch.lists {
		if err := lc.l.write(ctx, tx, id, lc.items, true); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// insertSQL is the statement that inserts a row of the given columns.
func (t *table) insertSQL(cols []int) string {
	if len(cols) == 0 {
		return "INSERT INTO " + t.quoted + " DEFAULT VALUES"
	}
	n := len(t.quoted) + 24 + 5*len(cols)
	for _, c := range cols {
		n += len(t.cols[c].quoted)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString("INSERT INTO ")
	b.WriteString(t.quoted)
	for i, c := range cols {
		b.WriteString(cond(i == 0, " (", ", "))
		b.WriteString(t.cols[c].quoted)
	}
	for i := range cols {
		b.WriteString(cond(i == 0, ") VALUES (?", ", ?"))
	}
	b.WriteString(")")
	return b.String()
}

// isString reports whether v holds a string (without copying it out of v).
func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// cond is a if c, else b.
func cond(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// set updates the columns of ch in the rows where selects.
func set(ctx context.Context, tx *sql.Tx, t *table, ch change, where string, args ...any) error {
	if len(ch.cols) == 0 {
		return nil
	}
	n := len(t.quoted) + 12 + 6*len(ch.cols) + len(where)
	for _, c := range ch.cols {
		n += len(t.cols[c].quoted)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString("UPDATE ")
	b.WriteString(t.quoted)
	for i, c := range ch.cols {
		b.WriteString(cond(i == 0, " SET ", ", "))
		b.WriteString(t.cols[c].quoted)
		b.WriteString(" = ?")
	}
	b.WriteString(where)
	_, err := tx.ExecContext(ctx, b.String(), append(ch.args, args...)...)
	return err
}

// delete deletes one record and its lists' rows.
func (e *entity) delete(ctx context.Context, tx *sql.Tx, id string) error {
	var stored any
	err := tx.QueryRowContext(ctx, "SELECT +"+Quote(e.cols[e.id].name)+" FROM "+Quote(e.table.name)+" WHERE "+Quote(e.cols[e.id].name)+" = ?", id).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return invalidData{fmt.Errorf("record %s does not exist", id)}
	}
	if err != nil {
		return err
	}
	for _, l := range e.lists {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+Quote(l.table.name)+" WHERE "+Quote(l.cols[l.key].name)+" = ?", stored); err != nil {
			return fmt.Errorf("list %s: %w", l.name, err)
		}
	}
	_, err = tx.ExecContext(ctx, "DELETE FROM "+Quote(e.table.name)+" WHERE "+Quote(e.cols[e.id].name)+" = ?", stored)
	return err
}

// checkLists checks the shape of the change's lists (see list.check) before anything is written.
func (ch change) checkLists() error {
	for _, lc := range ch.lists {
		if _, _, _, err := lc.l.check(lc.items); err != nil {
			return err
		}
	}
	return nil
}

// check checks that items are objects whose ids, where given, appear once, and returns them
// with their ids as text ("" where absent) and the set of ids (sqlconn.CheckItems).
func (l *list) check(items []any) (objs []map[string]any, ids []string, seen map[string]bool, err error) {
	return sqlconn.CheckItems(l.name, l.cols[l.id].name, items, idString)
}

// write makes the list's rows of one parent what items say: rows whose id is not among the
// items are deleted (first, so a unique key can move to a new row), items with the id of an
// existing row update its columns (a patch), other items are inserted. On create (replace
// false) every item is inserted.
func (l *list) write(ctx context.Context, tx *sql.Tx, parent any, items []any, replace bool) error {
	keyCol, idCol := Quote(l.cols[l.key].name), Quote(l.cols[l.id].name)
	existing := map[string]any{}
	var order []string
	if replace {
		err := func() error {
			rows, err := tx.QueryContext(ctx, "SELECT +"+idCol+" FROM "+Quote(l.table.name)+" WHERE "+keyCol+" = ? ORDER BY "+idCol, parent)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id any
				if err := rows.Scan(&id); err != nil {
					return err
				}
				existing[idString(id)] = id
				order = append(order, idString(id))
			}
			return rows.Err()
		}()
		if err != nil {
			return fmt.Errorf("list %s: %w", l.name, err)
		}
	}
	// Check every item before writing any.
	objs, ids, seen, err := l.check(items)
	if err != nil {
		return err
	}
	for _, id := range order {
		if !seen[id] {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+Quote(l.table.name)+" WHERE "+keyCol+" = ? AND "+idCol+" = ?", parent, existing[id]); err != nil {
				return fmt.Errorf("list %s: %w", l.name, err)
			}
		}
	}
	for i, m := range objs {
		stored, exists := existing[ids[i]]
		exists = exists && ids[i] != ""
		skip := []int{l.key}
		if exists || ids[i] == "" { // the id is the WHERE, or absent: SQLite numbers the row
			skip = append(skip, l.id)
		}
		ch, err := l.changeOf(m, nil, nil, skip...)
		if err != nil {
			return fmt.Errorf("%s[%d]: %w", l.name, i, err)
		}
		if exists {
			err = set(ctx, tx, l.table, ch, " WHERE "+keyCol+" = ? AND "+idCol+" = ?", parent, stored)
		} else {
			if ids[i] == "" && l.textID {
				ch.set(l.id, newTextID())
			}
			ch.set(l.key, parent)
			_, _, err = insert(ctx, tx, l.table, l.id, ch)
		}
		if err != nil {
			return fmt.Errorf("%s[%d]: %w", l.name, i, err)
		}
	}
	return nil
}
