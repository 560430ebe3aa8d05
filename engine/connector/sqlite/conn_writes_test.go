package sqlite

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

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
