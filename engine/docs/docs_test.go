package docs_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/docs"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3", for the Northwind database
)

// stamp is the "Generated:" line of every document in these tests and in testdata/golden.
const stamp = "2024-11-06 00:00:01"

// ---------------------------------------------------------------------------------------------
// Fixtures: small projects written into a temporary directory and loaded by the real engine,
// so the documents are built from exactly what `dataflow docs` would compile.

// typ is a JSON Schema of one JSON type; "" gives an untyped property.
func typ(t string) string {
	if t == "" {
		return `{}`
	}
	if strings.Contains(t, "|") {
		parts := strings.Split(t, "|")
		q, _ := json.Marshal(parts)
		return `{"type": ` + string(q) + `}`
	}
	return `{"type": "` + t + `"}`
}

// prop is one member of an object schema: name and schema.
func prop(name, schema string) string {
	q, _ := json.Marshal(name)
	return string(q) + ": " + schema
}

// object is an object schema with the given members.
func object(props ...string) string {
	return `{"type": "object", "properties": {` + strings.Join(props, ", ") + `}}`
}

// listOf is an array of objects with the given members.
func listOf(props ...string) string {
	return `{"type": "array", "items": ` + object(props...) + `}`
}

// entity is one entity of a fixture system; its schema always has an "id".
type entity struct {
	name  string
	props []string
}

func ent(name string, props ...string) entity { return entity{name: name, props: props} }

// project is a mapping project under construction in a temporary directory.
type project struct {
	t   *testing.T
	dir string
}

func newProject(t *testing.T) *project {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"systems", "schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &project{t: t, dir: dir}
}

func (p *project) write(name, text string) {
	p.t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, name), []byte(text), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// system writes a system file and its entities' schema files.
func (p *project) system(id, name string, entities ...entity) *project {
	p.t.Helper()
	q, _ := json.Marshal(name) // a JSON string is a YAML double-quoted scalar
	var b strings.Builder
	fmt.Fprintf(&b, "system: %s\nname: %s\nconnector: sqlite\npath: %s.db\nentities:\n", id, q, id)
	for _, e := range entities {
		file := id + "-" + strings.ToLower(e.name) + ".json"
		fmt.Fprintf(&b, "  %s:\n    table: %s\n    id: id\n    schema: ../schemas/%s\n", e.name, strings.ToLower(e.name), file)
		p.write(filepath.Join("schemas", file), object(append([]string{prop("id", typ("string"))}, e.props...)...))
	}
	p.write(filepath.Join("systems", id+".yaml"), b.String())
	return p
}

// dataflow writes the dataflow file.
func (p *project) dataflow(yaml string) *project {
	p.write("dataflow.yaml", yaml)
	return p
}

// load compiles the project and returns its one dataflow; any diagnostic fails the test, since a
// document of an invalid project proves nothing.
func (p *project) load() *mapping.Dataflow {
	p.t.Helper()
	return loadDataflow(p.t, p.dir)
}

func loadDataflow(t *testing.T, paths ...string) *mapping.Dataflow {
	t.Helper()
	return loadDataflowEnv(t, nil, paths...)
}

// loadDataflowEnv is loadDataflow with ${VAR}s read through env.
func loadDataflowEnv(t *testing.T, env config.Lookup, paths ...string) *mapping.Dataflow {
	t.Helper()
	eng, err := engine.New(env)
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Load(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	if res.Diagnostics.HasErrors() { // warnings (a create without merge criteria) are the fixtures' business
		var b bytes.Buffer
		diag.WriteText(&b, res.Diagnostics, res.Sources)
		t.Fatalf("the fixture is invalid:\n%s", b.String())
	}
	if len(res.Project.Dataflows) != 1 {
		t.Fatalf("the fixture has %d dataflows, want 1", len(res.Project.Dataflows))
	}
	return res.Project.Dataflows[0]
}

// build returns the documents of the project's dataflow by name: "<id>" and "<id>.reverse".
func (p *project) build() map[string]*docs.Document {
	p.t.Helper()
	out := map[string]*docs.Document{}
	for _, d := range docs.Build(p.load(), stamp) {
		out[d.Name] = d
	}
	return out
}

// checkText compares a rendered document with the expected text, showing both on failure.
func checkText(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n--- got\n%s\n--- want\n%s\n--- first difference at line %d", what, got, want, firstDiff(got, want))
	}
}

