package storetest

// The contract of links: lookups, scans, a target linked twice, a rolled back Tx.

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

func testLink(flow string, i int) *state.Link {
	return &state.Link{
		Flow:     flow,
		SourceID: fmt.Sprintf("s%06d", i),
		TargetID: fmt.Sprintf("t%06d", i),
		Base: map[string]state.Base{
			"name":   {S: json.RawMessage(fmt.Sprintf(`"Name %d"`, i)), T: json.RawMessage(fmt.Sprintf(`"Name %d"`, i))},
			"amount": {S: json.RawMessage(`10`), T: json.RawMessage(`"10.00"`)},
			"owner":  {S: json.RawMessage(`{"id":42,"email":"a<b>&c@example.com"}`)},
			"lines":  {S: json.RawMessage(`[1,2]`), T: json.RawMessage(`[1,2]`), E: &state.Elements{Source: []string{"a", "b"}, Pairs: []int{0, -1}}},
		},
		SourceHash: fmt.Sprintf("sh%d", i),
		TargetHash: fmt.Sprintf("th%d", i),
		Updated:    T0.Add(time.Duration(i) * time.Second),
		LinkedIn:   3,
		MergedIn:   int64(i),
		Made:       state.Target,
	}
}

// sameLink compares what a store gives back with what was put.
func sameLink(t *testing.T, got, want *state.Link) {
	t.Helper()
	if got == nil {
		t.Fatalf("link of source %q is missing", want.SourceID)
	}
	gb, err := got.Bases()
	if err != nil {
		t.Fatal(err)
	}
	wb := want.Base
	if wb == nil {
		wb = map[string]state.Base{}
	}
	if !reflect.DeepEqual(gb, wb) {
		t.Errorf("base of %q = %+v, want %+v", want.SourceID, gb, wb)
	}
	g, w := *got, *want
	g.Base, w.Base = nil, nil
	if g.Flow != w.Flow || g.SourceID != w.SourceID || g.TargetID != w.TargetID || g.SourceHash != w.SourceHash ||
		g.TargetHash != w.TargetHash || !g.Updated.Equal(w.Updated) || g.LinkedIn != w.LinkedIn || g.MergedIn != w.MergedIn || g.Made != w.Made {
		t.Errorf("link = %+v, want %+v", g, w)
	}
}

