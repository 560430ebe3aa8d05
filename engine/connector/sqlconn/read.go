package sqlconn

// Reads: Scan by keyset pagination, Get and the read-back of writes by id, Find by merge
// properties, Count; each page's lists read in chunks of parent ids.

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// rowsOf runs a query over t's select list and calls fn with each row's values, decoded.
func (c *Conn) rowsOf(ctx context.Context, q Querier, t *Table, clause string, args []any, fn func(vals []any, text []*string) error) error {
	rows, err := q.Query(ctx, "SELECT "+t.Select+" FROM "+t.Quoted+clause, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		text, err := rows.Values()
		if err != nil {
			return err
		}
		vals, err := c.decodeRow(t, text)
		if err != nil {
			return err
		}
		if err := fn(vals, text); err != nil {
			return err
		}
	}
	return rows.Err()
}

// decodeRow decodes a row of t's select list.
func (c *Conn) decodeRow(t *Table, text []*string) ([]any, error) {
	vals := make([]any, len(text))
	for i, s := range text {
		if s == nil {
			continue
		}
		var err error
		if vals[i], err = c.d.Decode(&t.Cols[i], *s); err != nil {
			return nil, fmt.Errorf("table %s, column %q: %w", t.Quoted, t.Cols[i].Name, err)
		}
	}
	return vals, nil
}

func data(t *Table, vals []any, extra int) map[string]any {
	d := make(map[string]any, len(t.Cols)+extra)
	for i, col := range t.Cols {
		d[col.Name] = vals[i]
	}
	return d
}

// batch is records read but not yet handed out, with their ids' text (to read their lists).
type batch struct {
	recs []connector.Record
	ids  []string
}

func (b *batch) add(e *entity, vals []any, text []*string) {
	b.recs = append(b.recs, connector.Record{ID: IDString(vals[e.id]), Data: data(e.Table, vals, len(e.lists))})
	b.ids = append(b.ids, *text[e.id])
}

// in is the condition that column i of t is one of vals, with parameters from first on.
func (c *Conn) in(t *Table, i, first int, vals []string) (string, []any) {
	return c.d.In(c.d.Quote(t.Cols[i].Name), &t.Cols[i], first, vals)
}

// attachLists reads the lists of the batch's records: one query per list and chunk of ids.
func (c *Conn) attachLists(ctx context.Context, q Querier, e *entity, b *batch) error {
	for _, l := range e.lists {
		rows := map[string][]any{}
		for start := 0; start < len(b.ids); start += Chunk {
			ids := b.ids[start:min(start+Chunk, len(b.ids))]
			cond, args := c.in(l.Table, l.key, 1, ids)
			clause := " WHERE " + cond + " ORDER BY " + c.d.Quote(l.Cols[l.key].Name) + ", " + c.d.Quote(l.Cols[l.id].Name)
			err := c.rowsOf(ctx, q, l.Table, clause, args, func(vals []any, text []*string) error {
				k := *text[l.key]
				if v := vals[l.key]; v != nil {
					k = IDString(v)
				}
				rows[k] = append(rows[k], data(l.Table, vals, 0))
				return nil
			})
			if err != nil {
				return fmt.Errorf("list %s: %w", l.name, err)
			}
		}
		for _, r := range b.recs {
			items := rows[r.ID]
			if items == nil {
				items = []any{}
			}
			r.Data[l.name] = items
		}
	}
	return nil
}

