package sqlite

// The tables a connection creates from the entity schemas, and the reads since a watermark.

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/engine/stamp"
)

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
