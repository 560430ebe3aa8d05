package sqlite

// The entities' tables as the connection reads them: columns, lists, Scan and Get.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	sqlite3 "github.com/mattn/go-sqlite3"
)

// table is a table's columns as the connector reads and writes them.
type table struct {
	name   string
	quoted string // Quote(name)
	cols   []column
	index  map[string]int
	byName []int  // column indexes in the order of their names: a change's statement order
	selcol string // the select list: +"a", +"b" (unary + drops the declared type, so the
	// driver returns what SQLite stores instead of guessing time.Time for DATETIME text)
	alias int // the column that is an alias of the rowid (INTEGER PRIMARY KEY), -1 for none
	// shapes is what the table does to an inserted row, as last read (see rowShape).
	shapes atomic.Pointer[rowShape]
	// noBulk is set once SQLite numbered the rows of a bulk insert otherwise than expected:
	// the table's creates insert a record at a time from then on (see bulk.go).
	noBulk atomic.Bool
	bulkSQLCache
}

type column struct {
	name, declared string
	quoted         string // Quote(name), made once: statements are built per record
	kind           kind
	keepsText      bool // see keepsText
}

// entity is a system entity resolved against its table.
type entity struct {
	name string
	*table
	id, updated int   // column indexes; updated is -1 when the entity has none
	skipID      []int // []int{id}: the columns a create without an id leaves to SQLite or makes
	textID      bool  // new records without an id get a generated one
	lists       []*list
	listIndex   map[string]*list
	predictions sync.Pool // *prediction: the room of a Create's, reused by the next
	bulks       sync.Pool // *bulkInsert: likewise
}

// list is a child table presented as a list property.
type list struct {
	name string
	*table
	key, id int
	textID  bool
}

// entity resolves an entity by name, once per connection.
func (c *conn) entity(ctx context.Context, name string) (*entity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entities[name]; ok {
		return e, nil
	}
	ce := c.sys.Entity(name)
	if ce == nil {
		return nil, fmt.Errorf("system %s has no entity %q%s", c.sys.ID.Value, name, diag.DidYouMean(name, c.sys.EntityNames()))
	}
	var root *schema.Property
	if s := c.schemas[name]; s != nil {
		root = s.Root
	}
	t, err := c.table(ctx, Table(ce), root)
	if err != nil {
		return nil, fmt.Errorf("entity %s: %w", name, err)
	}
	e := &entity{name: name, table: t, updated: -1, listIndex: map[string]*list{}}
	if e.id, err = t.column(ce.ID.Value, "id"); err != nil {
		return nil, fmt.Errorf("entity %s: %w", name, err)
	}
	e.skipID = []int{e.id}
	if ce.Updated.Value != "" {
		if e.updated, err = t.column(ce.Updated.Value, "updated"); err != nil {
			return nil, fmt.Errorf("entity %s: %w", name, err)
		}
	}
	e.textID = isText(t, e.id, root)
	for _, l := range Lists(ce) {
		var items *schema.Property
		if root != nil && root.Properties[l.Name] != nil {
			items = root.Properties[l.Name].Items
		}
		if _, clash := t.index[l.Name]; clash {
			return nil, fmt.Errorf("entity %s: list %q has the name of a column of table %s", name, l.Name, Quote(t.name))
		}
		lt, err := c.table(ctx, l.Table, items)
		if err != nil {
			return nil, fmt.Errorf("entity %s, list %s: %w", name, l.Name, err)
		}
		li := &list{name: l.Name, table: lt}
		if li.key, err = lt.column(l.Key, "key"); err != nil {
			return nil, fmt.Errorf("entity %s, list %s: %w", name, l.Name, err)
		}
		if li.id, err = lt.column(l.ID, "id"); err != nil {
			return nil, fmt.Errorf("entity %s, list %s: %w", name, l.Name, err)
		}
		li.textID = isText(lt, li.id, items)
		e.lists = append(e.lists, li)
		e.listIndex[l.Name] = li
	}
	c.entities[name] = e
	return e, nil
}

// table reads a table's columns; p describes its rows (nil when there is no schema).
func (c *conn) table(ctx context.Context, name string, p *schema.Property) (*table, error) {
	cols, err := Columns(ctx, c.r, name)
	if err != nil {
		return nil, err
	}
	t := &table{name: name, quoted: Quote(name), index: map[string]int{}, alias: -1}
	if t.alias, err = rowidAlias(ctx, c.r, name, cols); err != nil {
		return nil, err
	}
	sel := make([]string, len(cols))
	for i, col := range cols {
		var cp *schema.Property
		if p != nil {
			cp = p.Properties[col.Name]
		}
		t.cols = append(t.cols, column{name: col.Name, declared: col.Declared, quoted: Quote(col.Name),
			kind: kindOf(col.Declared, cp), keepsText: keepsText(col.Declared)})
		t.index[col.Name] = i
		t.byName = append(t.byName, i)
		sel[i] = "+" + t.cols[i].quoted
	}
	sort.Slice(t.byName, func(a, b int) bool { return t.cols[t.byName[a]].name < t.cols[t.byName[b]].name })
	t.selcol = strings.Join(sel, ", ")
	return t, nil
}

// column finds a column named in the system file (what: "id", "updated", "key").
func (t *table) column(name, what string) (int, error) {
	if i, ok := t.index[name]; ok {
		return i, nil
	}
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.name
	}
	return 0, fmt.Errorf("the %s column %q is not a column of table %s%s", what, name, Quote(t.name), diag.DidYouMean(name, names))
}

