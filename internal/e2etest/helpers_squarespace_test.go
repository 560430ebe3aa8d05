package e2etest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/internal/cli"
	"github.com/dataflow-sync/dataflow/internal/squarespacetest"
	_ "github.com/mattn/go-sqlite3"
)

// ssCanary is the API key of the Squarespace tests: it must never appear in output, the link
// state or the dead letters.
const ssCanary = "ssk-CANARY-7f3a9c2e1b4d6f80"

// ssProject is a copy of the seed dataflow in a temporary directory, run against a
// Squarespace emulator with DATAFLOW_ENV=live: its files, its CRM database and its link state.
type ssProject struct {
	t     *testing.T
	dir   string
	shop  *squarespacetest.Server
	crm   string // the Custom CRM database file
	state string // the link state file
}

// ssRepoRoot is the repository's root, from this package's directory.
func ssRepoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// ssStorePage is the id of the emulated site's store page, which the system file reads from
// SQUARESPACE_STORE_PAGE_ID (not the emulator's default, so that a hard-coded id would fail).
const ssStorePage = "64b7c2d9e1f0a3b4c5d6e7f8"

// newSSProject copies the seed dataflow's files as shipped (the dataflow, the system files, the
// entity schemas, the CRM's seed script) to a temporary directory, starts the emulator, points
// the environment at it and makes the directory the current one.
func newSSProject(t *testing.T, opts squarespacetest.Options) *ssProject {
	t.Helper()
	root := ssRepoRoot(t)
	dir := t.TempDir()
	for _, f := range []string{
		"mappings/custom-crm-to-squarespace.yaml",
		"mappings/systems/custom-crm.yaml",
		"mappings/systems/squarespace.yaml",
		"mappings/systems/squarespace-local.yaml",
		"schemas/custom-crm/product.json",
		"schemas/custom-crm/customer.json",
		"schemas/custom-crm/order.json",
		"schemas/squarespace/inventory.json",
		"schemas/squarespace/order.json",
		"schemas/squarespace/sesamproducts.json",
		"testdata/local/custom-crm.sql",
	} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts.APIKey = ssCanary
	opts.StorePageID = ssStorePage
	shop := squarespacetest.New(opts)
	t.Cleanup(shop.Close)
	p := &ssProject{t: t, dir: dir, shop: shop, crm: filepath.Join(dir, "crm.db"), state: filepath.Join(dir, ".dataflow", "state.db")}
	t.Setenv("DATAFLOW_ENV", "live")
	t.Setenv("SQUARESPACE_URL", shop.URL)
	t.Setenv("SQUARESPACE_API_KEY", ssCanary)
	t.Setenv("SQUARESPACE_STORE_PAGE_ID", ssStorePage)
	t.Setenv("CRM_DB", p.crm)
	t.Chdir(dir)
	return p
}

// ssRun is the outcome of one dataflow command.
type ssRun struct {
	code           int
	stdout, stderr string
}

