package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

var (
	_ connector.Finder  = (*conn)(nil)
	_ connector.Counter = (*conn)(nil)
)

// Find returns the records whose values have the engine's text form asked for, however SQLite
// stores them (TEXT, INTEGER, REAL, 0/1), with their lists; it refuses lists and JSON columns.
func TestFind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "find.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`
		CREATE TABLE things (id INTEGER PRIMARY KEY, code TEXT, n INTEGER, price REAL, anything, flag BOOLEAN, doc TEXT);
		INSERT INTO things VALUES
			(1, 'A-1', 18, 18.0, 18, 1, '{}'),
			(2, '007', 7, 0.5, '18', 0, NULL),
			(3, 'a-1', NULL, 18.5, 18.0, 1, NULL),
			(4, '18', 19, NULL, 'x', NULL, NULL);
		CREATE TABLE parts (id INTEGER PRIMARY KEY, thing INTEGER, qty INTEGER);
		INSERT INTO parts VALUES (10, 1, 2), (11, 1, 3);`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	sys := loadSystem(t, `system: s
name: S
connector: sqlite
path: ${DB}
entities:
  Thing:
    table: things
    id: id
    lists:
      parts: {table: parts, key: thing, id: id}
`, map[string]string{"DB": path})
	described, err := Driver{}.Describe(ctx, sys.Entity("Thing"))
	if err != nil {
		t.Fatal(err)
	}
	described.Root.Properties["doc"] = &schema.Property{Types: []string{schema.Object, schema.Null}}
	c := mustOpen(t, sys, map[string]*schema.Entity{"Thing": described})

	find := func(paths []string, keys ...[]string) []string {
		t.Helper()
		recs, err := c.Find(ctx, "Thing", paths, keys)
		if err != nil {
			t.Fatalf("Find %v %v: %v", paths, keys, err)
		}
		got := ids(recs)
		sort.Strings(got)
		return got
	}
	for _, tc := range []struct {
		paths []string
		keys  [][]string
		want  []string
	}{
		{[]string{"code"}, [][]string{{"A-1"}}, []string{"1"}}, // text is compared exactly
		{[]string{"code"}, [][]string{{"007"}, {"a-1"}}, []string{"2", "3"}},
		{[]string{"code"}, [][]string{{"18"}}, []string{"4"}},
		{[]string{"n"}, [][]string{{"18"}}, []string{"1"}},
		{[]string{"price"}, [][]string{{"18"}}, []string{"1"}}, // REAL 18.0 reads as 18
		{[]string{"price"}, [][]string{{"18.5"}, {"0.5"}}, []string{"2", "3"}},
		{[]string{"anything"}, [][]string{{"18"}}, []string{"1", "2", "3"}}, // 18, '18', 18.0
		{[]string{"flag"}, [][]string{{"true"}}, []string{"1", "3"}},
		{[]string{"flag"}, [][]string{{"false"}}, []string{"2"}},
		{[]string{"code", "n"}, [][]string{{"A-1", "18"}, {"007", "7"}}, []string{"1", "2"}},
		{[]string{"code", "n"}, [][]string{{"A-1", "7"}}, []string{}},
		{[]string{"code"}, [][]string{{"none"}}, []string{}},
		{[]string{"code"}, nil, []string{}},
	} {
		if got := find(tc.paths, tc.keys...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Find %v %v = %v, want %v", tc.paths, tc.keys, got, tc.want)
		}
	}
	// Many keys, in more than one query.
	var many [][]string
	for i := 0; i < 1000; i++ {
		many = append(many, []string{"nothing"})
	}
	many = append(many, []string{"007"})
	if got := find([]string{"code"}, many...); !reflect.DeepEqual(got, []string{"2"}) {
		t.Errorf("Find with 1001 keys = %v, want [2]", got)
	}
	// Records come with their lists.
	recs, err := c.Find(ctx, "Thing", []string{"code"}, [][]string{{"A-1"}})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Find: %v, %v", recs, err)
	}
	if got := listColumn(t, recs[0], "parts", "qty"); !reflect.DeepEqual(got, []any{int64(2), int64(3)}) {
		t.Errorf("parts of thing 1 = %v", got)
	}
	for _, p := range []string{"parts", "doc", "nope"} {
		if _, err := c.Find(ctx, "Thing", []string{p}, [][]string{{"x"}}); !errors.Is(err, connector.ErrCannotFind) {
			t.Errorf("Find by %s: %v, want ErrCannotFind", p, err)
		}
	}
}
