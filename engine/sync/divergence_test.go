package sync_test

// End-to-end tests of the divergence cases (issue 14): records that never sync, or sync
// wrongly, while every run reports success. Each project is written inline: two SQLite
// files a and b with their tables, one dataflow between them.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
	_ "github.com/mattn/go-sqlite3"
)

// newDivergence writes systems a and b (SQLite files created from the given SQL) and a
// dataflow with the given flows (YAML, indented as a list under flows:), and loads them.
func newDivergence(t *testing.T, aSQL, bSQL, flows string) *e2eProject {
	t.Helper()
	dir := t.TempDir()
	for name, script := range map[string]string{"a": aSQL, "b": bSQL} {
		db, err := sql.Open("sqlite3", filepath.Join(dir, name+".db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(script); err != nil {
			t.Fatalf("%s.db: %v", name, err)
		}
		db.Close()
	}
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	entities := func(sqlText string) string {
		var b strings.Builder
		for _, stmt := range strings.Split(sqlText, ";") {
			stmt = strings.TrimSpace(stmt)
			if !strings.HasPrefix(strings.ToUpper(stmt), "CREATE TABLE") {
				continue
			}
			table := strings.Fields(stmt)[2]
			table = table[:strings.IndexAny(table+"(", "(")]
			b.WriteString("  " + table + ":\n    table: " + table + "\n    id: id\n")
			if strings.Contains(stmt, "updated") {
				b.WriteString("    updated: updated\n")
			}
		}
		return b.String()
	}
	if err := os.Mkdir(filepath.Join(dir, "systems"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("systems/a.yaml", "system: a\nname: A\nconnector: sqlite\npath: ${A_DB}\nentities:\n"+entities(aSQL))
	write("systems/b.yaml", "system: b\nname: B\nconnector: sqlite\npath: ${B_DB}\nentities:\n"+entities(bSQL))
	df := write("flow.yaml", "dataflow: div\nsource: a\ntarget: b\nflows:\n"+flows)
	env := map[string]string{"A_DB": filepath.Join(dir, "a.db"), "B_DB": filepath.Join(dir, "b.db")}
	return e2eLoad(t, dir, env, df)
}

// A record created in the source gets, in the same run, the properties that flow back to its
// origin from what the source assigned (its id), and the base records them: b's row 7 holds
// the id of the row a created from it.
func TestDivergenceAssignedValuesFlowBackAfterCreate(t *testing.T) {
	p := newDivergence(t,
		"CREATE TABLE people(id integer primary key, email text); INSERT INTO people VALUES (1, 'x@e');",
		"CREATE TABLE people(id integer primary key, email text, a_id integer); INSERT INTO people VALUES (7, 'y@e', NULL);",
		`  - id: people
    source: people
    target: people
    create: {target: always, source: always}
    merge: [[{source: email, target: email}]]
    properties:
      - {source: email, target: email}
      - {source: id, target: a_id, sync: to-target}
`)
	rep := p.sync()
	st := e2eFlow(t, rep, "people")
	if st.CreatedSource != 1 || st.CreatedTarget != 1 || st.UpdatedTarget != 1 || rep.Failed() != 0 {
		t.Errorf("first run: %s; want 1 create each way and the id written back to the target", e2eStats(rep))
	}
	p.quiet("second run")
	if got, want := p.rows("b", "SELECT id, email, a_id FROM people ORDER BY email"), []string{
		"8 | x@e | 1", "7 | y@e | 2",
	}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("b holds %v, want %v", got, want)
	}
	if got := p.rows("a", "SELECT id, email FROM people ORDER BY id"); strings.Join(got, " ") != "1 | x@e 2 | y@e" {
		t.Errorf("a holds %v", got)
	}
}

// A target edit of a to-target property does not stay: the source's value is written back in
// the run that reads the edit, which counts it as an update (not as unchanged), and the base
// never holds the edit.
func TestDivergenceOneWayPropertyStaysOneWay(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	p4 := p.mustTarget("products", "4")
	p.exec("shop", "UPDATE products SET summary = 'HACKED', modified = '2024-02-01T00:00:00Z' WHERE id = ?", p4)
	rep := p.sync()
	st := e2eFlow(t, rep, "products")
	if st.UpdatedTarget != 1 || st.UpdatedSource != 0 {
		t.Errorf("the run after the edit: %+v; want 1 update of the target", *st)
	}
	if got := p.text("shop", "SELECT summary FROM products WHERE id = ?", p4); got != "350 ml, steel" {
		t.Errorf("the target's edit of a to-target property stayed: summary = %q", got)
	}
	if got := p.text("crm", "SELECT description FROM products WHERE id = 4"); got != "350 ml, steel" {
		t.Errorf("a to-target property flowed back: description = %q", got)
	}
	p.quiet("the run after")
}

// refusingConn refuses, with a connector.RecordError naming their positions, the keys of a
// Find and the ids of a Get that refuse says it refuses; everything else passes through to
// the connection (a Finder).
type refusingConn struct {
	connector.Conn
	refuse func(value string) bool
}

func (c refusingConn) Find(ctx context.Context, entity string, paths []string, keys [][]string) ([]connector.Record, error) {
	var bad []int
	for i, k := range keys {
		if c.refuse(strings.Join(k, ",")) {
			bad = append(bad, i)
		}
	}
	if bad != nil {
		return nil, &connector.RecordError{Index: bad, Err: errors.New("400 Bad Request: invalid filter")}
	}
	return c.Conn.Capabilities().Finder.Find(ctx, entity, paths, keys)
}

// Capabilities are the connection's, with its finds going through the refusals.
func (c refusingConn) Capabilities() connector.Capabilities {
	caps := c.Conn.Capabilities()
	caps.Finder = c
	return caps
}

func (c refusingConn) Get(ctx context.Context, entity string, ids []string) (map[string]connector.Record, error) {
	var bad []int
	for i, id := range ids {
		if c.refuse(id) {
			bad = append(bad, i)
		}
	}
	if bad != nil {
		return nil, &connector.RecordError{Index: bad, Err: errors.New("400 Bad Request: invalid id")}
	}
	return c.Conn.Get(ctx, entity, ids)
}

// A find that the shop refuses for one record's merge key puts that record in the dead
// letters with the shop's error and the run goes on: the other customers are linked; once
// the shop accepts the search, the record is linked and its dead letter cleared. A read of a
// linked partner refused the same way is the dead letter of the record whose partner it is.
func TestDivergenceRecordErrorStaysWithItsRecord(t *testing.T) {
	p := newE2E(t, "merge.yaml")
	p.exec("crm", `INSERT INTO customers (id, email, name) VALUES (4, 'd"q@example.com', 'Dee')`)
	p.exec("shop", `INSERT INTO customers (id, email, full_name) VALUES
		(201, 'ann@example.com', 'Ann'), (202, 'bob@example.com', 'Bob'),
		(203, 'chloe@example.com', 'Chloé'), (204, 'd"q@example.com', 'Dee')`)
	refuse := func(v string) bool { return strings.Contains(v, `"`) }
	wrap := func(system string, c connector.Conn) connector.Conn {
		if system == "shop" {
			return refusingConn{c, refuse}
		}
		return c
	}
	rep, err := p.run(e2eRunConfig{wrap: wrap})
	if err != nil {
		t.Fatalf("a find refused for one record failed the run: %v", err)
	}
	if st := e2eFlow(t, rep, "customers"); st.Merged != 3 || st.Failed != 2 {
		t.Errorf("first run: %+v; want 3 merged, 2 failed (customer 4 and shop customer 204)", *st)
	}
	dead := p.deadLetters("customers")
	want := `finding Customer by [email] = ["d\"q@example.com"]: 400 Bad Request: invalid filter`
	for _, rec := range []string{"source:4", "target:204"} {
		if d, ok := dead[rec]; !ok || d.Reason != want || len(dead) != 2 {
			t.Errorf("dead letters = %v; want %s with reason %q", dead, rec, want)
		}
	}

	// The shop refuses to read record 202, the partner of customer 2.
	p.exec("crm", "UPDATE customers SET name = 'Ann Updated' WHERE id = 1")
	refuse = func(v string) bool { return strings.Contains(v, `"`) || v == "202" }
	rep, err = p.run(e2eRunConfig{wrap: wrap})
	if err != nil {
		t.Fatalf("a read refused for one record failed the run: %v", err)
	}
	if st := e2eFlow(t, rep, "customers"); st.UpdatedTarget != 1 || st.Failed != 3 {
		t.Errorf("second run: %+v; want 1 update, 3 failed (customer 2 besides the two before)", *st)
	}
	if got := p.text("shop", "SELECT full_name FROM customers WHERE id = 201"); got != "Ann Updated" {
		t.Errorf("the other records did not sync: full_name = %q", got)
	}
	want = "reading Customer 202: 400 Bad Request: invalid id"
	if d := p.deadLetters("customers")["source:2"]; d.Reason != want {
		t.Errorf("dead letter of customer 2 = %q, want %q", d.Reason, want)
	}

	// Without the refusals, both are linked and their dead letters go.
	rep = p.sync()
	if st := e2eFlow(t, rep, "customers"); st.Merged != 1 || st.Failed != 0 {
		t.Errorf("third run: %+v; want 1 merged, none failed", *st)
	}
	if dead := p.deadLetters("customers"); len(dead) != 0 {
		t.Errorf("dead letters left: %v", dead)
	}
	if got := p.links("customers"); got != 4 {
		t.Errorf("%d links, want 4", got)
	}
}

// emptyConn answers every list and every read of products with no records, as an API whose
// token expired answers 200 {"items": []}.
type emptyConn struct{ connector.Conn }

func (c emptyConn) Scan(ctx context.Context, entity, since string, fn func([]connector.Record) error) error {
	if entity != "Product" {
		return c.Conn.Scan(ctx, entity, since, fn)
	}
	return nil
}

func (c emptyConn) Get(ctx context.Context, entity string, ids []string) (map[string]connector.Record, error) {
	if entity != "Product" {
		return c.Conn.Get(ctx, entity, ids)
	}
	return map[string]connector.Record{}, nil
}

// writeState opens the link state for writing and runs fn in a transaction, as the approve
// and reject commands do.
func (p *e2eProject) writeState(fn func(tx state.Tx) error) {
	p.t.Helper()
	st, err := state.Open(context.Background(), p.state, state.ReadWrite)
	if err != nil {
		p.t.Fatal(err)
	}
	defer st.Close()
	tx, err := st.Begin(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		p.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *e2eProject) pending(flow string) []state.Pending {
	p.t.Helper()
	var out []state.Pending
	p.store(func(st state.Store) (err error) {
		out, err = st.Pending(context.Background(), flow)
		return err
	})
	return out
}

// A side that answers with no records at all is a fault, whatever the delete policy: the run
// stops the flow with the breaker's error, unlinks, deletes and creates nothing, and records
// the change as pending; the other flows go on. Rejected, the change is dropped and the links
// stay: the next run with the shop back writes nothing.
func TestDivergenceEmptiedSideIsAFault(t *testing.T) {
	for _, policy := range []string{"keep", "unlink", "propagate"} {
		t.Run(policy, func(t *testing.T) {
			p := newE2E(t, "delete-"+policy+".yaml")
			p.sync()
			p.exec("crm", "UPDATE customers SET name = 'Chloé Martin-Dupont' WHERE id = 3")
			rep, err := p.run(e2eRunConfig{wrap: func(system string, c connector.Conn) connector.Conn {
				if system == "shop" {
					return emptyConn{c}
				}
				return c
			}})
			want := "flow products: circuit breaker: 10 of 10 linked records of Shop (Product) are missing, more than the limit of 1 (10%); " +
				"nothing was unlinked, deleted or created. If they were removed on purpose, approve the change (dataflow approve 1) and run again; " +
				"if not (an expired token, a wrong filter, an outage), fix the system and run again, or drop the change (dataflow reject 1)"
			if !errors.Is(err, dsync.ErrBreaker) || err.Error() != want {
				t.Fatalf("run: %v\nwant: %s", err, want)
			}
			st := e2eFlow(t, rep, "products")
			if st.Unlinked != 0 || st.CreatedTarget != 0 || st.CreatedSource != 0 || st.Deleted != 0 {
				t.Errorf("products: %+v; want nothing unlinked, created or deleted", *st)
			}
			if p.links("products") != 10 || p.count("shop", "products") != 10 || p.count("crm", "products") != 10 {
				t.Errorf("%d links, shop %d, CRM %d; want 10 each", p.links("products"), p.count("shop", "products"), p.count("crm", "products"))
			}
			pend := p.pending("")
			if len(pend) != 1 || pend[0].Flow != "products" || pend[0].Status != state.PendingWaiting || len(pend[0].Links) != 10 ||
				pend[0].Summary != "10 of 10 linked records of Shop (Product) are missing, more than the limit of 1 (10%); delete: "+policy {
				t.Errorf("pending = %+v", pend)
			}
			if st := e2eFlow(t, rep, "customers"); st.UpdatedTarget != 1 {
				t.Errorf("customers: %+v; the flow after the breaker did not run", *st)
			}
			p.writeState(func(tx state.Tx) error { return tx.DeletePending(pend[0].ID) })
			p.quiet("run after the reject, with the shop back")
			if p.links("products") != 10 || len(p.pending("")) != 0 {
				t.Errorf("after the reject: %d links, pending %v", p.links("products"), p.pending(""))
			}
		})
	}
}

// Records really deleted in bulk: the breaker stops the run and the change waits; approved,
// the next run makes it (under keep: unlinks and creates the shop's products again) and the
// approval is used up.
func TestDivergenceApprovedMassDeleteIsMade(t *testing.T) {
	p := newE2E(t, "delete-keep.yaml")
	p.sync()
	p.exec("shop", "DELETE FROM products")
	if _, err := p.run(e2eRunConfig{}); !errors.Is(err, dsync.ErrBreaker) {
		t.Fatalf("run: %v, want the breaker", err)
	}
	if p.count("shop", "products") != 0 || p.links("products") != 10 {
		t.Fatalf("the breaker's run changed something: shop %d, links %d", p.count("shop", "products"), p.links("products"))
	}
	pend := p.pending("products")
	if len(pend) != 1 {
		t.Fatalf("pending = %+v", pend)
	}
	p.writeState(func(tx state.Tx) error { return tx.ApprovePending(pend[0].ID) })
	rep := p.sync()
	if st := e2eFlow(t, rep, "products"); st.Unlinked != 10 || st.CreatedTarget != 10 {
		t.Errorf("the approved run: %+v; want 10 unlinked and created again", *st)
	}
	if p.count("shop", "products") != 10 || p.links("products") != 10 || len(p.pending("")) != 0 {
		t.Errorf("shop %d, links %d, pending %v", p.count("shop", "products"), p.links("products"), p.pending(""))
	}
	p.quiet("run after")
}

// throttledConn writes the first `accept` records of an Update or Create and then fails the
// call as a whole, as an API answering 429 after some PATCHes, returning the results of the
// records it wrote (partial) or none.
type throttledConn struct {
	connector.Conn
	accept  int
	partial bool
}

var errThrottled = errors.New("429 Too Many Requests")

func (c throttledConn) Update(ctx context.Context, entity string, recs []connector.Record) ([]connector.Result, error) {
	n := min(c.accept, len(recs))
	done, err := c.Conn.Update(ctx, entity, recs[:n])
	if err != nil {
		return nil, err
	}
	if !c.partial {
		return nil, errThrottled
	}
	return append(done, make([]connector.Result, len(recs)-n)...), errThrottled
}

func (c throttledConn) Create(ctx context.Context, entity string, data []map[string]any) ([]connector.Result, error) {
	n := min(c.accept, len(data))
	done, err := c.Conn.Create(ctx, entity, data[:n])
	if err != nil {
		return nil, err
	}
	if !c.partial {
		return nil, errThrottled
	}
	return append(done, make([]connector.Result, len(data)-n)...), errThrottled
}

// A run that fails on a 429 after some writes reports the writes the system accepted and the
// ones left undone, in its stats and its error; the next run makes the rest, once.
func TestDivergenceSummaryCountsWritesBeforeAFailure(t *testing.T) {
	for _, partial := range []bool{true, false} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			p := newE2E(t, "basic.yaml")
			p.sync()
			p.exec("crm", "UPDATE products SET name = name || ' (new)', updated_at = '2024-02-01T00:00:00Z' WHERE id <= 5")
			p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'Eleven', 1, 1, '2024-02-01T00:00:00Z'), (12, 'P-12', 'Twelve', 1, 1, '2024-02-01T00:00:00Z')")
			wrap := func(system string, c connector.Conn) connector.Conn {
				if system == "shop" {
					return throttledConn{c, 2, partial}
				}
				return c
			}
			rep, err := p.run(e2eRunConfig{wrap: wrap})
			if !errors.Is(err, errThrottled) {
				t.Fatalf("run: %v, want the 429", err)
			}
			// The shop took 2 updates. A connection that returns the results of the records
			// it wrote has them counted; one that returns none has all 5 counted undone.
			st := e2eFlow(t, rep, "products")
			made, undone := 2, 3
			if !partial {
				made, undone = 0, 5
			}
			if st.UpdatedTarget != made || st.Undone != undone || rep.Writes() != made || rep.Undone() != undone {
				t.Errorf("products: %+v, %d writes; want %d updates made, %d undone", *st, rep.Writes(), made, undone)
			}
			if partial {
				want := "flow products: 429 Too Many Requests (Product: 2 of 5 writes of the call were made; 3 left undone, for the next run)"
				if err.Error() != want {
					t.Errorf("error:\n%s\nwant:\n%s", err, want)
				}
			}
			rep = p.sync()
			st = e2eFlow(t, rep, "products")
			if st.UpdatedTarget != 3 || st.CreatedTarget != 2 || rep.Failed() != 0 {
				t.Errorf("the run after: %+v; want the 3 updates left and the 2 creates", *st)
			}
			if got := p.count("shop", "products", "title LIKE '% (new)'"); got != 5 {
				t.Errorf("the shop holds %d new titles, want 5", got)
			}
			if got := p.count("shop", "products"); got != 12 {
				t.Errorf("the shop holds %d products, want 12", got)
			}
			p.quiet("the third run")
		})
	}
}

