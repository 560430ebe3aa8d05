package conntest

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// root is the repository root, from this package's directory.
const root = "../../.."

// copyDir copies a directory of the repository (at repo) into the current directory.
func copyDir(t *testing.T, repo, rel string) {
	t.Helper()
	src := filepath.Join(repo, rel)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		to := filepath.Join(rel, strings.TrimPrefix(path, src))
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The seed dataflow runs with the Custom CRM in PostgreSQL (DATAFLOW_ENV=postgres,local): the
// shipped mappings, the CRM loaded from testdata/postgres/custom-crm.sql, the local web shop.
func TestSeedDataflowOnPostgres(t *testing.T) {
	pg := pgtest.New(t)
	script, err := os.ReadFile(filepath.Join(root, "testdata/postgres/custom-crm.sql"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PgConn().Exec(ctx, string(script)).ReadAll(); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	repo, _ := filepath.Abs(root)
	t.Chdir(t.TempDir())
	for _, d := range []string{"mappings", "schemas"} {
		copyDir(t, repo, d)
	}
	os.MkdirAll("testdata/local", 0o755)
	b, err := os.ReadFile(filepath.Join(repo, "testdata/local/squarespace.sql"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile("testdata/local/squarespace.sql", b, 0o644)
	t.Setenv("DATAFLOW_ENV", "postgres,local")
	t.Setenv("CRM_DSN", pg.DSN())

	dataflow(t, "validate")
	out := dataflow(t, "run", "--until-stable")
	// As with the SQLite CRM (testdata/script/run.txtar): 11 products and 7 orders created in the
	// shop, the inventory linked, and a last run that writes nothing.
	for _, want := range []string{
		`(?m)^ +product-to-sesamproducts +\d+ +11 +0 +0 +0 +0 +\d+ +0 +0 +0$`,
		`(?m)^ +order-to-order +\d+ +7 +0 +0 +0 +0 +\d+ +1 +0 +0$`,
		`(?m)^ +product-to-inventory +\d+ +0 +11 +10 +11 +10 +\d+ +2 +0 +0$`,
		`0 writes, 0 records failed\n$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the run's summary does not match %s:\n%s", want, out)
		}
	}
	shop, err := sql.Open("sqlite3", "testdata/local/squarespace.db")
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	var n int
	if err := shop.QueryRow(`SELECT count(*) FROM products`).Scan(&n); err != nil || n != 11 {
		t.Fatalf("%d products in the shop (%v)", n, err)
	}
	var price string
	if err := shop.QueryRow(`SELECT json_extract(variants, '$[0].pricing.basePrice.value') FROM products WHERE json_extract(variants, '$[0].sku') = 'NR-ESP-250'`).Scan(&price); err != nil || price != "8.90" {
		t.Fatalf("price %q (%v)", price, err)
	}
	c, err = pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var avail string
	if err := c.QueryRow(ctx, `SELECT webshop_availability FROM products WHERE sku = 'NR-ESP-250'`).Scan(&avail); err != nil || avail != "in stock" {
		t.Fatalf("availability %q (%v)", avail, err)
	}
	if out := dataflow(t, "run"); !strings.Contains(out, "0 writes, 0 records failed") {
		t.Fatalf("a further run wrote:\n%s", out)
	}
}
