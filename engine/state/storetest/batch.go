package storetest

// The contract of the batched writes, AddIntents and PutLinks: the same as the one-by-one
// methods, in order, with their errors.

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dataflow-sync/dataflow/engine/state"
)

// batchIntents are intents of flow of every shape: with data or without, with a time or
// without, of either side; more than a statement of SQLite holds.
func batchIntents(flow string, n int) []state.Intent {
	ins := make([]state.Intent, n)
	for i := range ins {
		in := state.Intent{Flow: flow, Side: state.Target, FromID: fmt.Sprintf("s%04d", i)}
		switch i % 3 {
		case 0:
			in.Data = json.RawMessage(fmt.Sprintf(`{"name":"N%d","price":"%d.50"}`, i, i))
		case 1:
			in.Side, in.Created = state.Source, T0.Add(-time.Duration(i)*time.Minute)
		}
		ins[i] = in
	}
	return ins
}

func testAddIntents(t *testing.T, o Opener) {
	st, now, _ := open(t, o)
	const n = 250
	var one, batch []int64
	Write(t, st, func(tx state.Tx) error {
		for _, in := range batchIntents("one", n) {
			id, err := tx.AddIntent(&in)
			if err != nil {
				return err
			}
			one = append(one, id)
		}
		var err error
		batch, err = tx.AddIntents(batchIntents("batch", n))
		return err
	})
	if len(batch) != n {
		t.Fatalf("AddIntents returned %d ids for %d intents", len(batch), n)
	}
	for i, id := range batch {
		if i == 0 && id <= one[n-1] || i > 0 && id <= batch[i-1] {
			t.Fatalf("id %d of AddIntents is %d, after %d", i, id, max(one[n-1], batch[max(i-1, 0)]))
		}
	}
	gotOne, err := st.Intents(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	gotBatch, err := st.Intents(ctx, "batch")
	if err != nil {
		t.Fatal(err)
	}
	if len(gotOne) != n || len(gotBatch) != n {
		t.Fatalf("%d intents of AddIntent and %d of AddIntents, want %d each", len(gotOne), len(gotBatch), n)
	}
	for i := range gotBatch {
		// What AddIntent recorded, with the flow and id of AddIntents's.
		want := gotOne[i]
		want.Flow, want.ID = "batch", batch[i]
		if !sameIntents(gotBatch[i:i+1], []state.Intent{want}) {
			t.Fatalf("intent %d of AddIntents = %+v\nAddIntent's        %+v", i, gotBatch[i], gotOne[i])
		}
	}
	if !gotBatch[0].Created.Equal(*now) || !gotBatch[1].Created.Equal(T0.Add(-time.Minute)) {
		t.Errorf("times of AddIntents = %v, %v; want %v (now), %v", gotBatch[0].Created, gotBatch[1].Created, *now, T0.Add(-time.Minute))
	}

	// Deleted, no id is handed out again, by either method; an empty batch adds nothing.
	Write(t, st, func(tx state.Tx) error { return tx.DeleteIntents(append(one, batch...)) })
	Write(t, st, func(tx state.Tx) error {
		if ids, err := tx.AddIntents(nil); err != nil || len(ids) != 0 {
			return fmt.Errorf("AddIntents(nil) = %v, %v", ids, err)
		}
		ids, err := tx.AddIntents(batchIntents("f", 2))
		if err != nil {
			return err
		}
		if ids[0] <= batch[n-1] || ids[1] <= ids[0] {
			return fmt.Errorf("ids %v after %d", ids, batch[n-1])
		}
		id, err := tx.AddIntent(&state.Intent{Flow: "f", Side: state.Target, FromID: "x"})
		if err == nil && id <= ids[1] {
			err = fmt.Errorf("AddIntent gave id %d after AddIntents gave %d", id, ids[1])
		}
		return err
	})

	// An intent AddIntent refuses gives its error, and none of the batch is recorded.
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	good := state.Intent{Flow: "bad", Side: state.Target, FromID: "s1"}
	for _, c := range []struct {
		bad  state.Intent
		want string
	}{
		{state.Intent{Flow: "bad", Side: "left"}, `add intent of flow "bad": side is "left"; it must be "source" or "target"`},
		{state.Intent{Flow: "bad", Side: state.Target, Data: json.RawMessage(`{nope`)}, `add intent of flow "bad": data: not valid JSON`},
		{state.Intent{Flow: "bad", Side: state.Target, Data: json.RawMessage(`{"a":1} {"b":2}`)}, `add intent of flow "bad": data: not valid JSON`},
		{state.Intent{Side: state.Target}, "add intent: an intent needs a flow"},
	} {
		ids, err := tx.AddIntents([]state.Intent{good, c.bad, good})
		if err == nil || err.Error() != c.want || ids != nil {
			t.Errorf("AddIntents with %+v = %v, %v\nwant error %s", c.bad, ids, err, c.want)
		}
		_, one := tx.AddIntent(&c.bad)
		if one == nil || one.Error() != c.want {
			t.Errorf("AddIntent(%+v) = %v, want %s", c.bad, one, c.want)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after refused intents: %v", err)
	}
	if got, _ := st.Intents(ctx, "bad"); len(got) != 0 {
		t.Errorf("%d intents recorded of refused batches: %+v", len(got), got)
	}
}

// scanAll returns the links of flow in source id order.
func scanAll(t *testing.T, st state.Store, flow string) []*state.Link {
	t.Helper()
	var all []*state.Link
	if err := st.ScanLinks(ctx, flow, func(ls []*state.Link) error {
		all = append(all, ls...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

func testPutLinks(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	const n = 120 // more than a statement of SQLite holds
	Write(t, st, func(tx state.Tx) error {
		for i := range n {
			if err := tx.PutLink(testLink("one", i)); err != nil {
				return err
			}
		}
		links := make([]*state.Link, n)
		for i := range links {
			links[i] = testLink("batch", i)
		}
		return tx.PutLinks(links)
	})
	one, batch := scanAll(t, st, "one"), scanAll(t, st, "batch")
	if len(one) != n || len(batch) != n {
		t.Fatalf("%d links of PutLink and %d of PutLinks, want %d each", len(one), len(batch), n)
	}
	for i := range batch {
		want := testLink("batch", i)
		sameLink(t, batch[i], want)
		sameLink(t, one[i], testLink("one", i))
	}

	// Links read back and saved again (updated in place) among new ones, in order: the new
	// link of s000001 to t-new comes before its link as read, which is saved with its old
	// target then, as PutLink would; s000003 moves to a new target, whose old one s-late takes.
	read, err := st.LinksBySource(ctx, "batch", []string{"s000001", "s000002", "s000003"})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range read {
		l.Bases() // as a merge does: a link saved undecoded would lose its base, with PutLink too
	}
	base, _ := read["s000002"].Bases()
	base["name"] = state.Base{S: json.RawMessage(`"Renamed"`), T: json.RawMessage(`"Renamed"`)}
	read["s000002"].SourceHash = "sh-renamed"
	read["s000001"].MergedIn = 77
	read["s000003"].TargetID = "t-moved"
	renamed := *read["s000002"]
	firstNew := &state.Link{Flow: "batch", SourceID: "s000001", TargetID: "t-new"}
	Write(t, st, func(tx state.Tx) error {
		return tx.PutLinks([]*state.Link{
			firstNew, read["s000001"], read["s000002"], read["s000003"],
			{Flow: "batch", SourceID: "s-late", TargetID: "t000003"},
			{Flow: "batch", SourceID: "s-twice", TargetID: "t-first"},
			{Flow: "batch", SourceID: "s-twice", TargetID: "t-second"},
		})
	})
	got, err := st.LinksBySource(ctx, "batch", []string{"s000001", "s000002", "s000003", "s-late", "s-twice"})
	if err != nil {
		t.Fatal(err)
	}
	want1 := testLink("batch", 1)
	want1.MergedIn = 77
	sameLink(t, got["s000001"], want1)
	sameLink(t, got["s000002"], &renamed)
	for src, target := range map[string]string{"s000003": "t-moved", "s-late": "t000003", "s-twice": "t-second"} {
		if got[src] == nil || got[src].TargetID != target {
			t.Errorf("link of %s = %+v, want target %s", src, got[src], target)
		}
	}
	if byTarget, _ := st.LinksByTarget(ctx, "batch", []string{"t-new", "t-first"}); len(byTarget) != 0 {
		t.Errorf("targets left linked by links replaced in the batch: %v", byTarget)
	}
	if c, _ := st.CountLinks(ctx, "batch"); c != n+2 {
		t.Errorf("%d links, want %d", c, n+2)
	}
}

func testPutLinksRefused(t *testing.T, o Opener) {
	st, _, _ := open(t, o)
	Write(t, st, func(tx state.Tx) error { return tx.PutLink(testLink("f", 1)) })
	const linked = `link flow "f" source "other" to target "t000001": the target is already linked to source "s000001": the target record is already linked`
	for _, c := range []struct {
		name  string
		links []*state.Link
		// put are the sources of the links put before the refused one.
		put  []string
		want string
	}{
		{"a target linked in the state", []*state.Link{
			{Flow: "f", SourceID: "a", TargetID: "ta"}, {Flow: "f", SourceID: "b", TargetID: "tb"},
			{Flow: "f", SourceID: "other", TargetID: "t000001"}, {Flow: "f", SourceID: "c", TargetID: "tc"},
		}, []string{"a", "b"}, linked},
		{"a target linked first", []*state.Link{
			{Flow: "f", SourceID: "other", TargetID: "t000001"}, {Flow: "f", SourceID: "c", TargetID: "tc"},
		}, nil, linked},
		{"a target linked earlier in the batch", []*state.Link{
			{Flow: "f", SourceID: "a", TargetID: "ta"}, {Flow: "f", SourceID: "b", TargetID: "ta"}, {Flow: "f", SourceID: "c", TargetID: "tc"},
		}, []string{"a"}, `link flow "f" source "b" to target "ta": the target is already linked to source "a": the target record is already linked`},
		{"a link without a target", []*state.Link{
			{Flow: "f", SourceID: "a", TargetID: "ta"}, {Flow: "f", SourceID: "b"}, {Flow: "f", SourceID: "c", TargetID: "tc"},
		}, []string{"a"}, "put link: a link needs a flow, a source id and a target id"},
		{"no link", []*state.Link{{Flow: "f", SourceID: "a", TargetID: "ta"}, nil}, []string{"a"}, "put link: a link needs a flow, a source id and a target id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tx, err := st.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			err = tx.PutLinks(c.links)
			if err == nil || err.Error() != c.want {
				t.Fatalf("PutLinks = %v\nwant      %s", err, c.want)
			}
			if wantLinked := strings.Contains(c.want, "already linked"); errors.Is(err, state.ErrTargetLinked) != wantLinked {
				t.Errorf("errors.Is(err, ErrTargetLinked) = %v, want %v", !wantLinked, wantLinked)
			}
			// The Tx stays usable and commits the links before the refused one, none after.
			if err := tx.PutLink(&state.Link{Flow: "f", SourceID: "after", TargetID: "t-after"}); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("commit after a refused link: %v", err)
			}
			var sources []string
			for _, l := range scanAll(t, st, "f") {
				sources = append(sources, l.SourceID)
			}
			want := append(append([]string{}, c.put...), "after", "s000001")
			slices.Sort(want)
			if fmt.Sprint(sources) != fmt.Sprint(want) {
				t.Errorf("links after the batch: %q, want %q", sources, want)
			}
			Write(t, st, func(tx state.Tx) error {
				for _, src := range append(c.put, "after") {
					if err := tx.DeleteLink("f", src); err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}

// testIntentBatches: the intents of one AddIntents, deleted some at a time, leave the others
// as they were recorded, with their own ids, in order, also in a store opened again (the
// recovery of a killed run reads them there); and no id is handed out twice, after a reopen
// and after deletes.
func testIntentBatches(t *testing.T, o Opener) {
	st, _, reopen := open(t, o)
	const n = 300
	var ids, others []int64
	Write(t, st, func(tx state.Tx) error {
		var err error
		if ids, err = tx.AddIntents(batchIntents("f", n)); err != nil {
			return err
		}
		others, err = tx.AddIntents(batchIntents("g", 5))
		return err
	})
	all, err := st.Intents(ctx, "f")
	if err != nil || len(all) != n {
		t.Fatalf("Intents(f) = %d intents, %v; want %d", len(all), err, n)
	}
	for i, in := range all {
		if in.ID != ids[i] || i > 0 && ids[i] <= ids[i-1] {
			t.Fatalf("intent %d has id %d, AddIntents gave %d (before it %d)", i, in.ID, ids[i], ids[max(i-1, 0)])
		}
	}
	// left returns the intents of all but those whose index gone reports.
	left := func(gone func(i int) bool) []state.Intent {
		var out []state.Intent
		for i, in := range all {
			if !gone(i) {
				out = append(out, in)
			}
		}
		return out
	}
	gLeft := others
	check := func(st state.Store, step string, want []state.Intent) {
		t.Helper()
		got, err := st.Intents(ctx, "f")
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !sameIntents(got, want) {
			i := 0 // the first that differs
			for i < min(len(got), len(want)) && sameIntents(got[i:i+1], want[i:i+1]) {
				i++
			}
			g, w := "none", "none"
			if i < len(got) {
				g = fmt.Sprintf("%+v", got[i])
			}
			if i < len(want) {
				w = fmt.Sprintf("%+v", want[i])
			}
			t.Fatalf("%s: Intents(f) = %d intents, want %d; intent %d is\n%s\nwant\n%s", step, len(got), len(want), i, g, w)
		}
		g, err := st.Intents(ctx, "g")
		if err != nil || len(g) != len(gLeft) || g[0].ID != gLeft[0] {
			t.Fatalf("%s: Intents(g) = %+v, %v; want the %d intents of ids %v", step, g, err, len(gLeft), gLeft)
		}
	}

	// Every third intent, the first and the last, and an id never handed out.
	third := func(i int) bool { return i%3 == 1 || i == 0 || i == n-1 }
	Write(t, st, func(tx state.Tx) error {
		var gone []int64
		for i, id := range ids {
			if third(i) {
				gone = append(gone, id)
			}
		}
		return tx.DeleteIntents(append(gone, others[len(others)-1]+1000))
	})
	check(st, "every third deleted", left(third))

	// Opened again: the same intents, and ids after every id handed out.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = reopen(state.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	check(st, "reopened", left(third))
	var more []int64
	Write(t, st, func(tx state.Tx) error {
		var err error
		more, err = tx.AddIntents(batchIntents("h", 3))
		return err
	})
	if more[0] <= others[len(others)-1] {
		t.Fatalf("ids %v after a reopen, after %d had been handed out", more, others[len(others)-1])
	}

	// One by one (the recovery's DeleteIntent), then a run of ids from the middle of the batch
	// into the next row, of which some are gone already.
	Write(t, st, func(tx state.Tx) error {
		for _, i := range []int{2, 3} {
			if err := tx.DeleteIntent(ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	upTo10 := func(i int) bool { return third(i) || i == 2 || i == 3 }
	check(st, "two deleted one by one", left(upTo10))
	Write(t, st, func(tx state.Tx) error {
		var run []int64
		for id := ids[n/2]; id <= others[1]; id++ {
			run = append(run, id)
		}
		return tx.DeleteIntents(run)
	})
	gLeft = others[2:]
	check(st, "the second half deleted", left(func(i int) bool { return upTo10(i) || i >= n/2 }))

	// The rest, with ids already deleted among them: nothing of f is left, the rest stays.
	Write(t, st, func(tx state.Tx) error { return tx.DeleteIntents(ids) })
	if got, err := st.Intents(ctx, "f"); err != nil || len(got) != 0 {
		t.Fatalf("Intents(f) after deleting all = %d intents, %v", len(got), err)
	}
	if rest, err := st.Intents(ctx, ""); err != nil || len(rest) != len(gLeft)+len(more) || rest[0].ID != gLeft[0] {
		t.Fatalf("Intents() after deleting those of f = %+v, %v; want those of ids %v and %v", rest, err, gLeft, more)
	}
	Write(t, st, func(tx state.Tx) error {
		id, err := tx.AddIntent(&state.Intent{Flow: "f", Side: state.Target, FromID: "x"})
		if err == nil && id <= more[2] {
			err = fmt.Errorf("AddIntent gave id %d after %d had been handed out", id, more[2])
		}
		return err
	})
}
