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
	"slices"
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

// Update implements connector.Conn: a patch per record; object (JSON) columns are merged into
// the stored object, lists replaced.
func (c *Conn) Update(ctx context.Context, name string, recs []connector.Record) ([]connector.Result, error) {
	var before map[string]stored
	prepare := func(ctx context.Context, tx Tx, e *entity, savepoints bool, written []string, _ []connector.Result) error {
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
		if !ok {
			return nil
		}
		// The patches of records that exist, appear once, change no list and have no error of
		// their own go together, in one round trip per chunk; the others one at a time. With
		// savepoints, a chunk that fails is halved until the records that fail alone are found.
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
			if len(ch.cols) == 0 {
				written[i] = cur.id
				continue
			}
			q, args := c.setSQL(e.Table, ch, []int{e.id}, []any{cur.id})
			stmts, at = append(stmts, Stmt{q, args}), append(at, i)
		}
		exec := func(lo, hi int) error {
			if err := be.ExecMany(ctx, tx, stmts[lo:hi]); err != nil {
				return err
			}
			for _, i := range at[lo:hi] {
				written[i] = before[recs[i].ID].id
			}
			return nil
		}
		for start := 0; start < len(stmts); start += Chunk {
			end := min(start+Chunk, len(stmts))
			if savepoints {
				err = c.bisect(ctx, tx, start, end, exec)
			} else {
				err = exec(start, end)
			}
			if err != nil {
				return err
			}
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

// bisect writes the records [lo, hi) of a batch with write, under a savepoint; when a record's
// values fail (Dialect.RecordError), it rolls back and writes each half the same way, in
// order (so that of two records that conflict, the later fails, as one at a time), down to
// single records, whose writes stay rolled back: write did not mark them written, and they are
// written one at a time after, under savepoints, each failing with the server's message.
func (c *Conn) bisect(ctx context.Context, tx Tx, lo, hi int, write func(lo, hi int) error) error {
	if _, err := tx.Exec(ctx, "SAVEPOINT bulk"); err != nil {
		return err
	}
	err := write(lo, hi)
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
	if err == nil || hi-lo == 1 {
		return nil
	}
	mid := lo + (hi-lo)/2
	if err := c.bisect(ctx, tx, lo, mid, write); err != nil {
		return err
	}
	return c.bisect(ctx, tx, mid, hi, write)
}

// prepare runs first in a batch's transaction; savepoints says that the batch is written a
// record at a time after a record failed. It may write records itself (a create in bulk) and
// set their ids, which the record-at-a-time writes then skip, and their records as stored,
// which the read-back then skips.
type prepare func(ctx context.Context, tx Tx, e *entity, savepoints bool, ids []string, results []connector.Result) error

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
		if err := prepare(ctx, tx, e, savepoints, ids, results); err != nil {
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
		if err := c.readBack(ctx, tx, e, ids, results); err != nil {
			return nil, false, err
		}
	}
	if err := connector.Fence(ctx); err != nil {
		return nil, false, err // rolled back: the run lost its lease while it wrote
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, false, committing{err}
	}
	return results, false, nil
}

// readBack reads the records written (those with an id and no error) into their results, as
// the database stores them, except those a bulk insert gave as stored.
func (c *Conn) readBack(ctx context.Context, tx Tx, e *entity, ids []string, results []connector.Result) error {
	var chunk []string
	for i, id := range ids {
		if id != "" && results[i].Err == nil && results[i].Record.Data == nil {
			chunk = append(chunk, id)
		}
	}
	if len(chunk) == 0 {
		return nil
	}
	got, err := c.readIDs(ctx, tx, e, chunk)
	if err != nil {
		return err
	}
	for i, id := range ids {
		if id != "" && results[i].Err == nil && results[i].Record.Data == nil {
			results[i].Record = got[id].rec
			if results[i].Record.ID == "" {
				results[i].Record.ID = id
			}
		}
	}
	return nil
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

// columnChange is changeOf of data whose every name is a column's and whose values all encode
// (ok false otherwise): the columns in the table's order, without sorting the names, which
// was a fifth of a bulk create's own work.
func (c *Conn) columnChange(t *Table, data map[string]any, cur map[string]any, skip []int) (change, bool) {
	ch := change{cols: make([]int, 0, len(data)+1), args: make([]any, 0, len(data)+1)} // +1: an id made for a create
	found := 0
	for i := range t.Cols {
		col := &t.Cols[i]
		v, ok := data[col.Name]
		if !ok {
			continue
		}
		found++
		if slices.Contains(skip, i) {
			continue
		}
		s, err := c.encode(col, v, cur)
		if err != nil {
			return change{}, false
		}
		ch.set(i, s)
	}
	return ch, found == len(data)
}

// encode is the value v of column col as the statement sends it; an object given to a JSON
// column is merged into cur's (cur: the record as stored, nil on create).
func (c *Conn) encode(col *Column, v any, cur map[string]any) (*string, error) {
	if p, ok := v.(map[string]any); ok && col.Kind == JSON && cur != nil {
		v = mergeObject(cur[col.Name], p)
	}
	return c.d.Encode(col, v)
}

// changeOf checks data's property names and encodes its values, in the order of the table's
// columns (the same properties give the same statement): columnChange, for data of columns
// alone whose values encode, else in the order of their names, so that of several faults the
// first by name is told. skip names columns the caller writes itself;
// cur is the record as stored, for object patches (nil on create).
func (c *Conn) changeOf(t *Table, data map[string]any, lists map[string]*list, cur map[string]any, skip ...int) (change, error) {
	if ch, ok := c.columnChange(t, data, cur, skip); ok {
		return ch, nil
	}
	ch := change{cols: make([]int, 0, len(data)+1), args: make([]any, 0, len(data)+1)} // not grown a value at a time; +1: an id made for a create
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
			s, err := c.encode(&t.Cols[i], v, cur)
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