// Creates the system accepted before a call failed are linked in that run and counted; the
// intents of the others stay, and the next run creates them once.
func TestDivergenceCreatesBeforeAFailureAreLinked(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	p.exec("crm", "INSERT INTO products (id, sku, name, price, stock, updated_at) VALUES (11, 'P-11', 'Eleven', 1, 1, '2024-02-01T00:00:00Z'), (12, 'P-12', 'Twelve', 1, 1, '2024-02-01T00:00:00Z'), (13, 'P-13', 'Thirteen', 1, 1, '2024-02-01T00:00:00Z')")
	rep, err := p.run(e2eRunConfig{wrap: func(system string, c connector.Conn) connector.Conn {
		if system == "shop" {
			return throttledConn{c, 1, true}
		}
		return c
	}})
	want := "flow products: 429 Too Many Requests (Product: 1 of 3 writes of the call were made; 2 left undone, for the next run)"
	if err == nil || err.Error() != want {
		t.Fatalf("run: %v\nwant: %s", err, want)
	}
	if st := e2eFlow(t, rep, "products"); st.CreatedTarget != 1 || st.Undone != 2 {
		t.Errorf("products: %+v; want 1 created, 2 undone", *st)
	}
	if p.links("products") != 11 {
		t.Errorf("%d links, want 11", p.links("products"))
	}
	rep = p.sync()
	if st := e2eFlow(t, rep, "products"); st.CreatedTarget+st.Recovered != 2 {
		t.Errorf("the run after: %+v; want the 2 left created", *st)
	}
	if got := p.count("shop", "products"); got != 13 || p.links("products") != 13 {
		t.Errorf("the shop holds %d products and %d links, want 13", got, p.links("products"))
	}
	p.quiet("the third run")
}

