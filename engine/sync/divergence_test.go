package sync_test

// End-to-end tests of the divergence cases (issue 14): records that never sync, or sync
// wrongly, while every run reports success. Each project is written inline: two SQLite
// files a and b with their tables, one dataflow between them.

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
