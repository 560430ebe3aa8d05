package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/dataflow-sync/dataflow/schemas"
)

// The JSON pointers the validator compiles, one per file kind, and the root that dispatches.
const (
	rootPtr         = ""
	systemFilePtr   = "#/$defs/systemFile"
	sqliteSystemPtr = "#/$defs/sqliteSystem"
	dataflowFilePtr = "#/$defs/dataflowFile"
)

func newCompiler(t *testing.T) *jsonschema.Compiler {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	// The schema refers to nothing outside itself; fail loudly if it ever tries.
	c.LoadURL = func(s string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("unexpected load of %s", s)
	}
	if err := c.AddResource(schemas.DataflowURL, bytes.NewReader(schemas.Dataflow)); err != nil {
		t.Fatalf("AddResource: %v", err)
	}
	return c
}

func compile(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	s, err := newCompiler(t).Compile(schemas.DataflowURL + ptr)
	if err != nil {
		t.Fatalf("compile %q: %#v", ptr, err)
	}
	return s
}

func TestSchemaIsJSON(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(schemas.Dataflow, &doc); err != nil {
		t.Fatalf("schema is not valid JSON: %v", err)
	}
	if got := doc["$id"]; got != schemas.DataflowURL {
		t.Errorf("$id = %v, want DataflowURL %q", got, schemas.DataflowURL)
	}
	if got := doc["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v, want draft 2020-12", got)
	}
	for _, k := range []string{"title", "description"} {
		if s, _ := doc[k].(string); strings.TrimSpace(s) == "" {
			t.Errorf("root %s is missing", k)
		}
	}
}

func TestSchemaCompiles(t *testing.T) {
	for _, ptr := range []string{rootPtr, systemFilePtr, sqliteSystemPtr, dataflowFilePtr} {
		t.Run(ptr, func(t *testing.T) { compile(t, ptr) })
	}
}

// The compiler checks schemas against their metaschema on compile; this checks it explicitly so
// that the test does not depend on that behaviour.
func TestSchemaValidAgainstMetaschema(t *testing.T) {
	meta, err := jsonschema.NewCompiler().Compile("https://json-schema.org/draft/2020-12/schema")
	if err != nil {
		t.Fatalf("compile metaschema: %v", err)
	}
	doc, err := unmarshal(schemas.Dataflow)
	if err != nil {
		t.Fatal(err)
	}
	if err := meta.Validate(doc); err != nil {
		t.Fatalf("schema is invalid against the 2020-12 metaschema: %#v", err)
	}
	// Sanity check that the metaschema does reject something.
	if err := meta.Validate(map[string]any{"type": "strng"}); err == nil {
		t.Fatal("metaschema accepted {type: strng}")
	}
}

// Keywords whose value is a schema, a map of schemas, or an array of schemas. Conditions (if,
// not) are skipped: they are never shown to users, so their properties need no description.
var (
	schemaKeywords    = []string{"additionalProperties", "items", "contains", "propertyNames", "then", "else", "unevaluatedItems", "unevaluatedProperties", "contentSchema"}
	schemaMapKeywords = []string{"$defs", "properties", "patternProperties", "dependentSchemas"}
	schemaArrKeywords = []string{"allOf", "anyOf", "oneOf", "prefixItems"}
)

