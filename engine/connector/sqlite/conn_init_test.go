package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// The local quick start: `init: testdata/local/custom-crm.sql`, relative to the current
// directory, creates and seeds the database once.
func TestInit(t *testing.T) {
	t.Chdir(root)
	db := filepath.Join(t.TempDir(), "sub", "crm.db")
	sys := loadSystem(t, strings.Replace(crmYAML, "path: ${CRM_DB}", "path: ${CRM_DB}\ninit: testdata/local/custom-crm.sql", 1), map[string]string{"CRM_DB": db})
	c := mustOpen(t, sys, nil)
	recs, _ := scanAll(t, c, "Order", "")
	if len(recs) != 8 || len(listColumn(t, recs[0], "lines", "id")) == 0 {
		t.Fatalf("%d orders", len(recs))
	}
	written(t)(c.Update(ctx, "Product", []connector.Record{{ID: "1", Data: map[string]any{"name": "kept"}}}))
	c.Close()
	c = mustOpen(t, sys, nil) // the database exists now: not seeded again
	if got := get(t, c, "Product", "1").Data["name"]; got != "kept" {
		t.Fatalf("name = %v: the database was seeded again", got)
	}
	if mode := sqlValue(t, db, "PRAGMA journal_mode"); mode != "wal" {
		t.Errorf("journal mode %v", mode)
	}
}

// create_tables makes a local stand-in for Squarespace from its entity schemas.
func TestCreateTables(t *testing.T) {
	db := filepath.Join(t.TempDir(), "squarespace.db")
	sys := loadSystem(t, `system: squarespace
name: Squarespace
connector: sqlite
path: ${SQUARESPACE_DB}
create_tables: true
entities:
  Inventory: {table: inventory, id: variantId}
  Order: {table: orders, id: id, updated: modifiedOn}
  Sesamproducts: {table: products, id: id, updated: modifiedOn}
`, map[string]string{"SQUARESPACE_DB": db})
	var err error
	schemas := map[string]*schema.Entity{}
	for name, file := range map[string]string{"Inventory": "inventory", "Order": "order", "Sesamproducts": "sesamproducts"} {
		if schemas[name], err = schema.LoadFile(filepath.Join(root, "schemas/squarespace", file+".json")); err != nil {
			t.Fatal(err)
		}
	}
	c := mustOpen(t, sys, schemas)
	if got := sqlValue(t, db, "SELECT group_concat(name || ' ' || type || ' ' || pk, ', ') FROM pragma_table_info('inventory')"); got != "variantId TEXT 1, descriptor TEXT 0, isUnlimited BOOLEAN 0, quantity INTEGER 0, sku TEXT 0" {
		t.Errorf("inventory columns: %v", got)
	}

	product := map[string]any{
		"type": "PHYSICAL", "name": "Espresso Blend", "isVisible": true, "tags": []any{"coffee", "espresso"},
		"seoOptions": nil, "modifiedOn": "2024-11-01T00:00:00Z",
		"variants": []any{map[string]any{
			"id": "0a1b", "sku": "SQ1", "stock": map[string]any{"quantity": int64(12), "unlimited": false},
			"pricing": map[string]any{"basePrice": map[string]any{"currency": "EUR", "value": "8.90"}, "onSale": false},
		}},
	}
	r := written(t)(c.Create(ctx, "Sesamproducts", []map[string]any{product}))[0]
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(r.ID) {
		t.Fatalf("id %q", r.ID)
	}
	product["id"] = r.ID
	for _, k := range sortedKeys(r.Data) {
		if r.Data[k] != nil && product[k] == nil && k != "id" {
			t.Errorf("%s = %v appeared", k, r.Data[k])
		}
	}
	for k, v := range product {
		if !reflect.DeepEqual(r.Data[k], v) {
			t.Errorf("%s: got %#v, want %#v", k, r.Data[k], v)
		}
	}
	if got := sqlValue(t, db, "SELECT variants FROM products"); got != `[{"id":"0a1b","pricing":{"basePrice":{"currency":"EUR","value":"8.90"},"onSale":false},"sku":"SQ1","stock":{"quantity":12,"unlimited":false}}]` {
		t.Errorf("stored variants %s", got)
	}

	// A nested patch of an object column merges; arrays are replaced.
	order := written(t)(c.Create(ctx, "Order", []map[string]any{{
		"id": "ord-1", "orderNumber": "1001", "modifiedOn": "2024-11-01T00:00:00Z",
		"billingAddress": map[string]any{"firstName": "Zoë", "city": "Göteborg", "postalCode": "411 19"},
		"lineItems":      []any{map[string]any{"sku": "SQ1", "quantity": int64(2)}},
		"grandTotal":     map[string]any{"currency": "EUR", "value": "17.80"},
	}}))[0]
	if order.ID != "ord-1" {
		t.Fatal(order.ID)
	}
	r = written(t)(c.Update(ctx, "Order", []connector.Record{{ID: "ord-1", Data: map[string]any{
		"billingAddress": map[string]any{"city": "Stockholm", "postalCode": nil},
		"lineItems":      []any{},
	}}}))[0]
	if want := map[string]any{"firstName": "Zoë", "city": "Stockholm", "postalCode": nil}; !reflect.DeepEqual(r.Data["billingAddress"], want) {
		t.Errorf("billingAddress %v, want %v", r.Data["billingAddress"], want)
	}
	if !reflect.DeepEqual(r.Data["lineItems"], []any{}) || !reflect.DeepEqual(r.Data["grandTotal"], order.Data["grandTotal"]) {
		t.Errorf("lineItems %v grandTotal %v", r.Data["lineItems"], r.Data["grandTotal"])
	}
	// JSON columns hold JSON only.
	res, _ := c.Update(ctx, "Order", []connector.Record{{ID: "ord-1", Data: map[string]any{"billingAddress": map[string]any{"x": func() {}}}}})
	if res[0].Err == nil {
		t.Error("a function was stored")
	}
	// Opening again keeps the tables and their rows.
	c.Close()
	c = mustOpen(t, sys, schemas)
	if recs, _ := scanAll(t, c, "Order", ""); len(recs) != 1 {
		t.Fatalf("%d orders after reopening", len(recs))
	}
}

