package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine"
)

// writeLargeProject writes a project of n flows between two systems of 40 entities each, every
// flow with eight properties, two of them computed by expressions and one a list, so that
// validation does all its work: schema checks, path lookups and expression compiles.
func writeLargeProject(tb testing.TB, dir string, n int) {
	tb.Helper()
	const entities = 40
	if n > entities*entities {
		tb.Fatalf("at most %d flows", entities*entities)
	}
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
	must(tb, os.MkdirAll(filepath.Join(dir, "mappings", "systems"), 0o755))
	must(tb, os.MkdirAll(filepath.Join(dir, "schemas"), 0o755))
	must(tb, os.WriteFile(filepath.Join(dir, "schemas", "record.json"), []byte(schema), 0o644))
	for _, sys := range []string{"alpha", "beta"} {
		var b strings.Builder
		fmt.Fprintf(&b, "system: %s\nname: %s\nconnector: sqlite\npath: %s.db\nentities:\n", sys, strings.ToUpper(sys), sys)
		for i := 0; i < entities; i++ {
			fmt.Fprintf(&b, "  E%d: {table: t%d, id: id, updated: changed, schema: ../../schemas/record.json}\n", i, i)
		}
		must(tb, os.WriteFile(filepath.Join(dir, "mappings", "systems", sys+".yaml"), []byte(b.String()), 0o644))
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
	must(tb, os.WriteFile(filepath.Join(dir, "mappings", "alpha-to-beta.yaml"), []byte(b.String()), 0o644))
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkValidate1000Flows measures `dataflow validate` on 1,000 flows: the target is well
// under a second, fast enough for an editor's on-save hook.
func BenchmarkValidate1000Flows(b *testing.B) {
	dir := b.TempDir()
	writeLargeProject(b, dir, 1000)
	b.Chdir(dir)
	eng, err := engine.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		res, err := eng.Load(ctx, []string{"mappings"})
		if err != nil {
			b.Fatal(err)
		}
		if res.Diagnostics.HasErrors() || len(res.Project.Dataflows[0].Flows) != 1000 {
			b.Fatalf("the generated project must be valid: %v", res.Diagnostics)
		}
	}
}

// TestLargeProjectIsValid keeps the benchmark honest: its input validates cleanly.
func TestLargeProjectIsValid(t *testing.T) {
	dir := t.TempDir()
	writeLargeProject(t, dir, 50)
	t.Chdir(dir)
	eng, err := engine.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Load(context.Background(), []string{"mappings"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Diagnostics.HasErrors() {
		t.Fatalf("diagnostics: %v", res.Diagnostics)
	}
	if got := len(res.Project.Dataflows[0].Flows); got != 50 {
		t.Fatalf("flows = %d, want 50", got)
	}
}
