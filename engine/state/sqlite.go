package state

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
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

	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*SQLite)(nil)

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
	if err != nil {
		db.Close()
		return nil, err
	}
	return newSQLite(path, ReadOnly, db, nil), nil
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
	if err := setUp(ctx, db, info.version); err != nil {
		db.Close()
		return nil, fmt.Errorf("open the link state %s: %w", path, err)
	}
	return newSQLite(path, ReadWrite, db, lock), nil
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

func newSQLite(path string, mode Mode, db *sql.DB, lock *os.File) *SQLite {
	return &SQLite{path: path, mode: mode, db: db, lock: lock, writer: make(chan struct{}, 1), now: time.Now}
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
		s.closeErr = s.db.Close()
		if s.lock != nil {
			if err := unlockFile(s.lock); s.closeErr == nil {
				s.closeErr = err
			}
		}
	})
	return s.closeErr
}

// linkColumns are the columns scanLink reads, in order.
const linkColumns = "flow, source_id, target_id, base, source_hash, target_hash, updated, linked_in, merged_in, made"

// LinksBySource returns the links of flow whose source ids are among ids, by source id.
func (s *SQLite) LinksBySource(ctx context.Context, flow string, ids []string) (map[string]*Link, error) {
	return s.linksBy(ctx, "source_id", flow, ids)
}

// LinksByTarget returns the links of flow whose target ids are among ids, by target id.
func (s *SQLite) LinksByTarget(ctx context.Context, flow string, ids []string) (map[string]*Link, error) {
	return s.linksBy(ctx, "target_id", flow, ids)
}

// linksBy looks ids up in chunks of maxParams, in one read transaction when there are several
// chunks so that the answer is one consistent snapshot.
func (s *SQLite) linksBy(ctx context.Context, column, flow string, ids []string) (map[string]*Link, error) {
	ids = unique(ids)
	found := make(map[string]*Link, len(ids))
	if len(ids) == 0 {
		return found, nil
	}
	query := func(n int) string {
		return "SELECT " + linkColumns + " FROM links WHERE flow = ? AND " + column +
			" IN (?" + strings.Repeat(", ?", n-1) + ")"
	}
	var q interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	} = s.db
	if len(ids) > maxParams {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("links of flow %q: %w", flow, err)
		}
		defer tx.Rollback()
		q = tx
	}
	args := make([]any, 0, maxParams+1)
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxParams)]
		ids = ids[len(chunk):]
		args = append(args[:0], flow)
		for _, id := range chunk {
			args = append(args, id)
		}
		rows, err := q.QueryContext(ctx, query(len(chunk)), args...)
		if err != nil {
			return nil, fmt.Errorf("links of flow %q: %w", flow, err)
		}
		err = eachLink(rows, func(l *Link) {
			if column == "source_id" {
				found[l.SourceID] = l
			} else {
				found[l.TargetID] = l
			}
		})
		if err != nil {
			return nil, fmt.Errorf("links of flow %q: %w", flow, err)
		}
	}
	return found, nil
}

// ScanLinks calls fn with batches of the flow's links, in source id order. Batches are read
// by keyset pagination, each as committed when it is read, and no query is open while fn
// runs, so fn may use the Store and commit Txs.
func (s *SQLite) ScanLinks(ctx context.Context, flow string, fn func([]*Link) error) error {
	const (
		first = "SELECT " + linkColumns + " FROM links WHERE flow = ? AND source_id >= ? ORDER BY source_id LIMIT ?"
		next  = "SELECT " + linkColumns + " FROM links WHERE flow = ? AND source_id > ? ORDER BY source_id LIMIT ?"
	)
	query, after := first, ""
	for {
		rows, err := s.db.QueryContext(ctx, query, flow, after, scanBatch)
		if err != nil {
			return fmt.Errorf("links of flow %q: %w", flow, err)
		}
		batch := make([]*Link, 0, scanBatch)
		if err := eachLink(rows, func(l *Link) { batch = append(batch, l) }); err != nil {
			return fmt.Errorf("links of flow %q: %w", flow, err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
		if len(batch) < scanBatch {
			return nil
		}
		query, after = next, batch[len(batch)-1].SourceID
	}
}

// eachLink scans rows of linkColumns and closes them.
func eachLink(rows *sql.Rows, fn func(*Link)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			l       Link
			base    []byte // a copy, which the base's values are slices of
			updated string
		)
		if err := rows.Scan(&l.Flow, &l.SourceID, &l.TargetID, &base, &l.SourceHash, &l.TargetHash, &updated, &l.LinkedIn, &l.MergedIn, &l.Made); err != nil {
			return err
		}
		l.raw, l.storedTarget = base, l.TargetID
		if len(base) == 0 {
			l.raw = []byte("{}")
		}
		var err error
		if l.Updated, err = parseTime(updated); err != nil {
			return fmt.Errorf("link of source %q: %w", l.SourceID, err)
		}
		fn(&l)
	}
	return rows.Err()
}

