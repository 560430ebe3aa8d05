package e2etest

// Helpers of jsonserver_test.go: Northwind in a SQLite file and the Custom CRM on json-server
// (internal/jsonservertest), the dataflow testdata/jsonserver/northwind-to-custom-crm.yaml
// with the shipped system file mappings/systems/custom-crm-http.yaml loaded through the engine's
// front door, and runs of the sync.Runner wired the way `dataflow run` wires it (connections
// from the registry, the link state in a file). Everything here is named js… so that the other
// tests of the package keep their own names.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
	"github.com/dataflow-sync/dataflow/internal/jsonservertest"
	_ "github.com/mattn/go-sqlite3"
)

// jsToken is the Custom CRM's bearer token in these tests: the server requires it and the
// system file sends it from CRM_TOKEN.
const jsToken = "crm-token-5b2e9f4a7c1d"

// jsProject is one two-way sync of Northwind with the Custom CRM: the Northwind database, the
// running CRM, the compiled project and the link state.
type jsProject struct {
	t       *testing.T
	dir     string
	env     map[string]string
	project *mapping.Project
	state   string
	crm     *jsonservertest.Server
	nw      *sql.DB // the Northwind database, for the test's own queries and edits

	// opts are the runs' options (Flows limits them to some flows).
	opts dsync.Options
	// wrap, when set, replaces a system's connection (by system id) for the runs.
	wrap func(system string, c connector.Conn) connector.Conn
}

// jsRoot returns the repository's root: the directory of go.mod above the working directory.
func jsRoot(t *testing.T) string {
	t.Helper()
	dir, err := jsonservertest.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(dir))
}

// newJSProject builds Northwind from testdata/northwind/northwind.sql, starts the Custom CRM
// with crmSeed (jsonservertest.Start) and loads the given mapping files (relative to the
// repository root) with the environment pointing at both.
func newJSProject(t *testing.T, crmSeed string, files ...string) *jsProject {
	t.Helper()
	crm := jsonservertest.StartWith(t, crmSeed, jsonservertest.Options{Token: jsToken})
	dir := t.TempDir()
	root := jsRoot(t)
	nwPath := filepath.Join(dir, "northwind.db")
	jsLoadSQL(t, nwPath, filepath.Join(root, "testdata", "northwind", "northwind.sql"))
	p := jsNewProject(t, dir, map[string]string{
		"DATAFLOW_ENV": "http",
		"NORTHWIND_DB": nwPath,
		"CRM_URL":      crm.URL,
		"CRM_TOKEN":    jsToken,
	}, files...)
	p.crm = crm
	p.nw = jsOpenDB(t, nwPath)
	return p
}

// jsNewProject loads mapping files (relative to the repository root) with env as the
// environment, its link state in dir.
func jsNewProject(t *testing.T, dir string, env map[string]string, files ...string) *jsProject {
	t.Helper()
	root := jsRoot(t)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(root, f))
	}
	return &jsProject{t: t, dir: dir, env: env, project: jsLoad(t, env, paths...), state: filepath.Join(dir, "state", "state.db")}
}

