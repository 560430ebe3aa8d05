package docs_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/docs"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3", for the Northwind database
)

// ---------------------------------------------------------------------------------------------
// The golden documents in testdata/golden: those of the shipped mappings, and those of the
// Northwind fixture, whose entities are typed from a Northwind database built here. The CLI
// scripts check that `dataflow docs` writes exactly these files; this test pins them to the
// engine and, with UPDATE_GOLDEN=1, rewrites them:
//
//	UPDATE_GOLDEN=1 go test ./engine/docs/ -run TestGolden
//
// Read every change critically against the README's "The documents" before committing: a golden
// file is a specification of the documents, not a recording of whatever the renderer prints.

const goldenDir = "../../testdata/golden"

// goldenDocs builds the documents of every dataflow that has golden files, by file name
// without extension.
func goldenDocs(t *testing.T) map[string]*docs.Document {
	t.Helper()
	db := filepath.Join(t.TempDir(), "northwind.db")
	loadSQL(t, db, "../../testdata/northwind/northwind.sql")
	env := func(name string) (string, bool) {
		if name == "NORTHWIND_DB" {
			return db, true
		}
		return "", false
	}
	dataflows := []*mapping.Dataflow{
		loadDataflow(t, "../../mappings"),
		loadDataflowEnv(t, env, "../../testdata/northwind/northwind-to-squarespace.yaml",
			"../../testdata/northwind/northwind.yaml", "../../mappings/systems/squarespace-local.yaml"),
	}
	out := map[string]*docs.Document{}
	for _, df := range dataflows {
		built := docs.Build(df, stamp)
		if len(built) != 2 {
			t.Fatalf("%s: %d documents, want 2 (both directions)", df.ID(), len(built))
		}
		for _, d := range built {
			out[d.Name] = d
		}
	}
	return out
}

// loadSQL builds a SQLite database from a SQL script.
func loadSQL(t *testing.T, db, script string) {
	t.Helper()
	text, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(string(text)); err != nil {
		tx.Rollback()
		t.Fatalf("%s: %v", script, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestGolden(t *testing.T) {
	renderers := []struct {
		ext    string
		render func(*docs.Document) string
	}{{".rst", docs.RST}, {".md", docs.Markdown}}
	built := goldenDocs(t)
	names := make([]string, 0, len(built))
	for n := range built {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, r := range renderers {
			name := filepath.Join(goldenDir, n+r.ext)
			got := r.render(built[n])
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
			}
			checkText(t, name, got, string(want))
		}
	}
	// No stale golden file: each belongs to a document built above.
	files, err := filepath.Glob(filepath.Join(goldenDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if built[strings.TrimSuffix(base, filepath.Ext(base))] == nil {
			t.Errorf("%s is no document of a golden dataflow; remove it", f)
		}
	}
}
