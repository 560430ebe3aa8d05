package storetest

// Long PutLinks: SQLite's encodes the links ahead of its inserts, on another goroutine, with
// the numbers of flows and keys its Tx began with, and falls back to PutLink's encoding for a
// link it cannot encode so. Whatever a store does, a long PutLinks stores what PutLink would.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

// manyKeys are the keys of the bases by side of manyLink, shared as a flow run shares them.
var manyKeys = []string{"name", "price", "sku"}

// manyLink is link i of flow, of one of several shapes by i: a base by side (the same on both
// sides, or not), a plain base as a map, one with a key the state has no number for yet
// (extra), one with more than plain values (testLink's), none; hex digests and ids (stored
// as bytes, one or both digests) or not; a time or none.
func manyLink(flow string, i int) *state.Link {
	hex := fmt.Sprintf("%032x", i+1)
	l := &state.Link{Flow: flow, SourceID: fmt.Sprintf("s%06d", i), TargetID: hex[16:], SourceHash: hex, TargetHash: "th" + hex[:4],
		Updated: T0.Add(time.Duration(i) * time.Second)}
	l.LinkedIn, l.MergedIn, l.Made = 7, int64(i), state.Target
	value := func(s string) []byte { return []byte(fmt.Sprintf("%q", s)) }
	switch i % 7 {
	case 0:
		l.SetBaseForms(manyKeys, [][]byte{value(fmt.Sprint("Name ", i)), []byte(fmt.Sprint(i)), value("P" + hex[:6])}, nil)
		l.TargetHash = fmt.Sprintf("%032x", (i+1)*7919) // both digests stored as bytes
	case 1:
		l.SetBaseForms(manyKeys, [][]byte{value("Név"), []byte("1.5"), value("a\tb")},
			[][]byte{nil, value("1.50"), nil})
	case 2:
		l.Base = map[string]state.Base{"name": {S: value("N"), T: value("N")}, "price": {S: []byte("2")}}
		l.TargetID = fmt.Sprintf("T-%d", i) // not hex
	case 3:
		l.Base = map[string]state.Base{"name": {S: value("x")}, fmt.Sprint("extra", i%3): {T: []byte("true")}}
		l.SourceHash = ""
	case 4:
		l.Base = testLink(flow, i).Base // an owner object and elements: more than plain values
	case 5:
		l.Made, l.Updated, l.TargetHash = "", T0.Add(-time.Microsecond), "" // whole microseconds (T0)
	case 6:
		l.SetBaseForms(manyKeys, [][]byte{[]byte("null"), []byte("[1,2]"), []byte(`{"a":1}`)}, nil)
		l.SourceHash = fmt.Sprintf("%032X", i) // upper case: not how a digest is stored as bytes
	}
	return l
}

func testPutLinksMany(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	const n = 700
	// The flows and the keys of manyKeys are numbered before the Tx of the long PutLinks.
	Write(t, st, func(tx state.Tx) error {
		if err := tx.PutLink(manyLink("one", 0)); err != nil {
			return err
		}
		return tx.PutLink(manyLink("many", 0))
	})
	Write(t, st, func(tx state.Tx) error {
		for i := range n {
			if err := tx.PutLink(manyLink("one", i)); err != nil {
				return err
			}
		}
		return nil
	})
	links := make([]*state.Link, n+2)
	for i := range n {
		links[i] = manyLink("many", i)
	}
	// A source linked twice in the batch keeps its last link, whose target is new.
	links[n] = manyLink("many", 3)
	links[n].TargetID = "t-again"
	links[n+1] = &state.Link{Flow: "many-new", SourceID: "s", TargetID: "t"} // a flow numbered in the Tx
	Write(t, st, func(tx state.Tx) error { return tx.PutLinks(links) })

	one, many := scanAll(t, st, "one"), scanAll(t, st, "many")
	if len(one) != n || len(many) != n {
		t.Fatalf("%d links of PutLink and %d of PutLinks, want %d each", len(one), len(many), n)
	}
	for i := range many {
		want := one[i]
		want.Flow = "many"
		if i == 3 {
			want.TargetID = "t-again"
		}
		gb, err := many[i].Bases()
		if err != nil {
			t.Fatal(err)
		}
		wb, err := want.Bases()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gb, wb) {
			t.Errorf("base of link %d (%s) = %s, want %s", i, many[i].SourceID, baseText(gb), baseText(wb))
		}
		// As PutLink stores it, and as it was put: both may encode a column wrongly the same way.
		put := manyLink("many", i)
		if i == 3 {
			put.TargetID = "t-again"
		}
		for _, w := range []*state.Link{want, put} {
			g, w := *many[i], *w
			g.Base, w.Base = nil, nil
			if g.SourceID != w.SourceID || g.TargetID != w.TargetID || g.SourceHash != w.SourceHash || g.TargetHash != w.TargetHash ||
				!g.Updated.Equal(w.Updated) || g.LinkedIn != w.LinkedIn || g.MergedIn != w.MergedIn || g.Made != w.Made {
				t.Errorf("link %d = %+v\nwant    %+v", i, g, w)
			}
		}
	}
	if l, err := st.LinksBySource(ctx, "many-new", []string{"s"}); err != nil || l["s"] == nil || l["s"].TargetID != "t" {
		t.Errorf("link of the flow numbered in the Tx = %v, %v", l, err)
	}
}

// baseText is a base as JSON, for a message.
func baseText(b map[string]state.Base) string {
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := ""
	for _, k := range keys {
		v, _ := json.Marshal(b[k])
		s += k + "=" + string(v) + " "
	}
	return s
}

// testPutLinksManyRefused: a long PutLinks stops at the first link PutLink refuses, in any
// chunk of those it encodes ahead, with the links before it put and none after.
func testPutLinksManyRefused(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	Write(t, st, func(tx state.Tx) error { return tx.PutLink(manyLink("f", 0)) })
	const n = 500
	for _, c := range []struct {
		name string
		at   int
		bad  func(l *state.Link) *state.Link
		want string
	}{
		{"a target linked in the state", 301, func(l *state.Link) *state.Link { l.TargetID = manyLink("f", 0).TargetID; return l },
			fmt.Sprintf(`link flow "f" source "s000302" to target %q: the target is already linked to source "s000000": the target record is already linked`, manyLink("f", 0).TargetID)},
		{"a link without a target", 64, func(l *state.Link) *state.Link { l.TargetID = ""; return l },
			"put link: a link needs a flow, a source id and a target id"},
		{"no link", 499, func(*state.Link) *state.Link { return nil },
			"put link: a link needs a flow, a source id and a target id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			links := make([]*state.Link, n)
			for i := range links {
				links[i] = manyLink("f", i+1)
			}
			links[c.at] = c.bad(manyLink("f", c.at+1))
			tx, err := st.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if err := tx.PutLinks(links); err == nil || err.Error() != c.want {
				t.Fatalf("PutLinks = %v\nwant      %s", err, c.want)
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("commit after a refused link: %v", err)
			}
			got := scanAll(t, st, "f")
			if len(got) != c.at+1 { // the links before the refused one, and s000000
				t.Fatalf("%d links after the batch, want %d", len(got), c.at+1)
			}
			for i, l := range got {
				if want := fmt.Sprintf("s%06d", i); l.SourceID != want {
					t.Fatalf("link %d is of %s, want %s", i, l.SourceID, want)
				}
			}
			Write(t, st, func(tx state.Tx) error {
				for _, l := range got[1:] {
					if err := tx.DeleteLink("f", l.SourceID); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}
