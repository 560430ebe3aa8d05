package pocketbasetest

// End-to-end runs of testdata/pocketbase/crm-pocketbase.yaml: contacts both ways between a
// SQLite CRM and a real PocketBase, with the system file the README shows
// (testdata/pocketbase/systems/pocketbase.yaml): a login of its own, auth.check, the rate
// budget, field errors in the dead letters, quoted filters.

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/engine/state"
	dsync "github.com/dataflow-sync/dataflow/engine/sync"
	_ "github.com/mattn/go-sqlite3"
)

// project is the dataflow with a PocketBase and a CRM database.
type project struct {
	t     *testing.T
	pb    *Server
	dir   string // a copy of testdata/pocketbase's files, edited by the test
	env   map[string]string
	state string
	crm   *sql.DB
	// requests is how many requests the last run sent to PocketBase.
	requests int64
}

// contactsCollection is the contacts collection: the CRM's columns, company at most 10
// characters, email unique, readable and writable by any signed-in user.
var contactsCollection = map[string]any{
	"name": "contacts", "type": "base",
	"listRule": `@request.auth.id != ""`, "viewRule": `@request.auth.id != ""`, "createRule": `@request.auth.id != ""`,
	"updateRule": `@request.auth.id != ""`, "deleteRule": `@request.auth.id != ""`,
	"fields": []any{
		map[string]any{"name": "email", "type": "text", "required": true},
		map[string]any{"name": "name", "type": "text"},
		map[string]any{"name": "company", "type": "text", "max": 10},
	},
	"indexes": []any{"CREATE UNIQUE INDEX idx_contacts_email ON contacts (email)"},
}

// newProject starts PocketBase with the contacts collection and copies the dataflow's files;
// superuser selects the superuser's login (PocketBase does not rate-limit it), else a user's
// whose tokens last ttl.
func newProject(t *testing.T, superuser bool, ttl time.Duration) *project {
	pb := Start(t)
	pb.Must("POST", "/api/collections", contactsCollection, nil)
	dir := t.TempDir()
	src, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"crm-pocketbase.yaml", "crm.sql", "systems/pocketbase.yaml", "systems/crm.yaml", "schemas/contact.json"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"PB_URL": pb.URL, "CRM_DB": filepath.Join(dir, "crm.db"), "CRM_INIT": filepath.Join(dir, "crm.sql")}
	if superuser {
		env["PB_AUTH_COLLECTION"], env["PB_EMAIL"], env["PB_PASSWORD"] = "_superusers", SuperuserEmail, SuperuserPassword
	} else {
		pb.User("sync@example.com", "user-Pa55word-4567", ttl)
		env["PB_EMAIL"], env["PB_PASSWORD"] = "sync@example.com", "user-Pa55word-4567"
	}
	p := &project{t: t, pb: pb, dir: dir, env: env, state: filepath.Join(dir, "state.db")}
	// The CRM database, made by the connector's init on the first run; made here so that the
	// test can fill it first.
	db, err := sql.Open("sqlite3", "file:"+env["CRM_DB"]+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	sqlText, _ := os.ReadFile(env["CRM_INIT"])
	if _, err := db.Exec(string(sqlText)); err != nil {
		t.Fatal(err)
	}
	p.crm = db
	return p
}

// edit replaces text in one of the project's files.
func (p *project) edit(file, old, new string) {
	p.t.Helper()
	path := filepath.Join(p.dir, file)
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), old) {
		p.t.Fatalf("%s does not hold %q (%v)", file, old, err)
	}
	os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644)
}

func (p *project) load() *mapping.Project {
	p.t.Helper()
	eng, err := engine.New(func(k string) (string, bool) { v, ok := p.env[k]; return v, ok })
	if err != nil {
		p.t.Fatal(err)
	}
	res, err := eng.Load(context.Background(), []string{filepath.Join(p.dir, "crm-pocketbase.yaml"), filepath.Join(p.dir, "systems")})
	if err != nil {
		p.t.Fatal(err)
	}
	if res.Diagnostics.HasErrors() {
		var b strings.Builder
		for _, d := range res.Diagnostics {
			b.WriteString(d.Error() + "\n")
		}
		p.t.Fatalf("loading:\n%s", b.String())
	}
	return res.Project
}

// run runs the dataflow once as `dataflow run` does, and returns its report and error.
func (p *project) run() (*dsync.Report, error) {
	p.t.Helper()
	ctx := context.Background()
	proj := p.load()
	st, err := state.Open(ctx, p.state, state.ReadWrite)
	if err != nil {
		p.t.Fatal(err)
	}
	defer st.Close()
	conns := map[string]connector.Conn{}
	registry := engine.Connectors()
	for id, sys := range proj.Systems {
		driver, _ := registry.Driver(sys.Config.Connector.Value)
		entities := map[string]*schema.Entity{}
		for name, e := range sys.Entities {
			entities[name] = e.Schema
		}
		c, err := driver.(connector.Opener).Open(ctx, sys.Config, entities, connector.OpenOptions{})
		if err != nil {
			p.t.Fatalf("open %s: %v", id, err)
		}
		defer c.Close()
		conns[id] = c
	}
	r := &dsync.Runner{Project: proj, Conns: conns, State: st}
	rep, err := r.Run(ctx)
	if rc, ok := conns["pb"].(interface{ Requests() int64 }); ok {
		p.requests = rc.Requests()
	}
	return rep, err
}

