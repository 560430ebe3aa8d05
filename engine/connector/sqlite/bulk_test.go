package sqlite

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

const bulkTables = `
CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT UNIQUE, n INTEGER, a TEXT, b TEXT, c TEXT, d TEXT, e TEXT, f TEXT, g TEXT, h TEXT,
    stamp TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
CREATE TABLE texts (id TEXT PRIMARY KEY, v NUMERIC, stamp TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
CREATE TABLE keyed (k TEXT PRIMARY KEY, v REAL, stamp TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))) WITHOUT ROWID;
CREATE TABLE counted (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
INSERT INTO items (id, sku, stamp) VALUES (41, 'old', 'long ago');
INSERT INTO counted (v) VALUES ('1'), ('2'), ('3');
DELETE FROM counted WHERE id = 3;
`

const bulkYAML = `system: b
name: B
connector: sqlite
path: ${DB}
entities:
  Item: {table: items, id: id}
  Text: {table: texts, id: id}
  Keyed: {table: keyed, id: k}
  Counted: {table: counted, id: id}
`

func openBulk(t *testing.T) (*conn, string) {
	t.Helper()
	sys, schemas, path := describedSystem(t, bulkTables, bulkYAML)
	return mustOpen(t, sys, schemas), path
}

// insertAllOf runs the first pass of a Create batch (insertAll) in a transaction it rolls
// back, and returns whether it failed and the records' ids and errors.
func insertAllOf(t *testing.T, c *conn, entity string, data []map[string]any) (failed bool, ids []any, results []connector.Result) {
	t.Helper()
	e, err := c.entity(ctx, entity)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	tx, err := sc.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	p, err := e.predictIn(ctx, tx, len(data))
	if err != nil || p == nil {
		t.Fatalf("no prediction: %v", err)
	}
	results, ids = make([]connector.Result, len(data)), make([]any, len(data))
	failed, err = e.insertAll(ctx, sc, tx, data, p, results, ids)
	if err != nil {
		t.Fatal(err)
	}
	return failed, ids, results
}

// checkStored checks that the Results of a Create are the records as a Get reads them.
func checkStored(t *testing.T, c *conn, entity string, res []connector.Result) {
	t.Helper()
	var ids []string
	for _, r := range res {
		if r.Err == nil {
			ids = append(ids, r.Record.ID)
		}
	}
	got, err := c.Get(ctx, entity, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err == nil && !reflect.DeepEqual(got[r.Record.ID], r.Record) {
			t.Fatalf("record %d: created as %v, read as %v", i, r.Record, got[r.Record.ID])
		}
	}
}

// The rows of a batch go in statements of many rows, numbered by SQLite after the largest
// rowid in the records' order: an id given in the middle (a record inserted alone) numbers the
// rows after it from it, and a record with an error of its own is left out.
func TestCreateInBulkNumbersRowsInOrder(t *testing.T) {
	c, _ := openBulk(t)
	var data []map[string]any
	var want []any
	next := int64(42)
	for i := range 300 {
		d := map[string]any{"sku": fmt.Sprintf("S%d", i), "n": int64(i)}
		switch i {
		case 150:
			d["id"] = int64(1000)
			next = 1000
		case 200:
			d["nope"] = 1
		}
		data = append(data, d)
		switch {
		case i == 200:
			want = append(want, nil)
		case i == 150:
			want = append(want, int64(1000))
			next++
		default:
			want = append(want, next)
			next++
		}
	}
	failed, ids, results := insertAllOf(t, c, "Item", data)
	if failed {
		t.Fatal("the batch failed in bulk")
	}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("ids %v,\nwant %v", ids, want)
	}
	if results[200].Err == nil || results[200].Err.Error() != `unknown property "nope": not a column of table "items"` {
		t.Fatalf("record 200: %v", results[200].Err)
	}
	res, err := c.Create(ctx, "Item", data)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Record.ID != "42" || res[299].Record.ID != "1148" {
		t.Fatalf("ids %s ... %s", res[0].Record.ID, res[299].Record.ID)
	}
	checkStored(t, c, "Item", res)
}

