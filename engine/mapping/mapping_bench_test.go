package mapping_test

// Benchmarks of the per-record hot paths of a run that live in this package: building the
// record a flow writes (both ways, with expressions, coercions, a list and references) and
// the canonical form that bases and record digests are made of. The flows are the
// benchmark's (bench/testdata): 12 product properties, 9 copied and 3 computed by small
// expressions, and orders whose lines refer to products.
//
//	go test -run '^$' -bench . -benchmem ./engine/mapping/

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/mapping"
)

var benchFiles = map[string]string{
	"schemas/product.json": `{"type": "object", "properties": {
  "id": {"type": "integer"}, "sku": {"type": "string"}, "name": {"type": "string"},
  "description": {"type": ["string", "null"]}, "category": {"type": "string"}, "brand": {"type": "string"},
  "ean": {"type": ["string", "null"]}, "qty": {"type": "integer"}, "price": {"type": "number"},
  "cost": {"type": "number"}, "weight_kg": {"type": ["number", "null"]}, "active": {"type": "boolean"},
  "updated_at": {"type": "string"}}}`,
	"schemas/item.json": `{"type": "object", "properties": {
  "id": {"type": "string"}, "sku": {"type": ["string", "null"]}, "title": {"type": ["string", "null"]},
  "description": {"type": ["string", "null"]}, "category": {"type": ["string", "null"]}, "brand": {"type": ["string", "null"]},
  "barcode": {"type": ["string", "null"]}, "stock": {"type": ["string", "null"]}, "weight_kg": {"type": ["number", "null"]},
  "visible": {"type": ["boolean", "null"]}, "price": {"type": ["string", "null"]}, "margin": {"type": ["number", "null"]},
  "handle": {"type": ["string", "null"]}, "modified_at": {"type": ["string", "null"]}}}`,
	"schemas/order.json": `{"type": "object", "properties": {
  "id": {"type": "integer"}, "number": {"type": "string"}, "customer": {"type": "string"}, "status": {"type": "string"},
  "total": {"type": "number"},
  "lines": {"type": "array", "items": {"type": "object", "properties": {
    "id": {"type": "integer"}, "product_id": {"type": "integer"}, "quantity": {"type": "integer"}, "unit_price": {"type": "number"}}}}}}`,
	"schemas/shop-order.json": `{"type": "object", "properties": {
  "id": {"type": "string"}, "number": {"type": ["string", "null"]}, "customer": {"type": ["string", "null"]},
  "status": {"type": ["string", "null"]}, "total": {"type": ["number", "null"]},
  "lines": {"type": "array", "items": {"type": "object", "properties": {
    "id": {"type": "integer"}, "item_id": {"type": ["string", "null"]}, "quantity": {"type": ["integer", "null"]},
    "unit_price": {"type": ["number", "null"]}}}}}}`,
	"systems/erp.yaml": `system: erp
name: ERP
connector: sqlite
path: erp.db
entities:
  Product: {table: products, id: id, updated: updated_at, schema: ../schemas/product.json}
  Order:
    table: orders
    id: id
    schema: ../schemas/order.json
    lists: {lines: {table: order_lines, key: order_id, id: id}}
`,
	"systems/shop.yaml": `system: shop
name: Shop
connector: sqlite
path: shop.db
entities:
  Item: {table: items, id: id, updated: modified_at, schema: ../schemas/item.json}
  Order:
    table: orders
    id: id
    schema: ../schemas/shop-order.json
    lists: {lines: {table: order_lines, key: order_id, id: id}}
`,
	"flows/bench.yaml": `dataflow: bench
source: erp
target: shop
flows:
  - id: products-to-items
    source: Product
    target: Item
    merge: [[{source: sku, target: sku}]]
    properties:
      - {source: sku, target: sku}
      - {source: name, target: title}
      - {source: description, target: description}
      - {source: category, target: category}
      - {source: brand, target: brand}
      - {source: ean, target: barcode}
      - {source: qty, target: stock}
      - {source: weight_kg, target: weight_kg}
      - {source: active, target: visible}
      - {source: price, target: price, to_target: "amount(price)", sync: to-target}
      - {source: cost, target: margin, to_target: "price - cost", sync: to-target}
      - {source: brand, target: handle, to_target: 'lower(brand) + "-" + lower(sku)', sync: to-target}
  - id: orders-to-orders
    source: Order
    target: Order
    properties:
      - {source: number, target: number}
      - {source: customer, target: customer}
      - {source: status, target: status}
      - {source: total, target: total}
      - source: lines
        target: lines
        properties:
          - {source: product_id, target: item_id, ref: products-to-items}
          - {source: quantity, target: quantity}
          - {source: unit_price, target: unit_price}
`,
}

