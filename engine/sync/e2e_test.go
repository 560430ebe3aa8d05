package sync_test

// End-to-end tests of the sync semantics (docs/semantics.md §3) over real SQLite files: projects of
// testdata/sync (a CRM as the source, a shop as the target) loaded through engine.New + Load,
// connections opened with Driver.Open and the link state with state.Open, runs of
// sync.Runner in-process. Assertions are SQL queries on both databases, the run's report and
// the link state.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

// The first sync creates every target record and links it; a second run with no edits writes
// nothing and finds every link unchanged.
func TestE2EFirstSyncCreatesEverythingSecondRunWritesNothing(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	rep := p.sync()
	if rep.Failed() != 0 {
		t.Fatalf("first run: %d records failed:\n%s", rep.Failed(), e2eStats(rep))
	}
	for flow, want := range map[string]int{"products": 10, "customers": 3, "orders": 2} {
		if got := e2eFlow(t, rep, flow).CreatedTarget; got != want {
			t.Errorf("%s: created %d target records, want %d", flow, got, want)
		}
		if got := p.links(flow); got != want {
			t.Errorf("%s: %d links, want %d", flow, got, want)
		}
	}
	for table, want := range map[string]int{"products": 10, "customers": 3, "orders": 2} {
		if got := p.count("shop", table); got != want {
			t.Errorf("shop has %d %s, want %d", got, table, want)
		}
	}
	// The values arrived as they are: text with non-ASCII letters, NULL as NULL, prices exact.
	p3 := p.mustTarget("products", "3")
	if got := p.text("shop", "SELECT title FROM products WHERE id = ?", p3); got != "Grüner Tee" {
		t.Errorf("title of P-03 = %q", got)
	}
	if got := p.text("shop", "SELECT summary FROM products WHERE id = ?", p3); got != "<NULL>" {
		t.Errorf("summary of P-03 = %q, want NULL", got)
	}
	if got := p.text("shop", "SELECT price FROM products WHERE id = ?", p3); got != "0.99" {
		t.Errorf("price of P-03 = %q, want 0.99", got)
	}
	if got := p.text("shop", "SELECT full_name FROM customers WHERE id = ?", p.mustTarget("customers", "2")); got != "Bob O'Brien" {
		t.Errorf("full_name of customer 2 = %q", got)
	}
	// The order refers to the linked customer and products; its lines are a JSON list.
	o1 := p.mustTarget("orders", "1")
	if got, want := p.text("shop", "SELECT customer FROM orders WHERE id = ?", o1), p.mustTarget("customers", "1"); got != want {
		t.Errorf("order 1: customer = %s, want %s", got, want)
	}
	items := p.value("shop", "SELECT items FROM orders WHERE id = ?", o1).(string)
	want := fmt.Sprintf(`[{"price":18,"product":%q,"qty":2},{"price":0.99,"product":%q,"qty":1}]`, p.mustTarget("products", "1"), p3)
	if e2eCanonicalJSON(t, items) != e2eCanonicalJSON(t, want) {
		t.Errorf("order 1 items = %s, want %s", items, want)
	}

	// The second run: no writes, no conflicts, every link found unchanged.
	rep = p.quiet("second run")
	for _, f := range rep.Flows {
		if n := p.links(f.Flow); f.Unchanged != n {
			t.Errorf("second run, %s: %d unchanged, want every one of the %d links", f.Flow, f.Unchanged, n)
		}
		if f.Conflicts != 0 || f.Merged != 0 {
			t.Errorf("second run, %s: %+v", f.Flow, *f)
		}
	}
	p.quiet("third run")
	if got := p.count("shop", "products"); got != 10 {
		t.Errorf("after three runs the shop has %d products", got)
	}
}

// An edit on the source arrives on the target; an edit on the target arrives on the source;
// a to-target property edited on the target does not flow back (the source's value wins).
func TestE2ETwoWay(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	p.exec("crm", "UPDATE products SET name = 'Espresso beans, 1 kg', updated_at = '2024-02-01T00:00:00Z' WHERE id = 1")
	p2 := p.mustTarget("products", "2")
	p.exec("shop", "UPDATE products SET quantity = 5, modified = '2024-02-01T00:00:00Z' WHERE id = ?", p2)
	p4 := p.mustTarget("products", "4")
	p.exec("shop", "UPDATE products SET summary = 'edited in the shop', modified = '2024-02-01T00:00:00Z' WHERE id = ?", p4)

	rep := p.sync()
	st := e2eFlow(t, rep, "products")
	// The target's edit of the to-target summary is undone: a second update of the target.
	if st.UpdatedTarget != 2 || st.UpdatedSource != 1 || st.Conflicts != 0 {
		t.Errorf("products: %+v; want 2 updates of the target, 1 of the source, no conflict", *st)
	}
	if got := p.text("shop", "SELECT title FROM products WHERE id = ?", p.mustTarget("products", "1")); got != "Espresso beans, 1 kg" {
		t.Errorf("the source's edit did not arrive: title = %q", got)
	}
	if got := p.text("crm", "SELECT stock FROM products WHERE id = 2"); got != "5" {
		t.Errorf("the target's edit did not arrive: stock = %s", got)
	}
	if got := p.text("crm", "SELECT description FROM products WHERE id = 4"); got != "350 ml, steel" {
		t.Errorf("a to-target property flowed back: description = %q", got)
	}
	p.quiet("run after the edits")
	if got := p.text("crm", "SELECT description FROM products WHERE id = 4"); got != "350 ml, steel" {
		t.Errorf("a to-target property flowed back later: description = %q", got)
	}
}

// The same property edited on both sides between runs: the flow's conflict policy decides.
// newest compares the records' updated values (updated_at in the CRM, modified in the shop, in
// different but comparable formats); a tie goes to the source.
func TestE2EConflicts(t *testing.T) {
	type edit struct {
		product          string
		srcTime, tgtTime string
		want             string // "crm" or "shop": whose value both sides hold afterwards
	}
	cases := []struct {
		file  string
		edits []edit
	}{
		{"conflict-source.yaml", []edit{
			{"1", "2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z", "crm"},
		}},
		{"conflict-target.yaml", []edit{
			{"1", "2024-03-01T11:00:00Z", "2024-03-01T10:00:00Z", "shop"},
		}},
		{"conflict-newest.yaml", []edit{
			{"1", "2024-03-01T12:00:00Z", "2024-03-01 11:00:00", "crm"},        // the source is newer
			{"2", "2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z", "shop"},      // the target is newer
			{"3", "2024-03-01T12:00:00Z", "2024-03-01T12:00:00.000Z", "crm"},   // a tie
			{"4", "2024-03-01T09:00:00Z", "2024-03-01T09:00:00.5Z", "shop"},    // by half a second
			{"5", "2024-03-01T13:00:00+01:00", "2024-03-01T12:30:00Z", "shop"}, // 12:00Z < 12:30Z
		}},
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(c.file, ".yaml"), func(t *testing.T) {
			p := newE2E(t, c.file)
			p.sync()
			for _, e := range c.edits {
				p.exec("crm", "UPDATE products SET name = 'name from the CRM', updated_at = ? WHERE id = ?", e.srcTime, e.product)
				p.exec("shop", "UPDATE products SET title = 'title from the shop', modified = ? WHERE id = ?", e.tgtTime, p.mustTarget("products", e.product))
			}
			rep := p.sync()
			st := e2eFlow(t, rep, "products")
			if st.Conflicts != len(c.edits) {
				t.Errorf("%d conflicts, want %d: %+v", st.Conflicts, len(c.edits), *st)
			}
			for _, e := range c.edits {
				want := map[string]string{"crm": "name from the CRM", "shop": "title from the shop"}[e.want]
				src := p.text("crm", "SELECT name FROM products WHERE id = ?", e.product)
				tgt := p.text("shop", "SELECT title FROM products WHERE id = ?", p.mustTarget("products", e.product))
				if src != want || tgt != want {
					t.Errorf("product %s (CRM updated %s, shop modified %s): CRM %q, shop %q; want both %q",
						e.product, e.srcTime, e.tgtTime, src, tgt, want)
				}
			}
			p.quiet("run after the conflicts")
		})
	}
}

