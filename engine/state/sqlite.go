package state

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// DefaultPath is where a project keeps its link state, relative to the project directory.
const DefaultPath = ".dataflow/state.db"

// Mode says what Open may do to the state file.
type Mode int

const (
	// ReadOnly opens an existing state to look at it (status, links, dead letters), also while
	// a run writes it. It never creates, locks, migrates or writes the file.
	ReadOnly Mode = iota
	// ReadWrite opens the state for a run: it creates the file if it is missing, takes the
	// lock that keeps other runs out, and brings the schema up to date.
	ReadWrite
)

// ErrTargetLinked is returned (wrapped) by PutLink when the target record is already linked
// to another source record of the flow: a target record is the copy of one source record.
var ErrTargetLinked = errors.New("the target record is already linked")

const (
	// busyTimeout bounds how long a connection waits for SQLite's own locks. In WAL mode
	// readers and the single writer do not block each other; the waits left are short
	// (recovering the WAL after a crash, the checkpoint when the writer closes), and a reader
	// must sit them out rather than fail with "database is locked".
	busyTimeout = 10 * time.Second
	// maxConns lets reads run beside an open Tx on the same Store (the engine looks links up
	// while it writes) and ReadOnly readers run in parallel. Writes are serialised by
	// SQLite.writer, not by the pool size.
	maxConns = 4
	// maxParams keeps IN lists well below SQLite's limit on host parameters and the cost of
	// preparing one huge statement.
	maxParams = 500
	// scanBatch is the page size of ScanLinks: memory stays flat however many links a flow has.
	scanBatch = 1000
	// writerCacheKiB is the page cache of the connection that writes (SQLite's default is
	// 2 MB on every connection). A first sync inserts target ids in random order into their
	// index, and an index that does not fit in the cache is read back page by page from the
	// file on every insert: at 1M links the index of target ids takes about 26 MB (26 bytes a
	// link, TestLinkBytes), and the rows are inserted where the source ids go, a few pages at
	// a time. 32 MiB holds the index of a million links and those pages; SQLite fills the
	// cache as pages are used, so a smaller state costs less, and reads keep the default on
	// their own connections, so that the process stays within its budget (150 MiB at 1M).
	writerCacheKiB = 32 << 10
	// writerCheckpointPages is the WAL's size, in pages, at which a commit of the writer copies
	// it into the file (SQLite's default is 1,000: 4 MB). A first sync's batches rewrite the
	// same pages (the last leaves of the links and of their index, their parents, the intents),
	// which a checkpoint writes once however many commits rewrote them since the last: with
	// 8,000 (a WAL of about 32 MB) bench i at 1M took 0.97 times the time, in runs alternated
	// with the default's.
	writerCheckpointPages = 8000
	// timeFormat is RFC 3339 in UTC with a fixed nine-digit fraction, so that times also sort
	// correctly as text (RFC3339Nano drops trailing zeros, and "05Z" sorts after "05.5Z").
	timeFormat = "2006-01-02T15:04:05.000000000Z07:00"
)

// sqliteMagic starts every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// SQLite is the link state in one SQLite file, in WAL mode with durable (synchronous=FULL)
// commits: a run killed at any instant leaves the state as of its last commit, and its lock
// goes with the process. Reads through the Store see committed data only (what an open Tx
// wrote becomes visible when it commits) and never wait for a Tx, of this process or another.
// A Store is safe for concurrent use; Begin waits while another Tx of the same Store is open.
type SQLite struct {
	path   string
	mode   Mode
	db     *sql.DB
	lock   *os.File      // the held flock, nil for ReadOnly
	writer chan struct{} // holds a token while a Tx is open
	now    func() time.Time
	worker atomic.Pointer[string] // recorded in the runs started (SetWorker)
	// dict is the copy of the numbered flows and property keys (see dictionary); dictMu
	// serialises its replacements.
	dict   atomic.Pointer[dictionary]
	dictMu sync.Mutex
	// wconn is the connection of the Txs, kept between them with its page cache (see
	// writerCacheKiB); nil until the first Begin, or after a Tx left it unusable. Whoever
	// holds the writer token owns it.
	wconn *sql.Conn
	// wdeferred says that wconn commits with synchronous=NORMAL, for a Tx of BeginDeferred.
	wdeferred bool
	// wstmts are the statements prepared on wconn, kept with it: a run makes two Txs per batch
	// of records, and preparing a statement of many rows costs about as much as running it.
	// The statements are of a few texts, so the map stays small.
	wstmts map[string]*sql.Stmt
	// wraw are the statements of link writes prepared on wconn's driver connection, which
	// a Tx runs without database/sql (see sqliteTx.rawExec).
	wraw map[string]*sqlite3.SQLiteStmt
	// wintents encodes the rows of intents of the Txs, its buffer kept between them.
	wintents intentEncoder

	closeOnce sync.Once
	closeErr  error
}

