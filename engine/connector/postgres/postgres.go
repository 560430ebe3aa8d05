// Package postgres is the connector for systems whose records live in a PostgreSQL database,
// on github.com/jackc/pgx/v5 (pgxpool). Entities are tables (schema-qualified names too), child
// tables are list properties of their parent, as with the sqlite connector; the shared
// machinery is engine/connector/sqlconn, this package is what is PostgreSQL's own: the DSN,
// the catalogue (pg_catalog), quoting, and the exact text forms of values.
//
// Values are read as to_json(column)::text, which PostgreSQL writes exactly (numeric digits as
// stored, timestamps in ISO 8601, arrays and JSON as JSON), and written as text that the
// statement casts to the column's type ($1::text::"pg_catalog"."numeric"), so a value the
// column cannot hold fails with PostgreSQL's own message. Sessions run with TimeZone=UTC.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/connector/sqlconn"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Driver is the postgres connector.
type Driver struct{}

// Name implements connector.Driver.
func (Driver) Name() string { return "postgres" }

// CheckEntity implements connector.Driver: each list must be an array in the entity schema.
func (Driver) CheckEntity(e *config.Entity, s *schema.Entity) diag.Diagnostics {
	return sqlconn.CheckLists(e, s)
}

// connectTimeout bounds the first connection of a run (and of validation).
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

// Describe implements connector.Describer: the entity's columns from the catalogue.
func (Driver) Describe(ctx context.Context, e *config.Entity) (*schema.Entity, error) {
	pool, d, secret, err := connect(ctx, e.System, true)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	cfg := pool.Config().ConnConfig
	s, err := sqlconn.Describe(ctx, d, &db{pool}, e, fmt.Sprintf("database %s at %s", cfg.Database, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))))
	return s, sqlconn.Scrub(err, secret)
}

// connect opens and pings a pool; its errors never hold the password.
func connect(ctx context.Context, sys *config.System, readOnly bool) (*pgxpool.Pool, *dialect, string, error) {
	dsn, err := sqlconn.Setting(sys, "dsn")
	if err != nil {
		return nil, nil, "", err
	}
	if strings.TrimSpace(dsn) == "" {
		return nil, nil, "", &connector.SettingError{Key: "dsn", Err: errors.New("the dsn is empty"),
			Fix: "Set dsn to the database's URL, e.g. postgres://user:${PGPASSWORD}@127.0.0.1:5432/crm, or key=value settings as libpq takes them."}
	}
	schemaName, err := sqlconn.Setting(sys, "schema")
	if err != nil {
		return nil, nil, "", err
	}
	secret := passwordOf(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, "", &connector.SettingError{Key: "dsn", Err: sqlconn.Scrub(fmt.Errorf("the dsn cannot be read: %w", err), secret),
			Fix: "Write dsn as a URL (postgres://user:password@host:5432/database) or as key=value settings (host=... port=... dbname=...)."}
	}
	if cfg.ConnConfig.Password != "" {
		secret = cfg.ConnConfig.Password
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.RuntimeParams["application_name"] = "dataflow"
	if readOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, connectTimeout)
		err = pool.Ping(pctx)
		cancel()
		if err != nil {
			pool.Close()
		}
	}
	if err != nil {
		where := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
		return nil, nil, "", &connector.SettingError{Key: "dsn", Err: sqlconn.Scrub(fmt.Errorf("cannot connect to PostgreSQL at %s (database %s, user %s): %w", where, cfg.ConnConfig.Database, cfg.ConnConfig.User, cause(err)), secret),
			Fix: sqlconn.ConnectFix}
	}
	return pool, &dialect{schema: schemaName}, secret, nil
}

// cause is a connection error without pgx's repetition of the address, which connect's own
// message gives, and of each attempt (sslmode=prefer tries twice): the last attempt's reason,
// "dial error: connect: connection refused". Its chain is the pgx error's.
func cause(err error) error {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		return err
	}
	msg := strings.TrimSpace(ce.Unwrap().Error())
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	return &reason{msg: attempt.ReplaceAllString(msg, ""), err: err}
}

// attempt is pgx's prefix of one connection attempt's error: "127.0.0.1:5432 (127.0.0.1): ".
var attempt = regexp.MustCompile(`^\S+ \([^)]*\): `)

type reason struct {
	msg string
	err error
}

func (r *reason) Error() string { return r.msg }
func (r *reason) Unwrap() error { return r.err }

