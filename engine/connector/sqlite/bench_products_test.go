package sqlite

// Benchmarks of the tables of bench/ (issue 6): a source of products with an id and 12
// properties (Scan), and a target of items with text ids the connector makes (Create, and Get
// by id as a run with nothing changed reads partners).
//
//	go test -run '^$' -bench 'Products|Items' -benchmem ./engine/connector/sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/schema"
)

const productsYAML = `system: erp
name: ERP
connector: sqlite
path: ${DB}
entities:
  Product: {table: products, id: id, updated: updated_at}
  Item: {table: items, id: id, updated: modified_at}
`

// benchTables returns the statements of bench/testdata's erp.sql and shop.sql that make the
// products and the items tables (both files also make an orders table, so they cannot both
// be run into one database whole).
func benchTables(t testing.TB) string {
	t.Helper()
	var out []string
	for file, table := range map[string]string{"erp.sql": "products", "shop.sql": "items"} {
		script, err := os.ReadFile(filepath.Join(root, "bench", "testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range strings.Split(string(script), ";") {
			if strings.Contains(stmt, " "+table+" (") {
				out = append(out, stmt)
			}
		}
	}
	if len(out) != 4 {
		t.Fatalf("%d statements make the products and items tables in bench/testdata, want 4 (tables and indexes)", len(out))
	}
	return strings.Join(out, ";\n")
}

// generateProducts creates a database of n products and n items (ids "item-000001", ...),
// the same for the same n: a NULL in some optional columns, prices with cents.
func generateProducts(t testing.TB, n int) *conn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "erp.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err = db.Exec(benchTables(t)); err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?1)
INSERT INTO products (id, sku, name, description, category, brand, ean, qty, price, cost, weight_kg, active, updated_at)
SELECT i, printf('SKU-%06d', i), printf('Product nº %d', i),
       CASE WHEN i % 5 = 0 THEN NULL ELSE printf('A product of the benchmark, number %d, with a longer text', i) END,
       printf('Category %d', i % 40), printf('Brand %d', i % 120),
       CASE WHEN i % 7 = 0 THEN NULL ELSE printf('40%011d', i) END,
       i % 300, round((i % 5000) * 0.01 + 0.99, 2), round((i % 3000) * 0.01 + 0.49, 2),
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 900) * 0.01 + 0.1 END, i % 9 != 0,
       strftime('%Y-%m-%dT%H:%M:%SZ', '2024-01-01', printf('+%d seconds', (i * 7919) % ?1))
FROM seq`, n)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?1)
INSERT INTO items (id, sku, title, description, category, brand, barcode, stock, weight_kg, visible, price, margin, handle)
SELECT printf('item-%06d', i), printf('SKU-%06d', i), printf('Product nº %d', i),
       printf('A product of the benchmark, number %d, with a longer text', i),
       printf('Category %d', i % 40), printf('Brand %d', i % 120), printf('40%011d', i), printf('%d', i % 300),
       (i % 900) * 0.01 + 0.1, i % 9 != 0, printf('%.2f EUR', (i % 5000) * 0.01 + 0.99), (i % 2000) * 0.01 + 0.5,
       printf('brand-%d-sku-%06d', i % 120, i)
FROM seq`, n)
	if err != nil {
		t.Fatal(err)
	}
	sys := loadSystem(t, productsYAML, map[string]string{"DB": path})
	schemas := map[string]*schema.Entity{}
	for _, e := range sys.Entities {
		s, err := Driver{}.Describe(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		schemas[e.Name.Value] = s
	}
	return mustOpen(t, sys, schemas)
}

// BenchmarkScanProducts scans 20,000 products of 13 columns.
func BenchmarkScanProducts(b *testing.B) {
	const n = 20_000
	benchScan(b, generateProducts(b, n), "Product", n)
}

// BenchmarkGetItems reads 20,000 items of 14 columns by text id, 1,000 per Get.
func BenchmarkGetItems(b *testing.B) {
	const n, batch = 20_000, 1000
	c := generateProducts(b, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("item-%06d", i+1)
	}
	for b.Loop() {
		for start := 0; start < n; start += batch {
			got, err := c.Get(ctx, "Item", ids[start:start+batch])
			if err != nil || len(got) != batch {
				b.Fatal(err, len(got))
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkCreateItems creates 10,000 items in batches of 1,000, as a full sync writes the
// target: 12 columns given, the text id made by the connector, modified_at by SQLite.
func BenchmarkCreateItems(b *testing.B) { benchmarkCreateItems(b, context.Background()) }

// BenchmarkCreateItemsCancellable is BenchmarkCreateItems with a context that can be
// cancelled, as a run of the command line has.
func BenchmarkCreateItemsCancellable(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	benchmarkCreateItems(b, ctx)
}

func benchmarkCreateItems(b *testing.B, ctx context.Context) {
	benchCreate(b, ctx, generateProducts(b, 0), "Item", itemRecord)
}

// itemRecord is the nth item a benchmark creates.
func itemRecord(next int) map[string]any {
	return map[string]any{
		"sku": fmt.Sprintf("SKU-%08d", next), "title": fmt.Sprintf("Product nº %d", next),
		"description": "A product of the benchmark with a longer text", "category": "Category 7",
		"brand": "Brand 12", "barcode": fmt.Sprintf("40%011d", next), "stock": "42",
		"weight_kg": 1.25, "visible": true, "price": "19.90 EUR", "margin": 7.5,
		"handle": fmt.Sprintf("brand-12-sku-%08d", next),
	}
}

// BenchmarkCreateItemsIntID is BenchmarkCreateItems into the items of scenario i
// (bench/testdata/int-ids/shop.sql): an INTEGER PRIMARY KEY that SQLite numbers.
func BenchmarkCreateItemsIntID(b *testing.B) {
	script, err := os.ReadFile(filepath.Join(root, "bench", "testdata", "int-ids", "shop.sql"))
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "shop.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		b.Fatal(err)
	}
	_, err = db.Exec(string(script))
	db.Close()
	if err != nil {
		b.Fatal(err)
	}
	sys := loadSystem(b, "system: shop\nname: Shop\nconnector: sqlite\npath: ${DB}\nentities:\n  Item: {table: items, id: id, updated: modified_at}\n", map[string]string{"DB": path})
	s, err := Driver{}.Describe(ctx, sys.Entities[0])
	if err != nil {
		b.Fatal(err)
	}
	benchCreate(b, ctx, mustOpen(b, sys, map[string]*schema.Entity{"Item": s}), "Item", itemRecord)
}
