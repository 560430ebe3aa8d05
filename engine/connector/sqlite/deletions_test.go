package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

const trackedYAML = `system: tracked
name: Tracked
connector: sqlite
path: ${TRACKED_DB}
track_deletes: true
entities:
  Thing: {table: Things, id: id}
`

// Deletions counts the rows deleted from an entity's table by anyone, once its trigger is in
// place; installing the trigger counts as one, so that a number read before a gap in the
// counting never equals one read after.
func TestDeletions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tracked.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO things (name) VALUES ('a'), ('b'), ('c'), ('d'), ('e')`)
	deletions := func(c connector.DeleteCounter, want int64, wantOK bool) {
		t.Helper()
		n, ok, err := c.Deletions(ctx, "Thing")
		if err != nil || n != want || ok != wantOK {
			t.Errorf("Deletions = %d, %v, %v; want %d, %v", n, ok, err, want, wantOK)
		}
	}
	env := map[string]string{"TRACKED_DB": path}
	deletions(mustOpen(t, loadSystem(t, strings.Replace(trackedYAML, "track_deletes: true", "track_deletes: false", 1), env), nil), 0, false)

	// A read-only connection (a dry run) installs nothing.
	ro, err := openSystem(ctx, loadSystem(t, trackedYAML, env), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	deletions(ro, 0, false)

	c := mustOpen(t, loadSystem(t, trackedYAML, env), nil)
	deletions(c, 1, true)
	deletions(c, 1, true)
	exec(`DELETE FROM things WHERE id = 1`)
	deletions(c, 2, true)
	exec(`DELETE FROM things WHERE id IN (2, 3)`)
	exec(`UPDATE things SET name = 'x'`)
	exec(`INSERT INTO things (name) VALUES ('f')`)
	deletions(c, 4, true)
	deletions(ro, 4, true) // once installed, a read-only connection reads it

	// The table made again has lost its trigger: not counted until a connection puts it back,
	// which counts as a deletion.
	exec(`CREATE TABLE things2 (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO things2 SELECT * FROM things;
		DROP TABLE things; ALTER TABLE things2 RENAME TO things; DELETE FROM things WHERE id = 4`)
	deletions(c, 0, false)
	deletions(mustOpen(t, loadSystem(t, trackedYAML, env), nil), 5, true)
	exec(`DELETE FROM things`)
	deletions(c, 7, true)
}

// An entity read from a view cannot have its deletions counted: the error says so and how
// to go on.
func TestDeletionsOfAView(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tracked.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE rows (id INTEGER PRIMARY KEY, name TEXT); CREATE VIEW things AS SELECT * FROM rows`); err != nil {
		t.Fatal(err)
	}
	c := mustOpen(t, loadSystem(t, trackedYAML, map[string]string{"TRACKED_DB": path}), nil)
	_, _, err = c.Deletions(context.Background(), "Thing")
	want := `track_deletes: cannot install the trigger that counts the deletions of "Things" (cannot create AFTER trigger on view: Things); ` +
		`let dataflow create a table and a trigger in the database, or remove track_deletes`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}
