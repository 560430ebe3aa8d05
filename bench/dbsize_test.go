package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// sizedDB makes a database with b-trees of every kind of page: a table and an index deep
// enough for interior pages, and payloads that spill onto overflow pages in both.
func sizedDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sized.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		"CREATE TABLE small (id INTEGER PRIMARY KEY, v TEXT)",
		"CREATE TABLE big (id TEXT PRIMARY KEY, body BLOB)",
		"CREATE INDEX big_body ON big (substr(body, 1, 3000))",
		"CREATE TABLE emptied (v TEXT)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	tx, _ := db.Begin()
	for i := 0; i < 3000; i++ {
		tx.Exec("INSERT INTO small (v) VALUES (?)", strings.Repeat("x", i%50))
		tx.Exec("INSERT INTO big (id, body) VALUES (?, randomblob(?))", newTextID(), 10+(i*37)%9000)
		tx.Exec("INSERT INTO emptied (v) VALUES (?)", strings.Repeat("y", 100))
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Deleted rows leave free pages, which belong to no b-tree.
	if _, err := db.Exec("DELETE FROM emptied"); err != nil {
		t.Fatal(err)
	}
	return path
}

// The b-trees' pages are every page in use (the file has no pointer-map pages, no auto
// vacuum): a page the walk misses, interior or overflow, or counts twice, breaks the sum.
func TestMeasureDBCountsEveryPageInUse(t *testing.T) {
	path := sizedDB(t)
	m, err := measureDB(path)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for name, n := range m.btrees {
		if n <= 0 {
			t.Errorf("b-tree %s: %d bytes", name, n)
		}
		sum += n
	}
	if sum != m.used {
		t.Errorf("the b-trees hold %d bytes, the file uses %d: %v", sum, m.used, m.btrees)
	}
	for _, name := range []string{"sqlite_schema", "small", "big", "sqlite_autoindex_big_1", "big_body", "emptied"} {
		if _, ok := m.btrees[name]; !ok {
			t.Errorf("no b-tree %s in %v", name, m.btrees)
		}
	}
	if m.btrees["emptied"] != 4096 {
		t.Errorf("the emptied table holds %d bytes, want one page", m.btrees["emptied"])
	}
	if got, want := m.indexBytes("big"), m.btrees["sqlite_autoindex_big_1"]+m.btrees["big_body"]; got != want {
		t.Errorf("the indexes of big hold %d bytes, want %d", got, want)
	}
	if m.btrees["big"] < 3000*4500 {
		t.Errorf("the table of blobs holds %d bytes, less than its blobs", m.btrees["big"])
	}
}

func TestMeasureDBRefusesWhatIsNotADatabase(t *testing.T) {
	_, err := measureDB(filepath.Join(t.TempDir(), "missing.db"))
	if err == nil || !strings.Contains(err.Error(), "missing.db") {
		t.Fatalf("got %v, want an error naming the file", err)
	}
}
