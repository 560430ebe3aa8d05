package sync_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// e2eLoadNorthwind builds the Northwind database at path from testdata/northwind/northwind.sql.
func e2eLoadNorthwind(t *testing.T, path string) {
	t.Helper()
	src, err := os.ReadFile("../../testdata/northwind/northwind.sql")
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
		t.Fatalf("northwind.sql: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// Northwind's 77 products, 93 customers and 830 orders with their 2155 lines sync into a
// store whose tables the connector creates from the entity schemas (create_tables): orders
// refer to their customers and lines to their products through the links, names keep their
// letters, NULL stays NULL, prices arrive exactly, and a second run writes nothing.
func TestE2ENorthwind(t *testing.T) {
	if testing.Short() {
		t.Skip("Northwind: a few seconds")
	}
	dir := t.TempDir()
	nw := filepath.Join(dir, "northwind.db")
	e2eLoadNorthwind(t, nw)
	file, err := filepath.Abs(filepath.Join(e2eFixtures, "northwind", "northwind-to-store.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := e2eLoad(t, dir, map[string]string{"NORTHWIND_DB": nw, "STORE_DB": filepath.Join(dir, "store.db")}, file)

	start := time.Now()
	rep := p.sync()
	t.Logf("first run: %v", time.Since(start))
	if rep.Failed() != 0 {
		t.Fatalf("%d records failed:\n%s", rep.Failed(), e2eStats(rep))
	}
	for flow, want := range map[string]int{"products": 77, "customers": 93, "orders": 830} {
		if got := e2eFlow(t, rep, flow).CreatedTarget; got != want {
			t.Errorf("%s: created %d, want %d", flow, got, want)
		}
	}
	for table, want := range map[string]int{"products": 77, "customers": 93, "orders": 830, "order_lines": 2155} {
		if got := p.count("store", table); got != want {
			t.Errorf("the store has %d %s, want %d", got, table, want)
		}
	}

	// Letters beyond ASCII arrive intact.
	for _, c := range []struct{ query, want string }{
		{"SELECT name FROM products WHERE northwind_id = 24", "Guaraná Fantástica"},
		{"SELECT name FROM products WHERE northwind_id = 77", "Original Frankfurter grüne Soße"},
		{"SELECT company FROM customers WHERE northwind_id = 'BERGS'", "Berglunds snabbköp"},
		{"SELECT city FROM customers WHERE northwind_id = 'MEREP'", "Montréal"},
	} {
		if got := p.text("store", c.query); got != c.want {
			t.Errorf("%s = %q, want %q", c.query, got, c.want)
		}
	}
	// NULL stays NULL (and is not turned into "").
	same := func(what string, src, tgt []string) {
		t.Helper()
		if !reflect.DeepEqual(src, tgt) {
			n := 0
			for i := range src {
				if i < len(tgt) && src[i] != tgt[i] {
					if n < 5 {
						t.Errorf("%s: Northwind %q, store %q", what, src[i], tgt[i])
					}
					n++
				}
			}
			t.Errorf("%s: %d of %d rows differ (store has %d)", what, n, len(src), len(tgt))
		}
	}
	same("customers",
		p.rows("northwind", "SELECT CustomerID, CompanyName, ContactName, City, Region, PostalCode, Country, Fax FROM Customers ORDER BY CustomerID"),
		p.rows("store", "SELECT northwind_id, company, contact, city, region, postal_code, country, fax FROM customers ORDER BY northwind_id"))
	if got := p.count("store", "customers", "region IS NULL"); got != 62 {
		t.Errorf("%d customers without a region in the store, want Northwind's 62", got)
	}
	if got := p.count("store", "customers", "region = '' OR fax = ''"); got != 0 {
		t.Errorf("%d customers got an empty region or fax for NULL", got)
	}
	// Prices are exact: 2.5 is 2.5 and 21.35 is 21.35, not a float's neighbour.
	if got := p.text("store", "SELECT price FROM products WHERE northwind_id = 33"); got != "2.5" {
		t.Errorf("price of Geitost = %s, want 2.5", got)
	}
	if got := p.text("store", "SELECT CAST(price AS TEXT) FROM products WHERE northwind_id = 5"); got != "21.35" {
		t.Errorf("price of Chef Anton's Gumbo Mix = %s, want 21.35", got)
	}
	same("products",
		p.rows("northwind", "SELECT ProductID, ProductName, QuantityPerUnit, UnitPrice, UnitsInStock, CASE Discontinued WHEN '1' THEN 'true' ELSE 'false' END FROM Products ORDER BY ProductID"),
		p.rows("store", "SELECT northwind_id, name, packaging, price, stock, discontinued FROM products ORDER BY northwind_id"))
	// Orders refer to the store's copies of their customers, lines to those of their products.
	same("orders",
		p.rows("northwind", "SELECT OrderID, CustomerID, +OrderDate, Freight, ShipRegion FROM Orders ORDER BY OrderID"),
		p.rows("store", `SELECT o.number, c.northwind_id, o.ordered_on, o.freight, o.ship_region
			FROM orders o LEFT JOIN customers c ON c.id = o.customer_id ORDER BY o.number`))
	same("order lines",
		p.rows("northwind", `SELECT OrderID, ProductID, UnitPrice, Quantity, Discount FROM "Order Details" ORDER BY OrderID, ProductID`),
		p.rows("store", `SELECT o.number, p.northwind_id, l.unit_price, l.quantity, l.discount
			FROM order_lines l JOIN orders o ON o.id = l.order_id LEFT JOIN products p ON p.id = l.product_id
			ORDER BY o.number, p.northwind_id`))

	start = time.Now()
	rep = p.quiet("second run")
	t.Logf("second run: %v", time.Since(start))
	for _, f := range rep.Flows {
		if n := p.links(f.Flow); f.Unchanged != n {
			t.Errorf("second run, %s: %d unchanged, want all %d links", f.Flow, f.Unchanged, n)
		}
	}
}
