// Package sqlconn is what the connectors of SQL servers (postgres, mysql) share: an entity is a
// table, each of its `lists` a child table whose key column holds the parent's id, presented as
// an array of objects ordered by the child id, exactly as the sqlite connector presents them.
// A Dialect says how a server quotes, binds, describes and converts; a DB runs the statements
// (pgxpool for postgres, database/sql for mysql). The settings (`table`, `id`, `updated`,
// `lists`) are those of the sqlite connector.
//
// Reads stream by keyset pagination: pages of Page rows ordered by (updated, id) or id, each
// page read to its end before its lists are read and it is handed out, so memory holds one
// page whatever the size of the table, and a callback may write while the scan goes on. Values
// travel as text both ways: each column is selected in a text form the dialect decodes exactly
// (postgres: to_json), and each value is bound as text the server casts to the column's type,
// so a value the column cannot hold fails with the server's own message.
package sqlconn

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// Page is the number of records per Scan callback and per keyset page; Chunk the number of
// ids per lookup (Get, lists, read-back); BulkChunk the number of rows per bulk insert.
const (
	Page      = 1000
	Chunk     = 500
	BulkChunk = 2000
)

// Column is a column as the server's catalogue describes it.
type Column struct {
	Name     string
	Declared string // as the catalogue writes it: numeric(10,2), character varying(20), integer[]
	Type     string // the type to cast bound text to, without modifiers: "pg_catalog"."numeric"
	Kind     Kind
	Elem     Kind // the kind of an array's elements
	NotNull  bool
	PK       bool
	Auto     bool // the server gives a value on insert (serial, identity, auto_increment)
	Enum     []string
	MaxLen   int // VARCHAR(n), CHAR(n); 0 for none
}

// Kind is what a column's values are in records.
type Kind int

const (
	Text     Kind = iota // string
	Int                  // int64 (json.Number beyond it)
	Decimal              // exact: int64, float64 whose shortest form is the value, else json.Number
	Float                // float64
	Bool                 // bool
	Bytes                // base64 text
	JSON                 // any JSON value, objects as map[string]any
	Array                // []any of Elem
	Date                 // "2006-01-02"
	Time                 // "15:04:05"
	DateTime             // timestamp without zone: "2006-01-02T15:04:05.999999"
	Instant              // timestamp with zone: RFC 3339 in UTC
	UUID                 // text
)

// Property describes a column as a schema property.
func (c Column) Property() *schema.Property {
	p := &schema.Property{Description: "column " + c.Name + " " + c.Declared, Enum: c.Enum, MaxLength: c.MaxLen}
	p.Types, p.Format = kindType(c.Kind)
	if c.Kind == Array {
		et, ef := kindType(c.Elem)
		p.Items = &schema.Property{Types: append(et, schema.Null), Format: ef}
		if c.Elem == JSON {
			p.Items.Open = true
		}
	}
	if c.Kind == JSON {
		p.Open = true
	}
	if !c.NotNull && !c.PK {
		p.Types = append(p.Types, schema.Null)
	}
	return p
}

func kindType(k Kind) ([]string, string) {
	switch k {
	case Int:
		return []string{schema.Integer}, ""
	case Decimal, Float:
		return []string{schema.Number}, ""
	case Bool:
		return []string{schema.Boolean}, ""
	case JSON:
		return []string{schema.Object}, ""
	case Array:
		return []string{schema.Array}, ""
	case Bytes:
		return []string{schema.String}, "byte"
	case Date:
		return []string{schema.String}, "date"
	case Time:
		return []string{schema.String}, "time"
	case DateTime, Instant:
		return []string{schema.String}, "date-time"
	case UUID:
		return []string{schema.String}, "uuid"
	}
	return []string{schema.String}, ""
}

// PropertyOfColumns describes a row of a table.
func PropertyOfColumns(cols []Column) *schema.Property {
	p := &schema.Property{Types: []string{schema.Object}, Properties: map[string]*schema.Property{}}
	for _, c := range cols {
		p.Properties[c.Name] = c.Property()
	}
	return p
}

// Rows is a result being read; each value is the column's text form or nil (NULL).
type Rows interface {
	Next() bool
	Values() ([]*string, error)
	Err() error
	Close()
}

// Querier runs statements: the pool, or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
}