// Concurrent edits of different properties of one record on both sides both survive.
func TestE2EEditsOfDifferentPropertiesBothSurvive(t *testing.T) {
	p := newE2E(t, "conflict-source.yaml") // even the source policy has nothing to decide
	p.sync()
	p5 := p.mustTarget("products", "5")
	p.exec("crm", "UPDATE products SET name = 'Tamper 58 mm', updated_at = '2024-03-01T10:00:00Z' WHERE id = 5")
	p.exec("shop", "UPDATE products SET price = 26.5, modified = '2024-03-01T11:00:00Z' WHERE id = ?", p5)
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.Conflicts != 0 || st.UpdatedTarget != 1 || st.UpdatedSource != 1 {
		t.Errorf("products: %+v; want one update each way and no conflict", *st)
	}
	if got := p.text("crm", "SELECT name || ' / ' || price FROM products WHERE id = 5"); got != "Tamper 58 mm / 26.5" {
		t.Errorf("CRM: %s", got)
	}
	if got := p.text("shop", "SELECT title || ' / ' || price FROM products WHERE id = ?", p5); got != "Tamper 58 mm / 26.5" {
		t.Errorf("shop: %s", got)
	}
	p.quiet("run after the edits")
}

// At the first merge of records that existed on both sides a non-empty value beats an empty
// one, in both directions; later an explicit clear on one side propagates to the other.
func TestE2EFirstMergeAndExplicitClears(t *testing.T) {
	p := newE2E(t, "merge.yaml")
	// Ann has a name and a city in the CRM but no phone; the shop has her phone only.
	p.exec("crm", "UPDATE customers SET phone = NULL WHERE id = 1")
	p.exec("shop", `INSERT INTO customers (id, email, full_name, phone, city) VALUES
		(101, 'ann@example.com', '', '+47 555 0199', NULL),
		(102, 'bob@example.com', NULL, '+353 555 0102', '')`)
	rep := p.sync()
	st := e2eFlow(t, rep, "customers")
	if st.Merged != 2 || st.Failed != 0 {
		t.Fatalf("customers: %+v; want Ann and Bob merged", *st)
	}
	if st.Conflicts != 0 {
		t.Errorf("customers: %d conflicts at the first merge; a value against an empty one is none", st.Conflicts)
	}
	if p.targetOf("customers", "1") != "101" || p.targetOf("customers", "2") != "102" {
		t.Fatalf("links: %v", p.allLinks("customers"))
	}
	check := func(when string, system, query string, want string) {
		t.Helper()
		if got := p.text(system, query); got != want {
			t.Errorf("%s: %s: %s = %q, want %q", when, system, query, got, want)
		}
	}
	// Source → target: the CRM's name and city fill the shop's empty ones.
	check("first merge", "shop", "SELECT full_name FROM customers WHERE id = 101", "Ann Ødegård")
	check("first merge", "shop", "SELECT city FROM customers WHERE id = 101", "Oslo")
	check("first merge", "shop", "SELECT full_name FROM customers WHERE id = 102", "Bob O'Brien")
	check("first merge", "shop", "SELECT city FROM customers WHERE id = 102", "Dublin")
	// Target → source: the shop's phones fill the CRM's missing ones.
	check("first merge", "crm", "SELECT phone FROM customers WHERE id = 1", "+47 555 0199")
	check("first merge", "crm", "SELECT phone FROM customers WHERE id = 2", "+353 555 0102")
	p.quiet("run after the first merge")

	// Later, a clear is an edit like any other: NULL in the CRM clears the shop...
	p.exec("crm", "UPDATE customers SET phone = NULL WHERE id = 1")
	p.sync()
	check("clear in the CRM", "shop", "SELECT phone FROM customers WHERE id = 101", "<NULL>")
	check("clear in the CRM", "crm", "SELECT phone FROM customers WHERE id = 1", "<NULL>")
	// ... and "" in the shop clears the CRM.
	p.exec("shop", "UPDATE customers SET city = '' WHERE id = 102")
	p.sync()
	check("clear in the shop", "crm", "SELECT city FROM customers WHERE id = 2", "")
	check("clear in the shop", "shop", "SELECT city FROM customers WHERE id = 102", "")
	p.quiet("run after the clears")
	check("after the clears", "shop", "SELECT phone FROM customers WHERE id = 101", "<NULL>")
	check("after the clears", "crm", "SELECT city FROM customers WHERE id = 2", "")
}

// Merge criteria link records by a unique key; a record that matches two records of the other
// side goes to the dead letters with the reason and the run goes on; with create: never an
// unmatched source record waits, and links when its partner appears in a later run. An
// unmatched target record (the flow never creates in the source) is not kept as waiting: it is
// found by the source record that appears later.
func TestE2EMergeCriteria(t *testing.T) {
	p := newE2E(t, "merge.yaml")
	p.exec("shop", `INSERT INTO customers (id, email, full_name) VALUES
		(201, 'ann@example.com', 'Ann Ødegård'),
		(202, 'bob@example.com', 'Bob O''Brien'),
		(203, 'bob@example.com', 'Robert O''Brien'),
		(204, 'dave@example.com', 'Dave Jones')`)
	rep := p.sync()
	st := e2eFlow(t, rep, "customers")
	if st.Merged != 1 || st.Failed != 1 || st.Waiting != 1 || st.CreatedTarget+st.CreatedSource != 0 {
		t.Errorf("customers: %+v; want Ann merged, Bob failed, Chloé waiting, nothing created", *st)
	}
	if rep.Failed() != 1 {
		t.Errorf("Report.Failed() = %d, want 1", rep.Failed())
	}
	if got := p.targetOf("customers", "1"); got != "201" {
		t.Errorf("Ann is linked with %q, want 201", got)
	}
	dead := p.deadLetters("customers")
	if d, ok := dead["source:2"]; !ok {
		t.Errorf("Bob is not a dead letter: %v", dead)
	} else if !strings.Contains(d.Reason, "matches 2") || !strings.Contains(d.Reason, "202") || !strings.Contains(d.Reason, "203") {
		t.Errorf("Bob's dead letter does not say why: %q", d.Reason)
	}
	waiting := p.waiting("customers")
	if _, ok := waiting["source:3"]; !ok {
		t.Errorf("Chloé (CRM 3) does not wait: %v", waiting)
	}
	if len(waiting) != 1 {
		t.Errorf("waiting: %v, want only Chloé", waiting)
	}
	if got := p.count("shop", "customers"); got != 4 {
		t.Errorf("the shop has %d customers, want the 4 it had", got)
	}
	if got := p.count("crm", "customers"); got != 3 {
		t.Errorf("the CRM has %d customers, want the 3 it had", got)
	}

	// The partners appear: Chloé in the shop, Dave in the CRM.
	p.exec("shop", "INSERT INTO customers (id, email, full_name) VALUES (205, 'chloe@example.com', 'Chloé Martin')")
	p.exec("crm", "INSERT INTO customers (id, email, name) VALUES (4, 'dave@example.com', 'Dave Jones')")
	rep = p.sync()
	st = e2eFlow(t, rep, "customers")
	if st.Merged != 2 || st.Waiting != 0 {
		t.Errorf("second run: %+v; want Chloé and Dave merged, nobody waiting", *st)
	}
	if got := p.targetOf("customers", "3"); got != "205" {
		t.Errorf("Chloé is linked with %q, want 205", got)
	}
	if got := p.targetOf("customers", "4"); got != "204" {
		t.Errorf("Dave is linked with %q, want 204", got)
	}
	if w := p.waiting("customers"); len(w) != 0 {
		t.Errorf("still waiting after linking: %v", w)
	}
	// Bob is retried on every run and stays a dead letter until the shop's duplicate goes.
	if st.Failed != 1 {
		t.Errorf("second run: Bob failed %d times, want 1 (retried)", st.Failed)
	}
	if d := p.deadLetters("customers")["source:2"]; d.Attempts != 2 {
		t.Errorf("Bob's dead letter: %d attempts, want 2", d.Attempts)
	}
	p.exec("shop", "DELETE FROM customers WHERE id = 203")
	rep = p.sync()
	if got := p.targetOf("customers", "2"); got != "202" {
		t.Errorf("Bob is linked with %q, want 202", got)
	}
	if d := p.deadLetters("customers"); len(d) != 0 {
		t.Errorf("dead letters left after Bob linked: %v", d)
	}
	if rep.Failed() != 0 {
		t.Errorf("third run: %d failed", rep.Failed())
	}
	p.quiet("run after everything linked")
}

