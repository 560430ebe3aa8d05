package sqlconn

import (
	"context"
	"fmt"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
)

// Cataloguer is what a Dialect reads of a database's catalogue for discovery, beyond Columns.
type Cataloguer interface {
	// Tables lists the base tables of the system's schema (postgres) or database (mysql), by
	// name, as a system file's `table` names them.
	Tables(ctx context.Context, q Querier) ([]string, error)
	// Keys returns a table's primary key columns, in key order, and its foreign keys, whose
	// referenced tables are named as Tables names them.
	Keys(ctx context.Context, q Querier, table string) ([]string, []connector.ForeignKey, error)
}

// Discover describes the named tables (every table when names is empty) for
// connector.Discoverer: columns as Describe describes them, primary and foreign keys.
func Discover(ctx context.Context, d Dialect, q Querier, names []string) ([]connector.Table, error) {
	cat, ok := d.(Cataloguer)
	if !ok {
		return nil, fmt.Errorf("the %s connector cannot list tables", d.Name())
	}
	all, err := cat.Tables(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		names = all
	}
	known := map[string]bool{}
	for _, n := range all {
		known[n] = true
	}
	var tables []connector.Table
	for _, name := range names {
		if !known[name] {
			return nil, fmt.Errorf("table %s does not exist%s", d.QuoteTable(name), diag.DidYouMean(name, all))
		}
		cols, err := d.Columns(ctx, q, name)
		if err != nil {
			return nil, err
		}
		t := connector.Table{Name: name}
		for _, c := range cols {
			t.Columns = append(t.Columns, connector.Column{Name: c.Name, Declared: c.Declared, Property: c.Property()})
		}
		if t.PrimaryKey, t.ForeignKeys, err = cat.Keys(ctx, q, name); err != nil {
			return nil, fmt.Errorf("table %s: %w", d.QuoteTable(name), err)
		}
		tables = append(tables, t)
	}
	return tables, nil
}

// Texts reads a result of one or more text columns; NULLs are "".
func Texts(ctx context.Context, q Querier, sql string, args ...any) ([][]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			return nil, err
		}
		row := make([]string, len(v))
		for i, s := range v {
			if s != nil {
				row[i] = *s
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// Names is the first column of a catalogue's rows: table or column names, in their order.
func Names(rows [][]string) []string {
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r[0]
	}
	return names
}

// ForeignKeys groups the rows of a catalogue's query of foreign keys, one row per column in
// key order: constraint name, referenced table's schema (or database), referenced table,
// column, referenced column, and the schema (or database) that tables are named without. A
// referenced table outside it is named schema.table.
func ForeignKeys(rows [][]string) []connector.ForeignKey {
	var fks []connector.ForeignKey
	last := ""
	for _, r := range rows {
		if r[0] != last || len(fks) == 0 {
			ref := r[2]
			if r[1] != r[5] {
				ref = r[1] + "." + r[2]
			}
			fks = append(fks, connector.ForeignKey{Ref: ref})
			last = r[0]
		}
		fk := &fks[len(fks)-1]
		fk.Columns = append(fk.Columns, r[3])
		fk.RefColumns = append(fk.RefColumns, r[4])
	}
	return fks
}
