package sqlite

// The connection of a run: Driver.Open and the connector.Conn it returns, which reads and
// writes records. Records are rows of the entity's table; each list of the entity is the rows
// of a child table whose key column holds the parent's id, presented as an array of objects
// ordered by the child id. Identifiers are always quoted and values always bound, so a table
// named `Order Details` works and a hostile name is only a missing table.
//
// Two pools share the file: a writer of one connection (SQLite has one writer; BEGIN IMMEDIATE
// takes the write lock up front, so a transaction never fails half-way on a lock upgrade) and
// query-only readers. Scan and Get read in a transaction, so a record and its lists come from
// one snapshot, and WAL lets a Scan callback write through the writer while the scan goes on.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/engine/stamp"
	sqlite3 "github.com/mattn/go-sqlite3"
)

const (
	scanBatch   = 1000 // records per Scan callback
	chunkSize   = 500  // ids per IN (...) of Get and of list reads
	busyTimeout = "5000"
	// stmtCache is the number of prepared statements each connection keeps: a write prepares
	// the same few statements for every record (20% of a Create without it).
	stmtCache = "64"
)

// Open implements connector.Opener. It opens the database in the system's `path` read-write
// (WAL, synchronous=FULL, foreign keys enforced) and never creates it silently: a missing file
// is an error unless the system sets `init: <script.sql>` (run to create and seed it) or
// `create_tables: true` (tables created from the entity schemas, for a local stand-in of an
// API). With create_tables, missing tables of an existing database are created too.
func (Driver) Open(ctx context.Context, sys *config.System, entities map[string]*schema.Entity, opts connector.OpenOptions) (connector.Conn, error) {
	return openSystem(ctx, sys, entities, opts.ReadOnly)
}

// openSystem opens a system's database. A read-only connection (a dry run) changes nothing:
// it neither creates the database nor its tables nor switches it to WAL, and its writes fail.
func openSystem(ctx context.Context, sys *config.System, entities map[string]*schema.Entity, readOnly bool) (*conn, error) {
	path, err := setting(sys, "path")
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, &connector.SettingError{Key: "path", Err: errors.New("the database path is empty"), Fix: "Set path to the SQLite database file."}
	}
	script, err := setting(sys, "init")
	if err != nil {
		return nil, err
	}
	create, err := boolSetting(sys, "create_tables")
	if err != nil {
		return nil, err
	}
	track, err := boolSetting(sys, "track_deletes")
	if err != nil {
		return nil, err
	}
	if readOnly {
		script, create = "", false
	}
	if create {
		if err := checkSchemas(sys, entities); err != nil {
			return nil, err
		}
	}

	mode := "rw"
	switch _, err := os.Stat(path); {
	case err == nil:
	case !errors.Is(err, fs.ErrNotExist):
		return nil, &connector.SettingError{Key: "path", Err: err, Fix: "Point path at a readable SQLite database file."}
	case script != "":
		if err := initialize(ctx, path, script); err != nil {
			return nil, &connector.SettingError{Key: "init", Err: err, Fix: "Fix the script, or point init at the SQL script that creates the database (relative to the current directory)."}
		}
	case create:
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, &connector.SettingError{Key: "path", Err: err, Fix: "Point path at a directory you can write to."}
		}
		mode = "rwc"
	default:
		where := "relative to the current directory"
		if filepath.IsAbs(path) {
			where = "an absolute path"
		}
		fix := "Create the database, point path at it, or set `init: <script.sql>` or `create_tables: true` to have it created."
		if readOnly {
			fix = "A read-only run (a dry run) does not create databases: run once without it, or point path at an existing database."
		}
		return nil, &connector.SettingError{Key: "path", Err: fmt.Errorf("database %s does not exist (%s)", path, where), Fix: fix}
	}

	c, err := open(ctx, path, mode, readOnly)
	if err != nil {
		return nil, &connector.SettingError{Key: "path", Err: err, Fix: "Point path at a SQLite database file you can read and write."}
	}
	c.sys, c.schemas, c.trackDeletes = sys, entities, track
	if create {
		if err := c.createTables(ctx); err != nil {
			c.Close()
			if mode == "rwc" { // do not leave an empty database that would hide the error next time
				for _, suffix := range []string{"", "-wal", "-shm"} {
					os.Remove(path + suffix)
				}
			}
			return nil, err
		}
	}
	return c, nil
}