// create_tables makes list tables too.
func TestCreateTablesWithLists(t *testing.T) {
	db := filepath.Join(t.TempDir(), "crm.db")
	sys := loadSystem(t, strings.Replace(crmYAML, "path: ${CRM_DB}", "path: ${CRM_DB}\ncreate_tables: true", 1), map[string]string{"CRM_DB": db})
	schemas := map[string]*schema.Entity{}
	for name, file := range map[string]string{"Product": "product", "Customer": "customer", "Order": "order"} {
		s, err := schema.LoadFile(filepath.Join(root, "schemas/custom-crm", file+".json"))
		if err != nil {
			t.Fatal(err)
		}
		schemas[name] = s
	}
	c := mustOpen(t, sys, schemas)
	r := written(t)(c.Create(ctx, "Order", []map[string]any{{
		"order_number": int64(1), "subtotal": 19.9,
		"lines": []any{map[string]any{"product_id": int64(7), "quantity": int64(1), "unit_price": 0.99}},
	}}))[0]
	if r.ID != "1" || r.Data["subtotal"] != 19.9 || !reflect.DeepEqual(listColumn(t, r, "lines", "unit_price"), []any{0.99}) || !reflect.DeepEqual(listColumn(t, r, "lines", "order_id"), []any{int64(1)}) {
		t.Fatalf("%v", r)
	}
}

func TestSettingErrorKeys(t *testing.T) {
	sys := &config.System{ID: config.Str{Value: "s"}, Settings: map[string]config.Setting{}}
	_, err := Driver{}.Open(ctx, sys, nil, connector.OpenOptions{})
	var se *connector.SettingError
	if !errors.As(err, &se) || se.Key != "path" || err.Error() != "the database path is empty" {
		t.Fatalf("got %v", err)
	}
}

// The Squarespace stand-in of the quick start: init runs its script, whose triggers give
// variants ids and make inventory items; the record read back after a write shows their work.
func TestInitSquarespace(t *testing.T) {
	if _, err := os.Stat(filepath.Join(root, "testdata/local/squarespace.sql")); err != nil {
		t.Skip("no Squarespace stand-in script")
	}
	t.Chdir(root)
	db := filepath.Join(t.TempDir(), "squarespace.db")
	sys := loadSystem(t, `system: squarespace
name: Squarespace
connector: sqlite
path: ${SQUARESPACE_DB}
init: testdata/local/squarespace.sql
entities:
  Inventory: {table: inventory, id: variantId}
  Sesamproducts: {table: products, id: id, updated: modifiedOn}
`, map[string]string{"SQUARESPACE_DB": db})
	schemas := map[string]*schema.Entity{}
	for name, file := range map[string]string{"Inventory": "inventory", "Sesamproducts": "sesamproducts"} {
		s, err := schema.LoadFile(filepath.Join("schemas/squarespace", file+".json"))
		if err != nil {
			t.Fatal(err)
		}
		schemas[name] = s
	}
	c := mustOpen(t, sys, schemas)
	before, _ := scanAll(t, c, "Inventory", "")
	p := written(t)(c.Create(ctx, "Sesamproducts", []map[string]any{{
		"name": "Gooseneck Kettle", "isVisible": true,
		"variants": []any{map[string]any{"sku": "SQ-KTL", "stock": map[string]any{"quantity": int64(9), "unlimited": false}}},
	}}))[0]
	variants, ok := p.Data["variants"].([]any)
	if !ok || len(variants) != 1 {
		t.Fatalf("variants %#v", p.Data["variants"])
	}
	vid, _ := variants[0].(map[string]any)["id"].(string)
	if vid == "" || p.Data["modifiedOn"] == nil || p.Data["tags"] == nil {
		t.Fatalf("the triggers' work is not in the record read back: %v", p.Data)
	}
	inv := get(t, c, "Inventory", vid)
	if inv.Data["quantity"] != int64(9) || inv.Data["isUnlimited"] != false || inv.Data["sku"] != "SQ-KTL" {
		t.Fatalf("inventory %v", inv.Data)
	}
	if after, _ := scanAll(t, c, "Inventory", ""); len(after) != len(before)+1 {
		t.Fatalf("%d inventory items, want %d", len(after), len(before)+1)
	}
}
