package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// t0 is the fixed clock of the tests.
var t0 = time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)

// newStore opens a fresh ReadWrite store in a temporary directory, with the clock at t0.
func newStore(t testing.TB) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".dataflow", "state.db")
	s, err := Open(context.Background(), path, ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return t0 }
	t.Cleanup(func() { s.Close() })
	return s, path
}

// write runs fn in a Tx and commits it.
func write(t testing.TB, s *SQLite, fn func(tx Tx) error) {
	t.Helper()
	tx, err := s.Begin(context.Background())
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

// testLink is a reproducible link: source s<i>, target t<i>, a base of a few properties.
func testLink(flow string, i int) *Link {
	return &Link{
		Flow:     flow,
		SourceID: fmt.Sprintf("s%06d", i),
		TargetID: fmt.Sprintf("t%06d", i),
		Base: map[string]Base{
			"name":   {S: json.RawMessage(fmt.Sprintf(`"Name %d"`, i)), T: json.RawMessage(fmt.Sprintf(`"Name %d"`, i))},
			"amount": {S: json.RawMessage(`10`), T: json.RawMessage(`"10.00"`)},
			"tags":   {S: json.RawMessage(`["a","b"]`), T: json.RawMessage(`["a","b"]`)},
			"owner":  {S: json.RawMessage(`{"id":42,"email":"a<b>&c@example.com"}`)},
		},
		SourceHash: fmt.Sprintf("sh%d", i),
		TargetHash: fmt.Sprintf("th%d", i),
		Updated:    t0.Add(time.Duration(i) * time.Second),
		LinkedIn:   int64(i),
		MergedIn:   int64(i + 1),
		Made:       Target,
	}
}

func putLinks(t testing.TB, s *SQLite, flow string, from, to int) {
	t.Helper()
	write(t, s, func(tx Tx) error {
		for i := from; i < to; i++ {
			if err := tx.PutLink(testLink(flow, i)); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestLinkRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	links := []*Link{
		testLink("contacts", 1),
		{ // the least a link holds: no base, no hashes, no time
			Flow: "contacts", SourceID: "s2", TargetID: "t2", Base: map[string]Base{},
		},
		{ // JSON null and an explicit clear are kept apart from an absent value
			Flow: "deals", SourceID: "s1", TargetID: "t1",
			Base: map[string]Base{
				"cleared": {S: json.RawMessage(`null`), T: json.RawMessage(`""`)},
				"only_t":  {T: json.RawMessage(`0`)},
				"ünïcode": {S: json.RawMessage(`"Ærlig talt – 😀"`)},
			},
			Updated: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		},
	}
	write(t, s, func(tx Tx) error {
		for _, l := range links {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	for _, want := range links {
		got, err := s.LinksBySource(ctx, want.Flow, []string{want.SourceID})
		if err != nil {
			t.Fatal(err)
		}
		decodeAll(t, got)
		if !reflect.DeepEqual(got, map[string]*Link{want.SourceID: want}) {
			t.Errorf("LinksBySource(%s, %s):\n got %+v\nwant %+v", want.Flow, want.SourceID, got[want.SourceID], want)
		}
		got, err = s.LinksByTarget(ctx, want.Flow, []string{want.TargetID})
		if err != nil {
			t.Fatal(err)
		}
		decodeAll(t, got)
		if !reflect.DeepEqual(got, map[string]*Link{want.TargetID: want}) {
			t.Errorf("LinksByTarget(%s, %s):\n got %+v\nwant %+v", want.Flow, want.TargetID, got[want.TargetID], want)
		}
	}

	// The base is stored in binary form (linkcodec.go): its keys numbered in the order of their
	// names when they were first stored, a value the same on both sides once, strings without
	// their quotes, HTML characters as they were.
	var base []byte
	if err := s.db.QueryRow("SELECT base FROM link_rows WHERE source_id = 's000001'").Scan(&base); err != nil {
		t.Fatal(err)
	}
	owner := `{"id":42,"email":"a<b>&c@example.com"}`
	wantBase := []byte{binaryBase, 4, 4, // the highest key number, the number of properties
		layoutST<<3 | rawValue, stringValue, 2, '1', '0', 5, '1', '0', '.', '0', '0', // amount: 10, "10.00"
		layoutB<<3 | stringValue, 6, 'N', 'a', 'm', 'e', ' ', '1', // name: "Name 1" on both sides
		layoutS<<3 | rawValue, byte(len(owner))} // owner, on the source side
	wantBase = append(append(wantBase, owner...), layoutB<<3|rawValue, 9)
	wantBase = append(wantBase, `["a","b"]`...) // tags
	if !bytes.Equal(base, wantBase) {
		t.Errorf("stored base:\n got %q\nwant %q", base, wantBase)
	}
	// The view links shows the rows as schema 8 stored them, but for the base.
	var flow, source, target, sourceHash, updated, made string
	if err := s.db.QueryRow("SELECT flow, source_id, target_id, source_hash, updated, made FROM links WHERE flow = 'contacts' AND source_id = 's000001'").Scan(
		&flow, &source, &target, &sourceHash, &updated, &made); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join([]string{flow, source, target, sourceHash, updated, made}, " "); got != "contacts s000001 t000001 sh1 2024-03-01T12:30:46.123Z target" {
		t.Errorf("the view links shows %s", got)
	}

	// A nil base reads back as an empty map the engine can fill.
	write(t, s, func(tx Tx) error { return tx.PutLink(&Link{Flow: "f", SourceID: "a", TargetID: "b"}) })
	got, err := s.LinksBySource(ctx, "f", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, got)
	if got["a"].Base == nil || len(got["a"].Base) != 0 {
		t.Errorf("nil base read back as %#v, want an empty map", got["a"].Base)
	}

	// PutLink replaces the link of a source record, also with another target.
	changed := testLink("contacts", 1)
	changed.TargetID = "t-new"
	changed.Base = map[string]Base{"name": {S: json.RawMessage(`"x"`)}}
	changed.MergedIn, changed.Made = 99, ""
	write(t, s, func(tx Tx) error { return tx.PutLink(changed) })
	got, err = s.LinksBySource(ctx, "contacts", []string{"s000001"})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, got)
	if !reflect.DeepEqual(got["s000001"], changed) {
		t.Errorf("replaced link:\n got %+v\nwant %+v", got["s000001"], changed)
	}
	if got, _ := s.LinksByTarget(ctx, "contacts", []string{"t000001"}); len(got) != 0 {
		t.Errorf("the old target is still linked: %+v", got)
	}

	if has, err := s.HasLinks(ctx, "contacts"); err != nil || !has {
		t.Errorf("HasLinks(contacts) = %v, %v; want true", has, err)
	}
	if has, err := s.HasLinks(ctx, "nothing"); err != nil || has {
		t.Errorf("HasLinks(nothing) = %v, %v; want false", has, err)
	}

	// DeleteLink forgets it; deleting a missing link is not an error.
	write(t, s, func(tx Tx) error {
		if err := tx.DeleteLink("contacts", "s000001"); err != nil {
			return err
		}
		return tx.DeleteLink("contacts", "missing")
	})
	for _, tc := range []struct {
		flow string
		want int
	}{{"contacts", 1}, {"deals", 1}, {"f", 1}, {"nope", 0}, {"", 3}} {
		n, err := s.CountLinks(ctx, tc.flow)
		if err != nil {
			t.Fatal(err)
		}
		if n != tc.want {
			t.Errorf("CountLinks(%q) = %d, want %d", tc.flow, n, tc.want)
		}
	}
}

func TestPutLinkRefusesBadLinks(t *testing.T) {
	s, _ := newStore(t)
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tests := []struct {
		name string
		link *Link
		want string
	}{
		{"nil", nil, "put link: a link needs a flow, a source id and a target id"},
		{"no target", &Link{Flow: "f", SourceID: "s"}, "put link: a link needs a flow, a source id and a target id"},
		{"bad base", &Link{Flow: "f", SourceID: "s", TargetID: "t", Base: map[string]Base{"p": {S: json.RawMessage(`{`)}}},
			`put link of flow "f", source "s": base: json: error calling MarshalJSON for type json.RawMessage: unexpected end of JSON input`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tx.PutLink(tc.link)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestLinksByManyIDs(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	putLinks(t, s, "contacts", 0, 2000)
	putLinks(t, s, "other", 0, 10) // same ids, another flow: never returned

	var sources, targets []string
	for i := 0; i < 2000; i++ {
		sources = append(sources, fmt.Sprintf("s%06d", i))
		targets = append(targets, fmt.Sprintf("t%06d", i))
	}
	// Unknown ids are left out; repeated ids are looked up once.
	sources = append(sources, "s999999", "s000007", "")
	targets = append(targets, "t999999", "t000007")

	bySource, err := s.LinksBySource(ctx, "contacts", sources)
	if err != nil {
		t.Fatal(err)
	}
	byTarget, err := s.LinksByTarget(ctx, "contacts", targets)
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, bySource)
	decodeAll(t, byTarget)
	if len(bySource) != 2000 || len(byTarget) != 2000 {
		t.Fatalf("got %d links by source and %d by target, want 2000 each", len(bySource), len(byTarget))
	}
	for i := 0; i < 2000; i++ {
		want := testLink("contacts", i)
		if got := bySource[want.SourceID]; !reflect.DeepEqual(got, want) {
			t.Fatalf("by source %s:\n got %+v\nwant %+v", want.SourceID, got, want)
		}
		if got := byTarget[want.TargetID]; !reflect.DeepEqual(got, want) {
			t.Fatalf("by target %s:\n got %+v\nwant %+v", want.TargetID, got, want)
		}
	}

	for _, ids := range [][]string{nil, {}, {"nope"}} {
		got, err := s.LinksBySource(ctx, "contacts", ids)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("LinksBySource(%q) = %v, %v; want an empty map", ids, got, err)
		}
	}
}

func TestScanLinks(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	// Written in two transactions, out of order, beside another flow.
	putLinks(t, s, "contacts", 2500, 5000)
	putLinks(t, s, "contacts", 0, 2500)
	putLinks(t, s, "deals", 0, 30)

	var sizes []int
	var ids []string
	err := s.ScanLinks(ctx, "contacts", func(batch []*Link) error {
		sizes = append(sizes, len(batch))
		for _, l := range batch {
			if l.Flow != "contacts" {
				t.Fatalf("link of flow %q in the scan of contacts", l.Flow)
			}
			ids = append(ids, l.SourceID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{1000, 1000, 1000, 1000, 1000}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
	if len(ids) != 5000 || !sort.StringsAreSorted(ids) || ids[0] != "s000000" || ids[4999] != "s004999" {
		t.Errorf("scanned %d ids from %q to %q, sorted %v; want s000000..s004999 in order",
			len(ids), ids[0], ids[len(ids)-1], sort.StringsAreSorted(ids))
	}

	sizes = nil
	if err := s.ScanLinks(ctx, "deals", func(b []*Link) error { sizes = append(sizes, len(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []int{30}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("deals: batch sizes %v, want %v", sizes, want)
	}
	calls := 0
	if err := s.ScanLinks(ctx, "none", func([]*Link) error { calls++; return nil }); err != nil || calls != 0 {
		t.Errorf("empty flow: %d calls, %v; want none", calls, err)
	}

	// An error of fn stops the scan and is returned as is.
	stop := errors.New("stop")
	calls = 0
	err = s.ScanLinks(ctx, "contacts", func([]*Link) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("got %v after %d calls, want stop after 1", err, calls)
	}

	// fn may write to the state while the scan goes on.
	seen := 0
	err = s.ScanLinks(ctx, "contacts", func(batch []*Link) error {
		seen += len(batch)
		tx, err := s.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, l := range batch {
			l.SourceHash = "rescanned"
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
	if err != nil || seen != 5000 {
		t.Errorf("scan with writes: %d links, %v; want 5000", seen, err)
	}
}

func TestTargetAlreadyLinked(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		return tx.PutLink(&Link{Flow: "contacts", SourceID: "s1", TargetID: "t1"})
	})

	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	err = tx.PutLink(&Link{Flow: "contacts", SourceID: "s2", TargetID: "t1"})
	const want = `link flow "contacts" source "s2" to target "t1": the target is already linked to source "s1": the target record is already linked`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrTargetLinked) {
		t.Errorf("errors.Is(%v, ErrTargetLinked) = false", err)
	}
	// The same target in another flow is fine, and the Tx goes on after the refusal.
	if err := tx.PutLink(&Link{Flow: "deals", SourceID: "s2", TargetID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flow, target, source string
	}{{"contacts", "t1", "s1"}, {"deals", "t1", "s2"}} {
		got, err := s.LinksByTarget(ctx, tc.flow, []string{tc.target})
		if err != nil {
			t.Fatal(err)
		}
		if l := got[tc.target]; l == nil || l.SourceID != tc.source {
			t.Errorf("%s: target %s linked to %+v, want source %s", tc.flow, tc.target, l, tc.source)
		}
	}
}

func TestDeadLetters(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	t1, t2 := t0, t0.Add(time.Hour)

	s.now = func() time.Time { return t1 }
	write(t, s, func(tx Tx) error {
		for _, d := range [][4]string{
			{"contacts", Source, "r2", "schema: email is required"},
			{"contacts", Source, "r1", "expression: division by zero"},
			{"contacts", Target, "r1", "HTTP 422"},
			{"deals", Source, "d1", "HTTP 400"},
		} {
			if err := tx.PutDeadLetter(d[0], d[1], d[2], d[3]); err != nil {
				return err
			}
		}
		return nil
	})
	s.now = func() time.Time { return t2 }
	write(t, s, func(tx Tx) error {
		return tx.PutDeadLetter("contacts", Source, "r1", "expression: nil has no field x")
	})
	write(t, s, func(tx Tx) error {
		return tx.PutDeadLetter("contacts", Source, "r1", "expression: nil has no field y")
	})

	want := []DeadLetter{
		{Flow: "contacts", Side: Source, RecordID: "r1", Reason: "expression: nil has no field y", Attempts: 3, First: t1, Last: t2},
		{Flow: "contacts", Side: Source, RecordID: "r2", Reason: "schema: email is required", Attempts: 1, First: t1, Last: t1},
		{Flow: "contacts", Side: Target, RecordID: "r1", Reason: "HTTP 422", Attempts: 1, First: t1, Last: t1},
		{Flow: "deals", Side: Source, RecordID: "d1", Reason: "HTTP 400", Attempts: 1, First: t1, Last: t1},
	}
	got, err := s.DeadLetters(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("all dead letters:\n got %+v\nwant %+v", got, want)
	}
	got, err = s.DeadLetters(ctx, "contacts")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want[:3]) {
		t.Errorf("dead letters of contacts:\n got %+v\nwant %+v", got, want[:3])
	}

	write(t, s, func(tx Tx) error {
		if err := tx.ClearDeadLetter("contacts", Source, "r1"); err != nil {
			return err
		}
		return tx.ClearDeadLetter("contacts", Source, "missing")
	})
	got, err = s.DeadLetters(ctx, "contacts")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want[1:3]) {
		t.Errorf("after clear:\n got %+v\nwant %+v", got, want[1:3])
	}

	// A record failing again after it was cleared starts over.
	write(t, s, func(tx Tx) error { return tx.PutDeadLetter("contacts", Source, "r1", "again") })
	got, _ = s.DeadLetters(ctx, "contacts")
	if w := (DeadLetter{Flow: "contacts", Side: Source, RecordID: "r1", Reason: "again", Attempts: 1, First: t2, Last: t2}); !reflect.DeepEqual(got[0], w) {
		t.Errorf("after failing again: got %+v, want %+v", got[0], w)
	}
	if none, err := s.DeadLetters(ctx, "nope"); err != nil || none != nil {
		t.Errorf("dead letters of an unknown flow: %v, %v; want none", none, err)
	}
}

func TestWaiting(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	t1, t2 := t0, t0.Add(time.Minute)

	s.now = func() time.Time { return t1 }
	write(t, s, func(tx Tx) error {
		if err := tx.PutWaiting("deals", Source, "d1", "company c1 is not linked yet"); err != nil {
			return err
		}
		return tx.PutWaiting("contacts", Target, "c9", "owner u1 is not linked yet")
	})
	// Waiting again keeps the time it started waiting and takes the new reason.
	s.now = func() time.Time { return t2 }
	write(t, s, func(tx Tx) error {
		if err := tx.PutWaiting("deals", Source, "d1", "company c2 is not linked yet"); err != nil {
			return err
		}
		return tx.PutWaiting("deals", Source, "d0", "company c3 is not linked yet")
	})

	want := []Waiting{
		{Flow: "contacts", Side: Target, RecordID: "c9", Reason: "owner u1 is not linked yet", Since: t1},
		{Flow: "deals", Side: Source, RecordID: "d0", Reason: "company c3 is not linked yet", Since: t2},
		{Flow: "deals", Side: Source, RecordID: "d1", Reason: "company c2 is not linked yet", Since: t1},
	}
	got, err := s.Waiting(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("all waiting:\n got %+v\nwant %+v", got, want)
	}
	got, _ = s.Waiting(ctx, "deals")
	if !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("waiting of deals:\n got %+v\nwant %+v", got, want[1:])
	}

	write(t, s, func(tx Tx) error {
		if err := tx.ClearWaiting("deals", Source, "d1"); err != nil {
			return err
		}
		return tx.ClearWaiting("deals", Target, "d0") // the other side: not this record
	})
	got, _ = s.Waiting(ctx, "")
	if !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("after clear:\n got %+v\nwant %+v", got, want[:2])
	}
}

func TestIntents(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	created := t0.Add(-time.Hour)
	var ids []int64
	write(t, s, func(tx Tx) error {
		for _, in := range []*Intent{
			{Flow: "contacts", Side: Target, FromID: "s1", Data: json.RawMessage(`{"email":"a@example.com"}`), Created: created},
			{Flow: "deals", Side: Source, FromID: "t7"}, // no data, created now
			{Flow: "contacts", Side: Target, FromID: "s2", Data: json.RawMessage(`{ "email" : "b@example.com" }`)},
		} {
			id, err := tx.AddIntent(in)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if want := []int64{1, 2, 3}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	want := []Intent{
		{ID: 1, Flow: "contacts", Side: Target, FromID: "s1", Data: json.RawMessage(`{"email":"a@example.com"}`), Created: created},
		{ID: 3, Flow: "contacts", Side: Target, FromID: "s2", Data: json.RawMessage(`{ "email" : "b@example.com" }`), Created: t0},
	}
	got, err := s.Intents(ctx, "contacts")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("intents of contacts:\n got %+v\nwant %+v", got, want)
	}
	got, _ = s.Intents(ctx, "deals")
	if w := []Intent{{ID: 2, Flow: "deals", Side: Source, FromID: "t7", Created: t0}}; !reflect.DeepEqual(got, w) {
		t.Errorf("intents of deals:\n got %+v\nwant %+v", got, w)
	}

	// A deleted id is never handed out again.
	write(t, s, func(tx Tx) error {
		if err := tx.DeleteIntent(3); err != nil {
			return err
		}
		if err := tx.DeleteIntent(99); err != nil {
			return err
		}
		id, err := tx.AddIntent(&Intent{Flow: "contacts", Side: Target, FromID: "s3"})
		if err == nil && id != 4 {
			err = fmt.Errorf("new intent got id %d after deleting 3, want 4", id)
		}
		return err
	})
	got, _ = s.Intents(ctx, "")
	var gotIDs []int64
	for _, in := range got {
		gotIDs = append(gotIDs, in.ID)
	}
	if want := []int64{1, 2, 4}; !reflect.DeepEqual(gotIDs, want) {
		t.Errorf("ids after delete %v, want %v", gotIDs, want)
	}

	// DeleteIntents deletes a batch, over several statements when it is large, and ignores
	// ids that are not there.
	var batch []int64
	write(t, s, func(tx Tx) error {
		for i := range 1203 {
			id, err := tx.AddIntent(&Intent{Flow: "bulk", Side: Target, FromID: fmt.Sprint(i)})
			if err != nil {
				return err
			}
			batch = append(batch, id)
		}
		return nil
	})
	write(t, s, func(tx Tx) error { return tx.DeleteIntents(append(batch[:1201:1201], 9999)) })
	got, _ = s.Intents(ctx, "bulk")
	if len(got) != 2 || got[0].ID != batch[1201] || got[1].ID != batch[1202] {
		t.Errorf("after DeleteIntents of all but the last two: %+v", got)
	}
	if got, _ := s.Intents(ctx, "contacts"); len(got) != 2 {
		t.Errorf("DeleteIntents touched other flows: %+v", got)
	}
}

func TestTxRefusesBadInput(t *testing.T) {
	s, _ := newStore(t)
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"intent side", func() error { _, err := tx.AddIntent(&Intent{Flow: "f", Side: "left"}); return err },
			`add intent of flow "f": side is "left"; it must be "source" or "target"`},
		{"intent data", func() error {
			_, err := tx.AddIntent(&Intent{Flow: "f", Side: Target, Data: json.RawMessage(`{"a":`)})
			return err
		}, `add intent of flow "f": data: not valid JSON`},
		{"intent flow", func() error { _, err := tx.AddIntent(&Intent{Side: Target}); return err },
			`add intent: an intent needs a flow`},
		{"watermark side", func() error { return tx.SetWatermark("f", "", "1") },
			`set watermark of flow "f": side is ""; it must be "source" or "target"`},
		{"dead letter side", func() error { return tx.PutDeadLetter("f", "Source", "r", "x") },
			`put dead letter of flow "f": side is "Source"; it must be "source" or "target"`},
		{"waiting side", func() error { return tx.PutWaiting("f", "both", "r", "x") },
			`put waiting record of flow "f": side is "both"; it must be "source" or "target"`},
		{"unknown run", func() error { return tx.FinishRun(42, "ok", nil) },
			`finish run 42: there is no such run`},
		{"run summary", func() error {
			id, err := tx.StartRun()
			if err != nil {
				return err
			}
			return tx.FinishRun(id, "ok", json.RawMessage(`nope`))
		}, `finish run 1: summary: not valid JSON`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestWatermarks(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		for _, w := range [][3]string{
			{"contacts", Source, "2024-03-01T00:00:00Z"},
			{"contacts", Target, "1709251200"},
			{"deals", Source, "cursor-1"},
			{"deals", Source, "cursor-2"}, // replaces
		} {
			if err := tx.SetWatermark(w[0], w[1], w[2]); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct{ flow, side, want string }{
		{"contacts", Source, "2024-03-01T00:00:00Z"},
		{"contacts", Target, "1709251200"},
		{"deals", Source, "cursor-2"},
		{"deals", Target, ""},
		{"unknown", Source, ""},
	} {
		got, err := s.Watermark(ctx, tc.flow, tc.side)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Watermark(%s, %s) = %q, want %q", tc.flow, tc.side, got, tc.want)
		}
	}
}

// Counts are kept per flow, replaced by the next SetCounts and forgotten by ClearCounts.
func TestCounts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		if err := tx.SetCounts("contacts", Counts{Source: 10, Target: -1, Skipped: 3, SourceDeletions: -1, TargetDeletions: 7}); err != nil {
			return err
		}
		if err := tx.SetCounts("deals", Counts{Source: 1, Target: 2}); err != nil {
			return err
		}
		return tx.SetCounts("deals", Counts{Source: 100000, Target: 99999, Skipped: 1, SourceDeletions: 5, TargetDeletions: -1}) // replaces
	})
	for _, tc := range []struct {
		flow string
		want Counts
		ok   bool
	}{
		{"contacts", Counts{10, -1, 3, -1, 7}, true},
		{"deals", Counts{100000, 99999, 1, 5, -1}, true},
		{"unknown", Counts{}, false},
	} {
		got, ok, err := s.Counts(ctx, tc.flow)
		if err != nil || got != tc.want || ok != tc.ok {
			t.Errorf("Counts(%s) = %+v, %v, %v; want %+v, %v", tc.flow, got, ok, err, tc.want, tc.ok)
		}
	}
	write(t, s, func(tx Tx) error {
		if err := tx.ClearCounts("deals"); err != nil {
			return err
		}
		return tx.ClearCounts("unknown")
	})
	if _, ok, err := s.Counts(ctx, "deals"); ok || err != nil {
		t.Errorf("Counts(deals) after ClearCounts: %v, %v", ok, err)
	}
	if _, ok, _ := s.Counts(ctx, "contacts"); !ok {
		t.Error("ClearCounts(deals) forgot the counts of contacts")
	}
}

func TestRuns(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var ids []int64
	for i := 0; i < 3; i++ {
		start := t0.Add(time.Duration(i) * time.Hour)
		s.now = func() time.Time { return start }
		write(t, s, func(tx Tx) error {
			id, err := tx.StartRun()
			ids = append(ids, id)
			return err
		})
	}
	s.now = func() time.Time { return t0.Add(10 * time.Minute) }
	write(t, s, func(tx Tx) error {
		return tx.FinishRun(ids[0], "ok", json.RawMessage(`{"created":3,"updated":1}`))
	})
	s.now = func() time.Time { return t0.Add(70 * time.Minute) }
	write(t, s, func(tx Tx) error { return tx.FinishRun(ids[1], "failed", json.RawMessage(`{"failed":2}`)) })

	want := []Run{
		{ID: 3, Started: t0.Add(2 * time.Hour), Status: "running"},
		{ID: 2, Started: t0.Add(time.Hour), Finished: t0.Add(70 * time.Minute), Status: "failed", Summary: json.RawMessage(`{"failed":2}`)},
		{ID: 1, Started: t0, Finished: t0.Add(10 * time.Minute), Status: "ok", Summary: json.RawMessage(`{"created":3,"updated":1}`)},
	}
	for _, tc := range []struct {
		limit int
		want  []Run
	}{{0, want}, {-1, want}, {10, want}, {2, want[:2]}, {1, want[:1]}} {
		got, err := s.Runs(ctx, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Runs(%d):\n got %+v\nwant %+v", tc.limit, got, tc.want)
		}
	}
}

func TestTxEnd(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)

	// Rollback discards, and a second Rollback is a no-op.
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutLink(testLink("f", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("second Rollback: %v", err)
	}
	if err := tx.Commit(); err == nil || err.Error() != "the link state transaction has already been committed or rolled back" {
		t.Errorf("Commit after Rollback: %v", err)
	}
	if err := tx.PutLink(testLink("f", 2)); err == nil || err.Error() != `put link of flow "f", source "s000002": the link state transaction has already been committed or rolled back` {
		t.Errorf("PutLink after Rollback: %v", err)
	}
	if n, _ := s.CountLinks(ctx, ""); n != 0 {
		t.Errorf("%d links after Rollback, want 0", n)
	}

	// Rollback after Commit is a no-op, as in the deferred Rollback pattern.
	tx, err = s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.PutLink(testLink("f", 1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Errorf("Rollback after Commit: %v", err)
	}
	if n, _ := s.CountLinks(ctx, ""); n != 1 {
		t.Errorf("%d links after Commit, want 1", n)
	}

	// One Tx at a time: Begin waits for the open one, or for its context.
	tx, err = s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Begin(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Begin beside an open Tx: %v, want context.DeadlineExceeded", err)
	}
	began := make(chan error)
	go func() {
		tx2, err := s.Begin(ctx)
		if err == nil {
			err = tx2.Rollback()
		}
		began <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-began; err != nil {
		t.Errorf("Begin after the open Tx ended: %v", err)
	}
}

// Clearing where a flow's side has nothing to clear costs no statement after the first look
// in a Tx; a dead letter or waiting record put in the same Tx, or in an earlier one, is still
// cleared.
func TestClearWhereNothingIs(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		for i := range 3 {
			if err := tx.ClearDeadLetter("f", Source, fmt.Sprint("a", i)); err != nil {
				return err
			}
			if err := tx.ClearWaiting("f", Source, fmt.Sprint("a", i)); err != nil {
				return err
			}
		}
		if n := len(tx.(*sqliteTx).none); n != 2 {
			t.Errorf("%d empty tables known, want 2", n)
		}
		// Put in this Tx after the side was seen empty: cleared by the next call.
		if err := tx.PutDeadLetter("f", Source, "b", "x"); err != nil {
			return err
		}
		if err := tx.PutWaiting("f", Source, "b", "x"); err != nil {
			return err
		}
		if err := tx.ClearDeadLetter("f", Source, "b"); err != nil {
			return err
		}
		if err := tx.ClearWaiting("f", Source, "b"); err != nil {
			return err
		}
		// Kept: put after the others were cleared.
		if err := tx.PutDeadLetter("f", Source, "c", "y"); err != nil {
			return err
		}
		return tx.PutWaiting("f", Target, "c", "y")
	})
	dl, _ := s.DeadLetters(ctx, "f")
	w, _ := s.Waiting(ctx, "f")
	if len(dl) != 1 || dl[0].RecordID != "c" || len(w) != 1 || w[0].RecordID != "c" {
		t.Fatalf("after the first Tx: dead letters %+v, waiting %+v", dl, w)
	}
	// A later Tx looks again.
	write(t, s, func(tx Tx) error {
		if err := tx.ClearDeadLetter("f", Target, "c"); err != nil {
			return err
		}
		if err := tx.ClearDeadLetter("f", Source, "c"); err != nil {
			return err
		}
		return tx.ClearWaiting("f", Target, "c")
	})
	dl, _ = s.DeadLetters(ctx, "")
	w, _ = s.Waiting(ctx, "")
	if len(dl) != 0 || len(w) != 0 {
		t.Fatalf("after the second Tx: dead letters %+v, waiting %+v", dl, w)
	}
}

// decodeAll decodes the bases of links read from a Store, which come undecoded (Link.Bases),
// so that they compare with the links written.
func decodeAll(t testing.TB, links map[string]*Link) {
	t.Helper()
	for _, l := range links {
		if _, err := l.Bases(); err != nil {
			t.Fatal(err)
		}
		l.storedTarget = "" // how it was read, not what it holds
	}
}

// A base that does not decode is an error of the link that has it, when its base is needed,
// not of every lookup that reads it.
func TestCorruptBaseFailsItsLinkOnly(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		for _, l := range []*Link{{Flow: "f", SourceID: "good", TargetID: "t1"}, {Flow: "f", SourceID: "bad", TargetID: "t2"},
			{Flow: "f", SourceID: "other", TargetID: "t3", Base: map[string]Base{"p": {S: json.RawMessage(`1`)}}}} {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct{ base, want string }{
		{`'{"p":{"s":'`, `link of source "bad": base: unexpected end of JSON input`}, // JSON text, as schema 8 stored it
		// Binary: the key p is number 1 (the link "other").
		{`X'01010121'`, `link of source "bad": base: the stored base is truncated`},
		{`X'01010100'`, ``}, // p: Base{}
		{`X'010101002101'`, `link of source "bad": base: 2 bytes after the last property`},
		{`X'01090140'`, `link of source "bad": base: the key number 2 is not in the state's table of keys`},
		{`X'0101010F'`, `link of source "bad": base: unknown kind of value 7`},
		{`X'01010138'`, `link of source "bad": base: unknown layout 7`},
	} {
		if _, err := s.db.ExecContext(ctx, `UPDATE link_rows SET base = `+tc.base+` WHERE source_id = 'bad'`); err != nil {
			t.Fatal(err)
		}
		links, err := s.LinksBySource(ctx, "f", []string{"good", "bad"})
		if err != nil || len(links) != 2 {
			t.Fatalf("LinksBySource = %v, %v; want both links", links, err)
		}
		if b, err := links["good"].Bases(); err != nil || len(b) != 0 {
			t.Errorf("good base: %v, %v", b, err)
		}
		_, err = links["bad"].Bases()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("base %s: %v, want %s", tc.base, err, tc.want)
		}
	}
}

// A link read from the store and saved again is rewritten in place; one that was deleted or
// relinked since it was read is saved as a new one, and one given another target is relinked.
func TestSavingALinkReadBefore(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	write(t, s, func(tx Tx) error {
		for _, l := range []*Link{{Flow: "f", SourceID: "s1", TargetID: "t1"}, {Flow: "f", SourceID: "s2", TargetID: "t2"}, {Flow: "f", SourceID: "s3", TargetID: "t3"}} {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	read, err := s.LinksBySource(ctx, "f", []string{"s1", "s2", "s3"})
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, func(tx Tx) error { // meanwhile: s2's link is deleted, s3's target relinked
		if err := tx.DeleteLink("f", "s2"); err != nil {
			return err
		}
		if err := tx.DeleteLink("f", "s3"); err != nil {
			return err
		}
		return tx.PutLink(&Link{Flow: "f", SourceID: "s3", TargetID: "t3b"})
	})
	s1, s2, s3 := read["s1"], read["s2"], read["s3"]
	s1.SourceHash, s1.MergedIn, s1.Base = "merged", 7, map[string]Base{"name": {S: []byte(`"x"`), T: []byte(`"x"`)}}
	s2.SourceHash = "saved again"
	s3.SourceHash = "saved again"
	write(t, s, func(tx Tx) error {
		for _, l := range []*Link{s1, s2, s3} {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.LinksBySource(ctx, "f", []string{"s1", "s2", "s3"})
	if err != nil {
		t.Fatal(err)
	}
	decodeAll(t, got)
	want := map[string]*Link{
		"s1": {Flow: "f", SourceID: "s1", TargetID: "t1", SourceHash: "merged", MergedIn: 7, Base: map[string]Base{"name": {S: []byte(`"x"`), T: []byte(`"x"`)}}},
		"s2": {Flow: "f", SourceID: "s2", TargetID: "t2", SourceHash: "saved again", Base: map[string]Base{}},
		"s3": {Flow: "f", SourceID: "s3", TargetID: "t3", SourceHash: "saved again", Base: map[string]Base{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("links:\n got %+v %+v %+v\nwant %+v %+v %+v", got["s1"], got["s2"], got["s3"], want["s1"], want["s2"], want["s3"])
	}
	// A link read and given another target moves to it.
	read, err = s.LinksBySource(ctx, "f", []string{"s1"})
	if err != nil {
		t.Fatal(err)
	}
	read["s1"].TargetID = "t9"
	write(t, s, func(tx Tx) error { return tx.PutLink(read["s1"]) })
	if got, err := s.LinksByTarget(ctx, "f", []string{"t1", "t9"}); err != nil || got["t1"] != nil || got["t9"] == nil || got["t9"].SourceID != "s1" {
		t.Errorf("after relinking s1 to t9: %v, %v", got, err)
	}
}

// The connection of the Txs has the page cache a first sync needs, kept between Txs; reads keep
// SQLite's default on theirs.
func TestWriterPageCache(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	putLinks(t, s, "f", 0, 10)
	first := s.wconn
	putLinks(t, s, "f", 10, 20)
	if s.wconn == nil || s.wconn != first {
		t.Fatalf("the Txs had connections %p and %p, want one kept", first, s.wconn)
	}
	var writer, reader int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&writer); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&reader); err != nil {
		t.Fatal(err)
	}
	if writer != -writerCacheKiB || reader != -2000 {
		t.Errorf("cache_size of the writer %d, of a reader %d; want %d and -2000", writer, reader, -writerCacheKiB)
	}
}
