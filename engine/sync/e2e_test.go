package sync_test

// End-to-end tests of the sync semantics (docs/semantics.md §3) over real SQLite files: projects of
// testdata/sync (a CRM as the source, a shop as the target) loaded through engine.New + Load,
// connections opened with Driver.Open and the link state with state.Open, runs of
// sync.Runner in-process. Assertions are SQL queries on both databases, the run's report and
// the link state.

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

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
