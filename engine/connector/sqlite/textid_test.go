package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// The text ids the connector makes lead with the time they were made: the records a run
// creates sort in the order they were created (so their inserts append to the id index), ids
// stay 24 hex digits and unique, and the time is read back from the first 12.
func TestTextIDsSortByCreation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ids.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE items (id TEXT PRIMARY KEY, x TEXT);`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	yaml := "system: ids\nname: Ids\nconnector: sqlite\npath: ${DB}\nentities:\n  items: {table: items, id: id}\n"
	c := mustOpen(t, loadSystem(t, yaml, map[string]string{"DB": path}), map[string]*schema.Entity{})
	var made []string
	for batch := 0; batch < 3; batch++ {
		data := make([]map[string]any, 50)
		for i := range data {
			data[i] = map[string]any{"x": "v"}
		}
		res, err := c.Create(ctx, "items", data)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			made = append(made, r.Record.ID)
		}
		time.Sleep(2 * time.Millisecond) // the next batch is made in a later millisecond
	}
	seen := map[string]bool{}
	for _, id := range made {
		if len(id) != 24 || strings.Trim(id, "0123456789abcdef") != "" || seen[id] {
			t.Fatalf("id %q: want 24 hex digits, unique", id)
		}
		seen[id] = true
	}
	for b := 1; b < 3; b++ {
		if last, first := made[50*b-1], made[50*b]; last[:12] >= first[:12] {
			t.Errorf("batch %d's ids lead with %s, not after the batch before's %s", b, first[:12], last[:12])
		}
	}
	sorted := append([]string(nil), made...)
	sort.Strings(sorted)
	for b := 0; b < 3; b++ {
		got := append([]string(nil), sorted[50*b:50*b+50]...)
		want := append([]string(nil), made[50*b:50*b+50]...)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("the ids do not sort by the batch that made them")
		}
	}
	at := time.Date(2026, 12, 6, 23, 0, 0, 123e6, time.UTC)
	if id := connector.NewTextID(at); id[:12] != "01a24d95e9fb" {
		t.Errorf("the id made at %s leads with %s, want its milliseconds 01a24d95e9fb", at, id[:12])
	}
}
