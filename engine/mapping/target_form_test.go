package mapping

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dataflow-sync/dataflow/engine/config"
	"github.com/dataflow-sync/dataflow/engine/schema"
)

// refForms is what BuildTargetForms replaces, as engine/sync computed it: BuildTargetFunc with
// each value's canonical form by its property's key, then the canonical form of the record,
// each with the canonical form as it always was.
func refForms(f *Flow, src map[string]any, refs Refs) (map[string]any, map[string][]byte, []byte, error) {
	values := map[string][]byte{}
	data, err := f.BuildTargetFunc(src, refs, func(p *Property, v any) { values[p.Key()] = refCanonical(v) })
	if err != nil {
		return nil, nil, nil, err
	}
	return data, values, refCanonical(data), nil
}

// checkForms compares BuildTargetForms with refForms for one record.
func checkForms(t *testing.T, f *Flow, src map[string]any, refs Refs) {
	t.Helper()
	wantData, wantValues, wantCanon, wantErr := refForms(f, src, refs)
	data, values, canon, err := f.BuildTargetForms(src, refs)
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("record %#v: error %v, BuildTargetFunc's %v", src, err, wantErr)
	}
	if err != nil {
		if data != nil || values != nil || canon != nil {
			t.Fatalf("record %#v: with the error %v, %v %v %s", src, err, data, values, canon)
		}
		return
	}
	if got, want := fmt.Sprintf("%#v", data), fmt.Sprintf("%#v", wantData); got != want {
		t.Fatalf("record %#v: built %s, BuildTargetFunc %s", src, got, want)
	}
	if !bytes.Equal(canon, wantCanon) {
		t.Fatalf("record %#v: canonical form\n%s\nCanonical(data) is\n%s", src, canon, wantCanon)
	}
	checkValues(t, f, src, refs, values, wantValues)
}

// checkValues checks the values' forms BuildTargetForms gave: one per property that flows to
// the target, by its index, that of its value in target form; by property key, what the
// engine's map held.
func checkValues(t *testing.T, f *Flow, src map[string]any, refs Refs, values [][]byte, byKey map[string][]byte) {
	t.Helper()
	if len(values) != len(f.Properties) {
		t.Fatalf("record %#v: %d values' forms for %d properties", src, len(values), len(f.Properties))
	}
	got := map[string][]byte{}
	for i, p := range f.Properties {
		if !p.ToTargetSide() {
			if values[i] != nil {
				t.Fatalf("record %#v: property %s flows to the source only, and has the form %s", src, p.Key(), values[i])
			}
			continue
		}
		v, err := p.TargetValue(src, refs)
		if err != nil {
			t.Fatal(err)
		}
		if want := refCanonical(v); !bytes.Equal(values[i], want) {
			t.Fatalf("record %#v: form of property %d (%s) = %s, want %s", src, i, p.Key(), values[i], want)
		}
		if cap(values[i]) != len(values[i]) {
			t.Fatalf("record %#v: form of %s has room to append into another's", src, p.Key())
		}
		got[p.Key()] = values[i]
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", byKey) {
		t.Fatalf("record %#v: values' forms by key %q, want %q", src, got, byKey)
	}
}

// handProperty is a property built outside Compile, as engine tests build them.
func handProperty(source, target, sync string) *Property {
	cp := &config.Property{Source: str(source), Target: str(target)}
	if sync != "" {
		cp.Sync = str(sync)
	}
	return &Property{Config: cp, Source: source, Target: target, Direction: cp.Direction(config.SyncBoth)}
}

// TestBuildTargetFormsAsBefore: BuildTargetForms gives what BuildTargetFunc and Canonical gave,
// for flows whose record's form is put together from its values' (each property a key of its
// own, a key set twice, by properties of the same key or not, a property that flows only to
// the source, no property at all) and for those whose is not (a dotted target path), over
// random records.
func TestBuildTargetFormsAsBefore(t *testing.T) {
	flows := map[string][]*Property{
		"flat": {handProperty("a", "x", ""), handProperty("b", "y", ""), handProperty("c", "aaaaaaaa\x00", ""),
			handProperty("id", "aaaaaaaa", ""), handProperty("d", "", "")},
		"twice":        {handProperty("a", "x", ""), handProperty("b", "x", ""), handProperty("c", "y", "")},
		"same key":     {handProperty("a", "x", ""), handProperty("b", "y", ""), handProperty("a", "x", "")},
		"to-source":    {handProperty("a", "x", config.SyncToSource), handProperty("b", "y", "")},
		"none":         {},
		"dotted":       {handProperty("a", "x.p", ""), handProperty("b", "x.q", ""), handProperty("c", "z", "")},
		"dotted twice": {handProperty("a", "x", ""), handProperty("b", "x.q", ""), handProperty("a", "x", "")},
	}
	g := &valueGen{rnd: rand.New(rand.NewPCG(3, 4))}
	for name, props := range flows {
		t.Run(name, func(t *testing.T) {
			f := &Flow{Properties: props}
			for range 2000 {
				src := map[string]any{}
				for _, k := range []string{"a", "b", "c", "d", "id", "e"} {
					if g.byte()%8 != 0 {
						src[k] = g.value(1)
					}
				}
				checkForms(t, f, src, nil)
			}
		})
	}
}

// TestBuildTargetFormsFlat: a flow whose properties each set a key of their own has its record's
// form put together; one with a dotted path does not (its form is Canonical's).
func TestBuildTargetFormsFlat(t *testing.T) {
	flat := &Flow{Properties: []*Property{handProperty("a", "x", ""), handProperty("b", "x", ""), handProperty("c", "y", config.SyncToSource)}}
	if form := flat.targetForm(); !form.flat || len(form.props) != 2 || !slices.Equal(form.last, []int{1}) || string(form.heads) != `"x":` {
		t.Errorf("form of a flat flow: flat %v, %d properties, last %v, heads %s", form.flat, len(form.props), form.last, form.heads)
	}
	dotted := &Flow{Properties: []*Property{handProperty("a", "x", ""), handProperty("b", "y.z", "")}}
	if dotted.targetForm().flat {
		t.Error("a flow with a dotted target path is taken as flat")
	}
	list := &Flow{Properties: []*Property{handProperty("a", "x", "")}}
	list.Properties[0].Elements = []*Property{handProperty("q", "r", "")}
	if list.targetForm().flat {
		t.Error("a flow with a list property is taken as flat")
	}
}

// TestBuildTargetFormsError: a property that fails fails the build, with the property's error.
func TestBuildTargetFormsError(t *testing.T) {
	p := handProperty("a", "x", "")
	p.TargetType = schema.Integer
	f := &Flow{Properties: []*Property{handProperty("b", "y", ""), p}}
	_, _, _, err := f.BuildTargetForms(map[string]any{"a": "abc", "b": 1}, nil)
	if want := `a→x: "abc" is not an integer`; fmt.Sprint(err) != want {
		t.Errorf("error %v, want %s", err, want)
	}
	checkForms(t, f, map[string]any{"a": "abc", "b": 1}, nil)
	checkForms(t, f, map[string]any{"a": "12", "b": 1}, nil)
}
