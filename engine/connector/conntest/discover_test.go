package conntest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/connector/postgres"
	"github.com/dataflow-sync/dataflow/internal/cli"
	"github.com/dataflow-sync/dataflow/internal/mysqltest"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

// runCLI runs dataflow in-process and returns its exit status, stdout and stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errs bytes.Buffer
	code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errs)
	return code, out.String(), errs.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// discoverCase is a database to discover, what discover must write of it, and a check that
// what it wrote validates without the database.
type discoverCase struct {
	connector, dsn string
	extra          []string // discover's flags beyond the connection
	golden         string   // testdata/discover/<golden>: the files discover must write
	wantStderr     string
}

func checkDiscover(t *testing.T, c discoverCase) string {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"discover", "--system", "crm", "--connector", c.connector, "--dsn", c.dsn, "-o", dir}, c.extra...)
	code, out, errs := runCLI(args...)
	if code != 0 {
		t.Fatalf("discover: exit %d\n%s%s", code, out, errs)
	}
	if errs != c.wantStderr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errs, c.wantStderr)
	}
	if strings.Contains(out+errs, pgtest.Password) {
		t.Errorf("the password is in the output:\n%s%s", out, errs)
	}
	compareGolden(t, dir, filepath.Join("testdata", "discover", c.golden))
	// Validation with schema files needs no database: the DSN's variable is not even set.
	code, out, errs = runCLI("validate", filepath.Join(dir, "mappings"))
	if code != 0 || out != "valid: 1 file, 1 system, 0 dataflows, 0 flows\n" {
		t.Errorf("validate: exit %d\n%s%s", code, out, errs)
	}
	return dir
}

const pgDiscoverDDL = `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE customer (customer_id serial PRIMARY KEY, email varchar(120) NOT NULL UNIQUE, mood mood,
	balance numeric(12,2) NOT NULL DEFAULT 0, big bigint, tags text[], doc jsonb, photo bytea, uid uuid,
	born date, last_update timestamp NOT NULL DEFAULT now());
CREATE TABLE invoice (invoice_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer_id int NOT NULL REFERENCES customer, total numeric NOT NULL, issued_at timestamptz);
CREATE TABLE invoice_line (invoice_id bigint NOT NULL REFERENCES invoice, line int NOT NULL, qty int,
	PRIMARY KEY (invoice_id, line));`

func TestDiscoverPostgres(t *testing.T) {
	pg := pgtest.New(t)
	pg.Exec(t, pgDiscoverDDL)
	dir := checkDiscover(t, discoverCase{connector: "postgres", dsn: pg.DSN(), extra: []string{"--tables", "customer,invoice"},
		wantStderr: "dataflow discover: the dsn holds a password, which is not written: the system file reads the dsn from ${CRM_DSN}; set it before a run\n",
		golden:     "postgres"})
	t.Setenv("CRM_DSN", pg.DSN())
	checkLive(t, dir, "")
	pg.Exec(t, `ALTER TABLE customer RENAME COLUMN email TO contact`, `ALTER TYPE mood ADD VALUE 'meh'`,
		`ALTER TABLE customer ALTER COLUMN balance TYPE text`, `ALTER TABLE customer ALTER COLUMN contact TYPE varchar(200)`,
		`ALTER TABLE invoice ALTER COLUMN issued_at TYPE date`)
	checkLive(t, dir, `schemas/crm/customer.json:11:5: error: column "email" of table customer is not in the database: renamed or dropped since the schema was written; was it renamed to "contact"?
schemas/crm/customer.json:16:5: error: column "mood" of table customer has the values "sad", "ok", "happy" and "meh" in the database; the schema lists "sad", "ok" and "happy"
schemas/crm/customer.json:29:5: error: column "balance" of table customer is string in the database, the schema says number
schemas/crm/invoice.json:19:5: error: column "issued_at" of table invoice is string (date) in the database, the schema says string (date-time)
invalid: 4 errors in 3 files, 1 system, 0 dataflows, 0 flows
`)
	pg.Exec(t, `ALTER TABLE invoice RENAME TO invoices`)
	checkLive(t, dir, `mappings/systems/crm.yaml:18:12: error: table "invoice" of entity Invoice is not in the database; did you mean "invoices"?
schemas/crm/customer.json:11:5: error: column "email" of table customer is not in the database: renamed or dropped since the schema was written; was it renamed to "contact"?
schemas/crm/customer.json:16:5: error: column "mood" of table customer has the values "sad", "ok", "happy" and "meh" in the database; the schema lists "sad", "ok" and "happy"
schemas/crm/customer.json:29:5: error: column "balance" of table customer is string in the database, the schema says number
invalid: 4 errors in 2 files, 1 system, 0 dataflows, 0 flows
`)
}

