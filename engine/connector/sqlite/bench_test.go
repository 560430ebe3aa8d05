package sqlite

// Benchmarks of reading and writing records, on generated data:
//
//	go test -run '^$' -bench . -benchtime 5x ./engine/connector/sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

const itemsYAML = `system: generated
name: Generated
connector: sqlite
path: ${DB}
entities:
  Item: {table: items, id: id, updated: updated}
`

// generate creates a database of n items, the same for the same n: prices with cents, a
// boolean, a JSON object column, and updated values in another order than the ids.
func generate(t testing.TB, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "items.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Exec(`
CREATE TABLE items (
    id       INTEGER PRIMARY KEY,
    sku      TEXT NOT NULL UNIQUE,
    name     TEXT NOT NULL,
    price    NUMERIC(10,2) NOT NULL,
    quantity INTEGER NOT NULL DEFAULT 0,
    active   BOOLEAN NOT NULL DEFAULT 1,
    attrs    TEXT,
    updated  DATETIME NOT NULL
);
CREATE INDEX items_updated ON items (updated);
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
INSERT INTO items (id, sku, name, price, quantity, active, attrs, updated)
SELECT i, printf('SKU-%06d', i), printf('Item nº %d', i), round((i % 5000) * 0.01 + 0.99, 2), i % 300, i % 7 != 0,
       json_object('color', CASE i % 3 WHEN 0 THEN 'red' WHEN 1 THEN 'green' ELSE 'blue' END, 'size', i % 5),
       strftime('%Y-%m-%dT%H:%M:%SZ', '2024-01-01', printf('+%d seconds', (i * 7919) % ?))
FROM seq`, n, n)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// openGenerated opens a generated database of n items; attrs is a JSON object in the schema.
func openGenerated(t testing.TB, n int) (*conn, string) {
	t.Helper()
	path := generate(t, n)
	sys := loadSystem(t, itemsYAML, map[string]string{"DB": path})
	s, err := Driver{}.Describe(ctx, sys.Entities[0])
	if err != nil {
		t.Fatal(err)
	}
	s.Root.Properties["attrs"] = &schema.Property{Types: []string{schema.Object, schema.Null}, Open: true}
	return mustOpen(t, sys, map[string]*schema.Entity{"Item": s}), path
}

func BenchmarkScan(b *testing.B) {
	const n = 100_000
	c, _ := openGenerated(b, n)
	benchScan(b, c, "Item", n)
}

// benchScan scans the n records of entity per iteration and reports records/s.
func benchScan(b *testing.B, c connector.Conn, entity string, n int) {
	cpu := cpuTime()
	for b.Loop() {
		count := 0
		err := c.Scan(ctx, entity, "", func(recs []connector.Record) error {
			count += len(recs)
			return nil
		})
		if err != nil || count != n {
			b.Fatal(err, count)
		}
	}
	reportRecords(b, n*b.N, cpu)
}

// reportRecords reports records/s and the CPU time per record since cpu (a cpuTime), the
// figure of issue 19, which other work on a shared machine changes less than the wall time.
func reportRecords(b *testing.B, records int, cpu time.Duration) {
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpuTime()-cpu)/float64(records), "cpu-ns/record")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

func BenchmarkCreate(b *testing.B) {
	c, _ := openGenerated(b, 0)
	benchCreate(b, ctx, c, "Item", func(next int) map[string]any {
		return map[string]any{
			"sku": fmt.Sprintf("NEW-%08d", next), "name": "New item", "price": 19.9, "quantity": int64(next % 300),
			"active": true, "attrs": map[string]any{"color": "red", "size": int64(3)}, "updated": "2024-11-01T00:00:00Z",
		}
	})
}

// benchCreate creates 10,000 records of entity per iteration, in batches of 1,000, the nth
// of all made by record(n), and reports records/s.
func benchCreate(b *testing.B, ctx context.Context, c *conn, entity string, record func(n int) map[string]any) {
	const n, batch = 10_000, 1000
	next := 0
	cpu := cpuTime()
	for b.Loop() {
		for start := 0; start < n; start += batch {
			data := make([]map[string]any, batch)
			for i := range data {
				next++
				data[i] = record(next)
			}
			res, err := c.Create(ctx, entity, data)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
	}
	reportRecords(b, n*b.N, cpu)
}

// BenchmarkUpdate patches 10,000 of 100,000 items in batches of 1,000: two columns and a
// member of the JSON object column each.
func BenchmarkUpdate(b *testing.B) {
	const total, n, batch = 100_000, 10_000, 1000
	c, _ := openGenerated(b, total)
	round := 0
	for b.Loop() {
		round++
		for start := 0; start < n; start += batch {
			recs := make([]connector.Record, batch)
			for i := range recs {
				id := (start+i)*(total/n) + 1
				recs[i] = connector.Record{ID: fmt.Sprint(id), Data: map[string]any{
					"name": fmt.Sprintf("Item %d, round %d", id, round), "price": 19.9 + float64(round),
					"attrs": map[string]any{"size": int64(round)},
				}}
			}
			res, err := c.Update(ctx, "Item", recs)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
