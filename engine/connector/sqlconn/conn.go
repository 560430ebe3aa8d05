package sqlconn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// Conn is the connector.Conn of one SQL database.
type Conn struct {
	d            Dialect
	db           DB
	sys          *config.System
	readOnly     bool
	trackDeletes bool
	secret       string // the DSN's password, scrubbed from every error

	mu       sync.Mutex
	entities map[string]*entity
	tracked  map[string]bool
}

// Options are what a driver read from the system's settings.
type Options struct {
	ReadOnly, TrackDeletes bool
	Secret                 string
}

// New returns the connection of a system over db.
func New(d Dialect, db DB, sys *config.System, o Options) *Conn {
	return &Conn{d: d, db: db, sys: sys, readOnly: o.ReadOnly, trackDeletes: o.TrackDeletes, secret: o.Secret, entities: map[string]*entity{}}
}

// Capabilities implements connector.Conn: the server deletes, every write reads the record
// back in its transaction, and a scan holds a connection of its own. It finds, counts records
// and deletions (with track_deletes), and identifies list elements by their column id.
func (c *Conn) Capabilities() connector.Capabilities {
	return connector.Capabilities{Delete: true, ReturnsStored: true, ConcurrentScan: true, LargeBatches: true,
		Finder: c, Counter: c, DeleteCounter: c, ListIdentifier: c}
}

// Close implements connector.Conn.
func (c *Conn) Close() error {
	c.db.Close()
	return nil
}

// entity is a system entity resolved against its table.
type entity struct {
	name string
	*Table
	id, updated int // column indexes; updated is -1 when the entity has none
	lists       []*list
	listIndex   map[string]*list
}

type list struct {
	name string
	*Table
	key, id int
}

func (c *Conn) scrub(err error) error { return Scrub(err, c.secret) }

// entity resolves an entity by name, once per connection.
func (c *Conn) entity(ctx context.Context, name string) (*entity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entities[name]; ok {
		return e, nil
	}
	ce := c.sys.Entity(name)
	if ce == nil {
		return nil, fmt.Errorf("system %s has no entity %q%s", c.sys.ID.Value, name, diag.DidYouMean(name, c.sys.EntityNames()))
	}
	t, err := c.table(ctx, TableName(ce))
	if err != nil {
		return nil, fmt.Errorf("entity %s: %w", name, err)
	}
	e := &entity{name: name, Table: t, updated: -1, listIndex: map[string]*list{}}
	if e.id, err = t.column(ce.ID.Value, "id"); err != nil {
		return nil, fmt.Errorf("entity %s: %w", name, err)
	}
	if ce.Updated.Value != "" {
		if e.updated, err = t.column(ce.Updated.Value, "updated"); err != nil {
			return nil, fmt.Errorf("entity %s: %w", name, err)
		}
	}
	for _, l := range Lists(ce) {
		if _, clash := t.Index[l.Name]; clash {
			return nil, fmt.Errorf("entity %s: list %q has the name of a column of table %s", name, l.Name, t.Quoted)
		}
		lt, err := c.table(ctx, l.Table)
		if err != nil {
			return nil, fmt.Errorf("entity %s, list %s: %w", name, l.Name, err)
		}
		li := &list{name: l.Name, Table: lt}
		if li.key, err = lt.column(l.Key, "key"); err != nil {
			return nil, fmt.Errorf("entity %s, list %s: %w", name, l.Name, err)
		}
		if li.id, err = lt.column(l.ID, "id"); err != nil {
			return nil, fmt.Errorf("entity %s, list %s: %w", name, l.Name, err)
		}
		e.lists = append(e.lists, li)
		e.listIndex[l.Name] = li
	}
	c.entities[name] = e
	return e, nil
}

func (c *Conn) table(ctx context.Context, name string) (*Table, error) {
	cols, err := c.d.Columns(ctx, c.db, name)
	if err != nil {
		return nil, c.scrub(err)
	}
	return NewTable(c.d, name, cols), nil
}

// column finds a column named in the system file (what: "id", "updated", "key").
func (t *Table) column(name, what string) (int, error) {
	if i, ok := t.Index[name]; ok {
		return i, nil
	}
	names := make([]string, len(t.Cols))
	for i, c := range t.Cols {
		names[i] = c.Name
	}
	return 0, fmt.Errorf("the %s column %q is not a column of table %s%s", what, name, t.Quoted, diag.DidYouMean(name, names))
}

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
		vals := make([]any, len(text))
		for i, s := range text {
			if s == nil {
				continue
			}
			if vals[i], err = c.d.Decode(&t.Cols[i], *s); err != nil {
				return fmt.Errorf("table %s, column %q: %w", t.Quoted, t.Cols[i].Name, err)
			}
		}
		if err := fn(vals, text); err != nil {
			return err
		}
	}
	return rows.Err()
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