// isText reports whether a table's id column holds text, by the schema or else by the
// column's declared type.
func isText(t *table, id int, p *schema.Property) bool {
	if p != nil {
		if ip := p.Properties[t.cols[id].name]; ip != nil && ip.Type() != "" {
			return ip.Type() == schema.String
		}
	}
	jt, _ := schema.TypeOfDeclared(t.cols[id].declared)
	return jt == schema.String
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// each runs a query over t's select list and calls fn with every row's raw values (the slice
// is reused).
func (t *table) each(ctx context.Context, q querier, clause string, args []any, fn func(raw []any) error) error {
	rows, err := q.QueryContext(ctx, "SELECT "+t.selcol+" FROM "+Quote(t.name)+clause, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	raw := make([]any, len(t.cols))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := fn(raw); err != nil {
			return err
		}
	}
	return rows.Err()
}

// data turns a row's raw values into record properties, with room for n more.
func (t *table) data(raw []any, n int) map[string]any {
	d := make(map[string]any, len(t.cols)+n)
	for i, c := range t.cols {
		d[c.name] = fromSQL(c.kind, raw[i])
	}
	return d
}

// batch is records read but not yet given out, with their ids as stored (to read their lists).
type batch struct {
	recs []connector.Record
	ids  []any
}

// newBatch returns an empty batch with room for a Scan batch.
func newBatch() *batch {
	return &batch{recs: make([]connector.Record, 0, scanBatch), ids: make([]any, 0, scanBatch)}
}

func (b *batch) add(e *entity, raw []any) {
	b.recs = append(b.recs, connector.Record{ID: idString(raw[e.id]), Data: e.data(raw, len(e.lists))})
	b.ids = append(b.ids, raw[e.id])
}

// attachLists reads the lists of the batch's records: one query per list and chunk of ids.
func (e *entity) attachLists(ctx context.Context, q querier, b *batch) error {
	for _, l := range e.lists {
		rows := map[string][]any{}
		for start := 0; start < len(b.ids); start += chunkSize {
			ids := b.ids[start:min(start+chunkSize, len(b.ids))]
			clause := " WHERE " + Quote(l.cols[l.key].name) + " IN (" + placeholders(len(ids)) + ")" +
				" ORDER BY " + Quote(l.cols[l.key].name) + ", " + Quote(l.cols[l.id].name)
			err := l.each(ctx, q, clause, ids, func(raw []any) error {
				k := idString(raw[l.key])
				rows[k] = append(rows[k], l.data(raw, 0))
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

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Scan implements connector.Conn. Rows stream from one query in a read transaction; each batch
// gets its lists before fn sees it, so memory holds one batch whatever the table's size.
func (c *conn) Scan(ctx context.Context, name, since string, fn func([]connector.Record) error) error {
	e, err := c.entity(ctx, name)
	if err != nil {
		return err
	}
	tx, err := c.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	reads := []sinceRead{{}}
	order := Quote(e.cols[e.id].name)
	if e.updated >= 0 {
		updated := Quote(e.cols[e.updated].name)
		if since != "" {
			reads = sinceReads(updated, since)
		}
		order = updated + ", " + order
	}
	b := newBatch()
	flush := func() error {
		if err := e.attachLists(ctx, tx, b); err != nil {
			return err
		}
		recs := b.recs
		b = newBatch() // fn may keep recs (and hand them to another goroutine)
		return fn(recs)
	}
	for _, r := range reads {
		err = e.each(ctx, tx, r.clause+" ORDER BY "+order, r.args, func(raw []any) error {
			b.add(e, raw)
			if len(b.recs) == scanBatch {
				return flush()
			}
			return nil
		})
		if err != nil {
			break
		}
	}
	if err == nil && len(b.recs) > 0 {
		err = flush()
	}
	return err
}

// Get implements connector.Conn, reading ids in chunks.
func (c *conn) Get(ctx context.Context, name string, ids []string) (map[string]connector.Record, error) {
	e, err := c.entity(ctx, name)
	if err != nil {
		return nil, err
	}
	tx, err := c.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make(map[string]connector.Record, len(ids))
	for start := 0; start < len(ids); start += chunkSize {
		chunk := ids[start:min(start+chunkSize, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		b, err := e.read(ctx, tx, " WHERE "+Quote(e.cols[e.id].name)+" IN ("+placeholders(len(chunk))+")", args)
		if err != nil {
			return nil, err
		}
		for _, r := range b.recs {
			out[r.ID] = r
		}
	}
	return out, nil
}

// read reads the records a clause selects, with their lists.
func (e *entity) read(ctx context.Context, q querier, clause string, args []any) (*batch, error) {
	b := &batch{}
	if err := e.each(ctx, q, clause, args, func(raw []any) error { b.add(e, raw); return nil }); err != nil {
		return nil, err
	}
	if err := e.attachLists(ctx, q, b); err != nil {
		return nil, err
	}
	return b, nil
}

// one reads the record with the given id (a string, or the id as stored); found is false when
// there is none.
func (e *entity) one(ctx context.Context, q querier, id any) (rec connector.Record, stored any, found bool, err error) {
	b, err := e.read(ctx, q, " WHERE "+Quote(e.cols[e.id].name)+" = ?", []any{id})
	if err != nil || len(b.recs) == 0 {
		return connector.Record{}, nil, false, err
	}
	return b.recs[0], b.ids[0], true, nil
}

// fatal tells a failure of the database or of the run from a failure of one record.
func fatal(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, sql.ErrTxDone) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrConstraint, sqlite3.ErrMismatch, sqlite3.ErrTooBig, sqlite3.ErrRange:
			return false
		}
		return true
	}
	return false
}