func firstDiff(a, b string) int {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

// ---------------------------------------------------------------------------------------------
// Two small systems most tests use: a CRM and a shop.

func crmShop(t *testing.T) *project {
	return newProject(t).
		system("crm", "Acme CRM",
			ent("Product", prop("sku", typ("string")), prop("name", typ("string")), prop("active", typ("boolean")),
				prop("stock", typ("integer")), prop("price", typ("number")), prop("remark", typ("string"))),
			ent("Customer", prop("email", typ("string")), prop("first", typ("string")), prop("last", typ("string"))),
			ent("Order", prop("customer_id", typ("string")), prop("total", typ("number")),
				prop("lines", listOf(prop("product_id", typ("string")), prop("qty", typ("integer")))))).
		system("shop", "Web Shop",
			ent("Item", prop("sku", typ("string")), prop("title", typ("string")), prop("quantity", typ("integer")),
				prop("price", typ("string")), prop("note", typ("string")), prop("extra", typ("")),
				prop("slug", typ("string|integer"))),
			ent("Buyer", prop("email", typ("string")), prop("givenName", typ("string")), prop("familyName", typ("string"))),
			ent("Sale", prop("buyerId", typ("string")), prop("total", typ("number")),
				prop("items", listOf(prop("itemId", typ("string")), prop("count", typ("integer"))))))
}

// ---------------------------------------------------------------------------------------------
// Paragraph 1: the trigger.

func TestTrigger(t *testing.T) {
	tests := []struct {
		name     string
		flow     string // the flow's policy keys
		forward  []string
		backward []string // nil: the flow has no section in the reverse document
	}{{
		name: "create always",
		flow: "create: always",
		forward: []string{
			"Every Acme CRM Product will be synchronized with a Web Shop Item.",
		},
		backward: []string{
			"Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.",
		},
	}, {
		name: "default is create always",
		flow: "sync: both",
		forward: []string{
			"Every Acme CRM Product will be synchronized with a Web Shop Item.",
		},
		backward: []string{
			"Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.",
		},
	}, {
		name: "create always with when",
		flow: "when: {expr: active, describe: \" is active \"}",
		forward: []string{
			"When a Acme CRM Product is active, it will be synchronized with a Web Shop Item.",
		},
		backward: []string{
			"Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.",
		},
	}, {
		name: "create never",
		flow: "create: never",
		forward: []string{
			"Before any synchronization can take place, a link between a Acme CRM Product and a Web Shop Item must be established.",
		},
		backward: []string{
			"Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.",
		},
	}, {
		name: "create never wins over when",
		flow: "create: never\n    when: {expr: active, describe: is active}",
		forward: []string{
			"Before any synchronization can take place, a link between a Acme CRM Product and a Web Shop Item must be established.",
		},
		backward: []string{
			"Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.",
		},
	}, {
		name: "create in both systems",
		flow: "create: {target: never, source: always}",
		forward: []string{
			"Before any synchronization can take place, a link between a Acme CRM Product and a Web Shop Item must be established.",
		},
		backward: []string{
			"Every Web Shop Item will be synchronized with a Acme CRM Product.",
		},
	}, {
		name: "a to-target flow has no reverse section",
		flow: "sync: to-target",
		forward: []string{
			"Every Acme CRM Product will be synchronized with a Web Shop Item.",
		},
	}, {
		name: "create referenced, but nothing refers to the flow",
		flow: "create: referenced",
		forward: []string{
			"Before any synchronization can take place, a link between a Acme CRM Product and a Web Shop Item must be established.",
		},
		backward: []string{
			"Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := crmShop(t).dataflow(`dataflow: crm-to-shop
source: crm
target: shop
flows:
  - id: product-to-item
    source: Product
    target: Item
    ` + tt.flow + `
    properties:
      - {source: sku, target: sku}
`).build()
			if got := docs["crm-to-shop"].Sections[0].Paragraphs; !equal(got, tt.forward) {
				t.Errorf("forward paragraphs:\n got %q\nwant %q", got, tt.forward)
			}
			rev := docs["crm-to-shop.reverse"]
			switch {
			case tt.backward == nil && rev != nil:
				t.Errorf("a reverse document with %d sections, want none", len(rev.Sections))
			case tt.backward != nil && rev == nil:
				t.Errorf("no reverse document")
			case tt.backward != nil && !equal(rev.Sections[0].Paragraphs, tt.backward):
				t.Errorf("reverse paragraphs:\n got %q\nwant %q", rev.Sections[0].Paragraphs, tt.backward)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------------------------
// Paragraph 2: "A new <T> will be created ... connected to a <R> ...", with the referring
// entities in file order joined like "a HubSpot Deal, Quote, or Lineitem".

func TestReferencedCreation(t *testing.T) {
	hubspot := func(t *testing.T) *project {
		return newProject(t).
			system("hubspot", "HubSpot",
				ent("Company", prop("name", typ("string"))),
				ent("Deal", prop("company", typ("string"))),
				ent("Quote", prop("company", typ("string"))),
				ent("Lineitem", prop("company", typ("string")))).
			system("erp", "Tripletex",
				ent("Customer", prop("name", typ("string"))),
				ent("Project", prop("customer", typ("string"))),
				ent("Offer", prop("customer", typ("string"))),
				ent("Line", prop("customer", typ("string"))))
	}
	const head = `dataflow: hubspot-to-erp
source: hubspot
target: erp
flows:
  - id: company-to-customer
    source: Company
    target: Customer
    create: referenced
    properties:
      - {source: name, target: name}
`
	referring := func(src, tgt string) string {
		return fmt.Sprintf(`  - id: %s-to-%s
    source: %s
    target: %s
    properties:
      - {source: company, target: customer, ref: company-to-customer}
`, strings.ToLower(src), strings.ToLower(tgt), src, tgt)
	}
	tests := []struct {
		name  string
		flows string
		want  string
	}{
		{"one", referring("Deal", "Project"),
			"A new Tripletex Customer will be created from a HubSpot Company if it is connected to a HubSpot Deal that is synchronized into Tripletex."},
		{"two", referring("Deal", "Project") + referring("Quote", "Offer"),
			"A new Tripletex Customer will be created from a HubSpot Company if it is connected to a HubSpot Deal, or Quote that is synchronized into Tripletex."},
		{"three, in file order", referring("Deal", "Project") + referring("Quote", "Offer") + referring("Lineitem", "Line"),
			"A new Tripletex Customer will be created from a HubSpot Company if it is connected to a HubSpot Deal, Quote, or Lineitem that is synchronized into Tripletex."},
		{"file order, not name order", referring("Quote", "Offer") + referring("Deal", "Project"),
			"A new Tripletex Customer will be created from a HubSpot Company if it is connected to a HubSpot Quote, or Deal that is synchronized into Tripletex."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := hubspot(t).dataflow(head + tt.flows).build()["hubspot-to-erp"]
			want := []string{
				"Before any synchronization can take place, a link between a HubSpot Company and a Tripletex Customer must be established.",
				tt.want,
			}
			if got := d.Sections[0].Paragraphs; !equal(got, want) {
				t.Errorf("paragraphs:\n got %q\nwant %q", got, want)
			}
		})
	}

	// The design's own example, with two referring entities: a Tidsbanken Ansatt, or Prosjekt.
	t.Run("Tidsbanken", func(t *testing.T) {
		d := newProject(t).
			system("tidsbanken", "Tidsbanken", ent("Avdeling", prop("navn", typ("string"))),
				ent("Ansatt", prop("avdeling", typ("string"))), ent("Prosjekt", prop("avdeling", typ("string")))).
			system("visma", "Visma", ent("Department", prop("name", typ("string"))),
				ent("Employee", prop("department", typ("string"))), ent("Project", prop("department", typ("string")))).
			dataflow(`dataflow: tidsbanken-to-visma
source: tidsbanken
target: visma
flows:
  - id: avdeling-to-department
    source: Avdeling
    target: Department
    create: referenced
    properties:
      - {source: navn, target: name}
  - id: ansatt-to-employee
    source: Ansatt
    target: Employee
    properties:
      - {source: avdeling, target: department, ref: avdeling-to-department}
  - id: prosjekt-to-project
    source: Prosjekt
    target: Project
    properties:
      - {source: avdeling, target: department, ref: avdeling-to-department}
`).build()["tidsbanken-to-visma"]
		want := "A new Visma Department will be created from a Tidsbanken Avdeling if it is connected to a Tidsbanken Ansatt, or Prosjekt that is synchronized into Visma."
		if got := d.Sections[0].Paragraphs[1]; got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})

	// A reference from a list element counts, and in the reverse document the referring
	// entities are those of the other system.
	t.Run("list element, both directions", func(t *testing.T) {
		ds := crmShop(t).dataflow(`dataflow: crm-to-shop
source: crm
target: shop
flows:
  - id: product-to-item
    source: Product
    target: Item
    create: {target: referenced, source: referenced}
    properties:
      - {source: sku, target: sku}
  - id: order-to-sale
    source: Order
    target: Sale
    properties:
      - source: lines
        target: items
        properties:
          - {source: product_id, target: itemId, ref: product-to-item}
`).build()
		want := "A new Web Shop Item will be created from a Acme CRM Product if it is connected to a Acme CRM Order that is synchronized into Web Shop."
		if got := ds["crm-to-shop"].Sections[0].Paragraphs; len(got) != 2 || got[1] != want {
			t.Errorf("forward: got %q\nwant second paragraph %q", got, want)
		}
		want = "A new Acme CRM Product will be created from a Web Shop Item if it is connected to a Web Shop Sale that is synchronized into Acme CRM."
		if got := ds["crm-to-shop.reverse"].Sections[0].Paragraphs; len(got) != 2 || got[1] != want {
			t.Errorf("reverse: got %q\nwant second paragraph %q", got, want)
		}
	})
}

// ---------------------------------------------------------------------------------------------
// Paragraph 3: the merge table, one row per pair, columns swapped in the reverse document.

func TestMergeTable(t *testing.T) {
	ds := crmShop(t).dataflow(`dataflow: crm-to-shop
source: crm
target: shop
flows:
  - id: customer-to-buyer
    source: Customer
    target: Buyer
    create: never
    merge:
      - [{source: email, target: email}]
      - [{source: first, target: givenName}, {source: last, target: familyName}]
    properties:
      - {source: email, target: email}
`).build()
	fwd := ds["crm-to-shop"].Sections[0]
	if want := "A Acme CRM Customer will merge with a Web Shop Buyer if one of the following property combinations match:"; fwd.MergeIntro != want {
		t.Errorf("merge intro:\n got %q\nwant %q", fwd.MergeIntro, want)
	}
	wantFwd := docs.Table{
		Header: []string{"Acme CRM Customer Property", "Web Shop Buyer Property"},
		Rows:   [][]string{{"email", "email"}, {"first", "givenName"}, {"last", "familyName"}},
	}
	if fmt.Sprint(fwd.Merge) != fmt.Sprint(wantFwd) {
		t.Errorf("forward merge table:\n got %q\nwant %q", fwd.Merge, wantFwd)
	}
	rev := ds["crm-to-shop.reverse"].Sections[0]
	wantRev := docs.Table{
		Header: []string{"Web Shop Buyer Property", "Acme CRM Customer Property"},
		Rows:   [][]string{{"email", "email"}, {"givenName", "first"}, {"familyName", "last"}},
	}
	if fmt.Sprint(rev.Merge) != fmt.Sprint(wantRev) {
		t.Errorf("reverse merge table:\n got %q\nwant %q", rev.Merge, wantRev)
	}

	// Without merge criteria there is neither the sentence nor the table.
	ds = crmShop(t).dataflow(`dataflow: crm-to-shop
source: crm
target: shop
flows:
  - id: customer-to-buyer
    source: Customer
    target: Buyer
    properties:
      - {source: email, target: email}
`).build()
	if s := ds["crm-to-shop"].Sections[0]; s.MergeIntro != "" || len(s.Merge.Rows) != 0 {
		t.Errorf("a flow without merge has merge text %q, rows %q", s.MergeIntro, s.Merge.Rows)
	}
}

// ---------------------------------------------------------------------------------------------
// Whole documents, both formats, both directions: the layout of the seed document, properties
// by direction, list properties as dotted element rows, computed properties, N/A types.

const wholeFlows = `dataflow: crm-to-shop
source: crm
target: shop
flows:
  - id: product-to-item
    source: Product
    target: Item
    create: never
    merge:
      - [{source: sku, target: sku}]
    properties:
      - {source: sku, target: sku}
      - {source: name, target: title, sync: to-target}
      - {source: stock, target: quantity}
      - {source: price, target: price, to_target: "amount(price)", to_source: "decimal(price)"}
      - {source: remark, target: note, sync: to-source}
      - {source: sku, target: extra, sync: to-target}
      - {target: slug, to_target: "lower(name)", sync: to-target}
  - id: order-to-sale
    source: Order
    target: Sale
    when: {expr: "total > 0", describe: has a total}
    properties:
      - {source: customer_id, target: buyerId}
      - {source: total, target: total, sync: to-target}
      - source: lines
        target: items
        properties:
          - {source: product_id, target: itemId, ref: product-to-item}
          - {source: qty, target: count}
`

func TestWholeDocumentRST(t *testing.T) {
	ds := crmShop(t).dataflow(wholeFlows).build()
	checkText(t, "forward", docs.RST(ds["crm-to-shop"]), `=============================
Acme CRM to Web Shop Dataflow
=============================

Generated: 2024-11-06 00:00:01

Introduction
------------

This document describes the dataflow from Acme CRM to Web Shop: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

Acme CRM Product to Web Shop Item
---------------------------------
Before any synchronization can take place, a link between a Acme CRM Product and a Web Shop Item must be established.

A Acme CRM Product will merge with a Web Shop Item if one of the following property combinations match:

.. list-table::
   :header-rows: 1

   * - Acme CRM Product Property
     - Web Shop Item Property
   * - sku
     - sku

Once a link between a Acme CRM Product and a Web Shop Item is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Acme CRM Product and a Web Shop Item:

.. list-table::
   :header-rows: 1

   * - Acme CRM Product Property
     - Web Shop Item Property
     - Web Shop Data Type
   * - sku
     - sku
     - "string"
   * - name
     - title
     - "string"
   * - stock
     - quantity
     - "integer"
   * - price
     - price
     - "string"
   * - sku
     - extra
     - N/A
   * - (computed: lower(name))
     - slug
     - N/A


Acme CRM Order to Web Shop Sale
-------------------------------
When a Acme CRM Order has a total, it will be synchronized with a Web Shop Sale.

Once a link between a Acme CRM Order and a Web Shop Sale is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Acme CRM Order and a Web Shop Sale:

.. list-table::
   :header-rows: 1

   * - Acme CRM Order Property
     - Web Shop Sale Property
     - Web Shop Data Type
   * - customer_id
     - buyerId
     - "string"
   * - total
     - total
     - "number"
   * - lines.product_id
     - items.itemId
     - "string"
   * - lines.qty
     - items.count
     - "integer"
`)
	checkText(t, "reverse", docs.RST(ds["crm-to-shop.reverse"]), `=============================
Web Shop to Acme CRM Dataflow
=============================

Generated: 2024-11-06 00:00:01

Introduction
------------

This document describes the dataflow from Web Shop to Acme CRM: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

Web Shop Item to Acme CRM Product
---------------------------------
Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.

A Web Shop Item will merge with a Acme CRM Product if one of the following property combinations match:

.. list-table::
   :header-rows: 1

   * - Web Shop Item Property
     - Acme CRM Product Property
   * - sku
     - sku

Once a link between a Web Shop Item and a Acme CRM Product is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Web Shop Item and a Acme CRM Product:

.. list-table::
   :header-rows: 1

   * - Web Shop Item Property
     - Acme CRM Product Property
     - Acme CRM Data Type
   * - sku
     - sku
     - "string"
   * - quantity
     - stock
     - "integer"
   * - price
     - price
     - "number"
   * - note
     - remark
     - "string"


Web Shop Sale to Acme CRM Order
-------------------------------
Before any synchronization can take place, a link between a Web Shop Sale and a Acme CRM Order must be established.

Once a link between a Web Shop Sale and a Acme CRM Order is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Web Shop Sale and a Acme CRM Order:

.. list-table::
   :header-rows: 1

   * - Web Shop Sale Property
     - Acme CRM Order Property
     - Acme CRM Data Type
   * - buyerId
     - customer_id
     - "string"
   * - items.itemId
     - lines.product_id
     - "string"
   * - items.count
     - lines.qty
     - "integer"
`)
}

func TestWholeDocumentMarkdown(t *testing.T) {
	ds := crmShop(t).dataflow(wholeFlows).build()
	checkText(t, "forward", docs.Markdown(ds["crm-to-shop"]), `# Acme CRM to Web Shop Dataflow

Generated: 2024-11-06 00:00:01

## Introduction

This document describes the dataflow from Acme CRM to Web Shop: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

## Acme CRM Product to Web Shop Item

Before any synchronization can take place, a link between a Acme CRM Product and a Web Shop Item must be established.

A Acme CRM Product will merge with a Web Shop Item if one of the following property combinations match:

| Acme CRM Product Property | Web Shop Item Property |
| --- | --- |
| sku | sku |

Once a link between a Acme CRM Product and a Web Shop Item is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Acme CRM Product and a Web Shop Item:

| Acme CRM Product Property | Web Shop Item Property | Web Shop Data Type |
| --- | --- | --- |
| sku | sku | "string" |
| name | title | "string" |
| stock | quantity | "integer" |
| price | price | "string" |
| sku | extra | N/A |
| (computed: lower(name)) | slug | N/A |


## Acme CRM Order to Web Shop Sale

When a Acme CRM Order has a total, it will be synchronized with a Web Shop Sale.

Once a link between a Acme CRM Order and a Web Shop Sale is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Acme CRM Order and a Web Shop Sale:

| Acme CRM Order Property | Web Shop Sale Property | Web Shop Data Type |
| --- | --- | --- |
| customer\_id | buyerId | "string" |
| total | total | "number" |
| lines.product\_id | items.itemId | "string" |
| lines.qty | items.count | "integer" |
`)
	checkText(t, "reverse", docs.Markdown(ds["crm-to-shop.reverse"]), `# Web Shop to Acme CRM Dataflow

Generated: 2024-11-06 00:00:01

## Introduction

This document describes the dataflow from Web Shop to Acme CRM: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

## Web Shop Item to Acme CRM Product

Before any synchronization can take place, a link between a Web Shop Item and a Acme CRM Product must be established.

A Web Shop Item will merge with a Acme CRM Product if one of the following property combinations match:

| Web Shop Item Property | Acme CRM Product Property |
| --- | --- |
| sku | sku |

Once a link between a Web Shop Item and a Acme CRM Product is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Web Shop Item and a Acme CRM Product:

| Web Shop Item Property | Acme CRM Product Property | Acme CRM Data Type |
| --- | --- | --- |
| sku | sku | "string" |
| quantity | stock | "integer" |
| price | price | "number" |
| note | remark | "string" |


## Web Shop Sale to Acme CRM Order

Before any synchronization can take place, a link between a Web Shop Sale and a Acme CRM Order must be established.

Once a link between a Web Shop Sale and a Acme CRM Order is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the Acme CRM value wins.

The following properties are synchronized between a Web Shop Sale and a Acme CRM Order:

| Web Shop Sale Property | Acme CRM Order Property | Acme CRM Data Type |
| --- | --- | --- |
| buyerId | customer\_id | "string" |
| items.itemId | lines.product\_id | "string" |
| items.count | lines.qty | "integer" |
`)
}

// The Introduction is configurable, with {source} and {target} standing for the system names
// of the document's direction.
func TestIntroduction(t *testing.T) {
	ds := crmShop(t).dataflow(`dataflow: crm-to-shop
source: crm
target: shop
introduction: |
  QA checklist for {source} to {target}.
flows:
  - id: product-to-item
    source: Product
    target: Item
    properties:
      - {source: sku, target: sku}
`).build()
	if got, want := ds["crm-to-shop"].Introduction, "QA checklist for Acme CRM to Web Shop."; got != want {
		t.Errorf("forward: got %q, want %q", got, want)
	}
	if got, want := ds["crm-to-shop.reverse"].Introduction, "QA checklist for Web Shop to Acme CRM."; got != want {
		t.Errorf("reverse: got %q, want %q", got, want)
	}
}

// ---------------------------------------------------------------------------------------------
// Escaping: names come from user files and must come out of the renderers as written.

func escapingProject(t *testing.T) *project {
	return newProject(t).
		system("star", "*Star* Shop_", ent("Item_", prop("price_", typ("number")), prop("`code`", typ("string")),
			prop("a|b", typ("string")), prop("x*y", typ("string")))).
		system("plain", "Plain", ent("Thing", prop("p", typ("number")), prop("c", typ("string")),
			prop("pipe", typ("string")), prop("star", typ("string")))).
		dataflow(withBackquotes(`dataflow: star-to-plain
source: star
target: plain
flows:
  - id: item-to-thing
    source: Item_
    target: Thing
    when: {expr: "price_ > 0", describe: "costs *something*"}
    merge:
      - [{source: "a|b", target: pipe}, {source: "{bq}code{bq}", target: c}]
    properties:
      - {source: price_, target: p}
      - {source: "{bq}code{bq}", target: c}
      - {source: "a|b", target: pipe}
      - {source: "x*y", target: star}
`))
}

// withBackquotes puts the backquotes, which a Go raw string cannot hold, in place of {bq}.
func withBackquotes(s string) string { return strings.ReplaceAll(s, "{bq}", "`") }

func TestEscapingRST(t *testing.T) {
	d := escapingProject(t).build()["star-to-plain"]
	checkText(t, "rst", docs.RST(d), withBackquotes(`=================================
\*Star\* Shop\_ to Plain Dataflow
=================================

Generated: 2024-11-06 00:00:01

Introduction
------------

This document describes the dataflow from \*Star\* Shop\_ to Plain: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

\*Star\* Shop\_ Item\_ to Plain Thing
-------------------------------------
When a \*Star\* Shop\_ Item\_ costs \*something\*, it will be synchronized with a Plain Thing.

A \*Star\* Shop\_ Item\_ will merge with a Plain Thing if one of the following property combinations match:

.. list-table::
   :header-rows: 1

   * - \*Star\* Shop\_ Item\_ Property
     - Plain Thing Property
   * - a\|b
     - pipe
   * - \{bq}code\{bq}
     - c

Once a link between a \*Star\* Shop\_ Item\_ and a Plain Thing is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the \*Star\* Shop\_ value wins.

The following properties are synchronized between a \*Star\* Shop\_ Item\_ and a Plain Thing:

.. list-table::
   :header-rows: 1

   * - \*Star\* Shop\_ Item\_ Property
     - Plain Thing Property
     - Plain Data Type
   * - price\_
     - p
     - "number"
   * - \{bq}code\{bq}
     - c
     - "string"
   * - a\|b
     - pipe
     - "string"
   * - x\*y
     - star
     - "string"
`))
}

func TestEscapingMarkdown(t *testing.T) {
	d := escapingProject(t).build()["star-to-plain"]
	checkText(t, "md", docs.Markdown(d), withBackquotes(`# \*Star\* Shop\_ to Plain Dataflow

Generated: 2024-11-06 00:00:01

## Introduction

This document describes the dataflow from \*Star\* Shop\_ to Plain: which records are synchronized, when two records are linked, and which properties are kept in sync. Use it as a checklist when testing the integration.

## \*Star\* Shop\_ Item\_ to Plain Thing

When a \*Star\* Shop\_ Item\_ costs \*something\*, it will be synchronized with a Plain Thing.

A \*Star\* Shop\_ Item\_ will merge with a Plain Thing if one of the following property combinations match:

| \*Star\* Shop\_ Item\_ Property | Plain Thing Property |
| --- | --- |
| a\|b | pipe |
| \{bq}code\{bq} | c |

Once a link between a \*Star\* Shop\_ Item\_ and a Plain Thing is established, it will keep in sync between the two systems, regardless of where it is edited. When a property was changed in both systems since the last synchronization, the \*Star\* Shop\_ value wins.

The following properties are synchronized between a \*Star\* Shop\_ Item\_ and a Plain Thing:

| \*Star\* Shop\_ Item\_ Property | Plain Thing Property | Plain Data Type |
| --- | --- | --- |
| price\_ | p | "number" |
| \{bq}code\{bq} | c | "string" |
| a\|b | pipe | "string" |
| x\*y | star | "string" |
`))
}

// ---------------------------------------------------------------------------------------------
// The golden documents in testdata/golden: those of the shipped mappings, and those of the
// Northwind fixture, whose entities are typed from a Northwind database built here. The CLI
// scripts check that `dataflow docs` writes exactly these files; this test pins them to the
// engine and, with UPDATE_GOLDEN=1, rewrites them:
//
//	UPDATE_GOLDEN=1 go test ./engine/docs/ -run TestGolden
//
// Read every change critically against the README's "The documents" before committing: a golden
// file is a specification of the documents, not a recording of whatever the renderer prints.

const goldenDir = "../../testdata/golden"

// goldenDocs builds the documents of every dataflow that has golden files, by file name
// without extension.
func goldenDocs(t *testing.T) map[string]*docs.Document {
	t.Helper()
	db := filepath.Join(t.TempDir(), "northwind.db")
	loadSQL(t, db, "../../testdata/northwind/northwind.sql")
	env := func(name string) (string, bool) {
		if name == "NORTHWIND_DB" {
			return db, true
		}
		return "", false
	}
	dataflows := []*mapping.Dataflow{
		loadDataflow(t, "../../mappings"),
		loadDataflowEnv(t, env, "../../testdata/northwind/northwind-to-squarespace.yaml",
			"../../testdata/northwind/northwind.yaml", "../../mappings/systems/squarespace-local.yaml"),
	}
	out := map[string]*docs.Document{}
	for _, df := range dataflows {
		built := docs.Build(df, stamp)
		if len(built) != 2 {
			t.Fatalf("%s: %d documents, want 2 (both directions)", df.ID(), len(built))
		}
		for _, d := range built {
			out[d.Name] = d
		}
	}
	return out
}

// loadSQL builds a SQLite database from a SQL script.
func loadSQL(t *testing.T, db, script string) {
	t.Helper()
	text, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sql.Open("sqlite3", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(string(text)); err != nil {
		tx.Rollback()
		t.Fatalf("%s: %v", script, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestGolden(t *testing.T) {
	renderers := []struct {
		ext    string
		render func(*docs.Document) string
	}{{".rst", docs.RST}, {".md", docs.Markdown}}
	built := goldenDocs(t)
	names := make([]string, 0, len(built))
	for n := range built {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, r := range renderers {
			name := filepath.Join(goldenDir, n+r.ext)
			got := r.render(built[n])
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(name, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(name)
			if err != nil {
				t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
			}
			checkText(t, name, got, string(want))
		}
	}
	// No stale golden file: each belongs to a document built above.
	files, err := filepath.Glob(filepath.Join(goldenDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if built[strings.TrimSuffix(base, filepath.Ext(base))] == nil {
			t.Errorf("%s is no document of a golden dataflow; remove it", f)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// docutils: every golden .rst, and every document the tests above render, must parse without
// a single warning, and its text must read back as the document says: the title, each section
// heading, each paragraph and each table cell, unescaped. docutils is a Python package; the
// test skips without it, unless DATAFLOW_REQUIRE_DOCUTILS=1 (CI sets it) makes that a failure.

// readBack parses each file with docutils and prints, per file, its warnings and its text.
const readBack = `
import io, json, sys
import docutils.core, docutils.nodes as nodes

def table(t):
    return [[e.astext() for e in row.traverse(nodes.entry)] for row in t.traverse(nodes.row)]

def blocks(section):
    out = []
    for child in section.children:
        if isinstance(child, nodes.title):
            continue
        if isinstance(child, nodes.paragraph):
            out.append(child.astext())
        elif isinstance(child, nodes.table):
            out.append(table(child))
        elif isinstance(child, nodes.section):
            continue
        else:
            out.append("unexpected " + child.tagname)
    return out

result = []
for path in sys.argv[1:]:
    warnings = io.StringIO()
    doc = docutils.core.publish_doctree(open(path, encoding="utf-8").read(), source_path=path,
        settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": warnings})
    sections = []
    for s in doc.traverse(nodes.section):
        sections.append({"title": s.next_node(nodes.title).astext(), "blocks": blocks(s)})
    result.append({
        "file": path,
        "warnings": warnings.getvalue(),
        "title": doc.get("title", ""),
        "top": blocks(doc),
        "sections": sections,
    })
json.dump(result, sys.stdout)
`

// python returns a Python interpreter that has docutils, or "".
func python(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("DATAFLOW_PYTHON"), "python3", "/usr/bin/python3"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if err := exec.Command(c, "-c", "import docutils").Run(); err == nil {
			return c
		}
	}
	if os.Getenv("DATAFLOW_REQUIRE_DOCUTILS") == "1" {
		t.Fatal("docutils is required (DATAFLOW_REQUIRE_DOCUTILS=1) but no python3 can import it; apt-get install python3-docutils")
	}
	t.Skip("docutils not installed (apt-get install python3-docutils; ./test.sh installs it and runs every test); set DATAFLOW_REQUIRE_DOCUTILS=1 to make this a failure")
	return ""
}

type parsed struct {
	File     string
	Warnings string
	Title    string
	Top      []any
	Sections []struct {
		Title  string
		Blocks []any
	}
}

func parseRST(t *testing.T, py string, files []string) []parsed {
	t.Helper()
	cmd := exec.Command(py, append([]string{"-c", readBack}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docutils: %v\n%s", err, stderr.String())
	}
	var res []parsed
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("docutils output: %v\n%s", err, out)
	}
	return res
}

// expectRead is what docutils must read back from a document.
func expectRead(d *docs.Document) (title string, top []any, sections []string, blocks [][]any) {
	tbl := func(t docs.Table) []any {
		rows := []any{toAny(t.Header)}
		for _, r := range t.Rows {
			rows = append(rows, toAny(r))
		}
		return rows
	}
	top = []any{"Generated: " + d.Generated}
	sections = append(sections, "Introduction")
	blocks = append(blocks, []any{d.Introduction})
	for _, s := range d.Sections {
		sections = append(sections, s.Heading)
		var b []any
		for _, p := range s.Paragraphs {
			b = append(b, p)
		}
		if s.MergeIntro != "" {
			b = append(b, s.MergeIntro, tbl(s.Merge))
		}
		S := strings.TrimSuffix(s.Properties.Header[0], " Property")
		T := strings.TrimSuffix(s.Properties.Header[1], " Property")
		b = append(b, s.PropsIntro, "The following properties are synchronized between a "+S+" and a "+T+":", tbl(s.Properties))
		blocks = append(blocks, b)
	}
	return d.Title, top, sections, blocks
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkReadBack parses the documents' RST with docutils and compares what it reads with the
// documents' text.
func checkReadBack(t *testing.T, py string, ds []*docs.Document, files []string) {
	t.Helper()
	res := parseRST(t, py, files)
	for i, r := range res {
		if r.Warnings != "" {
			t.Errorf("%s: docutils warnings:\n%s", r.File, r.Warnings)
		}
		if ds[i] == nil {
			continue
		}
		title, top, sections, blocks := expectRead(ds[i])
		if r.Title != title {
			t.Errorf("%s: title %q, want %q", r.File, r.Title, title)
		}
		if jsonOf(r.Top) != jsonOf(top) {
			t.Errorf("%s: before the first section:\n got %s\nwant %s", r.File, jsonOf(r.Top), jsonOf(top))
		}
		if len(r.Sections) != len(sections) {
			t.Errorf("%s: %d sections, want %d", r.File, len(r.Sections), len(sections))
			continue
		}
		for j, s := range r.Sections {
			if s.Title != sections[j] {
				t.Errorf("%s: section %d heading %q, want %q", r.File, j, s.Title, sections[j])
			}
			if jsonOf(s.Blocks) != jsonOf(blocks[j]) {
				t.Errorf("%s: section %q reads\n %s\nwant\n %s", r.File, s.Title, jsonOf(s.Blocks), jsonOf(blocks[j]))
			}
		}
	}
}

// TestGoldenRSTParses runs docutils on every .rst in testdata/golden and reads each back
// against the document it must say.
func TestGoldenRSTParses(t *testing.T) {
	py := python(t)
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.rst"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden .rst files")
	}
	sort.Strings(files)
	built := goldenDocs(t)
	ds := make([]*docs.Document, len(files))
	for i, f := range files {
		if ds[i] = built[strings.TrimSuffix(filepath.Base(f), ".rst")]; ds[i] == nil {
			t.Fatalf("%s: no such document (TestGolden says more)", f)
		}
	}
	checkReadBack(t, py, ds, files)
}

// TestRSTReadBack renders the test projects above, escaping included, and checks that docutils
// reads exactly their text back.
func TestRSTReadBack(t *testing.T) {
	py := python(t)
	var ds []*docs.Document
	for _, p := range []*project{crmShop(t).dataflow(wholeFlows), escapingProject(t)} {
		for _, d := range docs.Build(p.load(), stamp) {
			ds = append(ds, d)
		}
	}
	dir := t.TempDir()
	var files []string
	for i, d := range ds {
		name := filepath.Join(dir, fmt.Sprintf("%d-%s.rst", i, d.Name))
		if err := os.WriteFile(name, []byte(docs.RST(d)), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	checkReadBack(t, py, ds, files)
}