// boolSetting returns a connector setting that is true or false (false when absent).
func boolSetting(sys *config.System, key string) (bool, error) {
	v, err := setting(sys, key)
	if err != nil || v == "" {
		return false, err
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &connector.SettingError{Key: key, Err: fmt.Errorf("%s must be true or false, not %q", key, v), Fix: "Write " + key + ": true or leave it out."}
	}
	return b, nil
}

// setting returns a connector setting's value ("" when absent); a setting that needs unset
// environment variables is an error naming them.
func setting(sys *config.System, key string) (string, error) {
	s, ok := sys.Settings[key]
	if !ok {
		return "", nil
	}
	if n := len(s.Missing); n > 0 {
		vars, verb := "variable "+s.Missing[0], "is"
		if n > 1 {
			vars, verb = "variables "+strings.Join(s.Missing, ", "), "are"
		}
		return "", &connector.SettingError{Key: key, Err: fmt.Errorf("%s needs the environment %s, which %s not set", key, vars, verb),
			Fix: "Set the variable, or give it a default: ${NAME:-default}."}
	}
	return s.Value, nil
}

// dsn is the go-sqlite3 data source name of a file with the given URI and driver parameters.
func dsn(path string, params url.Values) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params.Encode()
}

func open(ctx context.Context, path, mode string, readOnly bool) (*conn, error) {
	r, err := sql.Open("sqlite3", dsn(path, url.Values{
		"mode": {"rw"}, "_busy_timeout": {busyTimeout}, "_query_only": {"1"},
		"_stmt_cache_size": {stmtCache},
	}))
	if err != nil {
		return nil, err
	}
	r.SetMaxIdleConns(2)
	c := &conn{r: r, entities: map[string]*entity{}}
	if readOnly {
		if err := r.PingContext(ctx); err != nil {
			r.Close()
			return nil, err
		}
		return c, nil
	}
	w, err := sql.Open("sqlite3", dsn(path, url.Values{
		"mode": {mode}, "_busy_timeout": {busyTimeout}, "_journal_mode": {"WAL"},
		"_synchronous": {"FULL"}, "_foreign_keys": {"1"}, "_txlock": {"immediate"},
		"_stmt_cache_size": {stmtCache},
	}))
	if err != nil {
		return nil, err
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	w.SetMaxOpenConns(1)
	if err := w.PingContext(ctx); err != nil { // sets WAL before a reader connects
		w.Close()
		r.Close()
		return nil, err
	}
	c.w = w
	return c, nil
}

// initialize creates the database at path by running the SQL script: in a temporary file
// beside it, linked into place only when the script succeeded, so a failing script or a crash
// leaves no half-seeded database, and a database another process created meanwhile is kept.
func initialize(ctx context.Context, path, script string) error {
	src, err := os.ReadFile(script)
	if err != nil {
		return fmt.Errorf("cannot read the init script: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".init-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	defer func() {
		for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
			os.Remove(tmp + suffix)
		}
	}()
	db, err := sql.Open("sqlite3", dsn(tmp, url.Values{"mode": {"rw"}, "_foreign_keys": {"1"}}))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, string(src))
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("init script %s: %w", script, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return os.Rename(tmp, path) // no hard links on this file system
	}
	return nil
}

// conn is the connector.Conn of one database file.
// Capabilities implements connector.Conn: SQLite deletes, and every write reads the record
// back in its transaction; a scan reads in one read transaction (a snapshot). It finds, counts
// records and deletions (with track_deletes), and identifies list elements by their column id.
func (c *conn) Capabilities() connector.Capabilities {
	return connector.Capabilities{Delete: true, ReturnsStored: true, ConcurrentScan: true, LargeBatches: true, SnapshotScan: true,
		Finder: c, Counter: c, DeleteCounter: c, ListIdentifier: c}
}

type conn struct {
	sys     *config.System
	schemas map[string]*schema.Entity
	w, r    *sql.DB // the writer is nil on a read-only connection

	mu       sync.Mutex
	entities map[string]*entity // resolved on first use

	trackDeletes bool            // the system's track_deletes: Deletions counts with triggers
	tracked      map[string]bool // tables whose trigger this connection has seen or installed
}

// Close implements connector.Conn.
func (c *conn) Close() error {
	err := c.r.Close()
	if c.w != nil {
		err = errors.Join(err, c.w.Close())
	}
	return err
}

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
	id, updated int  // column indexes; updated is -1 when the entity has none
	textID      bool // new records without an id get a generated one
	lists       []*list
	listIndex   map[string]*list
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
	if ch, ok := t.changeByColumn(data, lists, stored, skip); ok {
		return ch, nil
	}
	return t.changeByName(data, lists, stored, skip)
}