// Scan implements connector.Conn by keyset pagination in one read-only transaction (one
// snapshot): pages ordered by (updated, id), or id alone, each read to its end, given its
// lists and handed to fn. Records whose updated value is NULL come first, by id, in a full
// scan; a scan since a watermark reads only records whose updated value is at or after it.
func (c *Conn) Scan(ctx context.Context, name, since string, fn func([]connector.Record) error) error {
	e, err := c.entity(ctx, name)
	if err != nil {
		return err
	}
	tx, err := c.db.Begin(ctx, true)
	if err != nil {
		return c.scrub(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return c.scrub(c.scan(ctx, tx, e, since, fn))
}

// scanPhase is a part of a scan: the rows of a condition, in the order of a keyset.
type scanPhase struct {
	where string // the phase's condition
	args  []any
	keys  []int // the keyset's columns
}

// scanPhases are the parts of a scan: by id alone without an updated column; else the rows
// whose updated value is NULL, by id, then the others by (updated, id); since a watermark, the
// rows at or after it.
func (c *Conn) scanPhases(e *entity, since string) []scanPhase {
	if e.updated < 0 {
		return []scanPhase{{keys: []int{e.id}}}
	}
	uq := c.d.Quote(e.Cols[e.updated].Name)
	if since == "" {
		return []scanPhase{{where: uq + " IS NULL", keys: []int{e.id}}, {where: uq + " IS NOT NULL", keys: []int{e.updated, e.id}}}
	}
	bound, err := c.d.Encode(&e.Cols[e.updated], since) // the watermark in the column's text
	if err != nil || bound == nil {
		bound = &since
	}
	return []scanPhase{{where: uq + " >= " + c.d.Param(1, &e.Cols[e.updated]), args: []any{*bound}, keys: []int{e.updated, e.id}}}
}

func (c *Conn) scan(ctx context.Context, tx Tx, e *entity, since string, fn func([]connector.Record) error) error {
	phases := c.scanPhases(e, since)
	for _, p := range phases {
		var order []string
		for _, k := range p.keys {
			order = append(order, c.d.Quote(e.Cols[k].Name))
		}
		var after []any // the keyset of the last row read
		for {
			where := p.where
			args := append([]any(nil), p.args...)
			if after != nil {
				params := make([]string, len(p.keys))
				for i, k := range p.keys {
					params[i] = c.d.Param(len(args)+1, &e.Cols[k])
					args = append(args, after[i])
				}
				cond := "(" + strings.Join(order, ", ") + ") > (" + strings.Join(params, ", ") + ")"
				if len(p.keys) == 1 {
					cond = order[0] + " > " + params[0]
				}
				where = strings.TrimPrefix(where+" AND "+cond, " AND ")
			}
			clause := ""
			if where != "" {
				clause = " WHERE " + where
			}
			clause += " ORDER BY " + strings.Join(order, ", ") + " LIMIT " + strconv.Itoa(Page)
			b := &batch{recs: make([]connector.Record, 0, Page), ids: make([]string, 0, Page)}
			var last []*string
			err := c.rowsOf(ctx, tx, e.Table, clause, args, func(vals []any, text []*string) error {
				b.add(e, vals, text)
				last = text
				return nil
			})
			if err != nil {
				return err
			}
			if len(b.recs) == 0 {
				break
			}
			after = make([]any, len(p.keys))
			for i, k := range p.keys {
				s, err := c.d.Encode(&e.Cols[k], b.recs[len(b.recs)-1].Data[e.Cols[k].Name])
				if err != nil || s == nil {
					s = last[k]
				}
				after[i] = *s
			}
			if err := c.attachLists(ctx, tx, e, b); err != nil {
				return err
			}
			if err := fn(b.recs); err != nil {
				return err
			}
			if len(b.recs) < Page {
				break
			}
		}
	}
	return nil
}

// Get implements connector.Conn, reading ids in chunks in one snapshot.
func (c *Conn) Get(ctx context.Context, name string, ids []string) (map[string]connector.Record, error) {
	e, err := c.entity(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]connector.Record, len(ids))
	err = c.retry(ctx, func() error {
		tx, err := c.db.Begin(ctx, true)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		got, err := c.readIDs(ctx, tx, e, ids)
		if err != nil {
			return err
		}
		for id, s := range got {
			out[id] = s.rec
		}
		return nil
	})
	return out, c.scrub(err)
}

// stored is a record as read, with its id's text as the server gives it.
type stored struct {
	rec connector.Record
	id  string
}

// readIDs reads records by id, in chunks, with their lists. An id the column cannot hold (a
// text id for an integer column) is a record that does not exist.
func (c *Conn) readIDs(ctx context.Context, q Querier, e *entity, ids []string) (map[string]stored, error) {
	out := make(map[string]stored, len(ids))
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if c.holds(&e.Cols[e.id], id) {
			valid = append(valid, id)
		}
	}
	for start := 0; start < len(valid); start += Chunk {
		chunk := valid[start:min(start+Chunk, len(valid))]
		cond, args := c.in(e.Table, e.id, 1, chunk)
		b := &batch{}
		if err := c.rowsOf(ctx, q, e.Table, " WHERE "+cond, args, func(vals []any, text []*string) error { b.add(e, vals, text); return nil }); err != nil {
			return nil, err
		}
		if err := c.attachLists(ctx, q, e, b); err != nil {
			return nil, err
		}
		for i, r := range b.recs {
			out[r.ID] = stored{r, b.ids[i]}
		}
	}
	return out, nil
}