// An order whose line refers to a product that is not linked (filtered out by `when`) waits,
// and syncs once the product is active and linked.
func TestE2EReferencesWait(t *testing.T) {
	p := newE2E(t, "refs.yaml")
	p.exec("crm", "UPDATE products SET active = 0 WHERE id = 3") // P-03 is on order 1
	rep := p.sync()
	// The flows run in the order of their references, not in file order.
	var order []string
	for _, f := range rep.Flows {
		order = append(order, f.Flow)
	}
	if order[len(order)-1] != "orders" {
		t.Errorf("flows ran in the order %v; orders refers to the others and must run last", order)
	}
	if got := e2eFlow(t, rep, "products").CreatedTarget; got != 9 {
		t.Errorf("created %d products, want the 9 active ones", got)
	}
	st := e2eFlow(t, rep, "orders")
	if st.CreatedTarget != 1 || st.Waiting != 1 || st.Failed != 0 {
		t.Errorf("orders: %+v; want order 2 created and order 1 waiting", *st)
	}
	if w, ok := p.waiting("orders")["source:1"]; !ok {
		t.Errorf("order 1 does not wait: %v", p.waiting("orders"))
	} else if !strings.Contains(w.Reason, "products") {
		t.Errorf("order 1 waits for %q; want the reason to name flow products", w.Reason)
	}
	if got := p.count("shop", "orders"); got != 1 {
		t.Errorf("the shop has %d orders, want 1", got)
	}
	// Still waiting on the next run (retried, not lost, though its updated_at is old).
	rep = p.sync()
	if st := e2eFlow(t, rep, "orders"); st.Waiting != 1 || rep.Writes() != 0 {
		t.Errorf("second run: %+v, %d writes", *st, rep.Writes())
	}

	p.exec("crm", "UPDATE products SET active = 1, updated_at = '2024-02-01T00:00:00Z' WHERE id = 3")
	rep = p.sync()
	if got := e2eFlow(t, rep, "products").CreatedTarget; got != 1 {
		t.Errorf("created %d products after P-03 became active, want 1", got)
	}
	if st := e2eFlow(t, rep, "orders"); st.CreatedTarget != 1 || st.Waiting != 0 {
		t.Errorf("orders: %+v; want order 1 created", *st)
	}
	if w := p.waiting("orders"); len(w) != 0 {
		t.Errorf("still waiting: %v", w)
	}
	o1 := p.mustTarget("orders", "1")
	items := p.value("shop", "SELECT items FROM orders WHERE id = ?", o1).(string)
	want := fmt.Sprintf(`[{"product":%q,"qty":2},{"product":%q,"qty":1}]`, p.mustTarget("products", "1"), p.mustTarget("products", "3"))
	if e2eCanonicalJSON(t, items) != e2eCanonicalJSON(t, want) {
		t.Errorf("order 1 items = %s, want %s", items, want)
	}
	if got, want := p.text("shop", "SELECT customer FROM orders WHERE id = ?", o1), p.mustTarget("customers", "1"); got != want {
		t.Errorf("order 1: customer %s, want %s", got, want)
	}
	p.quiet("run after the order synced")
}

// With create: referenced, a product is created in the shop only when an order refers to it.
func TestE2ECreateReferenced(t *testing.T) {
	p := newE2E(t, "refs-referenced.yaml")
	rep := p.sync()
	if got := e2eFlow(t, rep, "products").CreatedTarget; got != 3 {
		t.Errorf("created %d products, want the 3 that orders refer to", got)
	}
	if got := p.strings("shop", "SELECT sku FROM products ORDER BY sku"); !reflect.DeepEqual(got, []string{"P-01", "P-03", "P-04"}) {
		t.Errorf("shop products: %v, want P-01, P-03, P-04", got)
	}
	if got := p.count("shop", "orders"); got != 2 {
		t.Errorf("the shop has %d orders, want 2", got)
	}
	p.quiet("second run")
	if got := p.count("shop", "products"); got != 3 {
		t.Errorf("after a second run the shop has %d products, want 3", got)
	}

	// A new line refers to P-06: it is created with the order's update.
	p.exec("crm", "INSERT INTO order_lines (order_id, product_id, quantity, unit_price) VALUES (2, 6, 1, 129)")
	p.exec("crm", "UPDATE orders SET updated_at = '2024-02-01T00:00:00Z' WHERE id = 2")
	rep = p.sync()
	if got := e2eFlow(t, rep, "products").CreatedTarget; got != 1 {
		t.Errorf("created %d products for the new line, want 1", got)
	}
	if got := p.strings("shop", "SELECT sku FROM products ORDER BY sku"); !reflect.DeepEqual(got, []string{"P-01", "P-03", "P-04", "P-06"}) {
		t.Errorf("shop products: %v", got)
	}
	o2 := p.mustTarget("orders", "2")
	items := p.value("shop", "SELECT items FROM orders WHERE id = ?", o2).(string)
	want := fmt.Sprintf(`[{"product":%q,"qty":1},{"product":%q,"qty":1}]`, p.mustTarget("products", "4"), p.mustTarget("products", "6"))
	if e2eCanonicalJSON(t, items) != e2eCanonicalJSON(t, want) {
		t.Errorf("order 2 items = %s, want %s", items, want)
	}
	p.quiet("run after the new line")
}

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

// delete: keep never deletes, and the link to a deleted record is dropped.
func TestE2EDeleteKeep(t *testing.T) {
	p := newE2E(t, "delete-keep.yaml")
	p.sync()
	gone10 := p.mustTarget("products", "10")
	gone2 := p.mustTarget("products", "2")
	p.exec("crm", "DELETE FROM products WHERE id = 10")
	p.exec("shop", "DELETE FROM products WHERE id = ?", gone2)
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.Deleted != 0 {
		t.Errorf("products: %+v; keep deleted records", *st)
	}
	if p.count("shop", "products", fmt.Sprintf("id = '%s'", gone10)) != 1 {
		t.Error("the shop's P-10 was deleted")
	}
	if p.count("crm", "products", "id = 2") != 1 {
		t.Error("the CRM's P-02 was deleted")
	}
	links := p.allLinks("products")
	if _, ok := links["10"]; ok {
		t.Errorf("the link of the deleted CRM product 10 is kept: %v", links)
	}
	for src, tgt := range links {
		if tgt == gone2 {
			t.Errorf("the link of CRM product %s to the deleted shop product %s is kept", src, tgt)
		}
	}
	if p.count("crm", "products") != 9 || p.count("shop", "products") < 9 {
		t.Errorf("CRM %d products, shop %d", p.count("crm", "products"), p.count("shop", "products"))
	}
}

// delete: keep drops the link of a record whose partner was deleted and keeps the survivor;
// what happens to the survivor next (created again, as create: always says for an unlinked
// record, or left alone) must not depend on whether other records happened to be edited later,
// which moves the watermark of the incremental read past it.
func TestE2EDeleteKeepSurvivorDoesNotDependOnOtherEdits(t *testing.T) {
	outcome := func(editAnother bool) (partnered bool) {
		p := newE2E(t, "delete-keep.yaml")
		p.sync()
		p.exec("shop", "DELETE FROM products WHERE id = ?", p.mustTarget("products", "5"))
		p.exec("crm", "UPDATE products SET stock = 4, updated_at = '2024-02-01T00:00:00Z' WHERE id = 5")
		if editAnother {
			p.exec("crm", "UPDATE products SET stock = 1, updated_at = '2024-02-02T00:00:00Z' WHERE id = 6")
		}
		p.sync()
		p.sync()
		p.sync()
		if p.count("crm", "products", "id = 5") != 1 {
			t.Fatal("keep deleted the CRM's P-05")
		}
		return p.targetOf("products", "5") != "" && p.count("shop", "products", "sku = 'P-05'") == 1
	}
	alone, withOther := outcome(false), outcome(true)
	if alone != withOther {
		t.Errorf("after its shop partner was deleted, P-05 has a shop partner again: %v when it was the only record edited, %v when another record was edited after it", alone, withOther)
	}
}

// delete: propagate deletes the partner of a deleted record, in both directions.
func TestE2EDeletePropagate(t *testing.T) {
	p := newE2E(t, "delete-propagate.yaml")
	p.sync()
	p9 := p.mustTarget("products", "9")
	p.exec("crm", "DELETE FROM products WHERE id = 9")
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.Deleted != 1 {
		t.Errorf("products: %+v; want the shop's P-09 deleted", *st)
	}
	if p.count("shop", "products", fmt.Sprintf("id = '%s'", p9)) != 0 {
		t.Error("the shop's P-09 is still there")
	}
	if _, ok := p.allLinks("products")["9"]; ok || p.links("products") != 9 {
		t.Errorf("links after the delete: %v", p.allLinks("products"))
	}

	p.exec("shop", "DELETE FROM products WHERE id = ?", p.mustTarget("products", "8"))
	rep = p.sync()
	if st := e2eFlow(t, rep, "products"); st.Deleted != 1 {
		t.Errorf("products: %+v; want the CRM's P-08 deleted", *st)
	}
	if p.count("crm", "products", "id = 8") != 0 {
		t.Error("the CRM's P-08 is still there")
	}
	if p.links("products") != 8 || p.count("crm", "products") != 8 || p.count("shop", "products") != 8 {
		t.Errorf("%d links, CRM %d, shop %d; want 8 each", p.links("products"), p.count("crm", "products"), p.count("shop", "products"))
	}
	p.quiet("run after the deletes")
}

