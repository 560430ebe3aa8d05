package conntest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/internal/cli"
	"github.com/dataflow-sync/dataflow/internal/mysqltest"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// The shop in SQLite is the source, the CRM in PostgreSQL the target (creates go to the
// target): products both ways (merged by SKU), orders with their lines. No entity has a schema
// file: both sides are described live.
const e2eDataflow = `dataflow: shop-to-crm
source: shop
target: crm
flows:
  - id: item-to-product
    source: Item
    target: Product
    sync: both
    create: always
    merge:
      - [{source: sku, target: sku}]
    conflict: newest
    delete: keep
    properties:
      - {source: sku, target: sku}
      - {source: title, target: name}
      - {source: price, target: price}
      - {source: stock, target: qty}
  - id: order-to-order
    source: Order
    target: Order
    sync: both
    create: always
    conflict: newest
    delete: keep
    properties:
      - {source: customer, target: customer}
      - source: lines
        target: lines
        properties:
          - {source: sku, target: sku}
          - {source: qty, target: qty}
`
const e2eCRM = `system: crm
name: CRM
connector: postgres
dsn: ${CRM_DSN}
entities:
  Product: {table: products, id: id, updated: updated_at}
  Order:
    table: orders
    id: id
    updated: updated_at
    lists:
      lines: {table: order_lines, key: order_id, id: id}
`

const e2eShop = `system: shop
name: Shop
connector: sqlite
path: shop.db
entities:
  Item: {table: items, id: id, updated: updated_at}
  Order:
    table: orders
    id: id
    updated: updated_at
    lists:
      lines: {table: order_lines, key: order_id, id: id}
`

func dataflow(t *testing.T, args ...string) string {
	t.Helper()
	var out, errs bytes.Buffer
	if code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errs); code != 0 {
		t.Fatalf("dataflow %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errs.String())
	}
	return out.String()
}

// crmServer is the CRM's database in an end-to-end test.
type crmServer struct {
	connector, dsn string
	exec           func(t testing.TB, stmts ...string)
	query          func(t *testing.T, q string) string
	ddl, seed      []string
	edit           []string // the CRM's edits of the second round
}

