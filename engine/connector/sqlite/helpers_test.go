package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// root is the repository root, from this package's directory.
const root = "../../.."

var (
	templatesMu sync.Mutex
	templates   = map[string][]byte{} // script → database file built from it
)

// buildDB creates a database in a temporary directory from an SQL script of the repository.
// Each script runs once per test binary (Northwind's 900 kB take seconds); tests get copies.
func buildDB(t testing.TB, script string) string {
	t.Helper()
	templatesMu.Lock()
	img, ok := templates[script]
	if !ok {
		var err error
		if img, err = runScript(t, script); err != nil {
			templatesMu.Unlock()
			t.Fatal(err)
		}
		templates[script] = img
	}
	templatesMu.Unlock()
	path := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(script), ".sql")+".db")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runScript(t testing.TB, script string) ([]byte, error) {
	src, err := os.ReadFile(filepath.Join(root, script))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(t.TempDir(), "template.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("PRAGMA synchronous = OFF; PRAGMA journal_mode = MEMORY;\n" + string(src)); err != nil {
		return nil, err
	}
	if err := db.Close(); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// loadSystem loads a system file's text with the given environment. New connector settings
// the format schema may not know yet (init, create_tables) are tolerated; any other problem
// fails the test.
func loadSystem(t testing.TB, src string, env map[string]string) *config.System {
	t.Helper()
	l, err := config.NewLoader(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	p := &config.Project{}
	for _, d := range l.AddFile(p, "system.yaml", []byte(src)) {
		if !strings.Contains(d.Summary, "init") && !strings.Contains(d.Summary, "create_tables") {
			t.Fatalf("system file: %v", d)
		}
	}
	if len(p.Systems) != 1 {
		t.Fatalf("loaded %d systems", len(p.Systems))
	}
	return p.Systems[0]
}

const crmYAML = `system: custom-crm
name: Custom CRM
connector: sqlite
path: ${CRM_DB}
entities:
  Product: {table: products, id: id, updated: updated_at}
  Customer: {table: customers, id: id, updated: updated_at}
  Order:
    table: orders
    id: id
    updated: updated_at
    lists:
      lines: {table: order_lines, key: order_id, id: id}
`

// openCRM opens a fresh copy of the local Custom CRM with its schema files.
func openCRM(t testing.TB) (*conn, string) {
	t.Helper()
	path := buildDB(t, "testdata/local/custom-crm.sql")
	sys := loadSystem(t, crmYAML, map[string]string{"CRM_DB": path})
	schemas := map[string]*schema.Entity{}
	for name, file := range map[string]string{"Product": "product", "Customer": "customer", "Order": "order"} {
		s, err := schema.LoadFile(filepath.Join(root, "schemas/custom-crm", file+".json"))
		if err != nil {
			t.Fatal(err)
		}
		schemas[name] = s
	}
	return mustOpen(t, sys, schemas), path
}

const northwindYAML = `system: northwind
name: Northwind CRM
connector: sqlite
path: ${NORTHWIND_DB}
entities:
  Product: {table: Products, id: ProductID}
  Customer: {table: Customers, id: CustomerID}
  Category: {table: Categories, id: CategoryID}
  Order:
    table: Orders
    id: OrderID
    lists:
      lines: {table: Order Details, key: OrderID, id: ProductID}
  DatedOrder:
    table: Orders
    id: OrderID
    updated: OrderDate
`

// openNorthwind opens a fresh copy of Northwind, its entities described from the database.
func openNorthwind(t testing.TB) (*conn, string) {
	t.Helper()
	path := buildDB(t, "testdata/northwind/northwind.sql")
	sys := loadSystem(t, northwindYAML, map[string]string{"NORTHWIND_DB": path})
	schemas := map[string]*schema.Entity{}
	for _, e := range sys.Entities {
		s, err := Driver{}.Describe(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		schemas[e.Name.Value] = s
	}
	return mustOpen(t, sys, schemas), path
}

func mustOpen(t testing.TB, sys *config.System, schemas map[string]*schema.Entity) *conn {
	t.Helper()
	c, err := Driver{}.Open(context.Background(), sys, schemas, connector.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c.(*conn)
}

// scanAll scans an entity and returns its records and the sizes of the batches.
func scanAll(t testing.TB, c connector.Conn, entity, since string) ([]connector.Record, []int) {
	t.Helper()
	var recs []connector.Record
	var sizes []int
	err := c.Scan(context.Background(), entity, since, func(b []connector.Record) error {
		recs = append(recs, b...)
		sizes = append(sizes, len(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, sizes
}

func get(t testing.TB, c connector.Conn, entity, id string) connector.Record {
	t.Helper()
	m, err := c.Get(context.Background(), entity, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := m[id]
	if !ok {
		t.Fatalf("%s %s does not exist", entity, id)
	}
	return r
}

func ids(recs []connector.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// written checks that every Result of a write succeeded and returns the records:
// written(t)(c.Create(...)).
func written(t testing.TB) func([]connector.Result, error) []connector.Record {
	return func(res []connector.Result, err error) []connector.Record {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out := make([]connector.Record, len(res))
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("record %d: %v", i, r.Err)
			}
			out[i] = r.Record
		}
		return out
	}
}

// listColumn returns the values of column col of a record's list, in order.
func listColumn(t testing.TB, r connector.Record, list, col string) []any {
	t.Helper()
	items, ok := r.Data[list].([]any)
	if !ok {
		t.Fatalf("%s of record %s is %T", list, r.ID, r.Data[list])
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it.(map[string]any)[col]
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sqlValue reads one value straight from the database, bypassing the connector.
func sqlValue(t testing.TB, path, query string, args ...any) any {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v any
	if err := db.QueryRow(query, args...).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