const mysqlDiscoverDDL = "CREATE TABLE customer (customer_id int AUTO_INCREMENT PRIMARY KEY, email varchar(120) NOT NULL UNIQUE," +
	" mood enum('sad','ok','happy'), balance decimal(12,2) NOT NULL DEFAULT 0, big bigint unsigned, active tinyint(1) NOT NULL DEFAULT 1," +
	" doc json, photo blob, born date, modified datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;\n" +
	"CREATE TABLE invoice (invoice_id bigint AUTO_INCREMENT PRIMARY KEY, customer_id int NOT NULL, total decimal(10,2) NOT NULL," +
	" issued_at timestamp NULL, FOREIGN KEY (customer_id) REFERENCES customer (customer_id)) ENGINE=InnoDB;\n" +
	"CREATE TABLE invoice_line (invoice_id bigint NOT NULL, line int NOT NULL, qty int, PRIMARY KEY (invoice_id, line)," +
	" FOREIGN KEY (invoice_id) REFERENCES invoice (invoice_id)) ENGINE=InnoDB"

func TestDiscoverMySQL(t *testing.T) { mysqltest.Each(t, testDiscoverMySQL) }

func testDiscoverMySQL(t *testing.T, f mysqltest.Flavour) {
	my := mysqltest.NewOf(t, f)
	for _, stmt := range strings.Split(mysqlDiscoverDDL, ";\n") {
		my.Exec(t, stmt)
	}
	dir := checkDiscover(t, discoverCase{connector: "mysql", dsn: my.DSN(),
		wantStderr: "dataflow discover: the dsn holds a password, which is not written: the system file reads the dsn from ${CRM_DSN}; set it before a run\n",
		golden:     "mysql"})
	t.Setenv("CRM_DSN", my.DSN())
	checkLive(t, dir, "")
	my.Exec(t, "ALTER TABLE customer CHANGE email email_address varchar(60) NOT NULL",
		"ALTER TABLE customer MODIFY mood enum('sad','ok') NULL", "ALTER TABLE customer DROP COLUMN born",
		"ALTER TABLE invoice MODIFY total double NULL", "ALTER TABLE invoice MODIFY issued_at date NULL")
	checkLive(t, dir, `schemas/crm/customer.json:11:5: error: column "email" of table customer is not in the database: renamed or dropped since the schema was written; did you mean "email_address"?
schemas/crm/customer.json:16:5: error: column "mood" of table customer has the values "sad" and "ok" in the database; the schema lists "sad", "ok" and "happy"
schemas/crm/customer.json:59:5: error: column "born" of table customer is not in the database: renamed or dropped since the schema was written
schemas/crm/invoice.json:15:5: error: column "total" of table invoice may be NULL in the database; the schema does not allow null
schemas/crm/invoice.json:19:5: error: column "issued_at" of table invoice is string (date) in the database, the schema says string (date-time)
invalid: 5 errors in 3 files, 1 system, 0 dataflows, 0 flows
`)
}

// compareGolden compares the files under dir with those under golden (UPDATE_GOLDEN=1 writes
// them instead).
func compareGolden(t *testing.T, dir, golden string) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		os.RemoveAll(golden)
		if err := os.CopyFS(golden, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
	}
	var got, want []string
	for _, w := range []struct {
		root string
		into *[]string
	}{{dir, &got}, {golden, &want}} {
		err := filepath.WalkDir(w.root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(w.root, p)
				*w.into = append(*w.into, rel)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("discover wrote %v, want %v (UPDATE_GOLDEN=1 rewrites %s)", got, want, golden)
	}
	for _, rel := range got {
		if g, w := readFile(t, filepath.Join(dir, rel)), readFile(t, filepath.Join(golden, rel)); g != w {
			t.Errorf("%s:\n%s\nwant (%s):\n%s", rel, g, filepath.Join(golden, rel), w)
		}
	}
}