// mustRun runs and fails the test on an error or a failed record.
func (p *project) mustRun(what string) dsync.FlowStats {
	p.t.Helper()
	start := time.Now()
	rep, err := p.run()
	if err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
	s := *rep.Flows[0]
	p.t.Logf("%s (%s): %+v", what, time.Since(start).Round(time.Millisecond), s)
	if s.Failed != 0 {
		p.t.Fatalf("%s: %d records failed: %v", what, s.Failed, p.deadLetters())
	}
	return s
}

func (p *project) deadLetters() []string {
	p.t.Helper()
	st, err := state.Open(context.Background(), p.state, state.ReadOnly)
	if err != nil {
		p.t.Fatal(err)
	}
	defer st.Close()
	ds, err := st.DeadLetters(context.Background(), "contacts")
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %s: %s", d.Side, d.RecordID, d.Reason))
	}
	sort.Strings(out)
	return out
}

func (p *project) links() int {
	p.t.Helper()
	st, err := state.Open(context.Background(), p.state, state.ReadOnly)
	if err != nil {
		p.t.Fatal(err)
	}
	defer st.Close()
	n := 0
	err = st.ScanLinks(context.Background(), "contacts", func(ls []*state.Link) error { n += len(ls); return nil })
	if err != nil {
		p.t.Fatal(err)
	}
	return n
}