var (
	_ Store     = (*SQLite)(nil)
	_ Deferring = (*SQLite)(nil)
)

// Open opens the link state at path (DefaultPath for a project).
//
// With ReadWrite it creates the file and its directory if missing, takes an exclusive lock
// on path+".lock" (an error wrapping ErrLocked names the pid of the run holding it), and
// migrates the schema. With ReadOnly the file must exist (the error wraps fs.ErrNotExist
// otherwise) and be of this dataflow's schema version.
//
// A file that is not a dataflow link state (another application's database, any other file,
// a corrupt or truncated copy) or that a newer dataflow wrote is refused and left untouched.
func Open(ctx context.Context, path string, mode Mode) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("open the link state: no path given")
	}
	switch mode {
	case ReadOnly:
		return openReadOnly(ctx, path)
	case ReadWrite:
		return openReadWrite(ctx, path)
	}
	return nil, fmt.Errorf("open the link state %s: unknown mode %d", path, mode)
}

func openReadOnly(ctx context.Context, path string) (*SQLite, error) {
	if err := checkFile(path); err != nil {
		return nil, err
	}
	db, err := openDB(path, "ro")
	if err != nil {
		return nil, err
	}
	info, err := inspect(ctx, path, db)
	if err == nil {
		switch {
		case info.empty():
			err = &stateError{fmt.Sprintf("the link state %s is empty: no run has written it yet", path), fs.ErrNotExist}
		case info.version < schemaVersion:
			err = fmt.Errorf("the link state %s was written by an older dataflow (schema %d, this one knows %d); a run of this one upgrades it",
				path, info.version, schemaVersion)
		}
	}
	var dict *dictionary
	if err == nil {
		dict, err = loadDictionary(ctx, db)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return newSQLite(path, ReadOnly, db, nil, dict), nil
}

func openReadWrite(ctx context.Context, path string) (*SQLite, error) {
	if _, err := os.Lstat(path); err == nil {
		// Refuse a file that is not ours before creating a lock file or a directory beside
		// it; the look is repeated under the lock.
		if _, err := inspectFile(ctx, path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create the link state directory: %w", err)
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		var le *lockedError
		if errors.As(err, &le) {
			le.path = path
		}
		return nil, err
	}
	s, err := openLocked(ctx, path, lock)
	if err != nil {
		unlockFile(lock)
		return nil, err
	}
	return s, nil
}

// openLocked opens and migrates the state file, holding the lock.
func openLocked(ctx context.Context, path string, lock *os.File) (*SQLite, error) {
	info, err := inspectFile(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		// Created here rather than by SQLite, to make it private: the bases hold copies of
		// the systems' data. SQLite gives the -wal and -shm files the same permissions.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create the link state: %w", err)
		}
		f.Close()
	} else if err != nil {
		return nil, err
	}

	db, err := openDB(path, "rw")
	if err != nil {
		return nil, err
	}
	err = setUp(ctx, db, info.version)
	var dict *dictionary
	if err == nil {
		dict, err = loadDictionary(ctx, db)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open the link state %s: %w", path, err)
	}
	return newSQLite(path, ReadWrite, db, lock, dict), nil
}

// inspectFile looks at an existing file through a read-only connection, and refuses it if it
// is not a dataflow link state or is newer than this dataflow. Read-only, because a
// read-write connection would roll back another application's hot journal, which is
// writing to its file. The error wraps fs.ErrNotExist when there is no file.
func inspectFile(ctx context.Context, path string) (fileInfo, error) {
	if err := checkFile(path); err != nil {
		return fileInfo{}, err
	}
	db, err := openDB(path, "ro")
	if err != nil {
		return fileInfo{}, err
	}
	defer db.Close()
	return inspect(ctx, path, db)
}

// setUp switches a file to WAL (persistent, so readers get it too) and migrates it.
func setUp(ctx context.Context, db *sql.DB, version int) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("cannot use WAL mode (journal mode is %s)", mode)
	}
	if version == schemaVersion {
		return nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := migrate(ctx, conn, version, migrations); err != nil {
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	_, err = conn.ExecContext(context.WithoutCancel(ctx), "COMMIT")
	return err
}

func newSQLite(path string, mode Mode, db *sql.DB, lock *os.File, dict *dictionary) *SQLite {
	s := &SQLite{path: path, mode: mode, db: db, lock: lock, writer: make(chan struct{}, 1), now: time.Now}
	s.dict.Store(dict)
	return s
}

// openDB opens a pool on path; mode is SQLite's URI mode: ro, or rw (which does not create).
// The journal mode is not in the DSN: setting it writes to the file, which must wait until
// the file is known to be ours.
func openDB(path, mode string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open the link state %s: %w", path, err)
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	q := url.Values{}
	q.Set("mode", mode)
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", "FULL")
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: p}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open the link state %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	return db, nil
}

