package docs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/diag"
	"github.com/dataflow-sync/dataflow/engine/docs"
	"github.com/dataflow-sync/dataflow/engine/mapping"
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