// holds reports whether an id's text can be a value of an integer or UUID id column, so that a
// lookup of ids of another shape finds nothing instead of failing the whole query.
func (c *Conn) holds(col *Column, id string) bool {
	switch col.Kind {
	case Int:
		_, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			_, err = strconv.ParseUint(id, 10, 64)
		}
		return err == nil
	case UUID:
		return len(strings.ReplaceAll(id, "-", "")) == 32
	}
	return true
}

// Find implements connector.Finder: one query per chunk of keys with a condition per path
// (postgres: `= ANY($1)`, mysql: `IN (...)`). Lists, JSON, arrays and bytes are not searched
// (connector.ErrCannotFind).
func (c *Conn) Find(ctx context.Context, name string, paths []string, keys [][]string) ([]connector.Record, error) {
	e, err := c.entity(ctx, name)
	if err != nil {
		return nil, err
	}
	cols := make([]int, len(paths))
	for i, p := range paths {
		ci, ok := e.Index[p]
		if !ok || e.Cols[ci].Kind == JSON || e.Cols[ci].Kind == Array || e.Cols[ci].Kind == Bytes {
			return nil, fmt.Errorf("entity %s, property %q: %w", name, p, connector.ErrCannotFind)
		}
		cols[i] = ci
	}
	var out []connector.Record
	seen := map[string]bool{}
	for start := 0; start < len(keys); start += Chunk {
		chunk := keys[start:min(start+Chunk, len(keys))]
		var where []string
		var args []any
		empty := false
		for i, ci := range cols {
			var vals []string
			for _, k := range chunk {
				if i < len(k) && c.holdsKey(&e.Cols[ci], k[i]) {
					vals = append(vals, k[i])
				}
			}
			if len(vals) == 0 {
				empty = true
				break
			}
			cond, a := c.in(e.Table, ci, len(args)+1, vals)
			where, args = append(where, cond), append(args, a...)
		}
		if empty {
			continue
		}
		var b *batch
		err := c.retry(ctx, func() error {
			b = &batch{}
			return c.rowsOf(ctx, c.db, e.Table, " WHERE "+strings.Join(where, " AND "), args, func(vals []any, text []*string) error { b.add(e, vals, text); return nil })
		})
		if err == nil {
			err = c.attachLists(ctx, c.db, e, b)
		}
		if err != nil {
			if c.d.RecordError(err) {
				idx := make([]int, len(chunk))
				for i := range idx {
					idx[i] = start + i
				}
				return nil, &connector.RecordError{Index: idx, Err: c.scrub(err)}
			}
			return nil, c.scrub(err)
		}
		for _, r := range b.recs {
			if !seen[r.ID] {
				seen[r.ID] = true
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// holdsKey reports whether a key value in the engine's text form can equal a value of the
// column; others are left out of the query (they match nothing).
func (c *Conn) holdsKey(col *Column, v string) bool {
	switch col.Kind {
	case Int:
		return c.holds(col, v)
	case Decimal, Float:
		f, err := strconv.ParseFloat(v, 64)
		return err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	case Bool:
		return v == "true" || v == "false"
	case UUID:
		return c.holds(col, v)
	}
	return true
}

// Count implements connector.Counter.
func (c *Conn) Count(ctx context.Context, name string) (int, error) {
	e, err := c.entity(ctx, name)
	if err != nil {
		return 0, err
	}
	var n int
	err = c.retry(ctx, func() error {
		rows, err := c.db.Query(ctx, "SELECT "+c.d.CountText()+" FROM "+e.Quoted)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return err
			}
			n, err = strconv.Atoi(*v[0])
			if err != nil {
				return err
			}
		}
		return rows.Err()
	})
	return n, c.scrub(err)
}