func rowsText(t *testing.T, rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) string {
	t.Helper()
	var lines []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func TestTwoWaySyncPostgresSQLite(t *testing.T) {
	pg := pgtest.New(t)
	twoWay(t, crmServer{
		connector: "postgres", dsn: pg.DSN(),
		exec: pg.Exec,
		query: func(t *testing.T, q string) string {
			c, err := pgx.Connect(context.Background(), pg.DSN())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			rows, err := c.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			return rowsText(t, rows)
		},
		ddl: []string{`CREATE TABLE products (id serial PRIMARY KEY, sku text UNIQUE NOT NULL, name varchar(40), price numeric(10,2), qty integer, updated_at timestamptz NOT NULL DEFAULT now())`,
			`CREATE TABLE orders (id serial PRIMARY KEY, customer text, updated_at timestamptz NOT NULL DEFAULT now())`,
			`CREATE TABLE order_lines (id serial PRIMARY KEY, order_id integer NOT NULL REFERENCES orders, sku text, qty integer)`},
		seed: []string{`INSERT INTO products (sku, name, price, qty, updated_at) VALUES ('COF', 'Coffee', 19.90, 0, '2024-01-01 00:00:00+00')`},
		edit: []string{`UPDATE products SET name = 'Green tea', updated_at = '2030-01-01 00:00:00+00' WHERE sku = 'TEA'`,
			`INSERT INTO order_lines (order_id, sku, qty) VALUES (1, 'MILK', 4)`, `UPDATE orders SET updated_at = '2030-01-01 00:00:00+00'`},
	})
}

func TestTwoWaySyncMySQLSQLite(t *testing.T) { mysqltest.Each(t, testTwoWaySyncMySQLSQLite) }

func testTwoWaySyncMySQLSQLite(t *testing.T, f mysqltest.Flavour) {
	my := mysqltest.NewOf(t, f)
	twoWay(t, crmServer{
		connector: "mysql", dsn: my.DSN(),
		exec: my.Exec,
		query: func(t *testing.T, q string) string {
			db, err := sql.Open("mysql", my.DSN())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rows, err := db.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			return rowsText(t, rows)
		},
		ddl: []string{"CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, sku VARCHAR(20) UNIQUE NOT NULL, name VARCHAR(40), price DECIMAL(10,2), qty INT, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))",
			"CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer TEXT, updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))",
			"CREATE TABLE order_lines (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT NOT NULL, sku TEXT, qty INT, FOREIGN KEY (order_id) REFERENCES orders (id))"},
		seed: []string{"SET time_zone = '+00:00'", "INSERT INTO products (sku, name, price, qty, updated_at) VALUES ('COF', 'Coffee', 19.90, 0, '2024-01-01 00:00:00')"},
		edit: []string{"SET time_zone = '+00:00'", "UPDATE products SET name = 'Green tea', updated_at = '2030-01-01 00:00:00' WHERE sku = 'TEA'",
			"INSERT INTO order_lines (order_id, sku, qty) VALUES (1, 'MILK', 4)", "UPDATE orders SET updated_at = '2030-01-01 00:00:00'"},
	})
}

// twoWay syncs a SQLite shop (the source) with a CRM on a server (the target, where creates
// go): products both ways, linked by SKU, and orders with their lines; edits on both sides;
// a quiet run after each round. No entity has a schema file: both sides are described live.
func twoWay(t *testing.T, crm crmServer) {
	crm.exec(t, append(crm.ddl, crm.seed...)...) // one product is in both already: it links by SKU
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("CRM_DSN", crm.dsn)
	os.MkdirAll("mappings/systems", 0o755)
	crmFile := strings.Replace(e2eCRM, "connector: postgres", "connector: "+crm.connector, 1)
	for name, src := range map[string]string{"mappings/shop-to-crm.yaml": e2eDataflow, "mappings/systems/crm.yaml": crmFile, "mappings/systems/shop.yaml": e2eShop} {
		if err := os.WriteFile(name, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shop, err := sql.Open("sqlite3", filepath.Join(dir, "shop.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	if _, err := shop.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT, title TEXT, price NUMERIC, stock INTEGER, updated_at TEXT);
		CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, updated_at TEXT);
		CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER, sku TEXT, qty INTEGER);
		INSERT INTO items (sku, title, price, stock, updated_at) VALUES ('TEA', 'Tea', 0.99, 3, '2024-01-01T00:00:00Z'), ('COF', 'Coffee', 19.9, 0, '2024-01-01T00:00:00Z');
		INSERT INTO orders (customer, updated_at) VALUES ('ALFKI', '2024-01-01T00:00:00Z');
		INSERT INTO order_lines (order_id, sku, qty) VALUES (1, 'TEA', 2), (1, 'COF', 1);`); err != nil {
		t.Fatal(err)
	}
	shopQuery := func(q string) string {
		t.Helper()
		rows, err := shop.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		return rowsText(t, rows)
	}
	products := `SELECT CONCAT(sku, '|', name, '|', price, '|', qty) FROM products ORDER BY sku`
	lines := `SELECT CONCAT(sku, 'x', qty) FROM order_lines ORDER BY id`

	dataflow(t, "validate")
	// A dry run writes nothing to the server.
	if out := dataflow(t, "run", "--dry-run"); !strings.Contains(out, "create in") {
		t.Fatalf("the dry run plans no create:\n%s", out)
	}
	if got := crm.query(t, products); got != "COF|Coffee|19.90|0" {
		t.Fatalf("the dry run wrote:\n%s", got)
	}
	dataflow(t, "run", "--until-stable")
	// Prices arrive exact (0.99, not 0.98999); COF is linked, not doubled.
	if got := crm.query(t, products); got != "COF|Coffee|19.90|0\nTEA|Tea|0.99|3" {
		t.Fatalf("crm products:\n%s", got)
	}
	if got := crm.query(t, `SELECT customer FROM orders`) + " " + crm.query(t, lines); got != "ALFKI TEAx2\nCOFx1" {
		t.Fatalf("crm orders:\n%s", got)
	}
	if out := dataflow(t, "run"); !strings.Contains(out, "0 writes, 0 records failed") {
		t.Fatalf("a second run wrote:\n%s", out)
	}

	// An edit on each side, a new item in the shop, a new line on the CRM's order.
	crm.exec(t, crm.edit...)
	if _, err := shop.Exec(`UPDATE items SET stock = 12, updated_at = '2030-01-02T00:00:00Z' WHERE sku = 'COF';
		INSERT INTO items (sku, title, price, stock, updated_at) VALUES ('MILK', 'Milk', 1.25, 5, '2030-01-02T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	dataflow(t, "run", "--until-stable")
	if got := crm.query(t, products); got != "COF|Coffee|19.90|12\nMILK|Milk|1.25|5\nTEA|Green tea|0.99|3" {
		t.Fatalf("crm products:\n%s", got)
	}
	if got := shopQuery(`SELECT title FROM items WHERE sku = 'TEA'`); got != "Green tea" {
		t.Fatalf("shop TEA title: %s", got)
	}
	if got := shopQuery(`SELECT sku || 'x' || qty FROM order_lines ORDER BY id`); got != "TEAx2\nCOFx1\nMILKx4" {
		t.Fatalf("shop lines: %s", got)
	}
	if out := dataflow(t, "run"); !strings.Contains(out, "0 writes, 0 records failed") {
		t.Fatalf("a further run wrote:\n%s", out)
	}
}

// A run whose PostgreSQL is down at start exits 2 with an error naming host and port, and
// neither the password nor anything written.
func TestRunWithServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	const canary = "Canary-Pw-7f3a9"
	t.Setenv("CRM_DSN", fmt.Sprintf("postgres://crm:%s@127.0.0.1:%d/crm", canary, port))
	os.MkdirAll("mappings/systems", 0o755)
	files := map[string]string{"mappings/shop-to-crm.yaml": e2eDataflow, "mappings/systems/crm.yaml": e2eCRM, "mappings/systems/shop.yaml": e2eShop}
	for name, src := range files {
		if err := os.WriteFile(name, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out, errs bytes.Buffer
	code := cli.Run(context.Background(), []string{"run"}, strings.NewReader(""), &out, &errs)
	all := out.String() + errs.String()
	if strings.Contains(all, canary) {
		t.Fatalf("the password is in the output:\n%s", all)
	}
	if code != 2 || !strings.Contains(all, fmt.Sprintf("cannot connect to PostgreSQL at 127.0.0.1:%d (database crm, user crm)", port)) {
		t.Fatalf("exit %d:\n%s", code, all)
	}
	if !strings.Contains(all, "mappings/systems/crm.yaml:4:6: error: cannot describe the entities without a schema file: cannot connect") {
		t.Fatalf("the connection failure is not reported once, at dsn:\n%s", all)
	}

	// With schema files validation needs no database: the run itself fails to open it.
	crm := strings.Replace(e2eCRM, "updated: updated_at}", "updated: updated_at, schema: product.json}", 1)
	crm = strings.Replace(crm, "    updated: updated_at\n    lists:", "    updated: updated_at\n    schema: order.json\n    lists:", 1)
	files = map[string]string{
		"mappings/systems/crm.yaml": crm,
		"mappings/systems/product.json": `{"type": "object", "properties": {"id": {"type": "integer"}, "sku": {"type": "string"}, "name": {"type": "string"},
			"price": {"type": "number"}, "qty": {"type": "integer"}, "updated_at": {"type": "string"}}}`,
		"mappings/systems/order.json": `{"type": "object", "properties": {"id": {"type": "integer"}, "customer": {"type": "string"}, "updated_at": {"type": "string"},
			"lines": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}, "order_id": {"type": "integer"}, "sku": {"type": "string"}, "qty": {"type": "integer"}}}}}}`,
	}
	for name, src := range files {
		if err := os.WriteFile(name, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shop, err := sql.Open("sqlite3", filepath.Join(dir, "shop.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	if _, err := shop.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT, title TEXT, price NUMERIC, stock INTEGER, updated_at TEXT);
		CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, updated_at TEXT);
		CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER, sku TEXT, qty INTEGER);`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errs.Reset()
	code = cli.Run(context.Background(), []string{"run"}, strings.NewReader(""), &out, &errs)
	all = out.String() + errs.String()
	want := fmt.Sprintf("dataflow run: CRM: cannot connect to PostgreSQL at 127.0.0.1:%d (database crm, user crm): dial error: dial tcp 127.0.0.1:%d: connect: connection refused\n", port, port)
	if code != 2 || all != want || strings.Contains(all, canary) {
		t.Fatalf("exit %d:\n%s\nwant exit 2:\n%s", code, all, want)
	}
	// (The command line creates the link state file before it opens the systems: empty.)
}