// checkLive runs validate --live on the mappings discover wrote and compares its diagnostics
// (their first lines) and summary with want; "" is a valid project.
func checkLive(t *testing.T, dir, want string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	defer os.Chdir(wd)
	code, out, errs := runCLI("validate", "--live", "mappings")
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "schemas/") || strings.HasPrefix(l, "mappings/") || strings.HasPrefix(l, "valid") || strings.HasPrefix(l, "invalid") {
			lines = append(lines, l)
		}
	}
	got := strings.Join(lines, "\n") + "\n"
	if want == "" {
		want = "valid: 1 file, 1 system, 0 dataflows, 0 flows\n"
	}
	if got != want || (code == 0) != strings.HasPrefix(want, "valid") {
		t.Errorf("validate --live: exit %d\n%s\nwant:\n%s\nfull output:\n%s%s", code, got, want, out, errs)
	}
	if strings.Contains(out+errs, pgtest.Password) {
		t.Errorf("the password is in the output:\n%s%s", out, errs)
	}
}

// --schema reads the tables of that schema; a table it references in another schema is named
// schema.table, and the system file keeps the schema.
func TestDiscoverPostgresSchema(t *testing.T) {
	pg := pgtest.New(t)
	pg.Exec(t, `CREATE SCHEMA sales`, `CREATE TABLE public.region (code text PRIMARY KEY)`,
		`CREATE TABLE sales.orders (id serial PRIMARY KEY, region text REFERENCES public.region, changed_at timestamptz)`,
		`CREATE TABLE sales.order_line (id serial PRIMARY KEY, order_id int NOT NULL REFERENCES sales.orders, sku varchar(20))`)
	dir := t.TempDir()
	code, out, errs := runCLI("discover", "--system", "sales", "--connector", "postgres", "--dsn", pg.DSN(), "--schema", "sales", "-o", dir)
	if code != 0 {
		t.Fatalf("discover: exit %d\n%s%s", code, out, errs)
	}
	want := `# yaml-language-server: $schema=../../schemas/dataflow.schema.json
# Written by dataflow discover from the live database: review the lines marked "review:".
system: sales
name: sales
connector: postgres
dsn: "${SALES_DSN}"
schema: sales
entities:
  OrderLine:
    table: order_line
    id: id
    schema: ../../schemas/sales/order-line.json
  Orders:
    table: orders
    id: id
    updated: changed_at  # review: guessed from the column's name and type (timestamp with time zone); it must change on every edit of a row
    schema: ../../schemas/sales/orders.json
    # review: child tables (their foreign keys reference this table). To read a child's rows as a list
    # property of this entity, uncomment it and add the property to the schema, an array of the rows.
    # lists:
    #   order_line: {table: order_line, key: order_id, id: id}
`
	if got := readFile(t, filepath.Join(dir, "mappings", "systems", "sales.yaml")); got != want {
		t.Errorf("system file:\n%s\nwant:\n%s", got, want)
	}
	tables, err := postgresDiscover(t, pg.DSN(), "sales")
	if err != nil {
		t.Fatal(err)
	}
	if fk := tables["orders"].ForeignKeys; len(fk) != 1 || fk[0].Ref != "public.region" || fk[0].Columns[0] != "region" || fk[0].RefColumns[0] != "code" {
		t.Errorf("orders' foreign keys: %+v, want region → public.region(code)", fk)
	}
	t.Setenv("SALES_DSN", pg.DSN())
	checkLive(t, dir, "")
}

// postgresDiscover discovers the tables of a schema through the connector, by name.
func postgresDiscover(t *testing.T, dsn, schemaName string) (map[string]connector.Table, error) {
	l, err := config.NewLoader(func(k string) (string, bool) { return dsn, k == "DSN" })
	if err != nil {
		return nil, err
	}
	p := &config.Project{}
	src := "system: s\nname: S\nconnector: postgres\ndsn: ${DSN}\nschema: " + schemaName + "\nentities:\n  X: {table: x, id: id}\n"
	if ds := l.AddFile(p, "s.yaml", []byte(src)); ds.HasErrors() {
		return nil, ds
	}
	tables, err := postgres.Driver{}.Discover(context.Background(), p.Systems[0], nil)
	out := map[string]connector.Table{}
	for _, tb := range tables {
		out[tb.Name] = tb
	}
	return out, err
}
