package schema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTypeOfDeclared(t *testing.T) {
	for _, tc := range []struct{ decl, typ, format string }{
		{"INTEGER", Integer, ""},
		{"int", Integer, ""},
		{"BIGINT", Integer, ""},
		{"NVARCHAR(40)", String, ""},
		{"VARCHAR(255)", String, ""},
		{"CHAR(2)", String, ""},
		{"TEXT", String, ""},
		{"CLOB", String, ""},
		{"NUMERIC(10,2)", Number, ""},
		{"DECIMAL(12, 4)", Number, ""},
		{"REAL", Number, ""},
		{"DOUBLE PRECISION", Number, ""},
		{"FLOAT", Number, ""},
		{"MONEY", Number, ""},
		{"BOOLEAN", Boolean, ""},
		{"bool", Boolean, ""},
		{"DATETIME", String, "date-time"},
		{"TIMESTAMP", String, "date-time"},
		{"DATE", String, "date"},
		{"BLOB", "", ""},
		{"", "", ""},
		{"POINT INT", Integer, ""}, // "INT" anywhere gives INTEGER affinity, as in SQLite
	} {
		typ, format := TypeOfDeclared(tc.decl)
		if typ != tc.typ || format != tc.format {
			t.Errorf("TypeOfDeclared(%q) = %q, %q; want %q, %q", tc.decl, typ, format, tc.typ, tc.format)
		}
	}
}

func TestPropertyOfColumns(t *testing.T) {
	p := PropertyOfColumns([]Column{
		{Name: "ProductID", Declared: "INTEGER", PK: true},
		{Name: "ProductName", Declared: "TEXT", NotNull: true},
		{Name: "UnitPrice", Declared: "NUMERIC"},
		{Name: "Blob", Declared: ""},
	})
	for name, want := range map[string]string{"ProductID": "integer", "ProductName": "string", "UnitPrice": "number|null", "Blob": ""} {
		if got := strings.Join(p.Properties[name].Types, "|"); got != want {
			t.Errorf("%s types = %q, want %q", name, got, want)
		}
	}
	if p.Properties["Blob"].Type() != "" {
		t.Error("an undeclared column has no type")
	}
}

func writeSchema(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "entity.json")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const orderSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "$defs": {
    "amount": {"type": "object", "properties": {"currency": {"type": "string"}, "value": {"type": "string"}}},
    "category": {"type": "object", "properties": {"name": {"type": "string"}, "parent": {"$ref": "#/$defs/category"}}}
  },
  "properties": {
    "id": {"type": "string"},
    "total": {"$ref": "#/$defs/amount"},
    "note": {"type": ["string", "null"]},
    "count": {"type": ["integer", "number"]},
    "extra": {"type": "object"},
    "status": {"enum": ["PENDING", "FULFILLED"]},
    "category": {"$ref": "#/$defs/category"},
    "lines": {"type": "array", "items": {"type": "object", "properties": {
      "sku": {"type": "string"},
      "price": {"allOf": [{"$ref": "#/$defs/amount"}]},
      "tags": {"type": "array", "items": {"type": "string"}}
    }}}
  }
}`

func TestResolve(t *testing.T) {
	e, err := LoadFile(writeSchema(t, orderSchema))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, typ string
		lists     int
	}{
		{"id", String, 0},
		{"total.value", String, 0},
		{"note", String, 0},
		{"count", Number, 0},
		{"status", String, 0},
		{"lines", Array, 0},
		{"lines.sku", String, 1},
		{"lines.price.currency", String, 1},
		{"lines.tags", Array, 1},
		{"category.parent.parent.name", String, 0},
		{"extra.anything.below", "", 0},
	} {
		r, perr := e.Resolve(tc.path)
		if perr != nil {
			t.Errorf("%s: %v", tc.path, perr)
			continue
		}
		if r.Prop.Type() != tc.typ || r.Lists != tc.lists {
			t.Errorf("%s: type %q lists %d, want %q %d", tc.path, r.Prop.Type(), r.Lists, tc.typ, tc.lists)
		}
	}
	for _, tc := range []struct {
		path, err string
		seg, off  int
	}{
		{"idd", `no property "idd"`, 0, 0},
		{"total.valu", `no property "valu"`, 1, 6},
		{"lines.skuu", `no property "skuu"`, 1, 6},
		{"id.x", `"id" has no properties`, 1, 3},
	} {
		_, perr := e.Resolve(tc.path)
		if perr == nil || perr.Error() != tc.err || perr.Segment != tc.seg || perr.Offset() != tc.off {
			t.Errorf("%s: got %v, want %s at segment %d offset %d", tc.path, perr, tc.err, tc.seg, tc.off)
		}
	}
	if !e.Root.Properties["note"].Nullable() || e.Root.Properties["id"].Nullable() {
		t.Error("Nullable")
	}
}

func TestLoadFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"not json", `{"type": }`, "entity.json:1:10: invalid character '}' looking for beginning of value"},
		{"bad keyword", `{"type": "strang"}`, `entity.json: /type: value must be one of "array", "boolean"`},
		{"remote ref", `{"$ref": "https://example.com/x.json"}`, "only local schema files"},
	} {
		_, err := LoadFile(writeSchema(t, tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// TestLoadFileRefusesDevices: a schema path naming a device or a directory is an error, not an
// endless read.
func TestLoadFileRefusesDevices(t *testing.T) {
	for _, path := range []string{"/dev/zero", t.TempDir()} {
		if _, err := LoadFile(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s: err = %v", path, err)
		}
	}
}
