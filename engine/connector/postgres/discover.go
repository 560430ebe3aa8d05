package postgres

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"github.com/jackc/pgx/v5"
)

// Discover implements connector.Discoverer: the tables of the system's `schema` (else of the
// search path's first schema), typed as Describe types them, with their keys from pg_catalog.
func (Driver) Discover(ctx context.Context, sys *config.System, names []string) ([]connector.Table, error) {
	pool, d, secret, err := connect(ctx, sys, true)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	tables, err := sqlconn.Discover(ctx, d, &db{pool}, names)
	return tables, sqlconn.Scrub(err, secret)
}

// Server implements connector.Locator: host:port/database, never the password.
func (Driver) Server(sys *config.System) string {
	dsn, err := sqlconn.Setting(sys, "dsn")
	if err != nil || dsn == "" {
		return ""
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
}

const tablesSQL = `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'dataflow_deletions'
	AND n.nspname = COALESCE(NULLIF($1::text, ''), current_schema())
ORDER BY c.relname`

const primaryKeySQL = `SELECT a.attname::text
FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass($1::text) AND i.indisprimary
ORDER BY k.ord`

const foreignKeysSQL = `SELECT con.conname::text, rn.nspname::text, rc.relname::text, a.attname::text, ra.attname::text,
	COALESCE(NULLIF($2::text, ''), current_schema())::text
FROM pg_constraint con
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(col, refcol, ord)
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col
JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refcol
JOIN pg_class rc ON rc.oid = con.confrelid
JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE con.contype = 'f' AND con.conrelid = to_regclass($1::text)
ORDER BY con.conname, k.ord`

// Tables implements sqlconn.Cataloguer.
func (d *dialect) Tables(ctx context.Context, q sqlconn.Querier) ([]string, error) {
	rows, err := sqlconn.Texts(ctx, q, tablesSQL, d.schema)
	if err != nil {
		return nil, err
	}
	return sqlconn.Names(rows), nil
}

// Keys implements sqlconn.Cataloguer; a referenced table outside the default schema is named
// schema.table.
func (d *dialect) Keys(ctx context.Context, q sqlconn.Querier, table string) ([]string, []connector.ForeignKey, error) {
	pkRows, err := sqlconn.Texts(ctx, q, primaryKeySQL, d.QuoteTable(table))
	if err != nil {
		return nil, nil, err
	}
	fkRows, err := sqlconn.Texts(ctx, q, foreignKeysSQL, d.QuoteTable(table), d.schema)
	if err != nil {
		return nil, nil, fmt.Errorf("foreign keys: %w", err)
	}
	return sqlconn.Names(pkRows), sqlconn.ForeignKeys(fkRows), nil
}
