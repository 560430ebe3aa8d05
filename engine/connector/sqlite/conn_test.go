package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

var _ connector.Opener = Driver{}

var ctx = context.Background()

func TestNorthwindScan(t *testing.T) {
	c, _ := openNorthwind(t)
	products, sizes := scanAll(t, c, "Product", "")
	if len(products) != 77 || !reflect.DeepEqual(sizes, []int{77}) {
		t.Fatalf("products: %d in batches %v, want 77 in one batch", len(products), sizes)
	}
	for i, p := range products {
		if want := strconv.Itoa(i + 1); p.ID != want { // no updated column: ordered by id
			t.Fatalf("product %d has id %s, want %s", i, p.ID, want)
		}
	}
	if d := products[0].Data["Discontinued"]; d != "0" { // TEXT '0'/'1' in Northwind: a string
		t.Errorf("Discontinued = %#v, want \"0\"", d)
	}

	orders, _ := scanAll(t, c, "Order", "")
	if len(orders) != 830 {
		t.Fatalf("%d orders, want 830", len(orders))
	}
	lines := 0
	for _, o := range orders {
		lines += len(o.Data["lines"].([]any))
	}
	if lines != 2155 {
		t.Errorf("%d order lines, want 2155", lines)
	}
	o := orders[0]
	if o.ID != "10248" || !reflect.DeepEqual(listColumn(t, o, "lines", "ProductID"), []any{int64(11), int64(42), int64(72)}) {
		t.Fatalf("order %s lines %v, want 10248 with products 11, 42, 72", o.ID, listColumn(t, o, "lines", "ProductID"))
	}
	if got := listColumn(t, o, "lines", "UnitPrice"); !reflect.DeepEqual(got, []any{int64(14), 9.8, 34.8}) {
		t.Errorf("unit prices %#v", got)
	}
	if got := o.Data["OrderDate"]; got != "1996-07-04 00:00:00.000" { // DATETIME stays text
		t.Errorf("OrderDate = %#v", got)
	}
	if got := o.Data["Freight"]; got != 32.38 {
		t.Errorf("Freight = %#v", got)
	}
	if got := o.Data["ShipRegion"]; got != nil {
		t.Errorf("ShipRegion = %#v, want nil", got)
	}
}

func TestNorthwindWatermark(t *testing.T) {
	c, _ := openNorthwind(t)
	all, _ := scanAll(t, c, "DatedOrder", "")
	if len(all) != 830 {
		t.Fatalf("%d orders", len(all))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1].Data["OrderDate"].(string), all[i].Data["OrderDate"].(string)
		if a > b || a == b && all[i-1].Data["OrderID"].(int64) > all[i].Data["OrderID"].(int64) {
			t.Fatalf("not in (OrderDate, OrderID) order at %d: %s %s, %s %s", i, all[i-1].ID, a, all[i].ID, b)
		}
	}
	since := "1998-04-01"
	recent, _ := scanAll(t, c, "DatedOrder", since)
	want := 0
	for _, r := range all {
		if r.Data["OrderDate"].(string) >= since {
			want++
		}
	}
	if len(recent) != want || want == 0 || want == 830 {
		t.Fatalf("since %s: %d orders, want %d", since, len(recent), want)
	}
}

func TestCRMScanSince(t *testing.T) {
	c, _ := openCRM(t)
	recs, _ := scanAll(t, c, "Product", "2024-09-30T00:00:00Z")
	if got, want := ids(recs), []string{"3", "7", "5", "10"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("changed since 2024-09-30: %v, want %v (by updated_at)", got, want)
	}
	all, _ := scanAll(t, c, "Product", "")
	if len(all) != 13 {
		t.Fatalf("%d products", len(all))
	}
}

