package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// Discover implements connector.Discoverer: the tables of the database file (SQLite's own and
// the connector's deletion counter left out), their columns typed as Describe types them, and
// their primary and foreign keys, read from the PRAGMAs.
func (Driver) Discover(ctx context.Context, sys *config.System, names []string) ([]connector.Table, error) {
	db, _, err := openToDescribe(sys)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	all, err := tableNames(ctx, db)
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
			return nil, fmt.Errorf("table %s does not exist%s", Quote(name), diag.DidYouMean(name, all))
		}
		t, err := discoverTable(ctx, db, name)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", Quote(name), err)
		}
		tables = append(tables, t)
	}
	return tables, nil
}

func tableNames(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'dataflow_deletions' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

func discoverTable(ctx context.Context, db *sql.DB, name string) (connector.Table, error) {
	t := connector.Table{Name: name}
	rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid`, name)
	if err != nil {
		return t, err
	}
	type keyCol struct {
		name string
		pos  int
	}
	var pk []keyCol
	for rows.Next() {
		var c schema.Column
		var notNull, pos int
		if err := rows.Scan(&c.Name, &c.Declared, &notNull, &pos); err != nil {
			rows.Close()
			return t, err
		}
		c.NotNull, c.PK = notNull != 0, pos != 0
		if c.PK {
			pk = append(pk, keyCol{c.Name, pos})
		}
		t.Columns = append(t.Columns, connector.Column{Name: c.Name, Declared: c.Declared,
			Property: schema.PropertyOfColumns([]schema.Column{c}).Properties[c.Name]})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t, err
	}
	sort.Slice(pk, func(i, j int) bool { return pk[i].pos < pk[j].pos })
	for _, k := range pk {
		t.PrimaryKey = append(t.PrimaryKey, k.name)
	}
	rows, err = db.QueryContext(ctx, `SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq`, name)
	if err != nil {
		return t, err
	}
	defer rows.Close()
	last := -1
	for rows.Next() {
		var id int
		var ref, from string
		var to sql.NullString // NULL: the referenced table's primary key
		if err := rows.Scan(&id, &ref, &from, &to); err != nil {
			return t, err
		}
		if id != last {
			t.ForeignKeys = append(t.ForeignKeys, connector.ForeignKey{Ref: ref})
			last = id
		}
		fk := &t.ForeignKeys[len(t.ForeignKeys)-1]
		fk.Columns = append(fk.Columns, from)
		fk.RefColumns = append(fk.RefColumns, to.String)
	}
	if err := rows.Err(); err != nil {
		return t, err
	}
	// A reference without columns names the referenced table's primary key.
	for i := range t.ForeignKeys {
		fk := &t.ForeignKeys[i]
		if fk.RefColumns[0] != "" {
			continue
		}
		ref, err := discoverPK(ctx, db, fk.Ref)
		if err == nil && len(ref) == len(fk.Columns) {
			fk.RefColumns = ref
		}
	}
	return t, nil
}

func discoverPK(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		cols = append(cols, n)
	}
	return cols, rows.Err()
}

// Server implements connector.Locator: the database file, as the system file's path names it.
func (Driver) Server(sys *config.System) string { return sys.Settings["path"].Value }