// jsOpenDB opens a SQLite database for the test's queries, closed when the test ends.
func jsOpenDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// jsLoadSQL creates the SQLite database path from an SQL script.
func jsLoadSQL(t *testing.T, path, script string) {
	t.Helper()
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("PRAGMA synchronous = OFF; PRAGMA journal_mode = MEMORY;\n" + string(src)); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// jsLoad loads mapping files through engine.New + Load with env as the environment and fails
// the test on any diagnostic, warnings included.
func jsLoad(t *testing.T, env map[string]string, paths ...string) *mapping.Project {
	t.Helper()
	eng, err := engine.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Load(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	if res.Diagnostics.HasErrors() { // warnings (a create without merge criteria) are the fixtures' business
		var b strings.Builder
		for _, d := range res.Diagnostics {
			b.WriteString(d.Error() + "\n")
		}
		t.Fatalf("loading %v:\n%s", paths, b.String())
	}
	return res.Project
}

// run runs the flows once (runErr) and fails the test when the run returns an error.
func (p *jsProject) run() *dsync.Report {
	p.t.Helper()
	rep, err := p.runErr()
	if err != nil {
		p.t.Fatalf("run: %v", err)
	}
	return rep
}

// runErr runs the flows once, as `dataflow run` does: a connection to each system opened for
// the run and closed after it, the link state opened for writing. The error is the run's (a
// system unreachable).
func (p *jsProject) runErr() (*dsync.Report, error) {
	p.t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, p.state, state.ReadWrite)
	if err != nil {
		p.t.Fatalf("open the link state: %v", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			p.t.Errorf("close the link state: %v", err)
		}
	}()
	conns := map[string]connector.Conn{}
	defer func() {
		for id, c := range conns {
			if err := c.Close(); err != nil {
				p.t.Errorf("close %s: %v", id, err)
			}
		}
	}()
	registry := engine.Connectors()
	for id, sys := range p.project.Systems {
		driver, ok := registry.Driver(sys.Config.Connector.Value)
		if !ok {
			p.t.Fatalf("no connector %q", sys.Config.Connector.Value)
		}
		entities := map[string]*schema.Entity{}
		for name, e := range sys.Entities {
			entities[name] = e.Schema
		}
		opener, ok := driver.(connector.Opener)
		if !ok {
			p.t.Fatalf("connector %q cannot open connections", sys.Config.Connector.Value)
		}
		c, err := opener.Open(ctx, sys.Config, entities, connector.OpenOptions{})
		if err != nil {
			p.t.Fatalf("open %s: %v", id, err)
		}
		conns[id] = c
	}
	use := map[string]connector.Conn{}
	for id, c := range conns {
		use[id] = c
		if p.wrap != nil {
			use[id] = p.wrap(id, c)
		}
	}
	r := &dsync.Runner{Project: p.project, Conns: use, State: st, Opts: p.opts}
	return r.Run(ctx)
}

// quiet runs once and fails the test unless the run wrote nothing and nothing failed.
func (p *jsProject) quiet(what string) *dsync.Report {
	p.t.Helper()
	rep := p.run()
	if rep.Writes() != 0 || rep.Failed() != 0 {
		p.t.Errorf("%s: a run without edits made %d writes, %d records failed:\n%s", what, rep.Writes(), rep.Failed(), jsStats(rep))
	}
	return rep
}

// jsStats prints a report's flow stats, for failure messages.
func jsStats(rep *dsync.Report) string {
	b, _ := json.MarshalIndent(rep.Flows, "", "  ")
	return string(b)
}

// jsFlow returns a flow's stats in a report.
func jsFlow(t *testing.T, rep *dsync.Report, flow string) dsync.FlowStats {
	t.Helper()
	for _, f := range rep.Flows {
		if f.Flow == flow {
			return *f
		}
	}
	t.Fatalf("the report has no flow %s:\n%s", flow, jsStats(rep))
	return dsync.FlowStats{}
}

// --- Northwind, in SQL ---

// exec runs a statement on Northwind.
func (p *jsProject) exec(query string, args ...any) sql.Result {
	p.t.Helper()
	res, err := p.nw.Exec(query, args...)
	if err != nil {
		p.t.Fatalf("Northwind: %s: %v", query, err)
	}
	return res
}

// rows reads rows of Northwind as text lines (jsRows).
func (p *jsProject) rows(query string, args ...any) []string {
	p.t.Helper()
	return jsRows(p.t, p.nw, query, args...)
}

// jsRows reads rows of a SQLite database as text lines, columns separated by " | ", NULL as
// <NULL>.
func jsRows(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rs, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var cells []string
		for _, v := range vals {
			cells = append(cells, jsText(v))
		}
		out = append(out, strings.Join(cells, " | "))
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// row reads one row of Northwind as text; no row fails the test.
func (p *jsProject) row(query string, args ...any) string {
	p.t.Helper()
	rs := p.rows(query, args...)
	if len(rs) != 1 {
		p.t.Fatalf("Northwind: %s %v: %d rows, want 1", query, args, len(rs))
	}
	return rs[0]
}

// jsText formats a value of either side the same way: NULL/null as <NULL>, numbers in their
// shortest form (json.Number as sent), text as it is.
func jsText(v any) string {
	switch v := v.(type) {
	case nil:
		return "<NULL>"
	case []byte:
		return string(v)
	case json.Number:
		return v.String()
	case float64:
		return fmt.Sprint(v)
	default:
		return fmt.Sprint(v)
	}
}

// --- the Custom CRM, over its API ---

// crmBy returns the CRM's records of a resource by the text of a property.
func (p *jsProject) crmBy(resource, key string) map[string]jsonservertest.Record {
	p.t.Helper()
	out := map[string]jsonservertest.Record{}
	for _, r := range p.crm.List(resource, "", 1000) {
		k := jsText(r[key])
		if _, dup := out[k]; dup {
			p.t.Errorf("the CRM has two %s with %s %s", resource, key, k)
		}
		out[k] = r
	}
	return out
}

// crmFields formats properties of a CRM record as " | "-separated text.
func jsFields(r jsonservertest.Record, keys ...string) string {
	var cells []string
	for _, k := range keys {
		cells = append(cells, jsText(r[k]))
	}
	return strings.Join(cells, " | ")
}

// jsSame reports the rows of two lists that differ (at most five), and their counts.
func jsSame(t *testing.T, what string, nw, crm []string) {
	t.Helper()
	if len(nw) != len(crm) {
		t.Errorf("%s: Northwind has %d, the CRM %d", what, len(nw), len(crm))
	}
	n := 0
	for i := 0; i < len(nw) && i < len(crm); i++ {
		if nw[i] != crm[i] {
			if n < 5 {
				t.Errorf("%s:\n  Northwind %s\n  CRM       %s", what, nw[i], crm[i])
			}
			n++
		}
	}
	if n > 5 {
		t.Errorf("%s: %d rows differ in all", what, n)
	}
}

// --- the link state ---

// store opens the link state read-only, as `dataflow status` does, and calls fn.
func (p *jsProject) store(fn func(st state.Store) error) {
	p.t.Helper()
	st, err := state.Open(context.Background(), p.state, state.ReadOnly)
	if err != nil {
		p.t.Fatalf("open the link state: %v", err)
	}
	defer st.Close()
	if err := fn(st); err != nil {
		p.t.Fatal(err)
	}
}

// links returns a flow's links, source id → target id.
func (p *jsProject) links(flow string) map[string]string {
	p.t.Helper()
	out := map[string]string{}
	p.store(func(st state.Store) error {
		return st.ScanLinks(context.Background(), flow, func(ls []*state.Link) error {
			for _, l := range ls {
				out[l.SourceID] = l.TargetID
			}
			return nil
		})
	})
	return out
}

// deadLetters returns a flow's dead letters as "side record: reason", sorted.
func (p *jsProject) deadLetters(flow string) []string {
	p.t.Helper()
	var out []string
	p.store(func(st state.Store) error {
		ds, err := st.DeadLetters(context.Background(), flow)
		for _, d := range ds {
			out = append(out, fmt.Sprintf("%s %s: %s", d.Side, d.RecordID, d.Reason))
		}
		return err
	})
	sort.Strings(out)
	return out
}
