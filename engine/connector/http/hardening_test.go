package httpconn

// Hostile and awkward servers: integer stamps, ids beyond float64, endless paging, cancelled
// waits, echoed secrets, refused lookups, listings reordered by the run's own writes.

import (
	"testing"
)

const plainList = "    list: {path: /items, records: items, page: {cursor: pagination.nextPageCursor, param: cursor}}\n"

// TestSinceComparesIntegerStamps: with integer updated values, since filters as numbers: 100
// is after 99 and 10 after 9 (as text "100" < "99" and every record past 99 was dropped).
func TestSinceComparesIntegerStamps(t *testing.T) {
	a := newAPI(t, 6)
	for id, stamp := range map[int]int64{1: 8, 2: 9, 3: 10, 4: 99, 5: 100, 6: 1000} {
		a.items[id]["modifiedOn"] = stamp
	}
	c, _ := openConn(t, system(a.srv.URL, "", plainList), nil)
	for since, want := range map[string]string{"9": "2,3 | 4,5,6", "99": "4,5,6", "100": "5,6", "10": "3 | 4,5,6"} {
		pages, err := scanAll(t, c, since)
		if err != nil || ids(pages) != want {
			t.Errorf("since %s: pages %s, %v; want %s", since, ids(pages), err, want)
		}
	}
}

// TestSinceComparesTimesAsInstants: a since with another offset is the same instant, and a
// record whose stamp cannot be compared is kept for the engine to judge, not dropped.
func TestSinceComparesTimesAsInstants(t *testing.T) {
	a := newAPI(t, 5)
	a.items[1]["modifiedOn"] = "N/A"
	a.items[2]["modifiedOn"] = "2024-01-01 00:00:02" // as SQLite writes it: UTC
	c, _ := openConn(t, system(a.srv.URL, "", plainList), nil)
	pages, err := scanAll(t, c, "2024-01-01T01:00:03+01:00")
	if err != nil || ids(pages) != "1,3 | 4,5" {
		t.Errorf("pages %s, %v; want 1,3 | 4,5", ids(pages), err)
	}
}
