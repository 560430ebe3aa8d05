// Package mysql is the connector for systems whose records live in a MySQL 8 or MariaDB 10.11
// database, on github.com/go-sql-driver/mysql. Entities are tables (`db.table` names too),
// child tables are list properties of their parent, as with the sqlite connector; the shared
// machinery is engine/connector/sqlconn, this package is what is MySQL's own: the DSN, the
// catalogue (information_schema), backticks, LAST_INSERT_ID() and the text forms of values.
//
// Statements are sent with their values interpolated by the driver (the text protocol), so
// every value comes back as the server's text, which the connector decodes exactly. Sessions
// run with time_zone '+00:00' and a strict sql_mode, so a value a column cannot hold is an
// error with the server's message instead of a silent truncation.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/go-sql-driver/mysql"
)

// Driver is the mysql connector.
type Driver struct{}

// Name implements connector.Driver.
func (Driver) Name() string { return "mysql" }

// CheckEntity implements connector.Driver: each list must be an array in the entity schema.
func (Driver) CheckEntity(e *config.Entity, s *schema.Entity) diag.Diagnostics {
	return sqlconn.CheckLists(e, s)
}

const connectTimeout = 15 * time.Second

// Open implements connector.Opener: a pool on the system's `dsn`, pinged so that a server that
// is down fails the run before anything is read, with an error naming host and port.
func (Driver) Open(ctx context.Context, sys *config.System, _ map[string]*schema.Entity, opts connector.OpenOptions) (connector.Conn, error) {
	pool, d, secret, err := connect(ctx, sys, opts.ReadOnly)
	if err != nil {
		return nil, err
	}
	track, err := sqlconn.BoolSetting(sys, "track_deletes")
	if err != nil {
		pool.Close()
		return nil, err
	}
	return sqlconn.New(d, &db{pool}, sys, sqlconn.Options{ReadOnly: opts.ReadOnly, TrackDeletes: track, Secret: secret}), nil
}

// Describe implements connector.Describer: the entity's columns from information_schema.
func (Driver) Describe(ctx context.Context, e *config.Entity) (*schema.Entity, error) {
	pool, d, secret, err := connect(ctx, e.System, true)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	s, err := sqlconn.Describe(ctx, d, &db{pool}, e, fmt.Sprintf("database %s at %s", d.database, d.addr))
	return s, sqlconn.Scrub(err, secret)
}

func connect(ctx context.Context, sys *config.System, readOnly bool) (*sql.DB, *dialect, string, error) {
	dsn, err := sqlconn.Setting(sys, "dsn")
	if err != nil {
		return nil, nil, "", err
	}
	if strings.TrimSpace(dsn) == "" {
		return nil, nil, "", &connector.SettingError{Key: "dsn", Err: errors.New("the dsn is empty"),
			Fix: "Set dsn to the database's data source name, e.g. crm:${CRM_PASSWORD}@tcp(127.0.0.1:3306)/crm."}
	}
	secret := passwordOf(dsn)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, "", &connector.SettingError{Key: "dsn", Err: sqlconn.Scrub(fmt.Errorf("the dsn cannot be read: %w", err), secret),
			Fix: "Write dsn as user:password@tcp(host:3306)/database."}
	}
	if cfg.Passwd != "" {
		secret = cfg.Passwd
	}
	if cfg.DBName == "" {
		return nil, nil, "", &connector.SettingError{Key: "dsn", Err: errors.New("the dsn names no database"),
			Fix: "End dsn with /<database>, e.g. crm:${CRM_PASSWORD}@tcp(127.0.0.1:3306)/crm."}
	}
	cfg.InterpolateParams = true // the text protocol: every value comes back as text
	cfg.ParseTime = false
	cfg.Loc = time.UTC
	if cfg.Timeout == 0 {
		cfg.Timeout = connectTimeout
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
	_ = readOnly // a read-only connection writes nothing (sqlconn); MariaDB and MySQL name the session switch differently
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, "", &connector.SettingError{Key: "dsn", Err: sqlconn.Scrub(err, secret), Fix: "Write dsn as user:password@tcp(host:3306)/database."}
	}
	pool := sql.OpenDB(conn)
	pool.SetMaxIdleConns(4)
	pool.SetConnMaxIdleTime(time.Minute)
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	err = pool.PingContext(pctx)
	cancel()
	if err != nil {
		pool.Close()
		return nil, nil, "", &connector.SettingError{Key: "dsn", Err: sqlconn.Scrub(fmt.Errorf("cannot connect to MySQL at %s (database %s, user %s): %w", cfg.Addr, cfg.DBName, cfg.User, err), secret),
			Fix: sqlconn.ConnectFix}
	}
	return pool, &dialect{database: cfg.DBName, addr: cfg.Addr}, secret, nil
}

// passwordOf finds the password of user:password@..., to scrub it from errors even when the
// driver cannot read the DSN.
func passwordOf(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return ""
	}
	if c := strings.Index(dsn[:at], ":"); c >= 0 {
		return dsn[c+1 : at]
	}
	return ""
}

// db adapts a *sql.DB to sqlconn.DB.
type db struct{ pool *sql.DB }

func (d *db) Query(ctx context.Context, q string, args ...any) (sqlconn.Rows, error) {
	r, err := d.pool.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return newRows(r)
}

func (d *db) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := d.pool.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d *db) Begin(ctx context.Context, readOnly bool) (sqlconn.Tx, error) {
	opts := &sql.TxOptions{}
	if readOnly {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	t, err := d.pool.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &tx{t}, nil
}

func (d *db) Close() { d.pool.Close() }

type tx struct{ t *sql.Tx }

func (t *tx) Query(ctx context.Context, q string, args ...any) (sqlconn.Rows, error) {
	r, err := t.t.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return newRows(r)
}

func (t *tx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := t.t.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execID runs an INSERT and returns the rows it inserted and LAST_INSERT_ID() as the server's
// reply to it tells (the first id an AUTO_INCREMENT column took, 0 for none), with no query
// of its own. The driver hands the id over as an int64: its bits are the server's unsigned id.
func (t *tx) execID(ctx context.Context, q string, args ...any) (int64, uint64, error) {
	res, err := t.t.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, 0, err
	}
	id, err := res.LastInsertId()
	return n, uint64(id), err
}

func (t *tx) Commit(context.Context) error   { return t.t.Commit() }
func (t *tx) Rollback(context.Context) error { return t.t.Rollback() }

type rows struct {
	r    *sql.Rows
	raw  []sql.RawBytes
	ptrs []any
}

func newRows(r *sql.Rows) (*rows, error) {
	cols, err := r.Columns()
	if err != nil {
		r.Close()
		return nil, err
	}
	rs := &rows{r: r, raw: make([]sql.RawBytes, len(cols)), ptrs: make([]any, len(cols))}
	for i := range rs.raw {
		rs.ptrs[i] = &rs.raw[i]
	}
	return rs, nil
}

func (r *rows) Next() bool { return r.r.Next() }
func (r *rows) Err() error { return r.r.Err() }
func (r *rows) Close()     { r.r.Close() }

func (r *rows) Values() ([]*string, error) {
	if err := r.r.Scan(r.ptrs...); err != nil {
		return nil, err
	}
	out := make([]*string, len(r.raw))
	for i, b := range r.raw {
		if b != nil {
			s := string(b)
			out[i] = &s
		}
	}
	return out, nil
}
