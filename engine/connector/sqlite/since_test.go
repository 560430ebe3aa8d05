package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/stamp"
)

// stampsYAML is a table of last-modified values in every form the incremental read meets:
// widths, offsets either side of UTC, a date alone, text that is not a time, and NULL.
const stampsYAML = `system: stamps
name: Stamps
connector: sqlite
path: ${STAMPS_DB}
entities:
  Stamp: {table: stamps, id: id, updated: modified}
`

var stamps = []any{
	"2025-03-01T10:00:00Z", "2025-03-01T10:00:00.5Z", "2025-03-01T09:59:59.999Z",
	"2025-03-01T23:30:00-02:00", // 2025-03-02T01:30Z: its date is before the UTC date
	"2025-03-02T00:30:00+02:00", // 2025-03-01T22:30Z: its date is after the UTC date
	"2025-02-28T23:00:00-12:00", "2025-03-01", "2025-03-02", "2025-02-27T12:00:00Z",
	"2025-03-01 10:00:01", "not a time", "zzz", nil,
	// The edges of the index ranges: the largest offsets, a time without seconds at the lower
	// bound, times with a space of the bound's date, text that is not a time between the forms.
	"2025-03-01T05:01:00-14:59", "2025-03-01T05:00:00-14:59", "2025-03-02T10:59+14:59", "2025-03-01T05:00",
	"2025-03-01 21:00:00", "2025-03-01 05:00:00", "2025-03-01 04:59:59", "2025-03-01T01:99", "2025-03-01 20:00:00.5",
}

// stampsDB creates the table of stamps, empty, with an index on the stamp.
func stampsDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stamps.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE stamps (id INTEGER PRIMARY KEY, modified TEXT); CREATE INDEX stamps_modified ON stamps (modified)`); err != nil {
		t.Fatal(err)
	}
	return path, db
}

// The read since a watermark returns exactly what comparing julianday()s (and text, for values
// that are not times) returns, whatever bound narrows it.
func TestScanSinceAsTimes(t *testing.T) {
	path, db := stampsDB(t)
	for i, s := range stamps {
		if _, err := db.Exec(`INSERT INTO stamps VALUES (?, ?)`, i+1, s); err != nil {
			t.Fatal(err)
		}
	}
	c := mustOpen(t, loadSystem(t, stampsYAML, map[string]string{"STAMPS_DB": path}), nil)
	for _, since := range []string{
		"2025-03-01T10:00:00Z", "2025-03-01T10:00:00.000Z", "2025-03-01T22:00:00Z", "2025-03-02T01:00:00+01:00",
		"2025-03-01", "2025-03-01T08:00:00-03:00", "2025-02-28T11:00:00Z", "2025-03-01 10:00:00", "not a time",
		"2025-03-01T20:00:00Z", "2025-03-01T20:00", "2025-03-01 20:00:00", "2025-03-02T05:00:00+09:00", "2025-03-01T19:59:59.999Z",
	} {
		var want []string
		rows, err := db.Query(`SELECT id FROM stamps WHERE julianday(modified) >= julianday(?1)
			OR (julianday(modified) IS NULL AND modified >= ?1) ORDER BY modified, id`, since)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			rows.Scan(&id)
			want = append(want, id)
		}
		rows.Close()
		recs, _ := scanAll(t, c, "Stamp", since)
		if got := ids(recs); !slices.Equal(got, want) {
			t.Errorf("since %s: %v, want %v", since, got, want)
		}
	}
}

// With an ISO time as the watermark, the read is made of ranges of the column's index, not
// the whole table.
func TestScanSinceUsesTheIndex(t *testing.T) {
	_, db := stampsDB(t)
	plans := func(since string) []string {
		var plans []string
		for _, r := range sinceReads(`"modified"`, since) {
			rows, err := db.Query(`EXPLAIN QUERY PLAN SELECT id FROM stamps`+r.clause+` ORDER BY "modified", id`, r.args...)
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				rows.Scan(&id, &parent, &unused, &detail)
				steps = append(steps, detail)
			}
			rows.Close()
			plans = append(plans, strings.Join(steps, "; "))
		}
		return plans
	}
	got := plans("2025-03-01T10:00:00Z")
	want := []string{"SEARCH stamps USING COVERING INDEX stamps_modified (modified>? AND modified<?)", "SEARCH stamps USING COVERING INDEX stamps_modified (modified>?)"}
	if !slices.Equal(got, want) {
		t.Errorf("plans since a time:\n%q\nwant\n%q", got, want)
	}
	// A watermark that is a number reads the numbers as a range of the index, then the text.
	got = plans("42")
	want = []string{"SEARCH stamps USING COVERING INDEX stamps_modified (modified>?)", "SCAN stamps USING COVERING INDEX stamps_modified"}
	if !slices.Equal(got, want) {
		t.Errorf("plans since 42:\n%q\nwant\n%q", got, want)
	}
	// A watermark that is neither gets no bound: the whole index is read, in order.
	if got := plans("not a time"); len(got) != 1 || strings.Contains(got[0], "modified>?") {
		t.Errorf("plans since text: %q; want one without a range", got)
	}
}

// A since that is a number compares numerically with the column's numbers, whether they are
// stored as numbers or as decimal text: "100" is after "99" and 1000000000 after 999999999
// (text comparison dropped both). Text that is not a number is read, so that the engine
// warns of it; NULL is not.
func TestScanSinceAsNumbers(t *testing.T) {
	values := []any{int64(9), int64(10), int64(99), int64(100), 99.5, int64(999999999), int64(1000000000), int64(-3),
		"9", "10", "99", "100", "999999999", "1000000000", "1.5e2", "N/A", nil}
	for _, column := range []string{"INTEGER", "TEXT", ""} {
		t.Run("column "+column, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "counters.db")
			db, err := sql.Open("sqlite3", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE stamps (id INTEGER PRIMARY KEY, modified ` + column + `); CREATE INDEX stamps_modified ON stamps (modified)`); err != nil {
				t.Fatal(err)
			}
			for i, v := range values {
				if _, err := db.Exec(`INSERT INTO stamps VALUES (?, ?)`, i+1, v); err != nil {
					t.Fatal(err)
				}
			}
			c := mustOpen(t, loadSystem(t, stampsYAML, map[string]string{"STAMPS_DB": path}), nil)
			for _, since := range []string{"99", "100", "999999999", "9.5"} {
				recs, _ := scanAll(t, c, "Stamp", since)
				var got []string
				for _, r := range recs {
					got = append(got, fmt.Sprint(r.Data["modified"]))
				}
				var want []string // every value as stored (an INTEGER column makes "1.5e2" 150) at or after since
				all, _ := scanAll(t, c, "Stamp", "")
				for _, r := range all {
					v := r.Data["modified"]
					if v == nil {
						continue
					}
					if c, err := stamp.Compare(fmt.Sprint(v), since); err != nil || c >= 0 {
						want = append(want, fmt.Sprint(v))
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("since %s: %v, want %v", since, got, want)
				}
			}
		})
	}
}
