package sqlite

// The connection of a run: Driver.Open and the connector.Conn it returns, which reads and
// writes records. Records are rows of the entity's table; each list of the entity is the rows
// of a child table whose key column holds the parent's id, presented as an array of objects
// ordered by the child id. Identifiers are always quoted and values always bound, so a table
// named `Order Details` works and a hostile name is only a missing table.
//
// Two pools share the file: a writer of one connection (SQLite has one writer; BEGIN IMMEDIATE
// takes the write lock up front, so a transaction never fails half-way on a lock upgrade) and
// query-only readers. Scan and Get read in a transaction, so a record and its lists come from
// one snapshot, and WAL lets a Scan callback write through the writer while the scan goes on.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

const (
	scanBatch   = 1000 // records per Scan callback
	chunkSize   = 500  // ids per IN (...) of Get and of list reads
	busyTimeout = "5000"
	// stmtCache is the number of prepared statements each connection keeps: a write prepares
	// the same few statements for every record (20% of a Create without it).
	stmtCache = "64"
)

// Open implements connector.Opener. It opens the database in the system's `path` read-write
// (WAL, synchronous=FULL, foreign keys enforced) and never creates it silently: a missing file
// is an error unless the system sets `init: <script.sql>` (run to create and seed it) or
// `create_tables: true` (tables created from the entity schemas, for a local stand-in of an
// API). With create_tables, missing tables of an existing database are created too.
func (Driver) Open(ctx context.Context, sys *config.System, entities map[string]*schema.Entity, opts connector.OpenOptions) (connector.Conn, error) {
	return openSystem(ctx, sys, entities, opts.ReadOnly)
}

// openSystem opens a system's database. A read-only connection (a dry run) changes nothing:
// it neither creates the database nor its tables nor switches it to WAL, and its writes fail.
func openSystem(ctx context.Context, sys *config.System, entities map[string]*schema.Entity, readOnly bool) (*conn, error) {
	path, err := setting(sys, "path")
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, &connector.SettingError{Key: "path", Err: errors.New("the database path is empty"), Fix: "Set path to the SQLite database file."}
	}
	script, err := setting(sys, "init")
	if err != nil {
		return nil, err
	}
	create, err := boolSetting(sys, "create_tables")
	if err != nil {
		return nil, err
	}
	track, err := boolSetting(sys, "track_deletes")
	if err != nil {
		return nil, err
	}
	if readOnly {
		script, create = "", false
	}
	if create {
		if err := checkSchemas(sys, entities); err != nil {
			return nil, err
		}
	}

	mode := "rw"
	switch _, err := os.Stat(path); {
	case err == nil:
	case !errors.Is(err, fs.ErrNotExist):
		return nil, &connector.SettingError{Key: "path", Err: err, Fix: "Point path at a readable SQLite database file."}
	case script != "":
		if err := initialize(ctx, path, script); err != nil {
			return nil, &connector.SettingError{Key: "init", Err: err, Fix: "Fix the script, or point init at the SQL script that creates the database (relative to the current directory)."}
		}
	case create:
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, &connector.SettingError{Key: "path", Err: err, Fix: "Point path at a directory you can write to."}
		}
		mode = "rwc"
	default:
		where := "relative to the current directory"
		if filepath.IsAbs(path) {
			where = "an absolute path"
		}
		fix := "Create the database, point path at it, or set `init: <script.sql>` or `create_tables: true` to have it created."
		if readOnly {
			fix = "A read-only run (a dry run) does not create databases: run once without it, or point path at an existing database."
		}
		return nil, &connector.SettingError{Key: "path", Err: fmt.Errorf("database %s does not exist (%s)", path, where), Fix: fix}
	}

	c, err := open(ctx, path, mode, readOnly)
	if err != nil {
		return nil, &connector.SettingError{Key: "path", Err: err, Fix: "Point path at a SQLite database file you can read and write."}
	}
	c.sys, c.schemas, c.trackDeletes = sys, entities, track
	if create {
		if err := c.createTables(ctx); err != nil {
			c.Close()
			if mode == "rwc" { // do not leave an empty database that would hide the error next time
				for _, suffix := range []string{"", "-wal", "-shm"} {
					os.Remove(path + suffix)
				}
			}
			return nil, err
		}
	}
	return c, nil
}