// delete: unlink forgets the link and leaves the survivor alone.
func TestE2EDeleteUnlink(t *testing.T) {
	p := newE2E(t, "delete-unlink.yaml")
	p.sync()
	p7 := p.mustTarget("products", "7")
	p.exec("crm", "DELETE FROM products WHERE id = 7")
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.Deleted != 0 || st.Unlinked != 1 {
		t.Errorf("products: %+v; want one unlinked, nothing deleted", *st)
	}
	if p.count("shop", "products", fmt.Sprintf("id = '%s'", p7)) != 1 {
		t.Error("the shop's P-07 was deleted")
	}
	if _, ok := p.allLinks("products")["7"]; ok {
		t.Error("the link of the deleted CRM product 7 is kept")
	}

	p6 := p.mustTarget("products", "6")
	p.exec("shop", "DELETE FROM products WHERE id = ?", p6)
	rep = p.sync()
	if st := e2eFlow(t, rep, "products"); st.Deleted != 0 || st.Unlinked != 1 {
		t.Errorf("products: %+v; want one unlinked, nothing deleted", *st)
	}
	if p.count("crm", "products", "id = 6") != 1 {
		t.Error("the CRM's P-06 was deleted")
	}
	for src, tgt := range p.allLinks("products") {
		if tgt == p6 {
			t.Errorf("CRM product %s is still linked to the deleted shop product %s", src, tgt)
		}
	}
}

// The circuit breaker: deleting more than 10% of a flow's linked records in one run deletes
// nothing and fails the run with an error wrapping sync.ErrBreaker; the other flows go on.
func TestE2EDeleteCircuitBreaker(t *testing.T) {
	p := newE2E(t, "delete-propagate.yaml")
	p.sync()
	p.exec("crm", "DELETE FROM products WHERE id IN (1, 2)") // 2 of 10 links
	p.exec("crm", "UPDATE customers SET name = 'Chloé Martin-Dupont' WHERE id = 3")
	rep, err := p.run(e2eRunConfig{})
	if !errors.Is(err, dsync.ErrBreaker) {
		t.Fatalf("run: error %v, want one wrapping ErrBreaker", err)
	}
	if !strings.Contains(err.Error(), "products") {
		t.Errorf("the error does not name the flow: %v", err)
	}
	if rep == nil {
		t.Fatal("no report with the breaker's error")
	}
	if st := e2eFlow(t, rep, "products"); st.Deleted != 0 {
		t.Errorf("products: %+v; the breaker deletes nothing", *st)
	}
	if got := p.count("shop", "products"); got != 10 {
		t.Errorf("the shop has %d products, want all 10", got)
	}
	if got := p.links("products"); got != 10 {
		t.Errorf("%d product links, want the 10 kept for when the CRM is back", got)
	}
	// The flow after the tripped one ran.
	if st := e2eFlow(t, rep, "customers"); st.UpdatedTarget != 1 {
		t.Errorf("customers: %+v; the flow after the breaker did not run", *st)
	}
	if got := p.text("shop", "SELECT full_name FROM customers WHERE id = ?", p.mustTarget("customers", "3")); got != "Chloé Martin-Dupont" {
		t.Errorf("customer 3 in the shop: %q", got)
	}
	// The breaker holds on the next run too.
	if _, err := p.run(e2eRunConfig{}); !errors.Is(err, dsync.ErrBreaker) {
		t.Errorf("second run: %v, want the breaker again", err)
	}
	if got := p.count("shop", "products"); got != 10 {
		t.Errorf("the shop has %d products after the second run", got)
	}
}

// Bad records never stop a run: a failing expression, a failing coercion and a constraint of
// the target each send one record to the dead letters with the reason; the others sync, and
// fixing a record makes the next run succeed and clears its dead letter.
func TestE2EBadRecords(t *testing.T) {
	p := newE2E(t, "bad.yaml")
	p.exec("crm", "UPDATE products SET code = 'X2' WHERE id = 2")    // int(code) fails
	p.exec("crm", "UPDATE products SET stock = 'lots' WHERE id = 3") // not an integer
	p.exec("crm", "UPDATE products SET name = NULL WHERE id = 4")    // title is NOT NULL
	p.exec("crm", "UPDATE products SET stock = -5 WHERE id = 5")     // CHECK (quantity >= 0)
	rep := p.sync()
	st := e2eFlow(t, rep, "products")
	if st.CreatedTarget != 6 || st.Failed != 4 || rep.Failed() != 4 {
		t.Errorf("products: %+v, Report.Failed() = %d; want 6 created, 4 failed", *st, rep.Failed())
	}
	if got := p.count("shop", "products"); got != 6 {
		t.Errorf("the shop has %d products, want 6", got)
	}
	reasons := map[string][]string{
		"source:2": {"code"},
		"source:3": {"lots", "integer"},
		"source:4": {"NOT NULL"},
		"source:5": {"CHECK"},
	}
	check := func(when string) {
		t.Helper()
		dead := p.deadLetters("products")
		if len(dead) != len(reasons) {
			t.Errorf("%s: dead letters %v, want %d", when, dead, len(reasons))
		}
		for key, words := range reasons {
			d, ok := dead[key]
			if !ok {
				t.Errorf("%s: %s is not a dead letter", when, key)
				continue
			}
			for _, w := range words {
				if !strings.Contains(d.Reason, w) {
					t.Errorf("%s: dead letter %s: reason %q does not mention %q", when, key, d.Reason, w)
				}
			}
		}
	}
	check("first run")
	// Retried on every run, whatever the watermark.
	rep = p.sync()
	if rep.Failed() != 4 || rep.Writes() != 0 {
		t.Errorf("second run: %d failed, %d writes; want the 4 retried and failing again", rep.Failed(), rep.Writes())
	}
	check("second run")
	for key, d := range p.deadLetters("products") {
		if d.Attempts != 2 {
			t.Errorf("dead letter %s: %d attempts, want 2", key, d.Attempts)
		}
	}

	// Fixed, without touching updated_at.
	p.exec("crm", "UPDATE products SET code = '102' WHERE id = 2")
	p.exec("crm", "UPDATE products SET stock = 25 WHERE id = 3")
	p.exec("crm", "UPDATE products SET name = 'Milk jug' WHERE id = 4")
	p.exec("crm", "UPDATE products SET stock = 3 WHERE id = 5")
	rep = p.sync()
	if st := e2eFlow(t, rep, "products"); st.CreatedTarget != 4 || rep.Failed() != 0 {
		t.Errorf("after the fixes: %+v; want the 4 created", *st)
	}
	if d := p.deadLetters("products"); len(d) != 0 {
		t.Errorf("dead letters after the fixes: %v", d)
	}
	if got := p.text("shop", "SELECT code FROM products WHERE id = ?", p.mustTarget("products", "2")); got != "102" {
		t.Errorf("code of P-02 = %s", got)
	}
	if got := p.count("shop", "products"); got != 10 {
		t.Errorf("the shop has %d products, want 10", got)
	}
	p.quiet("run after the fixes")

	// An update the shop refuses fails the same way; the shop keeps its value until it is fixed.
	p1 := p.mustTarget("products", "1")
	p.exec("crm", "UPDATE products SET stock = -1, updated_at = '2024-02-01T00:00:00Z' WHERE id = 1")
	rep = p.sync()
	if rep.Failed() != 1 {
		t.Errorf("a refused update: %d failed, want 1", rep.Failed())
	}
	if d, ok := p.deadLetters("products")["source:1"]; !ok || !strings.Contains(d.Reason, "CHECK") {
		t.Errorf("dead letter of P-01: %+v", d)
	}
	if got := p.text("shop", "SELECT quantity FROM products WHERE id = ?", p1); got != "40" {
		t.Errorf("the shop's quantity of P-01 = %s, want the 40 it had", got)
	}
	p.exec("crm", "UPDATE products SET stock = 1 WHERE id = 1")
	rep = p.sync()
	if rep.Failed() != 0 || len(p.deadLetters("products")) != 0 {
		t.Errorf("after fixing P-01: %d failed, dead letters %v", rep.Failed(), p.deadLetters("products"))
	}
	if got := p.text("shop", "SELECT quantity FROM products WHERE id = ?", p1); got != "1" {
		t.Errorf("the shop's quantity of P-01 = %s, want 1", got)
	}
	p.quiet("run after fixing P-01")
}

