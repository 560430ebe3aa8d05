package sync

import (
	"testing"

	"github.com/dataflow-sync/dataflow/engine/mapping"
)

// build computes a created record's per-property canonical values (the S half of its link's
// base) into one buffer: the values are right, none can grow into the next, and a record
// costs a few allocations beyond its mapping, not one per property.
func TestBuildSharesOneBuffer(t *testing.T) {
	f := planFlow(t, "newest")
	fr := &flowRun{f: f}
	rec := planRecord(t, "1", `{"code": "A-1", "name": "Kettle", "qty": 3, "note": "blue",
		"lines": [{"sku": "x", "qty": 1}], "tags": [{"tag": "t", "n": 2}]}`)
	data, s, err := fr.build(Source, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || len(s) != len(f.Properties) {
		t.Fatalf("built %v with %d values, want one per property (%d)", data, len(s), len(f.Properties))
	}
	for _, p := range f.Properties {
		v, err := p.TargetValue(rec.Data, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := s[p.Key()]
		if want := string(mapping.Canonical(v)); string(got) != want {
			t.Errorf("%s: %s, want %s", p.Key(), got, want)
		}
		if cap(got) != len(got) {
			t.Errorf("%s: capacity %d beyond its length %d: an append would overwrite the next value", p.Key(), cap(got), len(got))
		}
	}
	mapOnly := testing.AllocsPerRun(50, func() {
		if _, err := f.BuildTargetFunc(rec.Data, nil, func(*mapping.Property, any) {}); err != nil {
			t.Fatal(err)
		}
	})
	built := testing.AllocsPerRun(50, func() {
		if _, _, err := fr.build(Source, rec); err != nil {
			t.Fatal(err)
		}
	})
	if extra := built - mapOnly; extra > 4 {
		t.Errorf("build allocates %.0f times beyond the mapping for %d properties, want at most 4", extra, len(f.Properties))
	}
}