// CountLinks counts the flow's links ("" for all flows).
func (s *SQLite) CountLinks(ctx context.Context, flow string) (int, error) {
	var n int
	var err error
	if flow == "" {
		err = s.db.QueryRowContext(ctx, "SELECT count(*) FROM links").Scan(&n)
	} else {
		err = s.db.QueryRowContext(ctx, "SELECT count(*) FROM links WHERE flow = ?", flow).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count links: %w", err)
	}
	return n, nil
}

// Overlaps implements Overlapping: readers have connections of their own beside the one
// writer (WAL), and Begin waits for the writer's turn.
func (s *SQLite) Overlaps() bool { return s.mode == ReadWrite }

// HasLinks reports whether the flow has a link.
func (s *SQLite) HasLinks(ctx context.Context, flow string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM links WHERE flow = ? LIMIT 1", flow).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("links of flow %q: %w", flow, err)
	}
	return true, nil
}

// Watermark returns the side's watermark, "" when none was set.
func (s *SQLite) Watermark(ctx context.Context, flow, side string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM watermarks WHERE flow = ? AND side = ?", flow, side).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("watermark of flow %q: %w", flow, err)
	}
	return v, nil
}

// Counts returns the flow's counts; ok is false when none are recorded.
func (s *SQLite) Counts(ctx context.Context, flow string) (Counts, bool, error) {
	var c Counts
	err := s.db.QueryRowContext(ctx, "SELECT source, target, skipped, source_deletions, target_deletions FROM counts WHERE flow = ?", flow).Scan(
		&c.Source, &c.Target, &c.Skipped, &c.SourceDeletions, &c.TargetDeletions)
	if errors.Is(err, sql.ErrNoRows) {
		return Counts{}, false, nil
	}
	if err != nil {
		return Counts{}, false, fmt.Errorf("counts of flow %q: %w", flow, err)
	}
	return c, true, nil
}

