package state

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// killChildEnv makes the test binary act as the run killed by TestKilledWriter.
const killChildEnv = "DATAFLOW_STATE_KILL_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(killChildEnv); path != "" {
		killChild(path)
		return
	}
	os.Exit(m.Run())
}

func TestOpenCreates(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a", "b", "state.db")
	s, err := Open(ctx, path, ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
		{"application_id", fmt.Sprint(applicationID)},
		{"user_version", fmt.Sprint(schemaVersion)},
	} {
		var got string
		if err := s.db.QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
	for _, p := range []string{path, path + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", filepath.Base(p), fi.Mode().Perm())
		}
	}
	lock, err := os.ReadFile(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d\n", os.Getpid()); string(lock) != want {
		t.Errorf("lock file holds %q, want %q", lock, want)
	}
	if _, err := s.Begin(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenEmptyFile: an empty file, or one whose creation was killed before the schema was
// written, becomes a state.
func TestOpenEmptyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unfinished := filepath.Join(dir, "unfinished.db")
	execSQL(t, unfinished, "PRAGMA journal_mode = WAL")
	if fi, err := os.Stat(unfinished); err != nil || fi.Size() == 0 {
		t.Fatalf("switching to WAL wrote no header: %v, %v", fi, err)
	}
	for _, path := range []string{empty, unfinished} {
		s, err := Open(ctx, path, ReadWrite)
		if err != nil {
			t.Fatal(err)
		}
		var version int
		if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
			t.Fatal(err)
		}
		if version != schemaVersion {
			t.Errorf("%s: schema %d, want %d", filepath.Base(path), version, schemaVersion)
		}
		s.Close()
	}
}

func TestOpenUnknownMode(t *testing.T) {
	if _, err := Open(context.Background(), "", ReadOnly); err == nil || err.Error() != "open the link state: no path given" {
		t.Errorf("no path: got %v", err)
	}
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), Mode(7))
	if err == nil || !strings.HasSuffix(err.Error(), "state.db: unknown mode 7") {
		t.Errorf("got %v", err)
	}
}

