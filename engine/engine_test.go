package engine_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/dataflow-sync/dataflow/engine"
	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// TestShippedMappings: the mappings in the repository are valid and hold the seed's three
// distinct flows with realistic property tables.
func TestShippedMappings(t *testing.T) {
	eng, err := engine.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Load(context.Background(), []string{"../mappings"})
	if err != nil {
		t.Fatal(err)
	}
	// Valid, with the two warnings that are right for them: orders and products are created
	// in Squarespace without merge criteria (the shop numbers orders itself, and its products
	// have no key of the CRM's), so a lost link state would create them again (README, Set-up).
	var got []string
	for _, d := range res.Diagnostics {
		got = append(got, d.Severity.String()+": "+d.Summary)
	}
	want := []string{
		`warning: flow "order-to-order" creates Squarespace Order records without merge criteria`,
		`warning: flow "product-to-sesamproducts" creates Squarespace Sesamproducts records without merge criteria`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the shipped mappings' diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(res.Project.Dataflows) != 1 {
		t.Fatalf("dataflows = %d, want 1", len(res.Project.Dataflows))
	}
	df := res.Project.Dataflows[0]
	if df.ID() != "custom-crm-to-squarespace" || df.Source.Name() != "Custom CRM" || df.Target.Name() != "Squarespace" {
		t.Errorf("dataflow %s: %s to %s", df.ID(), df.Source.Name(), df.Target.Name())
	}
	var pairs []string
	for _, f := range df.Flows {
		pairs = append(pairs, f.Source.Name()+" to "+f.Target.Name())
		rows := 0
		for _, p := range f.Properties {
			rows++
			rows += len(p.Elements)
		}
		if rows < 6 {
			t.Errorf("flow %s has %d property rows, want at least 6", f.ID(), rows)
		}
	}
	wantPairs := []string{"Product to Inventory", "Order to Order", "Product to Sesamproducts"}
	if !reflect.DeepEqual(pairs, wantPairs) {
		t.Errorf("flows = %v, want %v", pairs, wantPairs)
	}
	inv := df.Flows[0]
	if inv.CreateTarget != config.CreateNever || len(inv.Merge) != 1 || inv.Merge[0][0].Source != "sku" {
		t.Errorf("product-to-inventory must link by SKU without creating: create %s, merge %v", inv.CreateTarget, inv.Merge)
	}
	kinds := map[string]bool{}
	for _, f := range df.Flows {
		for _, p := range f.Properties {
			if len(p.Elements) > 0 {
				kinds["list"] = true
			}
			for _, e := range append([]*mapping.Property{p}, p.Elements...) {
				if e.Ref != nil {
					kinds["reference"] = true
				}
				if e.TargetType == "boolean" {
					kinds["boolean"] = true
				}
				if e.ToTarget != nil && strings.HasPrefix(e.Config.ToTarget.Value, "amount(") {
					kinds["amount"] = true
				}
				if e.Source == "order_date" {
					kinds["date"] = true
				}
			}
		}
	}
	for _, k := range []string{"list", "reference", "boolean", "amount", "date"} {
		if !kinds[k] {
			t.Errorf("the seed dataflow has no %s property", k)
		}
	}
}

// TestConnectorsMatchFormatSchema: the connectors the schema offers editors are the ones the
// binary has.
func TestConnectorsMatchFormatSchema(t *testing.T) {
	fs, err := config.NewFormatSchema()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fs.Connectors(), engine.Connectors().Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("schema connectors %v, registry %v", got, want)
	}
}