// A lost link state is not a new sync: with both systems holding the records of flows that
// create without merge criteria, a run on a state that never ran refuses and writes nothing;
// Options.AllowNewState (run --allow-new-state) runs it anyway.
func TestDivergenceLostStateRefused(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	lost := p.state + ".lost"
	if err := os.Rename(p.state, lost); err != nil {
		t.Fatal(err)
	}
	os.Remove(p.state + "-wal")
	os.Remove(p.state + "-shm")
	rep, err := p.run(e2eRunConfig{})
	want := "new link state: the link state has no links and no runs, but both systems of flow products (CRM Product and Shop Product), " +
		"flow customers (CRM Customer and Shop Customer), flow orders (CRM Order and Shop Order) already hold records, " +
		"and the flow creates records without merge criteria: this run would create a copy of every record on the other side. " +
		"If the link state was lost, restore it from a backup (or point --state at it); if the records were never synced, " +
		"run with --allow-new-state, or give the flow merge criteria that link the records both sides hold"
	if !errors.Is(err, dsync.ErrNewState) || err.Error() != want {
		t.Fatalf("run: %v\nwant: %s", err, want)
	}
	if rep != nil {
		t.Errorf("a refused run reported %s", e2eStats(rep))
	}
	if got := p.count("shop", "products"); got != 10 {
		t.Errorf("the shop holds %d products, want the 10 it had", got)
	}
	// A dry run shows what the run would do.
	if _, err := p.run(e2eRunConfig{opts: dsync.Options{DryRun: true}}); err != nil {
		t.Errorf("dry run: %v", err)
	}
	rep, err = p.run(e2eRunConfig{opts: dsync.Options{AllowNewState: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got := e2eFlow(t, rep, "products").CreatedTarget; got != 10 {
		t.Errorf("allowed: created %d, want the 10 copies it was told to make", got)
	}
	// The state has run now: the next run is not refused.
	p.sync()
}

// reload loads the project again with a dataflow file edited by edit (beside the fixtures'
// systems), on the same databases and link state.
func (p *e2eProject) reload(dataflow string, edit func(string) string) *e2eProject {
	p.t.Helper()
	text, err := os.ReadFile(filepath.Join(e2eFixtures, dataflow))
	if err != nil {
		p.t.Fatal(err)
	}
	edited := edit(string(text))
	if edited == string(text) {
		p.t.Fatal("the edit changed nothing")
	}
	dir := filepath.Join(p.dir, "edited")
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, dataflow)
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		p.t.Fatal(err)
	}
	systems, err := filepath.Abs(filepath.Join(e2eFixtures, "systems"))
	if err != nil {
		p.t.Fatal(err)
	}
	q := e2eLoad(p.t, p.dir, p.env, file, systems)
	q.state = p.state
	return q
}

// An edited property reaches the records already linked: the next run merges every linked
// pair again and writes the new values (the dry run before it shows them), then records the
// table's fingerprint, so the run after writes nothing. --resync merges them all on request.
func TestDivergenceEditedMappingReachesLinkedRecords(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	q := p.reload("basic.yaml", func(s string) string {
		return strings.Replace(s, "{source: name, target: title}", "{source: name, target: title, to_target: 'upper(name)', sync: to-target}", 1)
	})
	rep, err := q.run(e2eRunConfig{opts: dsync.Options{DryRun: true}})
	if err != nil {
		t.Fatal(err)
	}
	if st := e2eFlow(t, rep, "products"); st.UpdatedTarget != 10 {
		t.Errorf("dry run: %+v; want the 10 titles planned", *st)
	}
	planned := 0
	for _, c := range rep.Changes {
		if c.Flow == "products" && c.Action == "update" && c.Property == "title" && c.New == strings.ToUpper(c.Old) {
			planned++
		}
	}
	if planned != 10 {
		t.Errorf("dry run planned %d title updates to upper case, want 10: %+v", planned, rep.Changes)
	}
	rep = q.sync()
	if st := e2eFlow(t, rep, "products"); st.UpdatedTarget != 10 || st.UpdatedSource != 0 {
		t.Errorf("the run after the edit: %+v; want 10 titles written", *st)
	}
	if st := e2eFlow(t, rep, "customers"); st.Writes() != 0 {
		t.Errorf("customers, whose table did not change: %+v", *st)
	}
	if got := q.text("shop", "SELECT title FROM products WHERE sku = 'P-03'"); got != "GRÜNER TEE" {
		t.Errorf("P-03's title = %q", got)
	}
	q.quiet("the run after")

	// --resync: a title edited in the shop without a stamp (the digest says nothing changed
	// only because the watermark skips it) is merged again on request.
	q.exec("shop", "UPDATE products SET title = 'edited' WHERE sku = 'P-04'")
	rep, err = q.run(e2eRunConfig{opts: dsync.Options{Resync: true}})
	if err != nil {
		t.Fatal(err)
	}
	if st := e2eFlow(t, rep, "products"); st.UpdatedSource+st.UpdatedTarget != 1 {
		t.Errorf("resync: %+v; want the edited title merged", *st)
	}
}

// Crash recovery adopts a created record by its content only when the values are the same
// by type: a run killed before its creates left intents for a code "007" and for a record of
// nulls; the unlinked target records 7 and (null) are not taken for their copies, and the
// records are created.
func TestDivergenceRecoveryComparesByType(t *testing.T) {
	p := newDivergence(t,
		"CREATE TABLE people(id integer primary key, code); INSERT INTO people VALUES (1, '007'), (2, NULL);",
		"CREATE TABLE people(id integer primary key, code); INSERT INTO people VALUES (5, 7), (6, NULL);",
		`  - id: people
    source: people
    target: people
    create: always
    sync: to-target
    properties:
      - {source: code, target: code}
`)
	crash := &e2eCrashConn{entity: "people", before: true}
	_, err := p.run(e2eRunConfig{opts: dsync.Options{AllowNewState: true}, wrap: func(system string, c connector.Conn) connector.Conn {
		if system == "b" {
			crash.Conn = c
			return crash
		}
		return c
	}})
	if !errors.Is(err, errE2ECrash) {
		t.Fatalf("crashed run: %v", err)
	}
	if n := len(p.intents("people")); n != 2 {
		t.Fatalf("%d intents, want 2", n)
	}
	rep := p.sync()
	if st := e2eFlow(t, rep, "people"); st.Recovered != 0 || st.CreatedTarget != 2 {
		t.Errorf("recovery: %+v; want nothing adopted, 2 created", *st)
	}
	links := p.allLinks("people")
	if links["1"] == "5" || links["2"] == "6" || len(links) != 2 {
		t.Errorf("links = %v; a record was adopted by a loose match", links)
	}
	if got := p.rows("b", "SELECT id, quote(code) FROM people ORDER BY id"); strings.Join(got, " ") != "5 | 7 6 | NULL 7 | '007' 8 | NULL" {
		t.Errorf("b holds %v", got)
	}
}

// The link state knows the systems its links are of: a run against another database whose
// records have linked ids (a copy, or another database that numbers its rows the same way) is
// refused unless told it is a copy; an empty one is not refused (the breaker holds its
// missing records), and never is its password recorded.
func TestDivergenceOtherSystemRefused(t *testing.T) {
	p := newE2E(t, "basic.yaml")
	p.sync()
	p.closeSQL()
	data, err := os.ReadFile(p.db("shop"))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(p.dir, "other-shop.db")
	if err := os.WriteFile(other, data, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range p.env {
		env[k] = v
	}
	env["SHOP_DB"] = other
	file, _ := filepath.Abs(filepath.Join(e2eFixtures, "basic.yaml"))
	q := e2eLoad(t, p.dir, env, file)
	q.state = p.state
	_, err = q.run(e2eRunConfig{})
	linked := p.allLinks("products")
	want := fmt.Sprintf("another system: system shop: the links of the link state are of sqlite %s, and this run is against sqlite %s, "+
		"which holds Product records with the ids of linked ones (%s, %s, %s, ...): the links would pair records that were never synced. "+
		"Point the system at the database it was synced with, or use another link state (--state); if it is a copy of that database, run with --allow-new-systems",
		p.db("shop"), other, linked["1"], linked["10"], linked["2"]) // in the order of the source ids, as text
	if !errors.Is(err, dsync.ErrOtherSystem) || err.Error() != want {
		t.Fatalf("run: %v\nwant: %s", err, want)
	}
	rep, err := q.run(e2eRunConfig{opts: dsync.Options{AllowNewSystems: true}})
	if err != nil || rep.Writes() != 0 {
		t.Fatalf("allowed: %v, %d writes", err, rep.Writes())
	}
	// Recorded: the next run against the copy is not refused.
	q.quiet("the next run against the copy")
	p.store(func(st state.Store) error {
		systems, err := st.Systems(context.Background())
		if systems["shop"].Location != other {
			t.Errorf("shop recorded at %q, want %q", systems["shop"].Location, other)
		}
		return err
	})
}

// A source edit of a to-source property does not stay either: the target's value wins back
// in the run that reads the edit, counted as an update of the source.
func TestDivergenceToSourcePropertyStaysOneWay(t *testing.T) {
	p := newDivergence(t,
		"CREATE TABLE people(id integer primary key, email text, b_id integer); INSERT INTO people VALUES (1, 'x@e', NULL);",
		"CREATE TABLE people(id integer primary key, email text);",
		`  - id: people
    source: people
    target: people
    create: always
    properties:
      - {source: email, target: email}
      - {source: b_id, target: id, sync: to-source}
`)
	p.sync()
	if got := p.text("a", "SELECT b_id FROM people WHERE id = 1"); got != "1" {
		t.Fatalf("a's b_id = %s after the create, want 1", got)
	}
	p.quiet("second run")
	p.exec("a", "UPDATE people SET b_id = 999 WHERE id = 1")
	rep := p.sync()
	if st := e2eFlow(t, rep, "people"); st.UpdatedSource != 1 || st.UpdatedTarget != 0 {
		t.Errorf("the run after the edit: %+v; want 1 update of the source", *st)
	}
	if got := p.text("a", "SELECT b_id FROM people WHERE id = 1"); got != "1" {
		t.Errorf("the source's edit of a to-source property stayed: b_id = %s", got)
	}
	p.quiet("the run after")
}