// TestNotAStateFile: files that are not a dataflow link state are refused with a clear
// message, by writers and readers, and are byte for byte what they were.
func TestNotAStateFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	foreign := filepath.Join(dir, "crm.db")
	execSQL(t, foreign,
		"CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)",
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER)",
		"INSERT INTO customers VALUES (1, 'Ada')")
	foreignWAL := filepath.Join(dir, "wal.db")
	execSQL(t, foreignWAL, "PRAGMA journal_mode = WAL", "CREATE TABLE a (x)", "CREATE TABLE b (x)",
		"CREATE TABLE c (x)", "CREATE TABLE d (x)", "CREATE TABLE e (x)")
	otherApp := filepath.Join(dir, "other.db")
	execSQL(t, otherApp, "PRAGMA application_id = 1234", "CREATE TABLE links (x)")
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("flows:\n  - contacts\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.db")
	if err := os.WriteFile(short, []byte("SQLite format 3\x00\x10\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	directory := filepath.Join(dir, "adir")
	if err := os.Mkdir(directory, 0o755); err != nil {
		t.Fatal(err)
	}

	// A real state file, truncated: a crash of a copy, a full disk.
	real := filepath.Join(dir, "real", "state.db")
	s, err := Open(ctx, real, ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	putLinks(t, s, "f", 0, 2000)
	s.Close()
	whole, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.db")
	if err := os.WriteFile(truncated, whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}

	// A state file of a newer dataflow.
	newer := filepath.Join(dir, "newer.db")
	if err := os.WriteFile(newer, whole, 0o644); err != nil {
		t.Fatal(err)
	}
	execSQL(t, newer, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion+1))

	tests := []struct {
		path string
		want string
	}{
		{foreign, foreign + " is not a dataflow link state file (an SQLite database of another application, with tables customers, orders); it was left untouched"},
		{foreignWAL, foreignWAL + " is not a dataflow link state file (an SQLite database of another application, with tables a, b, c, ...); it was left untouched"},
		{otherApp, otherApp + " is not a dataflow link state file (an SQLite database of another application, id 0x4d2); it was left untouched"},
		{text, text + " is not a dataflow link state file (not an SQLite database); it was left untouched"},
		{directory, directory + " is not a dataflow link state file (a directory); it was left untouched"},
		{short, short + " is corrupt: the header is truncated (18 bytes); it was left untouched: restore it from a backup or move it away"},
		{truncated, truncated + " is corrupt: database disk image is malformed; it was left untouched: restore it from a backup or move it away"},
		{newer, "the link state " + newer + fmt.Sprintf(" was written by a newer dataflow (schema %d, this one knows %d); run that dataflow or a newer one", schemaVersion+1, schemaVersion)},
	}
	for _, tc := range tests {
		for _, mode := range []Mode{ReadWrite, ReadOnly} {
			t.Run(fmt.Sprintf("%s/%d", filepath.Base(tc.path), mode), func(t *testing.T) {
				before := contents(t, tc.path)
				s, err := Open(ctx, tc.path, mode)
				if err == nil {
					s.Close()
					t.Fatalf("opened")
				}
				if err.Error() != tc.want {
					t.Errorf("got  %s\nwant %s", err, tc.want)
				}
				if after := contents(t, tc.path); !bytes.Equal(before, after) {
					t.Errorf("the file changed")
				}
				if _, err := os.Stat(tc.path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a lock file was created beside it: %v", err)
				}
			})
		}
	}
}

// contents reads a file, "" for a directory.
func contents(t *testing.T, path string) []byte {
	t.Helper()
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// execSQL runs statements on an SQLite file, as another application would.
func execSQL(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestMigrate: a state file of schema 1 (as the first dataflow wrote it) is brought to the
// current schema when a run opens it, and keeps its data.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")

	db, err := openDB(path, "rwc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA journal_mode = WAL"); err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, conn, 0, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO links (flow, source_id, target_id, base, updated) VALUES ('f', 's1', 't1', '{"p":{"s":1}}', '2024-03-01T12:30:45.123456789Z')`,
		`INSERT INTO intents (flow, side, from_id, created) VALUES ('f', 'target', 's2', '2024-03-01T12:30:45.123456789Z')`,
		"COMMIT",
	} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	db.Close()

	// A reader does not migrate; it says what to do.
	_, err = Open(ctx, path, ReadOnly)
	if want := fmt.Sprintf("the link state %s was written by an older dataflow (schema 1, this one knows %d); a run of this one upgrades it", path, schemaVersion); err == nil || err.Error() != want {
		t.Errorf("reader: got %v\nwant %s", err, want)
	}

	s, err := Open(ctx, path, ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var version, indexes int
	if err := s.db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'intents'").Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if version != schemaVersion || indexes != 0 {
		t.Errorf("schema %d with %d indexes of intents, want %d with none (schema 2 made one, schema 5 dropped it)", version, indexes, schemaVersion)
	}
	links, err := s.LinksBySource(ctx, "f", []string{"s1"})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, links)
	if l := links["s1"]; l == nil || l.TargetID != "t1" || string(l.Base["p"].S) != "1" || !l.Updated.Equal(t0) {
		t.Errorf("link after migration: %+v", l)
	}
	intents, err := s.Intents(ctx, "f")
	if err != nil || len(intents) != 1 || intents[0].FromID != "s2" {
		t.Errorf("intents after migration: %+v, %v", intents, err)
	}
}

// TestKilledWriter: a run killed with SIGKILL in the middle of a transaction leaves the lock
// free, its committed links in place, and nothing of the transaction it was writing.
func TestKilledWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), ".dataflow", "state.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}

	_, err = Open(ctx, path, ReadWrite)
	want := fmt.Sprintf("the link state %s is in use by another run (pid %d); wait for it to finish", path, cmd.Process.Pid)
	if err == nil || err.Error() != want || !errors.Is(err, ErrLocked) {
		t.Fatalf("beside the child: got %v\nwant %s", err, want)
	}

	// The open transaction is bigger than the page cache: part of it is in the WAL already.
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() < 1<<20 {
		t.Errorf("the uncommitted transaction did not spill into the WAL: %v, %v", fi, err)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()

	s, err := Open(ctx, path, ReadWrite)
	if err != nil {
		t.Fatalf("after the kill: %v", err)
	}
	defer s.Close()
	n, err := s.CountLinks(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if n != killCommitted {
		t.Errorf("%d links after the kill, want the %d committed", n, killCommitted)
	}
	var ids []string
	for i := 0; i < killCommitted+killUncommitted; i++ {
		ids = append(ids, fmt.Sprintf("s%06d", i))
	}
	links, err := s.LinksBySource(ctx, "f", ids)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < killCommitted; i++ {
		if l, want := links[ids[i]], testLink("f", i); l == nil || l.SourceHash != want.SourceHash {
			t.Fatalf("committed link %d: %+v", i, l)
		}
	}
	if w, err := s.Watermark(ctx, "f", Source); err != nil || w != "committed" {
		t.Errorf("watermark %q, %v; want the committed one", w, err)
	}
	// The state takes writes again.
	putLinks(t, s, "f", killCommitted, killCommitted+10)
}

const (
	killCommitted = 100
	// With their padding, more than the writer's page cache holds, so that uncommitted pages
	// spill into the WAL before the kill: recovery must ignore them.
	killUncommitted = 4000
)

// killChild is the run TestKilledWriter kills: it commits some links, writes more in an open
// transaction, says ready, and waits for SIGKILL.
func killChild(path string) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "kill child:", err)
		os.Exit(2)
	}
	s, err := Open(ctx, path, ReadWrite)
	if err != nil {
		fail(err)
	}
	tx, err := s.Begin(ctx)
	if err != nil {
		fail(err)
	}
	for i := 0; i < killCommitted; i++ {
		if err := tx.PutLink(testLink("f", i)); err != nil {
			fail(err)
		}
	}
	if err := tx.SetWatermark("f", Source, "committed"); err != nil {
		fail(err)
	}
	if err := tx.Commit(); err != nil {
		fail(err)
	}
	if tx, err = s.Begin(ctx); err != nil {
		fail(err)
	}
	// Half as much again as the writer's page cache holds, over the uncommitted links.
	pad := strings.Repeat("x", writerCacheKiB<<10*3/2/killUncommitted)
	for i := killCommitted; i < killCommitted+killUncommitted; i++ {
		l := testLink("f", i)
		l.SourceHash = pad
		if err := tx.PutLink(l); err != nil {
			fail(err)
		}
	}
	if err := tx.DeleteLink("f", "s000000"); err != nil {
		fail(err)
	}
	if err := tx.SetWatermark("f", Source, "uncommitted"); err != nil {
		fail(err)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	fail(errors.New("not killed"))
}
