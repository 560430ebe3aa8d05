package sync_test

// Helpers of the end-to-end tests (e2e*_test.go, northwind_test.go): a project of
// testdata/sync loaded through engine.New + Load with its databases in a temporary directory,
// runs of sync.Runner wired the way `dataflow run` wires it, and SQL and link-state queries
// for the assertions. Everything here is named e2e… (or runOnce) so that other tests of the
// package can keep their own helpers.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
	_ "github.com/mattn/go-sqlite3"
)

// e2eFixtures is testdata/sync of the repository, from this package's directory.
const e2eFixtures = "../../testdata/sync"

// e2eProject is a project of testdata/sync with its own databases and link state.
type e2eProject struct {
	t       *testing.T
	dir     string            // the temporary directory holding every file a run writes
	env     map[string]string // the ${VAR}s of the system files
	project *mapping.Project
	state   string // the link state file
}

// newE2E loads a dataflow file of testdata/sync (with systems/ beside it) and creates the
// CRM and shop databases from their init scripts by opening the connectors once, as the
// first run would; tests may then edit them with SQL before the first run.
func newE2E(t *testing.T, dataflow string) *e2eProject {
	t.Helper()
	dir := t.TempDir()
	abs := func(name string) string {
		p, err := filepath.Abs(filepath.Join(e2eFixtures, name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{
		"CRM_DB":    filepath.Join(dir, "crm.db"),
		"CRM_INIT":  abs("crm.sql"),
		"SHOP_DB":   filepath.Join(dir, "shop.db"),
		"SHOP_INIT": abs("shop.sql"),
	}
	p := e2eLoad(t, dir, env, abs(dataflow))
	// Create the databases now (the connectors' `init`), so that tests can edit them.
	conns := p.open(connector.OpenOptions{})
	for _, c := range conns {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// e2eLoad loads mapping files through the engine's front door, with env as the environment,
// and fails the test on any diagnostic.
func e2eLoad(t *testing.T, dir string, env map[string]string, paths ...string) *e2eProject {
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
	return &e2eProject{t: t, dir: dir, env: env, project: res.Project, state: filepath.Join(dir, "state", "state.db")}
}

// db returns the path of a system's database ("crm" or "shop").
func (p *e2eProject) db(system string) string {
	return p.project.Systems[system].Config.Settings["path"].Value
}

// open opens a connection to every system of the project, as the CLI does (Driver.Open with
// the entities' schemas).
func (p *e2eProject) open(opts connector.OpenOptions) map[string]connector.Conn {
	p.t.Helper()
	registry := engine.Connectors()
	conns := map[string]connector.Conn{}
	ids := make([]string, 0, len(p.project.Systems))
	for id := range p.project.Systems {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		sys := p.project.Systems[id]
		driver, ok := registry.Driver(sys.Config.Connector.Value)
		if !ok {
			p.t.Fatalf("no connector %q", sys.Config.Connector.Value)
		}
		entities := map[string]*schema.Entity{}
		for name, e := range sys.Entities {
			entities[name] = e.Schema
		}
		c, err := driver.(connector.Opener).Open(context.Background(), sys.Config, entities, opts)
		if err != nil {
			for _, open := range conns {
				open.Close()
			}
			p.t.Fatalf("open %s: %v", id, err)
		}
		conns[id] = c
	}
	return conns
}

// e2eRunConfig tunes one run of e2eProject.run.
type e2eRunConfig struct {
	opts dsync.Options
	// wrap, when set, replaces a system's connection (by system id) for the run.
	wrap func(system string, c connector.Conn) connector.Conn
	ctx  context.Context
}

// run runs the project's flows once, as `dataflow run` does: connections opened for the run
// (read-only in a dry run), the link state opened for writing (read-only in a dry run), all
// closed afterwards. It returns what Runner.Run returns.
func (p *e2eProject) run(cfg e2eRunConfig) (*dsync.Report, error) {
	p.t.Helper()
	ctx := cfg.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	dry := cfg.opts.DryRun
	mode := state.ReadWrite
	if dry {
		mode = state.ReadOnly
	}
	st, err := state.Open(ctx, p.state, mode)
	if err != nil {
		p.t.Fatalf("open the link state: %v", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			p.t.Errorf("close the link state: %v", err)
		}
	}()
	conns := p.open(connector.OpenOptions{ReadOnly: dry})
	defer func() {
		for id, c := range conns {
			if err := c.Close(); err != nil {
				p.t.Errorf("close %s: %v", id, err)
			}
		}
	}()
	use := map[string]connector.Conn{}
	for id, c := range conns {
		use[id] = c
		if cfg.wrap != nil {
			use[id] = cfg.wrap(id, c)
		}
	}
	r := &dsync.Runner{Project: p.project, Conns: use, State: st, Opts: cfg.opts}
	return r.Run(ctx)
}

// runOnce runs every flow of the project once and fails the test when the run returns an
// error. stateDir holds the link state (state.db); "" uses the project's own.
func runOnce(t *testing.T, p *e2eProject, stateDir string) *dsync.Report {
	t.Helper()
	if stateDir != "" {
		p.state = filepath.Join(stateDir, "state.db")
	}
	rep, err := p.run(e2eRunConfig{})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep == nil {
		t.Fatal("run: no report")
	}
	return rep
}

// sync runs once in the project's own state directory.
func (p *e2eProject) sync() *dsync.Report {
	p.t.Helper()
	return runOnce(p.t, p, "")
}

// quiet runs once and fails the test unless the run wrote nothing and failed nothing.
func (p *e2eProject) quiet(what string) *dsync.Report {
	p.t.Helper()
	rep := p.sync()
	if rep.Writes() != 0 || rep.Failed() != 0 {
		p.t.Errorf("%s: a run without edits made %d writes, %d records failed:\n%s", what, rep.Writes(), rep.Failed(), e2eStats(rep))
	}
	return rep
}

// e2eStats prints a report's flow stats, for failure messages.
func e2eStats(rep *dsync.Report) string {
	b, _ := json.MarshalIndent(rep.Flows, "", "  ")
	return string(b)
}

// flow returns the stats of a flow in a report.
func e2eFlow(t *testing.T, rep *dsync.Report, id string) *dsync.FlowStats {
	t.Helper()
	for _, f := range rep.Flows {
		if f.Flow == id {
			return f
		}
	}
	t.Fatalf("the report has no flow %s:\n%s", id, e2eStats(rep))
	return nil
}

// --- SQL on the systems' databases, bypassing the connector ---

var e2eDBs sync.Map // path → *sql.DB, closed by the test's cleanup

func (p *e2eProject) sqlDB(system string) *sql.DB {
	p.t.Helper()
	path := p.db(system)
	if db, ok := e2eDBs.Load(path); ok {
		return db.(*sql.DB)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		p.t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	e2eDBs.Store(path, db)
	p.t.Cleanup(func() {
		e2eDBs.Delete(path)
		db.Close()
	})
	return db
}

// closeSQL closes the test's own connections to the databases (before comparing files).
func (p *e2eProject) closeSQL() {
	for id := range p.project.Systems {
		if db, ok := e2eDBs.LoadAndDelete(p.db(id)); ok {
			db.(*sql.DB).Close()
		}
	}
}

// exec runs statements on a system's database ("crm" or "shop").
func (p *e2eProject) exec(system, query string, args ...any) {
	p.t.Helper()
	if _, err := p.sqlDB(system).Exec(query, args...); err != nil {
		p.t.Fatalf("%s: %s: %v", system, query, err)
	}
}

// value reads one value from a system's database (nil for NULL; []byte becomes string).
func (p *e2eProject) value(system, query string, args ...any) any {
	p.t.Helper()
	var v any
	if err := p.sqlDB(system).QueryRow(query, args...).Scan(&v); err != nil {
		p.t.Fatalf("%s: %s %v: %v", system, query, args, err)
	}
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

// text reads one value as text, formatted as rows formats it ("<NULL>" for NULL, numbers in
// their shortest exact form), for comparisons that must be exact.
func (p *e2eProject) text(system, query string, args ...any) string {
	p.t.Helper()
	rows := p.rows(system, query, args...)
	if len(rows) == 0 {
		p.t.Fatalf("%s: %s %v: no row", system, query, args)
	}
	return rows[0]
}

// count counts the rows of a table, or of a table with a WHERE clause.
func (p *e2eProject) count(system, table string, where ...string) int {
	p.t.Helper()
	q := `SELECT count(*) FROM "` + table + `"`
	if len(where) > 0 {
		q += " WHERE " + where[0]
	}
	n, _ := p.value(system, q).(int64)
	return int(n)
}

// strings reads one column of text values, in the query's order (NULL as "<NULL>").
func (p *e2eProject) strings(system, query string, args ...any) []string {
	p.t.Helper()
	rows, err := p.sqlDB(system).Query(query, args...)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", system, query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			p.t.Fatal(err)
		}
		if v.Valid {
			out = append(out, v.String)
		} else {
			out = append(out, "<NULL>")
		}
	}
	if err := rows.Err(); err != nil {
		p.t.Fatal(err)
	}
	return out
}

// --- the link state, read as `dataflow status` reads it ---

// store opens the link state read-only for a look (as `dataflow status` does) and calls fn.
func (p *e2eProject) store(fn func(st state.Store) error) {
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

// linkRows is every link of a flow, by source id, with its digests and the run that last
// merged it.
func (p *e2eProject) linkRows(flow string) map[string]string {
	p.t.Helper()
	out := map[string]string{}
	p.store(func(st state.Store) error {
		return st.ScanLinks(context.Background(), flow, func(ls []*state.Link) error {
			for _, l := range ls {
				out[l.SourceID] = fmt.Sprintf("%s %s %s merged in %d", l.TargetID, l.SourceHash, l.TargetHash, l.MergedIn)
			}
			return nil
		})
	})
	return out
}

// links counts a flow's links.
func (p *e2eProject) links(flow string) int {
	p.t.Helper()
	var n int
	p.store(func(st state.Store) (err error) {
		n, err = st.CountLinks(context.Background(), flow)
		return err
	})
	return n
}

// allLinks returns a flow's links as source id → target id.
func (p *e2eProject) allLinks(flow string) map[string]string {
	p.t.Helper()
	out := map[string]string{}
	p.store(func(st state.Store) error {
		return st.ScanLinks(context.Background(), flow, func(ls []*state.Link) error {
			for _, l := range ls {
				if prev, dup := out[l.SourceID]; dup {
					p.t.Errorf("flow %s: source %s is linked twice (%s, %s)", flow, l.SourceID, prev, l.TargetID)
				}
				out[l.SourceID] = l.TargetID
			}
			return nil
		})
	})
	return out
}

// targetOf returns the target id linked to a source id ("" when none).
func (p *e2eProject) targetOf(flow, sourceID string) string {
	p.t.Helper()
	id := ""
	p.store(func(st state.Store) error {
		ls, err := st.LinksBySource(context.Background(), flow, []string{sourceID})
		if l := ls[sourceID]; l != nil {
			id = l.TargetID
		}
		return err
	})
	return id
}

// mustTarget is targetOf for a link that must exist.
func (p *e2eProject) mustTarget(flow, sourceID string) string {
	p.t.Helper()
	id := p.targetOf(flow, sourceID)
	if id == "" {
		p.t.Fatalf("flow %s: source record %s is not linked", flow, sourceID)
	}
	return id
}

// deadLetters returns a flow's dead letters by side + ":" + record id.
func (p *e2eProject) deadLetters(flow string) map[string]state.DeadLetter {
	p.t.Helper()
	out := map[string]state.DeadLetter{}
	p.store(func(st state.Store) error {
		ds, err := st.DeadLetters(context.Background(), flow)
		for _, d := range ds {
			out[d.Side+":"+d.RecordID] = d
		}
		return err
	})
	return out
}

// waiting returns a flow's waiting records by side + ":" + record id.
func (p *e2eProject) waiting(flow string) map[string]state.Waiting {
	p.t.Helper()
	out := map[string]state.Waiting{}
	p.store(func(st state.Store) error {
		ws, err := st.Waiting(context.Background(), flow)
		for _, w := range ws {
			out[w.Side+":"+w.RecordID] = w
		}
		return err
	})
	return out
}

// intents returns a flow's open create intents.
func (p *e2eProject) intents(flow string) []state.Intent {
	p.t.Helper()
	var in []state.Intent
	p.store(func(st state.Store) (err error) {
		in, err = st.Intents(context.Background(), flow)
		return err
	})
	return in
}

// --- files ---

// e2eDigests returns the sha256 of every file under dir, by path relative to dir.
func e2eDigests(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// e2eSortedNames lists a digest map's file names.
func e2eSortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// e2eCanonicalJSON re-encodes a JSON text with sorted keys, for comparing lists.
func e2eCanonicalJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return string(mapping.Canonical(v))
}

// rows reads a query's rows as text, columns joined by " | ": NULL as <NULL>, numbers in
// their shortest exact form (so the integer 18 and the real 18.0 read alike, and a price
// that is not exactly 0.99 does not read as 0.99).
func (p *e2eProject) rows(system, query string, args ...any) []string {
	p.t.Helper()
	rows, err := p.sqlDB(system).Query(query, args...)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", system, query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			p.t.Fatal(err)
		}
		parts := make([]string, len(raw))
		for i, v := range raw {
			parts[i] = e2eFormat(v)
		}
		out = append(out, strings.Join(parts, " | "))
	}
	if err := rows.Err(); err != nil {
		p.t.Fatal(err)
	}
	return out
}

// e2eFormat writes a value read from SQLite as text: NULL as <NULL>, numbers in their
// shortest exact form.
func e2eFormat(v any) string {
	switch x := v.(type) {
	case nil:
		return "<NULL>"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}
