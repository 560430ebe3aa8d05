// Package storetest is the contract of state.Store as a test suite, run against every
// implementation (the SQLite file and PostgreSQL), so that the engine cannot tell them apart:
// the same answers, orders, errors and messages.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

// Opener opens the store under test. Open gives a fresh, empty state opened for writing;
// Reopen opens that same state again with mode (a second writer must be refused).
type Opener interface {
	Open(t *testing.T) (st state.Store, reopen func(mode state.Mode) (state.Store, error))
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(t *testing.T) (state.Store, func(mode state.Mode) (state.Store, error))

// Open implements Opener.
func (f OpenerFunc) Open(t *testing.T) (state.Store, func(mode state.Mode) (state.Store, error)) {
	return f(t)
}

// clocked is a store whose clock a test sets (both stores have it).
type clocked interface{ SetClock(func() time.Time) }

// worked is a store that records its worker in the runs.
type worked interface{ SetWorker(string) }

// T0 is the suite's clock: whole microseconds, which every store keeps exactly.
var T0 = time.Date(2024, 3, 1, 12, 30, 45, 123456000, time.UTC)

// Run runs the suite.
func Run(t *testing.T, o Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Links", testLinks},
		{"ScanLinks", testScanLinks},
		{"TargetLinked", testTargetLinked},
		{"Rollback", testRollback},
		{"Intents", testIntents},
		{"Marks", testMarks},
		{"DeadLettersAndWaiting", testDeadLettersAndWaiting},
		{"Pending", testPending},
		{"Runs", testRuns},
		{"Flows", testFlows},
		{"Lock", testLock},
		{"Errors", testErrors},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, o) })
	}
}

func open(t *testing.T, o Opener) (state.Store, *time.Time, func(state.Mode) (state.Store, error)) {
	t.Helper()
	st, reopen := o.Open(t)
	now := T0
	c, ok := st.(clocked)
	if !ok {
		t.Fatalf("%T has no SetClock", st)
	}
	c.SetClock(func() time.Time { return now })
	return st, &now, reopen
}

var ctx = context.Background()

