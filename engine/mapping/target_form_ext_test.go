package mapping_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// engineForms is how engine/sync computed a created record's forms before BuildTargetForms:
// each value's canonical form appended to one buffer as BuildTargetFunc gave it, then the
// record's.
func engineForms(f *mapping.Flow, src map[string]any, refs mapping.Refs) (map[string]any, map[string][]byte, []byte, error) {
	s := make(map[string][]byte, len(f.Properties))
	buf := make([]byte, 0, 24*len(f.Properties))
	data, err := f.BuildTargetFunc(src, refs, func(p *mapping.Property, v any) {
		start := len(buf)
		buf = mapping.AppendCanonical(buf, v)
		s[p.Key()] = buf[start:len(buf):len(buf)]
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return data, s, mapping.Canonical(data), nil
}

// TestBuildTargetFormsOfFlows: for the benchmark's compiled flows (products: copies, a
// coercion and expressions; orders: a list whose elements refer to products), over records
// of random values, some of which fail, BuildTargetForms gives what engine/sync computed.
func TestBuildTargetFormsOfFlows(t *testing.T) {
	products, orders := benchFlows(t)
	rnd := rand.New(rand.NewPCG(5, 6))
	pick := func(vs ...any) any { return vs[rnd.IntN(len(vs))] }
	failed := map[string]int{}
	for i := range 3000 {
		p := benchProduct(i)
		if rnd.IntN(3) == 0 {
			p["price"] = pick(nil, "12.5", "abc", int64(7), 1e300, 0.1)
			p["brand"] = pick(nil, "ÅÄÖ <&>", "", int64(3))
			p["qty"] = pick(nil, "9", 2.5, true, map[string]any{"x": 1})
			delete(p, pick("sku", "name", "cost").(string))
		}
		failed[products.ID()] += checkEngineForms(t, products, p, nil)
		lines := make([]any, rnd.IntN(4))
		for l := range lines {
			lines[l] = map[string]any{"id": int64(l), "product_id": pick(int64(i), "x", nil), "quantity": pick(int64(1), "2", 1.5), "unit_price": 8.9}
		}
		o := map[string]any{"id": int64(i), "number": fmt.Sprint("SO", i), "customer": pick("Ada", nil), "status": "paid", "total": pick(53.4, "53.40"), "lines": lines}
		failed[orders.ID()] += checkEngineForms(t, orders, o, benchRefs{})
	}
	for _, f := range []*mapping.Flow{products, orders} {
		if n := failed[f.ID()]; n == 0 || n == 3000 {
			t.Errorf("%s: %d records of 3000 failed: the records test too little", f.ID(), n)
		}
	}
}

// checkEngineForms compares BuildTargetForms with engineForms for one record, and gives 1 when
// the record failed to build.
func checkEngineForms(t *testing.T, f *mapping.Flow, src map[string]any, refs mapping.Refs) int {
	t.Helper()
	wantData, wantValues, wantCanon, wantErr := engineForms(f, src, refs)
	data, values, canon, err := f.BuildTargetForms(src, refs)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("%s, record %v: error %v, want %v", f.ID(), src, err, wantErr)
	}
	if got, want := fmt.Sprintf("%#v", data), fmt.Sprintf("%#v", wantData); got != want {
		t.Fatalf("%s, record %v: built %s, want %s", f.ID(), src, got, want)
	}
	if !bytes.Equal(canon, wantCanon) {
		t.Fatalf("%s, record %v: canonical form %s, want %s", f.ID(), src, canon, wantCanon)
	}
	byKey := map[string][]byte{}
	for i, p := range f.Properties {
		if values != nil && values[i] != nil {
			byKey[p.Key()] = values[i]
		}
	}
	if err == nil && fmt.Sprintf("%q", byKey) != fmt.Sprintf("%q", wantValues) {
		t.Fatalf("%s, record %v: values' forms %q, want %q", f.ID(), src, byKey, wantValues)
	}
	if err != nil {
		return 1
	}
	return 0
}

// TestBuildTargetFormsAllocates: the forms of a product cost two allocations (the forms, the
// slice of the values'), where engine/sync's way took six: the values' buffer, the record's
// form and the values' map of four.
func TestBuildTargetFormsAllocates(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's pools drop buffers")
	}
	products, _ := benchFlows(t)
	rec := benchProduct(7)
	engine := testing.AllocsPerRun(200, func() { engineForms(products, rec, nil) })
	forms := testing.AllocsPerRun(200, func() { products.BuildTargetForms(rec, nil) })
	t.Logf("allocations a record: BuildTargetForms %v, engine/sync's way %v", forms, engine)
	if forms > engine-4 {
		t.Errorf("BuildTargetForms allocates %v times a record, engine/sync's way %v", forms, engine)
	}
}

// TestBuildTargetFormsConcurrent: engine/sync builds a flow's records on two goroutines at once;
// each gets its own forms (run with -race).
func TestBuildTargetFormsConcurrent(t *testing.T) {
	products, _ := benchFlows(t)
	done := make(chan error)
	for g := range 4 {
		go func() {
			for i := range 300 {
				rec := benchProduct(g*1000 + i)
				_, _, want, _ := engineForms(products, rec, nil)
				_, _, got, err := products.BuildTargetForms(rec, nil)
				if err != nil || !bytes.Equal(got, want) {
					done <- fmt.Errorf("record %d: %s (%v), want %s", g*1000+i, got, err, want)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
