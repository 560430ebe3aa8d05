package sync_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

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