// write runs fn in a Tx and commits it.
func write(t *testing.T, st state.Store, fn func(tx state.Tx) error) {
	t.Helper()
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

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
	write(t, st, func(tx state.Tx) error {
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
	write(t, st, func(tx state.Tx) error {
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
	write(t, st, func(tx state.Tx) error {
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
	write(t, st, func(tx state.Tx) error {
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
	write(t, st, func(tx state.Tx) error { return tx.PutLink(testLink("f", 1)) })
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
	write(t, st, func(tx state.Tx) error { return tx.SetWatermark("f", state.Source, "w2") })
	if w, _ := st.Watermark(ctx, "f", state.Source); w != "w2" {
		t.Errorf("watermark = %q, want w2", w)
	}
}

func testIntents(t *testing.T, o Opener) {
	st, now, _ := open(t, o)
	var ids []int64
	write(t, st, func(tx state.Tx) error {
		for i, in := range []*state.Intent{
			{Flow: "f", Side: state.Target, FromID: "s1", Data: json.RawMessage(`{"name":"A"}`)},
			{Flow: "f", Side: state.Source, FromID: "t2"},
			{Flow: "g", Side: state.Target, FromID: "s3", Created: T0.Add(-time.Hour)},
		} {
			id, err := tx.AddIntent(in)
			if err != nil {
				return err
			}
			if i > 0 && id <= ids[i-1] {
				return fmt.Errorf("intent id %d after %d", id, ids[i-1])
			}
			ids = append(ids, id)
		}
		return nil
	})
	got, err := st.Intents(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	want := []state.Intent{
		{ID: ids[0], Flow: "f", Side: state.Target, FromID: "s1", Data: json.RawMessage(`{"name":"A"}`), Created: *now},
		{ID: ids[1], Flow: "f", Side: state.Source, FromID: "t2", Created: *now},
	}
	if !sameIntents(got, want) {
		t.Errorf("Intents(f) = %+v\nwant %+v", got, want)
	}
	all, _ := st.Intents(ctx, "")
	if len(all) != 3 || !all[2].Created.Equal(T0.Add(-time.Hour)) {
		t.Errorf("Intents() = %+v", all)
	}
	// A deleted id is never handed out again.
	write(t, st, func(tx state.Tx) error {
		if err := tx.DeleteIntent(ids[2]); err != nil {
			return err
		}
		return tx.DeleteIntents([]int64{ids[0], ids[1], 999999})
	})
	if left, _ := st.Intents(ctx, ""); len(left) != 0 {
		t.Errorf("%d intents left after deleting them", len(left))
	}
	write(t, st, func(tx state.Tx) error {
		id, err := tx.AddIntent(&state.Intent{Flow: "f", Side: state.Target, FromID: "s4"})
		if err == nil && id <= ids[2] {
			err = fmt.Errorf("intent id %d reused (last was %d)", id, ids[2])
		}
		return err
	})
}

func sameIntents(a, b []state.Intent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.Flow != y.Flow || x.Side != y.Side || x.FromID != y.FromID || string(x.Data) != string(y.Data) || !x.Created.Equal(y.Created) {
			return false
		}
	}
	return true
}

func testMarks(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	if _, ok, err := st.Reconciled(ctx, "f"); ok || err != nil {
		t.Errorf("Reconciled of a new state = %v, %v", ok, err)
	}
	if _, ok, err := st.Counts(ctx, "f"); ok || err != nil {
		t.Errorf("Counts of a new state = %v, %v", ok, err)
	}
	counts := state.Counts{Source: 10, Target: -1, Skipped: 2, SourceDeletions: 7, TargetDeletions: -1}
	write(t, st, func(tx state.Tx) error {
		for _, err := range []error{
			tx.SetWatermark("f", state.Source, "2024-01-01"),
			tx.SetWatermark("f", state.Source, "2024-02-01"),
			tx.SetWatermark("f", state.Target, "17"),
			tx.SetWatermark("g", state.Target, "g1"),
			tx.SetReconciled("f", T0),
			tx.SetCounts("f", counts),
			tx.SetCounts("g", counts),
			tx.SetFingerprint("f", "fp1"),
			tx.SetFingerprint("f", "fp2"),
			tx.PutSystem("crm", state.SystemIdentity{Connector: "sqlite", Location: "/data/crm.db"}),
			tx.PutSystem("shop", state.SystemIdentity{Connector: "http", Location: "https://shop.example.com"}),
			tx.PutSystem("crm", state.SystemIdentity{Connector: "sqlite", Location: "/data/crm2.db"}),
			tx.PutSystem("shop", state.SystemIdentity{Connector: "http", Location: "https://shop.example.com"}),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range []struct{ flow, side, want string }{
		{"f", state.Source, "2024-02-01"}, {"f", state.Target, "17"}, {"g", state.Target, "g1"}, {"g", state.Source, ""},
	} {
		if got, err := st.Watermark(ctx, c.flow, c.side); err != nil || got != c.want {
			t.Errorf("Watermark(%s, %s) = %q, %v; want %q", c.flow, c.side, got, err, c.want)
		}
	}
	if at, ok, err := st.Reconciled(ctx, "f"); !ok || err != nil || !at.Equal(T0) {
		t.Errorf("Reconciled(f) = %v, %v, %v", at, ok, err)
	}
	if c, ok, err := st.Counts(ctx, "f"); !ok || err != nil || c != counts {
		t.Errorf("Counts(f) = %+v, %v, %v", c, ok, err)
	}
	if fp, err := st.Fingerprint(ctx, "f"); err != nil || fp != "fp2" {
		t.Errorf("Fingerprint(f) = %q, %v", fp, err)
	}
	if fp, err := st.Fingerprint(ctx, "g"); err != nil || fp != "" {
		t.Errorf("Fingerprint(g) = %q, %v", fp, err)
	}
	systems, err := st.Systems(ctx)
	wantSystems := map[string]state.SystemIdentity{
		"crm":  {Connector: "sqlite", Location: "/data/crm2.db"},
		"shop": {Connector: "http", Location: "https://shop.example.com"},
	}
	if err != nil || !reflect.DeepEqual(systems, wantSystems) {
		t.Errorf("Systems = %v, %v", systems, err)
	}
	write(t, st, func(tx state.Tx) error {
		if err := tx.ClearWatermarks("f"); err != nil {
			return err
		}
		return tx.ClearCounts("f")
	})
	if w, _ := st.Watermark(ctx, "f", state.Source); w != "" {
		t.Errorf("watermark %q after ClearWatermarks", w)
	}
	if w, _ := st.Watermark(ctx, "g", state.Target); w != "g1" {
		t.Errorf("ClearWatermarks(f) cleared g's: %q", w)
	}
	if _, ok, _ := st.Counts(ctx, "f"); ok {
		t.Error("counts after ClearCounts")
	}
	if _, ok, _ := st.Counts(ctx, "g"); !ok {
		t.Error("ClearCounts(f) cleared g's")
	}
}

func testDeadLettersAndWaiting(t *testing.T, o Opener) {
	st, now, _ := open(t, o)
	write(t, st, func(tx state.Tx) error {
		for _, err := range []error{
			tx.PutDeadLetter("f", state.Source, "r2", "first reason"),
			tx.PutDeadLetter("f", state.Target, "r1", "other side"),
			tx.PutDeadLetter("e", state.Source, "r9", "another flow"),
			tx.PutWaiting("f", state.Source, "w1", "waits for customer c1"),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	*now = T0.Add(time.Minute)
	write(t, st, func(tx state.Tx) error {
		if err := tx.PutDeadLetter("f", state.Source, "r2", "second reason"); err != nil {
			return err
		}
		return tx.PutWaiting("f", state.Source, "w1", "still waits")
	})
	dead, err := st.DeadLetters(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []state.DeadLetter{
		{Flow: "e", Side: state.Source, RecordID: "r9", Reason: "another flow", Attempts: 1, First: T0, Last: T0},
		{Flow: "f", Side: state.Source, RecordID: "r2", Reason: "second reason", Attempts: 2, First: T0, Last: T0.Add(time.Minute)},
		{Flow: "f", Side: state.Target, RecordID: "r1", Reason: "other side", Attempts: 1, First: T0, Last: T0},
	}
	if !reflect.DeepEqual(dead, want) {
		t.Errorf("DeadLetters = %+v\nwant %+v", dead, want)
	}
	if f, _ := st.DeadLetters(ctx, "f"); len(f) != 2 {
		t.Errorf("DeadLetters(f) = %d, want 2", len(f))
	}
	waiting, err := st.Waiting(ctx, "f")
	wantW := []state.Waiting{{Flow: "f", Side: state.Source, RecordID: "w1", Reason: "still waits", Since: T0}}
	if err != nil || !reflect.DeepEqual(waiting, wantW) {
		t.Errorf("Waiting = %+v, %v\nwant %+v", waiting, err, wantW)
	}
	write(t, st, func(tx state.Tx) error {
		for _, err := range []error{
			tx.ClearDeadLetter("f", state.Source, "r2"),
			tx.ClearDeadLetter("f", state.Source, "never"),
			tx.ClearWaiting("f", state.Source, "w1"),
			tx.ClearWaiting("x", state.Target, "never"),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if f, _ := st.DeadLetters(ctx, "f"); len(f) != 1 || f[0].RecordID != "r1" {
		t.Errorf("DeadLetters(f) after clearing = %+v", f)
	}
	if w, _ := st.Waiting(ctx, ""); len(w) != 0 {
		t.Errorf("Waiting after clearing = %+v", w)
	}
}

func testPending(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	links := []state.PendingLink{{SourceID: "s1", TargetID: "t1", Missing: state.Target}, {SourceID: "s2", TargetID: "t2"}}
	var first, second, other int64
	write(t, st, func(tx state.Tx) error {
		var err error
		if first, err = tx.PutPending(&state.Pending{Flow: "f", Summary: "would delete 2", Links: links}); err != nil {
			return err
		}
		if other, err = tx.PutPending(&state.Pending{Flow: "g", Summary: "g", Links: links[:1]}); err != nil {
			return err
		}
		// A second trip of the flow replaces the change that still waits.
		second, err = tx.PutPending(&state.Pending{Flow: "f", Summary: "would delete 1", Links: links[1:]})
		return err
	})
	got, err := st.Pending(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []state.Pending{
		{ID: other, Flow: "g", Created: T0, Status: state.PendingWaiting, Summary: "g", Links: links[:1]},
		{ID: second, Flow: "f", Created: T0, Status: state.PendingWaiting, Summary: "would delete 1", Links: links[1:]},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Pending = %+v\nwant %+v", got, want)
	}
	write(t, st, func(tx state.Tx) error {
		if err := tx.ApprovePending(second); err != nil {
			return err
		}
		// An approved change is kept when the flow trips again.
		_, err := tx.PutPending(&state.Pending{Flow: "f", Summary: "again", Links: links})
		return err
	})
	f, _ := st.Pending(ctx, "f")
	if len(f) != 2 || f[0].ID != second || f[0].Status != state.PendingApproved || f[1].Status != state.PendingWaiting {
		t.Errorf("Pending(f) = %+v", f)
	}
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.ApprovePending(first); !errors.Is(err, state.ErrNoPending) || err.Error() != fmt.Sprintf("approve pending change %d: no such pending change", first) {
		t.Errorf("approving a replaced change: %v", err)
	}
	if err := tx.DeletePending(first); !errors.Is(err, state.ErrNoPending) || err.Error() != fmt.Sprintf("delete pending change %d: no such pending change", first) {
		t.Errorf("deleting a replaced change: %v", err)
	}
	if err := tx.DeletePending(other); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if g, _ := st.Pending(ctx, "g"); len(g) != 0 {
		t.Errorf("Pending(g) after delete = %+v", g)
	}
}

func testRuns(t *testing.T, o Opener) {
	st, now, _ := open(t, o)
	w, ok := st.(worked)
	if !ok {
		t.Fatalf("%T has no SetWorker", st)
	}
	var ids []int64
	for i := range 3 {
		if i == 2 {
			w.SetWorker("host-b:42")
		}
		write(t, st, func(tx state.Tx) error {
			id, err := tx.StartRun()
			ids = append(ids, id)
			return err
		})
		*now = now.Add(time.Second)
	}
	write(t, st, func(tx state.Tx) error {
		return tx.FinishRun(ids[0], "ok", json.RawMessage(`[{"flow":"f"}]`))
	})
	runs, err := st.Runs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 3 || runs[0].ID != ids[2] || runs[2].ID != ids[0] {
		t.Fatalf("Runs = %+v, want newest first", runs)
	}
	if r := runs[2]; r.Status != "ok" || string(r.Summary) != `[{"flow":"f"}]` || !r.Started.Equal(T0) || !r.Finished.Equal(T0.Add(3*time.Second)) || r.Worker != "" {
		t.Errorf("finished run = %+v", r)
	}
	if r := runs[1]; r.Status != "running" || !r.Finished.IsZero() || r.Summary != nil {
		t.Errorf("running run = %+v", r)
	}
	if r := runs[0]; r.Worker != "host-b:42" {
		t.Errorf("the worker of a run = %q, want host-b:42", r.Worker)
	}
	if last, _ := st.Runs(ctx, 1); len(last) != 1 || last[0].ID != ids[2] {
		t.Errorf("Runs(1) = %+v", last)
	}
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := tx.FinishRun(123456, "ok", nil); err == nil || err.Error() != "finish run 123456: there is no such run" {
		t.Errorf("finishing a missing run: %v", err)
	}
}

func testFlows(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	lister, ok := st.(state.FlowLister)
	if !ok {
		t.Fatalf("%T is no FlowLister", st)
	}
	write(t, st, func(tx state.Tx) error {
		for _, err := range []error{
			tx.PutLink(testLink("links-b", 1)),
			tx.PutLink(testLink("links-b", 2)),
			tx.PutLink(testLink("links-a", 1)),
			tx.PutWaiting("waits", state.Source, "r", "x"),
			tx.PutDeadLetter("fails", state.Target, "r", "x"),
			tx.PutDeadLetter("links-a", state.Target, "r", "x"),
			tx.SetWatermark("marks-only", state.Source, "w"),
		} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	flows, err := lister.Flows(ctx)
	if want := []string{"fails", "links-a", "links-b", "waits"}; err != nil || !reflect.DeepEqual(flows, want) {
		t.Errorf("Flows = %q, %v; want %q", flows, err, want)
	}
}

func testLock(t *testing.T, o Opener) {
	st, _, reopen := open(t, o)
	write(t, st, func(tx state.Tx) error { return tx.PutLink(testLink("f", 1)) })
	second, err := reopen(state.ReadWrite)
	if err == nil {
		second.Close()
		t.Fatal("a second writer opened the state while the first holds it")
	}
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("second writer: %v, want ErrLocked", err)
	}
	// A reader opens beside the writer, sees what it committed, and cannot write.
	ro, err := reopen(state.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if n, err := ro.CountLinks(ctx, "f"); err != nil || n != 1 {
		t.Errorf("a reader counts %d links, %v", n, err)
	}
	if tx, err := ro.Begin(ctx); err == nil {
		tx.Rollback()
		t.Error("a read-only store began a write transaction")
	}
	// Once the writer closes, the next one gets in.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	next, err := reopen(state.ReadWrite)
	if err != nil {
		t.Fatalf("a writer after the first closed: %v", err)
	}
	next.Close()
}

func testErrors(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, c := range []struct {
		err  error
		want string
	}{
		{tx.PutLink(&state.Link{Flow: "f", SourceID: "s"}), "put link: a link needs a flow, a source id and a target id"},
		{func() error { _, err := tx.AddIntent(&state.Intent{Flow: "f", Side: "left"}); return err }(), `add intent of flow "f": side is "left"; it must be "source" or "target"`},
		{func() error {
			_, err := tx.AddIntent(&state.Intent{Flow: "f", Side: state.Target, Data: json.RawMessage(`{nope`)})
			return err
		}(), `add intent of flow "f": data: not valid JSON`},
		{tx.SetWatermark("f", "up", "x"), `set watermark of flow "f": side is "up"; it must be "source" or "target"`},
		{tx.PutDeadLetter("f", "", "r", "x"), `put dead letter of flow "f": side is ""; it must be "source" or "target"`},
		{tx.SetReconciled("f", time.Time{}), `set the last reconcile of flow "f": no time`},
		{tx.PutSystem("", state.SystemIdentity{}), "put system: it needs an id"},
		{func() error { _, err := tx.PutPending(&state.Pending{}); return err }(), "put pending change: it needs a flow"},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("error = %v\nwant    %s", c.err, c.want)
		}
	}
	// None of these reached the database: the Tx commits.
	if err := tx.PutLink(testLink("f", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after refused calls: %v", err)
	}
}