func (c *Conn) scan(ctx context.Context, tx Tx, e *entity, since string, fn func([]connector.Record) error) error {
	type phase struct {
		where string // the phase's condition
		args  []any
		keys  []int // the keyset's columns
	}
	var phases []phase
	if e.updated < 0 {
		phases = []phase{{keys: []int{e.id}}}
	} else {
		uq := c.d.Quote(e.Cols[e.updated].Name)
		if since == "" {
			phases = append(phases, phase{where: uq + " IS NULL", keys: []int{e.id}})
			phases = append(phases, phase{where: uq + " IS NOT NULL", keys: []int{e.updated, e.id}})
		} else {
			bound, err := c.d.Encode(&e.Cols[e.updated], since) // the watermark in the column's text
			if err != nil || bound == nil {
				bound = &since
			}
			phases = append(phases, phase{where: uq + " >= " + c.d.Param(1, &e.Cols[e.updated]), args: []any{*bound}, keys: []int{e.updated, e.id}})
		}
	}
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

// Deletions implements connector.DeleteCounter for a system with track_deletes: true.
func (c *Conn) Deletions(ctx context.Context, name string) (int64, bool, error) {
	if !c.trackDeletes {
		return 0, false, nil
	}
	e, err := c.entity(ctx, name)
	if err != nil {
		return 0, false, err
	}
	n, ok, err := c.d.Deletions(ctx, c.db, e.Table, !c.readOnly)
	if err != nil {
		return 0, false, fmt.Errorf("track_deletes: cannot count the deletions of %s (%w); let dataflow create a table and a trigger in the database, or remove track_deletes",
			e.Quoted, c.scrub(err))
	}
	return n, ok, nil
}

// ListID implements connector.ListIdentifier: a list's elements are identified by its `id` column.
func (c *Conn) ListID(entity, path string) string {
	ce := c.sys.Entity(entity)
	if ce == nil {
		return ""
	}
	for _, l := range Lists(ce) {
		if l.Name == path {
			return l.ID
		}
	}
	return ""
}

// retry runs fn again, after a pause that doubles, while it fails in a way Dialect.Retry
// allows (a serialization failure, a deadlock, a connection lost): up to 5 times in all.
func (c *Conn) retry(ctx context.Context, fn func() error) error {
	wait := 100 * time.Millisecond
	// The pauses end at an interrupt, also inside a batch that is being finished.
	waits, stop := connector.Interruptible(ctx)
	defer stop()
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == 5 || !c.d.Retry(err) || waits.Err() != nil {
			return err
		}
		select {
		case <-waits.Done():
			return errors.Join(err, context.Cause(waits))
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// IDString is the text form of an id, as the engine compares ids.
func IDString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// newTextID is a random id of 24 hex digits for a record created without an id in a text id
// column that has no default (as the sqlite connector makes).
func newTextID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newUUID is a random (version 4) UUID for a UUID id column without a default.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func unknown(t *Table, names []string, lists map[string]*list) error {
	known := make([]string, 0, len(t.Cols)+len(lists))
	for _, c := range t.Cols {
		known = append(known, c.Name)
	}
	for n := range lists {
		known = append(known, n)
	}
	sort.Strings(names)
	if len(names) == 1 {
		return fmt.Errorf("unknown property %q: not a column of table %s%s", names[0], t.Quoted, diag.DidYouMean(names[0], known))
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return fmt.Errorf("unknown properties %s: not columns of table %s", strings.Join(quoted, ", "), t.Quoted)
}

var errReadOnly = errors.New("the connection is read-only")

// Describe describes an entity's table and its lists' tables, for validation.
func Describe(ctx context.Context, d Dialect, q Querier, e *config.Entity, source string) (*schema.Entity, error) {
	table := TableName(e)
	cols, err := d.Columns(ctx, q, table)
	if err != nil {
		return nil, err
	}
	root := PropertyOfColumns(cols)
	for _, l := range Lists(e) {
		childCols, err := d.Columns(ctx, q, l.Table)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.Name, err)
		}
		root.Properties[l.Name] = &schema.Property{Types: []string{schema.Array}, Description: "rows of table " + l.Table, Items: PropertyOfColumns(childCols)}
	}
	return &schema.Entity{Source: "table " + d.QuoteTable(table) + " of " + source, Root: root}, nil
}
