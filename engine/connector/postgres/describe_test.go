package postgres

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/schema"
	"github.com/dataflow-sync/dataflow/internal/pgtest"
)

// An entity without a schema file is described from pg_catalog: JSON types and formats, enum
// values, VARCHAR lengths, nullability, and its lists' child tables; schema-qualified names.
func TestDescribe(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, typesDDL, `CREATE SCHEMA sales`, `CREATE TABLE sales.orders (id serial PRIMARY KEY, customer varchar(40) NOT NULL)`,
		`CREATE TABLE sales.lines (id serial PRIMARY KEY, order_id int NOT NULL, qty int)`)
	sys := loadSystem(t, system(`Row: {table: public.all types, id: id}`,
		`Order: {table: orders, id: id, lists: {lines: {table: sales.lines, key: order_id, id: id}}}`)+"schema: sales\n",
		map[string]string{"DSN": db.DSN()})
	s, err := Driver{}.Describe(context.Background(), sys.Entity("Row"))
	if err != nil {
		t.Fatal(err)
	}
	type desc struct {
		Types     []string
		Format    string
		Enum      []string
		MaxLength int
		ItemTypes []string
	}
	of := func(p *schema.Property) desc {
		d := desc{Types: p.Types, Format: p.Format, Enum: p.Enum, MaxLength: p.MaxLength}
		if p.Items != nil {
			d.ItemTypes = p.Items.Types
		}
		return d
	}
	want := map[string]desc{
		"id":      {Types: []string{"integer"}},
		"big":     {Types: []string{"integer", "null"}},
		"price":   {Types: []string{"number", "null"}},
		"ratio":   {Types: []string{"number", "null"}},
		"active":  {Types: []string{"boolean", "null"}},
		"day":     {Types: []string{"string", "null"}, Format: "date"},
		"at":      {Types: []string{"string", "null"}, Format: "date-time"},
		"at_tz":   {Types: []string{"string", "null"}, Format: "date-time"},
		"uid":     {Types: []string{"string", "null"}, Format: "uuid"},
		"doc":     {Types: []string{"object", "null"}},
		"tags":    {Types: []string{"array", "null"}, ItemTypes: []string{"string", "null"}},
		"nums":    {Types: []string{"array", "null"}, ItemTypes: []string{"integer", "null"}},
		"raw":     {Types: []string{"string", "null"}, Format: "byte"},
		"feeling": {Types: []string{"string", "null"}, Enum: []string{"sad", "ok", "happy"}},
		"code":    {Types: []string{"string", "null"}, MaxLength: 3},
	}
	for name, w := range want {
		p := s.Root.Properties[name]
		if p == nil {
			t.Errorf("no property %s", name)
			continue
		}
		if got := of(p); !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %+v, want %+v", name, got, w)
		}
	}
	if got := s.Root.Properties["code"].Description; got != "column code character varying(3)" {
		t.Errorf("description: %q", got)
	}
	o, err := Driver{}.Describe(context.Background(), sys.Entity("Order"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Source != `table "sales"."orders" of database `+db.Name+` at 127.0.0.1:`+itoa(db.Server.Port) {
		t.Errorf("source: %s", o.Source)
	}
	lines := o.Root.Properties["lines"]
	if lines == nil || lines.Items == nil || lines.Items.Properties["qty"] == nil || !reflect.DeepEqual(o.Root.Properties["customer"].Types, []string{"string"}) {
		t.Fatalf("order: %+v", o.Root.Properties)
	}
	// A missing table names itself, qualified.
	sys = loadSystem(t, system(`Gone: {table: nothing, id: id}`), map[string]string{"DSN": db.DSN()})
	if _, err := (Driver{}).Describe(context.Background(), sys.Entity("Gone")); err == nil || err.Error() != `table "nothing" does not exist` {
		t.Fatalf("missing table: %v", err)
	}
}

// With track_deletes a trigger counts deletions, whoever deletes: the count grows with every
// deleted row and installing it counts as one.
func TestTrackDeletes(t *testing.T) {
	db := pgtest.New(t)
	db.Exec(t, `CREATE TABLE products (id serial PRIMARY KEY, name text)`, `INSERT INTO products (name) VALUES ('a'), ('b'), ('c')`)
	c := open(t, db.DSN(), system(`Product: {table: products, id: id}`)+"track_deletes: true\n")
	dc := c.Capabilities().DeleteCounter
	ctx := context.Background()
	n, ok, err := dc.Deletions(ctx, "Product")
	if err != nil || !ok || n != 1 {
		t.Fatalf("after install: %d %v %v", n, ok, err)
	}
	db.Exec(t, `DELETE FROM products WHERE name IN ('a', 'b')`)
	if errs, err := c.Delete(ctx, "Product", []string{"3"}); err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	n, ok, err = dc.Deletions(ctx, "Product")
	if err != nil || !ok || n != 4 {
		t.Fatalf("after 3 deletions: %d %v %v", n, ok, err)
	}
	// Without track_deletes nothing is counted.
	c2 := open(t, db.DSN(), system(`Product: {table: products, id: id}`))
	if _, ok, _ := c2.Capabilities().DeleteCounter.Deletions(ctx, "Product"); ok {
		t.Fatal("counted without track_deletes")
	}
}

func itoa(n int) string { return fmt.Sprint(n) }