var kvPassword = regexp.MustCompile(`(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// passwordOf finds the password in a DSN, to scrub it from errors even when pgx cannot read
// the DSN.
func passwordOf(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			return p
		}
	}
	if m := kvPassword.FindStringSubmatch(dsn); m != nil {
		return strings.Trim(m[1], "'")
	}
	if i := strings.Index(dsn, "://"); i >= 0 { // a URL url.Parse refused: user:password@
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return rest[c+1 : at]
			}
		}
	}
	return ""
}

// db adapts a pgxpool.Pool to sqlconn.DB.
type db struct{ pool *pgxpool.Pool }

func (d *db) Query(ctx context.Context, sql string, args ...any) (sqlconn.Rows, error) {
	r, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return &rows{r: r}, nil
}

func (d *db) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	t, err := d.pool.Exec(ctx, sql, args...)
	return t.RowsAffected(), err
}

// Begin acquires a connection for a transaction whose BEGIN goes to the server with its first
// statement, in one round trip (see tx).
func (d *db) Begin(ctx context.Context, readOnly bool) (sqlconn.Tx, error) {
	c, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	opts := pgx.TxOptions{}
	if readOnly {
		opts = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	}
	return &tx{c: c, opts: opts}, nil
}

func (d *db) Close() { d.pool.Close() }

// tx is a transaction on a connection of the pool. Its BEGIN is sent in one pipeline with the
// first statement (pgx.Batch.BeginTx), not in a round trip of its own before it: a batch of
// creates is then two round trips (begin and insert, commit) rather than three, and on a busy
// machine each round trip is a wait for the server to be scheduled, then the client (the 200
// batches of a first sync of 200,000 records waited 1.1 s for their BEGINs alone).
// PostgreSQL takes a transaction's snapshot at its first statement, not at BEGIN, so nothing
// else changes. (A first statement the server refuses before running anything, when pgx
// prepares it, leaves the BEGIN unrun too: the transaction is then closed, as if rolled back.)
type tx struct {
	c    *pgxpool.Conn // nil once committed or rolled back
	opts pgx.TxOptions
	t    pgx.Tx // nil until the BEGIN is sent
}

// batch sends b as one pipeline, after the BEGIN when it is still to be sent, and returns the
// results of b's statements.
func (t *tx) batch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	switch {
	case t.c == nil:
		return failedBatch{pgx.ErrTxClosed}
	case t.t != nil:
		return t.t.SendBatch(ctx, b)
	}
	first := &pgx.Batch{}
	first.BeginTx(t.opts)
	first.QueuedQueries = append(first.QueuedQueries, b.QueuedQueries...)
	br := t.c.SendBatch(ctx, first)
	t.t = br.Tx()
	if _, err := br.Exec(); err != nil { // the BEGIN's result
		br.Close()
		return failedBatch{err}
	}
	return br
}

// failedBatch is the results of a pipeline that failed before its statements: each one's
// error is err.
type failedBatch struct{ err error }

func (f failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f failedBatch) QueryRow() pgx.Row                { return failedRow{f.err} }
func (f failedBatch) Close() error                     { return f.err }
func (f failedBatch) Tx() pgx.Tx                       { return nil }

type failedRow struct{ err error }

func (f failedRow) Scan(...any) error { return f.err }

func (t *tx) Query(ctx context.Context, sql string, args ...any) (sqlconn.Rows, error) {
	if t.t != nil {
		r, err := t.t.Query(ctx, sql, args...)
		if err != nil {
			return nil, err
		}
		return &rows{r: r}, nil
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br := t.batch(ctx, b)
	r, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &rows{r: r, batch: br}, nil
}

func (t *tx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if t.t != nil {
		tag, err := t.t.Exec(ctx, sql, args...)
		return tag.RowsAffected(), err
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br := t.batch(ctx, b)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag.RowsAffected(), err
}

// Commit commits (pgx.Tx.Commit: a transaction that failed on the server is
// pgx.ErrTxCommitRollback) and gives the connection back to the pool. A transaction that sent
// nothing has nothing to commit.
func (t *tx) Commit(ctx context.Context) error {
	if t.c == nil {
		return pgx.ErrTxClosed
	}
	defer t.release()
	if t.t == nil {
		return nil
	}
	return t.t.Commit(ctx)
}

// Rollback rolls back (pgx.Tx.Rollback, which closes a connection whose rollback failed)
// unless the transaction ended already (pgx.ErrTxClosed), and gives the connection back.
func (t *tx) Rollback(ctx context.Context) error {
	if t.c == nil {
		return pgx.ErrTxClosed
	}
	defer t.release()
	if t.t == nil {
		return nil
	}
	return t.t.Rollback(ctx)
}

func (t *tx) release() {
	t.c.Release()
	t.c = nil
}

// rows reads every column as text (the select list makes each one text); batch is the
// pipeline they came in (with a transaction's BEGIN), closed with them.
type rows struct {
	r     pgx.Rows
	batch pgx.BatchResults
}

func (r *rows) Next() bool { return r.r.Next() }
func (r *rows) Err() error { return r.r.Err() }
func (r *rows) Close() {
	r.r.Close()
	if r.batch != nil {
		r.batch.Close()
	}
}

// Values copies the row's texts into one string, which each value is a part of: four
// allocations a row rather than two a value.
func (r *rows) Values() ([]*string, error) {
	raw := r.r.RawValues()
	size := 0
	for _, b := range raw {
		size += len(b)
	}
	var all strings.Builder
	all.Grow(size)
	for _, b := range raw {
		all.Write(b)
	}
	text := all.String()
	out, vals := make([]*string, len(raw)), make([]string, len(raw))
	at := 0
	for i, b := range raw {
		if b != nil {
			vals[i] = text[at : at+len(b)]
			out[i] = &vals[i]
			at += len(b)
		}
	}
	return out, nil
}
