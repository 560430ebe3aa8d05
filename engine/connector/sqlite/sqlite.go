// Package sqlite is the connector for systems whose records live in a SQLite database file:
// entities are tables, child tables are presented as list properties of their parent. It
// describes tables for validation (columns and their declared types, sqlite.go) and reads and
// writes records for runs (conn.go).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"
)

// Driver is the sqlite connector.
type Driver struct{}

// Name implements connector.Driver.
func (Driver) Name() string { return "sqlite" }

// List is a child table presented as a list property: rows of Table whose Key column holds
// the parent's id, identified by their ID column.
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
		lists = append(lists, List{
			Name: k.Value, Node: k,
			Table: scalar(v.Get("table")), Key: scalar(v.Get("key")), ID: scalar(v.Get("id")),
		})
	}
	return lists
}

// Table returns the entity's table name.
func Table(e *config.Entity) string { return scalar(e.Settings["table"]) }

func scalar(n *config.Node) string {
	if n == nil || n.Kind != config.Scalar {
		return ""
	}
	return n.Value
}

// CheckEntity implements connector.Driver: each list must be a list of objects in the schema.
func (Driver) CheckEntity(e *config.Entity, s *schema.Entity) diag.Diagnostics {
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
			ds.Errorf(l.Node.Range, "list %q must be an array in %s, not %s", l.Name, s.Source, typeName(p))
		}
	}
	return ds
}

func typeName(p *schema.Property) string {
	if t := p.Type(); t != "" {
		return t
	}
	return "untyped"
}

// Describe implements connector.Describer: it reads the declared types of the entity's table
// and of its lists' tables from the database, which it opens read-only.
func (Driver) Describe(ctx context.Context, e *config.Entity) (*schema.Entity, error) {
	db, path, err := openToDescribe(e.System)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	table := Table(e)
	cols, err := Columns(ctx, db, table)
	if err != nil {
		return nil, err
	}
	root := schema.PropertyOfColumns(cols)
	for _, l := range Lists(e) {
		childCols, err := Columns(ctx, db, l.Table)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", l.Name, err)
		}
		root.Properties[l.Name] = &schema.Property{
			Types: []string{schema.Array}, Description: "rows of table " + l.Table,
			Items: schema.PropertyOfColumns(childCols),
		}
	}
	return &schema.Entity{Source: "table " + Quote(table) + " of " + path, Root: root}, nil
}

// openToDescribe opens a system's database read-only, for describing its tables; its errors
// are SettingErrors at `path`.
func openToDescribe(sys *config.System) (*sql.DB, string, error) {
	path := sys.Settings["path"]
	fix := "Entities without a schema file are described from the database: create it, point path at it, or give each entity `schema: <file>.json`."
	if len(path.Missing) > 0 {
		return nil, "", &connector.SettingError{Key: "path", Err: fmt.Errorf("the database path needs the environment variable %s, which is not set", path.Missing[0]), Fix: fix}
	}
	if path.Value == "" {
		return nil, "", &connector.SettingError{Key: "path", Err: errors.New("the database path is empty"), Fix: fix}
	}
	if _, err := os.Stat(path.Value); err != nil {
		where := "relative to the current directory"
		if filepath.IsAbs(path.Value) {
			where = "an absolute path"
		}
		return nil, "", &connector.SettingError{Key: "path", Err: fmt.Errorf("database %s does not exist (%s)", path.Value, where), Fix: fix}
	}
	db, err := Open(path.Value, true)
	if err != nil {
		return nil, "", &connector.SettingError{Key: "path", Err: err, Fix: fix}
	}
	return db, path.Value, nil
}

// Open opens a database file; readOnly never creates or changes it.
func Open(path string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", "5000")
	if readOnly {
		q.Set("mode", "ro")
	}
	u := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	return sql.Open("sqlite3", u)
}

// Columns lists a table's columns with their declared types.
func Columns(ctx context.Context, db *sql.DB, table string) ([]schema.Column, error) {
	rows, err := db.QueryContext(ctx, "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)", table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []schema.Column
	for rows.Next() {
		var c schema.Column
		var notNull, pk int
		if err := rows.Scan(&c.Name, &c.Declared, &notNull, &pk); err != nil {
			return nil, err
		}
		c.NotNull, c.PK = notNull != 0, pk != 0
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s does not exist", Quote(table))
	}
	return cols, nil
}

// Quote quotes an identifier for SQL: "order details", with embedded quotes doubled, so any
// table or column name (Northwind's [Order Details], or a hostile one) stays one identifier.
func Quote(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