// A dry run with pending creates, updates and deletes leaves every file byte-identical (the
// databases, the link state, their -wal and -shm) and lists the planned changes property by
// property; the real run then does what the dry run said.
func TestE2EDryRunWritesNothing(t *testing.T) {
	p := newE2E(t, "delete-propagate.yaml")
	p.sync()
	p10 := p.mustTarget("products", "10")
	p1 := p.mustTarget("products", "1")
	p.exec("crm", "UPDATE products SET name = 'Espresso beans, 1 kg', updated_at = '2024-02-01T00:00:00Z' WHERE id = 1")
	p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, code, updated_at) VALUES (11, 'P-11', 'Thermometer', 12.5, 8, '111', '2024-02-01T00:00:00Z')")
	p.exec("crm", "DELETE FROM products WHERE id = 10")
	p.exec("shop", "UPDATE products SET quantity = 24, modified = '2024-02-01T00:00:00Z' WHERE id = ?", p.mustTarget("products", "2"))
	p.exec("shop", "INSERT INTO customers (id, email, full_name) VALUES (9, 'eve@example.com', 'Eve')") // never created in the CRM
	p.exec("crm", "INSERT INTO customers (id, email, name) VALUES (4, 'dave@example.com', 'Dave')")
	p.closeSQL()

	before := e2eDigests(t, p.dir)
	t.Logf("files before the dry run: %v", e2eSortedNames(before))
	rep, err := p.run(e2eRunConfig{opts: dsync.Options{DryRun: true}})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	after := e2eDigests(t, p.dir)
	if !reflect.DeepEqual(before, after) {
		var diff []string
		for name, sum := range before {
			if after[name] != sum {
				diff = append(diff, name+" changed or vanished")
			}
		}
		for name := range after {
			if _, ok := before[name]; !ok {
				diff = append(diff, name+" appeared")
			}
		}
		sort.Strings(diff)
		t.Errorf("the dry run touched files: %s", strings.Join(diff, "; "))
	}

	st := e2eFlow(t, rep, "products")
	if st.CreatedTarget != 1 || st.UpdatedTarget != 1 || st.UpdatedSource != 1 || st.Deleted != 1 {
		t.Errorf("dry run, products: %+v; want 1 create, 1 update each way, 1 delete", *st)
	}
	if got := e2eFlow(t, rep, "customers").CreatedTarget; got != 1 {
		t.Errorf("dry run, customers: %d creates, want 1", got)
	}
	has := func(match func(c dsync.Change) bool, what string) {
		t.Helper()
		for _, c := range rep.Changes {
			if match(c) {
				return
			}
		}
		t.Errorf("the dry run's changes lack %s:\n%+v", what, rep.Changes)
	}
	has(func(c dsync.Change) bool {
		return c.Flow == "products" && c.Action == "update" && c.Side == "target" && c.RecordID == p1 &&
			c.Property == "title" && c.Old == `"Espresso beans"` && c.New == `"Espresso beans, 1 kg"`
	}, "the update of P-01's title")
	has(func(c dsync.Change) bool {
		return c.Flow == "products" && c.Action == "update" && c.Side == "source" && c.RecordID == "2" &&
			c.Property == "stock" && c.Old == "25" && c.New == "24"
	}, "the update of P-02's stock")
	has(func(c dsync.Change) bool {
		return c.Flow == "products" && c.Action == "create" && c.Side == "target" && c.FromID == "11" && strings.Contains(c.New, "Thermometer")
	}, "the create of P-11")
	has(func(c dsync.Change) bool {
		return c.Flow == "products" && c.Action == "delete" && c.Side == "target" && c.RecordID == p10
	}, "the delete of the shop's P-10")
	has(func(c dsync.Change) bool {
		return c.Flow == "customers" && c.Action == "create" && c.FromID == "4"
	}, "the create of customer 4")
	for _, c := range rep.Changes {
		if c.Action == "update" && c.Property == "" {
			t.Errorf("an update without its property: %+v", c)
		}
	}

	// The real run does what the dry run planned.
	real := p.sync()
	rst := e2eFlow(t, real, "products")
	if rst.CreatedTarget != st.CreatedTarget || rst.UpdatedTarget != st.UpdatedTarget || rst.UpdatedSource != st.UpdatedSource || rst.Deleted != st.Deleted {
		t.Errorf("the real run did %+v, the dry run planned %+v", *rst, *st)
	}
	if p.count("shop", "products", fmt.Sprintf("id = '%s'", p10)) != 0 || p.count("shop", "products", "sku = 'P-11'") != 1 {
		t.Error("the real run did not delete P-10 and create P-11")
	}
}

// A dry run computes the same plan as the real run (§3.8), also when a record refers to a
// record that the same run creates: an order with a line of a new product is planned as a
// create, not as a wait; a product that two orders refer to is created once.
func TestE2EDryRunPlansWhatTheRunDoes(t *testing.T) {
	type counts struct{ created, waiting, failed int }
	plan := func(rep *dsync.Report) map[string]counts {
		out := map[string]counts{}
		for _, f := range rep.Flows {
			out[f.Flow] = counts{f.CreatedTarget + f.CreatedSource, f.Waiting, f.Failed}
		}
		return out
	}
	for _, c := range []struct {
		name, file string
		edit       func(p *e2eProject)
	}{
		{"new product and an order of it", "basic.yaml", func(p *e2eProject) {
			p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'Thermometer', 12.5, 8, '2024-02-01T00:00:00Z')")
			p.exec("crm", "INSERT INTO orders (id, number, customer_id, status, updated_at) VALUES (3, 'SO-1003', 3, 'open', '2024-02-01T00:00:00Z')")
			p.exec("crm", "INSERT INTO order_lines (order_id, product_id, quantity, unit_price) VALUES (3, 11, 1, 12.5)")
		}},
		{"a product created on reference, referred to twice", "refs-referenced.yaml", func(p *e2eProject) {
			p.exec("crm", "INSERT INTO orders (id, number, customer_id, status, updated_at) VALUES (3, 'SO-1003', 3, 'open', '2024-02-01T00:00:00Z'), (4, 'SO-1004', 1, 'open', '2024-02-01T00:00:00Z')")
			p.exec("crm", "INSERT INTO order_lines (order_id, product_id, quantity, unit_price) VALUES (3, 7, 1, 7.25), (4, 7, 2, 7.25)")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newE2E(t, c.file)
			p.sync()
			c.edit(p)
			dry, err := p.run(e2eRunConfig{opts: dsync.Options{DryRun: true}})
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			real := p.sync()
			if got, want := plan(dry), plan(real); !reflect.DeepEqual(got, want) {
				t.Errorf("the dry run planned %+v (creates, waits, failures by flow); the run did %+v\ndry run changes: %+v", got, want, dry.Changes)
			}
		})
	}
}

// e2eCrashConn is a connection whose first Create of an entity fails: after the records were
// created ("killed after the create, before the link"), or before anything was created. With
// cancel, the run is interrupted (SIGINT) right after the create instead.
type e2eCrashConn struct {
	connector.Conn
	entity string
	before bool
	cancel context.CancelFunc
	done   bool
}

var errE2ECrash = errors.New("simulated crash")

func (c *e2eCrashConn) Create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	if entity != c.entity || c.done {
		return c.Conn.Create(ctx, entity, data)
	}
	c.done = true
	if c.before {
		return nil, errE2ECrash
	}
	if _, err := c.Conn.Create(ctx, entity, data); err != nil {
		return nil, err
	}
	if c.cancel != nil {
		c.cancel()
		return nil, ctx.Err()
	}
	return nil, errE2ECrash
}

