package sync_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// Order lines added, changed and removed in the CRM (child rows) arrive in the shop's JSON
// list, and the other way round.
func TestE2ELists(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	prod := func(id string) string { return p.mustTarget("products", id) }
	o1, o2 := p.mustTarget("orders", "1"), p.mustTarget("orders", "2")
	items := func(order string) string {
		return e2eCanonicalJSON(t, p.value("shop", "SELECT items FROM orders WHERE id = ?", order).(string))
	}
	lines := func(order int) []string {
		return p.strings("crm", "SELECT product_id || ' x' || quantity || ' @' || unit_price FROM order_lines WHERE order_id = ? ORDER BY id", order)
	}

	// In the CRM: line 1 changes quantity, line 2 goes, a line for P-05 comes.
	p.exec("crm", "UPDATE order_lines SET quantity = 3 WHERE id = 1")
	p.exec("crm", "DELETE FROM order_lines WHERE id = 2")
	p.exec("crm", "INSERT INTO order_lines (order_id, product_id, quantity, unit_price) VALUES (1, 5, 1, 24)")
	p.exec("crm", "UPDATE orders SET updated_at = '2024-02-01T00:00:00Z' WHERE id = 1")
	rep := p.sync()
	if st := e2eFlow(t, rep, "orders"); st.UpdatedTarget != 1 || st.UpdatedSource != 0 {
		t.Errorf("orders: %+v; want one update of the shop", *st)
	}
	want := e2eCanonicalJSON(t, fmt.Sprintf(`[{"price":18,"product":%q,"qty":3},{"price":24,"product":%q,"qty":1}]`, prod("1"), prod("5")))
	if got := items(o1); got != want {
		t.Errorf("shop order 1 items = %s, want %s", got, want)
	}
	p.quiet("run after the CRM's line edits")

	// In the shop: order 2's item changes quantity and an item for P-06 is added.
	p.exec("shop", "UPDATE orders SET items = ? WHERE id = ?",
		fmt.Sprintf(`[{"price":9.9,"product":%q,"qty":2},{"price":129,"product":%q,"qty":1}]`, prod("4"), prod("6")), o2)
	rep = p.sync()
	if st := e2eFlow(t, rep, "orders"); st.UpdatedSource != 1 || st.UpdatedTarget != 0 {
		t.Errorf("orders: %+v; want one update of the CRM", *st)
	}
	if got := lines(2); !reflect.DeepEqual(got, []string{"4 x2 @9.9", "6 x1 @129"}) {
		t.Errorf("CRM order 2 lines = %v", got)
	}
	p.quiet("run after the shop's item edits")

	// In the shop: the first item is removed.
	p.exec("shop", "UPDATE orders SET items = ? WHERE id = ?", fmt.Sprintf(`[{"price":129,"product":%q,"qty":1}]`, prod("6")), o2)
	p.sync()
	if got := lines(2); !reflect.DeepEqual(got, []string{"6 x1 @129"}) {
		t.Errorf("CRM order 2 lines after the shop removed an item = %v", got)
	}
	if got := lines(1); !reflect.DeepEqual(got, []string{"1 x3 @18", "5 x1 @24"}) {
		t.Errorf("CRM order 1 lines changed: %v", got)
	}
	p.quiet("run after the shop removed an item")
}

// Concurrent edits of different elements of a list both survive: the order's lines are merged
// element by element, property by property, against the base.
func TestE2EListEditedOnBothSides(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	prod := func(id string) string { return p.mustTarget("products", id) }
	o1 := p.mustTarget("orders", "1")
	items := func(order string) string {
		return e2eCanonicalJSON(t, p.value("shop", "SELECT items FROM orders WHERE id = ?", order).(string))
	}
	lines := func(order int) []string {
		return p.strings("crm", "SELECT product_id || ' x' || quantity || ' @' || unit_price FROM order_lines WHERE order_id = ? ORDER BY id", order)
	}
	before := lines(1)
	if len(before) != 2 {
		t.Fatalf("order 1 has lines %v, want 2", before)
	}
	// The CRM changes the first line's quantity; the shop changes the second item's price.
	p.exec("crm", "UPDATE order_lines SET quantity = 7 WHERE id = 1")
	p.exec("crm", "UPDATE orders SET updated_at = '2024-02-01T00:00:00Z' WHERE id = 1")
	var shopItems []map[string]any
	if err := json.Unmarshal([]byte(items(o1)), &shopItems); err != nil {
		t.Fatal(err)
	}
	shopItems[1]["price"] = 99.5
	edited, _ := json.Marshal(shopItems)
	p.exec("shop", "UPDATE orders SET items = ? WHERE id = ?", string(edited), o1)
	rep := p.sync()
	if st := e2eFlow(t, rep, "orders"); st.Conflicts != 0 {
		t.Errorf("orders: %+v; want no conflict: different elements changed", *st)
	}
	got := lines(1)
	if len(got) != 2 || !strings.Contains(got[0], " x7 ") || !strings.HasSuffix(got[1], "@99.5") {
		t.Errorf("CRM order 1 lines = %v, want the CRM's quantity 7 and the shop's price 99.5", got)
	}
	shop := items(o1)
	if !strings.Contains(shop, `"qty":7`) || !strings.Contains(shop, `"price":99.5`) || !strings.Contains(shop, prod("1")) {
		t.Errorf("shop order 1 items = %s, want both edits", shop)
	}
	p.quiet("run after merging the lists")
}

