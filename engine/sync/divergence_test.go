package sync_test

// End-to-end tests of the divergence cases (issue 14): records that never sync, or sync
// wrongly, while every run reports success. Each project is written inline: two SQLite
// files a and b with their tables, one dataflow between them.

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
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
	// The links hold the digests of the records as the run left them, written back ones
	// included (not as read before): the run after finds every pair unchanged by its digests
	// and leaves the links as they are.
	linksAfterFirst := p.linkRows("people")
	p.quiet("second run")
	if got := p.linkRows("people"); !reflect.DeepEqual(got, linksAfterFirst) {
		t.Errorf("a run without edits rewrote links:\nafter the first run %v\nafter the second    %v", linksAfterFirst, got)
	}
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
