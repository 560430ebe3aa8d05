// Package conntest is the contract every SQL connector (sqlite, postgres, mysql) keeps, as one
// suite of tests run against each: Run(t, open) with open giving a connection to a fresh
// database that has these tables, in the database's own types:
//
//	products     id (an integer the database numbers), name (text of at most 20 characters,
//	             NOT NULL), price (a decimal of 2 places), qty (integer), active (boolean),
//	             updated_at (a timestamp, NULL allowed), note (text, NULL allowed)
//	orders       id (numbered), customer (text), updated_at (a timestamp)
//	order_lines  id (numbered), order_id (integer), sku (text), qty (integer)
//
// and a system file with the entities
//
//	Product: {table: products, id: id, updated: updated_at}
//	Order: {table: orders, id: id, updated: updated_at, lists: {lines: {table: order_lines, key: order_id, id: id}}}
//
// Everything is written through the connection, so the suite needs no SQL of its own.
package conntest

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

// Entities is the system file's entities for the suite's tables.
const Entities = `entities:
  Product: {table: products, id: id, updated: updated_at}
  Order:
    table: orders
    id: id
    updated: updated_at
    lists:
      lines: {table: order_lines, key: order_id, id: id}
`

// Run runs the suite; open returns a connection to a fresh database with the tables.
func Run(t *testing.T, open func(t *testing.T) connector.Conn) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, connector.Conn)
	}{
		{"CreateReadsBack", createReadsBack},
		{"GetByID", getByID},
		{"ScanOrderAndSince", scanOrderAndSince},
		{"Find", find},
		{"UpdatePatches", updatePatches},
		{"ListsAreChildRows", listsAreChildRows},
		{"Delete", deleteRecords},
		{"NullStaysNull", nullStaysNull},
		{"ValueTheColumnCannotHold", cannotHold},
		{"Count", count},
		{"CapabilitiesSurviveAWrapper", capabilitiesSurviveAWrapper},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var ctx = context.Background()

// instant reads a timestamp as the connectors write it (with or without a zone, a T or a space).
func instant(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Fatalf("timestamp %#v is not text", v)
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if tm, err := time.Parse(layout, s); err == nil {
			return tm.UTC()
		}
	}
	t.Fatalf("timestamp %q is not ISO 8601", s)
	return time.Time{}
}

func create(t *testing.T, c connector.Conn, entity string, recs ...map[string]any) []connector.Record {
	t.Helper()
	res, err := c.Create(ctx, entity, recs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]connector.Record, len(res))
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("create %v: %v", recs[i], r.Err)
		}
		out[i] = r.Record
	}
	return out
}

