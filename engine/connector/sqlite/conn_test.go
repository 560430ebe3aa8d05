package sqlite

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
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

func TestCreate(t *testing.T) {
	c, path := openCRM(t)
	recs := written(t)(c.Create(ctx, "Product", []map[string]any{
		{"sku": "NEW-1", "name": "Cup", "unit_price": 0.99, "updated_at": "2024-11-01T00:00:00Z"},
		{"id": int64(100), "sku": "NEW-2", "name": "Sugar", "unit_price": 19.9, "discontinued": true, "updated_at": "2024-11-01T00:00:00Z"},
		{"id": "200", "sku": "NEW-3", "name": "Milk", "unit_price": 8.90, "weight_kg": nil, "updated_at": "2024-11-01T00:00:00Z"},
	}))
	if got := ids(recs); !reflect.DeepEqual(got, []string{"14", "100", "200"}) {
		t.Fatalf("ids %v", got)
	}
	// Defaults come back with the record.
	if r := recs[0].Data; r["units_in_stock"] != int64(0) || r["visible"] != true || r["discontinued"] != false || r["id"] != int64(14) {
		t.Errorf("record 14: %v", r)
	}
	if got := sqlValue(t, path, "SELECT typeof(discontinued) || ':' || discontinued FROM products WHERE id = 100"); got != "integer:1" {
		t.Errorf("discontinued stored as %v, want integer 1", got)
	}
	if got := sqlValue(t, path, "SELECT typeof(id) FROM products WHERE id = 200"); got != "integer" {
		t.Errorf("id \"200\" stored as %v", got)
	}

	// Text ids: given, or generated like Squarespace's.
	nw, _ := openNorthwind(t)
	recs = written(t)(nw.Create(ctx, "Customer", []map[string]any{
		{"CustomerID": "ZZZZZ", "CompanyName": "Zeta"},
		{"CompanyName": "Gamma"},
	}))
	if recs[0].ID != "ZZZZZ" || !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(recs[1].ID) || recs[1].Data["CustomerID"] != recs[1].ID {
		t.Fatalf("ids %q %q", recs[0].ID, recs[1].ID)
	}
}

func TestExactNumbers(t *testing.T) {
	c, path := openCRM(t)
	for _, v := range []float64{0.99, 19.9, 8.90, 0.1 + 0.2, 1e-7, 123456789.125} {
		s := strconv.FormatFloat(v, 'g', -1, 64)
		recs := written(t)(c.Create(ctx, "Product", []map[string]any{
			{"sku": "F" + s, "name": s, "unit_price": v, "weight_kg": v, "updated_at": "x"},
		}))
		for _, col := range []string{"unit_price", "weight_kg"} {
			got, ok := recs[0].Data[col].(float64)
			if !ok || got != v || strconv.FormatFloat(got, 'g', -1, 64) != s {
				t.Errorf("%s %s came back as %#v", col, s, recs[0].Data[col])
			}
		}
		if got := sqlValue(t, path, "SELECT unit_price FROM products WHERE sku = ?", "F"+s); got != v {
			t.Errorf("stored %s as %#v", s, got)
		}
	}
	// float32 goes through its shortest decimal form.
	r := written(t)(c.Update(ctx, "Product", []connector.Record{{ID: "1", Data: map[string]any{"unit_price": float32(0.99)}}}))
	if r[0].Data["unit_price"] != 0.99 {
		t.Errorf("float32(0.99) stored as %#v", r[0].Data["unit_price"])
	}
}

