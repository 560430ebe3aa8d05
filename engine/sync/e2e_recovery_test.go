package sync_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
)

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