func TestScanBatches(t *testing.T) {
	c, _ := openGenerated(t, 2500)
	recs, sizes := scanAll(t, c, "Item", "")
	if len(recs) != 2500 || !reflect.DeepEqual(sizes, []int{1000, 1000, 500}) {
		t.Fatalf("%d records in batches %v", len(recs), sizes)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i-1].Data["updated"].(string) > recs[i].Data["updated"].(string) {
			t.Fatalf("not ordered by updated at %d", i)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := c.Scan(ctx, "Item", "", func([]connector.Record) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Scan returned %v after %d calls, want the callback's error after 1", err, calls)
	}
}

// The engine may write while it scans: the scan reads a snapshot, the write goes through.
func TestWriteDuringScan(t *testing.T) {
	c, _ := openCRM(t)
	err := c.Scan(ctx, "Product", "", func(b []connector.Record) error {
		recs := make([]connector.Record, len(b))
		for i, r := range b {
			recs[i] = connector.Record{ID: r.ID, Data: map[string]any{"units_in_stock": int64(1)}}
		}
		_, err := c.Update(ctx, "Product", recs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "Product", "13").Data["units_in_stock"]; got != int64(1) {
		t.Fatalf("units_in_stock = %#v", got)
	}
}

func TestGet(t *testing.T) {
	c, _ := openCRM(t)
	m, err := c.Get(ctx, "Order", []string{"4", "999", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["999"].Data != nil {
		t.Fatalf("got %v", m)
	}
	if got := listColumn(t, m["4"], "lines", "id"); !reflect.DeepEqual(got, []any{int64(8), int64(9), int64(10)}) {
		t.Fatalf("order 4 lines %v", got)
	}
	if got := m["1"].Data["billing_first_name"]; got != "Ingrid" {
		t.Errorf("billing_first_name = %#v", got)
	}

	nw, _ := openNorthwind(t)
	all, _ := scanAll(t, nw, "Order", "")
	m, err = nw.Get(ctx, "Order", ids(all)) // 830 ids: two chunks
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 830 || !reflect.DeepEqual(m["10248"], all[0]) {
		t.Fatalf("%d orders; 10248 = %v", len(m), m["10248"])
	}
	if got := get(t, nw, "Customer", "ANTON").Data["CompanyName"]; got != "Antonio Moreno Taquería" {
		t.Errorf("CompanyName = %q", got)
	}
}

func TestValues(t *testing.T) {
	c, _ := openCRM(t)
	p := get(t, c, "Product", "1")
	want := map[string]any{
		"id": int64(1), "sku": "NR-ESP-250", "name": `Espresso Blend "Nattravn" 250 g`,
		"description":     "Dark-roasted blend of Brazilian and Indian beans with notes of cocoa and hazelnut.",
		"unit_price":      8.9,
		"units_in_stock":  int64(120),
		"unlimited_stock": false, "discontinued": false, "visible": true,
		"weight_kg": 0.25, "category": "Coffee", "webshop_variant_id": nil, "webshop_availability": nil,
		"updated_at": "2024-08-14T09:12:00Z",
	}
	if !reflect.DeepEqual(p.Data, want) {
		t.Fatalf("product 1:\n got %#v\nwant %#v", p.Data, want)
	}
	if got := get(t, c, "Product", "10").Data["unit_price"]; got != int64(18) { // NUMERIC 18.00 is stored as 18
		t.Errorf("unit_price of 10 = %#v", got)
	}
	if got := get(t, c, "Customer", "6").Data["first_name"]; got != "芳" {
		t.Errorf("first_name = %q", got)
	}
}

func TestHostileTableName(t *testing.T) {
	path := buildDB(t, "testdata/local/custom-crm.sql")
	sys := loadSystem(t, `system: x
name: X
connector: sqlite
path: ${DB}
entities:
  Evil: {table: 'x"; DROP TABLE products; --', id: id}
  Product: {table: products, id: 'id" = 1 OR "id'}
`, map[string]string{"DB": path})
	c := mustOpen(t, sys, nil)
	err := c.Scan(ctx, "Evil", "", func([]connector.Record) error { return nil })
	if err == nil || err.Error() != `entity Evil: table "x""; DROP TABLE products; --" does not exist` {
		t.Fatalf("got %v", err)
	}
	if _, err := c.Create(ctx, "Evil", []map[string]any{{"a": 1}}); err == nil {
		t.Fatal("no error")
	}
	if _, err := c.Get(ctx, "Product", []string{"1"}); err == nil || !strings.Contains(err.Error(), `the id column "id\" = 1 OR \"id" is not a column of table "products"`) {
		t.Fatalf("got %v", err)
	}
	if n := sqlValue(t, path, "SELECT count(*) FROM products"); n != int64(13) {
		t.Fatal("products changed")
	}
	if _, err := c.Get(ctx, "Nope", nil); err == nil || err.Error() != `system x has no entity "Nope"` {
		t.Fatalf("got %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ src, want string }{
		{"path: ${NOPE}\n", "path needs the environment variable NOPE, which is not set"},
		{"path: ${A}/${B}.db\n", "path needs the environment variables A, B, which are not set"},
		{"path: " + dir + "/missing.db\n", "database " + dir + "/missing.db does not exist (an absolute path)"},
		{"path: missing.db\n", "database missing.db does not exist (relative to the current directory)"},
		{"path: " + dir + "/x.db\ninit: " + dir + "/no-such.sql\n", "cannot read the init script: open " + dir + "/no-such.sql: no such file or directory"},
		{"path: x.db\ncreate_tables: maybe\n", `create_tables must be true or false, not "maybe"`},
		{"path: " + dir + "/y.db\ncreate_tables: true\n", `entity E has no schema with properties to create table "e" from`},
	}
	for _, tc := range cases {
		sys := loadSystem(t, "system: s\nname: S\nconnector: sqlite\n"+tc.src+"entities:\n  E: {table: e, id: id}\n", nil)
		_, err := Driver{}.Open(ctx, sys, nil, connector.OpenOptions{})
		var se *connector.SettingError
		if err == nil || err.Error() != tc.want || !errors.As(err, &se) || se.Fix == "" {
			t.Errorf("%s: got %v, want %s", tc.src, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("a missing database was created")
	}
	// A failing init script leaves no database behind.
	bad := filepath.Join(dir, "bad.sql")
	os.WriteFile(bad, []byte("CREATE TABLE t (id INTEGER PRIMARY KEY);\nINSERT INTO nope VALUES (1);\n"), 0o644)
	sys := loadSystem(t, "system: s\nname: S\nconnector: sqlite\npath: "+dir+"/z.db\ninit: "+bad+"\nentities:\n  E: {table: t, id: id}\n", nil)
	if _, err := (Driver{}).Open(ctx, sys, nil, connector.OpenOptions{}); err == nil || err.Error() != "init script "+bad+": no such table: nope" {
		t.Fatalf("got %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

// A read-only connection (for dry runs) reads, refuses writes and changes nothing: not even
// the journal mode, nor a missing database that init would create.
func TestReadOnly(t *testing.T) {
	path := buildDB(t, "testdata/local/custom-crm.sql")
	sys := loadSystem(t, crmYAML, map[string]string{"CRM_DB": path})
	c, err := openSystem(ctx, sys, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if recs, _ := scanAll(t, c, "Order", ""); len(recs) != 8 {
		t.Fatalf("%d orders", len(recs))
	}
	if _, err := c.Update(ctx, "Product", []connector.Record{{ID: "1", Data: map[string]any{"name": "x"}}}); err == nil || err.Error() != "the connection is read-only" {
		t.Fatalf("got %v", err)
	}
	if mode := sqlValue(t, path, "PRAGMA journal_mode"); mode != "delete" {
		t.Errorf("journal mode %v", mode)
	}

	missing := filepath.Join(t.TempDir(), "crm.db")
	sys = loadSystem(t, strings.Replace(crmYAML, "path: ${CRM_DB}", "path: ${CRM_DB}\ninit: "+root+"/testdata/local/custom-crm.sql", 1), map[string]string{"CRM_DB": missing})
	if _, err := openSystem(ctx, sys, nil, true); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("a read-only open created the database")
	}
}