// checkFile refuses what is certainly not a dataflow link state before SQLite sees it.
// It returns an error wrapping fs.ErrNotExist when there is no file.
func checkFile(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &stateError{fmt.Sprintf("the link state %s does not exist; no run has written it yet", path), err}
	}
	if err != nil {
		return fmt.Errorf("open the link state: %w", err)
	}
	if fi.IsDir() {
		return notState(path, "a directory")
	}
	if fi.Size() == 0 {
		return nil // SQLite's view of a new, empty database
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open the link state: %w", err)
	}
	defer f.Close()
	head := make([]byte, 100) // the database header
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("open the link state: %w", err)
	}
	if n < len(sqliteMagic) || !bytes.Equal(head[:len(sqliteMagic)], sqliteMagic) {
		return notState(path, "not an SQLite database")
	}
	if n < len(head) {
		return corrupt(path, fmt.Sprintf("the header is truncated (%d bytes)", n), nil)
	}
	return nil
}

// fileInfo is what the header and the catalogue of a state file say about it.
type fileInfo struct {
	appID   int64
	version int
	tables  []string // the first few, to name another application's database
}

// empty reports a database nobody has written a table or header field to: a new file, or one
// whose creation was killed before the first migration committed.
func (i fileInfo) empty() bool {
	return i.appID == 0 && i.version == 0 && len(i.tables) == 0
}

// inspect reads the header fields and table names of an existing file and refuses a file
// that is not ours or is newer than this dataflow. It only reads.
func inspect(ctx context.Context, path string, db *sql.DB) (fileInfo, error) {
	var info fileInfo
	err := db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&info.appID)
	if err == nil {
		err = db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&info.version)
	}
	if err == nil {
		var rows *sql.Rows
		rows, err = db.QueryContext(ctx, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name LIMIT 4")
		if err == nil {
			for rows.Next() {
				var name string
				if err = rows.Scan(&name); err != nil {
					break
				}
				info.tables = append(info.tables, name)
			}
			if err == nil {
				err = rows.Err()
			}
			rows.Close()
		}
	}
	var se sqlite3.Error
	switch {
	case errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB):
		// The header said SQLite (checkFile), so an unreadable file is a damaged one.
		return info, corrupt(path, se.Error(), err)
	case err != nil:
		return info, fmt.Errorf("open the link state %s: %w", path, err)
	case info.empty():
		return info, nil
	case info.appID != applicationID && info.appID != 0:
		return info, notState(path, fmt.Sprintf("an SQLite database of another application, id %#x", info.appID))
	case info.appID != applicationID:
		what := "an SQLite database of another application"
		if len(info.tables) > 0 {
			if len(info.tables) > 3 {
				info.tables = append(info.tables[:3], "...")
			}
			what += ", with tables " + strings.Join(info.tables, ", ")
		}
		return info, notState(path, what)
	case info.version > schemaVersion:
		return info, fmt.Errorf("the link state %s was written by a newer dataflow (schema %d, this one knows %d); run that dataflow or a newer one",
			path, info.version, schemaVersion)
	}
	return info, nil
}

// stateError is an error with its own message that still matches its cause with errors.Is.
type stateError struct {
	msg string
	err error
}

func (e *stateError) Error() string { return e.msg }
func (e *stateError) Unwrap() error { return e.err }

func notState(path, what string) error {
	return fmt.Errorf("%s is not a dataflow link state file (%s); it was left untouched", path, what)
}

func corrupt(path, msg string, cause error) error {
	return &stateError{fmt.Sprintf("%s is corrupt: %s; it was left untouched: restore it from a backup or move it away", path, msg), cause}
}

// lockedError says which run holds the state; it matches ErrLocked.
type lockedError struct {
	path string
	pid  int // 0 when the holder has not written it (yet)
}

func (e *lockedError) Error() string {
	holder := ""
	if e.pid > 0 {
		holder = fmt.Sprintf(" (pid %d)", e.pid)
	}
	return fmt.Sprintf("the link state %s is in use by another run%s; wait for it to finish", e.path, holder)
}

func (e *lockedError) Unwrap() error { return ErrLocked }

// Close closes the database, then releases the lock: never the other way round, or the next
// run could start while this one still writes.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		select {
		case s.writer <- struct{}{}: // no Tx is open
			s.dropWriterConn()
			<-s.writer
		default:
		}
		s.closeErr = s.db.Close()
		if s.lock != nil {
			if err := unlockFile(s.lock); s.closeErr == nil {
				s.closeErr = err
			}
		}
	})
	return s.closeErr
}
