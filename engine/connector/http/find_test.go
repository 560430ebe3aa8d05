package httpconn

// Find (connector.Finder) over the fake API, which filters its list by ?sku=.

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

const findEntity = `    list: {path: /items, records: items, page: {cursor: pagination.nextPageCursor, param: cursor}}
    find:
      by: [sku]
      path: /items
      query: {sku: terms}
      batch: 4
      records: items
      page: {cursor: pagination.nextPageCursor, param: cursor}
`

// TestFind: the keys' values of find.by are sent batch by batch (each value once), pages are
// followed, and each record found is returned once, in the order of the requests. A merge
// criterion of more paths than find.by is searched by find.by alone (the engine compares the
// rest); one that lacks a path of find.by, or an entity without find, cannot be searched.
func TestFind(t *testing.T) {
	a := newAPI(t, 9)
	c, _ := openConn(t, system(a.srv.URL, "", findEntity), nil)
	keys := [][]string{{"SKU-2"}, {"SKU-9"}, {"nope"}, {"SKU-1"}, {"SKU-4"}, {"SKU-5"}, {"SKU-2"}, {"SKU-7"}}
	recs, err := c.Find(ctx, "Item", []string{"sku"}, keys)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.ID)
	}
	// Requests: SKU-2,9,nope,1 (one page of 3: 1,2,9) and SKU-4,5,7 (one page of 3).
	if strings.Join(got, ",") != "1,2,9,4,5,7" {
		t.Errorf("found %v", got)
	}
	var queries []string
	for _, h := range a.requests("GET /items") {
		queries = append(queries, strings.Join(h.query["sku"], " "))
	}
	slices.Sort(queries)
	if want := []string{"SKU-2 SKU-9 nope SKU-1", "SKU-4 SKU-5 SKU-7"}; !slices.Equal(queries, want) {
		t.Errorf("queries %q, want %q", queries, want)
	}

	recs, err = c.Find(ctx, "Item", []string{"name", "sku"}, [][]string{{"whatever", "SKU-3"}})
	if err != nil || len(recs) != 1 || recs[0].ID != "3" {
		t.Errorf("by name and sku: %+v, %v", recs, err)
	}
	before := len(a.requests("*"))
	if _, err := c.Find(ctx, "Item", []string{"name"}, [][]string{{"Item 3"}}); !errors.Is(err, connector.ErrCannotFind) ||
		err.Error() != "fake Item: find searches by sku, not by name: cannot find records by these properties" {
		t.Errorf("by name: %v", err)
	}
	c, _ = openConn(t, system(a.srv.URL, "", "    list: {path: /items, records: items}\n"), nil)
	if _, err := c.Find(ctx, "Item", []string{"sku"}, [][]string{{"SKU-3"}}); !errors.Is(err, connector.ErrCannotFind) {
		t.Errorf("without find: %v", err)
	}
	if n := len(a.requests("*")) - before; n != 0 {
		t.Errorf("%d requests for searches that cannot be made", n)
	}
}

// TestFindOneValue: with batch 1 and one path, value is the value searched for; a failing
// request fails the search (a record not found must not be taken for a record missing).
func TestFindOneValue(t *testing.T) {
	a := newAPI(t, 3)
	entity := strings.Replace(strings.Replace(findEntity, "query: {sku: terms}", "query: {sku: term}", 1), "batch: 4", "batch: 1", 1)
	c, _ := openConn(t, system(a.srv.URL, "", entity), nil)
	recs, err := c.Find(ctx, "Item", []string{"sku"}, [][]string{{"SKU-3"}, {"SKU-1"}})
	if err != nil || len(recs) != 2 || len(a.requests("GET /items")) != 2 {
		t.Fatalf("found %+v, %v after %d requests", recs, err, len(a.requests("GET /items")))
	}
	a.inject("GET /items", status(404, "", `{"message": "no such route"}`))
	if _, err := c.Find(ctx, "Item", []string{"sku"}, [][]string{{"SKU-2"}}); err == nil || !strings.HasSuffix(err.Error(), "404 Not Found: no such route") {
		t.Errorf("error %v", err)
	}
}

// TestCheckFind: find's names and by are checked, by against the entity's schema.
func TestCheckFind(t *testing.T) {
	sys := loadSystem(t, system("https://api.example.com", "", `    list: {path: /items}
    find:
      by: [sku, skuu, sku]
      path: /items
      query: {sku: terms, t: tuples, id: id}
`), map[string]string{})
	ent := &schema.Entity{Root: &schema.Property{Types: []string{"object"}, Properties: map[string]*schema.Property{
		"sku": {Types: []string{"string"}}, "name": {Types: []string{"string"}},
	}}}
	var got []string
	for _, d := range (Driver{}).CheckEntity(sys.Entities[0], ent) {
		got = append(got, d.Error())
	}
	want := []string{
		`fake.yaml:15:23: find.by names sku twice`,
		`fake.yaml:17:20: find.query.sku: unknown name "terms"`,
		`fake.yaml:17:42: find.query.id: unknown name "id"`,
		`fake.yaml:15:17: find.by: Item has no property "skuu"; did you mean "sku"?`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestFindFilterQuoted: a filter built with quote keeps a value with a " one literal, and
// joined with || per term; the URL carries it query-escaped.
func TestFindFilterQuoted(t *testing.T) {
	a := newAPI(t, 1)
	ent := `    list: {path: /items, records: items}
    find:
      by: [sku]
      path: /items
      query: {filter: 'join(map(terms, "sku=" + quote(#)), " || ")'}
      batch: 2
      records: items
`
	c, _ := openConn(t, system(a.srv.URL, "", ent), nil)
	if _, err := c.Find(ctx, "Item", []string{"sku"}, [][]string{{`A"B`}, {`x" || sku != "`}}); err != nil {
		t.Fatal(err)
	}
	h := a.requests("GET /items")
	if want := `sku="A\"B" || sku="x\" || sku != \""`; len(h) != 1 || h[0].query["filter"][0] != want {
		t.Errorf("filter %v, want %s", h, want)
	}
}