// run runs a dataflow command in the project and checks that the key appears in neither
// stream.
func (p *ssProject) run(args ...string) ssRun {
	p.t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	r := ssRun{code: code, stdout: out.String(), stderr: errb.String()}
	if strings.Contains(r.stdout, ssCanary) || strings.Contains(r.stderr, ssCanary) {
		p.t.Fatalf("dataflow %s printed the API key:\n%s\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	}
	return r
}

// sync runs the dataflow once (or until stable) with the JSON report and returns the report.
func (p *ssProject) sync(untilStable bool) (ssRun, []ssReport) {
	p.t.Helper()
	args := []string{"run", "--json", "--state", p.state}
	if untilStable {
		args = append(args, "--until-stable")
	}
	r := p.run(args...)
	var reps []ssReport
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var rep ssReport
		if err := dec.Decode(&rep); err != nil {
			p.t.Fatalf("run --json printed what is not a report: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
		}
		reps = append(reps, rep)
	}
	return r, reps
}

// ssReport is what run --json prints per run, as far as these tests read it.
type ssReport struct {
	Flows []struct {
		Flow          string `json:"flow"`
		ReadSource    int    `json:"read_source"`
		ReadTarget    int    `json:"read_target"`
		CreatedTarget int    `json:"created_target"`
		CreatedSource int    `json:"created_source"`
		Merged        int    `json:"merged"`
		UpdatedTarget int    `json:"updated_target"`
		UpdatedSource int    `json:"updated_source"`
		Conflicts     int    `json:"conflicts"`
		Unchanged     int    `json:"unchanged"`
		Waiting       int    `json:"waiting"`
		Failed        int    `json:"failed"`
		Deleted       int    `json:"deleted"`
	} `json:"flows"`
}

// writes is the number of records a run wrote, both ways.
func (r ssReport) writes() int {
	n := 0
	for _, f := range r.Flows {
		n += f.CreatedTarget + f.CreatedSource + f.UpdatedTarget + f.UpdatedSource + f.Deleted
	}
	return n
}

// crmDB opens the project's CRM database.
func (p *ssProject) crmDB() *sql.DB {
	p.t.Helper()
	db, err := sql.Open("sqlite3", p.crm)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { db.Close() })
	return db
}

// query runs a query on the CRM and returns its rows as text, one line per row, columns
// separated by " | ".
func (p *ssProject) query(q string, args ...any) string {
	p.t.Helper()
	db := p.crmDB()
	rows, err := db.Query(q, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			p.t.Fatal(err)
		}
		var cells []string
		for _, v := range vals {
			switch x := v.(type) {
			case nil:
				cells = append(cells, "NULL")
			case []byte:
				cells = append(cells, string(x))
			case string:
				cells = append(cells, x)
			default:
				b, _ := json.Marshal(x)
				cells = append(cells, strings.Trim(string(b), `"`))
			}
		}
		lines = append(lines, strings.Join(cells, " | "))
	}
	if err := rows.Err(); err != nil {
		p.t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// exec changes the CRM as its application would.
func (p *ssProject) exec(q string, args ...any) {
	p.t.Helper()
	if _, err := p.crmDB().Exec(q, args...); err != nil {
		p.t.Fatal(err)
	}
}

// checkNoSecret checks that the key is in no file of the project directory (the link state
// and its WAL included).
func (p *ssProject) checkNoSecret() {
	p.t.Helper()
	err := filepath.WalkDir(p.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(ssCanary)) {
			p.t.Errorf("%s holds the API key", path)
		}
		return nil
	})
	if err != nil {
		p.t.Fatal(err)
	}
}

// openState opens the project's link state for reading.
func (p *ssProject) openState() *state.SQLite {
	p.t.Helper()
	st, err := state.Open(context.Background(), p.state, state.ReadOnly)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { st.Close() })
	return st
}

// deadLetters lists the dead letters as "flow side id: reason", sorted, with the emulator's
// address written $SHOP.
func (p *ssProject) deadLetters() []string {
	p.t.Helper()
	dead, err := p.openState().DeadLetters(context.Background(), "")
	if err != nil {
		p.t.Fatal(err)
	}
	out := []string{}
	for _, d := range dead {
		if strings.Contains(d.Reason, ssCanary) {
			p.t.Errorf("dead letter %s %s holds the API key", d.Flow, d.RecordID)
		}
		out = append(out, d.Flow+" "+d.Side+" "+d.RecordID+": "+strings.ReplaceAll(d.Reason, p.shop.URL, "$SHOP"))
	}
	sort.Strings(out)
	return out
}

// waiting lists the waiting records as "flow side id", sorted.
func (p *ssProject) waiting() []string {
	p.t.Helper()
	ws, err := p.openState().Waiting(context.Background(), "")
	if err != nil {
		p.t.Fatal(err)
	}
	out := []string{}
	for _, w := range ws {
		out = append(out, w.Flow+" "+w.Side+" "+w.RecordID)
	}
	sort.Strings(out)
	return out
}

// linked returns the target id linked to a source record by a flow ("" when none).
func (p *ssProject) linked(flow, sourceID string) string {
	p.t.Helper()
	links, err := p.openState().LinksBySource(context.Background(), flow, []string{sourceID})
	if err != nil {
		p.t.Fatal(err)
	}
	if l, ok := links[sourceID]; ok {
		return l.TargetID
	}
	return ""
}
