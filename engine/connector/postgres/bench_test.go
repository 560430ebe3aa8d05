package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

const benchDDL = `CREATE TABLE products (id serial PRIMARY KEY, sku text UNIQUE NOT NULL, name text, price numeric(10,2), qty integer, updated_at timestamptz)`

func benchRecords(n int) []map[string]any {
	recs := make([]map[string]any, n)
	for i := range recs {
		recs[i] = map[string]any{"sku": fmt.Sprintf("SKU-%07d", i), "name": fmt.Sprintf("Product %d", i), "price": 9.99, "qty": int64(i % 100), "updated_at": "2024-01-01T00:00:00Z"}
	}
	return recs
}

// BenchmarkCreate writes products through the connector in batches of 1,000 (as a first sync
// does), beside BenchmarkCopyFrom, the hand-written floor.
func BenchmarkCreate(b *testing.B) {
	db := pgtest.New(b)
	db.Exec(b, benchDDL)
	c := open(b, db.DSN(), system(`Product: {table: products, id: id, updated: updated_at}`))
	recs := benchRecords(b.N)
	b.ResetTimer()
	for start := 0; start < len(recs); start += 1000 {
		res, err := c.Create(context.Background(), "Product", recs[start:min(start+1000, len(recs))])
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res[0].Err)
		}
	}
}

func BenchmarkCopyFrom(b *testing.B) {
	db := pgtest.New(b)
	db.Exec(b, benchDDL)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.DSN())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	recs := benchRecords(b.N)
	b.ResetTimer()
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, len(recs))
	for i, r := range recs {
		rows[i] = []any{r["sku"], r["name"], 9.99, int32(r["qty"].(int64)), at}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"sku", "name", "price", "qty", "updated_at"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkUpdate patches products through the connector in batches of 1,000, as an
// incremental run does.
func BenchmarkUpdate(b *testing.B) {
	db := pgtest.New(b)
	db.Exec(b, benchDDL)
	c := open(b, db.DSN(), system(`Product: {table: products, id: id, updated: updated_at}`))
	recs := benchRecords(b.N)
	var ids []string
	for start := 0; start < len(recs); start += 1000 {
		res, err := c.Create(context.Background(), "Product", recs[start:min(start+1000, len(recs))])
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			ids = append(ids, r.Record.ID)
		}
	}
	b.ResetTimer()
	for start := 0; start < len(ids); start += 1000 {
		var batch []connector.Record
		for _, id := range ids[start:min(start+1000, len(ids))] {
			batch = append(batch, connector.Record{ID: id, Data: map[string]any{"qty": int64(7), "name": "renamed " + id}})
		}
		res, err := c.Update(context.Background(), "Product", batch)
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res[0].Err)
		}
	}
}

// itemsDDL is the table of the benchmark's scenario h (bench/testdata/postgres/shop.sql).
const itemsDDL = `CREATE TABLE items (id text PRIMARY KEY, sku text, title text, description text, category text, brand text, barcode text, stock text, weight_kg double precision, visible boolean, price text, margin double precision, handle text, modified_at timestamptz DEFAULT now());
CREATE INDEX items_modified_at ON items (modified_at, id)`

// BenchmarkCreateItems creates the rows of scenario h (ids made by the connector, 13 columns)
// through the connector in batches of 1,000, as its first sync does.
func BenchmarkCreateItems(b *testing.B) {
	db := pgtest.New(b)
	db.Exec(b, itemsDDL)
	c := open(b, db.DSN(), system(`Item: {table: items, id: id, updated: modified_at}`))
	recs := make([]map[string]any, b.N)
	for i := range recs {
		recs[i] = map[string]any{"sku": fmt.Sprintf("SKU-%07d", i), "title": fmt.Sprintf("Product %d", i), "description": fmt.Sprintf("A fairly long description of product %d, in a few words", i),
			"category": "Category 7", "brand": "Brand 3", "barcode": "4006381333931", "stock": "17", "weight_kg": 1.25, "visible": true, "price": "19.99", "margin": 0.35, "handle": fmt.Sprintf("product-%d", i)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for start := 0; start < len(recs); start += 1000 {
		res, err := c.Create(context.Background(), "Item", recs[start:min(start+1000, len(recs))])
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res[0].Err)
		}
	}
}