// Intents returns the flow's intents ("" for all flows) in the order they were added.
func (s *SQLite) Intents(ctx context.Context, flow string) ([]Intent, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT id, flow, side, from_id, data, created FROM intents WHERE ? IN ('', flow) ORDER BY id", flow)
	if err != nil {
		return nil, fmt.Errorf("intents: %w", err)
	}
	defer rows.Close()
	var out []Intent
	for rows.Next() {
		var (
			in      Intent
			data    sql.NullString
			created string
		)
		if err := rows.Scan(&in.ID, &in.Flow, &in.Side, &in.FromID, &data, &created); err != nil {
			return nil, fmt.Errorf("intents: %w", err)
		}
		if data.Valid {
			in.Data = json.RawMessage(data.String)
		}
		if in.Created, err = parseTime(created); err != nil {
			return nil, fmt.Errorf("intent %d: %w", in.ID, err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("intents: %w", err)
	}
	return out, nil
}

// DeadLetters returns the flow's dead letters ("" for all flows), by flow, side and record id.
func (s *SQLite) DeadLetters(ctx context.Context, flow string) ([]DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT flow, side, record_id, reason, attempts, first, last FROM dead_letters WHERE ? IN ('', flow) ORDER BY flow, side, record_id", flow)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var (
			d           DeadLetter
			first, last string
		)
		if err := rows.Scan(&d.Flow, &d.Side, &d.RecordID, &d.Reason, &d.Attempts, &first, &last); err != nil {
			return nil, fmt.Errorf("dead letters: %w", err)
		}
		if d.First, err = parseTime(first); err == nil {
			d.Last, err = parseTime(last)
		}
		if err != nil {
			return nil, fmt.Errorf("dead letter %q: %w", d.RecordID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return out, nil
}

// Waiting returns the flow's waiting records ("" for all flows), by flow, side and record id.
func (s *SQLite) Waiting(ctx context.Context, flow string) ([]Waiting, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT flow, side, record_id, reason, since FROM waiting WHERE ? IN ('', flow) ORDER BY flow, side, record_id", flow)
	if err != nil {
		return nil, fmt.Errorf("waiting records: %w", err)
	}
	defer rows.Close()
	var out []Waiting
	for rows.Next() {
		var (
			w     Waiting
			since string
		)
		if err := rows.Scan(&w.Flow, &w.Side, &w.RecordID, &w.Reason, &since); err != nil {
			return nil, fmt.Errorf("waiting records: %w", err)
		}
		if w.Since, err = parseTime(since); err != nil {
			return nil, fmt.Errorf("waiting record %q: %w", w.RecordID, err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("waiting records: %w", err)
	}
	return out, nil
}

// Runs returns the last limit runs, newest first (all of them when limit <= 0).
func (s *SQLite) Runs(ctx context.Context, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = -1 // no limit, to SQLite
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT id, started, finished, status, summary, worker FROM runs ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var (
			r                 Run
			started           string
			finished, summary sql.NullString
		)
		if err := rows.Scan(&r.ID, &started, &finished, &r.Status, &summary, &r.Worker); err != nil {
			return nil, fmt.Errorf("runs: %w", err)
		}
		if r.Started, err = parseTime(started); err == nil {
			r.Finished, err = parseTime(finished.String)
		}
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", r.ID, err)
		}
		if summary.Valid {
			r.Summary = json.RawMessage(summary.String)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	return out, nil
}

// Begin starts a write transaction with BEGIN IMMEDIATE, so that it holds SQLite's write
// lock from the start and never fails half-way because another writer got in first. It waits
// while another Tx of this Store is open (or until ctx ends); every Tx must end with Commit
// or Rollback. The statements of the Tx run with ctx.
func (s *SQLite) Begin(ctx context.Context) (Tx, error) {
	if s.mode != ReadWrite {
		return nil, fmt.Errorf("the link state %s is open read-only; it cannot be written", s.path)
	}
	select {
	case s.writer <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	conn, err := s.db.Conn(ctx)
	if err == nil {
		if _, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			conn.Close()
		}
	}
	if err != nil {
		<-s.writer
		return nil, fmt.Errorf("begin a link state transaction: %w", err)
	}
	return &sqliteTx{s: s, ctx: ctx, conn: conn, stmts: make(map[string]*sql.Stmt)}, nil
}

// sqliteTx is a write transaction on one dedicated connection. Its statements are prepared
// once and reused: a run may put ten thousand links in one Tx.
type sqliteTx struct {
	s     *SQLite
	ctx   context.Context
	conn  *sql.Conn
	stmts map[string]*sql.Stmt

	mu   sync.Mutex
	done bool

	bases baseCodec
	// none holds the tables and flow sides (table + flow + side) known to have no rows in
	// this Tx, so that clearing a record there needs no statement: a run clears the dead
	// letter and the waiting entry of every record it links, and there rarely are any.
	none map[string]bool
}

// noneKey is the key of none for a table and a flow's side.
func noneKey(table, flow, side string) string { return table + "\x00" + flow + "\x00" + side }

// nothingToClear reports whether table has no row of the flow's side in the Tx: once known,
// without a statement, until a row is put there (see none).
func (t *sqliteTx) nothingToClear(table, flow, side string) (bool, error) {
	key := noneKey(table, flow, side)
	if t.none[key] {
		return true, nil
	}
	if t.done {
		return false, errTxDone
	}
	var any bool
	err := t.conn.QueryRowContext(t.ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE flow = ? AND side = ?)", flow, side).Scan(&any)
	if err != nil {
		return false, err
	}
	if !any {
		if t.none == nil {
			t.none = make(map[string]bool)
		}
		t.none[key] = true
	}
	return !any, nil
}

var errTxDone = errors.New("the link state transaction has already been committed or rolled back")

const (
	sqlPutLink = `INSERT INTO links (flow, source_id, target_id, base, source_hash, target_hash, updated, linked_in, merged_in, made)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (flow, source_id) DO UPDATE SET target_id = excluded.target_id, base = excluded.base,
			source_hash = excluded.source_hash, target_hash = excluded.target_hash, updated = excluded.updated,
			linked_in = excluded.linked_in, merged_in = excluded.merged_in, made = excluded.made`
	sqlUpdateLink = `UPDATE links SET base = ?, source_hash = ?, target_hash = ?, updated = ?, linked_in = ?, merged_in = ?, made = ?
		WHERE flow = ? AND source_id = ? AND target_id = ?`
	sqlDeleteLink    = `DELETE FROM links WHERE flow = ? AND source_id = ?`
	sqlAddIntent     = `INSERT INTO intents (flow, side, from_id, data, created) VALUES (?, ?, ?, ?, ?)`
	sqlDeleteIntent  = `DELETE FROM intents WHERE id = ?`
	sqlDeleteIntents = `DELETE FROM intents WHERE id IN (`
	sqlSetWatermark  = `INSERT INTO watermarks (flow, side, value) VALUES (?, ?, ?)
		ON CONFLICT (flow, side) DO UPDATE SET value = excluded.value`
	sqlSetCounts = `INSERT INTO counts (flow, source, target, skipped, source_deletions, target_deletions) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (flow) DO UPDATE SET source = excluded.source, target = excluded.target, skipped = excluded.skipped,
			source_deletions = excluded.source_deletions, target_deletions = excluded.target_deletions`
	sqlClearCounts   = `DELETE FROM counts WHERE flow = ?`
	sqlPutDeadLetter = `INSERT INTO dead_letters (flow, side, record_id, reason, attempts, first, last)
		VALUES (?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (flow, side, record_id) DO UPDATE SET reason = excluded.reason,
			attempts = attempts + 1, last = excluded.last`
	sqlClearDeadLetter = `DELETE FROM dead_letters WHERE flow = ? AND side = ? AND record_id = ?`
	// A record keeps the time it started waiting; only the reason follows the latest run.
	sqlPutWaiting = `INSERT INTO waiting (flow, side, record_id, reason, since) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (flow, side, record_id) DO UPDATE SET reason = excluded.reason`
	sqlClearWaiting = `DELETE FROM waiting WHERE flow = ? AND side = ? AND record_id = ?`
	sqlStartRun     = `INSERT INTO runs (started, status, worker) VALUES (?, 'running', ?)`
	sqlFinishRun    = `UPDATE runs SET finished = ?, status = ?, summary = ? WHERE id = ?`
)

// exec runs a statement of the Tx, preparing it on first use.
func (t *sqliteTx) exec(query string, args ...any) (sql.Result, error) {
	if t.done {
		return nil, errTxDone
	}
	st, ok := t.stmts[query]
	if !ok {
		var err error
		if st, err = t.conn.PrepareContext(t.ctx, query); err != nil {
			return nil, err
		}
		t.stmts[query] = st
	}
	return st.ExecContext(t.ctx, args...)
}

// PutLink inserts or replaces the link of l.SourceID. A target already linked to another
// source record of the flow gives an error wrapping ErrTargetLinked; the Tx stays usable.
func (t *sqliteTx) PutLink(l *Link) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l == nil || l.Flow == "" || l.SourceID == "" || l.TargetID == "" {
		return errors.New("put link: a link needs a flow, a source id and a target id")
	}
	base, err := t.bases.encode(l.Base)
	if err != nil {
		return fmt.Errorf("put link of flow %q, source %q: base: %w", l.Flow, l.SourceID, err)
	}
	if l.storedTarget == l.TargetID { // TargetID is not empty
		// A link read from the store, saved again with its ids (a merge): an upsert would
		// also rewrite the entry of the unchanged target id in its index, nearly doubling the
		// pages a run that merges writes.
		res, err := t.exec(sqlUpdateLink, base, l.SourceHash, l.TargetHash, formatTime(l.Updated), l.LinkedIn, l.MergedIn, l.Made,
			l.Flow, l.SourceID, l.TargetID)
		if err != nil {
			return fmt.Errorf("put link of flow %q, source %q: %w", l.Flow, l.SourceID, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
		// Gone or relinked since it was read: insert it as any other.
	}
	_, err = t.exec(sqlPutLink, l.Flow, l.SourceID, l.TargetID, base, l.SourceHash, l.TargetHash, formatTime(l.Updated),
		l.LinkedIn, l.MergedIn, l.Made)
	var se sqlite3.Error
	if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique {
		var other string
		if t.conn.QueryRowContext(t.ctx, "SELECT source_id FROM links WHERE flow = ? AND target_id = ?",
			l.Flow, l.TargetID).Scan(&other) == nil {
			return fmt.Errorf("link flow %q source %q to target %q: the target is already linked to source %q: %w",
				l.Flow, l.SourceID, l.TargetID, other, ErrTargetLinked)
		}
	}
	if err != nil {
		return fmt.Errorf("put link of flow %q, source %q: %w", l.Flow, l.SourceID, err)
	}
	return nil
}

// DeleteLink forgets the link of a source record; a missing link is not an error.
func (t *sqliteTx) DeleteLink(flow, sourceID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec(sqlDeleteLink, flow, sourceID); err != nil {
		return fmt.Errorf("delete link of flow %q, source %q: %w", flow, sourceID, err)
	}
	return nil
}

// AddIntent records an intent and returns its id, which is never reused. A zero Created is
// the time of the call; in.ID is ignored.
func (t *sqliteTx) AddIntent(in *Intent) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if in == nil || in.Flow == "" {
		return 0, errors.New("add intent: an intent needs a flow")
	}
	if err := checkSide(in.Side); err != nil {
		return 0, fmt.Errorf("add intent of flow %q: %w", in.Flow, err)
	}
	data, err := jsonText(in.Data)
	if err != nil {
		return 0, fmt.Errorf("add intent of flow %q: data: %w", in.Flow, err)
	}
	created := in.Created
	if created.IsZero() {
		created = t.s.now()
	}
	res, err := t.exec(sqlAddIntent, in.Flow, in.Side, in.FromID, data, formatTime(created))
	if err != nil {
		return 0, fmt.Errorf("add intent of flow %q: %w", in.Flow, err)
	}
	return res.LastInsertId()
}

// DeleteIntent forgets an intent, once its record is linked; a missing one is not an error.
func (t *sqliteTx) DeleteIntent(id int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec(sqlDeleteIntent, id); err != nil {
		return fmt.Errorf("delete intent %d: %w", id, err)
	}
	return nil
}

// DeleteIntents deletes intents by id, maxParams to a statement.
func (t *sqliteTx) DeleteIntents(ids []int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	args := make([]any, 0, min(len(ids), maxParams))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), maxParams)]
		ids = ids[len(chunk):]
		args = args[:0]
		for _, id := range chunk {
			args = append(args, id)
		}
		// Statements of the common sizes (a whole chunk, a batch's tail) are prepared once.
		if _, err := t.exec(sqlDeleteIntents+"?"+strings.Repeat(", ?", len(chunk)-1)+")", args...); err != nil {
			return fmt.Errorf("delete intents: %w", err)
		}
	}
	return nil
}

// SetWatermark sets the watermark of a side of a flow.
func (t *sqliteTx) SetWatermark(flow, side, value string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := checkSide(side); err != nil {
		return fmt.Errorf("set watermark of flow %q: %w", flow, err)
	}
	if _, err := t.exec(sqlSetWatermark, flow, side, value); err != nil {
		return fmt.Errorf("set watermark of flow %q: %w", flow, err)
	}
	return nil
}

// SetCounts records the counts of a flow.
func (t *sqliteTx) SetCounts(flow string, c Counts) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec(sqlSetCounts, flow, c.Source, c.Target, c.Skipped, c.SourceDeletions, c.TargetDeletions); err != nil {
		return fmt.Errorf("set counts of flow %q: %w", flow, err)
	}
	return nil
}