// Crash recovery: a run killed between the create in the shop and the link keeps its intent;
// the next run adopts the created records, so nothing is created twice and every CRM record
// is linked once. A run killed before the create leaves an intent that the next run drops
// before creating the record.
func TestE2ECrashRecovery(t *testing.T) {
	for _, c := range []struct {
		name        string
		entity      string // the shop entity whose create crashes
		flow        string
		before      bool
		interrupt   bool
		shopRecords int // of that entity after the crashed run
		recovered   int
	}{
		{"products after the create", "Product", "products", false, false, 10, 10},
		{"products before the create", "Product", "products", true, false, 0, 0},
		{"customers after the create", "Customer", "customers", false, false, 3, 3},
		{"interrupted after the create", "Product", "products", false, true, 10, 10},
		{"orders with their items after the create", "Order", "orders", false, false, 2, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newE2E(t, "basic.yaml")
			table := map[string]string{"Product": "products", "Customer": "customers", "Order": "orders"}[c.entity]
			want := p.count("crm", table)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wrap := func(system string, conn connector.Conn) connector.Conn {
				if system == "shop" {
					cc := &e2eCrashConn{Conn: conn, entity: c.entity, before: c.before}
					if c.interrupt {
						cc.cancel = cancel
					}
					return cc
				}
				return conn
			}
			rep, err := p.run(e2eRunConfig{wrap: wrap, ctx: ctx})
			switch {
			case c.interrupt && (err != nil || rep == nil || !rep.Stopped):
				t.Fatalf("interrupted run: error %v, report %+v; want a stopped report", err, rep)
			case !c.interrupt && !errors.Is(err, errE2ECrash):
				t.Fatalf("crashed run: %v, want the crash", err)
			}
			if got := p.count("shop", table); got != c.shopRecords {
				t.Fatalf("the shop has %d %s after the crash, want %d", got, table, c.shopRecords)
			}
			if n := len(p.intents(c.flow)); n != want {
				t.Errorf("%d intents in the state after the crash, want %d", n, want)
			}
			if n := p.links(c.flow); n != 0 {
				t.Errorf("%d links after the crash, want none", n)
			}

			rep = runOnce(t, p, "")
			st := e2eFlow(t, rep, c.flow)
			if st.Recovered != c.recovered || st.CreatedTarget != want-c.recovered {
				t.Errorf("recovered %d and created %d, want %d and %d: %+v", st.Recovered, st.CreatedTarget, c.recovered, want-c.recovered, *st)
			}
			if got := p.count("shop", table); got != want {
				t.Errorf("the shop has %d %s, want %d (no duplicates)", got, table, want)
			}
			links := p.allLinks(c.flow)
			if len(links) != want {
				t.Errorf("%d CRM records linked, want %d", len(links), want)
			}
			targets := map[string]string{}
			for src, tgt := range links {
				if other, dup := targets[tgt]; dup {
					t.Errorf("shop record %s is linked to CRM %s and %s", tgt, other, src)
				}
				targets[tgt] = src
			}
			// Each link joins the right pair.
			key := map[string][2]string{"Product": {"sku", "sku"}, "Customer": {"email", "email"}, "Order": {"number", "number"}}[c.entity]
			for src, tgt := range links {
				a := p.text("crm", "SELECT "+key[0]+" FROM "+table+" WHERE id = ?", src)
				if b := p.text("shop", "SELECT "+key[1]+" FROM "+table+" WHERE id = ?", tgt); a != b {
					t.Errorf("CRM %s (%s) is linked to shop %s (%s)", src, a, tgt, b)
				}
			}
			if n := len(p.intents(c.flow)); n != 0 {
				t.Errorf("%d intents left after the recovery", n)
			}
			if got := p.count("shop", "orders"); got != 2 {
				t.Errorf("the shop has %d orders after the recovery, want 2", got)
			}
			p.quiet("run after the recovery")
		})
	}
}

// Crash recovery with a system that reformats what it stores and a flow without merge
// criteria: the created records are recognised by their content although the shop upper-cased
// the labels and wrote the amounts with two decimals; no duplicate is created (§3.7).
func TestE2ECrashRecoveryWithReformattingSystem(t *testing.T) {
	p := newE2E(t, "echo.yaml")
	wrap := func(system string, conn connector.Conn) connector.Conn {
		if system == "shop" {
			return &e2eCrashConn{Conn: conn, entity: "Product"}
		}
		return conn
	}
	if _, err := p.run(e2eRunConfig{wrap: wrap}); !errors.Is(err, errE2ECrash) {
		t.Fatalf("crashed run: %v, want the crash", err)
	}
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.Recovered != 10 || st.CreatedTarget != 0 {
		t.Errorf("products: %+v; want the 10 created records adopted, none created again", *st)
	}
	if got := p.count("shop", "products"); got != 10 {
		t.Errorf("the shop has %d products, want 10 (no duplicates)", got)
	}
	if got := p.links("products"); got != 10 {
		t.Errorf("%d links, want 10", got)
	}
}

// Options.BatchSize is "the number of records read, merged and written together": a flow of
// 10 products read in batches of 3 is processed in at least 4 batches per side.
func TestE2EBatchSize(t *testing.T) {
	p := newE2E(t, "conflict-source.yaml")
	batches := 0
	rep, err := p.run(e2eRunConfig{opts: dsync.Options{BatchSize: 3, Progress: func(string, *dsync.FlowStats) { batches++ }}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e2eFlow(t, rep, "products").CreatedTarget; got != 10 {
		t.Errorf("created %d, want 10", got)
	}
	if batches < 4 {
		t.Errorf("10 products with BatchSize 3 were processed in %d batch(es), want at least 4", batches)
	}
}

// Echo-free with a system that reformats what it stores (upper-cased labels, amounts with two
// decimals): after a write, the next run writes nothing, in both directions.
func TestE2EEchoFreeWithReformattingSystem(t *testing.T) {
	p := newE2E(t, "echo.yaml")
	p.sync()
	p1, p3, p6 := p.mustTarget("products", "1"), p.mustTarget("products", "3"), p.mustTarget("products", "6")
	if got := p.text("shop", "SELECT label || ' ' || amount FROM products WHERE id = ?", p1); got != "ESPRESSO BEANS 18.00" {
		t.Errorf("the shop stored %q; the trigger should have reformatted", got)
	}
	if got := p.text("shop", "SELECT amount FROM products WHERE id = ?", p3); got != "0.99" {
		t.Errorf("amount of P-03: %q", got)
	}
	p.quiet("run after the first sync")

	p.exec("crm", "UPDATE products SET name = 'Espresso roast', price = 19.5, updated_at = '2024-02-01T00:00:00Z' WHERE id = 1")
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.UpdatedTarget != 1 || st.UpdatedSource != 0 {
		t.Errorf("products: %+v; want one update of the shop", *st)
	}
	if got := p.text("shop", "SELECT label || ' ' || amount FROM products WHERE id = ?", p1); got != "ESPRESSO ROAST 19.50" {
		t.Errorf("shop: %q", got)
	}
	p.quiet("run after an edit in the CRM")

	p.exec("shop", "UPDATE products SET label = 'grinder xl', amount = '130', modified = '2024-02-01T00:00:00Z' WHERE id = ?", p6)
	rep = p.sync()
	if st := e2eFlow(t, rep, "products"); st.UpdatedSource != 1 {
		t.Errorf("products: %+v; want one update of the CRM", *st)
	}
	if got := p.text("crm", "SELECT name || ' ' || price FROM products WHERE id = 6"); got != "GRINDER XL 130" {
		t.Errorf("CRM: %q", got)
	}
	p.quiet("run after an edit in the shop")
	p.quiet("another run")
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

// e2eNoDeleteConn is a connection that says it cannot delete.
type e2eNoDeleteConn struct{ connector.Conn }

func (e2eNoDeleteConn) Capabilities() connector.Capabilities {
	return connector.Capabilities{Delete: false, ReturnsStored: false}
}

// delete: propagate against a system that cannot delete is refused before anything is read.
func TestE2EPropagateNeedsDelete(t *testing.T) {
	p := newE2E(t, "delete-propagate.yaml")
	wrap := func(system string, c connector.Conn) connector.Conn {
		if system == "shop" {
			return e2eNoDeleteConn{c}
		}
		return c
	}
	_, err := p.run(e2eRunConfig{wrap: wrap})
	if err == nil || !strings.Contains(err.Error(), "delete: propagate, but Shop cannot delete records; use delete: keep or unlink") {
		t.Fatalf("err = %v", err)
	}
	if got := p.count("shop", "products"); got != 0 {
		t.Errorf("the shop has %d products; nothing may run", got)
	}
}

// e2eKeyedConn is a system that honours idempotency keys for one entity (connector.
// KeyedCreator): a create with a key it has seen returns the record made the first time. The
// first lose calls of CreateKeyed create the records and then lose the response (the network
// dropped it), as the engine would see a crash right after the create.
type e2eKeyedConn struct {
	connector.Conn
	t      *testing.T
	entity string
	lose   int
	byKey  map[string]string // key → id of the record created with it
	calls  [][]string        // the keys of every call of CreateKeyed
}

// wrapShop is an e2eRunConfig.wrap that puts c in front of the shop's connection.
func (c *e2eKeyedConn) wrapShop(system string, conn connector.Conn) connector.Conn {
	if system != "shop" {
		return conn
	}
	c.Conn = conn
	return c
}

var errE2ELostResponse = errors.New("the response was lost")

func (c *e2eKeyedConn) Idempotent(entity string) bool { return entity == c.entity }

// Capabilities are the connection's, with keyed creates made by this system.
func (c *e2eKeyedConn) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	caps.KeyedCreator = c
	return caps
}

func (c *e2eKeyedConn) CreateKeyed(ctx context.Context, entity string, data []map[string]any, keys []string) ([]connector.Result, error) {
	if len(keys) != len(data) {
		c.t.Fatalf("CreateKeyed with %d records and %d keys", len(data), len(keys))
	}
	c.calls = append(c.calls, keys)
	results := make([]connector.Result, len(data))
	for i, key := range keys {
		if key == "" {
			c.t.Errorf("CreateKeyed: record %d has no key", i)
		}
		if id, seen := c.byKey[key]; seen {
			got, err := c.Conn.Get(ctx, entity, []string{id})
			if err != nil {
				return nil, err
			}
			results[i].Record = got[id]
			continue
		}
		res, err := c.Conn.Create(ctx, entity, data[i:i+1])
		if err != nil {
			return nil, err
		}
		if res[0].Err == nil {
			c.byKey[key] = res[0].Record.ID
		}
		results[i] = res[0]
	}
	if c.lose > 0 {
		c.lose--
		return nil, errE2ELostResponse
	}
	return results, nil
}

func (c *e2eKeyedConn) Create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	if entity == c.entity {
		c.t.Errorf("Create of %s without keys, although the system honours them", entity)
	}
	return c.Conn.Create(ctx, entity, data)
}

// Idempotency keys: the shop honours keys for products and loses the response of the first
// create. The next run repeats the create with the same keys and adopts the records the shop
// made the first time, although the user has edited every one of them in the meantime and the
// flow has no merge criteria (a search by content would find none of them and create them
// again); the user's edits survive and flow back.
func TestE2EIdempotencyKeys(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	shop := &e2eKeyedConn{t: t, entity: "Product", lose: 1, byKey: map[string]string{}}
	wrap := shop.wrapShop
	if _, err := p.run(e2eRunConfig{wrap: wrap}); !errors.Is(err, errE2ELostResponse) {
		t.Fatalf("first run: %v, want the lost response", err)
	}
	if got := p.count("shop", "products"); got != 10 {
		t.Fatalf("the shop has %d products after the lost response, want 10", got)
	}
	if n := len(p.intents("products")); n != 10 {
		t.Fatalf("%d intents after the lost response, want 10", n)
	}
	p.exec("shop", "UPDATE products SET title = title || ' (shop)', price = price + 1, modified = '2024-03-01T00:00:00Z'")

	rep, err := p.run(e2eRunConfig{wrap: wrap})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	st := e2eFlow(t, rep, "products")
	if st.Recovered != 10 || st.CreatedTarget != 0 || st.Failed != 0 {
		t.Errorf("products: %+v; want the 10 records adopted, none created", *st)
	}
	if got := p.count("shop", "products"); got != 10 {
		t.Errorf("the shop has %d products, want 10 (no duplicates)", got)
	}
	if len(shop.calls) != 2 || !reflect.DeepEqual(shop.calls[0], shop.calls[1]) {
		t.Errorf("CreateKeyed calls %v; want the second to repeat the keys of the first", shop.calls)
	}
	if len(shop.calls) > 0 {
		distinct := map[string]bool{}
		for _, k := range shop.calls[0] {
			distinct[k] = true
		}
		if len(distinct) != 10 {
			t.Errorf("%d distinct keys for 10 records", len(distinct))
		}
	}
	if got := len(p.allLinks("products")); got != 10 {
		t.Errorf("%d products linked, want 10", got)
	}
	if got := p.text("crm", "SELECT name FROM products WHERE id = 1"); got != "Espresso beans (shop)" {
		t.Errorf("CRM product 1 name = %q; want the shop's edit of the adopted record", got)
	}
	if got := p.text("crm", "SELECT price FROM products WHERE id = 3"); got != "1.99" {
		t.Errorf("CRM product 3 price = %s; want the shop's 1.99", got)
	}
	if n := len(p.intents("products")); n != 0 {
		t.Errorf("%d intents left", n)
	}
	if _, err := p.run(e2eRunConfig{wrap: wrap}); err != nil {
		t.Fatal(err)
	}
	p.quiet("run after the recovery")
}

// e2eScanCounter counts the scans of each entity; e2eFinder is the same connection with the
// sqlite connector's Finder passed through.
type e2eScanCounter struct {
	connector.Conn
	scans map[string]int
	finds *int
}

func (c *e2eScanCounter) Scan(ctx context.Context, entity, since string, fn func([]connector.Record) error) error {
	c.scans[entity]++
	return c.Conn.Scan(ctx, entity, since, fn)
}

// Capabilities are the connection's without its Finder: the engine indexes the records.
func (c *e2eScanCounter) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	caps.Finder = nil
	return caps
}