// boolSetting returns a connector setting that is true or false (false when absent).
func boolSetting(sys *config.System, key string) (bool, error) {
	v, err := setting(sys, key)
	if err != nil || v == "" {
		return false, err
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &connector.SettingError{Key: key, Err: fmt.Errorf("%s must be true or false, not %q", key, v), Fix: "Write " + key + ": true or leave it out."}
	}
	return b, nil
}

// setting returns a connector setting's value ("" when absent); a setting that needs unset
// environment variables is an error naming them.
func setting(sys *config.System, key string) (string, error) {
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

// dsn is the go-sqlite3 data source name of a file with the given URI and driver parameters.
func dsn(path string, params url.Values) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + params.Encode()
}

func open(ctx context.Context, path, mode string, readOnly bool) (*conn, error) {
	r, err := sql.Open("sqlite3", dsn(path, url.Values{
		"mode": {"rw"}, "_busy_timeout": {busyTimeout}, "_query_only": {"1"},
		"_stmt_cache_size": {stmtCache},
	}))
	if err != nil {
		return nil, err
	}
	r.SetMaxIdleConns(2)
	c := &conn{r: r, entities: map[string]*entity{}}
	if readOnly {
		if err := r.PingContext(ctx); err != nil {
			r.Close()
			return nil, err
		}
		return c, nil
	}
	w, err := sql.Open("sqlite3", dsn(path, url.Values{
		"mode": {mode}, "_busy_timeout": {busyTimeout}, "_journal_mode": {"WAL"},
		"_synchronous": {"FULL"}, "_foreign_keys": {"1"}, "_txlock": {"immediate"},
		"_stmt_cache_size": {stmtCache},
	}))
	if err != nil {
		return nil, err
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	w.SetMaxOpenConns(1)
	if err := w.PingContext(ctx); err != nil { // sets WAL before a reader connects
		w.Close()
		r.Close()
		return nil, err
	}
	c.w = w
	return c, nil
}

// initialize creates the database at path by running the SQL script: in a temporary file
// beside it, linked into place only when the script succeeded, so a failing script or a crash
// leaves no half-seeded database, and a database another process created meanwhile is kept.
func initialize(ctx context.Context, path, script string) error {
	src, err := os.ReadFile(script)
	if err != nil {
		return fmt.Errorf("cannot read the init script: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".init-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	defer func() {
		for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
			os.Remove(tmp + suffix)
		}
	}()
	db, err := sql.Open("sqlite3", dsn(tmp, url.Values{"mode": {"rw"}, "_foreign_keys": {"1"}}))
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, string(src))
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("init script %s: %w", script, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return os.Rename(tmp, path) // no hard links on this file system
	}
	return nil
}

// conn is the connector.Conn of one database file.
// Capabilities implements connector.Conn: SQLite deletes, and every write reads the record
// back in its transaction; a scan reads in one read transaction (a snapshot). It finds, counts
// records and deletions (with track_deletes), and identifies list elements by their column id.
func (c *conn) Capabilities() connector.Capabilities {
	return connector.Capabilities{Delete: true, ReturnsStored: true, ConcurrentScan: true, LargeBatches: true, SnapshotScan: true,
		Finder: c, Counter: c, DeleteCounter: c, ListIdentifier: c}
}

type conn struct {
	sys     *config.System
	schemas map[string]*schema.Entity
	w, r    *sql.DB // the writer is nil on a read-only connection

	mu       sync.Mutex
	entities map[string]*entity // resolved on first use

	trackDeletes bool            // the system's track_deletes: Deletions counts with triggers
	tracked      map[string]bool // tables whose trigger this connection has seen or installed
}

// Close implements connector.Conn.
func (c *conn) Close() error {
	err := c.r.Close()
	if c.w != nil {
		err = errors.Join(err, c.w.Close())
	}
	return err
}