// ClearCounts forgets the counts of a flow; none recorded is not an error.
func (t *sqliteTx) ClearCounts(flow string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.exec(sqlClearCounts, flow); err != nil {
		return fmt.Errorf("clear counts of flow %q: %w", flow, err)
	}
	return nil
}

// PutDeadLetter records a failure: a new dead letter with one attempt, or one more attempt
// of a known one, which keeps its first time and takes the latest reason.
func (t *sqliteTx) PutDeadLetter(flow, side, recordID, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := checkSide(side); err != nil {
		return fmt.Errorf("put dead letter of flow %q: %w", flow, err)
	}
	now := formatTime(t.s.now())
	delete(t.none, noneKey("dead_letters", flow, side))
	if _, err := t.exec(sqlPutDeadLetter, flow, side, recordID, reason, now, now); err != nil {
		return fmt.Errorf("put dead letter of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// ClearDeadLetter forgets a failure; a missing one is not an error.
func (t *sqliteTx) ClearDeadLetter(flow, side, recordID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if none, err := t.nothingToClear("dead_letters", flow, side); none || err != nil {
		if err != nil {
			return fmt.Errorf("clear dead letter of flow %q, record %q: %w", flow, recordID, err)
		}
		return nil
	}
	if _, err := t.exec(sqlClearDeadLetter, flow, side, recordID); err != nil {
		return fmt.Errorf("clear dead letter of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// PutWaiting records that a record waits, since now or since it started waiting.
func (t *sqliteTx) PutWaiting(flow, side, recordID, reason string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := checkSide(side); err != nil {
		return fmt.Errorf("put waiting record of flow %q: %w", flow, err)
	}
	delete(t.none, noneKey("waiting", flow, side))
	if _, err := t.exec(sqlPutWaiting, flow, side, recordID, reason, formatTime(t.s.now())); err != nil {
		return fmt.Errorf("put waiting record of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// ClearWaiting forgets a waiting record; a missing one is not an error.
func (t *sqliteTx) ClearWaiting(flow, side, recordID string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if none, err := t.nothingToClear("waiting", flow, side); none || err != nil {
		if err != nil {
			return fmt.Errorf("clear waiting record of flow %q, record %q: %w", flow, recordID, err)
		}
		return nil
	}
	if _, err := t.exec(sqlClearWaiting, flow, side, recordID); err != nil {
		return fmt.Errorf("clear waiting record of flow %q, record %q: %w", flow, recordID, err)
	}
	return nil
}

// StartRun logs a run with status "running", started now, and returns its id. A run killed
// before FinishRun stays "running" with no finish time.
func (t *sqliteTx) StartRun() (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	worker := ""
	if w := t.s.worker.Load(); w != nil {
		worker = *w
	}
	res, err := t.exec(sqlStartRun, formatTime(t.s.now()), worker)
	if err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	return res.LastInsertId()
}

// FinishRun records the end of a run, now.
func (t *sqliteTx) FinishRun(id int64, status string, summary json.RawMessage) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	sum, err := jsonText(summary)
	if err != nil {
		return fmt.Errorf("finish run %d: summary: %w", id, err)
	}
	res, err := t.exec(sqlFinishRun, formatTime(t.s.now()), status, sum, id)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("finish run %d: there is no such run", id)
	}
	return nil
}

// Commit commits durably. It is not interrupted by the end of the Begin context: once a
// commit starts, the caller must learn whether it happened. A failed Commit rolls back.
func (t *sqliteTx) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return errTxDone
	}
	_, err := t.conn.ExecContext(context.WithoutCancel(t.ctx), "COMMIT")
	if err != nil {
		t.conn.ExecContext(context.WithoutCancel(t.ctx), "ROLLBACK")
		err = fmt.Errorf("commit the link state: %w", err)
	}
	t.end()
	return err
}

// Rollback discards the Tx. After Commit or Rollback it does nothing, so that it can be
// deferred.
func (t *sqliteTx) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil
	}
	_, err := t.conn.ExecContext(context.WithoutCancel(t.ctx), "ROLLBACK")
	if err != nil && t.inTx() {
		err = fmt.Errorf("roll back the link state: %w", err)
	} else {
		err = nil // SQLite had already rolled back (after an I/O error, say)
	}
	t.end()
	return err
}

// inTx reports whether SQLite still has a transaction open on the connection.
func (t *sqliteTx) inTx() bool {
	open := false
	t.conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok {
			open = !c.AutoCommit()
		}
		return nil
	})
	return open
}

// end releases the statements, the connection and the writer token. A connection still in a
// transaction (a ROLLBACK failed) is discarded rather than handed to the next user.
func (t *sqliteTx) end() {
	for _, st := range t.stmts {
		st.Close()
	}
	t.conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok && !c.AutoCommit() {
			return driver.ErrBadConn
		}
		return nil
	})
	t.conn.Close()
	t.done = true
	<-t.s.writer
}

func checkSide(side string) error {
	if side != Source && side != Target {
		return fmt.Errorf("side is %q; it must be %q or %q", side, Source, Target)
	}
	return nil
}

// jsonText is the text to store for a JSON value, nil (NULL) for none.
func jsonText(v json.RawMessage) (any, error) {
	if len(v) == 0 {
		return nil, nil
	}
	if !compactJSON(v) && !json.Valid(v) { // compact JSON, as json.Marshal writes it, is checked faster
		return nil, errors.New("not valid JSON")
	}
	return string(v), nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// unique returns ids without repeats, in their first order.
func unique(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}