// changeByColumn is changeOf for data without errors, by a lookup per column in the order of
// the column names: no sort of the record's names per record. ok is false when a property is
// not a column or a list or a value cannot be written; changeByName then says which, as it
// always has.
func (t *table) changeByColumn(data map[string]any, lists map[string]*list, stored map[string]any, skip []int) (ch change, ok bool) {
	ch.cols, ch.args = make([]int, 0, len(data)+1), make([]any, 0, len(data)+1) // +1: an id or key the caller adds
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
// back (readBack). An error of the record's data, found before anything is written, is an
// invalidData.
func (e *entity) create(ctx context.Context, tx *sql.Tx, data map[string]any) (any, error) {
	var skip []int
	if data[e.cols[e.id].name] == nil {
		skip = append(skip, e.id) // absent or null: SQLite numbers the row, or we make a text id
	}
	ch, err := e.changeOf(data, e.listIndex, nil, skip...)
	if err != nil {
		return nil, invalidData{err}
	}
	if err := ch.checkLists(); err != nil {
		return nil, invalidData{err}
	}
	if len(skip) > 0 && e.textID {
		ch.set(e.id, newTextID())
	}
	id, err := insert(ctx, tx, e.table, e.id, ch)
	if err != nil {
		return nil, err
	}
	for _, lc := range ch.lists {
		if err := lc.l.write(ctx, tx, id, lc.items, false); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// insert inserts a row and returns its id as stored (the rowid SQLite chose, when the id was
// left out of an INTEGER PRIMARY KEY). When the id as stored is known without asking (the
// rowid of an INTEGER PRIMARY KEY, text in a column that keeps text as given) the statement
// is a plain INSERT; else it asks with RETURNING, which costs SQLite three times as much.
func insert(ctx context.Context, tx *sql.Tx, t *table, idCol int, ch change) (any, error) {
	q := t.insertSQL(ch.cols)
	if idCol == t.alias {
		res, err := tx.ExecContext(ctx, q, ch.args...)
		if err != nil {
			return nil, err
		}
		return res.LastInsertId()
	}
	if id := ch.value(idCol); isString(id) && t.cols[idCol].keepsText {
		if _, err := tx.ExecContext(ctx, q, ch.args...); err != nil {
			return nil, err
		}
		return id, nil
	}
	q += " RETURNING +" + t.cols[idCol].quoted
	var id any
	if err := tx.QueryRowContext(ctx, q, ch.args...).Scan(&id); err != nil {
		return nil, err
	}
	if id == nil {
		return nil, fmt.Errorf("the new row of table %s has no id: give %q a value", Quote(t.name), t.cols[idCol].name)
	}
	return id, nil
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
// with their ids as text ("" where absent) and the set of ids.
func (l *list) check(items []any) (objs []map[string]any, ids []string, seen map[string]bool, err error) {
	objs = make([]map[string]any, len(items))
	ids = make([]string, len(items))
	seen = map[string]bool{}
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, nil, nil, fmt.Errorf("%s[%d]: an element of a list must be an object, not %T", l.name, i, it)
		}
		objs[i] = m
		if v := m[l.cols[l.id].name]; v != nil {
			ids[i] = idString(v)
			if seen[ids[i]] {
				return nil, nil, nil, fmt.Errorf("%s[%d]: %s %s appears twice in the list", l.name, i, l.cols[l.id].name, ids[i])
			}
			seen[ids[i]] = true
		}
	}
	return objs, ids, seen, nil
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
			_, err = insert(ctx, tx, l.table, l.id, ch)
		}
		if err != nil {
			return fmt.Errorf("%s[%d]: %w", l.name, i, err)
		}
	}
	return nil
}