func (p *project) crmRows(n int, from int) {
	p.t.Helper()
	tx, _ := p.crm.Begin()
	for i := from; i < from+n; i++ {
		if _, err := tx.Exec(`INSERT INTO contacts (email, name, company) VALUES (?, ?, ?)`, fmt.Sprintf("c%04d@example.com", i), fmt.Sprintf("Contact %d", i), "Acme"); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *project) crmCount() int {
	var n int
	p.crm.QueryRow(`SELECT count(*) FROM contacts`).Scan(&n)
	return n
}

// TestPocketBaseTwoWay: 2,000 CRM contacts are created in PocketBase, edits on both sides and
// records made in PocketBase flow back, and a run without edits writes nothing.
func TestPocketBaseTwoWay(t *testing.T) {
	p := newProject(t, true, 0)
	p.edit("systems/pocketbase.yaml", "rate_limit: {requests: 20, per: 2s}", "rate_limit: {requests: 2000, per: 1s}")
	p.crmRows(2000, 0)
	s := p.mustRun("first run")
	if s.CreatedTarget != 2000 || len(p.pb.Records("contacts")) != 2000 {
		t.Fatalf("created %d, PocketBase holds %d", s.CreatedTarget, len(p.pb.Records("contacts")))
	}
	// Ten records edited in PocketBase, none of them one the CRM edits too (the CRM's ids
	// 1991 to 2000, contacts c1990 to c1999): PocketBase lists its records in an order of its
	// own, and a contact edited on both sides is a conflict, not an update each way.
	edited := 0
	for _, r := range p.pb.Records("contacts") {
		if email, _ := r["email"].(string); edited < 10 && email < "c1990@example.com" {
			p.pb.Must("PATCH", "/api/collections/contacts/records/"+r["id"].(string), map[string]any{"name": "Edited in PocketBase"}, nil)
			edited++
		}
	}
	for i := range 5 {
		p.pb.Must("POST", "/api/collections/contacts/records", map[string]any{"email": fmt.Sprintf("pb%d@example.com", i), "name": "Made in PocketBase"}, nil)
	}
	if _, err := p.crm.Exec(`UPDATE contacts SET name = 'Edited in the CRM' WHERE id > 1990`); err != nil {
		t.Fatal(err)
	}
	s = p.mustRun("second run")
	if s.UpdatedSource != 10 || s.UpdatedTarget != 10 || s.CreatedSource != 5 {
		t.Errorf("second run %+v, want 10 updates each way and 5 creates in the CRM", s)
	}
	var n int
	p.crm.QueryRow(`SELECT count(*) FROM contacts WHERE name = 'Edited in PocketBase'`).Scan(&n)
	if n != 10 || p.crmCount() != 2005 {
		t.Errorf("CRM: %d edited in PocketBase, %d contacts", n, p.crmCount())
	}
	s = p.mustRun("third run")
	if s.Writes() != 0 {
		t.Errorf("a run without edits wrote: %+v", s)
	}
	if p.requests == 0 {
		t.Error("the connection counted no requests")
	}
}

// TestPocketBaseRateLimitedUserWithShortTokens: as a user under PocketBase's rate limiter (20
// requests per 2 s) with tokens that last 10 s, a run of 150 creates outlasts several tokens
// and completes without a failed record at the default concurrency.
func TestPocketBaseRateLimitedUserWithShortTokens(t *testing.T) {
	p := newProject(t, false, 10*time.Second)
	p.pb.RateLimit(20, 2*time.Second)
	p.crmRows(150, 0)
	start := time.Now()
	s := p.mustRun("rate-limited run")
	if took := time.Since(start); took < 12*time.Second {
		t.Fatalf("the run took %s: too short to outlast a 10 s token (is the rate limiter on?)", took)
	}
	if s.CreatedTarget != 150 || len(p.pb.Records("contacts")) != 150 {
		t.Errorf("created %d", s.CreatedTarget)
	}
}

// TestPocketBaseFieldErrorInDeadLetters: a company over PocketBase's 10 characters fails that
// record only, and its dead letter names the field and PocketBase's message.
func TestPocketBaseFieldErrorInDeadLetters(t *testing.T) {
	p := newProject(t, true, 0)
	p.crmRows(3, 0)
	p.crm.Exec(`UPDATE contacts SET company = 'Far Too Long Company' WHERE id = 2`)
	rep, err := p.run()
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Flows[0]; s.CreatedTarget != 2 || s.Failed != 1 {
		t.Errorf("stats %+v", s)
	}
	dl := p.deadLetters()
	want := "POST " + p.pb.URL + "/api/collections/contacts/records: 400 Bad Request: Failed to create record. (company: Must be no more than 10 character(s).)"
	if len(dl) != 1 || !strings.HasPrefix(dl[0], "source 2: ") || !strings.HasSuffix(dl[0], want) {
		t.Errorf("dead letters %q, want one ending in %q", dl, want)
	}
}

// TestPocketBaseQuoteInFilteredValue: a CRM email with a " finds its PocketBase partner by a
// quoted filter and is linked, not created twice, nor refused.
func TestPocketBaseQuoteInFilteredValue(t *testing.T) {
	p := newProject(t, true, 0)
	odd := `o"neil@example.com`
	p.pb.Must("POST", "/api/collections/contacts/records", map[string]any{"email": odd, "name": "O'Neil"}, nil)
	p.crm.Exec(`INSERT INTO contacts (email, name) VALUES (?, 'O''Neil'), ('plain@example.com', 'Plain')`, odd)
	s := p.mustRun("run")
	if s.Merged != 1 || s.CreatedTarget != 1 || len(p.pb.Records("contacts")) != 2 {
		t.Errorf("stats %+v, PocketBase holds %d", s, len(p.pb.Records("contacts")))
	}
}

// TestPocketBaseExpiredTokenChangesNothing: a run whose token PocketBase no longer takes (it
// answers as a guest: no contacts) stops at auth.check, and unlinks, creates and deletes
// nothing.
func TestPocketBaseExpiredTokenChangesNothing(t *testing.T) {
	p := newProject(t, false, time.Hour)
	p.crmRows(20, 0)
	p.mustRun("first run")
	p.edit("systems/pocketbase.yaml", `  login:                                   # logs in before the first request, again before the
    path: /api/collections/${PB_AUTH_COLLECTION:-users}/auth-with-password   # token's JWT exp,
    body: {identity: "${PB_EMAIL}", password: "${PB_PASSWORD}"}              # and once on 401/403
    token: token`, `  bearer: "${PB_TOKEN}"`)
	p.env["PB_TOKEN"] = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.expired-token-signature"
	rep, err := p.run()
	want := "auth.check.expect `totalItems > 0` does not hold: the API answers as someone other than the configured user (an expired or wrong token?), so the run stops before it reads or writes anything"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("run: %v\nwant it to contain %s", err, want)
	}
	if rep != nil && rep.Writes() != 0 {
		t.Errorf("writes %+v", rep.Flows[0])
	}
	if n := p.links(); n != 20 || p.crmCount() != 20 || len(p.pb.Records("contacts")) != 20 {
		t.Errorf("%d links, %d CRM contacts, %d PocketBase contacts, want 20 each", n, p.crmCount(), len(p.pb.Records("contacts")))
	}
}

// TestREADMEShowsTheSystemFile: the README's PocketBase system file is the one the tests run.
func TestREADMEShowsTheSystemFile(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(dir, "systems", "pocketbase.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n### PocketBase\n")
	_, block, _ := strings.Cut(section, "```yaml\n")
	block, _, _ = strings.Cut(block, "```\n")
	if block != string(file) {
		t.Errorf("the README's PocketBase system file differs from testdata/pocketbase/systems/pocketbase.yaml:\n%s", block)
	}
}