// e2eOrder is order 1 of a project of testdata/sync after its first sync: its CRM lines (id,
// product, quantity) and its shop items, for the list tests.
type e2eOrder struct {
	p    *e2eProject
	shop string
}

func newE2EOrder(t *testing.T, dataflow string) *e2eOrder {
	p := newE2E(t, dataflow)
	if rep := p.sync(); rep.Failed() != 0 {
		t.Fatalf("first run: %s", e2eStats(rep))
	}
	return &e2eOrder{p: p, shop: p.mustTarget("orders", "1")}
}

// lines lists the CRM's lines of order 1 as "id:P-xx x<qty>", by id.
func (o *e2eOrder) lines() []string {
	return o.p.strings("crm", `SELECT l.id || ':' || p.sku || ' x' || l.quantity FROM order_lines l JOIN products p ON p.id = l.product_id
		WHERE l.order_id = 1 ORDER BY l.id`)
}

// items lists the shop's items of order 1 as "P-xx x<qty>" (with " note" when the item has
// one), in the shop's order.
func (o *e2eOrder) items() []string {
	o.p.t.Helper()
	var items []map[string]any
	if err := json.Unmarshal([]byte(o.p.value("shop", "SELECT items FROM orders WHERE id = ?", o.shop).(string)), &items); err != nil {
		o.p.t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		sku := o.p.text("shop", "SELECT sku FROM products WHERE id = ?", it["product"])
		s := fmt.Sprintf("%s x%v", sku, it["qty"])
		if n, ok := it["note"]; ok {
			s += fmt.Sprintf(" %v", n)
		}
		out = append(out, s)
	}
	return out
}

// setItems replaces the shop's items of order 1: each "P-xx qty [note]".
func (o *e2eOrder) setItems(items ...string) {
	o.p.t.Helper()
	var list []map[string]any
	for _, it := range items {
		f := strings.Fields(it)
		id := o.p.text("shop", "SELECT id FROM products WHERE sku = ?", f[0])
		price := o.p.value("shop", "SELECT price FROM products WHERE id = ?", id)
		m := map[string]any{"product": id, "qty": json.Number(f[1]), "price": price}
		if len(f) > 2 {
			m["note"] = f[2]
		}
		list = append(list, m)
	}
	b, _ := json.Marshal(list)
	o.p.exec("shop", "UPDATE orders SET items = ? WHERE id = ?", string(b), o.shop)
}

// CRM edits of order 1 stamp it, so that incremental reads see them.
func (o *e2eOrder) crm(query string, args ...any) {
	o.p.exec("crm", query, args...)
	o.p.exec("crm", "UPDATE orders SET updated_at = '2024-03-01T00:00:00Z' WHERE id = 1")
}

func (o *e2eOrder) sync(t *testing.T) *dsync.FlowStats {
	t.Helper()
	rep := o.p.sync()
	if rep.Failed() != 0 {
		t.Fatalf("run: %s", e2eStats(rep))
	}
	return e2eFlow(t, rep, "orders")
}