type e2eFinder struct{ *e2eScanCounter }

func (c e2eFinder) Find(ctx context.Context, entity string, paths []string, keys [][]string) ([]connector.Record, error) {
	*c.finds++
	return c.Conn.Capabilities().Finder.Find(ctx, entity, paths, keys)
}

// Capabilities are the connection's, with its finds counted.
func (c e2eFinder) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	caps.Finder = c
	return caps
}

// Linking by merge criteria through connector.Finder looks up the keys of the records being
// linked instead of reading every unlinked record of both sides into an index: each run scans
// each side once (its pass), however many unlinked records the shop has, and links exactly
// as the index does: a unique match on both sides links, a record several records match is a
// dead letter whichever side the duplicates are on, and a record without a match waits.
func TestE2EMergeFindsByKeys(t *testing.T) {
	type outcome struct {
		links map[string]string
		dead  []string
	}
	results := map[bool]outcome{}
	for _, finder := range []bool{true, false} {
		t.Run(fmt.Sprintf("finder=%v", finder), func(t *testing.T) {
			p := newE2E(t, "merge.yaml")
			p.exec("crm", `INSERT INTO customers (id, email, name) VALUES (4, 'eve@example.com', 'Eve'), (5, 'eve@example.com', 'Eve Two')`)
			p.exec("shop", `INSERT INTO customers (id, email, full_name) VALUES
				(201, 'ann@example.com', 'Ann Ødegård'),
				(202, 'bob@example.com', 'Bob O''Brien'),
				(203, 'bob@example.com', 'Robert O''Brien'),
				(206, 'eve@example.com', 'Eve')`)
			for i := 0; i < 300; i++ {
				p.exec("shop", "INSERT INTO customers (id, email, full_name) VALUES (?, ?, 'Nobody')", 1000+i, fmt.Sprintf("nobody%d@example.com", i))
			}
			finds := 0
			counters := map[string]*e2eScanCounter{}
			wrap := func(system string, c connector.Conn) connector.Conn {
				sc := &e2eScanCounter{Conn: c, scans: map[string]int{}, finds: &finds}
				counters[system] = sc
				if finder {
					return e2eFinder{sc}
				}
				return sc
			}
			for run := 1; run <= 2; run++ {
				rep, err := p.run(e2eRunConfig{wrap: wrap, opts: dsync.Options{BatchSize: 50}})
				if err != nil {
					t.Fatal(err)
				}
				st := e2eFlow(t, rep, "customers")
				if st.Merged != map[int]int{1: 1, 2: 0}[run] {
					t.Errorf("run %d: %+v; want Ann merged in the first run only", run, *st)
				}
				crmScans, shopScans := counters["crm"].scans["Customer"], counters["shop"].scans["Customer"]
				if finder && (crmScans != 1 || shopScans != 1) {
					t.Errorf("run %d: scanned the CRM's customers %d times and the shop's %d times; want once each (the passes), the merge looked up by key", run, crmScans, shopScans)
				}
				if !finder && shopScans < 2 {
					t.Errorf("run %d without a Finder: the shop was scanned %d times; the index reads it too", run, shopScans)
				}
			}
			if finder && finds == 0 {
				t.Error("no Find was made")
			}
			var dead []string
			for k := range p.deadLetters("customers") {
				dead = append(dead, k)
			}
			sort.Strings(dead)
			results[finder] = outcome{p.allLinks("customers"), dead}
		})
	}
	want := outcome{map[string]string{"1": "201"}, []string{"source:2", "target:206"}}
	for finder, got := range results {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("finder=%v: links %v, dead letters %v; want %v, %v", finder, got.links, got.dead, want.links, want.dead)
		}
	}
}

// e2eCountCalls counts the calls of a connection's Count and the records it is asked for by
// id; it counts deletions as the connection does (Capabilities.DeleteCounter, forwarded).
type e2eCountCalls struct {
	connector.Conn
	calls *e2eCalls
}

// e2eCalls are the calls e2eCountCalls counted.
type e2eCalls struct{ counts, gets int }

func (c e2eCountCalls) Get(ctx context.Context, entity string, ids []string) (map[string]connector.Record, error) {
	c.calls.gets += len(ids)
	return c.Conn.Get(ctx, entity, ids)
}

func (c e2eCountCalls) Count(ctx context.Context, entity string) (int, error) {
	c.calls.counts++
	return c.Conn.Capabilities().Counter.Count(ctx, entity)
}