func TestCreateWithLines(t *testing.T) {
	c, path := openCRM(t)
	order := map[string]any{
		"order_number": int64(2001), "customer_id": int64(3), "customer_email": "zoe.angstrom@example.org",
		"billing_first_name": "Zoë", "billing_last_name": "Ångström", "billing_address1": "Kungsgatan 12",
		"billing_city": "Göteborg", "billing_country_code": "SE", "order_date": "2024-11-02T10:00:00Z",
		"subtotal": 17.8, "grand_total": 22.25, "updated_at": "2024-11-02T10:00:00Z",
		"lines": []any{
			map[string]any{"product_id": int64(1), "quantity": int64(2), "unit_price": 8.9},
			map[string]any{"product_id": int64(13), "quantity": int64(1), "unit_price": 7.5, "order_id": int64(999)},
		},
	}
	r := written(t)(c.Create(ctx, "Order", []map[string]any{order}))[0]
	if r.ID != "9" || r.Data["status"] != "pending" || r.Data["currency"] != "EUR" {
		t.Fatalf("order %s: %v", r.ID, r.Data)
	}
	if got := listColumn(t, r, "lines", "id"); !reflect.DeepEqual(got, []any{int64(20), int64(21)}) {
		t.Fatalf("line ids %v", got)
	}
	if got := listColumn(t, r, "lines", "order_id"); !reflect.DeepEqual(got, []any{int64(9), int64(9)}) {
		t.Fatalf("line keys %v: the key is the parent's id whatever the line says", got)
	}
	if n := sqlValue(t, path, "SELECT count(*) FROM order_lines WHERE order_id = 9"); n != int64(2) {
		t.Fatalf("%v lines stored", n)
	}
}

func TestUpdatePatch(t *testing.T) {
	c, _ := openCRM(t)
	before := get(t, c, "Product", "2")
	r := written(t)(c.Update(ctx, "Product", []connector.Record{{ID: "2", Data: map[string]any{"name": "Ethiopia 500 g"}}}))[0]
	before.Data["name"] = "Ethiopia 500 g"
	if !reflect.DeepEqual(r, before) {
		t.Fatalf("after a patch of name:\n got %v\nwant %v", r, before)
	}
	if !reflect.DeepEqual(get(t, c, "Product", "2"), r) {
		t.Fatal("the result is not what is stored")
	}
	// The id may be given, but not changed.
	res, err := c.Update(ctx, "Product", []connector.Record{
		{ID: "2", Data: map[string]any{"id": int64(2), "visible": false}},
		{ID: "3", Data: map[string]any{"id": int64(4)}},
		{ID: "999", Data: map[string]any{"name": "x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[0].Record.Data["visible"] != false {
		t.Errorf("record 2: %v %v", res[0].Err, res[0].Record)
	}
	if res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "cannot change the id") {
		t.Errorf("changing the id: %v", res[1].Err)
	}
	if res[2].Err == nil || res[2].Err.Error() != "record 999 does not exist" {
		t.Errorf("updating a missing record: %v", res[2].Err)
	}
}

func TestNullRoundTrip(t *testing.T) {
	c, path := openCRM(t)
	r := written(t)(c.Update(ctx, "Product", []connector.Record{{ID: "1", Data: map[string]any{"description": nil, "weight_kg": nil}}}))[0]
	if v, ok := r.Data["description"]; !ok || v != nil || r.Data["weight_kg"] != nil {
		t.Fatalf("description %#v, weight %#v", r.Data["description"], r.Data["weight_kg"])
	}
	if got := sqlValue(t, path, "SELECT typeof(description) || typeof(weight_kg) FROM products WHERE id = 1"); got != "nullnull" {
		t.Fatalf("stored as %v", got)
	}
	r = written(t)(c.Update(ctx, "Product", []connector.Record{{ID: "1", Data: map[string]any{"description": "back"}}}))[0]
	if r.Data["description"] != "back" {
		t.Fatal(r.Data["description"])
	}
}

func TestBooleans(t *testing.T) {
	c, path := openCRM(t)
	r := written(t)(c.Update(ctx, "Product", []connector.Record{{ID: "1", Data: map[string]any{"visible": false, "discontinued": true}}}))[0]
	if r.Data["visible"] != false || r.Data["discontinued"] != true {
		t.Fatalf("visible %#v discontinued %#v", r.Data["visible"], r.Data["discontinued"])
	}
	if got := sqlValue(t, path, "SELECT visible || discontinued FROM products WHERE id = 1"); got != "01" {
		t.Fatalf("stored as %v", got)
	}
	// The CHECK constraint (visible IN (0, 1)) holds: a bool is written as 0/1, not 'true'.
	res, _ := c.Update(ctx, "Product", []connector.Record{{ID: "1", Data: map[string]any{"visible": "yes"}}})
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "CHECK constraint failed") {
		t.Fatalf("a string in a BOOLEAN column: %v", res[0].Err)
	}
}

func TestBlob(t *testing.T) {
	c, path := openNorthwind(t)
	r := get(t, c, "Category", "1")
	pic, ok := r.Data["Picture"].(string)
	if !ok {
		t.Fatalf("Picture is %T", r.Data["Picture"])
	}
	raw, err := base64.StdEncoding.DecodeString(pic)
	if err != nil || !reflect.DeepEqual(raw, sqlValue(t, path, "SELECT Picture FROM Categories WHERE CategoryID = 1")) {
		t.Fatalf("Picture is not the blob in base64: %v", err)
	}
	r2 := written(t)(c.Update(ctx, "Category", []connector.Record{{ID: "1", Data: map[string]any{"Picture": pic}}}))[0]
	if r2.Data["Picture"] != pic || sqlValue(t, path, "SELECT typeof(Picture) FROM Categories WHERE CategoryID = 1") != "blob" {
		t.Fatal("Picture did not round-trip as a blob")
	}
	res, _ := c.Update(ctx, "Category", []connector.Record{{ID: "1", Data: map[string]any{"Picture": "not base64!"}}})
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), `property "Picture"`) {
		t.Fatalf("bad base64: %v", res[0].Err)
	}
}