// Text ids, given or made by the connector, in a table with a rowid and in one WITHOUT ROWID.
func TestCreateInBulkTextIDs(t *testing.T) {
	c, _ := openBulk(t)
	for _, entity := range []string{"Text", "Keyed"} {
		var data []map[string]any
		for i := range 130 {
			d := map[string]any{"v": float64(i) / 4}
			if i%3 == 0 || entity == "Keyed" {
				d[map[string]string{"Text": "id", "Keyed": "k"}[entity]] = fmt.Sprintf("t%d", i)
			}
			data = append(data, d)
		}
		if failed, _, _ := insertAllOf(t, c, entity, data); failed {
			t.Fatalf("%s: the batch failed in bulk", entity)
		}
		res, err := c.Create(ctx, entity, data)
		if err != nil {
			t.Fatal(err)
		}
		checkStored(t, c, entity, res)
	}
}

// A row that fails in a statement of many fails alone, as one at a time, and the statements
// of the same shape work again in the next batch.
func TestCreateInBulkFailingRow(t *testing.T) {
	c, path := openBulk(t)
	batch := func(from, n int) []map[string]any {
		var data []map[string]any
		for i := range n {
			data = append(data, map[string]any{"sku": fmt.Sprintf("S%d", from+i)})
		}
		return data
	}
	data := batch(0, 200)
	data[100]["sku"] = "S3"
	res, err := c.Create(ctx, "Item", data)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if i == 100 {
			if r.Err == nil || r.Err.Error() != "UNIQUE constraint failed: items.sku" {
				t.Fatalf("record 100: %v", r.Err)
			}
			continue
		}
		if want := fmt.Sprint(42 + i - min(1, i/101)); r.Err != nil || r.Record.ID != want {
			t.Fatalf("record %d: %v, id %s, want %s", i, r.Err, r.Record.ID, want)
		}
	}
	checkStored(t, c, "Item", res)
	if failed, _, _ := insertAllOf(t, c, "Item", batch(200, 200)); failed {
		t.Fatal("the next batch failed in bulk")
	}
	res, err = c.Create(ctx, "Item", batch(200, 200))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[0].Record.ID != "241" || res[199].Record.ID != "440" {
		t.Fatalf("next batch: %v, ids %s ... %s", res[0].Err, res[0].Record.ID, res[199].Record.ID)
	}
	if n := sqlValue(t, path, "SELECT count(*) FROM items"); n != int64(400) {
		t.Fatalf("%v items, want 400", n)
	}
}

// An AUTOINCREMENT table numbers rows after the largest it ever had (3, deleted): its rows go
// one at a time, and when they go in bulk all the same (a shape that did not see the
// AUTOINCREMENT), the numbers SQLite gives fail the batch, which is written one at a time.
func TestCreateInBulkMisnumbered(t *testing.T) {
	c, _ := openBulk(t)
	data := func() []map[string]any { return []map[string]any{{"v": "a"}, {"v": "b"}, {"v": "c"}} } // Create may keep them
	res, err := c.Create(ctx, "Counted", data())
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Record.ID != "4" || res[2].Record.ID != "6" {
		t.Fatalf("ids %s ... %s, want 4 ... 6", res[0].Record.ID, res[2].Record.ID)
	}
	e, _ := c.entity(ctx, "Counted")
	if e.shapes.Load().bulk {
		t.Fatal("an AUTOINCREMENT table inserts in bulk")
	}
	e.shapes.Load().bulk = true
	if _, err := c.w.Exec("DELETE FROM counted WHERE id = 6"); err != nil {
		t.Fatal(err)
	}
	res, err = c.Create(ctx, "Counted", data())
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Record.ID != "7" || res[2].Record.ID != "9" {
		t.Fatalf("ids %s ... %s, want 7 ... 9", res[0].Record.ID, res[2].Record.ID)
	}
	checkStored(t, c, "Counted", res)
	if !e.noBulk.Load() {
		t.Fatal("the table still inserts in bulk")
	}
}

