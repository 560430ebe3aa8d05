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