func testLinks(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	if has, err := st.HasLinks(ctx, "f"); err != nil || has {
		t.Fatalf("HasLinks of an empty state = %v, %v", has, err)
	}
	Write(t, st, func(tx state.Tx) error {
		for i := range 5 {
			if err := tx.PutLink(testLink("f", i)); err != nil {
				return err
			}
		}
		return tx.PutLink(testLink("g", 0))
	})
	bySource, err := st.LinksBySource(ctx, "f", []string{"s000001", "s000003", "s000003", "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if len(bySource) != 2 {
		t.Fatalf("LinksBySource found %d links, want 2", len(bySource))
	}
	sameLink(t, bySource["s000001"], testLink("f", 1))
	byTarget, err := st.LinksByTarget(ctx, "f", []string{"t000004"})
	if err != nil {
		t.Fatal(err)
	}
	sameLink(t, byTarget["t000004"], testLink("f", 4))
	for flow, want := range map[string]int{"f": 5, "g": 1, "": 6, "h": 0} {
		if n, err := st.CountLinks(ctx, flow); err != nil || n != want {
			t.Errorf("CountLinks(%q) = %d, %v; want %d", flow, n, err, want)
		}
	}
	if has, err := st.HasLinks(ctx, "g"); err != nil || !has {
		t.Errorf("HasLinks(g) = %v, %v", has, err)
	}

	// A link read back and saved with changes is rewritten in place; one saved with another
	// target moves to it; a deleted one is gone.
	l := bySource["s000001"]
	base, _ := l.Bases()
	base["name"] = state.Base{S: json.RawMessage(`"New"`), T: json.RawMessage(`"New"`)}
	l.SourceHash, l.MergedIn, l.Updated = "sh-new", 9, time.Time{}
	moved := bySource["s000003"]
	moved.TargetID = "t-moved"
	Write(t, st, func(tx state.Tx) error {
		if err := tx.PutLink(l); err != nil {
			return err
		}
		if err := tx.PutLink(moved); err != nil {
			return err
		}
		if err := tx.DeleteLink("f", "s000002"); err != nil {
			return err
		}
		return tx.DeleteLink("f", "never-linked")
	})
	got, err := st.LinksBySource(ctx, "f", []string{"s000001", "s000002", "s000003"})
	if err != nil {
		t.Fatal(err)
	}
	want := testLink("f", 1)
	want.Base["name"] = state.Base{S: json.RawMessage(`"New"`), T: json.RawMessage(`"New"`)}
	want.SourceHash, want.MergedIn, want.Updated = "sh-new", 9, time.Time{}
	sameLink(t, got["s000001"], want)
	if got["s000002"] != nil {
		t.Error("a deleted link is still there")
	}
	if got["s000003"] == nil || got["s000003"].TargetID != "t-moved" {
		t.Errorf("relinked link = %+v", got["s000003"])
	}
	if old, _ := st.LinksByTarget(ctx, "f", []string{"t000003"}); len(old) != 0 {
		t.Error("the old target of a relinked link is still linked")
	}

	// An empty base is an empty map, never nil.
	Write(t, st, func(tx state.Tx) error {
		return tx.PutLink(&state.Link{Flow: "e", SourceID: "a", TargetID: "b"})
	})
	e, err := st.LinksBySource(ctx, "e", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := e["a"].Bases(); err != nil || b == nil || len(b) != 0 || !e["a"].Updated.IsZero() {
		t.Errorf("empty link reads back with base %v (%v), updated %v", b, err, e["a"].Updated)
	}
}

func testScanLinks(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	const n = 2345 // more than two pages
	Write(t, st, func(tx state.Tx) error {
		for i := n - 1; i >= 0; i-- {
			if err := tx.PutLink(testLink("f", i)); err != nil {
				return err
			}
		}
		// Byte order, whatever the database's collation: "B" < "a" < "é".
		for _, id := range []string{"é", "a", "B"} {
			if err := tx.PutLink(&state.Link{Flow: "order", SourceID: id, TargetID: id}); err != nil {
				return err
			}
		}
		return nil
	})
	var seen []string
	batches := 0
	err := st.ScanLinks(ctx, "f", func(ls []*state.Link) error {
		batches++
		for _, l := range ls {
			seen = append(seen, l.SourceID)
		}
		// The store may be written while a scan is in progress.
		if batches == 1 {
			tx, err := st.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := tx.PutWaiting("f", state.Source, "x", "scan"); err != nil {
				return err
			}
			return tx.Commit()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || batches < 3 {
		t.Fatalf("ScanLinks gave %d links in %d batches, want %d in at least 3", len(seen), batches, n)
	}
	for i, id := range seen {
		if want := fmt.Sprintf("s%06d", i); id != want {
			t.Fatalf("link %d of the scan is %q, want %q", i, id, want)
		}
	}
	var order []string
	st.ScanLinks(ctx, "order", func(ls []*state.Link) error {
		for _, l := range ls {
			order = append(order, l.SourceID)
		}
		return nil
	})
	if !reflect.DeepEqual(order, []string{"B", "a", "é"}) {
		t.Errorf("scan order = %q, want byte order", order)
	}
	stop := errors.New("stop")
	if err := st.ScanLinks(ctx, "f", func([]*state.Link) error { return stop }); err != stop {
		t.Errorf("ScanLinks returned %v, want fn's error", err)
	}
}

func testTargetLinked(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	Write(t, st, func(tx state.Tx) error { return tx.PutLink(testLink("f", 1)) })
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	dup := &state.Link{Flow: "f", SourceID: "other", TargetID: "t000001"}
	err = tx.PutLink(dup)
	if !errors.Is(err, state.ErrTargetLinked) {
		t.Fatalf("linking a linked target: %v, want ErrTargetLinked", err)
	}
	const msg = `link flow "f" source "other" to target "t000001": the target is already linked to source "s000001": the target record is already linked`
	if err.Error() != msg {
		t.Errorf("error = %q\nwant    %q", err, msg)
	}
	// The Tx stays usable and commits the rest.
	if err := tx.PutLink(&state.Link{Flow: "f", SourceID: "other", TargetID: "t-free"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after a refused link: %v", err)
	}
	if n, _ := st.CountLinks(ctx, "f"); n != 2 {
		t.Errorf("%d links, want 2", n)
	}
}

func testRollback(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutLink(testLink("f", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetWatermark("f", state.Source, "w"); err != nil {
		t.Fatal(err)
	}
	// Reads see committed data only.
	if n, _ := st.CountLinks(ctx, "f"); n != 0 {
		t.Errorf("a read sees %d links of an open Tx", n)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("a second Rollback: %v", err)
	}
	if err := tx.Commit(); err == nil {
		t.Error("Commit after Rollback succeeded")
	}
	if n, _ := st.CountLinks(ctx, "f"); n != 0 {
		t.Errorf("%d links after a rollback", n)
	}
	if w, _ := st.Watermark(ctx, "f", state.Source); w != "" {
		t.Errorf("watermark %q after a rollback", w)
	}
	// The next Begin gets its turn.
	Write(t, st, func(tx state.Tx) error { return tx.SetWatermark("f", state.Source, "w2") })
	if w, _ := st.Watermark(ctx, "f", state.Source); w != "w2" {
		t.Errorf("watermark = %q, want w2", w)
	}
}