func TestListReplace(t *testing.T) {
	c, path := openCRM(t)
	// Order 4 has lines 8, 9, 10: change 8, keep 10 as it is, drop 9, add one.
	r := written(t)(c.Update(ctx, "Order", []connector.Record{{ID: "4", Data: map[string]any{
		"lines": []any{
			map[string]any{"id": int64(8), "quantity": int64(5)},
			map[string]any{"id": int64(10)},
			map[string]any{"product_id": int64(2), "quantity": int64(1), "unit_price": 16.5},
		},
	}}}))[0]
	if got := listColumn(t, r, "lines", "id"); !reflect.DeepEqual(got, []any{int64(8), int64(10), int64(20)}) {
		t.Fatalf("line ids %v", got)
	}
	if got := listColumn(t, r, "lines", "quantity"); !reflect.DeepEqual(got, []any{int64(5), int64(1), int64(1)}) {
		t.Fatalf("quantities %v", got)
	}
	if got := listColumn(t, r, "lines", "unit_price"); !reflect.DeepEqual(got, []any{6.75, 7.5, 16.5}) {
		t.Fatalf("unit prices %v: an updated line keeps the columns not given", got)
	}
	if n := sqlValue(t, path, "SELECT count(*) FROM order_lines WHERE id = 9"); n != int64(0) {
		t.Fatal("line 9 was not deleted")
	}
	if r.Data["billing_city"] != "Sevilla" {
		t.Fatal("the order's columns changed")
	}

	// Northwind: lines are identified by ProductID within the order.
	nw, _ := openNorthwind(t)
	r = written(t)(nw.Update(ctx, "Order", []connector.Record{{ID: "10248", Data: map[string]any{
		"lines": []any{
			map[string]any{"ProductID": int64(11), "Quantity": int64(20)},
			map[string]any{"ProductID": int64(42)},
			map[string]any{"ProductID": int64(1), "UnitPrice": 18.0, "Quantity": int64(3), "Discount": 0.05},
		},
	}}}))[0]
	if got := listColumn(t, r, "lines", "ProductID"); !reflect.DeepEqual(got, []any{int64(1), int64(11), int64(42)}) {
		t.Fatalf("products %v", got)
	}
	if got := listColumn(t, r, "lines", "Quantity"); !reflect.DeepEqual(got, []any{int64(3), int64(20), int64(10)}) {
		t.Fatalf("quantities %v", got)
	}
	if got := listColumn(t, r, "lines", "Discount"); !reflect.DeepEqual(got, []any{0.05, 0.0, 0.0}) {
		t.Fatalf("discounts %v", got)
	}
	// An empty list deletes every line; a bad element fails the record alone.
	res, err := nw.Update(ctx, "Order", []connector.Record{
		{ID: "10249", Data: map[string]any{"lines": []any{}}},
		{ID: "10250", Data: map[string]any{"lines": []any{map[string]any{"ProductID": int64(41)}, "x"}}},
		{ID: "10251", Data: map[string]any{"lines": []any{map[string]any{"ProductID": int64(22)}, map[string]any{"ProductID": 22.0}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || len(res[0].Record.Data["lines"].([]any)) != 0 {
		t.Errorf("empty list: %v %v", res[0].Err, res[0].Record.Data["lines"])
	}
	if res[1].Err == nil || res[1].Err.Error() != "lines[1]: an element of a list must be an object, not string" {
		t.Errorf("bad element: %v", res[1].Err)
	}
	if res[2].Err == nil || res[2].Err.Error() != "lines[1]: ProductID 22 appears twice in the list" {
		t.Errorf("duplicate id: %v", res[2].Err)
	}
	if got := len(get(t, nw, "Order", "10250").Data["lines"].([]any)); got != 3 {
		t.Errorf("order 10250 has %d lines after a failed update, want its 3", got)
	}
}

func TestDelete(t *testing.T) {
	c, path := openCRM(t)
	errs, err := c.Delete(ctx, "Order", []string{"2", "999"})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] == nil || errs[1].Error() != "record 999 does not exist" {
		t.Fatalf("errors %v", errs)
	}
	if n := sqlValue(t, path, "SELECT count(*) FROM order_lines WHERE order_id = 2"); n != int64(0) {
		t.Fatalf("%v lines of order 2 left", n)
	}
	if m, _ := c.Get(ctx, "Order", []string{"2"}); len(m) != 0 {
		t.Fatal("order 2 still exists")
	}
	// A foreign key holds: a product that order lines refer to cannot go.
	errs, _ = c.Delete(ctx, "Product", []string{"1", "12"})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "FOREIGN KEY constraint failed") || errs[1] != nil {
		t.Fatalf("errors %v", errs)
	}

	nw, nwPath := openNorthwind(t)
	if errs, err := nw.Delete(ctx, "Order", []string{"10248"}); err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	if n := sqlValue(t, nwPath, `SELECT count(*) FROM "Order Details"`); n != int64(2152) {
		t.Fatalf("%v order lines left, want 2152", n)
	}
}

func TestConstraintFailsOnlyItsRecord(t *testing.T) {
	c, path := openCRM(t)
	res, err := c.Create(ctx, "Product", []map[string]any{
		{"sku": "A-1", "name": "A", "unit_price": 1.5, "updated_at": "x"},
		{"sku": "NR-ESP-250", "name": "duplicate sku", "unit_price": 1.5, "updated_at": "x"},
		{"sku": "A-2", "name": "B", "unit_price": -1, "updated_at": "x"},
		{"sku": "A-3", "name": "C", "unit_price": 2, "updated_at": "x", "nmae": "typo"},
		{"sku": "A-4", "name": "D", "unit_price": 2.25, "updated_at": "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "UNIQUE constraint failed: products.sku", "CHECK constraint failed: unit_price >= 0",
		`unknown property "nmae": not a column of table "products"; did you mean "name"?`, ""}
	for i, r := range res {
		got := ""
		if r.Err != nil {
			got = r.Err.Error()
		}
		if got != want[i] {
			t.Errorf("record %d: error %q, want %q", i, got, want[i])
		}
	}
	if res[0].Record.ID != "14" || res[4].Record.ID != "15" {
		t.Errorf("ids %q %q", res[0].Record.ID, res[4].Record.ID)
	}
	if n := sqlValue(t, path, "SELECT count(*) FROM products"); n != int64(15) {
		t.Fatalf("%v products, want 15", n)
	}
	res, _ = c.Update(ctx, "Product", []connector.Record{{ID: "1", Data: map[string]any{"a": 1, "b": 2}}})
	if res[0].Err == nil || res[0].Err.Error() != `unknown properties "a", "b": not columns of table "products"` {
		t.Fatalf("%v", res[0].Err)
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

// The local quick start: `init: testdata/local/custom-crm.sql`, relative to the current
// directory, creates and seeds the database once.
func TestInit(t *testing.T) {
	t.Chdir(root)
	db := filepath.Join(t.TempDir(), "sub", "crm.db")
	sys := loadSystem(t, strings.Replace(crmYAML, "path: ${CRM_DB}", "path: ${CRM_DB}\ninit: testdata/local/custom-crm.sql", 1), map[string]string{"CRM_DB": db})
	c := mustOpen(t, sys, nil)
	recs, _ := scanAll(t, c, "Order", "")
	if len(recs) != 8 || len(listColumn(t, recs[0], "lines", "id")) == 0 {
		t.Fatalf("%d orders", len(recs))
	}
	written(t)(c.Update(ctx, "Product", []connector.Record{{ID: "1", Data: map[string]any{"name": "kept"}}}))
	c.Close()
	c = mustOpen(t, sys, nil) // the database exists now: not seeded again
	if got := get(t, c, "Product", "1").Data["name"]; got != "kept" {
		t.Fatalf("name = %v: the database was seeded again", got)
	}
	if mode := sqlValue(t, db, "PRAGMA journal_mode"); mode != "wal" {
		t.Errorf("journal mode %v", mode)
	}
}

// create_tables makes a local stand-in for Squarespace from its entity schemas.
func TestCreateTables(t *testing.T) {
	db := filepath.Join(t.TempDir(), "squarespace.db")
	sys := loadSystem(t, `system: squarespace
name: Squarespace
connector: sqlite
path: ${SQUARESPACE_DB}
create_tables: true
entities:
  Inventory: {table: inventory, id: variantId}
  Order: {table: orders, id: id, updated: modifiedOn}
  Sesamproducts: {table: products, id: id, updated: modifiedOn}
`, map[string]string{"SQUARESPACE_DB": db})
	var err error
	schemas := map[string]*schema.Entity{}
	for name, file := range map[string]string{"Inventory": "inventory", "Order": "order", "Sesamproducts": "sesamproducts"} {
		if schemas[name], err = schema.LoadFile(filepath.Join(root, "schemas/squarespace", file+".json")); err != nil {
			t.Fatal(err)
		}
	}
	c := mustOpen(t, sys, schemas)
	if got := sqlValue(t, db, "SELECT group_concat(name || ' ' || type || ' ' || pk, ', ') FROM pragma_table_info('inventory')"); got != "variantId TEXT 1, descriptor TEXT 0, isUnlimited BOOLEAN 0, quantity INTEGER 0, sku TEXT 0" {
		t.Errorf("inventory columns: %v", got)
	}

	product := map[string]any{
		"type": "PHYSICAL", "name": "Espresso Blend", "isVisible": true, "tags": []any{"coffee", "espresso"},
		"seoOptions": nil, "modifiedOn": "2024-11-01T00:00:00Z",
		"variants": []any{map[string]any{
			"id": "0a1b", "sku": "SQ1", "stock": map[string]any{"quantity": int64(12), "unlimited": false},
			"pricing": map[string]any{"basePrice": map[string]any{"currency": "EUR", "value": "8.90"}, "onSale": false},
		}},
	}
	r := written(t)(c.Create(ctx, "Sesamproducts", []map[string]any{product}))[0]
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(r.ID) {
		t.Fatalf("id %q", r.ID)
	}
	product["id"] = r.ID
	for _, k := range sortedKeys(r.Data) {
		if r.Data[k] != nil && product[k] == nil && k != "id" {
			t.Errorf("%s = %v appeared", k, r.Data[k])
		}
	}
	for k, v := range product {
		if !reflect.DeepEqual(r.Data[k], v) {
			t.Errorf("%s: got %#v, want %#v", k, r.Data[k], v)
		}
	}
	if got := sqlValue(t, db, "SELECT variants FROM products"); got != `[{"id":"0a1b","pricing":{"basePrice":{"currency":"EUR","value":"8.90"},"onSale":false},"sku":"SQ1","stock":{"quantity":12,"unlimited":false}}]` {
		t.Errorf("stored variants %s", got)
	}

	// A nested patch of an object column merges; arrays are replaced.
	order := written(t)(c.Create(ctx, "Order", []map[string]any{{
		"id": "ord-1", "orderNumber": "1001", "modifiedOn": "2024-11-01T00:00:00Z",
		"billingAddress": map[string]any{"firstName": "Zoë", "city": "Göteborg", "postalCode": "411 19"},
		"lineItems":      []any{map[string]any{"sku": "SQ1", "quantity": int64(2)}},
		"grandTotal":     map[string]any{"currency": "EUR", "value": "17.80"},
	}}))[0]
	if order.ID != "ord-1" {
		t.Fatal(order.ID)
	}
	r = written(t)(c.Update(ctx, "Order", []connector.Record{{ID: "ord-1", Data: map[string]any{
		"billingAddress": map[string]any{"city": "Stockholm", "postalCode": nil},
		"lineItems":      []any{},
	}}}))[0]
	if want := map[string]any{"firstName": "Zoë", "city": "Stockholm", "postalCode": nil}; !reflect.DeepEqual(r.Data["billingAddress"], want) {
		t.Errorf("billingAddress %v, want %v", r.Data["billingAddress"], want)
	}
	if !reflect.DeepEqual(r.Data["lineItems"], []any{}) || !reflect.DeepEqual(r.Data["grandTotal"], order.Data["grandTotal"]) {
		t.Errorf("lineItems %v grandTotal %v", r.Data["lineItems"], r.Data["grandTotal"])
	}
	// JSON columns hold JSON only.
	res, _ := c.Update(ctx, "Order", []connector.Record{{ID: "ord-1", Data: map[string]any{"billingAddress": map[string]any{"x": func() {}}}}})
	if res[0].Err == nil {
		t.Error("a function was stored")
	}
	// Opening again keeps the tables and their rows.
	c.Close()
	c = mustOpen(t, sys, schemas)
	if recs, _ := scanAll(t, c, "Order", ""); len(recs) != 1 {
		t.Fatalf("%d orders after reopening", len(recs))
	}
}

// create_tables makes list tables too.
func TestCreateTablesWithLists(t *testing.T) {
	db := filepath.Join(t.TempDir(), "crm.db")
	sys := loadSystem(t, strings.Replace(crmYAML, "path: ${CRM_DB}", "path: ${CRM_DB}\ncreate_tables: true", 1), map[string]string{"CRM_DB": db})
	schemas := map[string]*schema.Entity{}
	for name, file := range map[string]string{"Product": "product", "Customer": "customer", "Order": "order"} {
		s, err := schema.LoadFile(filepath.Join(root, "schemas/custom-crm", file+".json"))
		if err != nil {
			t.Fatal(err)
		}
		schemas[name] = s
	}
	c := mustOpen(t, sys, schemas)
	r := written(t)(c.Create(ctx, "Order", []map[string]any{{
		"order_number": int64(1), "subtotal": 19.9,
		"lines": []any{map[string]any{"product_id": int64(7), "quantity": int64(1), "unit_price": 0.99}},
	}}))[0]
	if r.ID != "1" || r.Data["subtotal"] != 19.9 || !reflect.DeepEqual(listColumn(t, r, "lines", "unit_price"), []any{0.99}) || !reflect.DeepEqual(listColumn(t, r, "lines", "order_id"), []any{int64(1)}) {
		t.Fatalf("%v", r)
	}
}

func TestSettingErrorKeys(t *testing.T) {
	sys := &config.System{ID: config.Str{Value: "s"}, Settings: map[string]config.Setting{}}
	_, err := Driver{}.Open(ctx, sys, nil, connector.OpenOptions{})
	var se *connector.SettingError
	if !errors.As(err, &se) || se.Key != "path" || err.Error() != "the database path is empty" {
		t.Fatalf("got %v", err)
	}
}

// The Squarespace stand-in of the quick start: init runs its script, whose triggers give
// variants ids and make inventory items; the record read back after a write shows their work.
func TestInitSquarespace(t *testing.T) {
	if _, err := os.Stat(filepath.Join(root, "testdata/local/squarespace.sql")); err != nil {
		t.Skip("no Squarespace stand-in script")
	}
	t.Chdir(root)
	db := filepath.Join(t.TempDir(), "squarespace.db")
	sys := loadSystem(t, `system: squarespace
name: Squarespace
connector: sqlite
path: ${SQUARESPACE_DB}
init: testdata/local/squarespace.sql
entities:
  Inventory: {table: inventory, id: variantId}
  Sesamproducts: {table: products, id: id, updated: modifiedOn}
`, map[string]string{"SQUARESPACE_DB": db})
	schemas := map[string]*schema.Entity{}
	for name, file := range map[string]string{"Inventory": "inventory", "Sesamproducts": "sesamproducts"} {
		s, err := schema.LoadFile(filepath.Join("schemas/squarespace", file+".json"))
		if err != nil {
			t.Fatal(err)
		}
		schemas[name] = s
	}
	c := mustOpen(t, sys, schemas)
	before, _ := scanAll(t, c, "Inventory", "")
	p := written(t)(c.Create(ctx, "Sesamproducts", []map[string]any{{
		"name": "Gooseneck Kettle", "isVisible": true,
		"variants": []any{map[string]any{"sku": "SQ-KTL", "stock": map[string]any{"quantity": int64(9), "unlimited": false}}},
	}}))[0]
	variants, ok := p.Data["variants"].([]any)
	if !ok || len(variants) != 1 {
		t.Fatalf("variants %#v", p.Data["variants"])
	}
	vid, _ := variants[0].(map[string]any)["id"].(string)
	if vid == "" || p.Data["modifiedOn"] == nil || p.Data["tags"] == nil {
		t.Fatalf("the triggers' work is not in the record read back: %v", p.Data)
	}
	inv := get(t, c, "Inventory", vid)
	if inv.Data["quantity"] != int64(9) || inv.Data["isUnlimited"] != false || inv.Data["sku"] != "SQ-KTL" {
		t.Fatalf("inventory %v", inv.Data)
	}
	if after, _ := scanAll(t, c, "Inventory", ""); len(after) != len(before)+1 {
		t.Fatalf("%d inventory items, want %d", len(after), len(before)+1)
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

// A cancelled context fails the batch as a whole and writes nothing.
func TestCancelledWrite(t *testing.T) {
	c, path := openCRM(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Create(cctx, "Product", []map[string]any{{"sku": "C", "name": "C", "unit_price": 1, "updated_at": "x"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if n := sqlValue(t, path, "SELECT count(*) FROM products"); n != int64(13) {
		t.Fatalf("%v products", n)
	}
}

// cancelAfter is a context cancelled when its Err has been asked n times: a cancellation
// in the middle of a batch, between two records.
type cancelAfter struct {
	context.Context
	n      *atomic.Int32
	cancel func()
}

func (c cancelAfter) Err() error {
	if c.n.Add(-1) < 0 {
		c.cancel()
	}
	return c.Context.Err()
}

// A context cancelled in the middle of a batch fails the batch as a whole with its error and
// writes nothing, whether the batch is written at once or record by record (a failing record).
func TestCancelledWriteMidBatch(t *testing.T) {
	for _, failing := range []bool{false, true} {
		c, path := openCRM(t)
		var data []map[string]any
		for i := range 20 {
			data = append(data, map[string]any{"sku": fmt.Sprintf("C%d", i), "name": "C", "unit_price": 1, "updated_at": "x"})
		}
		if failing {
			data[0]["sku"] = nil // NOT NULL: the batch is written again record by record
		}
		if _, err := c.entity(ctx, "Product"); err != nil { // not counted: its queries ask Err too
			t.Fatal(err)
		}
		for _, after := range []int32{3, 10} { // Err is asked once before each record
			cctx, cancel := context.WithCancel(ctx)
			n := &atomic.Int32{}
			n.Store(after)
			if _, err := c.Create(cancelAfter{cctx, n, cancel}, "Product", data); !errors.Is(err, context.Canceled) {
				t.Fatalf("failing %v, after %d: got %v", failing, after, err)
			}
			cancel()
		}
		if n := sqlValue(t, path, "SELECT count(*) FROM products"); n != int64(13) {
			t.Fatalf("failing %v: %v products", failing, n)
		}
	}
}