// Capabilities are the connection's, with its counts counted.
func (c e2eCountCalls) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	caps.Counter = c
	return caps
}

// e2eCountedRun returns a function that runs p's flows with the check of every link on every
// `every`th run, and counts the run's calls into calls.
func e2eCountedRun(t *testing.T, p *e2eProject, every int, calls *e2eCalls) func(what string) *dsync.FlowStats {
	wrap := func(system string, c connector.Conn) connector.Conn { return e2eCountCalls{c, calls} }
	return func(what string) *dsync.FlowStats {
		t.Helper()
		*calls = e2eCalls{}
		rep, err := p.run(e2eRunConfig{wrap: wrap, opts: dsync.Options{DeleteCheckEvery: every}})
		if err != nil || rep.Failed() != 0 {
			t.Fatalf("%s: %v, %d failed", what, err, rep.Failed())
		}
		return e2eFlow(t, rep, "products")
	}
}

// A run where nothing changed reads what changed, not every link's records: the counts of
// records show that none was deleted. A deletion still shows: in the CRM (read by watermark)
// even when a new product hides it from the count, in the shop (never read by this one-way
// flow) at once when the count drops, and within Options.DeleteCheckEvery runs when a new
// shop record hides it.
func TestE2EDeleteCheck(t *testing.T) {
	p := newE2E(t, "one-way.yaml")
	var calls e2eCalls
	run := e2eCountedRun(t, p, 4, &calls)
	run("first run")
	run("second run")
	for i := 0; i < 2; i++ {
		st := run("run without changes")
		if st.Writes() != 0 {
			t.Fatalf("a run without changes wrote: %+v", *st)
		}
		// The CRM's newest product is read again (the watermark includes its stamp), and its
		// shop partner with it; nothing else.
		if calls.gets > st.ReadSource {
			t.Errorf("a run without changes read %d records by id, having read %d: it read the partners of the links", calls.gets, st.ReadSource)
		}
	}

	// The CRM deletes product 4 and adds product 11: the count is as before.
	p.exec("crm", "DELETE FROM products WHERE id = 4")
	p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'Sieve', 5, 1, '2024-03-01T00:00:00Z')")
	run("run after a delete and a create in the CRM")
	links := p.allLinks("products")
	if _, ok := links["4"]; ok || links["11"] == "" || len(links) != 10 {
		t.Errorf("links after the CRM deleted 4 and added 11: %v", links)
	}

	// The shop deletes the copy of product 2: the shop's count drops, the link goes, and keep
	// creates the copy again.
	p.exec("shop", "DELETE FROM products WHERE sku = 'P-02'")
	run("run after a delete in the shop")
	if got := p.count("shop", "products", "sku = 'P-02'"); got != 1 {
		t.Errorf("the shop has %d products P-02 after its copy was deleted, want it created again", got)
	}

	// The shop deletes the copy of product 3 and calls.gets a product of its own: the count is as
	// before and the shop is not read, so only the periodic check finds the deletion.
	run("quiet run")
	p.exec("shop", "DELETE FROM products WHERE sku = 'P-03'")
	p.exec("shop", "INSERT INTO products (id, sku, title) VALUES ('own', 'X-1', 'The shop''s own')")
	for i := 1; i <= 4 && p.count("shop", "products", "sku = 'P-03'") == 0; i++ {
		run(fmt.Sprintf("run %d after a hidden delete in the shop", i))
	}
	if got := p.count("shop", "products", "sku = 'P-03'"); got != 1 {
		t.Errorf("4 runs (DeleteCheckEvery) after the shop deleted P-03 it has %d, want it created again", got)
	}
	if got := p.links("products"); got != 10 {
		t.Errorf("%d links, want 10", got)
	}
}

// With systems that count their deletions (sqlite's track_deletes), a run where nothing
// changed counts no records, and a deletion shows in the next run also where the counts of
// records hide it: a record created with an old stamp (never read) in the CRM, a record
// added in the shop (never read by this one-way flow).
func TestE2EDeleteCheckWithDeletionCounts(t *testing.T) {
	p := newE2E(t, "one-way.yaml")
	for _, sys := range p.project.Systems {
		sys.Config.Settings["track_deletes"] = config.Setting{Str: config.Str{Value: "true"}}
	}
	var calls e2eCalls
	run := e2eCountedRun(t, p, 20, &calls)
	run("first run")
	run("second run")
	for i := 0; i < 2; i++ {
		if st := run("run without changes"); st.Writes() != 0 || calls.counts != 0 || calls.gets > st.ReadSource {
			t.Errorf("a run without changes wrote %d records, counted records %d times and read %d by id having read %d; want 0, 0 and no partners of links",
				st.Writes(), calls.counts, calls.gets, st.ReadSource)
		}
	}
	if got := p.value("shop", "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = 'dataflow_count_deleted_products'"); got != int64(1) {
		t.Errorf("the shop has %v triggers that count deletions of products, want 1", got)
	}

	p.exec("crm", "DELETE FROM products WHERE id = 4")
	p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (12, 'P-12', 'Old', 5, 1, '2000-01-01T00:00:00Z')")
	run("run after a delete and a create with an old stamp in the CRM")
	if links := p.allLinks("products"); links["4"] != "" || len(links) != 9 {
		t.Errorf("links after the CRM deleted 4 and added 12 with an old stamp: %v, want 9 without 4", links)
	}

	p.exec("shop", "DELETE FROM products WHERE sku = 'P-03'")
	p.exec("shop", "INSERT INTO products (id, sku, title) VALUES ('own', 'X-1', 'The shop''s own')")
	run("run after a delete and a create in the shop")
	if got := p.count("shop", "products", "sku = 'P-03'"); got != 1 {
		t.Errorf("the run after the shop deleted P-03 and added its own product: %d products P-03, want it created again", got)
	}
	if st := run("quiet run"); st.Writes() != 0 || calls.counts != 0 || calls.gets > st.ReadSource {
		t.Errorf("the run after: %d writes, %d counts, %d records read by id having read %d; want 0, 0 and no partners of links", st.Writes(), calls.counts, calls.gets, st.ReadSource)
	}
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

// A value computed for one side from a property the engine writes to the other follows that
// write in the same run: the shop edits a product's quantity, the engine writes it to the
// CRM's stock, and the shop's label, computed from the stock, is written too; a second run
// writes nothing.
func TestE2EDerivedValuesFollowWrites(t *testing.T) {
	p := newE2E(t, "derived.yaml")
	p.sync()
	p2 := p.mustTarget("products", "2")
	if got := p.text("shop", "SELECT label FROM products WHERE id = ?", p2); got == "7 IN STOCK" {
		t.Fatalf("the fixture's stock is already 7")
	}
	p.exec("shop", "UPDATE products SET quantity = 7, modified = '2024-02-01T00:00:00Z' WHERE id = ?", p2)
	rep := p.sync()
	st := e2eFlow(t, rep, "products")
	if got := p.text("crm", "SELECT stock FROM products WHERE id = 2"); got != "7" {
		t.Errorf("the shop's quantity did not reach the CRM: stock = %s", got)
	}
	if got := p.text("shop", "SELECT label FROM products WHERE id = ?", p2); got != "7 IN STOCK" {
		t.Errorf("the label computed from the new stock did not follow: label = %q", got)
	}
	if st.UpdatedSource != 1 || st.UpdatedTarget != 1 {
		t.Errorf("products: %+v; want the CRM and then the shop updated once each", *st)
	}
	p.quiet("run after the derived write")
}

// A create that the system refuses when recovery repeats it (its first answer was lost) is a
// failure of that run once, not once in recovery and again when the run retries it.
func TestE2ERefusedRecoveredCreateCountsOnce(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.exec("crm", "UPDATE products SET name = NULL WHERE id = 4") // the shop's title is NOT NULL
	shop := &e2eKeyedConn{t: t, entity: "Product", lose: 1, byKey: map[string]string{}}
	wrap := shop.wrapShop
	if _, err := p.run(e2eRunConfig{wrap: wrap}); !errors.Is(err, errE2ELostResponse) {
		t.Fatalf("first run: %v, want the lost response", err)
	}
	rep, err := p.run(e2eRunConfig{wrap: wrap})
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	st := e2eFlow(t, rep, "products")
	if st.Recovered != 9 || st.Failed != 1 || rep.Failed() != 1 {
		t.Errorf("products: %+v; want 9 recovered and the refused record failed once", *st)
	}
	if d := p.deadLetters("products")["source:4"]; d.Reason == "" || !strings.Contains(d.Reason, "NOT NULL") {
		t.Errorf("product 4's dead letter: %+v", d)
	}
}
