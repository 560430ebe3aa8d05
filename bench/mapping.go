package main

// The mapping step alone, over records in memory: the 12 properties of one-way.yaml computed
// by dataflow's compiled flow (mapping.Flow.BuildTarget, what the runner calls to build the
// record it creates), by plain Go over the same map records, and by a Bloblang mapping of the
// same properties. The records are the first 10,000 products of the source database read
// through dataflow's own connector (so they have the types a run sees), mapped round-robin
// until N records are mapped; every program's output is checked against plain Go's first.

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/redpanda-data/benthos/v4/public/bloblang"
)

const mappingPool = 10000

// bloblangMapping is one-way.yaml's property table in Bloblang.
const bloblangMapping = `
root.sku = this.sku
root.title = this.name
root.description = this.description
root.category = this.category
root.brand = this.brand
root.barcode = this.ean
root.stock = this.qty.string()
root.weight_kg = this.weight_kg
root.visible = this.active
root.price = "%.2f".format(this.price.number())
root.margin = this.price - this.cost
root.handle = this.brand.lowercase() + "-" + this.sku.lowercase()
`

// goMapping is the same in plain Go over map records.
func goMapping(src map[string]any) map[string]any {
	out := make(map[string]any, 12)
	out["sku"] = src["sku"]
	out["title"] = src["name"]
	out["description"] = src["description"]
	out["category"] = src["category"]
	out["brand"] = src["brand"]
	out["barcode"] = src["ean"]
	if q, ok := src["qty"].(int64); ok {
		out["stock"] = strconv.FormatInt(q, 10)
	} else {
		out["stock"] = nil
	}
	out["weight_kg"] = src["weight_kg"]
	out["visible"] = src["active"]
	price, cost := toFloat(src["price"]), toFloat(src["cost"])
	out["price"] = strconv.FormatFloat(math.Round(price*100)/100, 'f', 2, 64)
	out["margin"] = price - cost
	brand, _ := src["brand"].(string)
	sku, _ := src["sku"].(string)
	out["handle"] = strings.ToLower(brand) + "-" + strings.ToLower(sku)
	return out
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

// mappingPoolRecords reads the first products of the cached source through the connector,
// read-only (the cached file is not touched).
func mappingPoolRecords(ctx context.Context, td, source string) ([]map[string]any, *mapping.Flow, error) {
	proj, err := loadProject(ctx, td, filepath.Join(td, "flows", "one-way.yaml"), true, source, filepath.Join(filepath.Dir(source), "unused-shop.db"), filepath.Join(td, "systems", "shop.yaml"))
	if err != nil {
		return nil, nil, err
	}
	flow := proj.Dataflows[0].Flows[0]
	conns, err := openConns(ctx, proj, true, map[string]bool{"erp": true})
	if err != nil {
		return nil, nil, err
	}
	defer closeConns(conns)
	var pool []map[string]any
	errFull := fmt.Errorf("full")
	err = conns["erp"].Scan(ctx, "Product", "", func(recs []connector.Record) error {
		for _, r := range recs {
			pool = append(pool, r.Data)
			if len(pool) == mappingPool {
				return errFull
			}
		}
		return nil
	})
	if err != nil && err != errFull {
		return nil, nil, err
	}
	return pool, flow, nil
}

// mapper returns the program's mapping function.
func mapper(program string, flow *mapping.Flow) (func(map[string]any) (any, error), error) {
	switch program {
	case progDataflow:
		return func(r map[string]any) (any, error) { return flow.BuildTarget(r, nil) }, nil
	case progGo:
		return func(r map[string]any) (any, error) { return goMapping(r), nil }, nil
	case progBloblang:
		exe, err := bloblang.Parse(bloblangMapping)
		if err != nil {
			return nil, err
		}
		return func(r map[string]any) (any, error) { return exe.Query(r) }, nil
	}
	return nil, fmt.Errorf("no mapping program %q", program)
}

// checkMapping compares a program's output with plain Go's on every record of the pool.
func checkMapping(pool []map[string]any, fn func(map[string]any) (any, error)) error {
	for _, r := range pool {
		got, err := fn(r)
		if err != nil {
			return fmt.Errorf("record %v: %w", r["id"], err)
		}
		want := goMapping(r)
		if g, w := string(mapping.Canonical(got)), string(mapping.Canonical(want)); g != w {
			return fmt.Errorf("record %v maps to\n  %s\nwant\n  %s", r["id"], g, w)
		}
	}
	return nil
}