func TestEveryPropertyHasDescription(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(schemas.Dataflow, &root); err != nil {
		t.Fatal(err)
	}
	// described reports whether a schema, or a schema it refers to by a local $ref, has a
	// non-empty description.
	var described func(s map[string]any, depth int) bool
	described = func(s map[string]any, depth int) bool {
		if d, ok := s["description"]; ok {
			// A description beside a $ref hides the referred one in editors, so it must not be blank.
			text, _ := d.(string)
			return strings.TrimSpace(text) != ""
		}
		ref, _ := s["$ref"].(string)
		if ref == "" || depth > 10 {
			return false
		}
		target := resolve(t, root, ref)
		return target != nil && described(target, depth+1)
	}
	checked := 0
	var walk func(s any, loc string)
	walk = func(v any, loc string) {
		s, ok := v.(map[string]any)
		if !ok {
			return
		}
		if props, ok := s["properties"].(map[string]any); ok {
			for name, p := range props {
				checked++
				ps, _ := p.(map[string]any)
				if ps == nil || !described(ps, 0) {
					t.Errorf("%s/properties/%s has no description", loc, name)
				}
			}
		}
		for _, k := range schemaKeywords {
			walk(s[k], loc+"/"+k)
		}
		for _, k := range schemaMapKeywords {
			m, _ := s[k].(map[string]any)
			for name, sub := range m {
				walk(sub, loc+"/"+k+"/"+name)
			}
		}
		for _, k := range schemaArrKeywords {
			a, _ := s[k].([]any)
			for i, sub := range a {
				walk(sub, fmt.Sprintf("%s/%s/%d", loc, k, i))
			}
		}
	}
	walk(root, "#")
	if checked < 40 {
		t.Errorf("only %d properties checked; is the walk broken?", checked)
	}
}

func resolve(t *testing.T, root map[string]any, ref string) map[string]any {
	t.Helper()
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		t.Errorf("non-local $ref %q", ref)
		return nil
	}
	var cur any = root
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, _ := cur.(map[string]any)
		cur = m[tok]
	}
	s, _ := cur.(map[string]any)
	if s == nil {
		t.Errorf("$ref %q does not resolve", ref)
	}
	return s
}

