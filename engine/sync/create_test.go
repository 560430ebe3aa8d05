package sync

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/connector"
	"github.com/dataflow-sync/dataflow/engine/mapping"
	"github.com/dataflow-sync/dataflow/engine/state"
)

// build computes a created record's per-property canonical values (the S half of its link's
// base) into one buffer: the values are right, none can grow into the next, and a record
// costs a few allocations beyond its mapping, not one per property.
func TestBuildSharesOneBuffer(t *testing.T) {
	f := planFlow(t, "newest")
	fr := &flowRun{f: f, plan: newPlanner(f, nil, nil, nil)}
	rec := planRecord(t, "1", `{"code": "A-1", "name": "Kettle", "qty": 3, "note": "blue",
		"lines": [{"sku": "x", "qty": 1}], "tags": [{"tag": "t", "n": 2}]}`)
	data, s, err := fr.build(Source, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || len(s) != len(f.Properties) {
		t.Fatalf("built %v with %d values, want one per property (%d)", data, len(s), len(f.Properties))
	}
	for i, p := range f.Properties {
		v, err := p.TargetValue(rec.Data, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := s[i]
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
	if extra := built - mapOnly; extra > 4 && !raceEnabled {
		t.Errorf("build allocates %.0f times beyond the mapping for %d properties, want at most 4", extra, len(f.Properties))
	}
}

// The base of a created record's link takes build's S values, and a T value equal to its S
// value is that value: the base is the one computed from the records alone, at a few
// allocations per link rather than one per property.
func TestBaseOfSharesBuiltValues(t *testing.T) {
	f := planFlow(t, "newest")
	fr := &flowRun{f: f, plan: newPlanner(f, nil, nil, nil)}
	src := planRecord(t, "1", `{"code": "A-1", "name": "Kettle", "qty": 3, "note": "blue",
		"lines": [{"sku": "x", "qty": 1}], "tags": [{"tag": "t", "n": 2}]}`)
	data, s, err := fr.build(Source, src)
	if err != nil {
		t.Fatal(err)
	}
	tgt := connector.Record{ID: "T1", Data: data}
	want, err := fr.plan.baseOf(src, tgt, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fr.plan.baseOf(src, tgt, nil, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("base with build's values:\n%v\nwant the base of the records:\n%v", got, want)
	}
	for k, b := range got {
		if len(b.T) > 0 && string(b.T) == string(b.S) && &b.T[0] != &b.S[0] {
			t.Errorf("%s: T %s is a copy of the equal S value", k, b.T)
		}
	}
	// The properties that are not lists (whose bases hold their elements' pairing too).
	scalars := &mapping.Flow{}
	var values propValues
	for i, p := range f.Properties {
		if len(p.Elements) == 0 {
			scalars.Properties = append(scalars.Properties, p)
			values = append(values, s[i])
		}
	}
	pl := newPlanner(scalars, nil, nil, nil)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := pl.baseOf(src, tgt, nil, values, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 && !raceEnabled {
		t.Errorf("baseOf allocates %.0f times for %d properties, want at most 3 (the base, its buffer)", allocs, len(scalars.Properties))
	}
}

// A created record's link whose base is computed off the flow run's goroutine (deferredBase)
// has its base and digests when a later batch of the run finds it among the staged links, as
// a record handed out twice by a listing that the run's writes reorder is.
func TestDeferredBaseIsDoneWhenTheLinkIsLookedUp(t *testing.T) {
	f := planFlow(t, "newest")
	fr := &flowRun{r: &Runner{Opts: Options{Now: time.Now}}, f: f, plan: newPlanner(f, nil, nil, nil)}
	src := planRecord(t, "1", `{"code": "A-1", "name": "Kettle", "qty": 3, "note": "blue",
		"lines": [{"sku": "x", "qty": 1}], "tags": [{"tag": "t", "n": 2}]}`)
	data, s, err := fr.build(Source, src)
	if err != nil {
		t.Fatal(err)
	}
	if !fr.plan.complete(s) {
		t.Fatalf("build's values %q are not complete", s)
	}
	tgt := connector.Record{ID: "T1", Data: data}
	want, err := fr.plan.baseOf(src, tgt, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &state.Link{Flow: f.ID(), SourceID: src.ID, TargetID: tgt.ID}
	c := &createdBatch{fr: fr, side: Source, deferred: []deferredBase{{link: l, src: src, tgt: tgt, sVals: s, hashes: [2]string{"s-digest", ""}}}}
	fr.stage(func(tx state.Tx) error { return c.write(tx, f.ID()) }, []*state.Link{l}, c)
	links := map[string]*state.Link{}
	if err := fr.staged.overlay(links, Target, []string{"T1"}); err != nil {
		t.Fatal(err)
	}
	got := links["T1"]
	if got != l {
		t.Fatalf("the staged link of T1 is %+v, want %+v", got, l)
	}
	// Only a pure flow (no lists) defers its bases: the lists' pairings (E) are not made.
	checkBaseWithoutPairings(t, "the staged link", got, want)
	if got.SourceHash != "s-digest" || got.TargetHash != fr.tgtHash(data) {
		t.Errorf("digests %q, %q; want the source's as read and %q", got.SourceHash, got.TargetHash, fr.tgtHash(data))
	}
	select {
	case <-c.based:
	default:
		t.Errorf("the lookup returned before the bases were computed")
	}
}

// A base by side (baseForms, for SetBaseForms) is the base baseOf computes, the lists' pairings
// aside: with a target that holds other values than those built (its own formats), and with a
// property that flows to the source only, whose S is the source's value, not build's.
func TestBaseFormsAreBaseOf(t *testing.T) {
	for name, text := range map[string]string{
		"to-target": strings.ReplaceAll(planFlowYAML, "%CONFLICT%", "newest"),
		"to-source": strings.ReplaceAll(strings.ReplaceAll(planFlowYAML, "%CONFLICT%", "newest"), "sync: to-target", "sync: to-source"),
	} {
		t.Run(name, func(t *testing.T) {
			f := planFlowWith(t, text)
			fr := &flowRun{r: &Runner{Opts: Options{Now: time.Now}}, f: f, plan: newPlanner(f, nil, nil, nil)}
			src := planRecord(t, "1", `{"code": "A-1", "name": "Kettle", "qty": 3, "note": "blue",
				"lines": [{"sku": "x", "qty": 1}], "tags": [{"tag": "t", "n": 2}]}`)
			data, s, err := fr.build(Source, src)
			if err != nil {
				t.Fatal(err)
			}
			stored := mapping.Clone(data).(map[string]any)
			stored["title"] = "KETTLE"  // the target's own format
			stored["amount"] = "3"      // and type
			stored["note"] = "sky blue" // edited there, for a property that flows to the source
			tgt := connector.Record{ID: "T1", Data: stored}
			want, err := fr.plan.baseOf(src, tgt, nil, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			sides, ts, err := fr.plan.baseForms(src, tgt, s, false)
			if err != nil {
				t.Fatal(err)
			}
			l := &state.Link{}
			l.SetBaseForms(fr.plan.keys, sides, ts)
			checkBaseWithoutPairings(t, "the link", l, want)
		})
	}
}

// checkBaseWithoutPairings checks that link l (what) has the base want, but for the pairings
// of list elements (E), which a base made without a map does not have.
func checkBaseWithoutPairings(t *testing.T, what string, l *state.Link, want map[string]state.Base) {
	t.Helper()
	got, err := l.Bases()
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range want {
		w.E = nil
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("base of %s of %s: S %s, T %s; want S %s, T %s", k, what, got[k].S, got[k].T, w.S, w.T)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the base of %s has %d properties, want %d", what, len(got), len(want))
	}
}

// The base of a record created whose stored record is the one build made (a connection that
// gives back the map it was given, with the columns it set) is the base baseOf computes: T is
// S where that record holds build's value (a value copied, one computed by an expression), and
// made again where it does not (a property that flows to the source only, whose column the
// system set).
func TestBaseFormsOfTheRecordBuilt(t *testing.T) {
	f := planFlowWith(t, `dataflow: plan
source: shop
target: store
flows:
  - id: items
    source: Item
    target: Thing
    sync: both
    properties:
      - {source: code, target: sku}
      - {source: name, target: title, sync: to-target, to_target: 'upper(name)'}
      - {source: qty, target: amount}
      - {source: note, target: note, sync: to-source}
`)
	fr := &flowRun{r: &Runner{Opts: Options{Now: time.Now}}, f: f, plan: newPlanner(f, nil, nil, nil)}
	src := planRecord(t, "1", `{"code": "A-1", "name": "Kettle", "qty": 3, "note": "blue"}`)
	data, s, err := fr.build(Source, src)
	if err != nil {
		t.Fatal(err)
	}
	data["id"], data["note"] = "T1", "sky blue" // set by the system
	tgt := connector.Record{ID: "T1", Data: data}
	want, err := fr.plan.baseOf(src, tgt, nil, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	title, note := want[f.Properties[1].Key()], want[f.Properties[3].Key()]
	if string(title.T) != `"KETTLE"` || string(note.S) != `"blue"` || string(note.T) != `"sky blue"` {
		t.Fatalf("the flow's bases: title T %s, note S %s and T %s", title.T, note.S, note.T)
	}
	sides, ts, err := fr.plan.baseForms(src, tgt, s, true)
	if err != nil {
		t.Fatal(err)
	}
	l := &state.Link{}
	l.SetBaseForms(fr.plan.keys, sides, ts)
	checkBaseWithoutPairings(t, "the link", l, want)
}
