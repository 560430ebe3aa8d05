package httpconn

// Hostile and awkward servers: integer stamps, ids beyond float64, endless paging, cancelled
// waits, echoed secrets, refused lookups, listings reordered by the run's own writes.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
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

// bigIDs is an API whose ids are beyond float64's exact integers: it lists one contact and
// records the requests (method, path and body) it gets.
type bigIDs struct {
	mu   sync.Mutex
	hits []string
}

func (b *bigIDs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.hits = append(b.hits, r.Method+" "+r.URL.Path+" "+string(body))
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case "GET":
		io.WriteString(w, `{"items": [{"id": 10000000000000000001, "owner": 10000000000000000003, "score": 0.1, "rank": 12, "ratio": 0.30000000000000000001, "huge": 1e400, "modifiedOn": "2024-01-01T00:00:00Z"}]}`)
	case "PATCH":
		io.WriteString(w, `{"id": 10000000000000000001, "modifiedOn": "2024-01-02T00:00:00Z"}`)
	}
}

// TestIDsAreNeverRounded: an id beyond float64 is linked by its exact text, an update goes to
// the record of that id, and numbers in the data keep their exact values, written back as they
// came.
func TestIDsAreNeverRounded(t *testing.T) {
	b := &bigIDs{}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	c, _ := openConn(t, system(srv.URL, "", "    list: {path: /items, records: items}\n    update: {path: \"/items/{id}\", result: \"\"}\n"), nil)
	pages, err := scanAll(t, c, "")
	if err != nil || len(pages) != 1 || len(pages[0]) != 1 {
		t.Fatalf("pages %v, %v", pages, err)
	}
	rec := pages[0][0]
	if rec.ID != "10000000000000000001" {
		t.Errorf("id %q, want 10000000000000000001", rec.ID)
	}
	for k, want := range map[string]any{"id": json.Number("10000000000000000001"), "owner": json.Number("10000000000000000003"),
		"score": 0.1, "rank": int64(12), "ratio": json.Number("0.30000000000000000001"), "huge": json.Number("1e400")} {
		if got := rec.Data[k]; got != want {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	res, err := c.Update(ctx, "Item", []connector.Record{{ID: rec.ID, Data: map[string]any{"owner": rec.Data["owner"], "ratio": rec.Data["ratio"]}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("update: %v, %v", err, res[0].Err)
	}
	want := `PATCH /items/10000000000000000001 {"owner":10000000000000000003,"ratio":0.30000000000000000001}`
	if b.hits[1] != want {
		t.Errorf("request %s, want %s", b.hits[1], want)
	}
	if res[0].Record.ID != "10000000000000000001" {
		t.Errorf("stored record's id %q", res[0].Record.ID)
	}
}