// Records of many shapes (sets of columns): each run of one shape goes in its statements, and
// the table keeps the text of at most maxBulkShapes of them.
func TestCreateInBulkShapes(t *testing.T) {
	c, _ := openBulk(t)
	var data []map[string]any
	for i := range 1500 {
		d := map[string]any{"sku": fmt.Sprintf("S%d", i)}
		shape := i / 7 // runs of 7 records (statements of 4, 2 and 1 rows)
		if i >= 1200 {
			shape = (i / 100) % 3 // runs of 100 (64, 32 and 4)
		}
		for k, col := range strings.Split("abcdefgh", "") {
			if shape&(1<<k) != 0 {
				d[col] = col
			}
		}
		data = append(data, d)
	}
	if failed, _, _ := insertAllOf(t, c, "Item", data); failed {
		t.Fatal("the batch failed in bulk")
	}
	res, err := c.Create(ctx, "Item", data)
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, c, "Item", res)
	e, _ := c.entity(ctx, "Item")
	if n := len(e.bulkSQL); n > maxBulkShapes || n == 0 {
		t.Fatalf("%d statement texts kept", n)
	}
}

// A context cancelled in the middle of a batch in bulk fails it with its error and writes
// nothing, and the connection writes the next batch.
func TestCreateInBulkCancelled(t *testing.T) {
	c, path := openBulk(t)
	var data []map[string]any
	for i := range 500 {
		data = append(data, map[string]any{"sku": fmt.Sprintf("S%d", i)})
	}
	if _, err := c.entity(ctx, "Item"); err != nil {
		t.Fatal(err)
	}
	for _, after := range []int32{20, 300, 505} {
		cctx, cancel := context.WithCancel(ctx)
		n := &atomic.Int32{}
		n.Store(after)
		if _, err := c.Create(cancelAfter{cctx, n, cancel}, "Item", data); !errors.Is(err, context.Canceled) {
			t.Fatalf("after %d: got %v", after, err)
		}
		cancel()
		if n := sqlValue(t, path, "SELECT count(*) FROM items"); n != int64(1) {
			t.Fatalf("after %d: %v items", after, n)
		}
	}
	res, err := c.Create(ctx, "Item", data)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Record.ID != "42" || res[499].Record.ID != "541" {
		t.Fatalf("ids %s ... %s", res[0].Record.ID, res[499].Record.ID)
	}
}

// Rows of much text go fewer to a statement, and a row of more than a statement binds alone.
func TestCreateInBulkLargeRows(t *testing.T) {
	big := func(n int) change {
		return change{cols: []int{1, 2}, args: []any{strings.Repeat("x", n), []byte("yz")}}
	}
	cases := []struct {
		chs  []change
		want int
	}{
		{[]change{big(10), big(10), big(10)}, 3},
		{[]change{big(100 << 10), big(100 << 10), big(100 << 10), big(10)}, 2},
		{[]change{big(300 << 10), big(10)}, 1},
		{[]change{big(maxBulkBytes - 2), big(0)}, 1},
		{[]change{big(maxBulkBytes - 4), big(0)}, 2},
	}
	for i, c := range cases {
		if got := bytesFit(c.chs); got != c.want {
			t.Errorf("case %d: %d rows fit, want %d", i, got, c.want)
		}
	}
	c, _ := openBulk(t)
	var data []map[string]any
	for i := range 12 {
		n := 100 << 10
		if i == 5 {
			n = 300 << 10
		}
		data = append(data, map[string]any{"sku": fmt.Sprintf("S%d", i), "a": strings.Repeat(fmt.Sprint(i%10), n)})
	}
	if failed, ids, _ := insertAllOf(t, c, "Item", data); failed || ids[0] != int64(42) || ids[11] != int64(53) {
		t.Fatalf("failed %v, ids %v", failed, ids)
	}
	res, err := c.Create(ctx, "Item", data)
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, c, "Item", res)
}

