package mysql

import (
	"context"
	"fmt"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"github.com/go-sql-driver/mysql"
)

// Discover implements connector.Discoverer: the base tables of the DSN's database, typed as
// Describe types them, with their keys from information_schema.
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
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return ""
	}
	return cfg.Addr + "/" + cfg.DBName
}

const tablesSQL = `SELECT TABLE_NAME FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> 'dataflow_deletions'
ORDER BY TABLE_NAME`

const primaryKeySQL = `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'
ORDER BY ORDINAL_POSITION`

const foreignKeysSQL = `SELECT CONSTRAINT_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, COLUMN_NAME, REFERENCED_COLUMN_NAME, DATABASE()
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION`

// Tables implements sqlconn.Cataloguer.
func (d *dialect) Tables(ctx context.Context, q sqlconn.Querier) ([]string, error) {
	rows, err := sqlconn.Texts(ctx, q, tablesSQL)
	if err != nil {
		return nil, err
	}
	return sqlconn.Names(rows), nil
}

// Keys implements sqlconn.Cataloguer; a referenced table of another database is named
// database.table.
func (d *dialect) Keys(ctx context.Context, q sqlconn.Querier, table string) ([]string, []connector.ForeignKey, error) {
	schemaName, name := split(table)
	pkRows, err := sqlconn.Texts(ctx, q, primaryKeySQL, schemaName, name)
	if err != nil {
		return nil, nil, err
	}
	fkRows, err := sqlconn.Texts(ctx, q, foreignKeysSQL, schemaName, name)
	if err != nil {
		return nil, nil, fmt.Errorf("foreign keys: %w", err)
	}
	return sqlconn.Names(pkRows), sqlconn.ForeignKeys(fkRows), nil
}
