package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/state"
	"github.com/dataflow-sync/dataflow/engine/state/pgstate"
	"github.com/dataflow-sync/dataflow/internal/cli"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

// TestStateInPostgres: --state postgres://... works for run and every command that reads or
// writes the state, a second writer is refused while one holds it, and the password is in no
// output.
func TestStateInPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	name, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dsn := srv.AdminDSN(name)
	t.Chdir(seedDir(t))
	dataflow := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Run(ctx, args, strings.NewReader(""), &stdout, &stderr)
		if strings.Contains(stdout.String()+stderr.String(), pgtest.Password) {
			t.Errorf("dataflow %s shows the password:\n%s%s", args[0], stdout.String(), stderr.String())
		}
		return code, stdout.String(), stderr.String()
	}

	if code, _, stderr := dataflow("status", "--state", dsn); code != 2 || stderr != "dataflow status: the link state "+pgstate.Redact(dsn)+" is empty: no run has written it yet\n" {
		t.Errorf("status before a run: %d %q", code, stderr)
	}
	// A dry run before any run plans against an empty state and creates nothing: the state
	// is still empty after it. (A dry run does not build the local systems from their
	// scripts either: the test builds them.)
	for _, name := range []string{"custom-crm", "squarespace"} {
		script, err := os.ReadFile(filepath.Join("testdata/local", name+".sql"))
		if err != nil {
			t.Fatal(err)
		}
		runSQL(t, filepath.Join("testdata/local", name+".db"), string(script))
	}
	if code, stdout, stderr := dataflow("run", "--dry-run", "--state", dsn); code != 0 || !strings.Contains(stdout, "product-to-sesamproducts: create in target from 1: ") {
		t.Errorf("dry run before a run: %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := dataflow("status", "--state", dsn); code != 2 || !strings.HasSuffix(stderr, " is empty: no run has written it yet\n") {
		t.Errorf("status after the dry run: %d %q", code, stderr)
	}
	if code, stdout, stderr := dataflow("run", "--state", dsn); code != 0 {
		t.Fatalf("run: %d\n%s%s", code, stdout, stderr)
	}
	st, err := pgstate.Open(ctx, dsn, pgstate.Options{Mode: state.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	links, err := st.CountLinks(ctx, "")
	st.Close()
	if err != nil || links == 0 {
		t.Fatalf("the run left %d links in PostgreSQL (%v)", links, err)
	}
	// The seed takes two runs to settle, as on SQLite; the third writes nothing: the links,
	// bases and watermarks read back from PostgreSQL are the ones written.
	dataflow("run", "--state", dsn)
	code, stdout, stderr := dataflow("run", "--state", dsn)
	if code != 0 || !strings.HasSuffix(stdout, "\n0 writes, 0 records failed\n") {
		t.Errorf("third run: %d\n%s%s", code, stdout, stderr)
	}
	for _, args := range [][]string{
		{"status", "--state", dsn},
		{"links", "--state", dsn},
		{"deadletters", "--state", dsn},
		{"watermarks", "--state", dsn},
		{"pending", "--state", dsn},
		{"run", "--dry-run", "--state", dsn},
	} {
		if code, stdout, stderr := dataflow(args...); code != 0 {
			t.Errorf("%s: %d\n%s%s", args, code, stdout, stderr)
		}
	}
	if _, stdout, _ := dataflow("links", "--state", dsn); strings.Count(stdout, "\n") < links {
		t.Errorf("links lists fewer lines than the %d links:\n%s", links, stdout)
	}

	// A run holds the state: another is refused, and says so without the password.
	held, err := pgstate.Open(ctx, dsn, pgstate.Options{Mode: state.ReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr = dataflow("run", "--state", dsn)
	held.Close()
	if want := "dataflow run: the link state " + pgstate.Redact(dsn) + " is in use by another run or dataflow serve; wait for it to finish\n"; code != 2 || stderr != want {
		t.Errorf("a run beside another: %d %q\nwant %q", code, stderr, want)
	}
	if code, stdout, stderr := dataflow("run", "--state", dsn); code != 0 {
		t.Errorf("a run after the other closed: %d\n%s%s", code, stdout, stderr)
	}
}
