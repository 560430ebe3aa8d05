package main

// The project of 1,000 flows that validation loads: the generator of engine/bench_test.go
// (BenchmarkValidate1000Flows), two systems of 40 entities, every flow with eight properties,
// two computed by expressions and one a list.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func writeLargeProject(dir string, n int) error {
	const entities = 40
	schema := `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "id": {"type": "integer"}, "code": {"type": "string"}, "name": {"type": "string"},
    "price": {"type": "number"}, "stock": {"type": "integer"}, "active": {"type": "boolean"},
    "changed": {"type": "string", "format": "date-time"},
    "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}}},
    "lines": {"type": "array", "items": {"type": "object", "properties": {"item": {"type": "integer"}, "qty": {"type": "integer"}}}}
  }
}`
	if err := os.MkdirAll(filepath.Join(dir, "mappings", "systems"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "schemas"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "schemas", "record.json"), []byte(schema), 0o644); err != nil {
		return err
	}
	for _, sys := range []string{"alpha", "beta"} {
		var b strings.Builder
		fmt.Fprintf(&b, "system: %s\nname: %s\nconnector: sqlite\npath: %s.db\nentities:\n", sys, strings.ToUpper(sys), sys)
		for i := 0; i < entities; i++ {
			fmt.Fprintf(&b, "  E%d: {table: t%d, id: id, updated: changed, schema: ../../schemas/record.json}\n", i, i)
		}
		if err := os.WriteFile(filepath.Join(dir, "mappings", "systems", sys+".yaml"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	var b strings.Builder
	b.WriteString("dataflow: alpha-to-beta\nsource: alpha\ntarget: beta\nflows:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `  - id: flow-%d
    source: E%d
    target: E%d
    merge: [[{source: code, target: code}]]
    when: {expr: "active && stock > 0", describe: is active}
    properties:
      - {source: code, target: code}
      - {source: name, target: name}
      - {source: price, target: price, to_target: "price * 1.25", to_source: "price / 1.25"}
      - {source: stock, target: stock}
      - {source: address.city, target: address.city, to_target: "upper(address.city)", sync: to-target}
      - {source: changed, target: changed, sync: to-target}
      - source: lines
        target: lines
        properties:
          - {source: item, target: item}
          - {source: qty, target: qty}
`, i, i/entities, i%entities)
	}
	return os.WriteFile(filepath.Join(dir, "mappings", "alpha-to-beta.yaml"), []byte(b.String()), 0o644)
}
