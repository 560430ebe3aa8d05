package state

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
)

// A base set as a list (SetBaseList, SetBaseForms) is stored byte for byte as the same base as a map, by the
// codec's known order or, when it knows none for the list's keys, as the map; it reads back
// as the map, and Bases gives the map before it is stored.
func TestBaseListStoredAsTheMap(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	raw := func(v string) json.RawMessage { return json.RawMessage(v) }
	keys := []string{"price→price", "name→title", "stock→stock"}
	values := func(n string) []Base {
		return []Base{{S: raw(`"9.99"`), T: raw(`"9.99"`)}, {S: raw(`"Kettle ` + n + `"`), T: raw(`"Kettle ` + n + `"`)}, {S: raw(`3`), T: raw(`"3"`)}}
	}
	asMap := func(vals []Base) map[string]Base {
		m := map[string]Base{}
		for i, k := range keys {
			m[k] = vals[i]
		}
		return m
	}
	// The same keys in another order (another flow's slice), and a base that is not plain.
	otherKeys := []string{"stock→stock", "price→price", "name→title"}
	other := []Base{{S: raw(`3`), T: raw(`"3"`)}, {S: raw(`"9.99"`), T: raw(`"9.99"`)}, {S: raw(`"Kettle o"`), T: raw(`"Kettle o"`)}}
	listed := []Base{{S: raw(`[1]`), T: raw(`[1]`), E: &Elements{Source: []string{"a"}, Pairs: []int{0}}}, {S: raw(`"x"`)}, {T: raw(`"y"`)}}
	links := map[string]*Link{}
	write(t, s, func(tx Tx) error {
		var batch []*Link
		for i, id := range []string{"list-first", "map", "list", "list-again"} {
			l := &Link{Flow: "f", SourceID: id, TargetID: "t-" + id, Updated: t0}
			if i == 1 {
				l.Base = asMap(values(id))
			} else {
				l.SetBaseList(keys, values(id))
			}
			batch = append(batch, l)
		}
		o := &Link{Flow: "f", SourceID: "other-order", TargetID: "t-other-order", Updated: t0}
		o.SetBaseList(otherKeys, other)
		n := &Link{Flow: "f", SourceID: "not-plain", TargetID: "t-not-plain", Updated: t0}
		n.SetBaseList(keys, listed)
		// A base of as many other keys between two lists of the same keys: the codec's order
		// changes, and the list's positions with it.
		m := &Link{Flow: "f", SourceID: "other-map", TargetID: "t-other-map", Updated: t0, Base: map[string]Base{"a→a": {S: raw(`1`)}, "b→b": {S: raw(`2`)}, "c→c": {S: raw(`3`)}}}
		a := &Link{Flow: "f", SourceID: "list-after", TargetID: "t-list-after", Updated: t0}
		a.SetBaseList(keys, values("list-after"))
		// A base given by side (SetBaseForms): T where it is not S's.
		f := &Link{Flow: "f", SourceID: "forms", TargetID: "t-forms", Updated: t0}
		var sides [][]byte
		for _, b := range values("forms") {
			sides = append(sides, b.S)
		}
		f.SetBaseForms(keys, sides, [][]byte{nil, nil, raw(`"3"`)})
		batch = append(batch, o, n, m, a, f)
		for _, l := range batch {
			links[l.SourceID] = l
		}
		return tx.PutLinks(batch)
	})
	stored := func(id string) []byte {
		var b []byte
		if err := s.db.QueryRow("SELECT base FROM link_rows WHERE source_id = ?", id).Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The map's form, written alone in a store of its own with the same key numbers.
	for _, id := range []string{"list-first", "list", "list-again", "list-after", "forms"} {
		m, _ := newStore(t)
		var want []byte
		write(t, m, func(tx Tx) error {
			return tx.PutLink(&Link{Flow: "f", SourceID: "map", TargetID: "t-map", Updated: t0, Base: asMap(values("map"))})
		})
		if err := m.db.QueryRow("SELECT base FROM link_rows").Scan(&want); err != nil {
			t.Fatal(err)
		}
		gotMap := stored("map")
		if !bytes.Equal(gotMap, want) {
			t.Fatalf("the map base is stored as %x, want %x", gotMap, want)
		}
		// Every list base has the map's form of its own values.
		l := &Link{Flow: "f", SourceID: "x", TargetID: "t-x", Updated: t0, Base: asMap(values(id))}
		m2, _ := newStore(t)
		write(t, m2, func(tx Tx) error { return tx.PutLink(l) })
		if err := m2.db.QueryRow("SELECT base FROM link_rows").Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := stored(id); !bytes.Equal(got, want) {
			t.Errorf("%s: the list base is stored as %x, want the map's %x", id, got, want)
		}
	}
	got, err := s.LinksBySource(ctx, "f", []string{"list", "other-order", "not-plain", "forms"})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]map[string]Base{"list": asMap(values("list")), "other-order": asMap(values("o")), "not-plain": {keys[0]: listed[0], keys[1]: listed[1], keys[2]: listed[2]}, "forms": asMap(values("forms"))} {
		b, err := got[id].Bases()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b, want) {
			t.Errorf("%s reads back as %v, want %v", id, b, want)
		}
		if lb, _ := links[id].Bases(); !reflect.DeepEqual(lb, want) {
			t.Errorf("%s: Bases of the link in memory is %v, want %v", id, lb, want)
		}
	}
}
