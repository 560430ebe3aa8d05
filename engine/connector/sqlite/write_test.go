package sqlite

import (
	"database/sql"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// errText is a Result's error as text, "" for none.
func errText(r connector.Result) string {
	if r.Err == nil {
		return ""
	}
	return r.Err.Error()
}

// A record whose list row breaks a constraint after the record itself was inserted fails
// alone: the batch is written again with savepoints, its row is rolled back with its lines,
// and the records around it are created with theirs and read back.
func TestCreateBatchWithBadRecords(t *testing.T) {
	c, path := openCRM(t)
	order := func(number int64, customer int64, quantity int64) map[string]any {
		return map[string]any{
			"order_number": number, "customer_id": customer, "customer_email": "a@example.org",
			"billing_first_name": "A", "billing_last_name": "B", "billing_address1": "Street 1",
			"billing_city": "Town", "billing_country_code": "SE", "order_date": "2024-11-02T10:00:00Z",
			"subtotal": 8.9, "grand_total": 8.9, "updated_at": "2024-11-02T10:00:00Z",
			"lines": []any{
				map[string]any{"product_id": int64(1), "quantity": int64(1), "unit_price": 8.9},
				map[string]any{"product_id": int64(2), "quantity": quantity, "unit_price": 0.99},
			},
		}
	}
	badLines := order(3006, 3, 1)
	badLines["lines"] = []any{"x"}
	linesBefore := sqlValue(t, path, "SELECT count(*) FROM order_lines").(int64)
	res, err := c.Create(ctx, "Order", []map[string]any{
		order(3001, 1, 1),
		order(3002, 1, 0),   // CHECK (quantity > 0) of its second line
		order(3003, 2, 2),   //
		order(3004, 999, 1), // FOREIGN KEY: no customer 999
		order(3005, 3, 1),
		badLines, // invalid data: nothing written
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "lines[1]: CHECK constraint failed: quantity > 0", "", "FOREIGN KEY constraint failed", "",
		"lines[0]: an element of a list must be an object, not string"}
	for i, r := range res {
		if got := errText(r); got != want[i] {
			t.Errorf("record %d: error %q, want %q", i, got, want[i])
		}
	}
	if got := []string{res[0].Record.ID, res[2].Record.ID, res[4].Record.ID}; !reflect.DeepEqual(got, []string{"9", "10", "11"}) {
		t.Fatalf("ids %v", got)
	}
	for _, i := range []int{0, 2, 4} {
		r := res[i].Record
		if !reflect.DeepEqual(r, get(t, c, "Order", r.ID)) {
			t.Errorf("record %d: the result is not what is stored:\n%v", i, r)
		}
		if got := listColumn(t, r, "lines", "order_id"); len(got) != 2 || got[0] != r.Data["id"] || got[1] != r.Data["id"] {
			t.Errorf("record %d: line keys %v", i, got)
		}
	}
	if n := sqlValue(t, path, "SELECT count(*) FROM orders WHERE order_number IN (3002, 3004, 3006)"); n != int64(0) {
		t.Errorf("%v failed orders stored", n)
	}
	if n := sqlValue(t, path, "SELECT count(*) FROM order_lines").(int64) - linesBefore; n != 6 {
		t.Errorf("%d lines stored, want 6", n)
	}
}

// An update batch: a failing record among good ones fails alone, the others are written and
// read back; a missing record and an id in another form than the stored one.
func TestUpdateBatchWithBadRecords(t *testing.T) {
	c, path := openCRM(t)
	res, err := c.Update(ctx, "Product", []connector.Record{
		{ID: "1", Data: map[string]any{"name": "One"}},
		{ID: "2", Data: map[string]any{"unit_price": -1}},
		{ID: "3", Data: map[string]any{"visible": false}},
		{ID: "999", Data: map[string]any{"name": "x"}},
		{ID: "4", Data: map[string]any{"sku": get(t, c, "Product", "5").Data["sku"]}},
		{ID: "06", Data: map[string]any{"name": "Six"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "CHECK constraint failed: unit_price >= 0", "", "record 999 does not exist", "UNIQUE constraint failed: products.sku", ""}
	for i, r := range res {
		if got := errText(r); got != want[i] {
			t.Errorf("record %d: error %q, want %q", i, got, want[i])
		}
	}
	for i, id := range map[int]string{0: "1", 2: "3", 5: "6"} {
		if !reflect.DeepEqual(res[i].Record, get(t, c, "Product", id)) {
			t.Errorf("record %d: the result is not what is stored: %v", i, res[i].Record)
		}
	}
	if res[0].Record.Data["name"] != "One" || res[2].Record.Data["visible"] != false || res[5].Record.Data["name"] != "Six" {
		t.Errorf("results %v %v %v", res[0].Record, res[2].Record, res[5].Record)
	}
	if got := sqlValue(t, path, "SELECT unit_price FROM products WHERE id = 2"); got == -1.0 || got == int64(-1) {
		t.Error("the failed update of record 2 was stored")
	}
}

// Two patches of one record in a batch: the second applies to what the first wrote, object
// columns merged with both.
func TestUpdateSameRecordTwice(t *testing.T) {
	c, _ := openGenerated(t, 3)
	res := written(t)(c.Update(ctx, "Item", []connector.Record{
		{ID: "1", Data: map[string]any{"attrs": map[string]any{"color": "blue"}, "name": "first"}},
		{ID: "2", Data: map[string]any{"quantity": int64(7)}},
		{ID: "1", Data: map[string]any{"attrs": map[string]any{"size": int64(9)}, "quantity": int64(5)}},
	}))
	got := get(t, c, "Item", "1")
	if !reflect.DeepEqual(got.Data["attrs"], map[string]any{"color": "blue", "size": int64(9)}) || got.Data["name"] != "first" || got.Data["quantity"] != int64(5) {
		t.Fatalf("record 1 after two patches: %v", got.Data)
	}
	if !reflect.DeepEqual(res[2], got) || res[1].Data["quantity"] != int64(7) {
		t.Errorf("results %v", res)
	}
}

// Tables of every kind of primary key: the id of a created record is the one stored, whether
// SQLite numbers it, it is given in another form, or the connector makes it.
func TestCreateIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`
CREATE TABLE alias (id INTEGER PRIMARY KEY, x TEXT);
CREATE TABLE alias_desc (id INTEGER PRIMARY KEY DESC, x TEXT);
CREATE TABLE alias_constraint (id INTEGER, x TEXT, PRIMARY KEY (id DESC));
CREATE TABLE int_pk (id INT PRIMARY KEY, x TEXT);
CREATE TABLE text_pk (id TEXT PRIMARY KEY, x TEXT);
CREATE TABLE untyped_pk (id PRIMARY KEY, x TEXT);
CREATE TABLE no_rowid (id TEXT PRIMARY KEY, x TEXT) WITHOUT ROWID;
CREATE TABLE int_no_rowid (id INTEGER PRIMARY KEY, x TEXT) WITHOUT ROWID;
CREATE TABLE parents (id NUMERIC PRIMARY KEY, x TEXT);
CREATE TABLE kids (id INTEGER PRIMARY KEY, parent NUMERIC NOT NULL REFERENCES parents (id), y TEXT);
`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	tables := []string{"alias", "alias_desc", "alias_constraint", "int_pk", "text_pk", "untyped_pk", "no_rowid", "int_no_rowid", "parents"}
	yaml := "system: keys\nname: Keys\nconnector: sqlite\npath: ${DB}\nentities:\n"
	for _, tb := range tables {
		yaml += "  " + tb + ": {table: " + tb + ", id: id}\n"
	}
	yaml += "  withkids:\n    table: parents\n    id: id\n    lists: {kids: {table: kids, key: parent, id: id}}\n"
	c := mustOpen(t, loadSystem(t, yaml, map[string]string{"DB": path}), map[string]*schema.Entity{})

	aliases := map[string]bool{"alias": true, "alias_constraint": true}
	for _, tb := range tables {
		e, err := c.entity(ctx, tb)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.alias == e.id; got != aliases[tb] {
			t.Errorf("%s: the id is a rowid alias: %v, want %v", tb, got, aliases[tb])
		}
	}
	for _, c2 := range []struct {
		table string
		id    any // nil: not given
		want  string
	}{
		{"alias", nil, "1"}, {"alias", "0100", "100"}, {"alias", 7.0, "7"},
		{"alias_desc", int64(5), "5"}, {"alias_desc", "06", "6"},
		{"alias_constraint", nil, "1"},
		{"int_pk", "0100", "100"}, {"int_pk", int64(3), "3"},
		{"text_pk", int64(5), "5"}, {"text_pk", "0100", "0100"},
		{"untyped_pk", "x", "x"}, {"untyped_pk", int64(9), "9"},
		{"no_rowid", "k", "k"}, {"no_rowid", int64(4), "4"},
		{"int_no_rowid", "0012", "12"},
		{"parents", "1.50", "1.5"},
	} {
		data := map[string]any{"x": "v"}
		if c2.id != nil {
			data["id"] = c2.id
		}
		res, err := c.Create(ctx, c2.table, []map[string]any{data})
		if err != nil || res[0].Err != nil {
			t.Errorf("%s, id %#v: %v %v", c2.table, c2.id, err, res[0].Err)
			continue
		}
		if r := res[0].Record; r.ID != c2.want || r.Data["x"] != "v" || idString(r.Data["id"]) != c2.want {
			t.Errorf("%s, id %#v: created %q %v, want id %s", c2.table, c2.id, r.ID, r.Data, c2.want)
		}
	}
	// A list under a parent whose id is stored in another form than given: the rows' key is
	// the parent's id as stored.
	r := written(t)(c.Create(ctx, "withkids", []map[string]any{{"id": "2.50", "x": "p", "kids": []any{map[string]any{"y": "a"}}}}))[0]
	if r.ID != "2.5" || !reflect.DeepEqual(listColumn(t, r, "kids", "parent"), []any{2.5}) {
		t.Errorf("parent %s with kids %v", r.ID, r.Data["kids"])
	}
}

// A batch of many records, more than a chunk of read-back ids, comes back in order.
func TestCreateManyReadBack(t *testing.T) {
	c, path := openGenerated(t, 0)
	first := sqlValue(t, path, "SELECT max(id) FROM items").(int64) + 1
	data := make([]map[string]any, 2*chunkSize+7)
	for i := range data {
		data[i] = map[string]any{"sku": "S" + strings.Repeat("x", i%5) + string(rune('A'+i%26)) + idString(int64(i)), "name": "n", "price": float64(i) + 0.25,
			"updated": "2024-11-01T00:00:00Z"}
	}
	recs := written(t)(c.Create(ctx, "Item", data))
	for i, r := range recs {
		if r.ID != idString(first+int64(i)) || r.Data["sku"] != data[i]["sku"] || r.Data["price"] != data[i]["price"] {
			t.Fatalf("record %d: %v", i, r)
		}
	}
}