func TestDefaults(t *testing.T) {
	var root struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Default any `json:"default"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schemas.Dataflow, &root); err != nil {
		t.Fatal(err)
	}
	flow := root.Defs["flow"].Properties
	for key, want := range map[string]string{"sync": "both", "conflict": "newest", "delete": "keep", "create": "always"} {
		if got := flow[key].Default; got != want {
			t.Errorf("flow %s default = %v, want %q", key, got, want)
		}
	}
}

const validSystem = `{
	"system": "custom-crm",
	"name": "Custom CRM",
	"description": "The CRM's local test database.",
	"connector": "sqlite",
	"path": "${CRM_DB:-testdata/local/custom-crm.db}",
	"entities": {
		"Product": {
			"table": "products",
			"id": "id",
			"updated": "updated_at",
			"schema": "../../schemas/custom-crm/product.json"
		},
		"Order": {
			"table": "orders",
			"id": "id",
			"lists": {"lines": {"table": "order_lines", "key": "order_id", "id": "id"}}
		}
	}
}`

const validDataflow = `{
	"dataflow": "custom-crm-to-squarespace",
	"source": "custom-crm",
	"target": "squarespace",
	"introduction": "This document describes how records flow from {source} to {target}.",
	"flows": [
		{
			"id": "product-to-inventory",
			"source": "Product",
			"target": "Inventory",
			"sync": "both",
			"create": "never",
			"merge": [[{"source": "sku", "target": "sku"}], [{"source": "name", "target": "descriptor"}, {"source": "ean", "target": "gtin"}]],
			"when": {"expr": "!discontinued", "describe": "is not discontinued"},
			"conflict": "newest",
			"delete": "keep",
			"properties": [
				{"source": "sku", "target": "sku"},
				{"source": "name", "target": "descriptor", "description": "shown on the shop"},
				{"source": "units_in_stock", "target": "quantity", "to_target": "string(units_in_stock)", "to_source": "int(quantity)"},
				{"source": "price", "target": "variants.pricing.basePrice.value", "sync": "to-target", "type": "number"},
				{"target": "currency", "to_target": "\"NOK\""}
			]
		},
		{
			"id": "order-to-order",
			"source": "Order",
			"target": "Order",
			"create": {"target": "always", "source": "referenced"},
			"properties": [
				{"source": "customer_id", "target": "customerId", "ref": "customer-to-customer"},
				{"source": "lines", "target": "lineItems", "properties": [
					{"source": "product_id", "target": "variantId", "ref": "product-to-inventory"},
					{"source": "quantity", "target": "quantity"}
				]}
			]
		}
	]
}`

// unmarshal decodes JSON the way the validator wants it: numbers as json.Number.
func unmarshal(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

func decode(t *testing.T, doc string) any {
	t.Helper()
	v, err := unmarshal([]byte(doc))
	if err != nil {
		t.Fatalf("bad test document: %v\n%s", err, doc)
	}
	return v
}

// patch decodes doc, applies edit to it and returns the result.
func patch(t *testing.T, doc string, edit func(m map[string]any)) any {
	t.Helper()
	v := decode(t, doc)
	edit(v.(map[string]any))
	return v
}

func obj(v any, path ...any) map[string]any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			v = v.(map[string]any)[p]
		case int:
			v = v.([]any)[p]
		}
	}
	return v.(map[string]any)
}

// leaves returns the innermost errors of a validation error: the ones a human should read.
func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	var out []*jsonschema.ValidationError
	for _, c := range ve.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

func TestValidDocuments(t *testing.T) {
	for _, tc := range []struct {
		name string
		ptr  string
		doc  string
	}{
		{"system via root", rootPtr, validSystem},
		{"system via systemFile", systemFilePtr, validSystem},
		{"system via sqliteSystem", sqliteSystemPtr, validSystem},
		{"dataflow via root", rootPtr, validDataflow},
		{"dataflow via dataflowFile", dataflowFilePtr, validDataflow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := compile(t, tc.ptr).Validate(decode(t, tc.doc)); err != nil {
				t.Fatalf("valid document rejected: %#v", err)
			}
		})
	}
}

// The Go validator feeds documents decoded from YAML, which hold ints rather than json.Number.
func TestYAMLLikeValues(t *testing.T) {
	doc := patch(t, validDataflow, func(m map[string]any) {
		obj(m, "flows", 0, "properties", 0)["sync"] = 1
	})
	err := compile(t, rootPtr).Validate(doc)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want ValidationError, got %v", err)
	}
	for _, l := range leaves(ve) {
		if l.InstanceLocation != "/flows/0/properties/0/sync" {
			t.Errorf("error at %s: %s", l.InstanceLocation, l.Message)
		}
	}
}

func TestInvalidDocuments(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  func(t *testing.T) any
		// One leaf error at loc must contain message; every leaf must be at loc or in extra.
		loc     string
		message string
		extra   []string
	}{
		{
			name: "system: unknown top-level key",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) { m["pth"] = "x.db" })
			},
			loc: "", message: "pth",
		},
		{
			name: "system: empty name",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) { m["name"] = "" })
			},
			loc: "/name", message: "length",
		},
		{
			name: "system: blank name",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) { m["name"] = "   " })
			},
			loc: "/name", message: "match pattern",
		},
		{
			name: "system: id not kebab-case",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) { m["system"] = "CustomCRM" })
			},
			loc: "/system", message: "match pattern",
		},
		{
			name: "system: unknown connector",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) { m["connector"] = "ftp"; delete(m, "path") })
			},
			loc: "/connector", message: "sqlite",
		},
		{
			name: "system: sqlite without path",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) { delete(m, "path") })
			},
			loc: "", message: "path",
		},
		{
			name: "system: no entities",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) { m["entities"] = map[string]any{} })
			},
			loc: "/entities", message: "minimum 1",
		},
		{
			name: "system: bad entity name",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) {
					e := obj(m, "entities")
					e["order lines"] = e["Order"]
				})
			},
			// jsonschema/v5 URL-escapes the tokens of instance locations.
			loc: "/entities/order%20lines", message: "match pattern",
		},
		{
			name: "system: entity without table",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) { delete(obj(m, "entities", "Product"), "table") })
			},
			loc: "/entities/Product", message: "table",
		},
		{
			name: "system: list without key",
			doc: func(t *testing.T) any {
				return patch(t, validSystem, func(m map[string]any) { delete(obj(m, "entities", "Order", "lists", "lines"), "key") })
			},
			loc: "/entities/Order/lists/lines", message: "key",
		},
		{
			name: "dataflow: unknown key under a flow",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { obj(m, "flows", 0)["direction"] = "both" })
			},
			loc: "/flows/0", message: "direction",
		},
		{
			name: "dataflow: bad sync enum",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { obj(m, "flows", 0)["sync"] = "two-way" })
			},
			loc: "/flows/0/sync", message: "both",
		},
		{
			name: "dataflow: bad conflict enum",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { obj(m, "flows", 1)["conflict"] = "oldest" })
			},
			loc: "/flows/1/conflict", message: "newest",
		},
		{
			name: "dataflow: missing target in a property",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { delete(obj(m, "flows", 0, "properties", 1), "target") })
			},
			loc: "/flows/0/properties/1", message: "target",
		},
		{
			name: "dataflow: missing target in an element property",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) {
					delete(obj(m, "flows", 1, "properties", 1, "properties", 0), "target")
				})
			},
			loc: "/flows/1/properties/1/properties/0", message: "target",
		},
		{
			name: "dataflow: property without source or to_target",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { delete(obj(m, "flows", 0, "properties", 4), "to_target") })
			},
			loc: "/flows/0/properties/4", message: "to_target",
		},
		{
			name: "dataflow: when without describe",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { delete(obj(m, "flows", 0, "when"), "describe") })
			},
			loc: "/flows/0/when", message: "describe",
		},
		{
			name: "dataflow: bad create policy",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { obj(m, "flows", 0)["create"] = "sometimes" })
			},
			loc: "/flows/0/create", message: "always",
		},
		{
			name: "dataflow: bad create policy in object",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { obj(m, "flows", 1, "create")["source"] = "sometimes" })
			},
			// oneOf: the string alternative also fails, at the object itself.
			loc: "/flows/1/create/source", message: "always", extra: []string{"/flows/1/create"},
		},
		{
			name: "dataflow: merge pair without target",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { delete(obj(m, "flows", 0, "merge", 1, 0), "target") })
			},
			loc: "/flows/0/merge/1/0", message: "target",
		},
		{
			name: "dataflow: empty flows",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { m["flows"] = []any{} })
			},
			loc: "/flows", message: "minimum 1",
		},
		{
			name: "dataflow: missing source system",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { delete(m, "source") })
			},
			loc: "", message: "source",
		},
		{
			name: "dataflow: bad property path",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { obj(m, "flows", 0, "properties", 3)["target"] = "variants..value" })
			},
			loc: "/flows/0/properties/3/target", message: "match pattern",
		},
		{
			name: "dataflow: bad property type",
			doc: func(t *testing.T) any {
				return patch(t, validDataflow, func(m map[string]any) { obj(m, "flows", 0, "properties", 3)["type"] = "float" })
			},
			loc: "/flows/0/properties/3/type", message: "number",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := compile(t, rootPtr).Validate(tc.doc(t))
			if err == nil {
				t.Fatal("invalid document accepted")
			}
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValidationError, got %T: %v", err, err)
			}
			var got []string
			found := false
			for _, l := range leaves(ve) {
				got = append(got, fmt.Sprintf("%q: %s", l.InstanceLocation, l.Message))
				if l.InstanceLocation == tc.loc {
					found = found || strings.Contains(l.Message, tc.message)
				} else if !slices.Contains(tc.extra, l.InstanceLocation) {
					t.Errorf("leaf error at %q, want %q", l.InstanceLocation, tc.loc)
				}
			}
			sort.Strings(got)
			if !found {
				t.Errorf("no leaf error at %q mentions %q", tc.loc, tc.message)
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("leaves:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}