// Tx is a transaction.
type Tx interface {
	Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// DB is a pool of connections to one database.
type DB interface {
	Querier
	// Begin starts a transaction; a read-only one sees one snapshot (repeatable read).
	Begin(ctx context.Context, readOnly bool) (Tx, error)
	Close()
}

// Dialect is what differs between servers.
type Dialect interface {
	// Name is the connector's name, in messages.
	Name() string
	// Quote quotes an identifier; QuoteTable a table name that may be schema-qualified.
	Quote(ident string) string
	QuoteTable(table string) string
	// Param is the marker of the n-th (1-based) bound value, cast to the column's type.
	Param(n int, c *Column) string
	// In is the condition that column c (quoted as col) equals one of n values bound from
	// parameter first on, and the values to bind (postgres binds one array).
	In(col string, c *Column, first int, vals []string) (string, []any)
	// Select is the expression that selects column c (quoted as col) in the text form Decode reads.
	Select(col string, c *Column) string
	// Decode turns a column's text form into a record value; Encode a record value into the
	// text to bind (nil for NULL).
	Decode(c *Column, text string) (any, error)
	Encode(c *Column, v any) (*string, error)
	// Columns describes a table; Insert inserts a row and returns its id's text form.
	Columns(ctx context.Context, q Querier, table string) ([]Column, error)
	Insert(ctx context.Context, tx Tx, t *Table, cols []int, args []any, id int) (string, error)
	// RecordError reports whether err is a failure of one record's values (a constraint, a
	// value the column cannot hold) rather than of the database or the connection.
	RecordError(err error) bool
	// Retry reports whether a transaction that failed with err may be run again as a whole
	// (a serialization failure, a deadlock, a connection lost before the commit).
	Retry(err error) bool
	// CountText is the select expression of count(*) as text.
	CountText() string
	// Deletions installs (when install) and reads the deletion counter of a table.
	Deletions(ctx context.Context, db DB, t *Table, install bool) (int64, bool, error)
}

// BulkInserter is the optional ability of a Dialect to insert many rows in one round trip
// (postgres: a pipeline of INSERT ... RETURNING), returning their ids' text in order. A
// failure of any row fails the call; the batch is then written a row at a time.
type BulkInserter interface {
	InsertMany(ctx context.Context, tx Tx, t *Table, rows []Row, id int) ([]string, error)
}

// StoredInserter is the optional ability of a BulkInserter to give, with the rows' ids, the
// rows as they are stored, each in the form of Table.Select (a column's text or nil), so that
// they need no read-back. stored is nil when the dialect cannot tell (a trigger or a rule
// may change a row after the insert), and the rows are read back.
type StoredInserter interface {
	InsertManyStored(ctx context.Context, tx Tx, t *Table, rows []Row, id int) (ids []string, stored [][]*string, err error)
}

// BulkExecer is the optional ability of a Dialect to run many statements in one round trip
// (postgres: a pipeline), in order; a failure of any fails the call.
type BulkExecer interface {
	ExecMany(ctx context.Context, tx Tx, stmts []Stmt) error
}

// Stmt is a statement with its arguments.
type Stmt struct {
	SQL  string
	Args []any
}

// Row is one row to insert: column indexes and the text bound to each.
type Row struct {
	Cols []int
	Args []any
}

// Table is a table's columns.
type Table struct {
	Name   string // as the system file writes it
	Quoted string
	Cols   []Column
	Index  map[string]int
	Select string // the select list
}

// NewTable builds a table from its columns.
func NewTable(d Dialect, name string, cols []Column) *Table {
	t := &Table{Name: name, Quoted: d.QuoteTable(name), Cols: cols, Index: map[string]int{}}
	sel := make([]string, len(cols))
	for i := range cols {
		t.Index[cols[i].Name] = i
		// Aliased: an ORDER BY of a column's name must sort by the column, not by its text.
		sel[i] = d.Select(d.Quote(cols[i].Name), &t.Cols[i]) + " AS " + d.Quote("c"+strconv.Itoa(i))
	}
	t.Select = strings.Join(sel, ", ")
	return t
}

// List is a child table presented as a list property.
type List struct {
	Name, Table, Key, ID string
	Node                 *config.Node
}

// Lists reads an entity's `lists` setting.
func Lists(e *config.Entity) []List {
	n := e.Settings["lists"]
	if n == nil || n.Kind != config.Map {
		return nil
	}
	var lists []List
	for i, k := range n.Keys {
		v := n.Vals[i]
		lists = append(lists, List{Name: k.Value, Node: k,
			Table: scalar(v.Get("table")), Key: scalar(v.Get("key")), ID: scalar(v.Get("id"))})
	}
	return lists
}

// TableName returns the entity's table name.
func TableName(e *config.Entity) string { return scalar(e.Settings["table"]) }

func scalar(n *config.Node) string {
	if n == nil || n.Kind != config.Scalar {
		return ""
	}
	return n.Value
}

// Setting returns a connector setting's value ("" when absent); a setting that needs unset
// environment variables is an error naming them.
func Setting(sys *config.System, key string) (string, error) {
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

// BoolSetting returns a setting that is true or false (false when absent).
func BoolSetting(sys *config.System, key string) (bool, error) {
	v, err := Setting(sys, key)
	if err != nil || v == "" {
		return false, err
	}
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, &connector.SettingError{Key: key, Err: fmt.Errorf("%s must be true or false, not %q", key, v), Fix: "Write " + key + ": true or leave it out."}
}

// Scrub removes a secret (the DSN's password) from an error's text, keeping the error's
// chain for errors.Is and errors.As.
func Scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &scrubbed{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx"), err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }

// Unwrap keeps errors.Is (a cancelled context) and errors.As (the server's error code) working.
func (s *scrubbed) Unwrap() error { return s.err }

// CheckLists reports lists that are not arrays of the entity's schema (s nil: no schema).
func CheckLists(e *config.Entity, s *schema.Entity) diag.Diagnostics {
	var ds diag.Diagnostics
	if s == nil {
		return nil
	}
	for _, l := range Lists(e) {
		p, ok := s.Root.Properties[l.Name]
		if !ok {
			if !s.Root.Open {
				ds.Errorf(l.Node.Range, "list %q is not a property of %s%s", l.Name, s.Source, diag.DidYouMean(l.Name, s.Root.Names())).
					WithDetail("Add %q to the entity schema as an array of the child rows.", l.Name)
			}
			continue
		}
		if !p.Has(schema.Array) {
			t := p.Type()
			if t == "" {
				t = "untyped"
			}
			ds.Errorf(l.Node.Range, "list %q must be an array in %s, not %s", l.Name, s.Source, t)
		}
	}
	return ds
}

// ConnectFix is the advice for a database that cannot be reached.
const ConnectFix = "Start the database server, or check the host, port, database, user and password of dsn; entities with schema files are validated without the database."