// createTables creates each entity's table, and its lists' tables, that the database lacks,
// from the entity schema (checkSchemas made sure there is one): one column per top-level
// property, typed by its JSON type (INTEGER, REAL, BOOLEAN, TEXT; objects and arrays as JSON
// text, checked with json_valid), the id column as primary key (INTEGER PRIMARY KEY for
// integer ids, so SQLite numbers new rows), an index on the updated column and on each list's
// key column. Existing tables are left as they are.
func (c *conn) createTables(ctx context.Context) error {
	fail := func(err error) error {
		return &connector.SettingError{Key: "create_tables", Err: err,
			Fix: "Fix the entity schema or the table names, or create the tables yourself and remove create_tables."}
	}
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, ce := range c.sys.Entities {
		name := ce.Name.Value
		s := c.schemas[name]
		lists := Lists(ce)
		skip := map[string]bool{}
		for _, l := range lists {
			skip[l.Name] = true
		}
		cols := ddlColumns(s.Root, ce.ID.Value, skip)
		var indexes []string
		if ce.Updated.Value != "" {
			indexes = append(indexes, ce.Updated.Value)
		}
		if err := createTable(ctx, tx, Table(ce), cols, indexes); err != nil {
			return fail(fmt.Errorf("entity %s: %w", name, err))
		}
		for _, l := range lists {
			items := s.Root.Properties[l.Name].Items // checkSchemas made sure it is there
			cols := ddlColumns(items, l.ID, nil)
			if items.Properties[l.Key] == nil && l.Key != l.ID {
				// The key column holds the parent's id: it gets the type of the parent's id.
				cols = append(cols, ddlColumn{name: l.Key, typ: keyType(s.Root.Properties[ce.ID.Value])})
			}
			if err := createTable(ctx, tx, l.Table, cols, []string{l.Key}); err != nil {
				return fail(fmt.Errorf("entity %s, list %s: %w", name, l.Name, err))
			}
		}
	}
	return tx.Commit()
}

// checkSchemas checks, before anything is created, that create_tables has what it needs: a
// schema with properties for every entity, and an array of objects for every list.
func checkSchemas(sys *config.System, schemas map[string]*schema.Entity) error {
	for _, ce := range sys.Entities {
		name := ce.Name.Value
		s := schemas[name]
		if s == nil || s.Root == nil || len(s.Root.Properties) == 0 {
			return &connector.SettingError{Key: "create_tables", Err: fmt.Errorf("entity %s has no schema with properties to create table %s from", name, Quote(Table(ce))),
				Fix: "Give every entity `schema: <file>.json` with its properties, or create the tables yourself and remove create_tables."}
		}
		for _, l := range Lists(ce) {
			p := s.Root.Properties[l.Name]
			if p == nil || p.Items == nil || len(p.Items.Properties) == 0 {
				return &connector.SettingError{Key: "create_tables", Err: fmt.Errorf("entity %s: list %s is not an array of objects with properties in %s", name, l.Name, s.Source),
					Fix: "Describe the list's rows in the entity schema: an array whose items are objects with a property per column."}
			}
		}
	}
	return nil
}

type ddlColumn struct {
	name, typ string
	json      bool
}

// keyType is the declared type of a column that refers to ids of property id.
func keyType(id *schema.Property) string {
	if id == nil {
		return "INTEGER" // see ddlColumns
	}
	return sqlType(id)
}

// sqlType is the declared type of a column for a property of a JSON type.
func sqlType(p *schema.Property) string {
	if p == nil {
		return ""
	}
	switch p.Type() {
	case schema.Integer:
		return "INTEGER"
	case schema.Number:
		return "REAL"
	case schema.Boolean:
		return "BOOLEAN"
	case schema.String, schema.Object, schema.Array:
		return "TEXT"
	}
	return "" // several types or none: the column keeps values as given
}

// ddlColumns lists the columns of a table for the properties of p: the id first, as the
// primary key, then the others by name.
func ddlColumns(p *schema.Property, id string, skip map[string]bool) []ddlColumn {
	ip := p.Properties[id]
	idType := sqlType(ip)
	switch {
	case ip == nil || idType == "INTEGER":
		idType = "INTEGER PRIMARY KEY" // a rowid alias: SQLite numbers new rows
	default:
		idType = strings.TrimSpace(idType + " PRIMARY KEY NOT NULL")
	}
	cols := []ddlColumn{{name: id, typ: idType}}
	for _, name := range p.Names() {
		if name == id || skip[name] {
			continue
		}
		prop := p.Properties[name]
		cols = append(cols, ddlColumn{name: name, typ: sqlType(prop), json: kindOf("", prop).json()})
	}
	return cols
}