// The stamps SQLite gives are read back by rowid in one range, which holds a row the batch did
// not write (41, between the id given and the rows numbered after it): it is no record's.
func TestCreateInBulkReadsStampsInRange(t *testing.T) {
	c, _ := openBulk(t)
	data := []map[string]any{{"id": int64(30), "sku": "given"}}
	for i := range 5 {
		data = append(data, map[string]any{"sku": fmt.Sprintf("S%d", i)})
	}
	res, err := c.Create(ctx, "Item", data)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := fmt.Sprint(cond(i == 0, "30", fmt.Sprint(41+i))); r.Err != nil || r.Record.ID != want || r.Record.Data["stamp"] == "long ago" || r.Record.Data["stamp"] == nil {
			t.Fatalf("record %d: %v %v, want id %s", i, r.Err, r.Record, want)
		}
	}
	checkStored(t, c, "Item", res)
}

// Create returns as a record the map it was given, with the columns the system set added,
// when each of its values is what the row holds as a read gives it; a record whose value the
// column converts (a number into TEXT, text into INTEGER) gets a map of its own, and its map
// is left as it was.
func TestCreateKeepsTheMapsGiven(t *testing.T) {
	c, _ := openBulk(t)
	data := []map[string]any{
		{"sku": "kept", "n": int64(5), "a": "x"},
		{"sku": int64(3), "n": int64(6)}, // stored as "3"
		{"sku": "n as text", "n": "7"},   // stored as 7
		{"sku": "kept too", "b": nil},
	}
	given := make([]map[string]any, len(data))
	for i, d := range data {
		given[i] = maps.Clone(d)
	}
	res, err := c.Create(ctx, "Item", data)
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, c, "Item", res)
	for i, r := range res {
		kept := reflect.ValueOf(r.Record.Data).UnsafePointer() == reflect.ValueOf(data[i]).UnsafePointer()
		if want := i == 0 || i == 3; kept != want {
			t.Errorf("record %d %v: the map given is the record: %v, want %v", i, given[i], kept, want)
		}
		if kept {
			if r.Record.Data["id"] == nil || r.Record.Data["stamp"] == nil {
				t.Errorf("record %d: the map given lacks the columns SQLite set: %v", i, r.Record.Data)
			}
		} else if !reflect.DeepEqual(data[i], given[i]) {
			t.Errorf("record %d: the map given changed to %v", i, data[i])
		}
	}
}

// A write whose context's fence fails by its commit (a leased run that lost its lease while
// it wrote: connector.Fence) rolls back whole, creates, updates and deletes alike, and says
// why; the next write under a fence that holds goes through.
func TestWritesRollBackAtAFailedFence(t *testing.T) {
	c, path := openBulk(t)
	lost := errors.New("the lease of the flow was lost")
	fenced := connector.WithFence(ctx, func() error { return lost })
	count := func() any {
		return sqlValue(t, path, "SELECT count(*) || ' ' || coalesce(group_concat(a), '') FROM items")
	}
	before := count()
	if _, err := c.Create(fenced, "Item", []map[string]any{{"sku": "f1", "a": "x"}, {"sku": "f2", "a": "y"}}); !errors.Is(err, lost) {
		t.Errorf("Create under a failed fence: %v", err)
	}
	if _, err := c.Update(fenced, "Item", []connector.Record{{ID: "41", Data: map[string]any{"a": "changed"}}}); !errors.Is(err, lost) {
		t.Errorf("Update under a failed fence: %v", err)
	}
	if _, err := c.Delete(fenced, "Item", []string{"41"}); !errors.Is(err, lost) {
		t.Errorf("Delete under a failed fence: %v", err)
	}
	if after := count(); after != before {
		t.Errorf("items after the fenced writes: %v, want %v", after, before)
	}
	holds := connector.WithFence(ctx, func() error { return nil })
	if res, err := c.Create(holds, "Item", []map[string]any{{"sku": "f1", "a": "x"}}); err != nil || res[0].Err != nil {
		t.Fatalf("Create under a fence that holds: %v %v", err, res)
	}
	if after := count(); after == before {
		t.Errorf("the write under a fence that holds left items at %v", after)
	}
}
