package sync_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
)

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