func e2eSorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// Lists changed on both sides with different lengths are merged element by element: elements
// are traced through the base (CRM lines by their id, shop items by their value or place), so
// that an addition on one side and an edit on the other both survive, a removal on one side and
// an edit of another element on the other both apply, additions on both sides are both kept,
// and each CRM line keeps its id.
func TestE2EListsOfDifferentLengthsEditedOnBothSides(t *testing.T) {
	// Order 1 is line 1 (P-01 x2) and line 2 (P-03 x1).
	for _, c := range []struct {
		name      string
		crm       string   // SQL on the CRM's order_lines
		shop      []string // the shop's items after its edit
		lines     []string // the CRM's lines after the run (new lines: "new:")
		items     []string // the shop's items after the run, sorted
		conflicts int
	}{
		{"CRM adds a line, the shop changes a quantity",
			"INSERT INTO order_lines (id, order_id, product_id, quantity, unit_price) VALUES (10, 1, 5, 1, 24)",
			[]string{"P-01 2", "P-03 4"},
			[]string{"1:P-01 x2", "2:P-03 x4", "10:P-05 x1"}, []string{"P-01 x2", "P-03 x4", "P-05 x1"}, 0},
		{"the shop adds an item, the CRM changes a quantity",
			"UPDATE order_lines SET quantity = 7 WHERE id = 1",
			[]string{"P-01 2", "P-03 1", "P-07 3"},
			[]string{"1:P-01 x7", "2:P-03 x1", "new:P-07 x3"}, []string{"P-01 x7", "P-03 x1", "P-07 x3"}, 0},
		{"CRM removes a line, the shop changes the other",
			"DELETE FROM order_lines WHERE id = 1",
			[]string{"P-01 2", "P-03 5"},
			[]string{"2:P-03 x5"}, []string{"P-03 x5"}, 0},
		{"the shop removes an item, the CRM changes the other",
			"UPDATE order_lines SET quantity = 6 WHERE id = 2",
			[]string{"P-03 1"},
			[]string{"2:P-03 x6"}, []string{"P-03 x6"}, 0},
		{"both add a line",
			"INSERT INTO order_lines (id, order_id, product_id, quantity, unit_price) VALUES (10, 1, 5, 1, 24)",
			[]string{"P-01 2", "P-03 1", "P-07 3"},
			[]string{"1:P-01 x2", "2:P-03 x1", "10:P-05 x1", "new:P-07 x3"}, []string{"P-01 x2", "P-03 x1", "P-05 x1", "P-07 x3"}, 0},
		{"both change the same line's quantity: the source wins (newest, the shop has no stamp)",
			"UPDATE order_lines SET quantity = 3 WHERE id = 1",
			[]string{"P-01 9", "P-03 1", "P-07 3"},
			[]string{"1:P-01 x3", "2:P-03 x1", "new:P-07 x3"}, []string{"P-01 x3", "P-03 x1", "P-07 x3"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := newE2EOrder(t, "basic.yaml")
			if got := o.lines(); !reflect.DeepEqual(got, []string{"1:P-01 x2", "2:P-03 x1"}) {
				t.Fatalf("order 1 starts with lines %v", got)
			}
			o.crm(c.crm)
			o.setItems(c.shop...)
			st := o.sync(t)
			if st.Conflicts != c.conflicts {
				t.Errorf("%d conflicts, want %d: %+v", st.Conflicts, c.conflicts, *st)
			}
			lines := o.lines()
			var got []string
			for _, l := range lines {
				id, rest, _ := strings.Cut(l, ":")
				if n, _ := strconv.Atoi(id); n > 2 && n != 10 {
					id = "new" // a line the run inserted
				}
				got = append(got, id+":"+rest)
			}
			if !reflect.DeepEqual(got, c.lines) {
				t.Errorf("CRM lines %v, want %v", lines, c.lines)
			}
			if got := e2eSorted(o.items()); !reflect.DeepEqual(got, c.items) {
				t.Errorf("shop items %v, want %v", o.items(), c.items)
			}
			o.p.quiet("run after merging the lists")
		})
	}
}

// The same line changed on both sides, or changed on one side and removed on the other, is a
// conflict that the flow's policy decides; other lines merge as usual.
func TestE2EListConflictsFollowThePolicy(t *testing.T) {
	for _, c := range []struct {
		dataflow string
		lines    []string
		items    []string
	}{
		// The source wins: line 1's quantity is the CRM's, line 2 is removed as the CRM did.
		{"basic.yaml", []string{"1:P-01 x3"}, []string{"P-01 x3"}},
		// The target wins: the shop's quantity, and line 2 comes back (a new row) with the
		// shop's change.
		{"lists-target-wins.yaml", []string{"1:P-01 x9", "4:P-03 x4"}, []string{"P-01 x9", "P-03 x4"}},
	} {
		t.Run(c.dataflow, func(t *testing.T) {
			o := newE2EOrder(t, c.dataflow)
			o.crm("UPDATE order_lines SET quantity = 3 WHERE id = 1")
			o.crm("DELETE FROM order_lines WHERE id = 2")
			o.setItems("P-01 9", "P-03 4")
			st := o.sync(t)
			if st.Conflicts != 2 {
				t.Errorf("%d conflicts, want 2 (line 1 changed on both sides, line 2 removed and changed): %+v", st.Conflicts, *st)
			}
			if got := o.lines(); !reflect.DeepEqual(got, c.lines) {
				t.Errorf("CRM lines %v, want %v", got, c.lines)
			}
			if got := o.items(); !reflect.DeepEqual(got, c.items) {
				t.Errorf("shop items %v, want %v", got, c.items)
			}
			o.p.quiet("run after the conflicts")
		})
	}
}

// An element keeps what the mapping does not set when the list around it changes: the shop's
// note stays on its item when the CRM removes the line before it, and the CRM line behind an
// item keeps its id when the shop removes the item before it.
func TestE2EListElementsKeepTheirFields(t *testing.T) {
	o := newE2EOrder(t, "basic.yaml")
	o.setItems("P-01 2 first", "P-03 1 second")
	o.sync(t)
	o.crm("DELETE FROM order_lines WHERE id = 1")
	o.sync(t)
	if got := o.items(); !reflect.DeepEqual(got, []string{"P-03 x1 second"}) {
		t.Errorf("shop items %v after the CRM removed line 1; want P-03's item with its own note", got)
	}
	o.p.quiet("run after the CRM removed a line")

	o.crm("INSERT INTO order_lines (id, order_id, product_id, quantity, unit_price) VALUES (10, 1, 5, 1, 24)")
	o.sync(t)
	o.setItems("P-05 1 third")
	o.sync(t)
	if got := o.lines(); !reflect.DeepEqual(got, []string{"10:P-05 x1"}) {
		t.Errorf("CRM lines %v after the shop removed P-03's item; want line 10 as it was", got)
	}
	o.p.quiet("run after the shop removed an item")
}