func scan(t *testing.T, c connector.Conn, entity, since string) []connector.Record {
	t.Helper()
	var out []connector.Record
	if err := c.Scan(ctx, entity, since, func(b []connector.Record) error { out = append(out, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func product(name string, price float64, qty int64, updated string) map[string]any {
	return map[string]any{"name": name, "price": price, "qty": qty, "active": qty > 0, "updated_at": updated, "note": nil}
}

// sameProduct compares a product read back with what was written: the same values, the
// timestamp as the same instant.
func sameProduct(t *testing.T, got connector.Record, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g := got.Data[k]
		if k == "updated_at" && w != nil && g != nil {
			if !instant(t, g).Equal(instant(t, w)) {
				t.Errorf("record %s: updated_at %v, want %v", got.ID, g, w)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("record %s: %s = %#v, want %#v", got.ID, k, g, w)
		}
	}
}

func createReadsBack(t *testing.T, c connector.Conn) {
	in := []map[string]any{
		product("Tea", 0.99, 3, "2024-01-01T10:00:00Z"),
		product("Coffee", 19.9, 0, "2024-01-02T10:00:00Z"),
	}
	got := create(t, c, "Product", in...)
	for i, r := range got {
		if _, err := strconv.ParseInt(r.ID, 10, 64); err != nil {
			t.Fatalf("record %d: id %q is not the number the database gave", i, r.ID)
		}
		if fmt.Sprint(r.Data["id"]) != r.ID {
			t.Errorf("record %d: id property %v, id %s", i, r.Data["id"], r.ID)
		}
		sameProduct(t, r, in[i])
	}
	if got[0].ID == got[1].ID {
		t.Fatalf("two records got id %s", got[0].ID)
	}
}

func getByID(t *testing.T, c connector.Conn) {
	got := create(t, c, "Product", product("Tea", 0.99, 3, "2024-01-01T10:00:00Z"), product("Milk", 1.5, 2, "2024-01-01T11:00:00Z"))
	recs, err := c.Get(ctx, "Product", []string{got[1].ID, "999999", "not-a-number", got[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[got[0].ID].Data["name"] != "Tea" || recs[got[1].ID].Data["name"] != "Milk" {
		t.Fatalf("get: %v", recs)
	}
}

func scanOrderAndSince(t *testing.T, c connector.Conn) {
	const n = 2300 // more than two pages of a keyset scan
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var in []map[string]any
	for i := range n {
		// Ten records share each timestamp, so the order within one is by id.
		in = append(in, product(fmt.Sprintf("p%d", i), 1, int64(i), base.Add(time.Duration((i*7919)%(n/10))*time.Minute).Format(time.RFC3339)))
	}
	in[5]["updated_at"] = nil // never stamped: read by a full scan
	created := create(t, c, "Product", in...)
	all := scan(t, c, "Product", "")
	if len(all) != n {
		t.Fatalf("scan read %d records, want %d", len(all), n)
	}
	seen := map[string]bool{}
	var prev time.Time
	prevID := int64(-1)
	for i, r := range all {
		if seen[r.ID] {
			t.Fatalf("record %s read twice", r.ID)
		}
		seen[r.ID] = true
		id, _ := strconv.ParseInt(r.ID, 10, 64)
		if r.Data["updated_at"] == nil {
			if i != 0 {
				t.Fatalf("the record without updated_at is at %d, want first", i)
			}
			continue
		}
		at := instant(t, r.Data["updated_at"])
		if at.Before(prev) || at.Equal(prev) && id < prevID {
			t.Fatalf("record %d (%s at %v) after %d at %v: not in (updated, id) order", i, r.ID, at, prevID, prev)
		}
		prev, prevID = at, id
	}
	// Since a watermark as the connector wrote it: every record at or after it, no other.
	mark := all[n/2].Data["updated_at"]
	since := scan(t, c, "Product", mark.(string))
	want := 0
	for _, r := range all {
		if r.Data["updated_at"] != nil && !instant(t, r.Data["updated_at"]).Before(instant(t, mark)) {
			want++
		}
	}
	if len(since) != want {
		t.Fatalf("scan since %v read %d records, want %d", mark, len(since), want)
	}
	for _, r := range since {
		if instant(t, r.Data["updated_at"]).Before(instant(t, mark)) {
			t.Fatalf("scan since %v read %s at %v", mark, r.ID, r.Data["updated_at"])
		}
	}
	_ = created
}

func find(t *testing.T, c connector.Conn) {
	create(t, c, "Product", product("Tea", 0.99, 3, "2024-01-01T10:00:00Z"), product("Milk", 1.5, 2, "2024-01-01T11:00:00Z"),
		product("Tea", 2.5, 7, "2024-01-01T12:00:00Z"))
	names := func(recs []connector.Record) string {
		var s []string
		for _, r := range recs {
			s = append(s, fmt.Sprintf("%v/%v", r.Data["name"], r.Data["qty"]))
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	f := c.Capabilities().Finder
	if f == nil {
		t.Fatal("the connection cannot find")
	}
	recs, err := f.Find(ctx, "Product", []string{"name"}, [][]string{{"Tea"}, {"Sugar"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(recs); got != "Tea/3 Tea/7" {
		t.Errorf("find by name: %s", got)
	}
	recs, err = f.Find(ctx, "Product", []string{"name", "qty"}, [][]string{{"Tea", "7"}, {"Milk", "2"}, {"Milk", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	// Find may return more than matches (the engine compares again), never fewer.
	if got := names(recs); !strings.Contains(got, "Milk/2") || !strings.Contains(got, "Tea/7") {
		t.Errorf("find by name and qty: %s", got)
	}
	recs, err = f.Find(ctx, "Product", []string{"price"}, [][]string{{"0.99"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(recs); got != "Tea/3" {
		t.Errorf("find by price 0.99: %s", got)
	}
}

func updatePatches(t *testing.T, c connector.Conn) {
	p := create(t, c, "Product", product("Tea", 0.99, 3, "2024-01-01T10:00:00Z"))[0]
	res, err := c.Update(ctx, "Product", []connector.Record{{ID: p.ID, Data: map[string]any{"price": 1.25, "note": "dearer"}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("update: %v %v", err, res)
	}
	want := product("Tea", 1.25, 3, "2024-01-01T10:00:00Z")
	want["note"] = "dearer"
	sameProduct(t, res[0].Record, want)
	got, err := c.Get(ctx, "Product", []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	sameProduct(t, got[p.ID], want)
	res, err = c.Update(ctx, "Product", []connector.Record{{ID: "999999", Data: map[string]any{"qty": int64(1)}}})
	if err != nil || res[0].Err == nil || res[0].Err.Error() != "record 999999 does not exist" {
		t.Fatalf("update of a missing record: %v %v", err, res)
	}
}

func lines(t *testing.T, r connector.Record) string {
	t.Helper()
	items, ok := r.Data["lines"].([]any)
	if !ok {
		t.Fatalf("record %s: lines %#v is not a list", r.ID, r.Data["lines"])
	}
	var s []string
	for _, it := range items {
		m := it.(map[string]any)
		if fmt.Sprint(m["order_id"]) != r.ID {
			t.Errorf("line %v of order %s has order_id %v", m["id"], r.ID, m["order_id"])
		}
		s = append(s, fmt.Sprintf("%v×%v", m["sku"], m["qty"]))
	}
	return strings.Join(s, " ")
}

func listsAreChildRows(t *testing.T, c connector.Conn) {
	o := create(t, c, "Order", map[string]any{"customer": "ALFKI", "updated_at": "2024-01-01T10:00:00Z", "lines": []any{
		map[string]any{"sku": "TEA", "qty": int64(2)}, map[string]any{"sku": "MILK", "qty": int64(1)}, map[string]any{"sku": "SUGAR", "qty": int64(5)},
	}})[0]
	if got := lines(t, o); got != "TEA×2 MILK×1 SUGAR×5" {
		t.Fatalf("created lines: %s", got)
	}
	items := o.Data["lines"].([]any)
	tea, sugar := items[0].(map[string]any), items[2].(map[string]any)
	// Keep TEA with a new qty (by its id), drop MILK, keep SUGAR, add HONEY.
	res, err := c.Update(ctx, "Order", []connector.Record{{ID: o.ID, Data: map[string]any{"lines": []any{
		map[string]any{"id": tea["id"], "sku": "TEA", "qty": int64(4)}, sugar, map[string]any{"sku": "HONEY", "qty": int64(1)},
	}}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("update: %v %v", err, res)
	}
	if got := lines(t, res[0].Record); got != "TEA×4 SUGAR×5 HONEY×1" {
		t.Fatalf("updated lines: %s", got)
	}
	recs := scan(t, c, "Order", "")
	if len(recs) != 1 || lines(t, recs[0]) != "TEA×4 SUGAR×5 HONEY×1" {
		t.Fatalf("scanned: %v", recs)
	}
	if fmt.Sprint(recs[0].Data["lines"].([]any)[0].(map[string]any)["id"]) != fmt.Sprint(tea["id"]) {
		t.Errorf("TEA's line got a new id: %v, was %v", recs[0].Data["lines"], tea["id"])
	}
	if lc := c.Capabilities().ListIdentifier; lc == nil || lc.ListID("Order", "lines") != "id" {
		t.Errorf("lines are not identified by their id column")
	}
}

func deleteRecords(t *testing.T, c connector.Conn) {
	ps := create(t, c, "Product", product("Tea", 0.99, 3, "2024-01-01T10:00:00Z"), product("Milk", 1.5, 2, "2024-01-01T11:00:00Z"))
	o := create(t, c, "Order", map[string]any{"customer": "ALFKI", "updated_at": "2024-01-01T10:00:00Z", "lines": []any{map[string]any{"sku": "TEA", "qty": int64(2)}}})[0]
	errs, err := c.Delete(ctx, "Product", []string{ps[0].ID, "999999"})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] == nil || errs[1].Error() != "record 999999 does not exist" {
		t.Fatalf("delete errors: %v", errs)
	}
	if errs, err := c.Delete(ctx, "Order", []string{o.ID}); err != nil || errs[0] != nil {
		t.Fatalf("delete order: %v %v", err, errs)
	}
	left := scan(t, c, "Product", "")
	if len(left) != 1 || left[0].ID != ps[1].ID {
		t.Fatalf("left: %v", left)
	}
	if orders := scan(t, c, "Order", ""); len(orders) != 0 {
		t.Fatalf("orders left: %v", orders)
	}
	// The order's lines went with it: a new order has only its own.
	o2 := create(t, c, "Order", map[string]any{"customer": "B", "updated_at": "2024-01-01T10:00:00Z", "lines": []any{}})[0]
	if got := lines(t, o2); got != "" {
		t.Fatalf("new order has lines %s", got)
	}
}

func nullStaysNull(t *testing.T, c connector.Conn) {
	p := create(t, c, "Product", map[string]any{"name": "Tea", "price": nil, "qty": nil, "active": nil, "updated_at": nil, "note": nil})[0]
	for _, k := range []string{"price", "qty", "active", "updated_at", "note"} {
		if v, ok := p.Data[k]; !ok || v != nil {
			t.Errorf("%s = %#v, want null", k, v)
		}
	}
	res, err := c.Update(ctx, "Product", []connector.Record{{ID: p.ID, Data: map[string]any{"note": "x"}}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	res, err = c.Update(ctx, "Product", []connector.Record{{ID: p.ID, Data: map[string]any{"note": nil}}})
	if err != nil || res[0].Err != nil || res[0].Record.Data["note"] != nil {
		t.Fatalf("note set to null reads %#v (%v %v)", res[0].Record.Data["note"], err, res)
	}
}

func cannotHold(t *testing.T, c connector.Conn) {
	res, err := c.Create(ctx, "Product", []map[string]any{
		product("Tea", 0.99, 3, "2024-01-01T10:00:00Z"),
		{"name": nil, "qty": int64(1)}, // name is NOT NULL
		{"name": "Milk", "colour": "white"},
		product("Sugar", 2, 1, "2024-01-01T10:00:00Z"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[3].Err != nil {
		t.Fatalf("good records failed: %v, %v", res[0].Err, res[3].Err)
	}
	if res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "name") {
		t.Errorf("a NULL name: %v, want the database's NOT NULL message naming the column", res[1].Err)
	}
	if res[2].Err == nil || !strings.HasPrefix(res[2].Err.Error(), `unknown property "colour": not a column of table`) {
		t.Errorf("an unknown property: %v", res[2].Err)
	}
	if recs := scan(t, c, "Product", ""); len(recs) != 2 {
		t.Errorf("%d products stored, want the 2 good ones", len(recs))
	}
}

func count(t *testing.T, c connector.Conn) {
	create(t, c, "Product", product("Tea", 0.99, 3, "2024-01-01T10:00:00Z"), product("Milk", 1.5, 2, "2024-01-01T11:00:00Z"))
	cn := c.Capabilities().Counter
	if cn == nil {
		t.Fatal("the connection cannot count")
	}
	if n, err := cn.Count(ctx, "Product"); err != nil || n != 2 {
		t.Fatalf("count: %d %v", n, err)
	}
}

// capabilitiesSurviveAWrapper: a wrapper that embeds the connection, as a test's fault
// injection or a metrics wrapper does, keeps every capability the engine uses, the optional
// abilities included, and they work through it.
func capabilitiesSurviveAWrapper(t *testing.T, c connector.Conn) {
	create(t, c, "Product", product("Tea", 0.99, 3, "2024-01-01T10:00:00Z"))
	wrapped := struct{ connector.Conn }{c}
	caps := wrapped.Capabilities()
	if !caps.Delete || !caps.ReturnsStored || !caps.ConcurrentScan || !caps.LargeBatches {
		t.Errorf("through a wrapper: %+v, want it to delete, return stored records, scan concurrently and take large batches", caps)
	}
	if caps.Finder == nil || caps.Counter == nil || caps.DeleteCounter == nil || caps.ListIdentifier == nil {
		t.Fatalf("through a wrapper: finder %v, counter %v, delete counter %v, list identifier %v; want all", caps.Finder != nil,
			caps.Counter != nil, caps.DeleteCounter != nil, caps.ListIdentifier != nil)
	}
	if n, err := caps.Counter.Count(ctx, "Product"); err != nil || n != 1 {
		t.Errorf("count through a wrapper: %d %v, want 1", n, err)
	}
	if recs, err := caps.Finder.Find(ctx, "Product", []string{"name"}, [][]string{{"Tea"}}); err != nil || len(recs) != 1 {
		t.Errorf("find through a wrapper: %d records %v, want 1", len(recs), err)
	}
}