// benchFlows compiles the benchmark's flows.
func benchFlows(b testing.TB) (products, orders *mapping.Flow) {
	b.Helper()
	dir := b.TempDir()
	for name, text := range benchFiles {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	eng, err := engine.New(func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	res, err := eng.Load(context.Background(), []string{filepath.Join(dir, "systems"), filepath.Join(dir, "flows")})
	if err != nil {
		b.Fatal(err)
	}
	if res.Diagnostics.HasErrors() {
		b.Fatalf("the benchmark's mappings do not load: %v", res.Diagnostics)
	}
	flows := res.Project.Dataflows[0].Flows
	return flows[0], flows[1]
}

// benchProduct is a product record as the sqlite connector reads it.
func benchProduct(i int) map[string]any {
	desc := any(fmt.Sprintf("Espresso beans from Nordic Roast, item %d of the catalogue.", i))
	if i%20 == 0 {
		desc = nil
	}
	return map[string]any{
		"id": int64(i), "sku": fmt.Sprintf("P%07d", i), "name": "Espresso Roast 250 g", "description": desc,
		"category": "coffee", "brand": "Nordic Roast", "ean": "7310865004703", "qty": int64(i % 500),
		"price": 8.9 + float64(i%100), "cost": 4.15, "weight_kg": 0.25, "active": i%5 != 0,
		"updated_at": "2025-01-01T00:00:00Z",
	}
}

// benchRefs translates product ids to item ids without link state.
type benchRefs struct{}

func (benchRefs) TargetID(_ *mapping.Flow, id string) (string, bool, error) {
	return "item-" + id, true, nil
}
func (benchRefs) SourceID(_ *mapping.Flow, id string) (string, bool, error) {
	return id[len("item-"):], true, nil
}

const benchRecords = 1000

func reportRecords(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkBuildTarget maps products to the target record a create writes: 12 properties, 3
// of them expressions, 1 coerced (qty to a text stock).
func BenchmarkBuildTarget(b *testing.B) {
	products, _ := benchFlows(b)
	recs := make([]map[string]any, benchRecords)
	for i := range recs {
		recs[i] = benchProduct(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			if _, err := products.BuildTarget(r, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRecords(b, len(recs))
}

// BenchmarkPrebuild is a first sync's work per product on the scan's goroutine as engine/sync
// did it (create.go's build and prebuild): BuildTargetFunc with each value's canonical form
// appended to a buffer, then the canonical form of the record built.
func BenchmarkPrebuild(b *testing.B) {
	products, _ := benchFlows(b)
	recs := make([]map[string]any, benchRecords)
	for i := range recs {
		recs[i] = benchProduct(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			if _, _, _, err := engineForms(products, r, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRecords(b, len(recs))
}

// BenchmarkBuildTargetForms is BenchmarkPrebuild's work by BuildTargetForms: each value
// encoded once, the record's form put together from the values'.
func BenchmarkBuildTargetForms(b *testing.B) {
	products, _ := benchFlows(b)
	recs := make([]map[string]any, benchRecords)
	for i := range recs {
		recs[i] = benchProduct(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			if _, _, _, err := products.BuildTargetForms(r, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRecords(b, len(recs))
}

// BenchmarkBuildSource maps shop items back: the 9 two-way properties, coerced to the
// source's types.
func BenchmarkBuildSource(b *testing.B) {
	products, _ := benchFlows(b)
	recs := make([]map[string]any, benchRecords)
	for i := range recs {
		t, err := products.BuildTarget(benchProduct(i), nil)
		if err != nil {
			b.Fatal(err)
		}
		t["id"] = fmt.Sprintf("item-%d", i)
		recs[i] = t
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			if _, err := products.BuildSource(r, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRecords(b, len(recs))
}

// BenchmarkBuildTargetOrder maps orders with three lines each, product ids translated
// through references.
func BenchmarkBuildTargetOrder(b *testing.B) {
	_, orders := benchFlows(b)
	recs := make([]map[string]any, benchRecords)
	for i := range recs {
		lines := make([]any, 3)
		for l := range lines {
			lines[l] = map[string]any{"id": int64(3*i + l), "product_id": int64(i + l), "quantity": int64(1 + l), "unit_price": 8.9}
		}
		recs[i] = map[string]any{"id": int64(i), "number": fmt.Sprintf("SO%07d", i), "customer": "Ada Lovelace",
			"status": "paid", "total": 53.4, "lines": lines}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			if _, err := orders.BuildTarget(r, benchRefs{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRecords(b, len(recs))
}

// BenchmarkPropertyValues is the merge's per-property work on a linked pair: each property's
// value from the source (TargetValue), its current value in the target (View), and both in
// canonical form, as compared with the base and stored in it.
func BenchmarkPropertyValues(b *testing.B) {
	products, _ := benchFlows(b)
	srcs := make([]map[string]any, benchRecords)
	tgts := make([]map[string]any, benchRecords)
	for i := range srcs {
		srcs[i] = benchProduct(i)
		t, err := products.BuildTarget(srcs[i], nil)
		if err != nil {
			b.Fatal(err)
		}
		tgts[i] = t
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i, src := range srcs {
			for _, p := range products.Properties {
				s, err := p.TargetValue(src, nil)
				if err != nil {
					b.Fatal(err)
				}
				if string(mapping.Canonical(s)) != string(mapping.Canonical(p.View(tgts[i]))) {
					b.Fatalf("property %s differs", p.Key())
				}
			}
		}
	}
	reportRecords(b, len(srcs))
}

// BenchmarkCanonical is the canonical JSON of a whole record, what record digests are
// computed from.
func BenchmarkCanonical(b *testing.B) {
	recs := make([]map[string]any, benchRecords)
	for i := range recs {
		recs[i] = benchProduct(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			mapping.Canonical(r)
		}
	}
	reportRecords(b, len(recs))
}

// BenchmarkRecordDigest is a record's digest as the runner computes it to skip unchanged
// records (engine/sync's recordHash): SHA-256 of the canonical form.
func BenchmarkRecordDigest(b *testing.B) {
	recs := make([]map[string]any, benchRecords)
	for i := range recs {
		recs[i] = benchProduct(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			sha256.Sum256(mapping.Canonical(r))
		}
	}
	reportRecords(b, len(recs))
}

// BenchmarkDigester is a record's digest as engine/sync's digester computes it: the canonical
// form by a RecordCanon into a buffer reused record after record, its SHA-256, 16 bytes of it
// in hex.
func BenchmarkDigester(b *testing.B) {
	recs := make([]map[string]any, benchRecords)
	for i := range recs {
		recs[i] = benchProduct(i)
	}
	var canon mapping.RecordCanon
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			buf = canon.Append(buf[:0], r)
			sum := sha256.Sum256(buf)
			hex.EncodeToString(sum[:16])
		}
	}
	reportRecords(b, len(recs))
}

// BenchmarkCoerce converts the values of one record to other JSON types, as copied properties
// are: integers to text, text to integers and numbers, numbers as they are.
func BenchmarkCoerce(b *testing.B) {
	values := []struct {
		v any
		t string
	}{{int64(120), "string"}, {"120", "integer"}, {"8.90", "number"}, {8.9, "number"}, {true, "boolean"}, {"Espresso", "string"}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, c := range values {
			if _, err := mapping.Coerce(c.v, c.t); err != nil {
				b.Fatal(err)
			}
		}
	}
}
