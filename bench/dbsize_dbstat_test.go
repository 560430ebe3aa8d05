//go:build sqlite_dbstat

package main

import (
	"database/sql"
	"testing"
)

// With dbstat compiled in (go test -tags sqlite_dbstat), the walk gives what SQLite itself
// reports for every b-tree.
func TestMeasureDBAgreesWithDbstat(t *testing.T) {
	path := sizedDB(t)
	m, err := measureDB(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var name string
		var bytes int64
		if err := rows.Scan(&name, &bytes); err != nil {
			t.Fatal(err)
		}
		seen++
		if m.btrees[name] != bytes {
			t.Errorf("b-tree %s: the walk counts %d bytes, dbstat %d", name, m.btrees[name], bytes)
		}
	}
	if seen != len(m.btrees) {
		t.Errorf("dbstat lists %d b-trees, the walk %d: %v", seen, len(m.btrees), m.btrees)
	}
}