// createTable creates a table unless it exists, with an index on each column of indexes.
func createTable(ctx context.Context, tx *sql.Tx, name string, cols []ddlColumn, indexes []string) error {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE", name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = strings.TrimSpace(Quote(c.name) + " " + c.typ)
		if c.json {
			defs[i] += " CHECK (json_valid(" + Quote(c.name) + "))"
		}
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE "+Quote(name)+" (\n  "+strings.Join(defs, ",\n  ")+"\n)"); err != nil {
		return err
	}
	for _, col := range indexes {
		if _, err := tx.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS "+Quote(name+"_"+col)+" ON "+Quote(name)+" ("+Quote(col)+")"); err != nil {
			return err
		}
	}
	return nil
}

// sinceReads are the conditions of Scan's incremental read: the records whose last-modified
// value (the quoted column updated) is at or after since. Timestamps of different widths
// ("...21Z" and "...21.723Z") or offsets do not compare as text; as times they do, so each
// condition compares julianday()s, and values that are not times as text.
//
// julianday() of a column cannot use the column's index: alone, the condition reads the whole
// table, which makes a run where nothing changed grow with the table. When since is an ISO 8601
// time, text bounds narrow the read to ranges of the index that hold every later time. A
// time's text is its local time, which differs from UTC by at most 14:59 (the largest offset
// SQLite reads), so every later time's text is at or after b, since less 15 hours (to the
// minute, so that a time without seconds is not left out):
//
//   - "YYYY-MM-DDTHH:MM..." times (and dates alone, later than b's date) are at or after
//     b in that form; so are values that are not times but at or after since as text;
//   - "YYYY-MM-DD HH:MM..." times of b's date sort below the "T" form of that date (a space is
//     below "T"): they are a second range, from b in the space form to the date's "T".
//
// The second range sorts wholly below the first, so reading one then the other reads in the
// column's order, each as a range of the index (a UNION ALL would sort). Values that are not
// ISO text (numbers, in a column that mixes them with times) are left out by the bounds; a
// watermark that is a time comes from a column of times.
//
// A since that is a number (engine/stamp: a counter, epoch seconds) compares numerically,
// never as text ("100" is after "99"): the values stored as numbers, in their index range,
// then those stored as text (numbers sort before text), each read as the number it spells.
// Text that does not start like a number is read too, so that the engine sees, and warns of,
// values that are not stamps.
func sinceReads(updated, since string) []sinceRead {
	if st, err := stamp.Parse(since); err == nil && st.Kind() == stamp.Number {
		n := numberArg(since)
		return []sinceRead{
			{" WHERE typeof(" + updated + ") IN ('integer', 'real') AND " + updated + " >= ?", []any{n}},
			{" WHERE typeof(" + updated + ") = 'text' AND (NOT (" + updated + " GLOB '[0-9]*' OR " + updated + " GLOB '[-+.][0-9]*') OR CAST(" + updated + " AS NUMERIC) >= ?)", []any{n}},
		}
	}
	cond := "(julianday(" + updated + ") >= julianday(?) OR (julianday(" + updated + ") IS NULL AND " + updated + " >= ?))"
	t, ok := isoTime(since)
	if !ok {
		return []sinceRead{{" WHERE " + cond, []any{since, since}}}
	}
	b := t.Add(-15 * time.Hour)
	from := min(b.Format("2006-01-02T15:04"), since)
	spaced, upto := b.Format("2006-01-02 15:04"), min(b.Format("2006-01-02")+"T", from)
	return []sinceRead{
		{" WHERE " + updated + " >= ? AND " + updated + " < ? AND " + cond, []any{spaced, upto, since, since}},
		{" WHERE " + updated + " >= ? AND " + cond, []any{from, since, since}},
	}
}

// numberArg is a number stamp as the SQL argument that compares with it exactly: an int64
// when it is an integer that fits, else a float64.
func numberArg(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// sinceRead is a condition of Scan's incremental read and its arguments.
type sinceRead struct {
	clause string
	args   []any
}

// isoTime parses the ISO 8601 forms SQLite's date functions read, with or without an offset.
func isoTime(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999", "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
